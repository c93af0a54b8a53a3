"""The object-cube record schema: encode/decode, sharded writer, manifest (reader: cube_source).

This is the one module `data_prep` imports. A record is a serialized
`tf.train.Example` (TensorFlow-compatible, built with the protos that ship in
`tensorflow_datasets`, so TensorFlow is not needed) with features:

  window    bytes   raw uint8 [L, S, S, C] in C order (no image codec, so
                    decoding is a copy)
  shape     int64   [L, S, S, C]
  video_id  int64   index into the manifest's video list for the split
  frame     int64   centre frame index
  box       float   [x0, y0, x1, y1] pixels in the original frame
  source    int64   0 detector, 1 optical flow, 2 background subtraction
  cls       int64   detector class, -1 for motion detections
  score     float   detector confidence

and, when data prep ran teachers (T4 / T7 / T9), one pair per teacher-target task:

  teacher/<task>        bytes  raw float16 target in C order (class probabilities, or maps
                               [S, S, K] at crop resolution)
  teacher_shape/<task>  int64  its shape

Teacher fields are optional, so records written without teachers stay valid.

A `CubeWriter` with prefix `<prefix>` writes TFRecord shards `<prefix>-00000.tfrecord`,
`<prefix>-00001.tfrecord`, ... Data prep (`data_prep/prepare.py`) writes each video with its
own writer, prefix `<split>_v<video id, 5 digits>`, so its shards are named like
`training_v00003-00000.tfrecord`, and a video is redone or skipped as a whole. Beside each
shard lies a structured-numpy index `<shard>.index.npy` (offset, length, video_id, frame per
record), which gives random access and lets a split be filtered by video without parsing
records. `manifest.json` in the same folder lists each split's shards in order, with the
records in each (see `split_entry` and `write_manifest`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from data_prep import atomic_write
from data_prep import tfrecord

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

SOURCE_DETECTOR = 0
SOURCE_FLOW = 1
SOURCE_BACKGROUND = 2

# One row per record in `<shard>.index.npy`; plain fields so np.load needs no
# pickle.
INDEX_DTYPE = np.dtype([("offset", "<u8"), ("length", "<u8"),
                        ("video_id", "<i4"), ("frame", "<i4")])

TEACHER_PREFIX = "teacher/"
# A teacher with several outputs stores its main one as `teacher/<task>` and the others as
# `teacher/<task>.<output>`; the built-in teacher's pooled features take this suffix.
FEATURES_SUFFIX = ".features"
_TEACHER_SHAPE_PREFIX = "teacher_shape/"

_SCALAR_FIELDS = {"video_id": np.int32, "frame": np.int32,
                  "source": np.int32, "cls": np.int32, "score": np.float32}


def encode_cube(window: np.ndarray, video_id: int, frame: int,
                box: Sequence[float], source: int, cls: int,
                score: float, teachers: Mapping[str, np.ndarray] | None = None) -> bytes:
  """Serializes one object cube as a `tf.train.Example`.

  Args:
    window: uint8 array [L, S, S, C].
    video_id: Index of the video in the manifest's list for its split.
    frame: Centre frame index.
    box: [x0, y0, x1, y1] in pixels of the original frame.
    source: 0 detector, 1 flow, 2 background.
    cls: Detector class, -1 for motion detections.
    score: Detector confidence.
    teachers: Task name -> teacher target (any shape; stored as float16).

  Returns:
    The serialized Example.
  """
  window = np.asarray(window)
  if window.dtype != np.uint8 or window.ndim != 4:
    raise ValueError(f"window must be uint8 [L, S, S, C], got {window.dtype} "
                     f"{window.shape}.")
  box = np.asarray(box, np.float32).reshape(-1)
  if box.shape != (4,):
    raise ValueError(f"box must have 4 values (xyxy), got {box.shape}.")
  ex = tf_example_pb2.Example()
  f = ex.features.feature
  f["window"].bytes_list.value.append(np.ascontiguousarray(window).tobytes())
  f["shape"].int64_list.value.extend(int(d) for d in window.shape)
  f["video_id"].int64_list.value.append(int(video_id))
  f["frame"].int64_list.value.append(int(frame))
  f["box"].float_list.value.extend(box.tolist())
  f["source"].int64_list.value.append(int(source))
  f["cls"].int64_list.value.append(int(cls))
  f["score"].float_list.value.append(float(score))
  for name, target in (teachers or {}).items():
    target = np.asarray(target)
    if not np.all(np.isfinite(target)):
      raise ValueError(f"teacher target {name!r} of video {video_id}, frame {frame} is not finite")
    f[TEACHER_PREFIX + name].bytes_list.value.append(
        np.ascontiguousarray(target, np.float16).tobytes())
    f[_TEACHER_SHAPE_PREFIX + name].int64_list.value.extend(int(d) for d in target.shape)
  # `features.feature` is a protobuf map: without `deterministic`, upb writes its entries in
  # hash-table order, which differs from process to process, so identical cubes would give
  # different shard bytes. Deterministic serialization writes the entries sorted by key.
  return ex.SerializeToString(deterministic=True)


def decode_cube(data: bytes) -> dict[str, np.ndarray]:
  """Parses a record written by `encode_cube`.

  Args:
    data: A serialized Example.

  Returns:
    Dict of numpy values: `window` uint8 [L, S, S, C] (writable), `video_id`,
    `frame`, `source`, `cls` int32 scalars, `score` float32 scalar, `box`
    float32 [4] and, for each teacher target, `teacher/<task>` float16.
  """
  ex = tf_example_pb2.Example.FromString(data)
  f = ex.features.feature
  try:
    shape = tuple(f["shape"].int64_list.value)
    window = np.frombuffer(f["window"].bytes_list.value[0], np.uint8)
    out = {"window": window.reshape(shape).copy(),
           "box": np.array(f["box"].float_list.value, np.float32)}
    for key in ("video_id", "frame", "source", "cls"):
      out[key] = np.int32(f[key].int64_list.value[0])
    out["score"] = np.float32(f["score"].float_list.value[0])
    for key in f:
      if key.startswith(TEACHER_PREFIX):
        name = key[len(TEACHER_PREFIX):]
        shape = tuple(f[_TEACHER_SHAPE_PREFIX + name].int64_list.value)
        out[key] = np.frombuffer(f[key].bytes_list.value[0], np.float16).reshape(shape).copy()
  except (IndexError, ValueError) as e:
    raise ValueError(f"Not a cube record of schema {SCHEMA_VERSION}: {e}") from e
  return out


def stack_cubes(cubes: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Stacks decoded cubes into arrays with a leading record axis."""
  if not cubes:
    raise ValueError("No cubes to stack.")
  return {k: np.stack([c[k] for c in cubes]) for k in cubes[0]}


