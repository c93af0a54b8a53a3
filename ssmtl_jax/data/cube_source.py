"""Random-access grain data source over the cube records of one split (see `records`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_prep import tfrecord
from data_prep.records import INDEX_DTYPE, MANIFEST_NAME, decode_cube, index_path, read_manifest
from data_prep.records import stack_cubes


class CubeSource:
  """Random-access grain data source over the cube records of one split.

  `source[i]` returns the raw serialized record (map `decode_cube` over it in
  the pipeline, so decoding runs in grain's workers). Only the index files are
  read at construction; shard files are opened lazily in each process, which
  keeps the object small and picklable for grain worker processes.

  Shards are taken from `manifest.json` when it lists the split (the manifest
  is written last, so it names exactly one finished run), else from the files
  `<split>-NNNNN.tfrecord` in `out_dir`.
  """

  def __init__(self, out_dir: str | os.PathLike[str], split: str,
               videos: Sequence[int] | None = None, verify: bool = True):
    """Builds the source.

    Args:
      out_dir: Output folder of the prepared data.
      split: Split name.
      videos: If given, keep only records whose `video_id` is in this list.
      verify: Whether reads check the TFRecord CRCs (cheap: crc32c runs in C).
    """
    self.out_dir = os.fspath(out_dir)
    self.split = split
    self.verify = verify
    self._expected: int | None = None
    self._expected_per_shard: dict[str, int] | None = None
    self.shard_paths = self._find_shards()
    tables = [self._load_index(p) for p in self.shard_paths]
    for path, table in zip(self.shard_paths, tables):
      want = (self._expected_per_shard or {}).get(os.path.basename(path))
      if want is not None and want != len(table):
        raise ValueError(f"{path}: the manifest lists {want} records in this shard but its "
                         f"index holds {len(table)}.")
    full = np.concatenate(tables) if tables else np.zeros(0, INDEX_DTYPE)
    if self._expected is not None and self._expected != len(full):
      raise ValueError(f"{self.out_dir}: the manifest lists {self._expected} "
                       f"{split} records but the shard indexes hold {len(full)}.")
    shard = np.repeat(np.arange(len(tables), dtype=np.int32),
                      [len(t) for t in tables])
    if videos is None:
      keep = np.arange(len(full))
    else:
      keep = np.flatnonzero(np.isin(full["video_id"], np.asarray(videos, np.int64)))
    self._record = keep.astype(np.int64)  # Position within the whole split.
    self._shard = shard[keep]
    self._index = full[keep]
    self._fds: list[int] | None = None
    self._pid: int | None = None
    self._lock = threading.Lock()

  def _find_shards(self) -> list[str]:
    manifest_path = os.path.join(self.out_dir, MANIFEST_NAME)
    if os.path.exists(manifest_path):
      splits = read_manifest(self.out_dir)["splits"]
      if self.split not in splits:
        raise KeyError(f"{manifest_path}: no split {self.split!r}; it has "
                       f"{sorted(splits)}.")
      names = splits[self.split]["shards"]
      self._expected = splits[self.split].get("num_records")
      # Optional: the manifests of older preps have no `shard_records`.
      self._expected_per_shard = splits[self.split].get("shard_records")
    else:
      if not os.path.isdir(self.out_dir):
        raise FileNotFoundError(f"{self.out_dir}: no such folder of cube records.")
      prefix = self.split + "-"
      names = sorted(n for n in os.listdir(self.out_dir)
                     if n.startswith(prefix) and n.endswith(".tfrecord")
                     and n[len(prefix):-len(".tfrecord")].isdigit())
      if not names:
        raise FileNotFoundError(f"{self.out_dir}: no shards {prefix}NNNNN.tfrecord "
                                "and no manifest.")
    return [os.path.join(self.out_dir, n) for n in names]

  @staticmethod
  def _load_index(shard_path: str) -> np.ndarray:
    path = index_path(shard_path)
    if not os.path.exists(shard_path):
      raise FileNotFoundError(f"{shard_path}: shard listed but missing.")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path}: index of shard {shard_path} is missing.")
    table = np.load(path, allow_pickle=False)
    if table.dtype != INDEX_DTYPE or table.ndim != 1:
      raise ValueError(f"{path}: expected a 1-D index of dtype {INDEX_DTYPE}, "
                       f"got {table.dtype} {table.shape}.")
    return table

  def __len__(self) -> int:
    return len(self._index)

  def __getitem__(self, i) -> bytes:
    i = int(i)
    n = len(self._index)
    if i < 0:
      i += n
    if not 0 <= i < n:
      raise IndexError(f"CubeSource({self.split}) index {i} out of range [0, {n}).")
    if self._pid != os.getpid():
      # Descriptors opened by a parent process are not ours to share; pread
      # keeps one descriptor safe to use from several threads.
      with self._lock:
        if self._pid != os.getpid():
          self._fds = [os.open(p, os.O_RDONLY) for p in self.shard_paths]
          self._pid = os.getpid()
    shard = int(self._shard[i])
    row = self._index[i]
    offset, length = int(row["offset"]), int(row["length"])
    buf = os.pread(self._fds[shard], tfrecord.HEADER_BYTES + length
                   + tfrecord.FOOTER_BYTES, offset)
    return tfrecord.parse_framed(buf, self.shard_paths[shard],
                                 f"record {int(self._record[i])} of split {self.split!r} (offset "
                                 f"{offset}; video {int(row['video_id'])}, frame "
                                 f"{int(row['frame'])})", self.verify,
                                 expected_length=length)

  def __getstate__(self) -> dict[str, Any]:
    state = self.__dict__.copy()
    state["_fds"], state["_pid"], state["_lock"] = None, None, None
    return state

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def close(self) -> None:
    """Closes the shard files opened by this process (reopened on next read)."""
    if self._fds is not None and self._pid == os.getpid():
      for fd in self._fds:
        os.close(fd)
    self._fds, self._pid = None, None

  def __del__(self):
    try:
      self.close()
    except (OSError, AttributeError, TypeError):
      pass  # Interpreter shutdown or a half-built object.

  def __repr__(self) -> str:
    return (f"CubeSource(out_dir={self.out_dir!r}, split={self.split!r}, "
            f"len={len(self)}, shards={len(self.shard_paths)})")

  def metadata(self) -> dict[str, np.ndarray]:
    """Per-record metadata from the indexes, in source order (no parsing).

    Returns:
      Dict with `video_id` int32 [N], `frame` int32 [N] and `record` int64 [N]
      (position of each record within the whole split).
    """
    return {"video_id": self._index["video_id"].copy(),
            "frame": self._index["frame"].copy(), "record": self._record.copy()}

  def read_all(self, indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Decodes records and stacks them (for evaluation).

    Args:
      indices: Positions in this source; all records when None.

    Returns:
      `decode_cube`'s fields stacked along a new leading axis.
    """
    if indices is None:
      indices = range(len(self))
    return stack_cubes([decode_cube(self[i]) for i in indices])
