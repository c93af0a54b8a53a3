"""Frame-level scoring and evaluation (DESIGN.md §5-§6), NumPy only.

Pipeline: per-object scores -> `frame_scores_from_objects` -> `postprocess`
(temporal Gaussian smoothing, optional per-video min-max) -> `evaluate_frames`
(micro AUC and macro AUC under both named conventions).

Kept free of JAX, scipy and scikit-learn so evaluation runs anywhere and the
numbers do not depend on library versions; the tests check against sklearn.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

MACRO_CONVENTIONS = ("dummy_frames", "skip_single_class")

# Box maps are rasterised at 1/8 resolution: the mean filter is then ~64x
# cheaper, and an object score spread over a box loses nothing at that scale.
DEFAULT_MAP_DOWNSCALE = 8


def _as_labels(labels, name: str = "labels") -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
  if labels.size and not np.isin(labels, (0, 1)).all():
    raise ValueError(f"{name} must contain only 0/1 (or bools), got values "
                     f"{np.unique(labels)[:10]}")
  return labels.astype(bool)


def _as_scores(scores, name: str = "scores") -> np.ndarray:
  scores = np.asarray(scores, dtype=np.float64)
  if scores.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {scores.shape}")
  if not np.isfinite(scores).all():
    raise ValueError(f"{name} contain {np.sum(~np.isfinite(scores))} "
                     "non-finite values (NaN/inf)")
  return scores


def _average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of `x`, tied values sharing the mean of their ranks."""
  order = np.argsort(x, kind="mergesort")
  sorted_x = x[order]
  # Start index of every run of equal values in the sorted array.
  starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
  ends = np.r_[starts[1:], x.size]
  run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
  ranks = np.empty(x.size, dtype=np.float64)
  ranks[order] = np.repeat(run_rank, ends - starts)
  return ranks


def roc_auc(labels, scores) -> float:
  """Exact area under the ROC curve, higher score = more anomalous.

  Computed as the Mann-Whitney U statistic with average ranks, which equals
  the trapezoidal area of the ROC curve: a tied (positive, negative) pair
  counts 1/2.

  Args:
    labels: [N] 0/1 or bool, 1 = abnormal.
    scores: [N] finite floats.

  Returns:
    AUC in [0, 1].

  Raises:
    ValueError: lengths differ, scores are non-finite, labels are not
      binary, or only one class is present.
  """
  labels = _as_labels(labels)
  scores = _as_scores(scores)
  if labels.shape != scores.shape:
    raise ValueError(f"labels and scores differ in length: {labels.size} vs "
                     f"{scores.size}")
  n_pos = int(labels.sum())
  n_neg = labels.size - n_pos
  if n_pos == 0 or n_neg == 0:
    raise ValueError("ROC AUC needs both classes, got "
                     f"{n_pos} abnormal and {n_neg} normal frames")
  rank_sum = _average_ranks(scores)[labels].sum()
  return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _paired(labels_per_video: Mapping, scores_per_video: Mapping):
  """Yields (video, labels, scores) in sorted key order, checking they match."""
  missing = sorted(set(labels_per_video) ^ set(scores_per_video))
  if missing:
    raise ValueError(f"labels and scores cover different videos; video "
                     f"{missing[0]!r} is in only one of them ({len(missing)} "
                     "mismatched in all)")
  for vid in sorted(labels_per_video):
    labels = _as_labels(labels_per_video[vid], f"labels of video {vid!r}")
    scores = _as_scores(scores_per_video[vid], f"scores of video {vid!r}")
    if labels.shape != scores.shape:
      raise ValueError(f"video {vid!r}: {labels.size} labels but "
                       f"{scores.size} scores")
    yield vid, labels, scores


def micro_auc(labels_per_video: Mapping[str, np.ndarray],
              scores_per_video: Mapping[str, np.ndarray]) -> float:
  """One ROC AUC over the frames of all videos concatenated (sorted keys).

  Args:
    labels_per_video: video id -> [T] 0/1 frame labels.
    scores_per_video: video id -> [T] frame scores.

  Returns:
    The micro AUC.

  Raises:
    ValueError: naming the video whose keys or lengths do not match.
  """
  pairs = list(_paired(labels_per_video, scores_per_video))
  if not pairs:
    raise ValueError("no videos to evaluate")
  return roc_auc(np.concatenate([p[1] for p in pairs]),
                 np.concatenate([p[2] for p in pairs]))


