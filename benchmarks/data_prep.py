"""Data-prep throughput (frames/s) with the default, offline backends on 360x640 video.

  python benchmarks/data_prep.py [--height=360 --width=640 --frames=150 --videos=4] [--record]

Generates synthetic walkway videos of that size (not timed), then times the prep stage of
configs/demo.py on them end to end: frame reading, median background subtraction, connected
components, cube cutting and resizing, TFRecord writing; every frame of every video, both
splits. Prints one JSON line: frames/s over all videos, the median over 3 runs.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags

import harness
from configs import demo
from data_prep import prepare
from data_prep import synthetic

_HEIGHT = flags.DEFINE_integer("height", 360, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 640, "Frame width.")
_FRAMES = flags.DEFINE_integer("frames", 150, "Frames per video.")
_VIDEOS = flags.DEFINE_integer("videos", 4, "Videos (half training, half test).")
_RUNS = flags.DEFINE_integer("runs", 3, "Timed runs (median reported).")
_WORKERS = flags.DEFINE_integer("workers", -1, "prep.num_workers (-1: the config's default).")
_RECORD = flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def main(argv):
  del argv
  root = tempfile.mkdtemp(prefix="bench_prep_")
  half = max(1, _VIDEOS.value // 2)
  synthetic.generate_dataset(os.path.join(root, "data"), num_train=half, num_test=half,
                             num_frames=_FRAMES.value, height=_HEIGHT.value, width=_WIDTH.value)
  config = demo.get_config()
  config.data.root = os.path.join(root, "data")
  config.prep.train_frame_stride = 1
  config.prep.test_frame_stride = 1
  if _WORKERS.value >= 0:
    config.prep.num_workers = _WORKERS.value
  frames = 2 * half * _FRAMES.value
  times, cubes = [], 0
  for run in range(_RUNS.value):
    out = os.path.join(root, f"records_{run}")
    start = time.perf_counter()
    manifest = prepare.prepare(config, out)
    times.append(time.perf_counter() - start)
    cubes = sum(s["num_records"] for s in manifest["splits"].values())
    shutil.rmtree(out)
  seconds = statistics.median(times)
  harness.report({"benchmark": "data_prep", **harness.device_fields(),
                  "frame_hw": [_HEIGHT.value, _WIDTH.value], "frames": frames, "cubes": cubes,
                  "detector": config.prep.detector,
                  "num_workers": config.prep.get("num_workers", 0),
                  "seconds_median": round(seconds, 2), "fps": round(frames / seconds, 1),
                  "runs": _RUNS.value}, sys.argv, _RECORD.value)
  shutil.rmtree(root)


if __name__ == "__main__":
  app.run(main)
