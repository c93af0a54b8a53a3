"""Tests for ssmtl_jax.eval.metrics; expected values are worked out by hand."""

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ssmtl_jax.eval import metrics

# Two-class video "a", two-class video "b", all-normal video "c".
LABELS = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1]),
          "c": np.array([0, 0, 0])}
SCORES = {"a": np.array([0.1, 0.4, 0.35, 0.8]), "b": np.array([2.0, 3.0]),
          "c": np.array([5.0, 5.0, 6.0])}


# ---------------------------------------------------------------- roc_auc


def test_roc_auc_hand_case():
  # Positive 0.35 beats one of two negatives, 0.8 beats both: 3 of 4 pairs.
  assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_roc_auc_ties_count_half():
  assert metrics.roc_auc([0, 1], [0.5, 0.5]) == 0.5
  # Pairs: (0.5 vs 0.2)=1, (0.5 vs 0.5)=1/2, (0.9 vs both)=2 -> 3.5 / 4.
  assert metrics.roc_auc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9]) == 0.875
  assert metrics.roc_auc([1, 0, 1, 0], [3.0, 3.0, 3.0, 3.0]) == 0.5


def test_roc_auc_perfect_and_inverted():
  assert metrics.roc_auc([0, 0, 1], [0.0, 0.1, 0.2]) == 1.0
  assert metrics.roc_auc([1, 1, 0], [0.0, 0.1, 0.2]) == 0.0
  assert metrics.roc_auc(np.array([False, True]), [1, 2]) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_sklearn(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(2, 500))
  labels = rng.integers(0, 2, n)
  labels[:2] = [0, 1]
  # Rounding makes many ties, the case that differs between AUC recipes.
  scores = np.round(rng.normal(size=n) + 0.5 * labels, 1)
  np.testing.assert_allclose(metrics.roc_auc(labels, scores),
                             roc_auc_score(labels, scores), rtol=0, atol=1e-12)


@pytest.mark.parametrize("labels,scores,match", [
    ([0, 0, 0], [0.1, 0.2, 0.3], "both classes"),
    ([1, 1], [0.1, 0.2], "both classes"),
    ([0, 1], [0.1, 0.2, 0.3], "length"),
    ([0, 1], [0.1, np.nan], "non-finite"),
    ([0, 1], [0.1, np.inf], "non-finite"),
    ([0, 2], [0.1, 0.2], "0/1"),
])
def test_roc_auc_errors(labels, scores, match):
  with pytest.raises(ValueError, match=match):
    metrics.roc_auc(labels, scores)


# ------------------------------------------------------- micro and macro


def _two(d):
  return {k: d[k] for k in ("a", "b")}


def test_micro_auc_hand_case():
  # Frames [.1 .4 .35 .8 2 3], positives .35 .8 3: they beat 1 + 2 + 3 of
  # the 3 negatives -> 6 / 9. Lower than either per-video AUC because video
  # b's scores live on a larger scale.
  assert metrics.micro_auc(_two(LABELS), _two(SCORES)) == pytest.approx(2 / 3)


def test_micro_auc_uses_sorted_keys():
  labels = {"b": LABELS["b"], "a": LABELS["a"]}
  scores = {"a": SCORES["a"], "b": SCORES["b"]}
  assert metrics.micro_auc(labels, scores) == pytest.approx(2 / 3)


def test_macro_auc_skip_single_class():
  # (0.75 + 1) / 2; the all-normal video "c" is left out.
  assert metrics.macro_auc(_two(LABELS), _two(SCORES),
                           "skip_single_class") == pytest.approx(0.875)
  assert metrics.macro_auc(LABELS, SCORES,
                           "skip_single_class") == pytest.approx(0.875)


def test_macro_auc_dummy_frames():
  # a min-max -> [0, 3/7, 2.5/7, 1] + normal 0 + abnormal 1: positives
  # 2.5/7, 1, 1 beat 2 + 3 + 3 of the 3 negatives (0, 3/7, 0) -> 8/9.
  # b -> [0, 1] + dummies -> 1.
  expected_ab = (8 / 9 + 1) / 2
  assert metrics.macro_auc(_two(LABELS), _two(SCORES)) == pytest.approx(
      expected_ab)
  # c -> [0, 0, 1] + normal 0 + abnormal 1: the abnormal dummy beats 3 of 4
  # negatives and ties the 4th -> 3.5 / 4.
  assert metrics.macro_auc(LABELS, SCORES, "dummy_frames") == pytest.approx(
      (8 / 9 + 1 + 0.875) / 3)


