"""Train-step throughput of a config on random windows: the real jitted step, warm-up first.

  python benchmarks/train_step.py --config=configs/ped2_cpu.py --steps=10

Prints one JSON line (device, batch, cubes/s, ms/step median, compile s, GFLOP/s from XLA's
cost analysis) and appends it to benchmarks/RESULTS.md with --record.
"""

import json
import os
import statistics
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

import jax
import jax.numpy as jnp
import numpy as np

from ssmtl_jax import sharding
from ssmtl_jax import steps

_CONFIG = config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps (after 2 warm-up steps).")
_RECORD = flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def measure(config, num_steps: int) -> dict:
  tasks = steps.build_tasks(config)
  channels = 1 if config.data.grayscale else 3
  model = steps.build_model(config, tasks, channels)
  tx = steps.build_optimizer(config, tasks)
  mesh = sharding.make_mesh()
  batch = config.train.batch_size
  shape = (2 * config.prep.half_window + 1, config.prep.crop_size, config.prep.crop_size, channels)
  rng = jax.random.PRNGKey(0)
  variables = steps.init_variables(model, tasks, {"window": shape}, rng)
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                           batch_stats=variables["batch_stats"],
                           opt_state=tx.init(variables["params"]))
  state = jax.device_put(state, sharding.replicated(mesh))
  windows = sharding.to_global(
      {"window": np.random.default_rng(0).integers(0, 256, (batch, *shape), dtype=np.uint8)}, mesh)
  step_fn = jax.jit(steps.make_train_step(model, tasks, tx, steps.task_weights(config, tasks)),
                    donate_argnums=(0,))
  start = time.perf_counter()
  compiled = step_fn.lower(state, windows, rng).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
  for _ in range(2):
    state, metrics = compiled(state, windows, rng)
  jax.block_until_ready(state)
  times = []
  for _ in range(num_steps):
    start = time.perf_counter()
    state, metrics = compiled(state, windows, rng)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  ms = statistics.median(times) * 1e3
  return {
      "benchmark": "train_step", "device": jax.devices()[0].device_kind,
      "backend": jax.default_backend(), "num_devices": jax.device_count(), "batch": batch,
      "crop": config.prep.crop_size, "trunk": config.model.trunk,
      "embed_dim": config.model.embed_dim, "cvt_blocks": config.model.cvt_blocks,
      "tasks": list(config.tasks), "dtype": config.model.dtype,
      "ms_per_step_median": round(ms, 2), "cubes_per_s": round(batch / ms * 1e3, 2),
      "cubes_per_s_per_device": round(batch / ms * 1e3 / jax.device_count(), 2),
      "compile_s": round(compile_s, 2), "gflop_per_cube": round(flops / batch / 1e9, 3),
      "achieved_gflop_s": round(flops / ms / 1e6, 2), "steps_timed": num_steps,
  }


def main(argv):
  del argv
  result = measure(_CONFIG.value, _STEPS.value)
  print(json.dumps(result), flush=True)
  if _RECORD.value:
    path = os.path.join(os.path.dirname(__file__), "RESULTS.md")
    with open(path, "a") as f:
      f.write(f"\n`{' '.join(sys.argv)}`\n\n```json\n{json.dumps(result)}\n```\n")


if __name__ == "__main__":
  app.run(main)
