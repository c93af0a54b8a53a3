"""Data-prep throughput (frames/s) with the default, offline backends on 360x640 video.

  python benchmarks/data_prep.py [--config=configs/demo.py --height=360 --width=640 --frames=150
      --videos=4 --detector=flow] [--record]

Generates synthetic walkway videos of that size (not timed), then times the prep stage of
configs/demo.py on them end to end: frame reading, median background subtraction, connected
components, cube cutting and resizing, TFRecord writing; every frame of every video, both
splits, in one process (OpenCV's own thread pool uses the cores). Prints one JSON line: frames/s
over all videos, the median over 3 runs.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

from absl import app
import cv2
from absl import flags
from ml_collections import config_flags

import harness
from data_prep import prepare
from data_prep import synthetic
from ssmtl_jax import backend
from ssmtl_jax import tasks as tasks_lib

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py",
                                          "Prep settings (run from the repository root).")
_HEIGHT = flags.DEFINE_integer("height", 360, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 640, "Frame width.")
_FRAMES = flags.DEFINE_integer("frames", 150, "Frames per video.")
_VIDEOS = flags.DEFINE_integer("videos", 4, "Videos (half training, half test).")
_DETECTOR = flags.DEFINE_string("detector", "", "background | flow: another motion detector with "
                                "its default options (the config's min_area kept).")
_RUNS = flags.DEFINE_integer("runs", 3, "Timed runs (median reported).")
_RECORD = flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def main(argv):
  del argv
  root = tempfile.mkdtemp(prefix="bench_prep_")
  half = max(1, _VIDEOS.value // 2)
  synthetic.generate_dataset(os.path.join(root, "data"), num_train=half, num_test=half,
                             num_frames=_FRAMES.value, height=_HEIGHT.value, width=_WIDTH.value)
  config = _CONFIG.value.copy_and_resolve_references()
  config.data.root = os.path.join(root, "data")
  config.prep.train_frame_stride = 1
  config.prep.test_frame_stride = 1
  harness.use_detector(config, _DETECTOR.value)
  frames = 2 * half * _FRAMES.value
  times, cubes = [], 0
  for run in range(_RUNS.value):
    out = os.path.join(root, f"records_{run}")
    start = time.perf_counter()
    manifest = prepare.prepare(config, out, teacher_tasks=tasks_lib.needing_teacher(config.tasks),
                               depthwise=backend.teacher_depthwise())
    times.append(time.perf_counter() - start)
    cubes = sum(s["num_records"] for s in manifest["splits"].values())
    shutil.rmtree(out)
  seconds = statistics.median(times)
  harness.report({"benchmark": "data_prep", **harness.device_fields(),
                  "frame_hw": [_HEIGHT.value, _WIDTH.value], "frames": frames, "cubes": cubes,
                  "detector": config.prep.detector,
                  "cv2_threads": cv2.getNumThreads(),
                  "seconds_median": round(seconds, 2), "fps": round(frames / seconds, 1),
                  "runs": _RUNS.value}, sys.argv, _RECORD.value)
  shutil.rmtree(root)


if __name__ == "__main__":
  app.run(main)
