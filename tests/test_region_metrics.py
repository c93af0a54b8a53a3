"""Tests for ssmtl_jax.eval.region_metrics (RBDC / TBDC).

Hand-worked curves, edge cases, a brute-force re-implementation of the
definition, and a comparison with py-ssvad-metrics 1.0.0 on inputs built so
that its pixel-mask pipeline sees the same regions (see
`test_matches_py_ssvad_metrics`).
"""

import functools
import sys

import numpy as np
import pytest

from ssmtl_jax.eval import region_metrics as rm

# ------------------------------------------------------------------ box_iou


def test_box_iou_hand_cases():
  # Half-overlapping 10x10 boxes: intersection 50, union 150.
  assert rm.box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
  assert rm.box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
  # Contained 2x2 box: 4 / 100.
  assert rm.box_iou([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(0.04)
  # Disjoint, and touching edges (continuous coordinates share no area).
  assert rm.box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
  assert rm.box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
  # 4x2 box inside a 2x4 box crossing it: intersection 2x2 = 4, union 8 + 8 - 4.
  assert rm.box_iou([0, 1, 4, 3], [1, 0, 3, 4]) == pytest.approx(4 / 12)


def test_box_iou_inclusive_pixels():
  # Inclusive pixel boxes 0..9 are 10x10; sharing column 9 gives 1x10 = 10 of 190.
  assert rm.box_iou([0, 0, 9, 9], [9, 0, 18, 9], inclusive=True) == pytest.approx(10 / 190)
  assert rm.box_iou([0, 0, 9, 9], [0, 0, 9, 9], inclusive=True) == 1.0
  # A single-pixel box is 1x1 inclusive, empty in continuous coordinates.
  assert rm.box_iou([3, 3, 3, 3], [3, 3, 3, 3], inclusive=True) == 1.0
  assert rm.box_iou([3, 3, 3, 3], [3, 3, 3, 3]) == 0.0


def test_box_iou_shapes_and_symmetry():
  rng = np.random.default_rng(0)
  xy = rng.uniform(0, 50, (7, 2))
  a = np.c_[xy, xy + rng.uniform(1, 20, (7, 2))]
  out = rm.box_iou(a[:3], a)
  assert out.shape == (3, 7)
  np.testing.assert_allclose(out, rm.box_iou(a, a[:3]).T)
  np.testing.assert_allclose(np.diag(rm.box_iou(a, a)), 1.0)
  assert rm.box_iou(a[0], a).shape == (7,)
  assert rm.box_iou(a[0], a[1]).shape == ()
  assert ((out >= 0) & (out <= 1)).all()


# --------------------------------------------------------- hand-worked curves

# One video of 10 frames; one track (id 7) of 5 regions, frames 2..6, box
# [10, 10, 30, 30] (area 400).
HAND_TRACKS = {"v": np.array([[7, f, 10, 10, 30, 30] for f in range(2, 7)])}
HAND_PREDS = {"v": np.array([
    [2, 10, 10, 30, 30, 0.9],     # TP: region of frame 2 (IoU 1)
    [8, 50, 50, 60, 60, 0.8],     # FP: frame 8 has no GT
    [3, 12, 12, 30, 30, 0.7],     # TP: region of frame 3 (IoU 324 / 400)
    [3, 10, 10, 30, 30, 0.6],     # duplicate on the frame-3 region: neither TP nor FP
    [4, 100, 100, 120, 120, 0.5],  # FP: no overlap with the frame-4 region
    [5, 10, 10, 30, 30, 0.4],     # TP: region of frame 5
])}
HAND_FRAMES = {"v": 10}


def test_hand_case_curve_and_areas():
  # Threshold: FPR (FPs / 10 frames), RBDR (detected / 5 regions)
  #   inf: (0, 0)     0.9: (0, .2)    0.8: (.1, .2)   0.7: (.1, .4)
  #   0.6: (.1, .4)   0.5: (.2, .4)   0.4: (.2, .6), then flat at .6 up to FPR 1.
  # RBDC = .1 * .2 + .1 * .4 + .8 * .6 = 0.54.
  # TBDC: 1 of 5 regions >= 10 % already at 0.9, so TBDR = 1 from FPR 0: 1.0.
  curves = rm.region_curves(HAND_PREDS, HAND_TRACKS, HAND_FRAMES)
  np.testing.assert_allclose(curves["thresholds"], [np.inf, .9, .8, .7, .6, .5, .4])
  np.testing.assert_allclose(curves["fpr"], [0, 0, .1, .1, .1, .2, .2])
  np.testing.assert_allclose(curves["rbdr"], [0, .2, .2, .4, .4, .4, .6])
  np.testing.assert_allclose(curves["tbdr"], [0, 1, 1, 1, 1, 1, 1])
  assert (curves["num_regions"], curves["num_tracks"], curves["num_frames"]) == (5, 1, 10)
  out = rm.rbdc_tbdc(HAND_PREDS, HAND_TRACKS, HAND_FRAMES)
  assert out["rbdc"] == pytest.approx(0.54)
  assert out["tbdc"] == pytest.approx(1.0)


def test_hand_case_track_fraction_half():
  # With track_fraction 0.5 the track needs 3 of its 5 regions: reached at
  # threshold 0.4, FPR .2, so TBDC = .8 * 1.
  out = rm.rbdc_tbdc(HAND_PREDS, HAND_TRACKS, HAND_FRAMES, track_fraction=0.5)
  assert out["tbdc"] == pytest.approx(0.8)
  assert out["rbdc"] == pytest.approx(0.54)


def test_hand_case_normal_video_counts_frames():
  # A normal 10-frame video without predictions halves every FPR:
  # RBDC = .05 * .2 + .05 * .4 + .9 * .6 = 0.57.
  frames = {"v": 10, "normal": 10}
  assert rm.rbdc_tbdc(HAND_PREDS, HAND_TRACKS, frames)["rbdc"] == pytest.approx(0.57)


def test_crossing_fpr_one_interpolates_and_ties_enter_together():
  # 2 frames, one GT region in frame 0. FP at 0.9 (frame 1), then a tie at
  # 0.7 of one TP and two FPs. Points: (0, 0), (.5, 0), (1.5, 1). Cut at
  # FPR 1 halfway along the last segment: rate .5, area .5 * .5 / 2 = 0.125.
  tracks = {"v": np.array([[0, 0, 0, 0, 10, 10]])}
  preds = {"v": np.array([
      [1, 50, 50, 60, 60, 0.9],
      [1, 70, 70, 80, 80, 0.7],
      [0, 0, 0, 10, 10, 0.7],
      [1, 90, 90, 99, 99, 0.7],
  ])}
  curves = rm.region_curves(preds, tracks, {"v": 2})
  np.testing.assert_allclose(curves["fpr"], [0, .5, 1.5])
  np.testing.assert_allclose(curves["rbdr"], [0, 0, 1])
  out = rm.rbdc_tbdc(preds, tracks, {"v": 2})
  assert out["rbdc"] == pytest.approx(0.125)
  assert out["tbdc"] == pytest.approx(0.125)


def test_one_prediction_detects_every_region_it_overlaps():
  # Two tracks whose boxes overlap in frame 0; one prediction covering both
  # has IoU 100 / 150 >= .1 with each, so it detects both regions.
  tracks = {"v": np.array([[0, 0, 0, 0, 10, 10], [1, 0, 5, 0, 15, 10]])}
  preds = {"v": np.array([[0, 0, 0, 15, 10, 0.5]])}
  curves = rm.region_curves(preds, tracks, {"v": 4})
  np.testing.assert_allclose(curves["rbdr"], [0, 1])
  np.testing.assert_allclose(curves["tbdr"], [0, 1])
  np.testing.assert_allclose(curves["fpr"], [0, 0])
  assert rm.rbdc_tbdc(preds, tracks, {"v": 4}) == {"rbdc": 1.0, "tbdc": 1.0}


def test_inclusive_boxes_change_the_match():
  # GT [0, 0, 9, 9] vs prediction [9, 0, 18, 9]: continuous IoU 0 (FP),
  # inclusive IoU 10 / 190 = .053 (still < .1); with threshold .05 only the
  # inclusive convention matches.
  tracks = {"v": np.array([[0, 0, 0, 0, 9, 9]])}
  preds = {"v": np.array([[0, 9, 0, 18, 9, 0.5]])}
  cont = rm.rbdc_tbdc(preds, tracks, {"v": 1}, iou_threshold=0.05)
  incl = rm.rbdc_tbdc(preds, tracks, {"v": 1}, iou_threshold=0.05, inclusive_boxes=True)
  assert cont == {"rbdc": 0.0, "tbdc": 0.0}
  assert incl == {"rbdc": 1.0, "tbdc": 1.0}


def test_curve_area_helper():
  assert rm.curve_area([0, .5], [0, 1]) == pytest.approx(.25 + .5)  # flat tail
  assert rm.curve_area([0, 2], [0, 1]) == pytest.approx(.25)  # cut at (1, .5)
  assert rm.curve_area([0, 1, 2], [1, 1, 0]) == pytest.approx(1.0)  # exactly at 1
  assert rm.curve_area([0, 4], [1, 1], max_fpr=2.0) == pytest.approx(2.0)
  assert rm.curve_area([2, 3], [1, 1]) == 0.0
  with pytest.raises(ValueError, match="non-decreasing"):
    rm.curve_area([0, .5, .2], [0, 1, 1])
  with pytest.raises(ValueError, match="one length"):
    rm.curve_area([0, .5], [0])


# -------------------------------------------------------------- edge cases


def test_empty_predictions_give_zero():
  for preds in ({}, {"v": np.zeros((0, 6))}, {"v": []}):
    curves = rm.region_curves(preds, HAND_TRACKS, HAND_FRAMES)
    np.testing.assert_array_equal(curves["fpr"], [0.0])
    assert rm.rbdc_tbdc(preds, HAND_TRACKS, HAND_FRAMES) == {"rbdc": 0.0, "tbdc": 0.0}


def test_only_false_positives_give_zero():
  preds = {"v": np.array([[f, 50, 50, 60, 60, 1.0 - f / 20] for f in range(10)])}
  curves = rm.region_curves(preds, HAND_TRACKS, HAND_FRAMES)
  np.testing.assert_allclose(curves["fpr"], np.arange(11) / 10)
  assert not curves["rbdr"].any() and not curves["tbdr"].any()
  assert rm.rbdc_tbdc(preds, HAND_TRACKS, HAND_FRAMES) == {"rbdc": 0.0, "tbdc": 0.0}


def test_iou_exactly_at_threshold_counts():
  # GT [0, 0, 10, 10] vs prediction [0, 0, 10, 1]: 10 / 100 == 0.1 exactly.
  tracks = {"v": np.array([[0, 0, 0, 0, 10, 10]])}
  assert rm.box_iou([0, 0, 10, 10], [0, 0, 10, 1]) == 0.1
  hit = {"v": np.array([[0, 0, 0, 10, 1, 0.5]])}
  assert rm.rbdc_tbdc(hit, tracks, {"v": 1}) == {"rbdc": 1.0, "tbdc": 1.0}
  # Just below the threshold it is a false positive (1 per frame): area 0.
  miss = {"v": np.array([[0, 0, 0, 10, 0.99, 0.5]])}
  curves = rm.region_curves(miss, tracks, {"v": 1})
  np.testing.assert_allclose(curves["fpr"], [0, 1])
  assert rm.rbdc_tbdc(miss, tracks, {"v": 1}) == {"rbdc": 0.0, "tbdc": 0.0}


@pytest.mark.parametrize("length,detected,expected", [
    (10, 1, 1.0),   # exactly 10 %
    (30, 3, 1.0),   # exactly 10 %, where 0.1 * 30 > 3 in floating point
    (30, 2, 0.0),
    (11, 1, 0.0),   # 9 %
    (11, 2, 1.0),
])
def test_track_detected_at_ten_percent(length, detected, expected):
  tracks = {"v": np.array([[3, f, 0, 0, 10, 10] for f in range(length)])}
  preds = {"v": np.array([[f, 0, 0, 10, 10, 0.5] for f in range(detected)])}
  out = rm.rbdc_tbdc(preds, tracks, {"v": length})
  assert out["tbdc"] == expected
  assert out["rbdc"] == pytest.approx(detected / length)


# ------------------------------------------------------ brute-force reference


def _iou_scalar(a, b, inclusive):
  e = 1.0 if inclusive else 0.0
  iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + e)
  ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + e)
  inter = iw * ih
  union = (a[2] - a[0] + e) * (a[3] - a[1] + e) + (b[2] - b[0] + e) * (b[3] - b[1] + e) - inter
  return inter / union


