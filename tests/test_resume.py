"""Exact resumption after SIGKILL at random steps, SIGTERM preemption, non-finite losses.

Training runs in subprocesses (the real command line) on records prepared once; the interrupted
run must end with a train state bit-identical to an uninterrupted run of the same command.
"""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import test as test_config
import device_env
from ssmtl_jax import workflow

REPO = pathlib.Path(__file__).resolve().parents[1]
NUM_STEPS = 20
NUM_KILLS = 5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Subprocess environment sharing a persistent compilation cache: restarts skip the compile
  (a preempted job on a real cluster does the same), which keeps the many restarts cheap."""
  cache = tmp_path_factory.mktemp("jax_cache")
  return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def _command(workdir, records_dir, *extra):
  return [sys.executable, "-m", "ssmtl_jax.main", "--config=configs/test.py",
          f"--workdir={workdir}", "--mode=train", f"--config.data.records_dir={records_dir}",
          f"--config.train.num_steps={NUM_STEPS}", "--config.train.checkpoint_every_steps=1",
          "--config.train.eval_every_steps=4", "--config.train.tensorboard=False", *extra]


def _one_device(env):
  """`env` with one CPU device: the path a user's single-CPU run takes ('auto' convolutions
  lower through the host library there)."""
  return device_env.cpu_devices_env(1, env)


def _assert_same_state(want, got):
  assert jax.tree.structure(want) == jax.tree.structure(got)
  for path, a, b in zip(jax.tree_util.tree_flatten_with_path(want)[0],
                        jax.tree.leaves(want), jax.tree.leaves(got)):
    assert np.array_equal(np.asarray(a), np.asarray(b)), f"{jax.tree_util.keystr(path[0])} differs"


def _latest_step(workdir) -> int:
  folder = pathlib.Path(workdir) / "resume"
  done = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
  return max(done, default=0)


def _final_state(workdir):
  path = pathlib.Path(workdir) / "resume" / str(NUM_STEPS) / "state"
  return ocp.StandardCheckpointer().restore(path)


def _start(workdir, records_dir, env, *extra):
  return subprocess.Popen(_command(workdir, records_dir, *extra), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_for_progress(proc, workdir, at_least: int, timeout: float = 300) -> int:
  """Polls until this process has written a resumption checkpoint past `at_least`."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    step = _latest_step(workdir)
    if step >= at_least:
      return step
    if proc.poll() is not None:
      pytest.fail(f"training exited ({proc.returncode}) before step {at_least}:\n"
                  f"{proc.stdout.read()}")
    time.sleep(0.02)
  proc.kill()
  pytest.fail(f"no checkpoint past step {at_least} within {timeout} s")


def test_sigkill_at_random_steps_then_sigterm_resumes_bit_identically(prepared, env, tmp_path,
                                                                      record_property):
  reference = tmp_path / "reference"
  done = subprocess.run(_command(reference, prepared), cwd=REPO, capture_output=True, text=True,
                        env=env)
  assert done.returncode == 0, done.stdout + done.stderr

  workdir = tmp_path / "interrupted"
  rng = random.Random(1234)
  kills = 0
  while kills < NUM_KILLS:
    before = _latest_step(workdir)
    target = rng.randint(before + 1, before + 2)
    proc = _start(workdir, prepared, env)
    _wait_for_progress(proc, workdir, target)
    time.sleep(rng.uniform(0.0, 0.3))  # land anywhere: mid-step, mid-save, mid-validation
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    kills += 1
  # A preemption notice: the step in flight finishes, a checkpoint is written, exit code 0.
  proc = _start(workdir, prepared, env)
  before = _latest_step(workdir)
  assert before < NUM_STEPS - 4, "the kills left no steps for the SIGTERM check"
  _wait_for_progress(proc, workdir, before + 1)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  stopped = _latest_step(workdir)
  assert f"SIGTERM received: stopped after step {stopped} of {NUM_STEPS}" in out
  assert stopped < NUM_STEPS
  assert f"resuming from the checkpoint of step {before}" in out
  done = subprocess.run(_command(workdir, prepared), cwd=REPO, capture_output=True, text=True,
                        env=env)
  assert done.returncode == 0, done.stdout + done.stderr
  record_property("kills_survived", kills)
  print(f"survived {kills} SIGKILLs and a SIGTERM")

  _assert_same_state(_final_state(reference), _final_state(workdir))


def test_one_cpu_device_with_weight_average_resumes_bit_identically(prepared, env, tmp_path):
  """The default single-CPU run (host-library convolutions) with `train.ema_decay`: killed
  twice, it ends with the parameters *and* the weight average of an uninterrupted run."""
  one = _one_device(env)
  extra = ("--config.train.ema_decay=0.9", "--config.model.conv_impl=auto")
  reference = tmp_path / "reference"
  done = subprocess.run(_command(reference, prepared, *extra), cwd=REPO, capture_output=True,
                        text=True, env=one)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "on 1 cpu device(s)" in done.stdout
  assert "3D convs: native" not in done.stdout  # the host library, not XLA's own conv
  workdir = tmp_path / "interrupted"
  rng = random.Random(99)
  for _ in range(2):
    before = _latest_step(workdir)
    proc = _start(workdir, prepared, one, *extra)
    _wait_for_progress(proc, workdir, rng.randint(before + 2, before + 4))
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
  done = subprocess.run(_command(workdir, prepared, *extra), cwd=REPO, capture_output=True,
                        text=True, env=one)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "resuming from the checkpoint of step" in done.stdout
  want, got = _final_state(reference), _final_state(workdir)
  assert jax.tree.leaves(want["ema"]), "the weight average is part of the saved state"
  _assert_same_state(want, got)


def test_non_finite_loss_names_the_step_and_task(prepared, tmp_path):
  config = test_config.get_config()
  config.data.records_dir = str(prepared)
  config.train.learning_rate = 1e30
  config.train.num_steps = 4
  with pytest.raises(FloatingPointError, match=r"non-finite value at step \d+ in: .*loss/") as err:
    workflow.run(config, str(tmp_path), "train")
  assert "went non-finite" in str(err.value)
