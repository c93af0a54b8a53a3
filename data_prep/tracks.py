"""Track annotations: the RBDC/TBDC region format and its readers (DESIGN.md §6).

Tracks are int64 `[M, 6]` rows `track_id, frame_idx, x_min, y_min, x_max, y_max` with 0-based
frames (ShanghaiTech's `tracks/<vid>.txt`, the synthetic demo's `testing/tracks/<vid>.txt`).
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from data_prep import readers

TRACK_COLUMNS = ("track_id", "frame_idx", "x_min", "y_min", "x_max", "y_max")

_PathLike = str | pathlib.Path


def _sort_vids(vids) -> list[str]:
  return sorted(vids, key=lambda v: readers._natural_key(pathlib.Path(v)))


def _count(frame_counts: dict[str, int] | None, vid: str) -> int | None:
  return None if frame_counts is None else frame_counts[vid]


def _empty_tracks() -> np.ndarray:
  return np.zeros((0, len(TRACK_COLUMNS)), np.int64)


def _parse_int(text: str, path: pathlib.Path, line_no: int) -> int:
  # np.savetxt/np.loadtxt round trips may write "12.0": accept integral floats only.
  try:
    value = float(text)
  except ValueError:
    value = float("nan")
  if not np.isfinite(value) or value != int(value):
    raise ValueError(f"{path}:{line_no}: expected an integer, got {text.strip()!r}.")
  return int(value)


def _read_int_rows(path: pathlib.Path, columns: tuple[str, ...]) -> np.ndarray:
  """Parses comma-separated integer rows; blank lines and a header naming columns[0] skipped."""
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist (expected rows {','.join(columns)}).")
  rows = []
  for line_no, line in enumerate(path.read_text().splitlines(), start=1):
    fields = line.strip().split(",")
    if fields == [""] or (not rows and fields[0].strip() == columns[0]):
      continue
    if len(fields) != len(columns):
      raise ValueError(f"{path}:{line_no}: expected {len(columns)} comma-separated fields "
                       f"({','.join(columns)}), got {line.strip()!r}.")
    rows.append([_parse_int(f, path, line_no) for f in fields])
  return np.asarray(rows, np.int64).reshape(-1, len(columns))


# ---------------------------------------------------------------------------------- tracks


def read_tracks(path: _PathLike, num_frames: int | None = None) -> np.ndarray:
  """Reads one track file, rows `track_id,frame_idx,x_min,y_min,x_max,y_max` (0-based frames).

  Args:
    path: the `.txt` file (ShanghaiTech / Avenue community format, the synthetic demo).
    num_frames: frames of the video on disk; frame indices must be below it when given.

  Returns:
    int64 `[M, 6]` in file order (M = 0 for an empty file).

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: a row is malformed, negative, has x_max < x_min or y_max < y_min, repeats a
      (track_id, frame_idx) pair, or falls outside the video.
  """
  path = pathlib.Path(path)
  rows = _read_int_rows(path, TRACK_COLUMNS)
  if (rows < 0).any():
    raise ValueError(f"{path}: negative value in row {rows[(rows < 0).any(axis=1)][0].tolist()}.")
  bad = (rows[:, 4] < rows[:, 2]) | (rows[:, 5] < rows[:, 3])
  if bad.any():
    raise ValueError(f"{path}: box with x_max < x_min or y_max < y_min in row "
                     f"{rows[bad][0].tolist()} ({','.join(TRACK_COLUMNS)}).")
  _, first, counts = np.unique(rows[:, :2], axis=0, return_index=True, return_counts=True)
  if (counts > 1).any():
    raise ValueError(f"{path}: track {rows[first[counts > 1][0], 0]} has two rows for frame "
                     f"{rows[first[counts > 1][0], 1]}.")
  if num_frames is not None and len(rows) and rows[:, 1].max() >= num_frames:
    raise ValueError(f"{path}: frame_idx {rows[:, 1].max()} but the video has {num_frames} "
                     "frames on disk (frame_idx is 0-based).")
  return rows


def read_tracks_dir(folder: _PathLike,
                    frame_counts: dict[str, int] | None = None) -> dict[str, np.ndarray]:
  """Reads `folder/<vid>.txt` track files (`readme*.txt` skipped).

  Args:
    folder: directory of track files.
    frame_counts: test video id → frames on disk; when given, every file must name one of these
      videos and videos without a file get an empty `[0, 6]` array.

  Returns:
    Mapping video id → int64 `[M, 6]`, in natural video order.

  Raises:
    FileNotFoundError: the folder is missing.
    ValueError: a file names no test video, or a file is malformed (see `read_tracks`).
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise FileNotFoundError(f"Track folder {folder} does not exist (expected <vid>.txt files).")
  files = {p.stem: p for p in folder.glob("*.txt") if not p.name.lower().startswith("readme")}
  if frame_counts is not None and set(files) - set(frame_counts):
    raise ValueError(f"{folder}: track files without a test video on disk: "
                     f"{_sort_vids(set(files) - set(frame_counts))[:10]}.")
  vids = frame_counts if frame_counts is not None else files
  return {vid: read_tracks(files[vid], _count(frame_counts, vid)) if vid in files
          else _empty_tracks() for vid in _sort_vids(vids)}


