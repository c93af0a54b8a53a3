"""Files that appear whole or not at all: everything the project writes goes through here.

Each writer writes under a unique temporary name in the destination's folder (a hidden
`.<name>.<random>.tmp<ext>`: same file system, so the final rename is atomic; unique, so
concurrent writers stay apart; the extension kept, so libraries that choose a format by it,
such as `np.savez` and video muxers, still do) and renames it into place only when the write
finished. A failed or interrupted write leaves the previous file, if any, untouched and no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def temporary_path(path: str | os.PathLike[str]) -> Iterator[str]:
  """Yields a temporary path beside `path`; renames it to `path` when the block completes.

  The caller creates the file (or folder) at the yielded path. A folder replaces a folder
  already at `path`. On an exception the temporary file or folder is removed and the exception
  propagates.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  name = os.path.basename(path)
  ext = os.path.splitext(name)[1]
  tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp{ext}")
  try:
    yield tmp
    if os.path.isdir(tmp) and os.path.isdir(path):
      shutil.rmtree(path)
    os.replace(tmp, path)
  except BaseException:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
    elif os.path.lexists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str | os.PathLike[str], text: str) -> str:
  """Writes `text` to `path` atomically; returns the path."""
  with temporary_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)
  return os.fspath(path)


def write_json(path: str | os.PathLike[str], obj: Any, **dump_kwargs) -> str:
  """Writes `obj` as JSON (`json.dump` keyword arguments pass through) atomically."""
  with temporary_path(path) as tmp:
    with open(tmp, "w") as f:
      json.dump(obj, f, **dump_kwargs)
  return os.fspath(path)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> str:
  """`np.save` without pickles, atomically."""
  with temporary_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.save(f, array, allow_pickle=False)
  return os.fspath(path)


def save_npz(path: str | os.PathLike[str], compressed: bool = False, **arrays: np.ndarray) -> str:
  """`np.savez` (`np.savez_compressed` if `compressed`) of named arrays, atomically (`path`
  should end in .npz)."""
  with temporary_path(path) as tmp:
    with open(tmp, "wb") as f:
      (np.savez_compressed if compressed else np.savez)(f, **arrays)
  return os.fspath(path)
