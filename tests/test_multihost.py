"""Data parallelism: 2 processes x 4 CPU devices and 1 x 1 train like 1 process x 8 devices.

The processes find each other through `jax.distributed.initialize` on localhost (gloo
collectives on CPU); each reads only its own rows of every global batch.
"""

import json
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp

from configs import test as test_config
import device_env

REPO = pathlib.Path(__file__).resolve().parents[1]
NUM_STEPS = 3


def _command(workdir, records_dir, *extra):
  return [sys.executable, "-m", "ssmtl_jax.main", "--config=configs/test.py",
          f"--workdir={workdir}", "--mode=train", f"--config.data.records_dir={records_dir}",
          f"--config.train.num_steps={NUM_STEPS}", "--config.train.tensorboard=False",
          # One lowering for every topology: 'auto' picks the host-callback conv on a single
          # CPU device only, and this test compares sharding, not conv lowerings.
          "--config.model.conv_impl=native", "--config.model.first_conv_impl=im2col", *extra]


def _env(devices: int) -> dict:
  return device_env.cpu_devices_env(devices)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _state(workdir):
  """The saved train state as host arrays, whatever topology wrote it."""
  path = pathlib.Path(workdir) / "resume" / str(NUM_STEPS) / "state"
  checkpointer = ocp.StandardCheckpointer()
  meta = checkpointer.metadata(path)
  meta = getattr(meta, "item_metadata", meta)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), meta)
  return checkpointer.restore(path, target)


def test_two_processes_match_one_process(prepared, tmp_path):
  single = tmp_path / "single"
  done = subprocess.run(_command(single, prepared), cwd=REPO, env=_env(8), capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr

  one_device = tmp_path / "one_device"
  done = subprocess.run(_command(one_device, prepared), cwd=REPO, env=_env(1),
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr

  multi = tmp_path / "multi"
  port = _free_port()
  procs = [subprocess.Popen(
      _command(multi, prepared, "--multihost", f"--coordinator_address=127.0.0.1:{port}",
               "--num_processes=2", f"--process_id={p}"),
      cwd=REPO, env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for p in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out
  assert "on 8 cpu device(s)" in outs[0]

  want, got = _state(single), _state(multi)
  assert int(got["step"]) == NUM_STEPS
  lr = test_config.get_config().train.learning_rate
  a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(want)]).astype(np.float64)
  b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(got)]).astype(np.float64)
  assert jax.tree.structure(want) == jax.tree.structure(got)
  # Same global batches and program; only the all-reduce order differs (gloo vs in-process).
  # Adam turns a parameter whose gradient is pure rounding noise (e.g. the bias of the keys,
  # which softmax ignores) into +-lr steps, so those may differ by up to lr per step; every
  # other value agrees to float32 rounding.
  close = np.isclose(a, b, rtol=1e-4, atol=1e-5)
  assert close.mean() > 0.99, f"{(~close).sum()} of {close.size} values differ"
  assert np.max(np.abs(a - b)) <= NUM_STEPS * lr * 1.01
  # 8 devices vs 1 device: the parameters too (the same tolerance: only reduction orders differ).
  one = _state(one_device)
  assert jax.tree.structure(want) == jax.tree.structure(one)
  c = np.concatenate([np.ravel(x) for x in jax.tree.leaves(one)]).astype(np.float64)
  close = np.isclose(a, c, rtol=1e-4, atol=1e-5)
  assert close.mean() > 0.99, f"1 vs 8 devices: {(~close).sum()} of {close.size} values differ"
  assert np.max(np.abs(a - c)) <= NUM_STEPS * lr * 1.01
  losses = {}
  for name, w in (("single", single), ("multi", multi), ("one_device", one_device)):
    with open(w / "train_log.jsonl") as f:
      losses[name] = [json.loads(line)["loss"] for line in f if '"loss"' in line]
  assert len(losses["single"]) == NUM_STEPS - 1  # step 1 logs the compile time instead
  np.testing.assert_allclose(losses["multi"], losses["single"], rtol=1e-5)
  # 8 devices vs 1 device: the same losses up to float32 rounding.
  np.testing.assert_allclose(losses["one_device"], losses["single"], rtol=1e-5)
