"""Stride-1 'SAME' 3D convolution for XLA:CPU, run by a CPU inference library's kernels.

XLA:CPU runs 3D convolutions (forward + backward) at a fraction of its own matmul rate. CPU
inference libraries have dedicated convolution kernels: OpenVINO's (oneDNN's JIT direct
convolutions, the kernels PyTorch uses on CPU) and onnxruntime's MLAS (im2col + GEMM) run the
trunk's shapes several times faster (rates: benchmarks/RESULTS.md). This module wraps either as a
differentiable JAX function:

  forward      y  = conv(x, w)                             the backend's Conv (NDHWC in and out)
  input grad   dx = conv(dy, flip(w) with in/out swapped)  the same kind of Conv
  weight grad  dw[tap] = x_shifted^T @ dy                  GEMMs over a flat, zero-separated layout

The weight gradient is a conv whose output is only 27 taps wide, which inference libraries do
not ship a kernel for. Instead the activations are laid out as rows of one flat `[rows, C]`
matrix, every axis followed by zero separators, so that each kernel tap is a *contiguous* row
offset into that matrix: the 27 taps become 9 GEMMs `[3C, rows] x [rows, O]`, with no im2col copy
of 27x the input (a 27-tap im2col only where C is tiny, e.g. the 1-channel input conv).

Every call runs on the host through XLA's CPU host-callback mechanism, so this is a CPU-only
lowering (`conv_impl="openvino"` or `"onnxruntime"`); GPU and TPU keep `lax.conv`. Results match `lax.conv`
to float32 rounding (tested), and repeated calls are bit-identical, so checkpoints move freely
between lowerings.
"""

import functools
import os
import sys
import threading

import jax
import jax.extend.core  # noqa: F401  (Primitive)
from jax.interpreters import mlir
import jax.numpy as jnp
import numpy as np

from ssmtl_jax import host_memory

BACKENDS = ("openvino", "onnxruntime")

_NDHWC_TO_NCDHW = (0, 4, 1, 2, 3)
_NCDHW_TO_NDHWC = (0, 2, 3, 4, 1)
_DHWIO_TO_OIDHW = (4, 3, 0, 1, 2)


def _usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def _import_openvino():
  # `import openvino` also imports its model converter (openvino.tools.ovc), whose import sends a
  # usage event to Google Analytics from a forked process: a network call on machines that have
  # none, and a fork inside multithreaded JAX. We need only the runtime; openvino's __init__
  # skips the converter on ImportError, which a None entry in sys.modules raises.
  if "openvino" not in sys.modules:
    sys.modules.setdefault("openvino.tools.ovc", None)
  import openvino  # pylint: disable=g-import-not-at-top
  return openvino


def available(backend: str) -> bool:
  """Whether the backend's library imports here."""
  if backend not in BACKENDS:
    raise ValueError(f"unknown host conv backend {backend!r}; valid: {BACKENDS}")
  try:
    _import_openvino() if backend == "openvino" else __import__(backend)
  except ImportError:
    return False
  return True


# ---- onnxruntime: one session per kernel size, shapes dynamic --------------------------------

def _onnx_conv_model(kernel: tuple[int, int, int]) -> bytes:
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


def _onnxruntime_session(kernel: tuple[int, int, int]):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  opts = ort.SessionOptions()
  # One thread per usable core; the thread count fixes MLAS's work split, hence the bits.
  opts.intra_op_num_threads = _usable_cores()
  opts.inter_op_num_threads = 1
  opts.log_severity_level = 3
  return ort.InferenceSession(_onnx_conv_model(kernel), opts, providers=["CPUExecutionProvider"])


def _onnxruntime_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  session = _cached(("onnxruntime", w.shape[:3]), lambda: _onnxruntime_session(w.shape[:3]))
  return session.run(None, {"x": x, "w": w})[0]


# ---- OpenVINO: one compiled model per (input, kernel) shape; oneDNN picks kernels per shape --

