"""Tests for data_prep.readers: frame folders, video files, layouts and labels."""

import pathlib

import cv2
import numpy as np
import pytest

from data_prep import readers

PED2 = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ped2"  # ../shared


def _write_frames(folder, count, size=(24, 32), names=None):
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(count):
    name = names[i] if names else f"{i:03d}.png"
    cv2.imwrite(str(folder / name), np.full(size, 10 * i, np.uint8))


def test_list_frame_files_natural_order(tmp_path):
  # Unpadded names: plain string order would put 10.png before 2.png.
  _write_frames(tmp_path, 12, names=[f"{i}.png" for i in range(12)])
  (tmp_path / "notes.txt").write_text("not a frame")
  files = readers.list_frame_files(tmp_path)
  assert [f.name for f in files] == [f"{i}.png" for i in range(12)]


def test_list_frame_files_missing_or_empty(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope"):
    readers.list_frame_files(tmp_path / "nope")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="empty"):
    readers.list_frame_files(tmp_path / "empty")


def test_read_frame_folder_gray_and_rgb(tmp_path):
  _write_frames(tmp_path, 12, names=[f"{i}.png" for i in range(12)])
  gray = readers.read_video(tmp_path, grayscale=True)
  assert gray.shape == (12, 24, 32, 1) and gray.dtype == np.uint8
  np.testing.assert_array_equal(gray[:, 0, 0, 0], 10 * np.arange(12))
  rgb = readers.read_video(tmp_path)
  assert rgb.shape == (12, 24, 32, 3)


def test_read_frame_folder_rgb_order(tmp_path):
  bgr = np.zeros((8, 8, 3), np.uint8)
  bgr[..., 0] = 200  # Blue in OpenCV's BGR order.
  cv2.imwrite(str(tmp_path / "000.png"), bgr)
  rgb = readers.read_video(tmp_path)
  assert rgb[0, 0, 0].tolist() == [0, 0, 200]


def test_read_frame_folder_mixed_sizes(tmp_path):
  _write_frames(tmp_path, 3, size=(24, 32))
  cv2.imwrite(str(tmp_path / "003.png"), np.zeros((20, 32), np.uint8))
  with pytest.raises(ValueError, match=r"003\.png.*20x32.*24x32"):
    readers.read_video(tmp_path)


def test_read_frame_folder_unreadable(tmp_path):
  _write_frames(tmp_path, 2)
  (tmp_path / "002.png").write_bytes(b"not an image")
  with pytest.raises(ValueError, match=r"002\.png"):
    readers.read_video(tmp_path)


def test_read_video_file_round_trip(tmp_path):
  path = tmp_path / "clip.avi"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
  assert writer.isOpened()
  for i in range(10):
    writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
  writer.release()
  video = readers.read_video(path)
  assert video.shape == (10, 24, 32, 3) and video.dtype == np.uint8
  # MJPG is lossy; brightness must still follow the written ramp.
  np.testing.assert_allclose(video.mean(axis=(1, 2, 3)), 20 * np.arange(10), atol=3)
  assert readers.read_video(path, grayscale=True).shape == (10, 24, 32, 1)


