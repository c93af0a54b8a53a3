"""Avenue ground truth: `testing_label_mask/<n>_label.mat` (also under `ground_truth_demo/`),
key `volLabel`, a 1xT cell of HxW masks; video n ↔ id `f"{n:02d}"`; a frame is abnormal when its
mask has a nonzero pixel. `ground_truth.load_ground_truth("avenue", ...)` is the usual entry."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import scipy.io

from data_prep.tracks import _PathLike, _count, _sort_vids


def _load_vol_label(path: pathlib.Path) -> list[np.ndarray]:
  """The 2-D masks of `volLabel` in an Avenue `.mat` file (one video's worth in memory)."""
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist (expected an Avenue <n>_label.mat).")
  with open(path, "rb") as f:
    header = f.read(128)
  if header.startswith(b"MATLAB 7.3"):
    raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file; the Avenue masks ship as level 5 "
                     "MAT-files (re-save with save(..., '-v7')).")
  if not header.startswith(b"MATLAB 5.0"):
    raise ValueError(f"{path} is not a level 5 MAT-file (header {header[:20]!r}).")
  try:
    names = [name for name, _, _ in scipy.io.whosmat(str(path))]
    mat = scipy.io.loadmat(str(path), variable_names=["volLabel"])
  except Exception as err:  # scipy raises many types for a damaged stream
    raise ValueError(f"{path}: truncated or corrupt MAT-file ({type(err).__name__}: {err}).") from err
  if "volLabel" not in mat:
    raise ValueError(f"{path} has no variable 'volLabel' (found {sorted(names)}).")
  cells = np.asarray(mat["volLabel"])
  if cells.dtype != object:
    raise ValueError(f"{path}: 'volLabel' should be a 1xT cell array of HxW masks, got a "
                     f"{cells.dtype} array of shape {cells.shape}.")
  masks = [np.asarray(m) for m in cells.reshape(-1)]
  for i, m in enumerate(masks):
    if m.ndim != 2:
      raise ValueError(f"{path}: volLabel{{{i + 1}}} has shape {m.shape}; expected an HxW mask.")
  return masks


def read_avenue_frame_labels(path: _PathLike, num_frames: int | None = None) -> np.ndarray:
  """Frame labels of one Avenue `<n>_label.mat` (key `volLabel`).

  Args:
    path: the `.mat` file.
    num_frames: frames of the video on disk, checked when given.

  Returns:
    int8 `[T]`, 1 where the frame's mask has a nonzero pixel (mask.sum() > 0).

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: not a level 5 MAT-file, no `volLabel`, not a cell of 2-D masks, or T differs
      from `num_frames`.
  """
  path = pathlib.Path(path)
  labels = np.asarray([bool(m.any()) for m in _load_vol_label(path)], np.int8)
  if num_frames is not None and len(labels) != num_frames:
    raise ValueError(f"{path}: 'volLabel' has {len(labels)} frames but the video has "
                     f"{num_frames} frames on disk.")
  return labels


def read_avenue_masks(path: _PathLike, num_frames: int | None = None) -> np.ndarray:
  """Pixel masks of one Avenue `<n>_label.mat` as uint8 `[T, H, W]` (0 = normal).

  Raises:
    FileNotFoundError / ValueError: as `read_avenue_frame_labels`, plus masks of different
      sizes or values outside 0..255.
  """
  path = pathlib.Path(path)
  masks = _load_vol_label(path)
  if num_frames is not None and len(masks) != num_frames:
    raise ValueError(f"{path}: 'volLabel' has {len(masks)} frames but the video has {num_frames} "
                     "frames on disk.")
  if not masks:
    return np.zeros((0, 0, 0), np.uint8)
  for i, m in enumerate(masks):
    if m.shape != masks[0].shape:
      raise ValueError(f"{path}: volLabel{{{i + 1}}} is {m.shape} but volLabel{{1}} is "
                       f"{masks[0].shape} (HxW).")
    if m.dtype != np.uint8 and m.size and (m.min() < 0 or m.max() > 255):
      raise ValueError(f"{path}: volLabel{{{i + 1}}} has values outside 0..255.")
  return np.stack(masks).astype(np.uint8)


def avenue_mask_files(root: _PathLike) -> dict[str, pathlib.Path]:
  """Video id `f"{n:02d}"` → `<n>_label.mat` in `root/[ground_truth_demo/]testing_label_mask`.

  Raises:
    FileNotFoundError: no folder or no `<n>_label.mat` in it.
  """
  root = pathlib.Path(root)
  candidates = [root / "testing_label_mask", root / "ground_truth_demo" / "testing_label_mask"]
  folder = next((p for p in candidates if p.is_dir()), None)
  files = {}
  for path in folder.iterdir() if folder else ():
    match = re.fullmatch(r"(\d+)_label\.mat", path.name)
    if match:
      files[f"{int(match.group(1)):02d}"] = path
  if not files:
    raise FileNotFoundError(f"No Avenue masks under {root}: expected <n>_label.mat in one of "
                            f"{[str(p) for p in candidates]}.")
  return dict(sorted(files.items(), key=lambda kv: int(kv[0])))


def _match_videos(found: dict, frame_counts: dict[str, int] | None, source) -> dict:
  """Re-keys `found` by the ids of `frame_counts` (numeric ids compared as numbers)."""
  if frame_counts is None:
    return found
  by_number = {int(v) if v.isdigit() else v: v for v in frame_counts}
  keyed = {by_number.get(int(k) if k.isdigit() else k, k): p for k, p in found.items()}
  if set(keyed) != set(frame_counts):
    raise ValueError(
        f"{source} labels {len(keyed)} videos but {len(frame_counts)} test videos were found "
        f"(missing labels: {_sort_vids(set(frame_counts) - set(keyed))[:10]}, labels without "
        f"video: {_sort_vids(set(keyed) - set(frame_counts))[:10]}).")
  return {vid: keyed[vid] for vid in _sort_vids(keyed)}


def load_avenue_labels(root: _PathLike,
                       frame_counts: dict[str, int] | None = None) -> dict[str, np.ndarray]:
  """Frame labels of all Avenue test videos from `testing_label_mask/<n>_label.mat`.

  Args:
    root: data-set root.
    frame_counts: test video id → frames on disk; when given the videos and counts must match.

  Returns:
    Mapping video id → int8 `[T]`.
  """
  files = _match_videos(avenue_mask_files(root), frame_counts, pathlib.Path(root))
  return {vid: read_avenue_frame_labels(path, _count(frame_counts, vid))
          for vid, path in files.items()}