def macro_auc(labels_per_video: Mapping[str, np.ndarray],
              scores_per_video: Mapping[str, np.ndarray],
              convention: str = "dummy_frames") -> float:
  """Mean of per-video ROC AUCs.

  Conventions for videos whose frames are all one class:

  * ``"dummy_frames"`` (the lab convention of the SSMTL papers): scores are
    min-max normalised per video to [0, 1], then every video (not only the
    single-class ones) gets one extra normal frame scored 0 and one extra
    abnormal frame scored 1, so each per-video AUC is defined. Single-class
    videos then score well when their scores are flat or low (all normal) or
    high (all abnormal) relative to the dummies.
  * ``"skip_single_class"``: raw scores, and single-class videos are left
    out of the mean.

  Args:
    labels_per_video: video id -> [T] 0/1 frame labels.
    scores_per_video: video id -> [T] frame scores.
    convention: one of `MACRO_CONVENTIONS`.

  Returns:
    The macro AUC.

  Raises:
    ValueError: unknown convention, mismatched videos, or (for
      ``"skip_single_class"``) no video with both classes.
  """
  if convention not in MACRO_CONVENTIONS:
    raise ValueError(f"unknown macro AUC convention {convention!r}; valid: "
                     f"{', '.join(MACRO_CONVENTIONS)}")
  aucs = []
  for _, labels, scores in _paired(labels_per_video, scores_per_video):
    if convention == "dummy_frames":
      aucs.append(roc_auc(np.r_[labels, False, True],
                          np.r_[minmax_per_video(scores), 0.0, 1.0]))
    elif labels.any() and not labels.all():
      aucs.append(roc_auc(labels, scores))
  if not aucs:
    raise ValueError(f"macro AUC ({convention}): no video to average "
                     "(none given, or none contains both classes)")
  return float(np.mean(aucs))


def evaluate_frames(labels_per_video: Mapping[str, np.ndarray],
                    scores_per_video: Mapping[str, np.ndarray]) -> dict:
  """All frame-level metrics of DESIGN.md §6.

  Args:
    labels_per_video: video id -> [T] 0/1 frame labels.
    scores_per_video: video id -> [T] frame scores (already post-processed).

  Returns:
    ``{"micro_auc": float, "macro_auc": float (dummy_frames convention),
    "macro_auc_skip_single_class": float or None (None when no video has
    both classes), "per_video_auc": {video: float, or None for a
    single-class video}}``.
  """
  per_video = {}
  for vid, labels, scores in _paired(labels_per_video, scores_per_video):
    both = labels.any() and not labels.all()
    per_video[vid] = roc_auc(labels, scores) if both else None
  defined = [a for a in per_video.values() if a is not None]
  return {
      "micro_auc": micro_auc(labels_per_video, scores_per_video),
      "macro_auc": macro_auc(labels_per_video, scores_per_video,
                             "dummy_frames"),
      "macro_auc_skip_single_class":
          float(np.mean(defined)) if defined else None,
      "per_video_auc": per_video,
  }


def gaussian_smooth(scores, sigma: float, truncate: float = 4.0) -> np.ndarray:
  """1-D temporal Gaussian smoothing that keeps the length.

  Borders use symmetric ("reflect" in scipy.ndimage terms) padding, so a
  constant sequence stays constant; matches
  `scipy.ndimage.gaussian_filter1d(scores, sigma, mode="reflect")`.

  Args:
    scores: [T] frame scores.
    sigma: standard deviation in frames; 0 returns a copy.
    truncate: the kernel reaches `truncate * sigma` frames each side.

  Returns:
    [T] float64 smoothed scores.
  """
  scores = _as_scores(scores)
  if sigma < 0 or not np.isfinite(sigma):
    raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
  if sigma == 0 or scores.size == 0:
    return scores.copy()
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1)
  kernel = np.exp(-0.5 * (x / sigma) ** 2)
  kernel /= kernel.sum()
  padded = np.pad(scores, radius, mode="symmetric")
  return np.convolve(padded, kernel, mode="valid")


def minmax_per_video(scores) -> np.ndarray:
  """Rescales one video's scores to [0, 1]; a constant video maps to zeros.

  Args:
    scores: [T] frame scores.

  Returns:
    [T] float64 scores in [0, 1].
  """
  scores = _as_scores(scores)
  if scores.size == 0:
    return scores.copy()
  lo, hi = scores.min(), scores.max()
  if hi == lo:
    return np.zeros_like(scores)
  return (scores - lo) / (hi - lo)


def postprocess(frame_scores, sigma: float, minmax: bool) -> np.ndarray:
  """Temporal Gaussian smoothing, then optional per-video min-max.

  Args:
    frame_scores: [T] raw frame scores of one video.
    sigma: Gaussian sigma in frames (0 = no smoothing).
    minmax: rescale the smoothed scores to [0, 1].

  Returns:
    [T] float64 scores.
  """
  out = gaussian_smooth(frame_scores, sigma)
  return minmax_per_video(out) if minmax else out


