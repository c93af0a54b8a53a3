"""UBnormal ground truth in the layout of the official release and scripts (DESIGN.md §6).

`Scene<k>/<video>_annotations/` holds `<video>_tracks.txt` (rows `object_id,start,end`, 0-based
inclusive frames, object_id = pixel value of the object in the masks) and one
`<video>_<frame:04d>_gt.png` per frame. Frame labels are the union of the track ranges (official
`write_frame_level_ground_truth.py`); region tracks follow `create_tracks_for_tbdc_rbdc.py`:
`<video>_new_tracks.txt` when present, rows sorted by object id and renumbered 0..K-1, box =
bounding rect of the largest contour of `gt == object_id`. Normal videos have no annotations:
all-zero labels, no tracks.
"""

from __future__ import annotations

import pathlib
import re

import cv2
import numpy as np

from data_prep.tracks import TRACK_COLUMNS, _PathLike, _empty_tracks, _frame_boxes, _read_int_rows

UBNORMAL_SPLITS = {"training": "training", "train": "training", "validation": "validation",
                   "val": "validation", "test": "test", "testing": "test"}

# -------------------------------------------------------------------------------- UBnormal


def read_video_list(path: _PathLike) -> list[str]:
  """Reads a list of video names, one per line (blank lines skipped).

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: a line holds whitespace inside a name, or a name repeats.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Video list {path} does not exist (expected one name per line).")
  names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
  for name in names:
    if len(name.split()) != 1:
      raise ValueError(f"{path}: expected one video name per line, got {name!r}.")
  if len(set(names)) != len(names):
    raise ValueError(f"{path}: repeated video names.")
  return names


def ubnormal_split_videos(root: _PathLike, split: str) -> dict[str, list[str]]:
  """Videos of a UBnormal split from `{abnormal,normal}_<split>_video_names.txt`.

  The lists are looked for in `root/` and `root/scripts/` (their place in the official repo).

  Args:
    root: data-set root.
    split: "training" ("train"), "validation" ("val") or "test" ("testing").

  Returns:
    {"abnormal": [...], "normal": [...]} in file order.

  Raises:
    ValueError: unknown split.
    FileNotFoundError: a list is missing.
  """
  if split not in UBNORMAL_SPLITS:
    raise ValueError(f"UBnormal split must be one of {sorted(UBNORMAL_SPLITS)}, got {split!r}.")
  root = pathlib.Path(root)
  canonical = UBNORMAL_SPLITS[split]  # Official spelling first, then the aliases.
  names = [canonical] + [s for s, v in UBNORMAL_SPLITS.items() if v == canonical != s]
  out = {}
  for kind in ("abnormal", "normal"):
    candidates = [folder / f"{kind}_{name}_video_names.txt" for folder in (root, root / "scripts")
                  for name in names]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
      raise FileNotFoundError(
          f"No {kind} {split} video list: tried {[str(p) for p in candidates]}.")
    out[kind] = read_video_list(path)
  return out


def ubnormal_annotation_dir(root: _PathLike, video: str) -> pathlib.Path:
  """`root/Scene<k>/<video>_annotations` for `video` = `(ab)normal_scene_<k>_scenario_<j>[_x]`.

  Raises:
    ValueError: the name does not follow the UBnormal pattern.
  """
  match = re.fullmatch(r"(abnormal|normal)_scene_(\d+)_scenario_\d+(_\w+)?", video)
  if match is None:
    raise ValueError(f"{video!r} is not a UBnormal video name "
                     "((ab)normal_scene_<k>_scenario_<j>[_suffix]).")
  return pathlib.Path(root) / f"Scene{match.group(2)}" / f"{video}_annotations"


def read_ubnormal_tracks(path: _PathLike, num_frames: int | None = None) -> np.ndarray:
  """Reads a UBnormal `<video>_tracks.txt`: rows `object_id,start_frame,end_frame`.

  Args:
    path: the file.
    num_frames: frames of the video; `end_frame` must be below it when given.

  Returns:
    int64 `[K, 3]`, frames 0-based inclusive, object_id = pixel value in the `_gt.png` masks.

  Raises:
    ValueError: malformed row, object_id outside 1..255, start > end, or a frame outside the video.
  """
  path = pathlib.Path(path)
  rows = _read_int_rows(path, ("object_id", "start_frame", "end_frame"))
  bad = (rows[:, 0] < 1) | (rows[:, 0] > 255) | (rows[:, 1] < 0) | (rows[:, 1] > rows[:, 2])
  if bad.any():
    raise ValueError(f"{path}: bad row {rows[bad][0].tolist()} (expected object_id 1..255 and "
                     "0 <= start_frame <= end_frame).")
  if num_frames is not None and len(rows) and rows[:, 2].max() >= num_frames:
    raise ValueError(f"{path}: end_frame {rows[:, 2].max()} but the video has {num_frames} "
                     "frames on disk (frames are 0-based).")
  return rows


def ubnormal_gt_png(annotation_dir: pathlib.Path, frame: int) -> pathlib.Path:
  return annotation_dir / f"{annotation_dir.name[:-len('_annotations')]}_{frame:04d}_gt.png"


def _read_gt_png(path: pathlib.Path) -> np.ndarray:
  if not path.is_file():
    raise FileNotFoundError(f"UBnormal mask {path} does not exist.")
  mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # As the official scripts read them.
  if mask is None:
    raise ValueError(f"Could not read UBnormal mask {path}.")
  return mask


def read_ubnormal_video(root: _PathLike, video: str, num_frames: int, tracks: bool = True,
                        labels_from: str = "tracks") -> tuple[np.ndarray, np.ndarray | None]:
  """Frame labels and region tracks of one UBnormal video.

  Args:
    root: data-set root (holding `Scene<k>/`).
    video: video name; `normal_*` videos have no annotations and are all normal.
    num_frames: frames of the video on disk.
    tracks: also derive the region rows from the `_gt.png` masks (reads the pngs).
    labels_from: "tracks" (official: union of the `_tracks.txt` ranges) or "masks" (frame
      abnormal ⇔ its `_gt.png` has a nonzero pixel; reads all T pngs).

  Returns:
    (int8 `[T]` labels, int64 `[M, 6]` tracks or None when `tracks` is False).

  Raises:
    FileNotFoundError: annotation folder, tracks file or a needed png is missing.
    ValueError: malformed tracks file or frames outside the video.
  """
  if labels_from not in ("tracks", "masks"):
    raise ValueError(f"labels_from must be 'tracks' or 'masks', got {labels_from!r}.")
  folder = ubnormal_annotation_dir(root, video)
  labels = np.zeros(num_frames, np.int8)
  if video.startswith("normal_"):
    return labels, _empty_tracks() if tracks else None
  if not folder.is_dir():
    raise FileNotFoundError(f"UBnormal annotations {folder} of abnormal video {video} missing.")
  objects = read_ubnormal_tracks(folder / f"{video}_tracks.txt", num_frames)
  if labels_from == "masks":
    for t in range(num_frames):
      labels[t] = _read_gt_png(ubnormal_gt_png(folder, t)).any()
  else:
    for _, start, end in objects:
      labels[start:end + 1] = 1
  if not tracks:
    return labels, None
  new_path = folder / f"{video}_new_tracks.txt"
  if new_path.is_file():
    objects = read_ubnormal_tracks(new_path, num_frames)
  rows, boxes = [], {}
  for track_id, row in enumerate(objects[np.argsort(objects[:, 0], kind="stable")]):
    object_id, start, end = row.tolist()
    for t in range(start, end + 1):
      if t not in boxes:
        boxes[t] = _frame_boxes(_read_gt_png(ubnormal_gt_png(folder, t)), True)
      if object_id in boxes[t]:  # The official script would crash; an absent object is skipped.
        rows.append((track_id, t) + boxes[t][object_id])
  return labels, np.asarray(rows, np.int64).reshape(-1, len(TRACK_COLUMNS))


def read_ubnormal_masks(root: _PathLike, video: str, num_frames: int) -> np.ndarray | None:
  """uint8 `[T, H, W]` object-id masks of an abnormal UBnormal video; None for normal ones."""
  folder = ubnormal_annotation_dir(root, video)
  if video.startswith("normal_"):
    return None
  return np.stack([_read_gt_png(ubnormal_gt_png(folder, t)) for t in range(num_frames)])