def _brute_force(preds, tracks, num_frames, iou_thr, frac, inclusive):
  """The definition evaluated literally at every distinct score."""
  p = [(v, r) for v, rows in preds.items() for r in np.asarray(rows, float)]
  g = [(v, r) for v, rows in tracks.items() for r in np.asarray(rows, float)]
  hits = [[pv == gv and pr[0] == gr[1] and _iou_scalar(pr[1:5], gr[2:6], inclusive) >= iou_thr
           for gv, gr in g] for pv, pr in p]
  track_keys = sorted({(gv, gr[0]) for gv, gr in g})
  fpr, rbdr, tbdr = [0.0], [0.0], [0.0]
  for u in sorted({pr[5] for _, pr in p}, reverse=True):
    kept = [i for i, (_, pr) in enumerate(p) if pr[5] >= u]
    n_fp = sum(not any(hits[i]) for i in kept)
    det = [any(hits[i][j] for i in kept) for j in range(len(g))]
    n_trk = 0
    for key in track_keys:
      mine = [det[j] for j, (gv, gr) in enumerate(g) if (gv, gr[0]) == key]
      n_trk += sum(mine) / len(mine) >= frac
    fpr.append(n_fp / sum(num_frames.values()))
    rbdr.append(sum(det) / len(g))
    tbdr.append(n_trk / len(track_keys))
  return np.array(fpr), np.array(rbdr), np.array(tbdr)


