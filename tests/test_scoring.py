"""Hand-computed tests of how per-object scores become frame scores and AUCs.

Covers `evaluate.combine_scores` (per-task standardisation and mean), the `score_stats`
they standardise with as metrics.json stores and reads them,
`metrics.frame_scores_from_objects` (max per frame, video-min floor, the 1/8
box map with a mean filter), `evaluate.video_frame_scores` (stride
interpolation, min-max), `metrics.postprocess` / `gaussian_smooth` and the
micro / macro AUCs of `metrics.evaluate_frames`. Every expected value is a
literal worked out by hand in the comment beside it.
"""

import json
import types
import warnings

import ml_collections
import numpy as np
import pytest

from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import metrics


def _ec(mean_filter=(), sigma=0.0):
  """The slice of `config.eval` that `video_frame_scores` reads."""
  return types.SimpleNamespace(mean_filter=mean_filter, sigma=sigma)


def _no_boxes(n):
  """Dummy [n, 4] boxes for calls without a mean filter (they are unused)."""
  return np.zeros((n, 4), np.float32)


# ------------------------------------------------------------ combine_scores


def test_combine_scores_standardises_then_averages():
  task_scores = {"a": np.array([1.0, 5.0]), "b": np.array([10.0, 20.0])}
  stats = {"a": (1.0, 2.0), "b": (12.0, 4.0)}
  # a: (1 - 1) / 2 = 0,     (5 - 1) / 2 = 2
  # b: (10 - 12) / 4 = -0.5, (20 - 12) / 4 = 2
  # mean over tasks: (0 - 0.5) / 2 = -0.25, (2 + 2) / 2 = 2
  out = evaluate.combine_scores(task_scores, stats)
  assert out.dtype == np.float64
  np.testing.assert_allclose(out, [-0.25, 2.0], rtol=0, atol=1e-15)


def test_combine_scores_raw_mean_without_stats():
  task_scores = {"a": np.array([1.0, 5.0], np.float32),
                 "b": np.array([10.0, 20.0], np.float32)}
  # (1 + 10) / 2 = 5.5, (5 + 20) / 2 = 12.5
  out = evaluate.combine_scores(task_scores, None)
  assert out.dtype == np.float64
  np.testing.assert_allclose(out, [5.5, 12.5], rtol=0, atol=1e-15)


def test_combine_scores_zero_std_is_floored():
  task_scores = {"flat": np.array([0.0, 3e-8]), "b": np.array([4.0, 6.0])}
  stats = {"flat": (0.0, 0.0), "b": (4.0, 2.0)}
  # flat: std 0 -> 1e-8: 0 / 1e-8 = 0, 3e-8 / 1e-8 = 3
  # b:    (4 - 4) / 2 = 0, (6 - 4) / 2 = 1
  # mean: 0, (3 + 1) / 2 = 2
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # a 0-division would warn
    with np.errstate(all="raise"):
      out = evaluate.combine_scores(task_scores, stats)
  assert np.isfinite(out).all()
  np.testing.assert_allclose(out, [0.0, 2.0], rtol=1e-9, atol=1e-12)


def test_combine_scores_ignores_dict_order():
  # Stats are looked up by name, and tasks are summed in sorted-name order, so
  # insertion order changes nothing, not even the rounding: 1 + 1e16 - 1e16
  # is 0 in float64 while 1e16 - 1e16 + 1 is 1.
  # a: (2e16 - 0) / 2 = 1e16; b: (-1e16 - 0) / 1 = -1e16; c: (4 - 1) / 3 = 1
  # sorted a, b, c: (1e16 - 1e16 + 1) / 3 = 1/3
  scores = {"a": np.array([2e16]), "b": np.array([-1e16]),
            "c": np.array([4.0])}
  stats = {"a": (0.0, 2.0), "b": (0.0, 1.0), "c": (1.0, 3.0)}
  forward = evaluate.combine_scores(scores, stats)
  backward = evaluate.combine_scores(
      {k: scores[k] for k in ("c", "b", "a")},
      {k: stats[k] for k in ("b", "c", "a")})
  np.testing.assert_allclose(forward, [1 / 3], rtol=1e-15)
  np.testing.assert_array_equal(backward, forward)


