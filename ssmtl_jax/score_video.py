"""`--mode=score`: anomaly scores for any video with a trained model, no records needed.

  python -m ssmtl_jax.main --config=configs/demo.py --mode=score --video=clip.avi \
      --checkpoint=runs/demo --workdir=runs/demo_score

Frames -> the config's detector -> cubes in memory -> the best checkpoint of `--checkpoint` ->
object and frame scores, written like the test videos of an evaluation: score plot, frame scores,
region file, overlay video and a JSON summary. Task scores are standardised with the normal-data
statistics that evaluation stored in `<checkpoint>/metrics.json`, so scores compare across videos.
"""

import json
import os
import pathlib
from typing import Any

import jax
import numpy as np

from data_prep import cubes
from data_prep import detect
from data_prep import prepare
from data_prep import readers
from data_prep import teachers as teachers_lib
from ssmtl_jax import checkpoint
from ssmtl_jax import evaluate
from ssmtl_jax import input_pipeline
from ssmtl_jax import sharding
from ssmtl_jax import steps
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax import train as train_lib


def load_score_stats(checkpoint_dir: str) -> dict[str, tuple[float, float]] | None:
  """Normal-data statistics of each task score saved by `--mode=eval`, or None if absent."""
  path = os.path.join(checkpoint_dir, "metrics.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    stats = json.load(f).get("score_stats")
  return {k: (float(v[0]), float(v[1])) for k, v in stats.items()} if stats else None


def video_windows(config, frames: np.ndarray, detections, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Cubes of every detection at every `stride`-th frame: (windows, centre frames, boxes)."""
  p = config.prep
  height, width = frames.shape[1:3]
  windows, centre, boxes = [], [], []
  gray = cubes.to_grayscale(frames) if config.data.grayscale else frames
  for t in range(0, len(frames), stride):
    det_boxes = np.asarray(detections[t].boxes, np.float64).reshape(-1, 4)
    if not len(det_boxes):
      continue
    windows.append(cubes.extract_windows(gray, t, det_boxes, p.half_window, p.crop_size, False))
    centre.append(np.full(len(det_boxes), t, np.int64))
    boxes.append(cubes.crop_boxes(det_boxes, height, width).astype(np.float32))
  channels = 1 if config.data.grayscale else 3
  if not windows:
    shape = (0, 2 * p.half_window + 1, p.crop_size, p.crop_size, channels)
    return np.zeros(shape, np.uint8), np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
  return np.concatenate(windows), np.concatenate(centre), np.concatenate(boxes)


def score_video(config, video: str, checkpoint_dir: str, out_dir: str) -> dict[str, Any]:
  """Scores one video file or frame folder; writes its outputs into `out_dir`.

  Raises:
    FileNotFoundError: the video or the checkpoint does not exist.
    ValueError: the video cannot be decoded.
  """
  if not os.path.isdir(os.path.join(checkpoint_dir, "checkpoints")):
    raise FileNotFoundError(f"--checkpoint={checkpoint_dir} holds no checkpoints/ folder; pass the "
                            "workdir of a training run")
  frames = readers.read_video(video)
  name = pathlib.Path(video).stem or pathlib.Path(video).name
  stride = int(config.prep.test_frame_stride)
  detector = detect.build_detector(config.prep.detector, **config.prep.detector_options.to_dict())
  detections = detector.detect_video(frames)
  windows, centre, boxes = video_windows(config, frames, detections, stride)
  print(f"{video}: {len(frames)} frames, {len(windows)} objects at every {stride}. frame", flush=True)

  channels = 1 if config.data.grayscale else 3
  tasks = steps.build_tasks(config)
  # Tasks that learn from a teacher (T4, T7, T9) compare with its outputs at test time too.
  teachers = teachers_lib.build_teachers(config.prep.teachers.to_dict(),
                                         prepare.needed_teachers(config))
  # float16, as the records store them, so a video scores as its prepared records would.
  targets = {tasks_lib.base.teacher_key(name): t.astype(np.float16) for name, t in
             (teachers_lib.middle_crop_targets(teachers, windows) if len(windows) else {}).items()}
  tasks = train_lib.attach_teacher_shapes(tasks, {"teachers": {
      name: {"shape": t.target_shape(config.prep.crop_size, channels)}
      for name, t in teachers.items()}}, "this video")
  model = steps.build_model(config, tasks, channels)
  mesh = sharding.make_mesh()
  window_shape = (2 * config.prep.half_window + 1, config.prep.crop_size, config.prep.crop_size,
                  channels)
  abstract = jax.eval_shape(lambda: train_lib.init_state(
      config, model, tasks, steps.build_optimizer(config, tasks),
      train_lib.batch_shapes(window_shape, tasks), mesh))
  state, step = checkpoint.restore_best(checkpoint_dir, abstract)
  stats = load_score_stats(checkpoint_dir)
  if stats is None:
    print(f"no score statistics in {checkpoint_dir}/metrics.json (run --mode=eval there once); "
          "task scores are averaged unstandardised", flush=True)

  batch_size = sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
  score_step = jax.jit(steps.make_score_step(model, tasks),
                       out_shardings=sharding.replicated(mesh))

  def batches():
    for start in range(0, len(windows), batch_size):
      rows = slice(start, start + batch_size)
      batch = {tasks_lib.base.WINDOW: windows[rows], **{k: v[rows] for k, v in targets.items()}}
      (batch, b), valid = input_pipeline.pad_batch([batch, boxes[rows]], batch_size)
      yield batch, valid, b

  task_scores, _ = evaluate.score_batches(
      score_step, state.variables, batches(), -(-len(windows) // batch_size), mesh,
      jax.random.PRNGKey(config.seed + 3), "score")
  object_scores = (evaluate.combine_scores(task_scores, stats) if len(windows)
                   else np.zeros(0, np.float64))
  frame_scores = evaluate.video_frame_scores(len(frames), stride, centre, object_scores, boxes,
                                             frames.shape[1:3], config.eval, config.eval.minmax)
  os.makedirs(out_dir, exist_ok=True)
  evaluate.write_video_outputs(out_dir, name, frame_scores, None, centre, boxes, object_scores,
                               f"{name} (checkpoint step {step})", frames=frames, stride=stride,
                               fps=config.eval.overlay_fps)
  summary = {"video": os.path.abspath(video), "checkpoint": os.path.abspath(checkpoint_dir),
             "checkpoint_step": int(step), "num_frames": len(frames),
             "num_objects": int(len(windows)), "standardized": stats is not None,
             "max_frame_score": float(np.max(frame_scores)) if len(frame_scores) else None,
             "outputs": os.path.abspath(out_dir)}
  with open(os.path.join(out_dir, f"score_{name}.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary
