"""Evaluation: best checkpoint -> task scores per test object -> frame scores -> AUC, plots."""

import os
from typing import Any

import jax
import numpy as np
import tqdm

from data_prep import atomic_write
from data_prep import prepare as prepare_lib
from data_prep import readers
from ssmtl_jax import model_setup
from ssmtl_jax import sharding
from ssmtl_jax.data import cube_source
from ssmtl_jax.data import input_pipeline
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import metrics
from ssmtl_jax.eval import overlay
from ssmtl_jax.eval import plots
from ssmtl_jax.eval import region_metrics
from ssmtl_jax.eval import reports
from ssmtl_jax.eval import score_steps
from ssmtl_jax.tasks import base as tasks_lib_base
from ssmtl_jax.train import checkpoint

# Per-task scores of the normal reference objects (`eval/<this>`), beside `object_scores.npz`.
REFERENCE_SCORES_FILE = "reference_scores.npz"


def score_batches(score_step, variables, batches, total: int | None, mesh, rng, desc: str,
                  empty_side=None) -> tuple[dict[str, np.ndarray], Any]:
  """Per-task anomaly scores of the valid rows of `(batch, valid, side)` batches, and the valid
  rows of `side` (the boxes, or any dict of per-row arrays), concatenated; `empty_side` when
  there are no batches."""
  per_task: dict[str, list[np.ndarray]] = {}
  sides = []
  for batch, valid, side in tqdm.tqdm(batches, total=total, desc=desc, unit="batch"):
    out = jax.device_get(score_step(variables, sharding.to_global(batch, mesh), rng))
    for name, s in out.items():
      per_task.setdefault(name, []).append(np.asarray(s)[valid])
    sides.append(jax.tree.map(lambda a, v=valid: a[v], side))
  if not sides:
    return {}, empty_side
  return ({k: np.concatenate(v) for k, v in per_task.items()},
          jax.tree.map(lambda *rows: np.concatenate(rows), *sides))


def score_source(score_step, variables, source, batch_size: int, mesh, rng,
                 desc: str, teacher_keys=()) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Per-task anomaly scores for every record of `source`, in record order, and the boxes."""
  batches = ((w, v, b) for w, v, _, b in
             input_pipeline.eval_batches(source, batch_size, with_boxes=True,
                                         teacher_keys=teacher_keys))
  return score_batches(score_step, variables, batches, -(-len(source) // batch_size), mesh, rng,
                       desc, np.zeros((0, 4), np.float32))


def write_video_outputs(out_dir: str, name: str, frame_scores: np.ndarray, labels,
                        region_frames: np.ndarray, boxes: np.ndarray, object_scores: np.ndarray,
                        title: str, frames: np.ndarray | None = None, stride: int = 1,
                        fps: float = 10.0, score_range=None) -> None:
  """Everything one video gets: score plot, frame scores, region file and (with frames) an
  overlay video. With a prep stride > 1 the overlay keeps each scored frame's boxes on screen
  until the next scored frame."""
  atomic_write.save_npy(os.path.join(out_dir, f"frame_scores_{name}.npy"), frame_scores)
  plots.plot_video_scores(os.path.join(out_dir, f"scores_{name}.png"), frame_scores, labels, title)
  reports.write_region_file(os.path.join(out_dir, "regions", f"{name}.csv"), region_frames, boxes,
                            object_scores)
  if frames is None:
    return
  if stride > 1:
    shift = np.arange(stride)
    region_frames = (region_frames[:, None] + shift).reshape(-1)
    boxes, object_scores = np.repeat(boxes, stride, axis=0), np.repeat(object_scores, stride)
    keep = region_frames < len(frames)
    region_frames, boxes, object_scores = region_frames[keep], boxes[keep], object_scores[keep]
  overlay.write_overlay_video(os.path.join(out_dir, "overlays", f"{name}.mp4"), frames,
                              frame_scores, region_frames, boxes, object_scores, labels, fps=fps,
                              score_range=score_range)


SCORE_TRANSFORMS = ("none", "log")


def transform_scores(scores: np.ndarray, transform: str) -> np.ndarray:
  """A task's scores on the scale they are standardised on: as they are (`none`), or their
  logarithm (`log`: every task score is >= 0, an error, a probability or a distance, and an
  error's spread grows with its size, so on a log scale a factor counts the same everywhere)."""
  s = np.asarray(scores, np.float64)
  if transform == "none":
    return s
  if transform == "log":
    return np.log(np.maximum(s, 1e-12))
  raise ValueError(f"eval.score_transform={transform!r}: one of {', '.join(SCORE_TRANSFORMS)}")


def reference_stats(reference: dict[str, np.ndarray], transform: str = "none"
                    ) -> dict[str, tuple[float, float]]:
  """Task -> (mean, std) of its normal reference objects' scores, on the transformed scale:
  the statistics `combine_scores` standardises with."""
  out = {}
  for name, scores in reference.items():
    t = transform_scores(scores, transform)
    out[name] = (float(t.mean()), float(t.std()))
  return out


def combine_scores(task_scores: dict[str, np.ndarray], stats: dict[str, tuple[float, float]] | None,
                   weights: dict[str, float] | None = None, transform: str = "none",
                   clip: float = 0.0) -> np.ndarray:
  """Object score = weighted mean over tasks (equal weights unless `weights` says otherwise),
  each standardised with normal-data statistics so a probability and a reconstruction error
  weigh alike (DESIGN §5); unstandardised when stats is None.

  `transform` is the scale `stats` were computed on (`reference_stats`); `clip` > 0 bounds each
  standardised score to [-clip, clip], so a task whose reference objects spread less than the
  test video's normal objects cannot outvote the others by itself."""
  parts, total = [], 0.0
  for name in sorted(task_scores):
    s = task_scores[name].astype(np.float64)
    if stats is not None:
      mean, std = stats[name]
      s = (transform_scores(s, transform) - mean) / max(std, 1e-8)
      if clip > 0:
        s = np.clip(s, -clip, clip)
    w = 1.0 if weights is None else float(weights[name])
    parts.append(w * s)
    total += w
  return np.sum(parts, axis=0) / total


def score_stats_json(stats: dict[str, tuple[float, float]] | None
                     ) -> dict[str, dict[str, float]] | None:
  """metrics.json's `score_stats`: task -> `{"mean": m, "std": s}` of its scores on normal
  data, the statistics `combine_scores` standardises with."""
  if stats is None:
    return None
  return {name: {"mean": float(mean), "std": float(std)} for name, (mean, std) in stats.items()}


def parse_score_stats(raw) -> dict[str, tuple[float, float]] | None:
  """Task -> (mean, std) from metrics.json's `score_stats`: `{"mean": m, "std": s}` per task,
  or the bare `[mean, std]` pair that earlier evaluations stored; None when absent or empty."""
  if not raw:
    return None
  stats = {}
  for name, value in raw.items():
    if isinstance(value, dict):
      stats[name] = (float(value["mean"]), float(value["std"]))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
      stats[name] = (float(value[0]), float(value[1]))
    else:
      raise ValueError(f"score_stats[{name!r}]: expected {{\"mean\": m, \"std\": s}} or "
                       f"[mean, std], got {value!r}")
  return stats


REFERENCES = ("held_out", "all_training")


def reference_videos(train_videos, val_videos, reference: str) -> list[int]:
  """The training-split videos whose objects standardise the task scores (`eval.reference`)."""
  if reference == "held_out":
    return list(val_videos or train_videos)
  if reference == "all_training":
    return sorted([*train_videos, *val_videos])
  raise ValueError(f"eval.reference={reference!r}: one of {', '.join(REFERENCES)}")


def check_config(ec) -> None:
  """Raises ValueError for eval settings out of range, before any work starts."""
  if ec.appearance_memory < 0:
    raise ValueError(f"eval.appearance_memory={ec.appearance_memory}: the k of the k-nearest "
                     "neighbour distance (>= 1), or 0 for off")
  score_weights(["task", appearance_memory.NAME], ec.appearance_memory_weight)
  if ec.score_transform not in SCORE_TRANSFORMS:
    raise ValueError(f"eval.score_transform={ec.score_transform!r}: one of "
                     f"{', '.join(SCORE_TRANSFORMS)}")
  if ec.reference not in REFERENCES:
    raise ValueError(f"eval.reference={ec.reference!r}: one of {', '.join(REFERENCES)}")
  if ec.clip_z < 0:
    raise ValueError(f"eval.clip_z={ec.clip_z}: a bound >= 0 on each standardised task score "
                     "(0 = no bound)")


def score_weights(names, memory_weight: float, unscored=()) -> dict[str, float] | None:
  """Weights of `combine_scores`: the appearance memory (when among `names`) gets the share
  `memory_weight` of the object score and the tasks share the rest equally; a negative
  `memory_weight` (or no memory) gives every score an equal share (None). Scores named in
  `unscored` get weight 0: they are computed and reported alone, but stay out of the object
  score. No names (a video without objects) means nothing to weigh: None."""
  names, unscored = list(names), tuple(unscored)
  if not names:
    return None
  unknown = [n for n in unscored if n not in names]
  if unknown:
    raise ValueError(f"eval.unscored_tasks names {unknown}, which this run does not score; "
                     f"its scores: {names}")
  scored = [n for n in names if n not in unscored]
  if not scored:
    raise ValueError(f"eval.unscored_tasks={list(unscored)} leaves no score to combine: keep at "
                     f"least one of {names}")
  if memory_weight > 1.0:
    raise ValueError(f"eval.appearance_memory_weight={memory_weight}: a share in [0, 1], or -1 "
                     "for an equal share with each task")
  if appearance_memory.NAME not in scored or memory_weight < 0 or len(scored) == 1:
    weights = {n: 1.0 for n in scored}
  else:
    tasks = [n for n in scored if n != appearance_memory.NAME]
    weights = {**{n: (1.0 - memory_weight) / len(tasks) for n in tasks},
               appearance_memory.NAME: memory_weight}
  if not unscored and all(w == 1.0 for w in weights.values()):
    return None
  return {**weights, **{n: 0.0 for n in unscored}}


def fusion_weights(names, ec) -> dict[str, float] | None:
  """`score_weights` with the eval config's memory share and unscored tasks: the one place the
  object score's weights are decided, for evaluation, `--mode=score` and the benchmarks."""
  return score_weights(names, ec.appearance_memory_weight, ec.unscored_tasks)


def video_frame_scores(num_frames: int, stride: int, frames: np.ndarray, scores: np.ndarray,
                       boxes: np.ndarray, frame_shape, ec, minmax: bool) -> np.ndarray:
  """Frame scores of one video; with a prep stride > 1, the scored frames are interpolated."""
  mean_filter = tuple(ec.mean_filter) if ec.mean_filter else None
  sampled = np.arange(0, num_frames, stride)
  fs = metrics.frame_scores_from_objects(num_frames, frames, scores, boxes=boxes,
                                         frame_shape=tuple(frame_shape), mean_filter=mean_filter)
  if stride > 1:
    fs = np.interp(np.arange(num_frames), sampled, fs[sampled])
  return metrics.postprocess(fs, ec.sigma, minmax)


def split_frame_scores(entry, video_ids: np.ndarray, frames: np.ndarray, boxes: np.ndarray,
                       object_scores: np.ndarray, ec, minmax: bool) -> dict[str, np.ndarray]:
  """Video name -> frame scores, for every video of a manifest split `entry`, from the objects'
  video ids, centre frames, boxes and scores."""
  result = {}
  for vid, (name, n) in enumerate(zip(entry["videos"], entry["frame_counts"])):
    sel = video_ids == vid
    result[name] = video_frame_scores(n, entry.get("frame_stride", 1), frames[sel],
                                      object_scores[sel], boxes[sel], entry["frame_shapes"][vid],
                                      ec, minmax)
  return result


def evaluate(config, workdir: str) -> dict[str, Any]:
  """Scores the test cubes with the best checkpoint and writes metrics.json and plots."""
  setup = model_setup.ModelSetup(config, workdir)
  ec = config.eval
  sharding.check_batch_size(ec.batch_size, "eval.batch_size")
  state, step = checkpoint.restore_best(workdir, setup.abstract_state())
  variables = state.variables
  score_step = jax.jit(score_steps.make_score_step(setup.model, setup.tasks),
                       out_shardings=sharding.replicated(setup.mesh))
  rng = jax.random.PRNGKey(config.seed + 3)
  ref_scores = {}
  if ec.standardize:
    # Normal-data statistics of each task score: held-out videos when there are some.
    ref_ids = reference_videos(setup.train_videos, setup.val_videos, ec.reference)
    ref = cube_source.CubeSource(setup.records_dir, "training", videos=ref_ids)
    ref_scores, _ = score_source(score_step, variables, ref, ec.batch_size, setup.mesh, rng,
                                 "score normal", setup.teacher_keys)
  test = cube_source.CubeSource(setup.records_dir, "testing")
  task_scores, boxes = score_source(score_step, variables, test, ec.batch_size, setup.mesh, rng,
                                    "score test", setup.teacher_keys)
  if ec.appearance_memory:
    memory_scores, memory_reference = score_appearance(setup.records_dir, test,
                                                       ec.appearance_memory, workdir)
    task_scores[appearance_memory.NAME] = memory_scores
    if ec.standardize:
      ref_scores[appearance_memory.NAME] = memory_reference
  stats = reference_stats(ref_scores, ec.score_transform) if ec.standardize else None
  meta = test.metadata()
  entry = setup.manifest["splits"]["testing"]
  truth = prepare_lib.ground_truth(config, setup.manifest)
  labels = truth.frame_labels
  object_scores = combine_scores(task_scores, stats, fusion_weights(task_scores, ec),
                                 ec.score_transform, ec.clip_z)
  out_dir = os.path.join(workdir, "eval")
  os.makedirs(out_dir, exist_ok=True)

  def frame_scores_for(obj_scores, minmax=ec.minmax):
    return split_frame_scores(entry, meta["video_id"], meta["frame"], boxes, obj_scores, ec,
                              minmax)

  # Per-video min-max rescales each video by its own (future) score range: common in the
  # field, impossible online, and it ranks a wholly abnormal video's calmest frames lowest.
  # Micro AUC is reported both ways; the configured one is the headline.
  by_minmax = {m: frame_scores_for(object_scores, m) for m in (False, True)}
  frame_scores = by_minmax[bool(ec.minmax)]
  result = metrics.evaluate_frames(labels, frame_scores)
  # Each task alone, for diagnosis and ablations (same post-processing).
  result["per_task_micro_auc"] = {
      name: metrics.micro_auc(labels, frame_scores_for(
          combine_scores({name: s}, None if stats is None else {name: stats[name]},
                         transform=ec.score_transform)))
      for name, s in task_scores.items()}
  result["micro_auc_per_video_minmax"] = metrics.micro_auc(labels, by_minmax[True])
  result["micro_auc_no_minmax"] = metrics.micro_auc(labels, by_minmax[False])
  result["unscored_tasks"] = list(ec.unscored_tasks)
  result.update(checkpoint_step=int(step), num_test_cubes=len(test),
                score_stats=score_stats_json(stats), score_transform=ec.score_transform)
  atomic_write.save_npz(os.path.join(out_dir, "object_scores.npz"), video_id=meta["video_id"],
                        frame=meta["frame"], box=boxes, object_score=object_scores,
                        **{f"task_{k}": v for k, v in task_scores.items()})
  if ref_scores:
    # The normal objects behind `score_stats`, so the scores can be re-combined offline.
    atomic_write.save_npz(os.path.join(out_dir, REFERENCE_SCORES_FILE),
                          **{f"task_{k}": v for k, v in ref_scores.items()})
  if truth.tracks is not None:
    predictions = {name: np.column_stack([meta["frame"][meta["video_id"] == vid],
                                          boxes[meta["video_id"] == vid],
                                          object_scores[meta["video_id"] == vid]])
                   for vid, name in enumerate(entry["videos"])}
    counts = dict(zip(entry["videos"], entry["frame_counts"]))
    result.update(region_metrics.rbdc_tbdc(predictions, truth.tracks, counts))
  write_all_video_outputs(config, entry, meta, boxes, object_scores, frame_scores, labels, out_dir)
  plots.plot_auc_summary(os.path.join(out_dir, "per_video_auc.png"), result["per_video_auc"])
  reports.write_summary(os.path.join(workdir, "summary.md"), result,
                        f"{config.data.name}: frame-level evaluation (checkpoint step {step})")
  atomic_write.write_json(os.path.join(workdir, "metrics.json"), result, indent=1)
  return result


def score_appearance(records_dir: str, test, k: int, workdir: str
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Appearance-memory scores of the test objects, and the training objects' scores (each
  against the other training videos) that standardise them. Saves the memory to
  `<workdir>/appearance_memory.npz` for `--mode=score`."""
  key = tasks_lib_base.features_key(appearance_memory.TEACHER)
  train = cube_source.CubeSource(records_dir, "training")
  memory = appearance_memory.AppearanceMemory(appearance_memory.read_features(train, key),
                                              train.metadata()["video_id"], k)
  memory.save(os.path.join(workdir, appearance_memory.MEMORY_FILE))
  reference = memory.reference_scores()
  scores = memory.score(appearance_memory.read_features(test, key))
  return scores, reference


def write_all_video_outputs(config, entry, meta, boxes, object_scores, frame_scores, labels,
                            out_dir: str) -> None:
  """Plots, frame scores and region files for every test video, overlays for the first
  `eval.overlay_videos` of them (-1: all), read back from the data set's frames."""
  ec = config.eval
  limit = len(entry["videos"]) if ec.overlay_videos < 0 else ec.overlay_videos
  paths = readers.list_split_videos(config.data.root, "testing") if limit else {}
  # One colour scale for every video, so a red box means the same in all of them.
  score_range = ((float(np.percentile(object_scores, 1)), float(np.percentile(object_scores, 99)))
                 if len(object_scores) else None)
  videos = entry["videos"]
  for vid, name in enumerate(tqdm.tqdm(videos, desc="write outputs", unit="video")):
    sel = meta["video_id"] == vid
    frames = (readers.read_video(paths[name], grayscale=config.data.grayscale)
              if vid < limit and name in paths else None)
    write_video_outputs(out_dir, name, frame_scores[name], labels[name], meta["frame"][sel],
                        boxes[sel], object_scores[sel], f"{config.data.name} test video {name}",
                        frames=frames, stride=entry.get("frame_stride", 1), fps=ec.overlay_fps,
                        score_range=score_range)
