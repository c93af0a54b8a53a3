"""data_prep.video_patch: a patch beside a video file corrects the frames the reader returns,
and a patch that does not fit the video is refused with the file named."""

import cv2
import numpy as np
import pytest

from data_prep import readers
from data_prep import video_patch


def _write_video(path, count=6, size=(24, 32)):
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size[::-1])
  assert writer.isOpened()
  for i in range(count):
    writer.write(np.full((*size, 3), 20 * i + 30, np.uint8))
  writer.release()
  return path


def test_reader_applies_the_patch_to_the_frames_it_names(tmp_path):
  path = _write_video(tmp_path / "clip.avi")
  decoded = readers.read_video(path, grayscale=True)[..., 0]
  rgb_before = readers.read_video(path)
  wanted = decoded.copy()
  wanted[2, 3:5, 4:6] += 7
  wanted[4, 0, 0] -= 5
  info = video_patch.write(path, decoded, wanted)
  assert info["patched_frames"] == 2 and video_patch.patch_path(path).is_file()
  np.testing.assert_array_equal(readers.read_video(path, grayscale=True)[..., 0], wanted)
  rgb = readers.read_video(path).astype(int) - rgb_before  # every channel is corrected
  np.testing.assert_array_equal(rgb[2, 3, 4], [7, 7, 7])
  assert np.count_nonzero(rgb) == 3 * 5


def test_nothing_to_correct_removes_the_patch(tmp_path):
  path = _write_video(tmp_path / "clip.avi")
  decoded = readers.read_video(path, grayscale=True)[..., 0]
  changed = decoded.copy()
  changed[0, 0, 0] += 1
  video_patch.write(path, decoded, changed)
  assert video_patch.write(path, decoded, decoded) == {"patched_frames": 0, "patch_bytes": 0}
  assert not video_patch.patch_path(path).exists()


def test_patch_for_other_pixels_or_another_shape_is_refused(tmp_path):
  path = _write_video(tmp_path / "clip.avi")
  decoded = readers.read_video(path, grayscale=True)[..., 0]
  other = decoded.copy()
  other[3] += 1  # as if another decoder had produced frame 3
  fixed = other.copy()
  fixed[3, 0, 0] += 2
  video_patch.write(path, other, fixed)
  with pytest.raises(ValueError, match=r"clip\.avi\.patch\.npz: frame 3 of .* decodes to other"):
    readers.read_video(path)
  video_patch.write(path, other[:4], fixed[:4])
  with pytest.raises(ValueError, match=r"clip\.avi\.patch\.npz: made for a \(4, 24, 32\)"):
    readers.read_video(path)
  np.savez(video_patch.patch_path(path), frames=np.zeros(1, np.int32))
  with pytest.raises(ValueError, match=r"not a video patch \(no shape, residual"):
    readers.read_video(path)


def test_a_correction_too_large_for_int8_is_refused(tmp_path):
  decoded = np.zeros((2, 4, 4), np.uint8)
  with pytest.raises(ValueError, match="200 levels"):
    video_patch.write(tmp_path / "v.mp4", decoded, decoded + 200)
