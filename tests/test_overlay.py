"""Overlay videos: boxes coloured by score, a frame-score bar, H.264 (mp4v fallback), atomic
writes."""

import os
import sys
import warnings

import av

import cv2
import numpy as np
import pytest

from ssmtl_jax.eval import overlay


def _read_all(path):
  cap = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, frame = cap.read()
    if not ok:
      break
    frames.append(frame)
  cap.release()
  return np.stack(frames)


def test_score_colors_run_from_blue_to_red():
  colors = overlay.score_colors(np.array([0.0, 1.0, 5.0, -3.0]), 0.0, 1.0).astype(int)
  blue, red = colors[0], colors[1]
  assert blue[0] > blue[2] and red[2] > red[0]  # BGR
  np.testing.assert_array_equal(colors[2], colors[1])  # clipped above the range
  np.testing.assert_array_equal(colors[3], colors[0])  # and below


def test_overlay_video_draws_boxes_in_score_colours(tmp_path):
  frames = np.full((6, 48, 64, 1), 128, np.uint8)
  frame_scores = np.linspace(0, 1, 6)
  region_frames = np.array([2, 2])
  boxes = np.array([[4, 4, 20, 30], [36, 10, 60, 40]], np.float64)
  scores = np.array([0.0, 1.0])
  path = str(tmp_path / "out" / "v.mp4")
  overlay.write_overlay_video(path, frames, frame_scores, region_frames, boxes, scores,
                              labels=np.array([0, 0, 1, 1, 0, 0]), score_range=(0.0, 1.0))
  assert os.listdir(tmp_path / "out") == ["v.mp4"]  # no temporary file left behind
  video = _read_all(path).astype(int)
  assert video.shape == (6, 48 + overlay._BAR_HEIGHT, 64, 3)
  # Frame 2: the low-score box edge is blue, the high-score box edge is red (lossy codec:
  # compare channels, not exact values). Frame 0 has no boxes: the same pixels stay grey.
  low_edge, high_edge = video[2, 15, 4], video[2, 25, 36]
  assert low_edge[0] > low_edge[2] + 40
  assert high_edge[2] > high_edge[0] + 40
  assert abs(video[0, 15, 4, 0] - video[0, 15, 4, 2]) < 30
  # The bar under the frame marks ground-truth anomalies (reddish shade) where labels are 1.
  bar = video[:, 48 + 30]  # a row below the text and away from the curve at these columns
  assert bar[0, 25, 2] > 150 and bar[0, 2].max() < 60


def test_overlay_rejects_mismatched_scores(tmp_path):
  with pytest.raises(ValueError, match="3 frame scores for 4 frames"):
    overlay.write_overlay_video(str(tmp_path / "v.mp4"), np.zeros((4, 8, 8, 3), np.uint8),
                                np.zeros(3), [], np.zeros((0, 4)), [])
  with pytest.raises(ValueError, match="frame rate must be > 0"):
    overlay.write_overlay_video(str(tmp_path / "v.mp4"), np.zeros((4, 8, 8, 3), np.uint8),
                                np.zeros(4), [], np.zeros((0, 4)), [], fps=0)
  assert not os.listdir(tmp_path)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
  calls = []

  def fail_on_third_frame(image):
    calls.append(1)
    if len(calls) == 3:
      raise RuntimeError("drawing failed")
    return image

  monkeypatch.setattr(overlay, "_pad_even", fail_on_third_frame)
  with pytest.raises(RuntimeError, match="drawing failed"):
    _write_plain(tmp_path / "v.mp4")
  assert not os.listdir(tmp_path)


def _write_plain(path, num=5, height=48, width=64):
  frames = np.full((num, height, width, 1), 128, np.uint8)
  return overlay.write_overlay_video(str(path), frames, np.linspace(0, 1, num), [1],
                                     np.array([[4, 4, 20, 30]]), [1.0])


def test_overlay_is_h264_with_the_index_first(tmp_path):
  path = _write_plain(tmp_path / "v.mp4", num=7)
  with av.open(path) as container:
    stream = container.streams.video[0]
    assert stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (64, 48 + overlay._BAR_HEIGHT)
    assert sum(1 for _ in container.decode(video=0)) == 7
  # faststart: the moov atom (the index) precedes mdat, so a player can start while the file
  # is still downloading; the box type follows each box's 4-byte size.
  data = open(path, "rb").read()
  moov, mdat = data.find(b"moov"), data.find(b"mdat")
  assert 0 < moov < mdat


def test_odd_frame_sizes_are_padded_not_cropped(tmp_path):
  frames = np.full((3, 47, 63, 1), 128, np.uint8)
  frames[:, :, -1] = 250  # the last column and row of the input must survive
  frames[:, -1, :] = 250
  path = overlay.write_overlay_video(str(tmp_path / "v.mp4"), frames, np.zeros(3), [],
                                     np.zeros((0, 4)), [])
  with av.open(path) as container:
    stream = container.streams.video[0]
    assert (stream.width, stream.height) == (64, 47 + overlay._BAR_HEIGHT + 1)
  video = _read_all(path).astype(int)
  assert video.shape == (3, 47 + overlay._BAR_HEIGHT + 1, 64, 3)
  assert video[1, 20, 62].min() > 200 and video[1, 46, 30].min() > 200  # kept
  assert video[1, 20, 63].max() < 80 and video[1, -1, 30].max() < 80  # black padding


def _fallback_writes_mp4v(path, match):
  with pytest.warns(RuntimeWarning, match=match):
    _write_plain(path, num=4)
  assert _read_all(str(path)).shape == (4, 48 + overlay._BAR_HEIGHT, 64, 3)  # OpenCV reads it
  with av.open(str(path)) as container:  # the module imported before the monkeypatch
    assert container.streams.video[0].codec_context.name == "mpeg4"  # MPEG-4 Part 2
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # said once, not for every video
    _write_plain(path.with_name("again.mp4"), num=4)


def test_without_pyav_overlays_fall_back_to_mp4v(tmp_path, monkeypatch):
  monkeypatch.setattr(overlay, "_warned_fallback", set())
  monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
  _fallback_writes_mp4v(tmp_path / "v.mp4", "PyAV is not importable")


def test_without_libx264_overlays_fall_back_to_mp4v(tmp_path, monkeypatch):
  monkeypatch.setattr(overlay, "_warned_fallback", set())
  monkeypatch.setattr(overlay, "_H264_ENCODER", "no_such_h264_encoder")
  _fallback_writes_mp4v(tmp_path / "v.mp4", "has no no_such_h264_encoder encoder")
