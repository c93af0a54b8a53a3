"""Region- and track-based detection criteria (RBDC / TBDC), NumPy only.

The criteria of Ramachandra & Jones, "Street Scene: A new dataset and
evaluation protocol for video anomaly detection" (WACV 2020), as used by the
SSMTL / SSMTL++ line of work on Avenue and ShanghaiTech.

Inputs are scored predicted boxes and ground-truth (GT) anomaly tracks. A GT
*region* is one track's box in one frame.

Matching rule (the published definition; py-ssvad-metrics and the evaluation
script shipped with the SSMTL/AED code agree). At a score threshold, the
predicted regions kept are those scoring >= the threshold, and

* a GT region is *detected* when at least one kept prediction in the same
  frame of the same video has IoU >= `iou_threshold` with it;
* a kept prediction is a *false positive* when its IoU with every GT region
  of its frame is < `iou_threshold`.

There is no one-to-one assignment: one prediction may detect several GT
regions, and a second prediction on an already detected GT region is neither
a true positive (the region counts once) nor a false positive. Sweeping the
threshold down the predictions sorted by score and greedily marking the
still-unmatched GT regions each one overlaps gives exactly this, so "greedy
by score" and "any overlapping prediction" are the same rule here.

Rates, swept over every distinct prediction score:

* RBDR = detected GT regions / all GT regions;
* TBDR = detected GT tracks / all GT tracks, a track being detected when at
  least `track_fraction` of its regions are (detected / regions >=
  `track_fraction`, evaluated as a float division so 3/30 counts at 0.1);
* FPR = false-positive predictions / total frames of all videos (false
  positives per frame, so it can exceed 1).

Curve and area. The curve starts at (0, 0) (threshold above every score)
and has one point per distinct score: predictions with tied scores enter
together, so a tie of true and false positives is a diagonal segment (the
expected staircase over random tie orders), not an order-dependent one.
RBDC / TBDC = trapezoidal area under RBDR / TBDR vs FPR for FPR in [0, 1]:
a curve that crosses FPR = 1 is cut there with linear interpolation; a curve
that ends before FPR = 1 stays flat at its last value up to 1 (more
predictions could only raise the rate). Both match the SSMTL/AED script,
which cuts at FPR = 1 and extends flat (its curve has one point per
prediction, so a crossing segment is flat there anyway).

Box convention. Boxes are (x_min, y_min, x_max, y_max) in continuous pixel
coordinates, x_max / y_max exclusive: area = (x_max - x_min) * (y_max -
y_min), the convention of `metrics.frame_scores_from_objects` and of
py-ssvad-metrics (which rasterises a box as mask[y_min:y_max, x_min:x_max]).
``inclusive_boxes=True`` treats them as inclusive pixel indices instead
(width = x_max - x_min + 1), as the SSMTL/AED script does.

Differences from py-ssvad-metrics 1.0.0 (``CurrentCriteriaAccumulator``),
which rasterises boxes into per-frame score maps and works on their
connected components:

* it evaluates 103 fixed thresholds linspace(1.01, -0.01), so scores must
  lie in [0, 1] and are effectively quantised to 0.01 steps; here every
  distinct score is a threshold and any finite score is allowed;
* touching or overlapping predicted boxes (8-connectivity) merge into one
  region with their scores averaged on the overlap, and so do touching GT
  boxes; here every box is its own region;
* IoU is computed on pixel masks clipped to the frame; here on the boxes;
* at its thresholds 0.0 and -0.01 the whole frame becomes one predicted
  region (the background scores 0), a false positive in (nearly) every
  frame, so its curve always ends with a point at about (FPR 1, rate 0): its
  area drops linearly to 0 between its last real point and FPR = 1 instead of
  staying flat (it also drops points with FPR > 1 without interpolating);
* a frame carries one `anomaly_track_id`, so tracks may not overlap in time
  within a video, and the track test is `detected >= alpha * regions` in
  float arithmetic, which misses exact ties such as 3 >= 0.1 * 30.

On box-separated inputs with scores on its grid the two agree exactly once
the end of the curve is treated its way (tests/test_region_metrics.py).
"""

from __future__ import annotations

from typing import Hashable, Mapping

import numpy as np

from ssmtl_jax.eval.boxes import box_iou, paired_iou, widths

__all__ = ["box_iou", "curve_area", "rbdc_tbdc", "region_curves"]

DEFAULT_IOU_THRESHOLD = 0.1
DEFAULT_TRACK_FRACTION = 0.1


