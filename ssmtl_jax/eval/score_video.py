"""`--mode=score`: anomaly scores for any video with a trained model, no records needed.

  python -m ssmtl_jax.main --config=configs/demo.py --mode=score --video=clip.avi \
      --checkpoint=runs/demo --workdir=runs/demo_score

Frames -> the config's detector -> cubes in memory -> the best checkpoint of `--checkpoint` ->
object and frame scores (with `eval.stream_chunk_frames > 0`, detection of the next chunk of frames
overlaps scoring of the current one: streaming.py), written like the test videos of an
evaluation: score plot, frame scores, region file, overlay video and a JSON summary. Task scores
are standardised with the normal-data statistics that evaluation stored in
`<checkpoint>/metrics.json`, so scores compare across videos.
"""

import json
import os
import pathlib
from typing import Any

import jax
import numpy as np

from data_prep import atomic_write
from data_prep import detect
from data_prep import readers
from data_prep import teachers as teachers_lib
from ssmtl_jax import backend
from ssmtl_jax import model_setup
from ssmtl_jax import sharding
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import score_steps
from ssmtl_jax.eval import streaming
from ssmtl_jax.train import checkpoint


def load_score_stats(checkpoint_dir: str, transform: str = "none"
                     ) -> dict[str, tuple[float, float]] | None:
  """Normal-data statistics of each task score saved by `--mode=eval`, or None if absent.

  Raises:
    ValueError: they were computed on another scale than `transform` (eval.score_transform).
  """
  path = os.path.join(checkpoint_dir, "metrics.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  raw = saved.get("score_stats")
  saved_transform = saved.get("score_transform", "none")
  if raw and saved_transform != transform:
    raise ValueError(f"{path}: its score_stats are on the {saved_transform!r} scale but "
                     f"eval.score_transform={transform!r}; run --mode=eval with this config once")
  try:
    return evaluate.parse_score_stats(raw)
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f"{path}: {e}") from e


class VideoScorer:
  """What scoring raw video needs besides a checkpoint: the detector, the teachers, the tasks
  (sized by the teachers' outputs), the model and its compiled score step on the mesh."""

  def __init__(self, config, memory: appearance_memory.AppearanceMemory | None = None):
    self.config = config
    self.memory = memory
    self.channels = 1 if config.data.grayscale else 3
    self.detector = detect.build_detector(config.prep.detector,
                                          **config.prep.detector_options.to_dict())
    # Tasks that learn from a teacher (T4, T7, T9) compare with its outputs at test time too.
    self.teachers = teachers_lib.build_teachers(config.prep.teachers.to_dict(),
                                                tasks_lib.needing_teacher(config.tasks),
                                                config.prep.teacher_input_size,
                                                backend.teacher_depthwise())
    shapes = teachers_lib.target_shapes(self.teachers, config.prep.crop_size, self.channels)
    self.tasks = model_setup.attach_teacher_shapes(model_setup.build_tasks(config), {"teachers": {
        name: {"shape": shape} for name, shape in shapes.items()}}, "this video")
    self.model = model_setup.build_model(config, self.tasks, self.channels)
    self.mesh = sharding.make_mesh()
    self.batch_size = sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
    self.score_step = jax.jit(score_steps.make_score_step(self.model, self.tasks),
                              out_shardings=sharding.replicated(self.mesh))

  def abstract_state(self):
    window = (2 * self.config.prep.half_window + 1, self.config.prep.crop_size,
              self.config.prep.crop_size, self.channels)
    return model_setup.abstract_train_state(self.config, self.model, self.tasks,
                                            model_setup.batch_shapes(window, self.tasks),
                                            self.mesh)

  def task_scores(self, variables, frames: np.ndarray, chunk_frames: int = 0, desc="score"
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per-task scores of every object cube of `frames`: (scores, centre frames, boxes).

    With `chunk_frames > 0`, detection and cube cutting of the next chunk run on a host thread
    while the device scores the current batch (streaming.py)."""
    chunks = streaming.cube_chunks(self.config, frames, self.detector, chunk_frames,
                                   self.teachers, self.memory)
    batches = streaming.fixed_batches(chunks, self.batch_size)
    if chunk_frames > 0:
      batches = streaming.in_background(batches)
    empty = {"centre": np.zeros(0, np.int64), "box": np.zeros((0, 4), np.float32)}
    scores, side = evaluate.score_batches(self.score_step, variables, batches, None, self.mesh,
                                          jax.random.PRNGKey(self.config.seed + 3), desc, empty)
    if self.memory is not None and len(side["box"]):
      scores[appearance_memory.NAME] = side[appearance_memory.NAME]
    return scores, side["centre"], side["box"]


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
  memory = None
  if config.eval.appearance_memory:
    path = os.path.join(checkpoint_dir, appearance_memory.MEMORY_FILE)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"eval.appearance_memory is on but {path} does not exist: run "
                              f"--mode=eval in {checkpoint_dir} once (it saves the memory)")
    memory = appearance_memory.AppearanceMemory.load(path)
  scorer = VideoScorer(config, memory)
  state, step = checkpoint.restore_best(checkpoint_dir, scorer.abstract_state())
  stats = load_score_stats(checkpoint_dir, config.eval.score_transform)
  if stats is None:
    print(f"no score statistics in {checkpoint_dir}/metrics.json (run --mode=eval there once); "
          "task scores are averaged unstandardised", flush=True)
  task_scores, centre, boxes = scorer.task_scores(state.variables, frames,
                                                  config.eval.stream_chunk_frames)
  print(f"{video}: {len(frames)} frames, {len(boxes)} objects at every {stride}. frame", flush=True)
  weights = evaluate.fusion_weights(task_scores, config.eval)
  object_scores = (evaluate.combine_scores(task_scores, stats, weights,
                                           config.eval.score_transform, config.eval.clip_z)
                   if len(boxes)
                   else np.zeros(0, np.float64))
  frame_scores = evaluate.video_frame_scores(len(frames), stride, centre, object_scores, boxes,
                                             frames.shape[1:3], config.eval, config.eval.minmax)
  os.makedirs(out_dir, exist_ok=True)
  evaluate.write_video_outputs(out_dir, name, frame_scores, None, centre, boxes, object_scores,
                               f"{name} (checkpoint step {step})", frames=frames, stride=stride,
                               fps=config.eval.overlay_fps)
  summary = {"video": os.path.abspath(video), "checkpoint": os.path.abspath(checkpoint_dir),
             "checkpoint_step": int(step), "num_frames": len(frames),
             "num_objects": int(len(boxes)), "standardized": stats is not None,
             "max_frame_score": float(np.max(frame_scores)) if len(frame_scores) else None,
             "outputs": os.path.abspath(out_dir)}
  atomic_write.write_json(os.path.join(out_dir, f"score_{name}.json"), summary, indent=1)
  return summary