def _brute_area(fpr, rate):
  area = 0.0
  for x0, y0, x1, y1 in zip(fpr[:-1], rate[:-1], fpr[1:], rate[1:]):
    if x0 >= 1.0:
      break
    if x1 > 1.0:
      y1, x1 = y0 + (y1 - y0) * (1.0 - x0) / (x1 - x0), 1.0
    area += (x1 - x0) * (y0 + y1) / 2
  if fpr[-1] < 1.0:
    area += (1.0 - fpr[-1]) * rate[-1]
  return area


def _random_dense_case(seed):
  """Overlapping boxes, tied scores, several GT per frame, a normal video."""
  rng = np.random.default_rng(seed)
  preds, tracks, num_frames = {}, {}, {}
  for v in range(3):
    n = int(rng.integers(4, 9))
    num_frames[f"v{v}"] = n
    rows = []
    for tid in range(int(rng.integers(0, 3)) if v < 2 else 0):
      start = int(rng.integers(0, n - 1))
      xy = rng.uniform(0, 40, 2)
      for f in range(start, min(n, start + int(rng.integers(1, 8)))):
        xy = xy + rng.normal(0, 2, 2)
        rows.append([tid, f, *xy, *(xy + rng.uniform(5, 20, 2))])
    tracks[f"v{v}"] = np.array(rows).reshape(-1, 6)
    prows = []
    for r in rows:
      for _ in range(int(rng.integers(0, 3))):
        prows.append([r[1], *(np.array(r[2:6]) + rng.normal(0, 4, 4)), 0])
    for _ in range(int(rng.integers(0, 6))):
      xy = rng.uniform(0, 60, 2)
      prows.append([rng.integers(0, n), *xy, *(xy + rng.uniform(3, 15, 2)), 0])
    prows = np.array(prows).reshape(-1, 6)
    prows[:, 3:5] = np.maximum(prows[:, 3:5], prows[:, 1:3] + 1)
    prows[:, 5] = rng.choice([0.1, 0.25, 0.3, 0.5, 0.7, 0.9], len(prows))  # many ties
    preds[f"v{v}"] = prows
  if not any(len(t) for t in tracks.values()):
    tracks["v0"] = np.array([[0, 0, 1, 1, 9, 9]])
  return preds, tracks, num_frames


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
  preds, tracks, num_frames = _random_dense_case(seed)
  iou_thr = (0.1, 0.3, 0.5)[seed % 3]
  frac = (0.1, 0.5)[seed % 2]
  inclusive = seed >= 3
  curves = rm.region_curves(preds, tracks, num_frames, iou_threshold=iou_thr,
                            track_fraction=frac, inclusive_boxes=inclusive)
  fpr, rbdr, tbdr = _brute_force(preds, tracks, num_frames, iou_thr, frac, inclusive)
  np.testing.assert_allclose(curves["fpr"], fpr)
  np.testing.assert_allclose(curves["rbdr"], rbdr)
  np.testing.assert_allclose(curves["tbdr"], tbdr)
  out = rm.rbdc_tbdc(preds, tracks, num_frames, iou_threshold=iou_thr, track_fraction=frac,
                     inclusive_boxes=inclusive)
  assert out["rbdc"] == pytest.approx(_brute_area(fpr, rbdr), abs=1e-12)
  assert out["tbdc"] == pytest.approx(_brute_area(fpr, tbdr), abs=1e-12)