# -------------------------------------------------------------- validation


def _as_num_frames(num_frames: Mapping[Hashable, int]) -> dict:
  if not isinstance(num_frames, Mapping) or not num_frames:
    raise ValueError("num_frames must be a non-empty mapping video id -> number of frames")
  out = {}
  for vid, n in num_frames.items():
    if (isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1):
      raise ValueError(f"num_frames[{vid!r}] must be a positive int, got {n!r}")
    out[vid] = int(n)
  return out


def _check_keys(per_video: Mapping, name: str, num_frames: dict) -> None:
  if not isinstance(per_video, Mapping):
    raise ValueError(f"{name} must be a mapping video id -> array, got {type(per_video).__name__}")
  missing = [vid for vid in per_video if vid not in num_frames]
  if missing:
    raise ValueError(f"videos {missing[:5]!r} appear in {name} but not in num_frames "
                     f"({len(missing)} in all); every video needs its frame count")


def _as_rows(rows, name: str, vid, n_frames: int, frame_col: int) -> np.ndarray:
  """[K, 6] float64 rows with finite values and integer frames in [0, n_frames)."""
  arr = np.asarray(rows, dtype=np.float64)
  if arr.size == 0:
    return np.zeros((0, 6), np.float64)
  if arr.ndim != 2 or arr.shape[1] != 6:
    raise ValueError(f"{name}[{vid!r}] must have shape [K, 6], got {arr.shape}")
  if not np.isfinite(arr).all():
    raise ValueError(f"{name}[{vid!r}] contains {np.sum(~np.isfinite(arr))} non-finite values")
  frames = arr[:, frame_col]
  if not np.array_equal(frames, np.floor(frames)):
    raise ValueError(f"{name}[{vid!r}]: frame indices (column {frame_col}) must be integers")
  bad = (frames < 0) | (frames >= n_frames)
  if bad.any():
    raise ValueError(f"{name}[{vid!r}]: frame index {int(frames[bad][0])} out of range "
                     f"[0, {n_frames}) ({int(bad.sum())} rows out of range)")
  return arr


def _check_boxes(boxes: np.ndarray, name: str, vid, inclusive: bool) -> None:
  w, h = widths(boxes, inclusive)
  bad = (w <= 0) | (h <= 0)
  if bad.any():
    rule = "x_max >= x_min and y_max >= y_min" if inclusive else "x_max > x_min and y_max > y_min"
    raise ValueError(f"{name}[{vid!r}]: {int(bad.sum())} empty boxes, e.g. "
                     f"{boxes[bad][0].tolist()}; boxes need {rule}")


def _as_predictions(rows, vid, n_frames: int, inclusive: bool) -> np.ndarray:
  pred = _as_rows(rows, "predictions", vid, n_frames, frame_col=0)
  _check_boxes(pred[:, 1:5], "predictions", vid, inclusive)
  return pred


def _as_tracks(rows, vid, n_frames: int, inclusive: bool) -> np.ndarray:
  trk = _as_rows(rows, "tracks", vid, n_frames, frame_col=1)
  if not np.array_equal(trk[:, 0], np.floor(trk[:, 0])):
    raise ValueError(f"tracks[{vid!r}]: track ids (column 0) must be integers")
  _check_boxes(trk[:, 2:6], "tracks", vid, inclusive)
  keys = np.unique(trk[:, :2], axis=0)
  if len(keys) != len(trk):
    raise ValueError(f"tracks[{vid!r}]: {len(trk) - len(keys)} duplicate (track_id, frame) rows; "
                     "a track has one box per frame")
  return trk


# ---------------------------------------------------------------- matching


def _match_video(pred: np.ndarray, gt_frames: np.ndarray, gt_boxes: np.ndarray,
                 iou_threshold: float, inclusive: bool) -> tuple[np.ndarray, np.ndarray]:
  """Matches one video's predictions against its GT regions.

  Returns:
    (is_fp [N] bool: the prediction overlaps no GT region of its frame with
    IoU >= threshold; det_score [M] float64: the highest score among the
    predictions overlapping each GT region enough, -inf if none).
  """
  n_pred, n_gt = len(pred), len(gt_frames)
  det_score = np.full(n_gt, -np.inf)
  if n_pred == 0 or n_gt == 0:
    return np.ones(n_pred, bool), det_score
  order = np.argsort(pred[:, 0], kind="stable")
  sorted_frames = pred[order, 0]
  lo = np.searchsorted(sorted_frames, gt_frames, side="left")
  counts = np.searchsorted(sorted_frames, gt_frames, side="right") - lo
  gt_idx = np.repeat(np.arange(n_gt), counts)
  offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
  pred_idx = order[np.repeat(lo, counts) + offsets]
  hit = paired_iou(pred[pred_idx, 1:5], gt_boxes[gt_idx], inclusive) >= iou_threshold
  matched = np.zeros(n_pred, bool)
  matched[pred_idx[hit]] = True
  np.maximum.at(det_score, gt_idx[hit], pred[pred_idx[hit], 5])
  return ~matched, det_score


