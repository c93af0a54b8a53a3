"""Overlay videos: boxes coloured by score, a frame-score bar, atomic writes."""

import os

import cv2
import numpy as np
import pytest

from ssmtl_jax import overlay


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
  assert not os.listdir(tmp_path)
