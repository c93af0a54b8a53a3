"""Train-step throughput of a config on random windows: the real jitted step, warm-up first.

  python benchmarks/train_step.py --config=configs/ped2_cpu.py --steps=10 [--record]

Prints one JSON line: device, batch, cubes/s (total and per device), ms/step (median of the
timed steps after 2 warm-up steps), compile s, GFLOP per cube and achieved GFLOP/s from XLA's
cost analysis of the step's math (harness.math_gflop), its share of an f32 matmul's rate
measured in the same run, and device memory (harness.memory_fields). --record appends it to
benchmarks/RESULTS.md with the command.
"""

from ssmtl_jax.train import steps as train_steps
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

import jax

import harness

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a script, so other benchmarks can import `measure`."""
  config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
  flags.DEFINE_integer("steps", 10, "Timed steps (after 2 warm-up steps).")
  flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def measure(config, num_steps: int) -> dict:
  batch_size = config.train.batch_size
  tasks, model, tx, state, batch, rng = harness.model_and_batch(config, batch_size)
  def lower(tasks, model, tx, state, batch, rng):
    weights = train_steps.task_weights(config, tasks)
    return jax.jit(train_steps.make_train_step(model, tasks, tx, weights),
                   donate_argnums=(0,)).lower(state, batch, rng)

  start = time.perf_counter()
  lowered = lower(tasks, model, tx, state, batch, rng)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  gflop = harness.math_gflop(config, batch_size, lower, lowered)
  holder = {"state": state}

  def one_step():
    holder["state"], _ = compiled(holder["state"], batch, rng)
    return holder["state"]

  seconds = harness.median_seconds(one_step, num_steps, warmup=2)
  peak = harness.matmul_peak_gflops()
  achieved = gflop / seconds
  return {
      "benchmark": "train_step", **harness.device_fields(), "batch": batch_size,
      **harness.config_fields(config),
      "ms_per_step_median": round(seconds * 1e3, 2),
      "cubes_per_s": round(batch_size / seconds, 2),
      "cubes_per_s_per_device": round(batch_size / seconds / jax.device_count(), 2),
      "compile_s": round(compile_s, 2), "gflop_per_cube": round(gflop / batch_size, 3),
      "achieved_gflop_s": round(achieved, 2), "matmul_peak_gflop_s": round(peak, 1),
      "share_of_matmul_peak": round(achieved / peak, 3), "steps_timed": num_steps,
      **harness.memory_fields(compiled),
  }


def main(argv):
  del argv
  harness.report(measure(FLAGS.config, FLAGS.steps), sys.argv, FLAGS.record)


if __name__ == "__main__":
  define_flags()
  app.run(main)
