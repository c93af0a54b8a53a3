"""Stride-1 'SAME' 3D convolution for XLA:CPU, run by onnxruntime's MLAS kernels.

XLA:CPU runs our 3D convolutions (forward + backward) at 20-110 GFLOP/s on our 2-core dev
machine, a fraction of its own matmul rate (benchmarks/RESULTS.md); onnxruntime, already a dependency for the
detectors, ships MLAS, whose im2col + AVX-512 GEMM convolution runs the same shapes at 100-150
GFLOP/s. This module wraps it as a differentiable JAX function for the CPU backend:

  forward      y  = conv(x, w)                          onnxruntime Conv (NDHWC in and out)
  input grad   dx = conv(dy, flip(w) with in/out swapped)  the same onnxruntime session
  weight grad  dw[tap] = x_shifted^T @ dy               GEMMs over a flat, zero-separated layout

The weight gradient is where a conv library's dedicated kernels matter; as a conv it is a GEMM
with an output width of 27 (one column per tap) that MLAS and XLA both run slowly. Instead the
activations are laid out as rows of one flat `[rows, C]` matrix, every axis followed by zero
separators, so that each kernel tap is a *contiguous* row offset into that matrix: the 27 taps
become 9 GEMMs `[3C, rows] x [rows, O]` over views, with no im2col copy of 27x the input.

Every call runs on the host through `jax.pure_callback`, so this is a CPU-only lowering
(`conv_impl="onnxruntime"`); GPU and TPU keep `lax.conv`. Results match `lax.conv` to float32
rounding (tested), so checkpoints move freely between lowerings.
"""

import functools
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from ssmtl_jax import host_memory

_NDHWC_TO_NCDHW = (0, 4, 1, 2, 3)
_NCDHW_TO_NDHWC = (0, 2, 3, 4, 1)
_DHWIO_TO_OIDHW = (4, 3, 0, 1, 2)


