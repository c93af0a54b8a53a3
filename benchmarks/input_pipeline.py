"""Input-pipeline throughput: the grain training pipeline over real cube records, against the
train step of the same config measured in the same run.

  python benchmarks/input_pipeline.py --config=configs/ped2_cpu.py \
      --records_dir=runs/ped2/records [--workers=0,2] [--record]

Without --records_dir the config's data is prepared into a temporary folder first (use
configs/demo.py for a run that needs no download). Prints one JSON line: cubes/s of the pipeline
for each worker count (median over timed windows of batches, after warm-up), the train step's
cubes/s and the ratio (the issue's bar: >= 10x).
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags
from ml_collections import config_flags

import harness
import train_step
from data_prep import records
from ssmtl_jax import workflow
from ssmtl_jax.data import input_pipeline

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a script, so other benchmarks can import `pipeline_cubes_per_s`."""
  config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
  flags.DEFINE_string("records_dir", "", "Prepared records; default: prepare into tmp.")
  flags.DEFINE_list("workers", ["0", "2"], "grain worker processes to measure.")
  flags.DEFINE_integer("batches", 20, "Batches per timed window.")
  flags.DEFINE_integer("windows", 3, "Timed windows (median reported).")
  flags.DEFINE_integer("steps", 3, "Timed train steps for the comparison (0: skip).")
  flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def pipeline_cubes_per_s(records_dir, batch_size, workers, num_batches, windows) -> float:
  manifest = records.read_manifest(records_dir)
  videos = list(range(len(manifest["splits"]["training"]["videos"])))
  it = iter(input_pipeline.train_dataset(records_dir, videos, batch_size, seed=0,
                                         num_workers=workers))
  for _ in range(max(2, workers * 2)):  # warm-up: start workers, fill their buffers
    next(it)
  rates = []
  for _ in range(windows):
    start = time.perf_counter()
    for _ in range(num_batches):
      next(it)
    rates.append(num_batches * batch_size / (time.perf_counter() - start))
  return sorted(rates)[len(rates) // 2]


def main(argv):
  del argv
  config = FLAGS.config
  records_dir = FLAGS.records_dir
  if not records_dir:
    workdir = tempfile.mkdtemp(prefix="bench_input_")
    config = config.copy_and_resolve_references()
    workflow.run(config, workdir, "prep")
    records_dir = os.path.join(workdir, "records")
  batch = config.train.batch_size
  result = {"benchmark": "input_pipeline", **harness.device_fields(), "batch": batch,
            "crop": config.prep.crop_size, "records_dir": os.path.abspath(records_dir)}
  for w in map(int, FLAGS.workers):
    result[f"cubes_per_s_workers_{w}"] = round(
        pipeline_cubes_per_s(records_dir, batch, w, FLAGS.batches, FLAGS.windows), 1)
  if FLAGS.steps > 0:
    step = train_step.measure(config, FLAGS.steps)["cubes_per_s"]
    result["train_step_cubes_per_s"] = step
    best = max(v for k, v in result.items() if k.startswith("cubes_per_s_workers_"))
    result["pipeline_over_train_step"] = round(best / step, 1)
  harness.report(result, sys.argv, FLAGS.record)


if __name__ == "__main__":
  define_flags()
  app.run(main)
