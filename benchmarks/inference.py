"""Inference (scoring) throughput of a config on random windows: the real jitted score step.

  python benchmarks/inference.py --config=configs/ped2_v2.py --batch=16 --steps=5 [--record]

The score step is what evaluation and `--mode=score` run: every scored task's test view, views
shared where tasks allow (T1 / T2 / T4 read the same forward cube), T6's chained inpainting
passes inside the same compiled function. Prints one JSON line like train_step.py.
"""

from ssmtl_jax.eval import score_steps
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
  flags.DEFINE_integer("batch", 16, "Cubes per call.")
  flags.DEFINE_integer("steps", 5, "Timed calls (after 1 warm-up call).")
  flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def measure(config, batch_size: int, num_steps: int) -> dict:
  tasks, model, _, state, batch, rng = harness.model_and_batch(config, batch_size)
  def lower(tasks, model, tx, state, batch, rng):
    del tx
    return jax.jit(score_steps.make_score_step(model, tasks)).lower(state.variables, batch, rng)

  variables = state.variables
  start = time.perf_counter()
  lowered = lower(tasks, model, None, state, batch, rng)
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  gflop = harness.math_gflop(config, batch_size, lower, lowered)
  seconds = harness.median_seconds(lambda: compiled(variables, batch, rng), num_steps)
  peak = harness.matmul_peak_gflops()
  achieved = gflop / seconds
  return {
      "benchmark": "inference", **harness.device_fields(), "batch": batch_size,
      **harness.config_fields(config),
      "ms_per_batch_median": round(seconds * 1e3, 2),
      "cubes_per_s": round(batch_size / seconds, 2),
      "cubes_per_s_per_device": round(batch_size / seconds / jax.device_count(), 2),
      "ms_per_cube": round(seconds * 1e3 / batch_size, 2),
      "compile_s": round(compile_s, 2), "gflop_per_cube": round(gflop / batch_size, 3),
      "achieved_gflop_s": round(achieved, 2), "matmul_peak_gflop_s": round(peak, 1),
      "share_of_matmul_peak": round(achieved / peak, 3), "calls_timed": num_steps,
      **harness.memory_fields(compiled),
  }


def main(argv):
  del argv
  harness.report(measure(FLAGS.config, FLAGS.batch, FLAGS.steps), sys.argv, FLAGS.record)


if __name__ == "__main__":
  define_flags()
  app.run(main)
