"""Nothing read from a data set or a checkpoint is unpickled (issue 5, item 6).

Data and checkpoints come from other people's disks; unpickling them runs their code. Arrays are
read with `allow_pickle=False`, checkpoints through orbax's array handlers plus JSON, and the
data iterator state is JSON.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("ssmtl_jax", "data_prep", "configs", "benchmarks")
                 for p in (ROOT / d).rglob("*.py"))


def test_every_np_load_refuses_pickles():
  assert SOURCES
  for path in SOURCES:
    text = path.read_text()
    for match in re.finditer(r"np\.load\(([^()]|\([^()]*\))*\)", text):
      assert "allow_pickle=False" in match.group(0), f"{path}: {match.group(0)}"


def test_no_pickle_loaders_are_used():
  unsafe = re.compile(r"\b(pickle|cloudpickle|dill|joblib)\.loads?\(|allow_pickle=True|"
                      r"torch\.load\(|PyTreeCheckpointHandler|ocp\.args\.PyTree")
  for path in SOURCES:
    for n, line in enumerate(path.read_text().splitlines(), 1):
      assert not unsafe.search(line), f"{path}:{n}: {line.strip()}"