def _track_scores(det_score: np.ndarray, track_index: np.ndarray, n_tracks: int,
                  track_fraction: float) -> np.ndarray:
  """Highest threshold at which each track counts as detected (-inf: never)."""
  sizes = np.bincount(track_index, minlength=n_tracks)
  # Fewest detected regions m with m / size >= track_fraction; ceil() can be
  # one off in floating point, so settle it with the same division.
  need = np.clip(np.ceil(track_fraction * sizes).astype(np.int64), 1, sizes)
  need = np.where((need > 1) & ((need - 1) / sizes >= track_fraction), need - 1, need)
  need = np.where((need < sizes) & (need / sizes < track_fraction), need + 1, need)
  # Regions grouped by track, each group by detection score descending: the
  # track is detected once its need-th best region is.
  order = np.lexsort((-det_score, track_index))
  starts = np.cumsum(sizes) - sizes
  return det_score[order][starts + need - 1]


def _count_at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """For each threshold, how many of `values` are >= it."""
  return len(values) - np.searchsorted(np.sort(values), thresholds, side="left")


# ------------------------------------------------------------------ curves


def region_curves(predictions: Mapping[Hashable, np.ndarray],
                  tracks: Mapping[Hashable, np.ndarray],
                  num_frames: Mapping[Hashable, int],
                  iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                  track_fraction: float = DEFAULT_TRACK_FRACTION,
                  inclusive_boxes: bool = False) -> dict:
  """RBDR and TBDR against false positives per frame, over all thresholds.

  See the module docstring for the matching rule, ties and box convention.

  Args:
    predictions: video id -> [N, 6] float rows (frame, x_min, y_min, x_max,
      y_max, score), frame 0-based. Videos without predictions may be left
      out or given an empty array.
    tracks: video id -> [M, 6] rows (track_id, frame, x_min, y_min, x_max,
      y_max) of the GT anomaly tracks, one row per track and frame; track ids
      are per video. Videos without anomalies may be left out.
    num_frames: video id -> number of frames. Every video evaluated must be
      here, including normal videos without predictions (their frames count
      in the false positives per frame); it must cover the keys of
      `predictions` and `tracks`.
    iou_threshold: IoU a prediction needs with a GT region, in (0, 1].
    track_fraction: fraction of a track's regions that must be detected for
      the track to be, in (0, 1].
    inclusive_boxes: treat coordinates as inclusive pixel indices (width =
      x_max - x_min + 1) instead of continuous ones.

  Returns:
    ``{"fpr", "rbdr", "tbdr", "thresholds"}``: [K + 1] float64 arrays, K the
    number of distinct prediction scores; point i keeps the predictions with
    score >= thresholds[i] (descending; thresholds[0] = inf gives the (0, 0)
    start). FPR is non-decreasing and may exceed 1. Plus the totals
    ``"num_regions"``, ``"num_tracks"`` and ``"num_frames"`` (ints).

  Raises:
    ValueError: naming the video and the problem for malformed arrays
      (shape, non-finite values, non-integer or out-of-range frames, empty
      boxes, duplicate (track, frame) rows), videos missing from
      `num_frames`, thresholds out of range, or no GT region at all.
  """
  if not 0.0 < iou_threshold <= 1.0:
    raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
  if not 0.0 < track_fraction <= 1.0:
    raise ValueError(f"track_fraction must be in (0, 1], got {track_fraction}")
  frames_per_video = _as_num_frames(num_frames)
  _check_keys(predictions, "predictions", frames_per_video)
  _check_keys(tracks, "tracks", frames_per_video)

  scores, is_fp, det_scores, track_index = [], [], [], []
  n_tracks = 0
  for vid, n_frames in frames_per_video.items():
    pred = _as_predictions(predictions.get(vid, ()), vid, n_frames, inclusive_boxes)
    trk = _as_tracks(tracks.get(vid, ()), vid, n_frames, inclusive_boxes)
    fp, det = _match_video(pred, trk[:, 1], trk[:, 2:6], iou_threshold, inclusive_boxes)
    _, local_track = np.unique(trk[:, 0], return_inverse=True)
    scores.append(pred[:, 5])
    is_fp.append(fp)
    det_scores.append(det)
    track_index.append(local_track.reshape(-1) + n_tracks)
    n_tracks += int(local_track.max()) + 1 if len(trk) else 0
  if n_tracks == 0:
    raise ValueError("no ground-truth tracks in any video; RBDC / TBDC are undefined")

  scores = np.concatenate(scores)
  is_fp = np.concatenate(is_fp)
  det_scores = np.concatenate(det_scores)
  track_index = np.concatenate(track_index)
  total_frames = sum(frames_per_video.values())
  track_scores = _track_scores(det_scores, track_index, n_tracks, track_fraction)

  thresholds = np.unique(scores)[::-1]
  fpr = _count_at_least(scores[is_fp], thresholds) / total_frames
  rbdr = _count_at_least(det_scores, thresholds) / len(det_scores)
  tbdr = _count_at_least(track_scores, thresholds) / n_tracks
  return {
      "fpr": np.r_[0.0, fpr],
      "rbdr": np.r_[0.0, rbdr],
      "tbdr": np.r_[0.0, tbdr],
      "thresholds": np.r_[np.inf, thresholds],
      "num_regions": len(det_scores),
      "num_tracks": n_tracks,
      "num_frames": total_frames,
  }


