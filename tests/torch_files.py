"""Writes PyTorch `.pth` files without PyTorch, for the weights-reader tests.

The pickles name the same globals `torch.save` writes (`torch._utils._rebuild_tensor_v2`,
`torch.FloatStorage`, ...), resolved through stand-in modules that exist only while a file is
written, so the files are byte-for-byte of PyTorch's layout: the legacy stream (magic number,
protocol, system info, the object pickle, the storage keys, then each storage as an int64
element count followed by its raw bytes) or the zip archive (`archive/data.pkl` plus one
`archive/data/<key>` file per storage).
"""

import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage",
             np.dtype(np.float16): "HalfStorage"}


def _rebuild_tensor_v2(*args):
  raise AssertionError("stand-in: never called while writing")


class _Storage:

  def __init__(self, key: str, flat: np.ndarray):
    self.key, self.flat = key, flat


class _Tensor:
  """Pickles as `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""

  def __init__(self, storage: _Storage, offset: int, size, stride):
    self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

  def __reduce__(self):
    return (_rebuild_tensor_v2, self.args)


class _Extra:
  """Pickles as a call of any global, to test that the reader refuses it."""

  def __init__(self, func, args):
    self.func, self.args = func, args

  def __reduce__(self):
    return (self.func, self.args)


def _stand_in_modules():
  torch = types.ModuleType("torch")
  utils = types.ModuleType("torch._utils")
  _rebuild_tensor_v2.__module__ = "torch._utils"
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2
  torch._utils = utils
  for name in _STORAGES.values():
    setattr(torch, name, type(name, (), {"__module__": "torch"}))
  return {"torch": torch, "torch._utils": utils}


class _Pickler(pickle.Pickler):

  def __init__(self, file, modules):
    super().__init__(file, protocol=2)
    self._modules = modules

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      kind = getattr(self._modules["torch"], _STORAGES[obj.flat.dtype])
      return ("storage", kind, obj.key, "cpu", obj.flat.size)
    return None


def _tensors(state):
  """name -> _Tensor over one storage per tensor; a transposed 2-D tensor keeps a strided
  view (offset 1 into a larger storage) to exercise offsets and strides."""
  storages, out = [], collections.OrderedDict()
  for n, (name, value) in enumerate(state.items()):
    value = np.asarray(value)
    if value.ndim == 2:
      flat = np.concatenate([np.zeros(1, value.dtype), np.ascontiguousarray(value.T).ravel()])
      tensor = _Tensor(_Storage(str(n), flat), 1, value.shape, (1, value.shape[0]))
    else:
      flat = np.ascontiguousarray(value).ravel()
      tensor = _Tensor(_Storage(str(n), flat), 0, value.shape,
                       tuple(s // value.itemsize for s in np.ascontiguousarray(value).strides))
    storages.append(tensor.args[0])
    out[name] = tensor
  return out, storages


def save(path, state, legacy: bool = True, extra=None):
  """Writes `state` (name -> np.ndarray) as a `.pth`; `extra=(func, args)` adds an entry that
  unpickles as `func(*args)`."""
  modules = _stand_in_modules()
  saved = {k: sys.modules.get(k) for k in modules}
  sys.modules.update(modules)
  try:
    obj, storages = _tensors(state)
    if extra is not None:
      obj["extra"] = _Extra(*extra)
    body = io.BytesIO()
    _Pickler(body, modules).dump(obj)
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v
  if legacy:
    with open(path, "wb") as f:
      for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                          "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, f, protocol=2)
      f.write(body.getvalue())
      pickle.dump([s.key for s in storages], f, protocol=2)
      for s in storages:
        f.write(np.int64(s.flat.size).tobytes())
        f.write(s.flat.tobytes())
  else:
    with zipfile.ZipFile(path, "w") as z:
      z.writestr("archive/data.pkl", body.getvalue())
      for s in storages:
        z.writestr(f"archive/data/{s.key}", s.flat.tobytes())
