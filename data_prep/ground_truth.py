"""Ground truth of the benchmarks in their published formats (DESIGN.md §6).

Every reader returns NumPy arrays: frame labels are int8 0/1 `[T]`, pixel masks uint8
`[T, H, W]`, tracks int64 `[M, 6]` rows `track_id, frame_idx, x_min, y_min, x_max, y_max`
with 0-based frames (the RBDC/TBDC region format). Formats:

* Ped2: `ped2.mat` (via `readers`) or the original `UCSDped2.m` (`gt_frame = [61:180];` lines,
  1-based inclusive ranges, i-th line = i-th test video in sorted order).
* Avenue: `testing_label_mask/<n>_label.mat` (also under `ground_truth_demo/`), key `volLabel`,
  a 1xT cell of HxW masks, video n ↔ id `f"{n:02d}"`; frame abnormal ⇔ any mask pixel is
  nonzero. Optional `tracks/<vid>.txt` in the ShanghaiTech row format.
* ShanghaiTech: `test_frame_mask/<vid>.npy`, `test_pixel_mask/<vid>.npy` and
  `tracks/<vid>.txt` (`readme*.txt` skipped), at the root or under `testing/`.
* UBnormal (layout of the official release and scripts): `Scene<k>/<video>_annotations/` holds
  `<video>_tracks.txt` (rows `object_id,start,end`, 0-based inclusive frames, object_id = pixel
  value of the object in the masks) and one `<video>_<frame:04d>_gt.png` per frame. Frame
  labels are the union of the track ranges (official `write_frame_level_ground_truth.py`);
  region tracks follow `create_tracks_for_tbdc_rbdc.py`: `<video>_new_tracks.txt` when present,
  rows sorted by object id and renumbered 0..K-1, box = bounding rect of the largest contour
  of `gt == object_id`. Normal videos have no annotations: all-zero labels, no tracks.
* Synthetic demo: `testing/frame_mask`, `testing/pixel_mask`, `testing/tracks` (`synthetic.py`).

`load_ground_truth(name, root, frame_counts)` picks the right readers for a config's data set.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from typing import Callable

import numpy as np

from data_prep import readers
from data_prep.avenue_gt import (avenue_mask_files, load_avenue_labels, read_avenue_frame_labels,
                                 read_avenue_masks, _match_videos)

# The Avenue readers stay reachable here, next to the other data sets' readers.
__all__ = ["DATASETS", "GroundTruth", "load_ground_truth", "load_ped2_labels", "parse_ucsd_m",
           "load_avenue_labels", "read_avenue_frame_labels", "read_avenue_masks",
           "avenue_mask_files", "load_shanghaitech_labels", "load_npy_pixel_mask"]

from data_prep import tracks as tracks_lib
from data_prep import ubnormal
from data_prep.tracks import _PathLike, _count, _sort_vids

DATASETS = ("ped2", "avenue", "shanghaitech", "ubnormal", "synthetic")


# ------------------------------------------------------------------------------------ Ped2


def parse_ucsd_m(path: _PathLike) -> list[np.ndarray]:
  """Parses the UCSD ground-truth script (`UCSDped1.m` / `UCSDped2.m`).

  Each `TestVideoFile{...}.gt_frame = [a:b, c:d, e];` gives one test video; `%` comments and
  other lines are ignored; `a:s:b` steps are expanded.

  Args:
    path: the `.m` file.

  Returns:
    One int64 `[2, K]` array of 1-based inclusive [first; last] rows per test video, in order.

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: no `gt_frame` assignment, or an entry is not `a`, `a:b` or `a:s:b`.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist (expected the UCSD gt_frame script).")
  videos = []
  for line_no, line in enumerate(path.read_text().splitlines(), start=1):
    line = line.split("%", 1)[0]
    if "gt_frame" not in line:
      continue
    match = re.search(r"\.gt_frame\s*=\s*\[([^\]]*)\]", line)
    if match is None:
      raise ValueError(f"{path}:{line_no}: expected 'TestVideoFile{{...}}.gt_frame = [a:b, ...];',"
                       f" got {line.strip()!r}.")
    ranges = []
    for token in re.split(r"[\s,;]+", match.group(1).strip()):
      if not token:
        continue
      if not re.fullmatch(r"\d+(:\d+){0,2}", token):
        raise ValueError(f"{path}:{line_no}: cannot parse range {token!r} (expected a, a:b or "
                         "a:s:b with positive integers).")
      parts = [int(p) for p in token.split(":")]
      if len(parts) == 3 and parts[1] != 1:
        ranges += [(f, f) for f in range(parts[0], parts[2] + 1, parts[1])]
      else:
        ranges.append((parts[0], parts[-1]))
    videos.append(np.asarray(ranges, np.int64).reshape(-1, 2).T)
  if not videos:
    raise ValueError(f"{path} has no 'gt_frame = [...]' assignment.")
  return videos


