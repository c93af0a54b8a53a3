"""Compile times on XLA:CPU: where a tiny config's start-up goes (the test suite is mostly this).

  python benchmarks/compile_times.py --config=configs/test.py [--repeats=3] [--record]

Each measurement runs in a fresh subprocess (XLA caches compiled programs in-process, and
XLA_FLAGS are read once at start-up), `--repeats` times; the JSON line holds the medians in
seconds:
  normal_5d_partitionable / normal_5d_plain: one jitted `jax.random.normal` of a 3x3x3x16x16
    conv-kernel shape with the partitionable threefry (jax's default) and without it;
  init_eager / init: the config's model initialised op by op with the partitionable threefry (as
    before 2026-12-01), and by `model_setup.init_variables` (one jit, plain threefry);
  train_step_<depthwise>: lowering + compile of the config's train step with the CvT's depthwise
    convs as `shift` and as `grouped`;
  train_step_O0: the config's own train step with `--xla_backend_optimization_level=0`
    (not used: at -O0 tests/test_multihost.py's 2-process run no longer matched 1 process).
"""

import os
import statistics
import subprocess
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

import harness

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
flags.DEFINE_integer("repeats", 3, "Fresh processes per measurement (median reported).")
flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")

# Run in a child: prints the seconds of one measurement. argv: kind, config json, extra.
_CHILD = r"""
import json, sys, time
import jax, numpy as np
kind, config_json, extra = sys.argv[1], sys.argv[2], sys.argv[3]
if kind.startswith("normal_5d"):
  fn = jax.jit(lambda k: jax.random.normal(k, (3, 3, 3, 16, 16)))
  with jax.threefry_partitionable(kind.endswith("partitionable")):
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    jax.block_until_ready(fn(key))
  print(time.perf_counter() - start)
  sys.exit()
import ml_collections
from ssmtl_jax import model_setup
from ssmtl_jax.tasks import views as task_views
from ssmtl_jax.train import optimizer
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps
config = ml_collections.ConfigDict(json.loads(config_json))
if extra:
  config.model.depthwise_impl = extra
tasks = model_setup.build_tasks(config)
model = model_setup.build_model(config, tasks, 1 if config.data.grayscale else 3)
shape = (2 * config.prep.half_window + 1, config.prep.crop_size, config.prep.crop_size,
         1 if config.data.grayscale else 3)
start = time.perf_counter()
if kind == "init_eager":  # how init ran before: op by op, partitionable threefry
  rng = jax.random.PRNGKey(0)
  (views, _), routes = task_views.train_views(tasks, {"window": jax.numpy.zeros((2, *shape))}, rng)
  jax.block_until_ready(model.init(rng, views, routes, False))
  print(time.perf_counter() - start)
  sys.exit()
variables = model_setup.init_variables(model, tasks, {"window": shape}, jax.random.PRNGKey(0))
jax.block_until_ready(variables)
if kind == "init":
  print(time.perf_counter() - start)
  sys.exit()
tx = optimizer.build_optimizer(config, tasks)
state = train_state.new_train_state(variables, tx, ema=config.train.ema_decay > 0)
weights = train_steps.task_weights(config, tasks)
step = jax.jit(train_steps.make_train_step(model, tasks, tx, weights, config.train.ema_decay))
batch = {"window": np.zeros((config.train.batch_size, *shape), np.uint8)}
start = time.perf_counter()
step.lower(state, batch, jax.random.PRNGKey(1)).compile()
print(time.perf_counter() - start)
"""


def _one(kind: str, config_json: str, extra: str = "", xla_flags: str = "") -> float:
  env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + xla_flags).strip())
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, "-c", _CHILD, kind, config_json, extra], cwd=root,
                       env=env, capture_output=True, text=True)
  if out.returncode != 0:
    raise RuntimeError(f"{kind} {extra} {xla_flags} failed:\n{out.stderr[-3000:]}")
  return float(out.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  config = FLAGS.config
  config_json = config.to_json()
  cases = {
      "normal_5d_partitionable": ("normal_5d_partitionable", "", ""),
      "normal_5d_plain": ("normal_5d_plain", "", ""),
      "init_eager": ("init_eager", "", ""),
      "init": ("init", "", ""),
      "train_step_shift": ("train_step", "shift", ""),
      "train_step_grouped": ("train_step", "grouped", ""),
      "train_step_O0": ("train_step", "", "--xla_backend_optimization_level=0"),
  }
  result = {"benchmark": "compile_times", **harness.device_fields(),
            **harness.config_fields(config), "batch": config.train.batch_size,
            "repeats": FLAGS.repeats}
  for name, (kind, extra, xla_flags) in cases.items():
    times = [_one(kind, config_json, extra, xla_flags) for _ in range(FLAGS.repeats)]
    result[f"{name}_s"] = round(statistics.median(times), 2)
    print(f"{name}: {result[f'{name}_s']} s (runs: {', '.join(f'{t:.2f}' for t in times)})",
          file=sys.stderr, flush=True)
  harness.report(result, sys.argv, FLAGS.record)


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main)