def test_combine_scores_clips_each_standardised_score():
  task_scores = {"a": np.array([1.0, 41.0]), "b": np.array([4.0, 2.0])}
  stats = {"a": (1.0, 2.0), "b": (0.0, 1.0)}
  # a: 0, (41 - 1) / 2 = 20 -> clipped to 3;  b: 4 -> 3, 2
  # mean: (0 + 3) / 2 = 1.5, (3 + 2) / 2 = 2.5 (unclipped: 2, 11)
  np.testing.assert_allclose(evaluate.combine_scores(task_scores, stats), [2.0, 11.0])
  np.testing.assert_allclose(evaluate.combine_scores(task_scores, stats, clip=3.0), [1.5, 2.5])


def test_log_transform_standardises_on_the_log_scale():
  reference = {"a": np.array([1.0, np.e ** 2])}  # logs 0 and 2: mean 1, std 1
  stats = evaluate.reference_stats(reference, "log")
  np.testing.assert_allclose(stats["a"], (1.0, 1.0))
  np.testing.assert_allclose(evaluate.reference_stats(reference, "none")["a"],
                             ((1 + np.e ** 2) / 2, (np.e ** 2 - 1) / 2))
  # log(e^3) = 3 -> (3 - 1) / 1 = 2; a score of 0 is floored at 1e-12 instead of -inf
  out = evaluate.combine_scores({"a": np.array([np.e ** 3, 0.0])}, stats, transform="log")
  np.testing.assert_allclose(out, [2.0, np.log(1e-12) - 1.0])
  with pytest.raises(ValueError, match="score_transform='sqrt'"):
    evaluate.reference_stats(reference, "sqrt")


def test_reference_videos_of_each_choice():
  assert evaluate.reference_videos([0, 2, 3], [1], "held_out") == [1]
  assert evaluate.reference_videos([0, 1, 2], [], "held_out") == [0, 1, 2]  # none held out
  assert evaluate.reference_videos([0, 2, 3], [1], "all_training") == [0, 1, 2, 3]
  with pytest.raises(ValueError, match="eval.reference='val'"):
    evaluate.reference_videos([0], [1], "val")


# ------------------------------------------------------------ score_stats


def test_score_stats_are_stored_with_named_fields_and_read_back(tmp_path):
  from ssmtl_jax.eval import score_video  # pylint: disable=g-import-not-at-top
  stats = {"arrow_of_time": (0.25, 1.5), "distillation": (3.0, 0.5)}
  stored = evaluate.score_stats_json(stats)
  assert stored == {"arrow_of_time": {"mean": 0.25, "std": 1.5},
                    "distillation": {"mean": 3.0, "std": 0.5}}
  assert evaluate.score_stats_json(None) is None
  (tmp_path / "metrics.json").write_text(json.dumps({"score_stats": stored}))
  assert score_video.load_score_stats(str(tmp_path)) == stats


def test_score_stats_of_older_runs_as_bare_mean_std_pairs_still_read(tmp_path):
  from ssmtl_jax.eval import score_video  # pylint: disable=g-import-not-at-top
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"score_stats": {"arrow_of_time": [0.25, 1.5], "distillation": [3.0, 0.5]}}))
  assert score_video.load_score_stats(str(tmp_path)) == {"arrow_of_time": (0.25, 1.5),
                                                         "distillation": (3.0, 0.5)}
  (tmp_path / "metrics.json").write_text(json.dumps({"score_stats": None}))
  assert score_video.load_score_stats(str(tmp_path)) is None
  (tmp_path / "metrics.json").write_text(json.dumps({"score_stats": {"a": [1.0]}}))
  with pytest.raises(ValueError, match=r"metrics.json: score_stats\['a'\]"):
    score_video.load_score_stats(str(tmp_path))