def test_macro_auc_dummy_frames_all_abnormal_video():
  # All abnormal, min-max [0, 1] + dummies: positives 0, 1, 1(dummy) vs the
  # single normal dummy 0 -> (0.5 + 1 + 1) / 3.
  got = metrics.macro_auc({"v": [1, 1]}, {"v": [4.0, 9.0]})
  assert got == pytest.approx(2.5 / 3)


def test_macro_auc_errors():
  with pytest.raises(ValueError, match="dummy_frames, skip_single_class"):
    metrics.macro_auc(LABELS, SCORES, "bogus")
  with pytest.raises(ValueError, match="both classes"):
    metrics.macro_auc({"c": LABELS["c"]}, {"c": SCORES["c"]},
                      "skip_single_class")


def test_mismatched_videos_are_named():
  with pytest.raises(ValueError, match="'c'"):
    metrics.micro_auc(LABELS, _two(SCORES))
  bad = dict(SCORES, b=np.array([1.0, 2.0, 3.0]))
  with pytest.raises(ValueError, match="video 'b'"):
    metrics.macro_auc(LABELS, bad)
  with pytest.raises(ValueError, match="video 'a'"):
    metrics.micro_auc(LABELS, dict(SCORES, a=np.array([0, np.nan, 0, 0])))


def test_evaluate_frames():
  out = metrics.evaluate_frames(LABELS, SCORES)
  assert set(out) == {"micro_auc", "macro_auc",
                      "macro_auc_skip_single_class", "per_video_auc"}
  assert out["micro_auc"] == pytest.approx(metrics.micro_auc(LABELS, SCORES))
  assert out["macro_auc"] == pytest.approx((8 / 9 + 1 + 0.875) / 3)
  assert out["macro_auc_skip_single_class"] == pytest.approx(0.875)
  assert out["per_video_auc"] == {"a": 0.75, "b": 1.0, "c": None}


def test_evaluate_frames_no_two_class_video():
  labels = {"x": np.array([0, 0]), "y": np.array([1, 1])}
  scores = {"x": np.array([0.0, 0.1]), "y": np.array([0.5, 0.9])}
  out = metrics.evaluate_frames(labels, scores)
  assert out["micro_auc"] == 1.0
  assert out["macro_auc_skip_single_class"] is None
  assert out["per_video_auc"] == {"x": None, "y": None}


# ----------------------------------------------- smoothing and min-max


def test_gaussian_smooth_keeps_constant_and_length():
  for n in (1, 3, 50):
    out = metrics.gaussian_smooth(np.full(n, 2.5), sigma=4.0)
    assert out.shape == (n,)
    np.testing.assert_allclose(out, 2.5)


def test_gaussian_smooth_conserves_mass_away_from_borders():
  x = np.zeros(101)
  x[50] = 3.0
  out = metrics.gaussian_smooth(x, sigma=5.0)
  assert out.sum() == pytest.approx(3.0)
  assert out.argmax() == 50
  np.testing.assert_allclose(out, out[::-1])  # symmetric kernel


@pytest.mark.parametrize("n,sigma", [(40, 3.0), (7, 2.5), (5, 10.0)])
def test_gaussian_smooth_matches_scipy(n, sigma):
  x = np.random.default_rng(0).normal(size=n)
  np.testing.assert_allclose(
      metrics.gaussian_smooth(x, sigma),
      ndimage.gaussian_filter1d(x, sigma, mode="reflect"), atol=1e-12)


def test_gaussian_smooth_sigma_zero_is_identity():
  x = np.array([0.3, 0.1, 0.7])
  out = metrics.gaussian_smooth(x, 0)
  np.testing.assert_array_equal(out, x)
  assert out is not x
  with pytest.raises(ValueError, match="sigma"):
    metrics.gaussian_smooth(x, -1.0)


def test_minmax_per_video():
  np.testing.assert_allclose(metrics.minmax_per_video([2.0, 4.0, 6.0]),
                             [0.0, 0.5, 1.0])
  np.testing.assert_array_equal(metrics.minmax_per_video([3.0, 3.0]),
                                [0.0, 0.0])
  assert metrics.minmax_per_video([]).shape == (0,)


def test_postprocess():
  x = np.array([0.0, 0.0, 4.0, 0.0, 0.0, 1.0])
  np.testing.assert_allclose(metrics.postprocess(x, 1.0, minmax=False),
                             metrics.gaussian_smooth(x, 1.0))
  out = metrics.postprocess(x, 1.0, minmax=True)
  assert out.min() == 0.0 and out.max() == 1.0
  np.testing.assert_allclose(metrics.postprocess(x, 0, minmax=False), x)


# ------------------------------------------------- frame scores from objects