def load_ped2_labels(root: _PathLike, frame_counts: dict[str, int]) -> dict[str, np.ndarray]:
  """Frame labels of UCSD Ped2 from `ped2.mat`, else the original `UCSDped2.m`.

  The `.m` file is looked for at `root/`, `root/testing/` and `root/Test/` (UCSD layout).

  Args:
    root: data-set root.
    frame_counts: test video id → frames on disk (the i-th range list is the i-th video in
      natural order).

  Returns:
    Mapping video id → int8 `[T]`.

  Raises:
    FileNotFoundError: neither file exists.
    ValueError: video counts differ or a range falls outside its video.
  """
  root = pathlib.Path(root)
  if (root / "ped2.mat").is_file():
    return readers._labels_from_mat(root / "ped2.mat", frame_counts)
  candidates = [root / sub / "UCSDped2.m" for sub in ("", "testing", "Test")]
  path = next((p for p in candidates if p.is_file()), None)
  if path is None:
    raise FileNotFoundError(f"No Ped2 labels under {root}: expected ped2.mat or one of "
                            f"{[str(p) for p in candidates]}.")
  videos = parse_ucsd_m(path)
  if len(videos) != len(frame_counts):
    raise ValueError(f"{path} labels {len(videos)} test videos but {len(frame_counts)} were "
                     "found on disk.")
  return {vid: readers._labels_from_ranges(ranges, frame_counts[vid], path, vid)
          for vid, ranges in zip(_sort_vids(frame_counts), videos)}


# ---------------------------------------------------------------------------- ShanghaiTech


def _find_dir(root: pathlib.Path, name: str) -> pathlib.Path | None:
  return next((p for p in (root / name, root / "testing" / name) if p.is_dir()), None)


def _labels_from_npy_dir(folder: pathlib.Path,
                         frame_counts: dict[str, int] | None) -> dict[str, np.ndarray]:
  if frame_counts is None:  # Trust the files: counts from the arrays themselves.
    frame_counts = {p.stem: np.load(p, allow_pickle=False).size for p in folder.glob("*.npy")}
    if not frame_counts:
      raise FileNotFoundError(f"{folder} holds no <vid>.npy frame labels.")
  return readers._labels_from_npy(folder, frame_counts)


def load_shanghaitech_labels(root: _PathLike,
                             frame_counts: dict[str, int] | None = None) -> dict[str, np.ndarray]:
  """Frame labels from `[testing/]test_frame_mask/<vid>.npy` (0/1 per frame).

  Raises:
    FileNotFoundError: the folder is missing or empty.
    ValueError: videos or counts differ from `frame_counts`, or values are not 0/1.
  """
  root = pathlib.Path(root)
  folder = _find_dir(root, "test_frame_mask")
  if folder is None:
    raise FileNotFoundError(f"No ShanghaiTech labels under {root}: expected "
                            f"{root / 'test_frame_mask'} or {root / 'testing/test_frame_mask'}.")
  return _labels_from_npy_dir(folder, frame_counts)


