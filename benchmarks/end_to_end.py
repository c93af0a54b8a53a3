"""End-to-end scoring throughput (frames/s): video frames -> detection -> cubes -> model scores,
serial and streaming (detection on a host thread overlapping the model), in the same run.

  python benchmarks/end_to_end.py --config=configs/ped2_cpu.py [--height=240 --width=360
      --frames=120 --chunk=16 --detector=flow] [--record]

Uses a synthetic walkway video of the given size (generated, not timed) and the config's
detector, tasks and model with freshly initialised weights (throughput does not depend on
them). Timed: everything after the frames are in memory, i.e. what `--mode=score` does before
writing its outputs. Prints one JSON line: frames/s and cubes/s of each mode (median of
--runs), and the share of time the serial path spends in detection + cube cutting.
"""

import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
from ml_collections import config_flags

import jax

import harness
from data_prep import readers
from data_prep import synthetic
from ssmtl_jax import model_setup
from ssmtl_jax.eval import score_video
from ssmtl_jax.eval import streaming

_CONFIG = config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height.")
_WIDTH = flags.DEFINE_integer("width", 360, "Frame width.")
_FRAMES = flags.DEFINE_integer("frames", 120, "Frames of the video.")
_CHUNK = flags.DEFINE_integer("chunk", 16, "Frames per streaming chunk.")
_DETECTOR = flags.DEFINE_string("detector", "", "Override the config's detector (its default "
                                "options, the config's min_area kept).")
_RUNS = flags.DEFINE_integer("runs", 3, "Timed runs per mode (median reported).")
_RECORD = flags.DEFINE_bool("record", False, "Append the result to benchmarks/RESULTS.md.")


def main(argv):
  del argv
  config = _CONFIG.value.copy_and_resolve_references()
  harness.use_detector(config, _DETECTOR.value)
  root = tempfile.mkdtemp(prefix="bench_e2e_")
  synthetic.generate_dataset(root, num_train=1, num_test=1, num_frames=_FRAMES.value,
                             height=_HEIGHT.value, width=_WIDTH.value)
  frames = readers.read_video(next(iter(readers.list_split_videos(root, "testing").values())))
  scorer = score_video.VideoScorer(config)
  p = config.prep
  window = (2 * p.half_window + 1, p.crop_size, p.crop_size, scorer.channels)
  variables = jax.jit(lambda: model_setup.init_variables(
      scorer.model, scorer.tasks, {"window": window}, jax.random.PRNGKey(0)))()
  scorer.task_scores(variables, frames[:2 * p.half_window + 2], 0, "compile")  # warm-up

  def timed(chunk):
    start = time.perf_counter()
    _, centre, _ = scorer.task_scores(variables, frames, chunk, f"chunk {chunk}")
    return time.perf_counter() - start, len(centre)

  def host_only():
    start = time.perf_counter()
    for _ in streaming.fixed_batches(streaming.cube_chunks(config, frames, scorer.detector, 0),
                                     scorer.batch_size):
      pass
    return time.perf_counter() - start

  serial = [timed(0) for _ in range(_RUNS.value)]
  streamed = [timed(_CHUNK.value) for _ in range(_RUNS.value)]
  host = statistics.median(host_only() for _ in range(_RUNS.value))
  s_serial = statistics.median(t for t, _ in serial)
  s_stream = statistics.median(t for t, _ in streamed)
  n = len(frames)
  harness.report({
      "benchmark": "end_to_end", **harness.device_fields(), **harness.config_fields(config),
      "detector": config.prep.detector, "frame_hw": [_HEIGHT.value, _WIDTH.value], "frames": n,
      "frame_stride": int(p.test_frame_stride), "cubes_serial": serial[0][1],
      "cubes_streaming": streamed[0][1], "eval_batch": scorer.batch_size,
      "fps_serial": round(n / s_serial, 2), "fps_streaming": round(n / s_stream, 2),
      "cubes_per_s_serial": round(serial[0][1] / s_serial, 2),
      "streaming_speedup": round(s_serial / s_stream, 3), "chunk_frames": _CHUNK.value,
      "host_share_serial": round(host / s_serial, 3), "runs": _RUNS.value,
  }, sys.argv, _RECORD.value)


if __name__ == "__main__":
  app.run(main)