def shard_name(split: str, shard: int) -> str:
  return f"{split}-{shard:05d}.tfrecord"


def index_path(shard_path: str) -> str:
  return shard_path + ".index.npy"


class CubeWriter:
  """Writes the cubes of one split into TFRecord shards with index files.

  Each shard is written under a temporary name and renamed when complete
  (its index first), so an interrupted run never leaves a shard that looks
  complete. When the split already has more shards than this run writes,
  `close()` removes the stale ones after the new ones are in place.

  Attributes:
    out_dir: Output folder.
    split: Shard prefix: a split name, or `<split>_v<video id>` for one video of data prep.
  """

  def __init__(self, out_dir: str | os.PathLike[str], split: str,
               records_per_shard: int = 4096):
    if records_per_shard < 1:
      raise ValueError(f"records_per_shard must be >= 1, got {records_per_shard}.")
    if not split or "/" in split or "-" in split:
      raise ValueError(f"split name must be non-empty without '/' or '-': {split!r}.")
    self.out_dir = os.fspath(out_dir)
    self.split = split
    self.records_per_shard = records_per_shard
    os.makedirs(self.out_dir, exist_ok=True)
    self._shards: list[str] = []
    self._counts: list[int] = []
    self._writer: tfrecord.TFRecordWriter | None = None
    self._rows: list[tuple[int, int, int, int]] = []
    self._window_shape: tuple[int, ...] | None = None
    self._result: dict[str, Any] | None = None

  def add(self, window: np.ndarray, video_id: int, frame: int,
          box: Sequence[float], source: int, cls: int, score: float,
          teachers: Mapping[str, np.ndarray] | None = None) -> None:
    """Encodes and appends one cube; see `encode_cube` for the arguments."""
    if self._result is not None:
      raise ValueError(f"CubeWriter({self.out_dir}, {self.split}): add() after close().")
    shape = tuple(np.shape(window))
    if self._window_shape is None:
      self._window_shape = shape
    elif shape != self._window_shape:
      raise ValueError(f"All windows of a split must share one shape: got {shape} "
                       f"after {self._window_shape}.")
    data = encode_cube(window, video_id, frame, box, source, cls, score, teachers)
    if self._writer is None:
      path = os.path.join(self.out_dir, shard_name(self.split, len(self._shards)))
      self._writer = tfrecord.TFRecordWriter(path + ".tmp")
    offset = self._writer.write(data)
    self._rows.append((offset, len(data), int(video_id), int(frame)))
    if len(self._rows) >= self.records_per_shard:
      self._finish_shard()

  def _finish_shard(self) -> None:
    assert self._writer is not None
    self._writer.close()
    path = self._writer.path[:-len(".tmp")]
    atomic_write.save_npy(index_path(path), np.array(self._rows, INDEX_DTYPE))
    os.replace(self._writer.path, path)
    self._shards.append(os.path.basename(path))
    self._counts.append(len(self._rows))
    self._writer, self._rows = None, []

  def _remove_stale_shards(self) -> None:
    i = len(self._shards)
    while True:
      path = os.path.join(self.out_dir, shard_name(self.split, i))
      found = False
      for p in (path, index_path(path)):
        if os.path.exists(p):
          os.remove(p)
          found = True
      if not found:
        return
      i += 1

  def close(self) -> dict[str, Any]:
    """Finishes the last shard.

    Returns:
      Dict with `split`, `shards` (file names relative to `out_dir`),
      `shard_counts`, `num_records` and `window_shape` (None if empty).
    """
    if self._result is None:
      if self._writer is not None:
        self._finish_shard()
      self._remove_stale_shards()
      self._result = {"split": self.split, "shards": list(self._shards),
                      "shard_counts": list(self._counts),
                      "num_records": int(sum(self._counts)),
                      "window_shape": (list(self._window_shape)
                                       if self._window_shape else None)}
    return self._result

  def __enter__(self) -> CubeWriter:
    return self

  def __exit__(self, exc_type, *exc) -> None:
    if exc_type is not None and self._writer is not None:
      # Leave no half-written shard behind; completed shards stay. Closing must not raise a
      # second error over the first (a full disk fails the flush too).
      self._writer.abort()
      self._writer = None
      return
    self.close()