def curve_area(fpr, rate, max_fpr: float = 1.0) -> float:
  """Trapezoidal area under a detection-rate curve for FPR up to `max_fpr`.

  The curve is cut at `max_fpr` with linear interpolation when it crosses
  it, and extended flat at its last rate when it ends before. The area is
  not normalised by `max_fpr`, and it is taken from fpr[0] (0 for curves of
  `region_curves`).

  Args:
    fpr: [K] non-decreasing false positives per frame.
    rate: [K] detection rate at each point.
    max_fpr: right end of the integration range, > 0.

  Returns:
    The area.

  Raises:
    ValueError: lengths differ, arrays are empty or not 1-D, or fpr
      decreases.
  """
  fpr = np.asarray(fpr, dtype=np.float64)
  rate = np.asarray(rate, dtype=np.float64)
  if fpr.ndim != 1 or fpr.shape != rate.shape or fpr.size == 0:
    raise ValueError(f"fpr and rate must be non-empty 1-D arrays of one length, got "
                     f"{fpr.shape} and {rate.shape}")
  if np.any(np.diff(fpr) < 0):
    raise ValueError("fpr must be non-decreasing")
  if not max_fpr > 0:
    raise ValueError(f"max_fpr must be > 0, got {max_fpr}")
  k = int(np.searchsorted(fpr, max_fpr, side="right"))  # points with fpr <= max_fpr
  if k == 0:
    return 0.0
  x, y = fpr[:k], rate[:k]
  if x[-1] < max_fpr:
    if k < fpr.size:  # crosses max_fpr between points k - 1 and k
      t = (max_fpr - fpr[k - 1]) / (fpr[k] - fpr[k - 1])
      end = rate[k - 1] + t * (rate[k] - rate[k - 1])
    else:  # ends before max_fpr: flat
      end = rate[-1]
    x, y = np.r_[x, max_fpr], np.r_[y, end]
  return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def rbdc_tbdc(predictions: Mapping[Hashable, np.ndarray],
              tracks: Mapping[Hashable, np.ndarray],
              num_frames: Mapping[Hashable, int],
              iou_threshold: float = DEFAULT_IOU_THRESHOLD,
              track_fraction: float = DEFAULT_TRACK_FRACTION,
              inclusive_boxes: bool = False) -> dict:
  """RBDC and TBDC: areas under the RBDR and TBDR curves for FPR in [0, 1].

  Args:
    predictions, tracks, num_frames, iou_threshold, track_fraction,
      inclusive_boxes: as for `region_curves`.

  Returns:
    ``{"rbdc": float, "tbdc": float}``, each in [0, 1]; both 0 without
    predictions.

  Raises:
    ValueError: as for `region_curves`.
  """
  curves = region_curves(predictions, tracks, num_frames, iou_threshold=iou_threshold,
                         track_fraction=track_fraction, inclusive_boxes=inclusive_boxes)
  return {
      "rbdc": curve_area(curves["fpr"], curves["rbdr"]),
      "tbdc": curve_area(curves["fpr"], curves["tbdr"]),
  }