def _conv_model(kernel: tuple[int, int, int]) -> bytes:
  """An ONNX graph: x NDHWC, w DHWIO -> Conv with 'SAME' pads -> y NDHWC (shapes dynamic)."""
  from onnx import TensorProto, helper  # pylint: disable=g-import-not-at-top
  pads = [k // 2 for k in kernel] * 2
  nodes = [
      helper.make_node("Transpose", ["x"], ["xc"], perm=list(_NDHWC_TO_NCDHW)),
      helper.make_node("Transpose", ["w"], ["wc"], perm=list(_DHWIO_TO_OIDHW)),
      helper.make_node("Conv", ["xc", "wc"], ["yc"], kernel_shape=list(kernel), pads=pads),
      helper.make_node("Transpose", ["yc"], ["y"], perm=list(_NCDHW_TO_NDHWC)),
  ]
  io = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
  graph = helper.make_graph(nodes, "conv3d_same", [io("x"), io("w")], [io("y")])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
  model.ir_version = 8  # readable by every onnxruntime >= 1.14
  return model.SerializeToString()


_sessions: dict = {}
_sessions_lock = threading.Lock()


def _session(kernel: tuple[int, int, int]):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  with _sessions_lock:
    if kernel not in _sessions:
      # Each call hands activation-sized arrays between XLA and the host: keep their pages.
      host_memory.retain_freed_memory()
      opts = ort.SessionOptions()
      # One thread per usable core; the thread count fixes MLAS's work split, hence the bits.
      opts.intra_op_num_threads = _usable_cores()
      opts.inter_op_num_threads = 1
      opts.log_severity_level = 3
      _sessions[kernel] = ort.InferenceSession(_conv_model(kernel), opts,
                                               providers=["CPUExecutionProvider"])
    return _sessions[kernel]


def _usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def _host_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  x = np.ascontiguousarray(x, np.float32)
  w = np.ascontiguousarray(w, np.float32)
  return _session(tuple(w.shape[:3])).run(None, {"x": x, "w": w})[0]


def _flat_rows(a: np.ndarray,
               pads: tuple[int, int, int]) -> tuple[np.ndarray, int, tuple[int, int]]:
  """`[B, T, H, W, C]` -> `[rows, C]`, each of T, H, W followed by its pad of zeros.

  Returns the matrix, the row of element (0, 0, 0, 0) and the row strides of t and h. With the
  zeros after every axis (and a margin before the first row), `row(b, t+dt, h+dh, w+dw)` =
  `row(b, t, h, w) + dt * st + dh * sh + dw` lands on a zero whenever the shifted index leaves its
  axis, which is exactly 'SAME' zero padding.
  """
  b, t, h, w, c = a.shape
  pt, ph, pw = pads
  sh = w + pw
  st = (h + ph) * sh
  margin = pt * st + ph * sh + pw
  body_rows = b * (t + pt) * st
  flat = np.zeros((body_rows + 2 * margin, c), np.float32)
  flat[margin:margin + body_rows].reshape(b, t + pt, h + ph, w + pw, c)[:, :t, :h, :w] = a
  return flat, margin, (st, sh)


# Views per weight-gradient chunk: about this many bytes of input, so that a chunk's shifted
# copies stay in cache between their GEMMs (10-20 % faster than one pass over a 64-view batch).
_CHUNK_BYTES = 4 << 20


def _host_weight_grad(x: np.ndarray, dy: np.ndarray, kernel: tuple[int, int, int]) -> np.ndarray:
  """dw[kt, kh, kw] = sum over positions of x(p + tap) outer dy(p); `[kt, kh, kw, C, O]`."""
  x = np.asarray(x, np.float32)
  dy = np.asarray(dy, np.float32)
  per_view = x[0].nbytes + dy[0].nbytes
  chunk = max(1, _CHUNK_BYTES // max(per_view, 1))
  dw = np.zeros((*kernel, x.shape[-1], dy.shape[-1]), np.float32)
  for start in range(0, x.shape[0], chunk):
    dw += _weight_grad_chunk(x[start:start + chunk], dy[start:start + chunk], kernel)
  return dw


def _weight_grad_chunk(x: np.ndarray, dy: np.ndarray, kernel: tuple[int, int, int]) -> np.ndarray:
  pads = tuple(k // 2 for k in kernel)
  xs, _, (st, sh) = _flat_rows(x, pads)
  gs, margin, _ = _flat_rows(dy, pads)
  rows = gs.shape[0] - 2 * margin
  g = gs[margin:margin + rows]  # garbage-free: dy is zero on every separator row
  kt, kh, kw = kernel
  # The kw taps side by side in channels (3x the input, not 27x): one GEMM per (kt, kh), each
  # over a contiguous row range of `xw`, so no further copies.
  # Row `margin` holds element (0, 0, 0, 0), so the tap (-pt, -ph, -pw) of output row 0 is row
  # margin - (pt * st + ph * sh + pw) = 0: tap (a, i, j) of output row r is row r + a*st + i*sh + j.
  span = rows + (kt - 1) * st + (kh - 1) * sh
  xw = np.concatenate([xs[j:j + span] for j in range(kw)], axis=1)
  c, o = x.shape[-1], dy.shape[-1]
  dw = np.empty((kt, kh, kw, c, o), np.float32)
  for a in range(kt):
    for i in range(kh):
      off = a * st + i * sh
      dw[a, i] = (xw[off:off + rows].T @ g).reshape(kw, c, o)
  return dw


def _shape(x, w):
  return jax.ShapeDtypeStruct((*x.shape[:4], w.shape[-1]), jnp.float32)


def _callback_conv(x, w):
  return jax.pure_callback(_host_conv, _shape(x, w), x, w, vmap_method="sequential")


@jax.custom_vjp
def conv3d_same(x: jax.Array, w: jax.Array) -> jax.Array:
  """'SAME' stride-1 conv of `x [B, T, H, W, C]` with `w [kt, kh, kw, C, O]` (odd sizes), f32."""
  return _callback_conv(x, w)


def _fwd(x, w):
  return _callback_conv(x, w), (x, w)


def _bwd(res, dy):
  x, w = res
  # The input gradient of a 'SAME' odd-kernel conv is the same conv of dy with the kernel flipped
  # in space and its in/out channels swapped.
  dx = _callback_conv(dy, jnp.flip(w, (0, 1, 2)).swapaxes(3, 4))
  dw = jax.pure_callback(functools.partial(_host_weight_grad, kernel=tuple(w.shape[:3])),
                         jax.ShapeDtypeStruct(w.shape, jnp.float32), x, dy,
                         vmap_method="sequential")
  return dx.astype(x.dtype), dw.astype(w.dtype)


conv3d_same.defvjp(_fwd, _bwd)
