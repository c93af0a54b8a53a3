"""Reads PyTorch `.pth` state dicts into NumPy without PyTorch, refusing anything but tensors.

A `.pth` file is a pickle, and unpickling runs whatever callables the file names. The reader
here allows only the globals a plain state dict needs (an `OrderedDict`, the tensor-rebuild
function and the storage types), the rule of PyTorch's own weights-only loading; a file that names
any other global is refused with an error naming the file and the global, before anything of it
runs. Both of PyTorch's formats are read: the legacy one (a stream of pickles followed by the raw
storages) and the zip archive of PyTorch >= 1.6.
"""

from __future__ import annotations

import collections
import io
import pathlib
import pickle
import zipfile
from typing import Any

import numpy as np

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeWeightsError(ValueError):
  """The file's pickle names a global that a plain state dict does not need."""


class _StorageType:
  """Stands for `torch.<Kind>Storage` in the pickle: only its element type is used."""

  def __init__(self, name: str):
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
  """A flat storage whose bytes are filled in after the object pickle (legacy format)."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel = dtype, numel
    self.array: np.ndarray | None = None


class _Tensor:
  """A tensor's view of a storage; materialised once every storage has been read."""

  def __init__(self, storage: _Storage, offset: int, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def to_numpy(self) -> np.ndarray:
    flat = self.storage.array
    if not self.size:
      return flat[self.offset].copy()
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                           strides=[s * itemsize for s in self.stride])
    return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  del requires_grad, backward_hooks, metadata
  return _Tensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):

  def __init__(self, file, path, storages: dict[str, _Storage], read_storage=None):
    super().__init__(file)
    self._path, self._storages, self._read_storage = path, storages, read_storage

  def find_class(self, module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor_v2
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafeWeightsError(
        f"{self._path}: refusing to load: its pickle names the global {module}.{name}, which a "
        "plain tensor state dict never needs (only tensors, their storages and OrderedDict are "
        "allowed). Re-save the weights as a state dict of tensors.")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise UnsafeWeightsError(f"{self._path}: unexpected persistent id {pid!r}")
    storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
    if not isinstance(storage_type, _StorageType):
      raise UnsafeWeightsError(f"{self._path}: storage of unknown type {storage_type!r}")
    if key not in self._storages:
      storage = _Storage(storage_type.dtype, numel)
      if self._read_storage is not None:
        storage.array = self._read_storage(key, storage.dtype, numel)
      self._storages[key] = storage
    return self._storages[key]


def _flatten(obj, path) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
  if "state_dict" in obj and isinstance(obj["state_dict"], dict):
    obj = obj["state_dict"]
  out = {}
  for name, value in obj.items():
    if isinstance(value, _Tensor):
      out[str(name)] = value.to_numpy()
  if not out:
    raise ValueError(f"{path}: the state dict holds no tensors")
  return out


def _load_legacy(f, path) -> dict[str, np.ndarray]:
  def header():
    return _RestrictedUnpickler(f, path, {}).load()
  if header() != _LEGACY_MAGIC:
    raise ValueError(f"{path}: not a PyTorch weights file (bad magic number)")
  header()  # protocol version
  sys_info = header()
  if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
    raise ValueError(f"{path}: big-endian weights files are not supported")
  storages: dict[str, _Storage] = {}
  obj = _RestrictedUnpickler(f, path, storages).load()
  keys = _RestrictedUnpickler(f, path, storages).load()
  for key in keys:
    storage = storages[str(key)]
    numel = int(np.frombuffer(f.read(8), "<i8")[0])
    data = f.read(numel * storage.dtype.itemsize)
    if numel != storage.numel or len(data) != numel * storage.dtype.itemsize:
      raise ValueError(f"{path}: truncated or corrupt storage {key}")
    storage.array = np.frombuffer(data, storage.dtype)
  return _flatten(obj, path)


def _load_zip(path) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pickles:
      raise ValueError(f"{path}: a zip file without data.pkl is not a PyTorch weights file")
    prefix = pickles[0][:-len("data.pkl")]

    def read_storage(key, dtype, numel):
      data = archive.read(f"{prefix}data/{key}")
      if len(data) < numel * dtype.itemsize:
        raise ValueError(f"{path}: truncated storage {key}")
      return np.frombuffer(data, dtype, count=numel)

    with archive.open(pickles[0]) as f:
      obj = _RestrictedUnpickler(io.BytesIO(f.read()), path, {}, read_storage).load()
  return _flatten(obj, path)


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """A PyTorch state dict as `{name: np.ndarray}`, read without PyTorch.

  Raises:
    FileNotFoundError: no such file.
    UnsafeWeightsError: the pickle names a global other than tensors, storages, OrderedDict.
    ValueError: the file is not a PyTorch state dict, or is truncated.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"weights file {path} does not exist")
  if zipfile.is_zipfile(path):
    return _load_zip(path)
  with open(path, "rb") as f:
    try:
      return _load_legacy(f, path)
    except (pickle.UnpicklingError, EOFError, IndexError) as e:
      raise ValueError(f"{path}: not a readable PyTorch weights file ({e})") from e
