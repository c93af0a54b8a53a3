"""Command-line errors a user can act on."""

import pathlib
import subprocess
import sys

from ssmtl_jax import main

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_missing_config_file_is_named_with_the_alternatives(monkeypatch):
  monkeypatch.chdir(REPO)
  error = main.check_config_path(["main", "--config=configs/nope.py", "--workdir=x"])
  assert "configs/nope.py does not exist" in error and "demo.py" in error
  assert main.check_config_path(["main", "--config", "configs/nope.py"]) is not None
  assert main.check_config_path(["main", "--config=configs/demo.py"]) is None
  assert main.check_config_path(["main", "--workdir=x"]) is None


def test_command_line_exits_with_the_message_not_a_traceback():
  done = subprocess.run([sys.executable, "-m", "ssmtl_jax.main", "--config=configs/nope.py",
                         "--workdir=unused"], cwd=REPO, capture_output=True, text=True)
  assert done.returncode == 1
  assert done.stderr.startswith("error: --config=configs/nope.py: configs/nope.py does not exist")
  assert "Traceback" not in done.stderr
