"""Video readers, data-set layouts and frame-level ground truth.

Everything here returns NumPy arrays in one convention: frames are uint8
`[T, H, W, C]` in RGB order (C = 1 for grayscale), labels are int8 0/1 per frame.
Supported layouts (DESIGN.md §2):

* frame folders: `root/<split>/frames/<vid>/NNN.jpg` (UCSD Ped2, the synthetic demo,
  ShanghaiTech testing);
* video files: `root/<split>_videos/*.avi|*.mp4` (Avenue) and
  `root/<split>/videos/*.avi` (ShanghaiTech training).
"""

from __future__ import annotations

import pathlib
import re

import cv2
import numpy as np
import scipy.io

from data_prep import video_patch

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv")
SPLITS = ("training", "testing")


def _natural_key(path: pathlib.Path) -> list:
  # "10.jpg" must sort after "9.jpg"; plain string order breaks on unpadded names.
  return [int(part) if part.isdigit() else part.lower()
          for part in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: str | pathlib.Path) -> list[pathlib.Path]:
  """Lists the image files of a frame folder in natural numeric order.

  Args:
    folder: directory holding one image per frame.

  Returns:
    Paths of the `*.jpg|*.jpeg|*.png|*.tif|*.tiff` files, sorted so that
    `2.png` comes before `10.png`.

  Raises:
    FileNotFoundError: the folder is missing or holds no image files.
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise FileNotFoundError(f"Frame folder {folder} does not exist.")
  files = [p for p in folder.iterdir()
           if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
  if not files:
    raise FileNotFoundError(
        f"Frame folder {folder} holds no image files "
        f"(expected one of {', '.join(FRAME_SUFFIXES)}).")
  files = sorted(files, key=_natural_key)
  _check_no_gaps(folder, files)
  return files


def _check_no_gaps(folder: pathlib.Path, files: list[pathlib.Path]) -> None:
  """Numbered frames must be consecutive: a missing file would shift every later frame
  against the frame-level labels."""
  numbers = [re.search(r"(\d+)$", p.stem) for p in files]
  if not all(numbers):
    return  # not a numbered sequence; natural order is all we can check
  values = [int(m.group(1)) for m in numbers]
  for prev, cur, path_prev, path_cur in zip(values, values[1:], files, files[1:]):
    if cur != prev + 1:
      raise ValueError(
          f"Frame folder {folder} has a gap: {path_prev.name} is followed by {path_cur.name} "
          f"(expected frame number {prev + 1}); frames must be numbered consecutively.")


def _to_channels(image: np.ndarray, grayscale: bool) -> np.ndarray:
  """Converts an OpenCV image (gray or BGR) to `[H, W, C]` gray or RGB."""
  if image.ndim == 2:
    return image[..., None] if grayscale else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
  if image.shape[2] == 4:
    image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
  if grayscale:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_JPEG_SUFFIXES = (".jpg", ".jpeg")
_PNG_END = b"IEND\xaeB`\x82"
_TAIL_BYTES = 1024  # a JPEG's end-of-image marker may be followed by a little padding

DAMAGED_FRAME_POLICIES = ("error", "repeat_previous")


class DamagedFrameError(ValueError):
  """A frame file that is truncated or does not decode; the message names the file."""


def _structure_problem(path: pathlib.Path, head: bytes, tail: bytes, size: int) -> str | None:
  """Why an image file is incomplete, judged from its first and last bytes, else None.

  libjpeg decodes a truncated JPEG with only a warning on stderr (grey rows where the data
  stops), and a truncated PNG may still yield rows, so completeness is checked here: a JPEG must
  end with its end-of-image marker, a PNG with its IEND chunk.
  """
  suffix = path.suffix.lower()
  if size == 0:
    return "the file is empty"
  if suffix in _JPEG_SUFFIXES:
    if head[:2] != b"\xff\xd8":
      return "not a JPEG file (no start-of-image marker)"
    if b"\xff\xd9" not in tail:
      return "truncated JPEG (no end-of-image marker)"
  elif suffix == ".png" and not tail.rstrip(b"\x00").endswith(_PNG_END):
    return "truncated PNG (no IEND chunk)"
  return None


def frame_file_problem(path: str | pathlib.Path) -> str | None:
  """Checks that a frame file is complete without decoding it (reads its first and last bytes);
  returns what is wrong, or None."""
  path = pathlib.Path(path)
  size = path.stat().st_size
  with open(path, "rb") as f:
    head = f.read(2)
    f.seek(max(0, size - _TAIL_BYTES))
    tail = f.read()
  return _structure_problem(path, head, tail, size)


def count_frames(path: str | pathlib.Path) -> int:
  """Frames of a frame folder or a video file, without decoding them (a video file's count is
  what its header announces)."""
  path = pathlib.Path(path)
  if path.is_dir():
    return len(list_frame_files(path))
  if not path.is_file():
    raise FileNotFoundError(f"Video {path} does not exist (expected a frame folder or a video file).")
  capture = cv2.VideoCapture(str(path))
  try:
    if not capture.isOpened():
      raise ValueError(f"Could not open video file {path} with OpenCV.")
    return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
  finally:
    capture.release()


def _decode_frame(path: pathlib.Path, flag: int) -> np.ndarray:
  """Decodes one frame file; DamagedFrameError (naming the file) when it is incomplete or does
  not decode."""
  data = np.fromfile(path, dtype=np.uint8)
  problem = _structure_problem(path, data[:2].tobytes(), data[-_TAIL_BYTES:].tobytes(), data.size)
  if problem is None:
    image = cv2.imdecode(data, flag)
    problem = None if image is not None else "corrupt or unsupported image"
  if problem is not None:
    raise DamagedFrameError(
        f"frame {path}: {problem}; replace the file, or set "
        "--config.prep.damaged_frames=repeat_previous to use the previous frame in its place")
  return image


def _read_frame_folder(folder: pathlib.Path, grayscale: bool, on_damaged=None) -> np.ndarray:
  files = list_frame_files(folder)
  flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_UNCHANGED
  frames = []
  first_shape = None
  for path in files:
    try:
      image = _decode_frame(path, flag)
    except DamagedFrameError as e:
      if on_damaged is None or not frames:
        raise
      on_damaged(path, str(e))
      frames.append(frames[-1])
      continue
    if image.dtype != np.uint8:
      # 16-bit TIFFs: keep the top 8 bits rather than clipping.
      image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else (
          np.clip(image, 0, 255).astype(np.uint8))
    image = _to_channels(image, grayscale)
    if first_shape is None:
      first_shape = image.shape[:2]
    elif image.shape[:2] != first_shape:
      raise ValueError(
          f"Frame {path} is {image.shape[0]}x{image.shape[1]} (HxW) but "
          f"{files[0]} is {first_shape[0]}x{first_shape[1]}; all frames of a video "
          "must have the same size.")
    frames.append(image)
  return np.stack(frames)


def _read_video_file(path: pathlib.Path, grayscale: bool) -> np.ndarray:
  capture = cv2.VideoCapture(str(path))
  if not capture.isOpened():
    raise ValueError(f"Could not open video file {path} with OpenCV.")
  announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
  frames = []
  try:
    while True:
      ok, image = capture.read()
      if not ok:
        break
      image = _to_channels(image, grayscale)
      if frames and image.shape != frames[0].shape:
        raise ValueError(
            f"Video {path}: frame {len(frames)} is {image.shape[:2]} but frame 0 is "
            f"{frames[0].shape[:2]} (HxW).")
      frames.append(image)
  finally:
    capture.release()
  if not frames:
    raise ValueError(f"Video file {path} yielded no frames (empty or unsupported codec).")
  if announced > len(frames):
    raise ValueError(f"Video file {path} is truncated or corrupt: decoded {len(frames)} of the "
                     f"{announced} frames its header announces.")
  return video_patch.apply(path, np.stack(frames))


def read_video(path: str | pathlib.Path, grayscale: bool = False, on_damaged=None) -> np.ndarray:
  """Reads a whole video from a frame folder or a video file.

  Args:
    path: a directory of frame images or a video file OpenCV can decode; a video file's
      patch (`<file name>.patch.npz` beside it, data_prep/video_patch.py) is applied.
    grayscale: return one luminance channel instead of RGB.
    on_damaged: None: a truncated or undecodable frame file raises DamagedFrameError. Else a
      callable `(path, message)` called for each such frame, which is replaced by the previous
      one (frame numbers, and so the labels, stay aligned); the first frame must decode.

  Returns:
    uint8 array `[T, H, W, C]`, C = 1 if `grayscale` else 3 (RGB order).

  Raises:
    FileNotFoundError: `path` does not exist or the folder has no frames.
    DamagedFrameError: a frame file is truncated or does not decode (with `on_damaged` None).
    ValueError: frame sizes differ, or the video is empty.
  """
  path = pathlib.Path(path)
  if path.is_dir():
    return _read_frame_folder(path, grayscale, on_damaged)
  if not path.is_file():
    raise FileNotFoundError(f"Video {path} does not exist (expected a frame folder or a video file).")
  return _read_video_file(path, grayscale)


def list_split_videos(root: str | pathlib.Path, split: str) -> dict[str, pathlib.Path]:
  """Finds the videos of one split of a data set.

  Layouts tried in order: `root/<split>/frames/<vid>/` (frame folders),
  `root/<split>_videos/*.avi|*.mp4` (Avenue), `root/<split>/videos/*.avi` (ShanghaiTech).

  Args:
    root: data-set root directory.
    split: "training" or "testing".

  Returns:
    Mapping video id (folder name or file stem) → path, sorted by id.

  Raises:
    ValueError: `split` is not a known split.
    FileNotFoundError: no video of that split is found under `root`.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
  root = pathlib.Path(root)
  frames_dir = root / split / "frames"
  if frames_dir.is_dir():
    found = {p.name: p for p in frames_dir.iterdir() if p.is_dir()}
    if found:
      return dict(sorted(found.items(), key=lambda kv: _natural_key(kv[1])))
  for videos_dir in (root / f"{split}_videos", root / split / "videos"):
    if videos_dir.is_dir():
      found = {p.stem: p for p in videos_dir.iterdir()
               if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
      if found:
        return dict(sorted(found.items(), key=lambda kv: _natural_key(kv[1])))
  raise FileNotFoundError(
      f"No {split} videos under {root}: expected {split}/frames/<vid>/ folders, "
      f"{split}_videos/*.avi|*.mp4 or {split}/videos/*.avi.")


def _labels_from_ranges(ranges: np.ndarray, num_frames: int, source: pathlib.Path,
                        vid: str) -> np.ndarray:
  """Turns a 2xK array of 1-based inclusive [first; last] rows into 0/1 labels."""
  # ped2.mat stores uint8; widen before any arithmetic to avoid wrap-around.
  ranges = np.asarray(ranges, dtype=np.int64).reshape(2, -1)
  labels = np.zeros(num_frames, dtype=np.int8)
  for first, last in ranges.T:
    if not 1 <= first <= last <= num_frames:
      raise ValueError(
          f"{source}: video {vid} has abnormal range [{first}, {last}] outside "
          f"1..{num_frames} (1-based inclusive, {num_frames} frames on disk).")
    labels[first - 1:last] = 1
  return labels


def _labels_from_mat(path: pathlib.Path, frame_counts: dict[str, int]) -> dict[str, np.ndarray]:
  mat = scipy.io.loadmat(str(path))
  if "gt" not in mat:
    raise ValueError(f"{path} has no key 'gt' (found {sorted(k for k in mat if not k.startswith('__'))}).")
  cells = np.asarray(mat["gt"]).reshape(-1)
  if len(cells) != len(frame_counts):
    raise ValueError(
        f"{path} labels {len(cells)} test videos but {len(frame_counts)} were found on disk.")
  # The i-th cell belongs to the i-th test video in sorted order.
  vids = sorted(frame_counts, key=lambda v: _natural_key(pathlib.Path(v)))
  return {vid: _labels_from_ranges(cell, frame_counts[vid], path, vid)
          for vid, cell in zip(vids, cells)}


def _labels_from_npy(folder: pathlib.Path, frame_counts: dict[str, int]) -> dict[str, np.ndarray]:
  files = {p.stem: p for p in folder.glob("*.npy")}
  if set(files) != set(frame_counts):
    missing = sorted(set(frame_counts) - set(files))
    extra = sorted(set(files) - set(frame_counts))
    raise ValueError(
        f"{folder} labels {len(files)} videos but {len(frame_counts)} test videos were found "
        f"(missing labels: {missing}, labels without video: {extra}).")
  labels = {}
  for vid in sorted(frame_counts, key=lambda v: _natural_key(pathlib.Path(v))):
    mask = np.load(files[vid], allow_pickle=False).reshape(-1)
    if mask.shape[0] != frame_counts[vid]:
      raise ValueError(
          f"{files[vid]}: video {vid} has {mask.shape[0]} labels but "
          f"{frame_counts[vid]} frames on disk.")
    if not np.isin(mask, (0, 1)).all():
      raise ValueError(f"{files[vid]}: expected 0/1 labels, found values {np.unique(mask)[:10]}.")
    labels[vid] = mask.astype(np.int8)
  return labels


def load_frame_labels(root: str | pathlib.Path,
                      frame_counts: dict[str, int]) -> dict[str, np.ndarray]:
  """Loads frame-level ground truth for the test videos.

  Sources tried in order: `root/ped2.mat` (key `gt`, cell of 2xK 1-based inclusive
  ranges, i-th cell = i-th test video in sorted order), then
  `root/testing/frame_mask/<vid>.npy` (0/1 per frame).

  Args:
    root: data-set root directory.
    frame_counts: test video id → number of frames on disk.

  Returns:
    Mapping video id → int8 `[T]` array, 1 = abnormal frame.

  Raises:
    FileNotFoundError: no label source exists under `root`.
    ValueError: label and video counts or per-video frame counts disagree.
  """
  root = pathlib.Path(root)
  mat_path = root / "ped2.mat"
  if mat_path.is_file():
    return _labels_from_mat(mat_path, frame_counts)
  mask_dir = root / "testing" / "frame_mask"
  if mask_dir.is_dir():
    return _labels_from_npy(mask_dir, frame_counts)
  raise FileNotFoundError(
      f"No frame labels under {root}: expected {mat_path} or {mask_dir}/<vid>.npy.")


def load_pixel_masks(root: str | pathlib.Path, vid: str) -> np.ndarray | None:
  """Loads the pixel-level mask of one test video if the data set has one.

  Args:
    root: data-set root directory.
    vid: test video id.

  Returns:
    uint8 `[T, H, W]` (0 = normal, >0 = anomalous region / track id), or None when
    `root/testing/pixel_mask/<vid>.npy` does not exist.

  Raises:
    ValueError: the file is not a 3-D array.
  """
  path = pathlib.Path(root) / "testing" / "pixel_mask" / f"{vid}.npy"
  if not path.is_file():
    return None
  mask = np.load(path, allow_pickle=False)
  if mask.ndim != 3:
    raise ValueError(f"{path}: expected a [T, H, W] mask, got shape {mask.shape}.")
  return mask.astype(np.uint8, copy=False)
