"""Tests for data_prep.cubes: window clamping, crops, grayscale, writing."""

import dataclasses

import cv2
import numpy as np
import pytest

from data_prep import cubes
from data_prep import records
from ssmtl_jax.data import cube_source


def _video(num_frames=6, height=40, width=50, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 256, (num_frames, height, width, channels), dtype=np.uint8)
  # Tag each frame so clamping is visible: pixel (0, 0) holds the frame index.
  frames[:, 0, 0, :] = np.arange(num_frames)[:, None]
  return frames


def test_window_clamps_at_video_ends():
  frames = _video()
  full = np.array([[0, 0, 50, 40]])
  out = cubes.extract_windows(frames, 0, full, half_window=2, crop_size=8,
                              grayscale=False)
  assert out.shape == (1, 5, 8, 8, 3)
  np.testing.assert_array_equal(cubes.window_indices(0, 2, 6), [0, 0, 0, 1, 2])
  np.testing.assert_array_equal(out[0, 0], out[0, 2])  # Frame 0 repeated.
  np.testing.assert_array_equal(out[0, 1], out[0, 2])
  assert not np.array_equal(out[0, 2], out[0, 3])
  end = cubes.extract_windows(frames, 5, full, 2, 8, False)
  np.testing.assert_array_equal(end[0, 2], end[0, 3])
  np.testing.assert_array_equal(end[0, 2], end[0, 4])


def test_crop_of_crop_size_box_equals_hand_cut():
  frames = _video(num_frames=7, height=60, width=70)
  boxes = np.array([[10, 20, 26, 36], [54, 44, 70, 60]], np.float32)  # 16x16.
  out = cubes.extract_windows(frames, 3, boxes, half_window=3, crop_size=16,
                              grayscale=False)
  assert out.shape == (2, 7, 16, 16, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[0], frames[:, 20:36, 10:26])
  np.testing.assert_array_equal(out[1], frames[:, 44:60, 54:70])


def test_resize_matches_per_frame_cv2():
  frames = _video(num_frames=9, height=60, width=80)
  boxes = np.array([[3, 4, 60, 50], [10, 10, 17, 15]])  # Shrink, then grow.
  out = cubes.extract_windows(frames, 4, boxes, 4, 16, False)
  for n, ((x0, y0, x1, y1), interp) in enumerate(
      zip(boxes, (cv2.INTER_AREA, cv2.INTER_LINEAR))):
    for t in range(9):
      want = cv2.resize(frames[t, y0:y1, x0:x1], (16, 16), interpolation=interp)
      np.testing.assert_array_equal(out[n, t], want)


def test_boxes_clipped_and_at_least_two_pixels():
  crops = cubes.crop_boxes(np.array([[-5, -5, 10.2, 8.7], [30, 30, 30, 30],
                                     [60, 50, 90, 90], [49.5, 39.5, 60, 60]]),
                           height=40, width=50)
  np.testing.assert_array_equal(crops, [[0, 0, 11, 9], [29, 29, 31, 31],
                                        [48, 38, 50, 40], [48, 38, 50, 40]])
  frames = _video()
  out = cubes.extract_windows(frames, 2, np.array([[70, 70, 80, 80]]), 1, 4, False)
  assert out.shape == (1, 3, 4, 4, 3)


def test_grayscale_conversion():
  rgb = _video(channels=3)
  box = np.array([[0, 0, 50, 40]])
  gray = cubes.extract_windows(rgb, 2, box, 1, 20, grayscale=True)
  assert gray.shape == (1, 3, 20, 20, 1)
  want = cv2.resize(cv2.cvtColor(rgb[2], cv2.COLOR_RGB2GRAY), (20, 20),
                    interpolation=cv2.INTER_AREA)
  np.testing.assert_array_equal(gray[0, 1, :, :, 0], want)
  # Already one channel: kept as is, with or without the flag.
  one = rgb[..., :1].copy()
  a = cubes.extract_windows(one, 2, box, 1, 20, grayscale=True)
  b = cubes.extract_windows(one, 2, box, 1, 20, grayscale=False)
  assert a.shape == (1, 3, 20, 20, 1)
  np.testing.assert_array_equal(a, b)


def test_bad_frames_rejected():
  with pytest.raises(ValueError, match="uint8"):
    cubes.extract_windows(np.zeros((3, 8, 8, 3), np.float32), 0,
                          np.zeros((1, 4)), 1, 4, False)
  with pytest.raises(ValueError, match="outside"):
    cubes.extract_windows(_video(), 6, np.zeros((1, 4)), 1, 4, False)


@dataclasses.dataclass
class _Dets:
  boxes: np.ndarray
  scores: np.ndarray
  classes: np.ndarray
  sources: np.ndarray


def test_write_video_cubes_counts_and_records(tmp_path):
  frames = _video(num_frames=8)
  dets = [
      _Dets(np.array([[1, 2, 20, 22], [5, 5, 30, 30]]), np.array([0.9, 0.8]),
            np.array([0, 2]), np.array([0, 0])),
      _Dets(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0)),
      _Dets(np.array([[10, 10, 40, 35]]), np.array([1.0]), np.array([-1]),
            np.array([records.SOURCE_FLOW])),
  ]
  with records.CubeWriter(tmp_path, "test") as w:
    count = cubes.write_video_cubes(w, 4, frames, dets, [0, 3, 7], half_window=2,
                                    crop_size=12, grayscale=True)
  assert count == 3
  assert w.close()["num_records"] == 3
  got = cube_source.CubeSource(tmp_path, "test").read_all()
  assert got["window"].shape == (3, 5, 12, 12, 1)
  np.testing.assert_array_equal(got["frame"], [0, 0, 7])
  np.testing.assert_array_equal(got["video_id"], [4, 4, 4])
  np.testing.assert_array_equal(got["cls"], [0, 2, -1])
  np.testing.assert_array_equal(got["source"], [0, 0, 1])
  np.testing.assert_allclose(got["score"], [0.9, 0.8, 1.0])
  np.testing.assert_array_equal(got["box"][2], [10, 10, 40, 35])
  want = cubes.extract_windows(frames, 7, dets[2].boxes, 2, 12, grayscale=True)
  np.testing.assert_array_equal(got["window"][2], want[0])
  with pytest.raises(ValueError, match="align"):
    cubes.write_video_cubes(w, 0, frames, dets, [0], 2, 12, True)