def split_entry(writer_result: dict[str, Any], videos: Sequence[str],
                frame_counts: Sequence[int]) -> dict[str, Any]:
  """Builds a manifest `splits[name]` entry from `CubeWriter.close()`'s result.

  Args:
    writer_result: What `CubeWriter.close()` returned.
    videos: Video names; a record's `video_id` indexes this list.
    frame_counts: Number of frames of each video.

  Returns:
    Dict with `videos`, `frame_counts`, `num_records`, `shards` (file names in record order)
    and `shard_records` (shard file name -> number of records in it).
  """
  if len(videos) != len(frame_counts):
    raise ValueError(f"{len(videos)} videos but {len(frame_counts)} frame counts.")
  return {"videos": list(videos), "frame_counts": [int(n) for n in frame_counts],
          "num_records": int(writer_result["num_records"]),
          "shards": list(writer_result["shards"]),
          "shard_records": shard_records(writer_result["shards"], writer_result["shard_counts"])}


def shard_records(shards: Sequence[str], counts: Sequence[int]) -> dict[str, int]:
  """The manifest's `shard_records`: shard file name -> number of records in it."""
  if len(shards) != len(counts):
    raise ValueError(f"{len(shards)} shards but {len(counts)} record counts.")
  return {name: int(n) for name, n in zip(shards, counts)}


def write_manifest(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> str:
  """Writes `manifest.json` atomically (temporary file + rename).

  Args:
    out_dir: Output folder of the prepared data.
    manifest: Dict with `window_length`, `crop_size`, `channels`, `splits`
      (split name -> `split_entry(...)`) and `prep_config`. `schema_version`
      is filled in if missing.

  Returns:
    The manifest path.
  """
  manifest = dict(manifest)
  manifest.setdefault("schema_version", SCHEMA_VERSION)
  missing = {"window_length", "crop_size", "channels", "splits",
             "prep_config"} - set(manifest)
  if missing:
    raise ValueError(f"Manifest is missing keys {sorted(missing)}.")
  return atomic_write.write_json(os.path.join(os.fspath(out_dir), MANIFEST_NAME), manifest,
                                 indent=1, sort_keys=True)


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
  """Reads and checks `manifest.json`.

  Args:
    out_dir: Output folder of the prepared data.

  Returns:
    The manifest dict.

  Raises:
    FileNotFoundError: If there is no manifest (data not prepared yet).
    ValueError: If it is not valid JSON or has another schema version.
  """
  path = os.path.join(os.fspath(out_dir), MANIFEST_NAME)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no manifest; run data preparation into "
                            f"{out_dir} first.")
  try:
    with open(path) as f:
      manifest = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON: {e}") from e
  version = manifest.get("schema_version")
  if version != SCHEMA_VERSION:
    raise ValueError(f"{path}: schema_version {version!r}, but this code reads "
                     f"version {SCHEMA_VERSION}; prepare the data again.")
  return manifest