def test_frame_scores_max_per_frame_and_empty_frames_get_min():
  out = metrics.frame_scores_from_objects(
      5, np.array([0, 0, 2, 4]), np.array([0.3, 0.9, 0.5, 0.1]))
  np.testing.assert_allclose(out, [0.9, 0.1, 0.5, 0.1, 0.1])


def test_frame_scores_no_objects():
  out = metrics.frame_scores_from_objects(3, np.array([], int), np.array([]))
  np.testing.assert_array_equal(out, [0.0, 0.0, 0.0])
  assert metrics.frame_scores_from_objects(0, [], []).shape == (0,)


def test_frame_scores_spatial_mean_filter_hand_case():
  # One 1x3 frame: map [1, 0, 0] (video min 0). Box mean of width 3 with
  # symmetric padding [1 | 1 0 0 | 0] -> [2/3, 1/3, 0]; frame score 2/3.
  out = metrics.frame_scores_from_objects(
      1, [0, 0], [1.0, 0.0], boxes=[[0, 0, 1, 1], [1, 0, 3, 1]],
      frame_shape=(1, 3), mean_filter=(1, 1, 3), downscale=1)
  np.testing.assert_allclose(out, [2 / 3])


def test_frame_scores_temporal_mean_filter_hand_case():
  # Frame 1 holds scores 1.0 (left half) and 0.5; every other cell holds the
  # video min 0.5. A temporal mean of 3 (symmetric padding) gives the left
  # cells (0.5 + 1 + 0.5) / 3 in frames 0-2 (frame 0 pads with itself) and
  # leaves frame 3 at 0.5.
  out = metrics.frame_scores_from_objects(
      4, [1, 1], [1.0, 0.5], boxes=[[0, 0, 2, 2], [1, 0, 4, 1]],
      frame_shape=(2, 4), mean_filter=(3, 1, 1), downscale=1)
  np.testing.assert_allclose(out, [2 / 3, 2 / 3, 2 / 3, 0.5])


@pytest.mark.parametrize("size", [(3, 3, 5), (4, 2, 1)])
def test_frame_scores_box_map_matches_bruteforce(size):
  rng = np.random.default_rng(1)
  t, h, w, n = 6, 9, 11, 12
  frames = rng.integers(0, t, n)
  scores = rng.normal(size=n)
  xy = rng.integers(0, [w, h], (n, 2))
  wh = rng.integers(1, 5, (n, 2))
  boxes = np.concatenate([xy, xy + wh], axis=1)
  dense = np.full((t, h, w), scores.min())
  for f, s, (x1, y1, x2, y2) in zip(frames, scores, boxes):
    region = dense[f, y1:y2, x1:x2]
    np.maximum(region, s, out=region)
  expected = ndimage.uniform_filter(dense, size, mode="reflect").max(
      axis=(1, 2))
  got = metrics.frame_scores_from_objects(
      t, frames, scores, boxes=boxes, frame_shape=(h, w), mean_filter=size,
      downscale=1)
  np.testing.assert_allclose(got, expected, atol=1e-12)


def test_frame_scores_identity_filter_equals_fast_path():
  # At 1/8 resolution, with tiny and out-of-frame boxes, every object must
  # still land in at least one cell of its frame.
  frames = np.array([0, 0, 1, 3])
  scores = np.array([0.2, 0.7, -1.0, 0.4])
  boxes = np.array([[0, 0, 1, 1], [60, 30, 63, 31], [100, 100, 120, 130],
                    [-20, -20, -10, -5]], float)
  fast = metrics.frame_scores_from_objects(4, frames, scores)
  mapped = metrics.frame_scores_from_objects(
      4, frames, scores, boxes=boxes, frame_shape=(32, 64),
      mean_filter=(1, 1, 1))
  np.testing.assert_allclose(mapped, fast)
  np.testing.assert_allclose(fast, [0.7, -1.0, -1.0, 0.4])


@pytest.mark.parametrize("kwargs,match", [
    (dict(frames=[0, 5], scores=[0.1, 0.2]), r"\[0, 3\)"),
    (dict(frames=[0], scores=[0.1, 0.2]), "differ"),
    (dict(frames=[0.5], scores=[0.1]), "integers"),
    (dict(frames=[0], scores=[np.nan]), "non-finite"),
    (dict(frames=[0], scores=[0.1], mean_filter=(1, 1, 1)), "boxes"),
    (dict(frames=[0], scores=[0.1], boxes=[[4, 0, 2, 1]], frame_shape=(8, 8),
          mean_filter=(1, 1, 1)), "x2 >= x1"),
    (dict(frames=[0], scores=[0.1], boxes=[[0, 0, 2, 1]], frame_shape=(8, 8),
          mean_filter=(0, 1, 1)), "mean_filter"),
])
def test_frame_scores_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    metrics.frame_scores_from_objects(3, **kwargs)