def _openvino_model(x_shape: tuple[int, ...], w_shape: tuple[int, ...]):
  ov = _import_openvino()
  from openvino import opset13 as ops  # pylint: disable=g-import-not-at-top
  x = ops.parameter(list(x_shape), np.float32, name="x")
  w = ops.parameter(list(w_shape), np.float32, name="w")
  pads = [k // 2 for k in w_shape[:3]]
  # The transposes are layout hints: oneDNN runs channels-last blocked kernels and drops them.
  y = ops.convolution(ops.transpose(x, ops.constant(np.array(_NDHWC_TO_NCDHW))),
                      ops.transpose(w, ops.constant(np.array(_DHWIO_TO_OIDHW))),
                      [1, 1, 1], pads, pads, [1, 1, 1])
  y = ops.transpose(y, ops.constant(np.array(_NCDHW_TO_NDHWC)))
  config = {
      # float32 math: OpenVINO otherwise computes in bfloat16 on CPUs with AMX / AVX512-BF16.
      "INFERENCE_PRECISION_HINT": "f32",
      # One thread per usable core, like onnxruntime: a fixed work split, hence fixed bits.
      "INFERENCE_NUM_THREADS": _usable_cores(),
      "PERFORMANCE_HINT": "LATENCY",
  }
  return ov.Core().compile_model(ov.Model([y], [x, w], "conv3d_same"), "CPU", config)


def _openvino_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  request, lock = _cached(("openvino", x.shape, w.shape), lambda: _openvino_request(x, w))
  # One request per shape, used under its lock. Its output buffer is reused by the next call,
  # so the result is copied out (share_outputs=False). The inputs are copied into the request's
  # own tensors (share_inputs=False): XLA's buffers are only 16-byte aligned, and oneDNN read
  # them directly slower than it read its aligned, warm tensors plus the copy.
  # (Not a request per thread: XLA's threads enter Python with a fresh thread state per
  # callback, so thread-local requests would be rebuilt, and destroyed, on every call.)
  with lock:
    out = request.infer([x, w], share_inputs=False, share_outputs=False)
  return next(iter(out.values()))


def _openvino_request(x: np.ndarray, w: np.ndarray):
  return _openvino_model(x.shape, w.shape).create_infer_request(), threading.Lock()


_cache: dict = {}
_cache_lock = threading.Lock()


def _cached(key, build):
  with _cache_lock:
    if key not in _cache:
      # Each call hands activation-sized arrays between XLA and the host: keep their pages.
      host_memory.retain_freed_memory()
      _cache[key] = build()
    return _cache[key]


_CONV = {"openvino": _openvino_conv, "onnxruntime": _onnxruntime_conv}


def _host_conv(x: np.ndarray, w: np.ndarray, backend: str) -> np.ndarray:
  x = np.ascontiguousarray(x, np.float32)
  w = np.ascontiguousarray(w, np.float32)
  return _CONV[backend](x, w)


# ---- weight gradient: GEMMs over a flat layout (backend independent) ---------------------------

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
# copies stay in cache between their GEMMs (faster than one pass over a whole batch).
_CHUNK_BYTES = 4 << 20
# Up to this many input channels the taps are gathered into one [27C, rows] matrix and one GEMM
# (the 1-channel input conv: 9 GEMMs only 3 rows tall would each stream all of dy again).
_IM2COL_MAX_CHANNELS = 4


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
  c, o = x.shape[-1], dy.shape[-1]
  # Row `margin` holds element (0, 0, 0, 0), so the tap (-pt, -ph, -pw) of output row 0 is row
  # margin - (pt * st + ph * sh + pw) = 0: tap (a, i, j) of output row r is row r + a*st + i*sh + j.
  offsets = [a * st + i * sh for a in range(kt) for i in range(kh)]
  if c <= _IM2COL_MAX_CHANNELS:
    cols = np.concatenate([xs[off + j:off + j + rows] for off in offsets for j in range(kw)],
                          axis=1)
    return (cols.T @ g).reshape(kt, kh, kw, c, o)
  # The kw taps side by side in channels (3x the input, not 27x): one GEMM per (kt, kh), each
  # over a contiguous row range of `xw`, so no further copies.
  span = rows + offsets[-1]
  xw = np.concatenate([xs[j:j + span] for j in range(kw)], axis=1)
  dw = np.empty((kt * kh, kw, c, o), np.float32)
  for n, off in enumerate(offsets):
    dw[n] = (xw[off:off + rows].T @ g).reshape(kw, c, o)
  return dw.reshape(kt, kh, kw, c, o)


# ---- calling the host from jitted code ---------------------------------------------------------

# jax.pure_callback hands its callback jax Arrays made by device_put, that is, a copy of every
# operand into freshly allocated memory first; for an activation-sized operand on our dev VM
# (page faults) that took up to as long as the convolution itself. The primitive below lowers through the
# same XLA FFI host callback but hands over read-only numpy views of XLA's operand buffers.
# It uses a private JAX function, whose signature JAX may change in any release: only on the JAX
# versions it was tested with; elsewhere pure_callback does the same job slower.
PRIVATE_CALLBACK_JAX_VERSIONS = ((0, 10), (0, 11))


def _private_callback_emitter(version=jax.__version_info__):
  """JAX's private `emit_python_callback` on the tested versions (major, minor), else None."""
  if tuple(version[:2]) not in PRIVATE_CALLBACK_JAX_VERSIONS:
    return None
  try:
    from jax._src.callback import emit_python_callback  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return emit_python_callback


_emit_python_callback = _private_callback_emitter()

# One primitive per op, so that a profile names them apart (ssmtl_host_conv.N,
# ssmtl_host_weight_grad.N).
_HOST_OPS = ("conv", "weight_grad")
_host_call_p = {op: jax.extend.core.Primitive(f"ssmtl_host_{op}") for op in _HOST_OPS}


def _host_function(op: str, backend: str, kernel: tuple[int, int, int]):
  return (functools.partial(_host_conv, backend=backend) if op == "conv"
          else functools.partial(_host_weight_grad, kernel=kernel))


def _host_call_shape(x, y, op, kernel):
  """conv(x, w) -> `[*x.shape[:4], O]`; weight_grad(x, dy) -> `[*kernel, C, O]`."""
  if op == "conv":
    return (*x.shape[:4], y.shape[-1])
  return (*kernel, x.shape[-1], y.shape[-1])


def _host_call_abstract(x, y, *, op, backend, kernel):
  del backend
  return jax.core.ShapedArray(_host_call_shape(x, y, op, kernel), jnp.float32)


def _host_call_eager(x, y, *, op, backend, kernel):
  return jnp.asarray(_host_function(op, backend, kernel)(np.asarray(x), np.asarray(y)))


def _host_call_lowering(ctx, *operands, op, backend, kernel):
  fn = _host_function(op, backend, kernel)
  callback = lambda *args: (np.asarray(fn(*args), np.float32),)
  results, _, _ = _emit_python_callback(ctx, callback, None, list(operands), ctx.avals_in,
                                        ctx.avals_out, has_side_effect=False)
  return results


for _op in _HOST_OPS:
  _host_call_p[_op].def_abstract_eval(functools.partial(_host_call_abstract, op=_op))
  _host_call_p[_op].def_impl(functools.partial(_host_call_eager, op=_op))
  mlir.register_lowering(_host_call_p[_op], functools.partial(_host_call_lowering, op=_op),
                         platform="cpu")


def _host_call(op: str, x, y, backend: str = "", kernel: tuple[int, int, int] = (0, 0, 0)):
  """Runs `op` on the host from jitted code: "conv" (x, w, backend) or "weight_grad" (x, dy,
  kernel)."""
  if _emit_python_callback is not None:
    return _host_call_p[op].bind(x, y, backend=backend, kernel=kernel)
  out = jax.ShapeDtypeStruct(_host_call_shape(x, y, op, kernel), jnp.float32)
  return jax.pure_callback(_host_function(op, backend, kernel), out, x, y,
                           vmap_method="sequential")


# ---- the differentiable function -----------------------------------------------------------------

def _callback_conv(x, w, backend):
  return _host_call("conv", x, w, backend=backend)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3d_same(x: jax.Array, w: jax.Array, backend: str = "openvino") -> jax.Array:
  """'SAME' stride-1 conv of `x [B, T, H, W, C]` with `w [kt, kh, kw, C, O]` (odd sizes), f32,
  computed on the host by `backend` (one of BACKENDS)."""
  return _callback_conv(x, w, backend)


def _fwd(x, w, backend):
  return _callback_conv(x, w, backend), (x, w)


def _bwd(backend, res, dy):
  x, w = res
  # The input gradient of a 'SAME' odd-kernel conv is the same conv of dy with the kernel flipped
  # in space and its in/out channels swapped.
  dx = _callback_conv(dy, jnp.flip(w, (0, 1, 2)).swapaxes(3, 4), backend)
  dw = _host_call("weight_grad", x, dy, kernel=tuple(w.shape[:3]))
  return dx.astype(x.dtype), dw.astype(w.dtype)


conv3d_same.defvjp(_fwd, _bwd)