# ------------------------------------------------------- py-ssvad-metrics


@functools.lru_cache(maxsize=None)
def _ssvad():
  """(criteria, data_schema) modules of py-ssvad-metrics 1.0.0.

  Its data_schema is written for pydantic 1 (``conlist(min_items=...)``) and
  fails to import under pydantic 2; there it is imported against the
  ``pydantic.v1`` compatibility module that pydantic 2 ships. Only the
  ``pydantic`` entry of sys.modules is swapped, for the duration of the
  import; its heavy dependencies are imported first so none of them binds
  the v1 module.
  """
  import cv2  # noqa: F401
  import numba  # noqa: F401
  import pydantic
  import sklearn.metrics  # noqa: F401
  if pydantic.VERSION.startswith("1."):
    from ssvad_metrics import criteria, data_schema
    return criteria, data_schema
  import pydantic.v1
  saved = sys.modules["pydantic"]
  sys.modules["pydantic"] = pydantic.v1
  try:
    from ssvad_metrics import criteria, data_schema
  finally:
    sys.modules["pydantic"] = saved
  return criteria, data_schema


# Frames of 160 x 120 split into 4 x 3 cells of 40 x 40. Every box lies
# inside one cell at least 1 pixel from its border and each cell of a frame
# holds at most one predicted box and one GT box, so boxes of one kind never
# touch and py-ssvad-metrics' connected components are exactly the boxes.
# GT boxes are at most 30 x 30 < 10 % of the frame.
_W, _H, _CELL = 160, 120, 40