def test_score_stats_on_another_scale_than_the_config_are_refused(tmp_path):
  from ssmtl_jax.eval import score_video  # pylint: disable=g-import-not-at-top
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"score_stats": {"a": {"mean": 0.0, "std": 1.0}}, "score_transform": "log"}))
  assert score_video.load_score_stats(str(tmp_path), "log") == {"a": (0.0, 1.0)}
  with pytest.raises(ValueError, match="'log' scale but eval.score_transform='none'"):
    score_video.load_score_stats(str(tmp_path), "none")


# ------------------------------------------------ frame_scores_from_objects


def test_frame_score_is_max_object_and_empty_frames_get_video_min():
  # Frame 1 holds 0.2, 0.7, 0.4 -> 0.7; frame 3 holds -0.5, 0.1 -> 0.1;
  # frames 0 and 2 are empty -> video min -0.5 (not 0: scores can be
  # negative after standardisation).
  out = metrics.frame_scores_from_objects(
      4, np.array([3, 1, 1, 3, 1]), np.array([-0.5, 0.2, 0.7, 0.1, 0.4]))
  np.testing.assert_array_equal(out, [-0.5, 0.7, -0.5, 0.1])


def test_frame_scores_of_video_without_objects_are_zero():
  out = metrics.frame_scores_from_objects(3, np.array([], np.int64),
                                          np.array([]))
  np.testing.assert_array_equal(out, [0.0, 0.0, 0.0])
  # The box-map path too: an all-floor map with floor 0.
  out = metrics.frame_scores_from_objects(
      3, np.array([], np.int64), np.array([]), boxes=np.zeros((0, 4)),
      frame_shape=(16, 16), mean_filter=(3, 16, 16))
  np.testing.assert_array_equal(out, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("frames,scores,match", [
    ([0, 3], [0.1, 0.2], r"\[0, 3\)"),    # index == num_frames
    ([-1, 2], [0.1, 0.2], r"\[0, 3\)"),   # negative index
    ([0, 1, 2], [0.1, 0.2], "differ"),    # 3 frames, 2 scores
    ([0], [0.1, 0.2], "differ"),          # 1 frame, 2 scores
])
def test_frame_scores_errors(frames, scores, match):
  with pytest.raises(ValueError, match=match):
    metrics.frame_scores_from_objects(3, np.array(frames), np.array(scores))


def test_frame_scores_box_count_mismatch_raises():
  with pytest.raises(ValueError, match="1 boxes for 2 objects"):
    metrics.frame_scores_from_objects(
        3, np.array([0, 1]), np.array([0.1, 0.2]), boxes=[[0, 0, 8, 8]],
        frame_shape=(16, 16), mean_filter=(1, 8, 8))


# Default downscale 8: a 24x24 frame is a 3x3 map. Object 0 (frame 0, score
# 10) has box x 8..17, y 8..16 -> cells x floor(8/8)=1 .. ceil(17/8)=3 (cols
# 1, 2), y 1 .. 2 (row 1). Object 1 (frame 1, score 1, box in cell (0, 0)) is
# the video min, so every other cell holds 1. Frame 0's map:
#   1  1  1
#   1 10 10
#   1  1  1
_MAP_FRAMES = np.array([0, 1])
_MAP_SCORES = np.array([10.0, 1.0])
_MAP_BOXES = np.array([[8, 8, 17, 16], [0, 0, 4, 4]], np.float64)


def test_frame_scores_spatial_mean_filter_on_downscaled_map():
  # mean_filter (1, 24, 24) -> (1, 24/8, 24/8) = (1, 3, 3) cells, symmetric
  # padding (the edge cell is repeated). Cell (1, 2) sees rows 0-2 and cols
  # 1, 2, 2: (1+1+1) + (10+10+10) + (1+1+1) = 36 -> 36/9 = 4, the frame max
  # (cell (1, 1): 3 + 21 + 3 = 27 -> 3). Frame 1 is all 1 -> 1.
  out = metrics.frame_scores_from_objects(
      2, _MAP_FRAMES, _MAP_SCORES, boxes=_MAP_BOXES, frame_shape=(24, 24),
      mean_filter=(1, 24, 24))
  np.testing.assert_allclose(out, [4.0, 1.0], rtol=1e-12)


def test_frame_scores_spatiotemporal_mean_filter_on_downscaled_map():
  # Spatially as above, frame 0 becomes (per column, rows alike)
  #   col 0: cols 0,0,1 -> (3 + 12 + 3) / 9 = 2;  col 1: 3;  col 2: 4
  # and frame 1 stays all 1. Temporal size 3, symmetric padding over 2
  # frames: frame 0 = (f0 + f0 + f1) / 3 -> max (4 + 4 + 1) / 3 = 3,
  # frame 1 = (f0 + f1 + f1) / 3 -> max (4 + 1 + 1) / 3 = 2.
  out = metrics.frame_scores_from_objects(
      2, _MAP_FRAMES, _MAP_SCORES, boxes=_MAP_BOXES, frame_shape=(24, 24),
      mean_filter=(3, 24, 24))
  np.testing.assert_allclose(out, [3.0, 2.0], rtol=1e-12)


# ------------------------------------------------------ video_frame_scores


def test_video_frame_scores_stride_one_is_plain_max():
  # No interpolation at stride 1: the empty frame 1 gets the video min 1,
  # not (1 + 3) / 2.
  out = evaluate.video_frame_scores(3, 1, np.array([0, 2]),
                                    np.array([1.0, 3.0]), _no_boxes(2),
                                    (16, 16), _ec(), minmax=False)
  np.testing.assert_array_equal(out, [1.0, 1.0, 3.0])


def test_video_frame_scores_stride_two_interpolates():
  # Scored frames 0, 2, 4: max(1, 3) = 3, 5, 2. Odd frames interpolate:
  # f1 = (3 + 5) / 2 = 4, f3 = (5 + 2) / 2 = 3.5; f5 lies past the last
  # scored frame and holds f4 = 2 (np.interp's edge rule).
  out = evaluate.video_frame_scores(6, 2, np.array([0, 0, 2, 4]),
                                    np.array([1.0, 3.0, 5.0, 2.0]),
                                    _no_boxes(4), (16, 16), _ec(),
                                    minmax=False)
  np.testing.assert_allclose(out, [3.0, 4.0, 5.0, 3.5, 2.0, 2.0], rtol=0,
                             atol=1e-15)


def test_video_frame_scores_stride_two_empty_scored_frame_gets_floor():
  # Scored frames 0, 2, 4 -> 2, (empty: video min 2), 6; then f1 = 2,
  # f3 = (2 + 6) / 2 = 4.
  out = evaluate.video_frame_scores(5, 2, np.array([0, 4]),
                                    np.array([2.0, 6.0]), _no_boxes(2),
                                    (16, 16), _ec(), minmax=False)
  np.testing.assert_allclose(out, [2.0, 2.0, 2.0, 4.0, 6.0], rtol=0,
                             atol=1e-15)


def test_video_frame_scores_minmax_spans_zero_to_one():
  # Raw (see the stride-two test) [3, 4, 5, 3.5, 2, 2], min 2, max 5:
  # (x - 2) / 3 -> [1/3, 2/3, 1, 1/2, 0, 0].
  out = evaluate.video_frame_scores(6, 2, np.array([0, 0, 2, 4]),
                                    np.array([1.0, 3.0, 5.0, 2.0]),
                                    _no_boxes(4), (16, 16), _ec(),
                                    minmax=True)
  assert out.min() == 0.0 and out.max() == 1.0
  np.testing.assert_allclose(out, [1 / 3, 2 / 3, 1.0, 0.5, 0.0, 0.0],
                             rtol=1e-12, atol=1e-15)


def test_video_frame_scores_reads_mean_filter_from_config_dict():
  # A ConfigDict holds the filter as a list; the result is the spatial
  # hand case of frame_scores_from_objects above: [4, 1].
  ec = ml_collections.ConfigDict({"mean_filter": [1, 24, 24], "sigma": 0.0})
  out = evaluate.video_frame_scores(2, 1, _MAP_FRAMES, _MAP_SCORES,
                                    _MAP_BOXES, [24, 24], ec, minmax=False)
  np.testing.assert_allclose(out, [4.0, 1.0], rtol=1e-12)


# --------------------------------------------------- postprocess / smoothing


def test_postprocess_sigma_zero_leaves_scores_unchanged():
  x = np.array([0.3, -1.2, 5.0, 0.3])
  out = metrics.postprocess(x, 0.0, minmax=False)
  np.testing.assert_array_equal(out, x)
  # With min-max only the rescale applies: min -1.2, max 5.0, range 6.2:
  # (0.3 + 1.2) / 6.2 = 1.5 / 6.2 = 0.2419354838...
  np.testing.assert_allclose(metrics.postprocess(x, 0.0, minmax=True),
                             [0.24193548387096775, 0.0, 1.0,
                              0.24193548387096775], rtol=1e-12)


@pytest.mark.parametrize("n,sigma", [(9, 1.5), (4, 3.0)])
def test_gaussian_smooth_constant_stays_constant(n, sigma):
  # (4, 3.0): radius int(4 * 3 + 0.5) = 12 > 4 frames, so the padding
  # reflects several times.
  out = metrics.gaussian_smooth(np.full(n, -2.5), sigma)
  assert out.shape == (n,)
  np.testing.assert_allclose(out, -2.5, rtol=1e-12)


# truncate=1, sigma=1: radius int(1 * 1 + 0.5) = 1, kernel exp(-x^2 / 2) at
# x = -1, 0, 1 -> [e, 1, e] / (1 + 2e) with e = exp(-0.5) = 0.6065306597:
# side weight w1 = 0.6065306597 / 2.2130613194 = 0.2740686191,
# centre weight w0 = 1 / 2.2130613194 = 0.4518627619.
_W1 = 0.274068619061197
_W0 = 0.45186276187760605


def test_gaussian_smooth_interior_impulse_hand_case():
  # [0 0 1 0 0] -> [0, w1, w0, w1, 0]; mass w0 + 2 w1 = 1, peak at index 2.
  out = metrics.gaussian_smooth([0.0, 0.0, 1.0, 0.0, 0.0], 1.0, truncate=1.0)
  np.testing.assert_allclose(out, [0.0, _W1, _W0, _W1, 0.0], rtol=1e-12,
                             atol=1e-15)
  assert out.sum() == pytest.approx(1.0, abs=1e-12)
  assert out.argmax() == 2


def test_gaussian_smooth_border_impulse_uses_symmetric_padding():
  # Symmetric padding (the border sample repeated, scipy "reflect"):
  # [1 | 1 0 0 0 | 0] -> y0 = w1*1 + w0*1 + w1*0 = 0.7259313809, y1 = w1.
  # Zero padding would give y0 = w0 = 0.4519 and lose mass; numpy's
  # "reflect" (edge not repeated) would give y0 = w0 too.
  out = metrics.gaussian_smooth([1.0, 0.0, 0.0, 0.0], 1.0, truncate=1.0)
  np.testing.assert_allclose(out, [0.725931380938803, _W1, 0.0, 0.0],
                             rtol=1e-12, atol=1e-15)
  assert out.argmax() == 0


def test_gaussian_smooth_impulse_keeps_mass_and_peak():
  # Symmetric padding folds the kernel's tails back inside, so mass is kept
  # even for an impulse on the border (radius 8 <= 20 frames); the peak
  # stays where the impulse was.
  for where in (0, 7, 19):
    x = np.zeros(20)
    x[where] = 2.0
    out = metrics.gaussian_smooth(x, sigma=2.0)
    assert out.sum() == pytest.approx(2.0, abs=1e-12)
    assert out.argmax() == where
    assert out[where] < 2.0  # it did smooth


# ------------------------------------------------------------------ AUCs


def test_micro_auc_concatenates_videos():
  # Frames [0.1, 0.4 | 0.35, 0.8], labels [0, 0 | 1, 1]: positive 0.35
  # beats 0.1 only, 0.8 beats both -> 3 of 4 pairs = 0.75 (neither video
  # has an AUC of its own).
  labels = {"v1": np.array([0, 0]), "v2": np.array([1, 1])}
  scores = {"v1": np.array([0.1, 0.4]), "v2": np.array([0.35, 0.8])}
  assert metrics.micro_auc(labels, scores) == pytest.approx(0.75, abs=1e-15)


# v1 and v2 have both classes, v3 is all normal. Binary-exact scores.
_LABELS = {"v1": np.array([0, 1]), "v2": np.array([1, 0, 1]),
           "v3": np.array([0, 0, 0])}
_SCORES = {"v1": np.array([0.125, 0.375]), "v2": np.array([0.75, 0.5, 0.25]),
           "v3": np.array([0.0625, 1.0, 0.5])}


def test_evaluate_frames_hand_case():
  out = metrics.evaluate_frames(_LABELS, _SCORES)
  # Micro: positives 0.375, 0.75, 0.25 vs negatives 0.125, 0.5, 0.0625, 1,
  # 0.5: 0.375 beats 2 (0.125, 0.0625), 0.75 beats 4 (all but 1.0), 0.25
  # beats 2 (0.125, 0.0625) -> 8 / 15.
  assert out["micro_auc"] == pytest.approx(8 / 15, abs=1e-15)
  # Per video: v1 1/1 = 1; v2 positives 0.75, 0.25 vs 0.5 -> 1/2; v3 None.
  assert out["per_video_auc"] == {"v1": 1.0, "v2": 0.5, "v3": None}
  # "macro_auc_skip_single_class": (1 + 0.5) / 2, v3 left out.
  assert out["macro_auc_skip_single_class"] == pytest.approx(0.75,
                                                             abs=1e-15)
  # "macro_auc" is the dummy_frames convention: min-max each video, append
  # a normal frame scored 0 and an abnormal frame scored 1.
  # v1: [0, 1] + [0, 1], labels [0 1 0 1] -> 1.
  # v2: [1, 0.5, 0] + [0, 1], labels [1 0 1 0 1]: positives 1, 0, 1 vs
  #     negatives 0.5, 0 -> 2 + (0 + 1/2) + 2 = 4.5 of 6 = 0.75.
  # v3: [0, 1, 7/15] + [0, 1], labels [0 0 0 0 1]: the dummy 1 beats 0,
  #     7/15, 0 and ties 1 -> 3.5 / 4 = 0.875.
  # (1 + 0.75 + 0.875) / 3 = 0.875.
  assert out["macro_auc"] == pytest.approx(0.875, abs=1e-15)


def test_macro_auc_dummy_frames_all_abnormal_video():
  # All abnormal [3, 1, 2] -> min-max [1, 0, 0.5] + normal 0 + abnormal 1:
  # positives 1, 0, 0.5, 1 vs the one negative 0 -> 1 + 1/2 + 1 + 1 = 3.5
  # of 4 = 0.875. Without the dummies it has no AUC at all.
  labels = {"v": np.array([1, 1, 1])}
  scores = {"v": np.array([3.0, 1.0, 2.0])}
  assert metrics.macro_auc(labels, scores, "dummy_frames") == pytest.approx(
      0.875, abs=1e-15)
  with pytest.raises(ValueError, match="both classes"):
    metrics.macro_auc(labels, scores, "skip_single_class")