def _largest_contour_box(binary: np.ndarray) -> tuple[int, int, int, int] | None:
  # Same choice as UBnormal's create_tracks_for_tbdc_rbdc.py: the contour (RETR_TREE) whose
  # bounding rect has the largest area, first one on ties.
  contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
  best, best_area = None, 0
  for contour in contours:
    x, y, w, h = cv2.boundingRect(contour)
    if w * h > best_area:
      best, best_area = (x, y, x + w, y + h), w * h
  return best


def _frame_boxes(mask: np.ndarray, largest_component: bool) -> dict[int, tuple[int, ...]]:
  """Track id → (x_min, y_min, x_max, y_max) (max exclusive) for each nonzero id of a frame."""
  boxes = {}
  for track_id in np.unique(mask[mask != 0]):
    binary = mask == track_id
    if largest_component:
      box = _largest_contour_box(binary)
    else:
      ys, xs = np.nonzero(binary)
      box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    boxes[int(track_id)] = tuple(int(v) for v in box)
  return boxes


def boxes_from_track_mask(masks: np.ndarray, largest_component: bool = False) -> np.ndarray:
  """Region rows from a track-id pixel mask (0 = background, k > 0 = track k).

  Args:
    masks: integer `[T, H, W]`.
    largest_component: box only the largest connected part of each id (UBnormal's official
      rule) instead of all its pixels.

  Returns:
    int64 `[M, 6]` rows `track_id, frame_idx, x_min, y_min, x_max, y_max` (max exclusive),
    one per frame and nonzero id, sorted by track id then frame.

  Raises:
    ValueError: `masks` is not a 3-D integer array.
  """
  masks = np.asarray(masks)
  if masks.ndim != 3 or not (np.issubdtype(masks.dtype, np.integer) or masks.dtype == bool):
    raise ValueError(f"Expected an integer [T, H, W] track mask, got {masks.dtype} {masks.shape}.")
  rows = [(tid, t) + box for t, mask in enumerate(masks)
          for tid, box in _frame_boxes(mask, largest_component).items()]
  rows = np.asarray(rows, np.int64).reshape(-1, len(TRACK_COLUMNS))
  return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def check_tracks_on_abnormal_frames(tracks: dict[str, np.ndarray],
                                    frame_labels: dict[str, np.ndarray], source: str = ""):
  """Checks that every track row lies inside its video, on a frame labelled abnormal.

  A failure usually means 1-based frame indices or tracks of the wrong video.

  Raises:
    ValueError: naming `source`, the video and the first offending rows.
  """
  for vid, rows in tracks.items():
    if not len(rows):
      continue
    if vid not in frame_labels:
      raise ValueError(f"{source}: tracks of video {vid}, which has no frame labels.")
    labels = frame_labels[vid]
    frames = rows[:, 1]
    off = (frames < 0) | (frames >= len(labels))
    off[~off] = labels[frames[~off]] == 0
    if off.any():
      raise ValueError(
          f"{source}: video {vid} ({len(labels)} frames) has {int(off.sum())} track rows on "
          f"normal or missing frames, e.g. {rows[off][:3].tolist()}; frame_idx must be 0-based.")