def test_read_video_missing_or_empty(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.avi"):
    readers.read_video(tmp_path / "missing.avi")
  empty = tmp_path / "empty.avi"
  empty.write_bytes(b"")
  with pytest.raises(ValueError, match="empty.avi"):
    readers.read_video(empty)


def test_list_split_videos_layouts(tmp_path):
  _write_frames(tmp_path / "ped" / "testing" / "frames" / "10", 1)
  _write_frames(tmp_path / "ped" / "testing" / "frames" / "2", 1)
  assert list(readers.list_split_videos(tmp_path / "ped", "testing")) == ["2", "10"]

  (tmp_path / "avenue" / "training_videos").mkdir(parents=True)
  for name in ("02.avi", "01.avi", "readme.txt"):
    (tmp_path / "avenue" / "training_videos" / name).write_bytes(b"")
  assert list(readers.list_split_videos(tmp_path / "avenue", "training")) == ["01", "02"]

  (tmp_path / "sht" / "training" / "videos").mkdir(parents=True)
  (tmp_path / "sht" / "training" / "videos" / "01_001.avi").write_bytes(b"")
  videos = readers.list_split_videos(tmp_path / "sht", "training")
  assert videos["01_001"].name == "01_001.avi"

  with pytest.raises(FileNotFoundError, match="avenue"):
    readers.list_split_videos(tmp_path / "avenue", "testing")
  with pytest.raises(ValueError, match="split"):
    readers.list_split_videos(tmp_path / "ped", "validation")


@pytest.mark.skipif(not (PED2 / "ped2.mat").is_file(), reason="Ped2 data not present")
def test_ped2_mat_labels():
  videos = readers.list_split_videos(PED2, "testing")
  counts = {vid: len(readers.list_frame_files(p)) for vid, p in videos.items()}
  labels = readers.load_frame_labels(PED2, counts)
  assert list(labels) == [f"{i:02d}" for i in range(1, 13)]
  assert [int(l.sum()) for l in labels.values()] == [
      120, 86, 146, 150, 129, 159, 135, 180, 120, 150, 180, 93]
  assert all(l.dtype == np.int8 and len(l) == counts[v] for v, l in labels.items())
  # Video 01 is abnormal from frame 61 (1-based) to its end.
  assert labels["01"][59] == 0 and labels["01"][60] == 1

  bad = dict(counts, **{"03": counts["03"] - 10})
  with pytest.raises(ValueError, match=r"ped2\.mat.*03"):
    readers.load_frame_labels(PED2, bad)
  with pytest.raises(ValueError, match=r"12 test videos but 11"):
    readers.load_frame_labels(PED2, {v: c for v, c in counts.items() if v != "12"})


def test_frame_mask_npy_round_trip_and_errors(tmp_path):
  mask_dir = tmp_path / "testing" / "frame_mask"
  mask_dir.mkdir(parents=True)
  expected = {"01": np.array([0, 0, 1, 1, 0], np.int8), "02": np.array([1, 0, 0], np.int8)}
  for vid, mask in expected.items():
    np.save(mask_dir / f"{vid}.npy", mask)
  labels = readers.load_frame_labels(tmp_path, {"01": 5, "02": 3})
  for vid, mask in expected.items():
    np.testing.assert_array_equal(labels[vid], mask)
    assert labels[vid].dtype == np.int8

  with pytest.raises(ValueError, match=r"01\.npy.*01.*5 labels.*6 frames"):
    readers.load_frame_labels(tmp_path, {"01": 6, "02": 3})
  with pytest.raises(ValueError, match=r"missing labels: \['03'\]"):
    readers.load_frame_labels(tmp_path, {"01": 5, "02": 3, "03": 4})
  with pytest.raises(FileNotFoundError, match="frame_mask"):
    readers.load_frame_labels(tmp_path / "nowhere", {"01": 5})


def test_load_pixel_masks(tmp_path):
  assert readers.load_pixel_masks(tmp_path, "01") is None
  folder = tmp_path / "testing" / "pixel_mask"
  folder.mkdir(parents=True)
  mask = np.zeros((4, 6, 8), np.uint8)
  mask[1, 2:4, 3:5] = 1
  np.save(folder / "01.npy", mask)
  loaded = readers.load_pixel_masks(tmp_path, "01")
  np.testing.assert_array_equal(loaded, mask)
  np.save(folder / "02.npy", np.zeros(4, np.uint8))
  with pytest.raises(ValueError, match=r"02\.npy"):
    readers.load_pixel_masks(tmp_path, "02")


def test_frame_folder_with_a_gap_is_named(tmp_path):
  _write_frames(tmp_path / "v", 5, names=["000.png", "001.png", "002.png", "004.png", "005.png"])
  with pytest.raises(ValueError, match=r"v has a gap: 002.png is followed by 004.png \(expected "
                                       r"frame number 3\)"):
    readers.read_video(tmp_path / "v")


def test_truncated_video_file_is_named(tmp_path):
  path = tmp_path / "clip.avi"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
  for i in range(40):
    writer.write(np.random.default_rng(i).integers(0, 255, (24, 32, 3), dtype=np.uint8))
  writer.release()
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])  # a copy cut short: the header still says 40 frames
  with pytest.raises(ValueError, match=r"clip.avi is truncated or corrupt: decoded \d+ of the 40"):
    readers.read_video(path)