def _uniform_filter_axis(a: np.ndarray, size: int, axis: int) -> np.ndarray:
  """Box mean along one axis with symmetric padding (length kept)."""
  if size <= 1:
    return a
  a = np.moveaxis(a, axis, 0)
  n = a.shape[0]
  padded = np.pad(a, [(size // 2, size - 1 - size // 2)] + [(0, 0)] *
                  (a.ndim - 1), mode="symmetric")
  # Running sums make the cost independent of the window size.
  csum = np.cumsum(padded, axis=0, dtype=np.float64)
  out = csum[size - 1:].copy()
  out[1:] -= csum[:n - 1]
  out /= size
  return np.moveaxis(out, 0, axis)


def frame_scores_from_objects(
    num_frames: int,
    frames,
    scores,
    boxes=None,
    frame_shape: tuple[int, int] | None = None,
    mean_filter: tuple[int, int, int] | None = None,
    downscale: int = DEFAULT_MAP_DOWNSCALE,
) -> np.ndarray:
  """Frame anomaly scores of one video from its scored objects (DESIGN §5).

  Each object's score is written into its box (max over overlapping boxes),
  the [T, H, W] map is optionally mean-filtered in 3D, and a frame's score is
  the max of its map. Pixels and frames without objects hold the video's
  minimum object score, so an empty frame is never rated more anomalous than
  a frame with objects (0 when the video has no objects at all).

  Without `mean_filter` the max of a frame's map is just the max object score
  in that frame, so no map is built and `boxes` / `frame_shape` are unused.

  Args:
    num_frames: T, frames in the video.
    frames: [N] int frame index of each object, in [0, T).
    scores: [N] finite object scores.
    boxes: [N, 4] float (x1, y1, x2, y2) in pixels, x2/y2 exclusive;
      required with `mean_filter`.
    frame_shape: (H, W) of the frames; required with `mean_filter`.
    mean_filter: (t, y, x) box-filter size in frames and full-resolution
      pixels, or None for no filter. Spatial sizes are divided by
      `downscale` (at least 1 cell) since the map is built at that scale.
    downscale: the map has ceil(H / downscale) x ceil(W / downscale) cells.

  Returns:
    [T] float64 frame scores.

  Raises:
    ValueError: mismatched lengths, out-of-range frame indices, malformed
      boxes, or `mean_filter` without `boxes` and `frame_shape`.
  """
  if num_frames < 0:
    raise ValueError(f"num_frames must be >= 0, got {num_frames}")
  frames = np.asarray(frames)
  scores = _as_scores(scores, "object scores")
  if frames.shape != scores.shape:
    raise ValueError(f"frames {frames.shape} and object scores "
                     f"{scores.shape} differ in shape")
  if frames.size and not np.issubdtype(frames.dtype, np.integer):
    raise ValueError(f"frame indices must be integers, got {frames.dtype}")
  frames = frames.astype(np.int64)
  if frames.size and (frames.min() < 0 or frames.max() >= num_frames):
    raise ValueError(f"frame indices must lie in [0, {num_frames}), got "
                     f"[{frames.min()}, {frames.max()}]")
  floor = float(scores.min()) if scores.size else 0.0

  if mean_filter is None or num_frames == 0:
    out = np.full(num_frames, -np.inf)
    np.maximum.at(out, frames, scores)
    out[np.isneginf(out)] = floor
    return out

  if boxes is None or frame_shape is None:
    raise ValueError("mean_filter needs both boxes and frame_shape")
  boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  if boxes.shape[0] != scores.size:
    raise ValueError(f"{boxes.shape[0]} boxes for {scores.size} objects")
  if not np.isfinite(boxes).all() or (boxes[:, 2:] < boxes[:, :2]).any():
    raise ValueError("boxes must be finite (x1, y1, x2, y2) with x2 >= x1 "
                     "and y2 >= y1")
  if len(mean_filter) != 3 or min(mean_filter) < 1:
    raise ValueError(f"mean_filter must be 3 sizes >= 1, got {mean_filter}")
  if downscale < 1:
    raise ValueError(f"downscale must be >= 1, got {downscale}")
  if len(frame_shape) != 2 or min(frame_shape) < 1:
    raise ValueError(f"frame_shape must be (H, W) >= 1, got {frame_shape}")
  height, width = (int(np.ceil(d / downscale)) for d in frame_shape)
  volume = np.full((num_frames, height, width), floor)
  # Cells touched by a box; every box covers at least one cell so that no
  # object's score is lost however small or far outside the frame it is.
  cells = np.stack([np.floor(boxes[:, 0] / downscale),
                    np.floor(boxes[:, 1] / downscale),
                    np.ceil(boxes[:, 2] / downscale),
                    np.ceil(boxes[:, 3] / downscale)], axis=1).astype(np.int64)
  x0 = np.clip(cells[:, 0], 0, width - 1)
  y0 = np.clip(cells[:, 1], 0, height - 1)
  x1 = np.clip(cells[:, 2], x0 + 1, width)
  y1 = np.clip(cells[:, 3], y0 + 1, height)
  for i in range(scores.size):
    region = volume[frames[i], y0[i]:y1[i], x0[i]:x1[i]]
    np.maximum(region, scores[i], out=region)

  size_t, size_y, size_x = mean_filter
  sizes = (int(size_t), max(1, round(size_y / downscale)),
           max(1, round(size_x / downscale)))
  for axis, size in enumerate(sizes):
    volume = _uniform_filter_axis(volume, size, axis)
  return volume.reshape(num_frames, -1).max(axis=1)