def load_npy_pixel_mask(path: _PathLike, num_frames: int | None = None) -> np.ndarray | None:
  """Loads a `[T, H, W]` pixel-mask `.npy` as uint8; None when the file does not exist.

  Raises:
    ValueError: not 3-D, values outside 0..255, or T differs from `num_frames`.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    return None
  mask = np.load(path, allow_pickle=False)
  if mask.ndim != 3:
    raise ValueError(f"{path}: expected a [T, H, W] mask, got shape {mask.shape}.")
  if num_frames is not None and mask.shape[0] != num_frames:
    raise ValueError(f"{path}: mask has {mask.shape[0]} frames but the video has {num_frames}.")
  if mask.dtype != np.uint8 and mask.size and (mask.min() < 0 or mask.max() > 255):
    raise ValueError(f"{path}: mask values outside 0..255.")
  return mask.astype(np.uint8, copy=False)


# ------------------------------------------------------------------------------ dispatcher


def _no_pixel_mask(vid: str) -> None:
  del vid


@dataclasses.dataclass
class GroundTruth:
  """Everything evaluation needs about the test videos of one data set.

  Attributes:
    dataset: one of DATASETS.
    frame_labels: video id → int8 `[T]`, 1 = abnormal frame.
    tracks: video id → int64 `[M, 6]` RBDC/TBDC regions (empty for videos without anomalous
      objects), or None when the data set ships no track annotations.
    pixel_mask_loader: video id → uint8 `[T, H, W]` mask; returns None where there is none.
  """
  dataset: str
  frame_labels: dict[str, np.ndarray]
  tracks: dict[str, np.ndarray] | None
  pixel_mask_loader: Callable[[str], np.ndarray | None] = _no_pixel_mask

  def pixel_mask(self, vid: str) -> np.ndarray | None:
    """Loads the pixel mask of one test video (None when the data set has none)."""
    if vid not in self.frame_labels:
      raise KeyError(f"{self.dataset} has no test video {vid!r}.")
    return self.pixel_mask_loader(vid)


def _optional_tracks(root: pathlib.Path, labels: dict[str, np.ndarray],
                     tracks: bool) -> dict[str, np.ndarray] | None:
  """`[testing/]tracks/<vid>.txt` when the folder exists, else None (no track annotations)."""
  folder = _find_dir(root, "tracks")
  if not tracks or folder is None:
    return None
  return tracks_lib.read_tracks_dir(folder, {vid: len(x) for vid, x in labels.items()})


def _npy_mask_loader(folder: pathlib.Path, labels: dict[str, np.ndarray]):
  return lambda vid: load_npy_pixel_mask(folder / f"{vid}.npy", len(labels[vid]))


def _ped2(root, frame_counts, tracks):
  del tracks  # Ped2 ships frame labels only.
  return (load_ped2_labels(root, frame_counts), None,
          functools.partial(readers.load_pixel_masks, root))


def _avenue(root, frame_counts, tracks):
  files = _match_videos(avenue_mask_files(root), frame_counts, root)
  labels = {vid: read_avenue_frame_labels(path, _count(frame_counts, vid))
            for vid, path in files.items()}
  return (labels, _optional_tracks(root, labels, tracks),
          lambda vid: read_avenue_masks(files[vid], len(labels[vid])))


def _shanghaitech(root, frame_counts, tracks):
  labels = load_shanghaitech_labels(root, frame_counts)
  mask_dir = _find_dir(root, "test_pixel_mask") or root / "test_pixel_mask"
  return labels, _optional_tracks(root, labels, tracks), _npy_mask_loader(mask_dir, labels)


def _ubnormal(root, frame_counts, tracks):
  labels, rows = {}, {}
  for vid in _sort_vids(frame_counts):
    labels[vid], rows[vid] = ubnormal.read_ubnormal_video(root, vid, frame_counts[vid], tracks)
  return (labels, rows if tracks else None,
          lambda vid: ubnormal.read_ubnormal_masks(root, vid, len(labels[vid])))


def _synthetic(root, frame_counts, tracks):
  testing = root / "testing"
  if not (testing / "frame_mask").is_dir():
    raise FileNotFoundError(f"No synthetic labels: {testing / 'frame_mask'}/<vid>.npy missing.")
  labels = _labels_from_npy_dir(testing / "frame_mask", frame_counts)
  return (labels, _optional_tracks(testing, labels, tracks),
          _npy_mask_loader(testing / "pixel_mask", labels))


_LOADERS = {"ped2": _ped2, "avenue": _avenue, "shanghaitech": _shanghaitech,
            "ubnormal": _ubnormal, "synthetic": _synthetic}  # Keys: DATASETS.


def load_ground_truth(dataset_name: str, root: _PathLike,
                      frame_counts: dict[str, int] | None = None, tracks: bool = True,
                      check_tracks: bool = True) -> GroundTruth:
  """Loads frame labels, tracks and a pixel-mask loader for a data set named in a config.

  Args:
    dataset_name: one of DATASETS.
    root: data-set root.
    frame_counts: test video id → frames on disk. Required for "ped2" and "ubnormal"
      (labels need T); for the others, when given, videos and counts are checked against it.
    tracks: load tracks (for UBnormal this reads the masks of every abnormal frame).
    check_tracks: fail when a track row lies on a normal frame (see
      `check_tracks_on_abnormal_frames`).

  Returns:
    A GroundTruth.

  Raises:
    ValueError: unknown data set, missing `frame_counts`, or inconsistent ground truth.
    FileNotFoundError: the data set's ground-truth files are missing.
  """
  name = dataset_name.lower()
  if name not in _LOADERS:
    raise ValueError(f"Unknown data set {dataset_name!r}; expected one of {DATASETS}.")
  if name in ("ped2", "ubnormal") and frame_counts is None:
    raise ValueError(f"{name} ground truth needs frame_counts (frames of each test video).")
  root = pathlib.Path(root)
  labels, track_rows, loader = _LOADERS[name](root, frame_counts, tracks)
  if track_rows is not None and check_tracks:
    tracks_lib.check_tracks_on_abnormal_frames(track_rows, labels, f"{name} ground truth under {root}")
  return GroundTruth(name, labels, track_rows, loader)