def _box_in_cell(rng, cell, lo=6, hi=30):
  ox, oy = (cell % 4) * _CELL, (cell // 4) * _CELL
  w, h = rng.integers(lo, hi + 1, 2)
  x0 = ox + 2 + rng.integers(0, _CELL - 4 - w + 1)
  y0 = oy + 2 + rng.integers(0, _CELL - 4 - h + 1)
  return np.array([x0, y0, x0 + w, y0 + h])


def _jitter_in_cell(rng, box, cell):
  ox, oy = (cell % 4) * _CELL, (cell // 4) * _CELL
  x0, y0, x1, y1 = box + rng.integers(-6, 7, 4)
  x0, y0 = max(x0, ox + 1), max(y0, oy + 1)
  x1, y1 = min(max(x1, x0 + 2), ox + _CELL - 1), min(max(y1, y0 + 2), oy + _CELL - 1)
  return np.array([x0, y0, x1, y1])


def _ssvad_case(seed, fp_rate, one_track_per_frame):
  """Random case valid for both implementations, scores on ssvad's grid.

  Scores are bin centres (k + .5) / 100 for k >= 1, strictly between
  py-ssvad-metrics' thresholds (multiples of .01), so its 103 thresholds see
  every distinct score of ours (k = 0 is left out: below .01 its next
  threshold, 0, already turns whole frames into regions). Predictions near
  GT boxes (jittered, some far enough to be false positives) use a few bins,
  each of which also gets one pure false positive: then the FPR rises
  wherever the detection rates do, no two curve points with different rates
  share an FPR, and py-ssvad-metrics' unstable np.argsort over FPR cannot
  reorder them.
  """
  rng = np.random.default_rng(seed)
  tp_bins = rng.choice(np.arange(20, 100), 10, replace=False)
  preds, tracks, num_frames, free = {}, {}, {}, []
  for v in range(3):
    n = int(rng.choice([30, 36, 40]))
    num_frames[v] = n
    gt_rows, gt_cells = [], [set() for _ in range(n)]
    f = int(rng.integers(0, 4))
    for tid in range(3):
      length = int(rng.choice([3, 5, 7, 8, 9, 10, 12]))
      start = f if one_track_per_frame else int(rng.integers(0, n - 3))
      cell = int(rng.integers(0, 12))
      box = _box_in_cell(rng, cell)
      for t in range(start, min(start + length, n)):
        if cell in gt_cells[t]:
          break
        box = _jitter_in_cell(rng, box, cell)
        box[2:] = np.minimum(box[2:], box[:2] + 30)
        gt_rows.append([tid, t, *box])
        gt_cells[t].add(cell)
      f = start + length + int(rng.integers(1, 4))
      if one_track_per_frame and f >= n - 2:
        break
    tracks[v] = np.array(gt_rows).reshape(-1, 6)
    rows = []
    for tid, t, *box in gt_rows:
      if rng.random() < 0.8:
        cell = int(box[0] // _CELL + 4 * (box[1] // _CELL))
        near = (_jitter_in_cell(rng, np.array(box), cell) if rng.random() < 0.8
                else _box_in_cell(rng, cell, 3, 5))
        rows.append([t, *near, (rng.choice(tp_bins) + 0.5) / 100])
    for t in range(n):
      cells = [c for c in range(12) if c not in gt_cells[t]]
      rng.shuffle(cells)
      k = min(int(rng.poisson(fp_rate)), len(cells) - 1)
      for c in cells[:k]:
        rows.append([t, *_box_in_cell(rng, c, 3, 20), (rng.integers(1, 100) + 0.5) / 100])
      free += [(v, t, c) for c in cells[k:]]
    preds[v] = rows
  for b, i in zip(tp_bins, rng.choice(len(free), len(tp_bins), replace=False)):
    v, t, c = free[i]
    preds[v].append([t, *_box_in_cell(rng, c, 3, 20), (b + 0.5) / 100])
  preds = {v: np.array(r, float) for v, r in preds.items()}
  return preds, tracks, num_frames


def _to_ssvad(data_schema, preds, tracks, n, with_tracks):
  frame_cls, region_cls = data_schema.VADFrame, data_schema.AnomalousRegion
  gt_frames, pred_frames = [], []
  for t in range(n):
    g = tracks[tracks[:, 1] == t]
    p = preds[preds[:, 0] == t]
    gt_frames.append(frame_cls(
        frame_id=t + 1,
        anomaly_track_id=(int(g[0, 0]) if len(g) else -1) if with_tracks else None,
        anomalous_regions=[region_cls(bounding_box=[int(x) for x in r[2:6]], score=1.0)
                           for r in g]))
    pred_frames.append(frame_cls(
        frame_id=t + 1,
        anomalous_regions=[region_cls(bounding_box=[int(x) for x in r[1:5]], score=float(r[5]))
                           for r in p]))
  common = dict(frames_count=n, is_anomalous_regions_available=True, frame_width=_W,
                frame_height=_H)
  gts = data_schema.VADAnnotation(is_gt=True, is_anomaly_track_id_available=with_tracks,
                                  frames=gt_frames, **common)
  prs = data_schema.VADAnnotation(is_gt=False, is_anomaly_track_id_available=False,
                                  frames=pred_frames, **common)
  return prs, gts


def _ssvad_style_area(fpr, rate):
  """Area the way py-ssvad-metrics integrates our curve.

  Points with FPR > 1 are dropped, and its last thresholds (0 and -0.01)
  turn every frame into one whole-frame predicted region: a false positive
  in each frame (IoU with any GT box here < .1) detecting nothing, the point
  (1, 0). So the curve runs from the last point with FPR <= 1 straight down
  to (1, 0).
  """
  keep = fpr <= 1.0
  x, y = np.r_[fpr[keep], 1.0], np.r_[rate[keep], 0.0]
  return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


@pytest.mark.parametrize("seed,fp_rate,one_track_per_frame", [
    (0, 0.3, True),   # curve ends before FPR 1
    (1, 2.0, True),   # curve crosses FPR 1
    (2, 0.3, False),  # tracks overlap in time: RBDC only (ssvad has one track id per frame)
])
def test_matches_py_ssvad_metrics(seed, fp_rate, one_track_per_frame):
  """Same regions, same rates; the areas differ only at the end of the curve.

  On these inputs every curve point of ours is a point of py-ssvad-metrics'
  curve and vice versa, so its areas equal `_ssvad_style_area` of our curves
  (checked to 1e-12). Ours differ by the end treatment only: when the curve
  stops at (f, r) with f < 1, ours adds the flat (1 - f) * r and ssvad the
  triangle (1 - f) * r / 2; when it crosses FPR 1, ours interpolates at 1
  and ssvad falls to (1, 0) from its last point with FPR <= 1. Observed:

    seed 0: ours RBDC .3363 TBDC .7874; ssvad .2177 / .5503 (curve ends at FPR .526)
    seed 1: ours RBDC .1296 TBDC .5314; ssvad .1277 / .5241 (curve reaches FPR 2.40)
    seed 2: ours RBDC .3633;            ssvad .2492         (curve ends at FPR .537)
  """
  criteria, data_schema = _ssvad()
  preds, tracks, num_frames = _ssvad_case(seed, fp_rate, one_track_per_frame)
  curves = rm.region_curves(preds, tracks, num_frames)
  assert not np.any(curves["fpr"] == 1.0)  # (1, 0) would tie with ssvad's last point
  assert curves["num_tracks"] >= 6 and curves["rbdr"][-1] > 0.3
  ours = rm.rbdc_tbdc(preds, tracks, num_frames)

  acc = criteria.CurrentCriteriaAccumulator(alpha=0.1, beta=0.1)
  for v, n in num_frames.items():
    acc.update(*_to_ssvad(data_schema, preds[v], tracks[v], n, one_track_per_frame))
  theirs = acc.summarize()

  assert theirs["region_roc_auc"] == pytest.approx(
      _ssvad_style_area(curves["fpr"], curves["rbdr"]), abs=1e-12)
  f_end = curves["fpr"][-1]
  if f_end < 1:
    assert ours["rbdc"] - theirs["region_roc_auc"] == pytest.approx(
        (1 - f_end) * curves["rbdr"][-1] / 2, abs=1e-12)
  else:
    assert ours["rbdc"] > theirs["region_roc_auc"]
  if one_track_per_frame:
    assert theirs["track_roc_auc"] == pytest.approx(
        _ssvad_style_area(curves["fpr"], curves["tbdr"]), abs=1e-12)
  else:
    assert theirs["track_roc_auc"] is None
  print(f"seed {seed}: ours {ours}, py-ssvad-metrics {theirs}, curve ends at FPR {f_end:.4f}")


# ------------------------------------------------------------- validation


def _call(preds=None, tracks=None, num_frames=None, **kw):
  return rm.rbdc_tbdc(HAND_PREDS if preds is None else preds,
                      HAND_TRACKS if tracks is None else tracks,
                      HAND_FRAMES if num_frames is None else num_frames, **kw)


@pytest.mark.parametrize("kwargs,match", [
    (dict(preds={"v": np.zeros((3, 5))}), r"predictions\['v'\] must have shape \[K, 6\]"),
    (dict(preds={"v": np.array([[10, 0, 0, 1, 1, .5]])}),
     r"predictions\['v'\]: frame index 10 out of range \[0, 10\)"),
    (dict(preds={"v": np.array([[-1, 0, 0, 1, 1, .5]])}), r"predictions\['v'\]: frame index -1"),
    (dict(preds={"v": np.array([[1.5, 0, 0, 1, 1, .5]])}), "must be integers"),
    (dict(preds={"v": np.array([[1, 0, 0, 1, 1, np.nan]])}), "non-finite"),
    (dict(preds={"v": np.array([[1, 5, 0, 5, 1, .5]])}), r"predictions\['v'\]: 1 empty boxes"),
    (dict(preds={"w": np.array([[1, 0, 0, 1, 1, .5]])}),
     r"\['w'\] appear in predictions but not in num_frames"),
    (dict(tracks={"v": HAND_TRACKS["v"], "x": np.array([[0, 0, 0, 0, 1, 1]])}),
     r"\['x'\] appear in tracks but not in num_frames"),
    (dict(tracks={"v": np.array([[0, 12, 0, 0, 1, 1]])}),
     r"tracks\['v'\]: frame index 12 out of range \[0, 10\)"),
    (dict(tracks={"v": np.zeros((2, 4))}), r"tracks\['v'\] must have shape \[K, 6\]"),
    (dict(tracks={"v": np.array([[0, 1, 0, 0, 1, 1], [0, 1, 2, 2, 3, 3]])}),
     r"tracks\['v'\]: 1 duplicate \(track_id, frame\)"),
    (dict(tracks={"v": np.array([[0.5, 1, 0, 0, 1, 1]])}), "track ids"),
    (dict(tracks={}), "no ground-truth tracks"),
    (dict(tracks={"v": np.zeros((0, 6))}), "no ground-truth tracks"),
    (dict(num_frames={"v": 0}), r"num_frames\['v'\] must be a positive int"),
    (dict(num_frames={"v": 10.0}), r"num_frames\['v'\] must be a positive int"),
    (dict(num_frames={}), "non-empty mapping"),
    (dict(iou_threshold=0.0), "iou_threshold"),
    (dict(track_fraction=1.5), "track_fraction"),
])
def test_validation_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _call(**kwargs)


def test_box_iou_rejects_bad_shape():
  with pytest.raises(ValueError, match=r"a must have shape \[\.\.\., 4\]"):
    rm.box_iou(np.zeros((2, 3)), np.zeros((2, 4)))
