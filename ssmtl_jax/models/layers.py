"""Convolution layers with per-backend implementation switches.

XLA:CPU runs 3D convolutions and grouped (depthwise) convolutions far below its matmul rate
(DESIGN §8), while GPU/TPU run them natively. Each layer keeps one parameter layout (a
`[kt, kh, kw, in, out]` kernel, the layout of `flax.linen.Conv`) and offers several lowerings of
the same math, so a checkpoint trained with one runs with any other.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ssmtl_jax.models import host_conv

HOST_CONV_IMPLS = host_conv.BACKENDS
CONV_IMPLS = ("native", "im2col", *HOST_CONV_IMPLS)
DEPTHWISE_IMPLS = ("grouped", "shift")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
AUTO = "auto"


def _backend(backend: str | None) -> str:
  return backend or jax.default_backend()


def resolve_conv_impl(impl: str, first_layer: bool = False, backend: str | None = None) -> str:
  """`auto` -> the fastest same-math lowering here, lax.conv on GPU / TPU and on sharded CPU
  meshes; on a single CPU device a host library's convolution (models/host_conv.py): OpenVINO's
  (oneDNN), except for the 1-channel input conv (`first_layer`): onnxruntime's MLAS. OpenVINO
  there too made the published-v2 train step slower (19.7 vs 16.6 s) and the ped2_cpu one faster
  (31.7 vs 29.1 cubes/s), measured the same sitting (benchmarks/RESULTS.md); the v2 step decides.
  Checks that an explicit host lowering can run here. Other names pass through unchanged.
  `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  cpu_single = _backend(backend) == "cpu" and jax.device_count() == 1
  if impl == "auto":
    if not cpu_single:
      return "native"
    return "openvino" if not first_layer and host_conv.available("openvino") else "onnxruntime"
  if impl in HOST_CONV_IMPLS:
    if not cpu_single:
      raise ValueError(
          f"model.conv_impl={impl!r} runs on one CPU device (a host callback); this process "
          f"sees {jax.device_count()} {_backend(backend)} device(s): use 'auto' or 'native'")
    if not host_conv.available(impl):
      raise ValueError(f"model.conv_impl={impl!r} needs the {impl} package (pip install {impl}); "
                       f"'auto' falls back to what is installed")
  return impl


def resolve_depthwise_impl(impl: str, backend: str | None = None) -> str:
  """`auto` -> `shift` on CPU, where XLA:CPU runs a grouped convolution ~9x slower than the 27
  shifted multiply-adds (DESIGN §8); `grouped` on GPU / TPU, where it is one cuDNN / TPU
  convolution instead of 27 passes over the activations. Both compute the same math with the
  same parameters. `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  if impl == AUTO:
    return "shift" if _backend(backend) == "cpu" else "grouped"
  if impl not in DEPTHWISE_IMPLS:
    raise ValueError(f"model.depthwise_impl={impl!r} unknown; valid: {(AUTO, *DEPTHWISE_IMPLS)}")
  return impl


def resolve_dtype(name: str, backend: str | None = None) -> str:
  """The compute dtype's name. `auto` -> `bfloat16` on GPU / TPU, whose matrix units run it at
  twice the TF32 rate (and activations take half the memory); `float32` on CPU, where the host
  library convolutions compute in float32 anyway. Parameters, BatchNorm statistics, softmax,
  head outputs and losses stay float32 in every case (the modules cast; tests/test_models.py).
  `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  if name == AUTO:
    return "float32" if _backend(backend) == "cpu" else "bfloat16"
  if name not in DTYPES:
    raise ValueError(f"model.dtype={name!r} unknown; valid: {(AUTO, *DTYPES)}")
  return name


def resolve_model_choices(model_config, backend: str | None = None) -> dict[str, str]:
  """Every per-backend choice of a `config.model`, `auto` resolved: `conv_impl`,
  `first_conv_impl`, `depthwise_impl`, `dtype` (a name of DTYPES). The one place the model's
  lowerings and precision are picked from the platform; the model receives the result."""
  m = model_config
  return {"conv_impl": resolve_conv_impl(m.conv_impl, backend=backend),
          "first_conv_impl": resolve_conv_impl(m.first_conv_impl, first_layer=True,
                                               backend=backend),
          "depthwise_impl": resolve_depthwise_impl(m.depthwise_impl, backend),
          "dtype": resolve_dtype(m.dtype, backend)}


def _same_pads(kernel: tuple[int, ...]) -> list[tuple[int, int]]:
  return [((k - 1) // 2, k // 2) for k in kernel]


def _shifted_windows(x: jax.Array, kernel: tuple[int, int, int]):
  """Yields the kt*kh*kw shifted views of a zero-padded `[B, T, H, W, C]` input ('SAME')."""
  b, t, h, w, c = x.shape
  xp = jnp.pad(x, [(0, 0), *_same_pads(kernel), (0, 0)])
  for a in range(kernel[0]):
    for i in range(kernel[1]):
      for j in range(kernel[2]):
        yield xp[:, a:a + t, i:i + h, j:j + w, :]


class Conv3D(nn.Module):
  """Stride-1 'SAME' 3D convolution on `[B, T, H, W, C]`.

  Attributes:
    features: output channels.
    kernel_size: `(kt, kh, kw)`.
    use_bias: add a bias (off when a BatchNorm follows).
    impl: `native` (lax.conv), `im2col` (gather the taps into channels, one matmul), or
      `openvino` / `onnxruntime` (CPU only: that library's convolution through a host callback,
      2-5x faster than XLA:CPU's for fwd+bwd; models/host_conv.py). im2col wins over native when
      the input has few channels (the first trunk layer): a 1-channel 3D conv is a 27-wide matmul
      that XLA:CPU's conv emitter handles poorly.
    dtype: compute dtype (params stay float32).
  """
  features: int
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  use_bias: bool = False
  impl: str = "native"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in CONV_IMPLS:
      raise ValueError(f"Conv3D impl {self.impl!r} unknown; valid: {CONV_IMPLS}")
    cin = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, cin, self.features), jnp.float32)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    if self.impl in HOST_CONV_IMPLS:
      y = host_conv.conv3d_same(x.astype(jnp.float32), kernel.astype(jnp.float32),
                                self.impl).astype(self.dtype)
    elif self.impl == "native":
      y = lax.conv_general_dilated(
          x, kernel, (1, 1, 1), _same_pads(self.kernel_size),
          dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    else:
      cols = jnp.concatenate(list(_shifted_windows(x, self.kernel_size)), axis=-1)
      y = cols @ kernel.reshape(-1, self.features)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(self.dtype)
    return y


class DepthwiseConv3D(nn.Module):
  """Depthwise (one filter per channel) 3D convolution, optionally strided, no bias.

  Attributes:
    kernel_size: `(kt, kh, kw)`.
    strides: `(st, sh, sw)`; 'SAME' padding, so output size is ceil(in / stride).
    impl: `grouped` (lax.conv with feature_group_count) or `shift` (kt*kh*kw shifted
      multiply-adds): about 9x faster on XLA:CPU for fwd+bwd (DESIGN §8).
    dtype: compute dtype.
  """
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  strides: tuple[int, int, int] = (1, 1, 1)
  impl: str = "shift"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in DEPTHWISE_IMPLS:
      raise ValueError(f"DepthwiseConv3D impl {self.impl!r} unknown; valid: {DEPTHWISE_IMPLS}")
    c = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, 1, c), jnp.float32).astype(self.dtype)
    x = x.astype(self.dtype)
    if self.impl == "grouped":
      # "SAME" (not symmetric pads): with stride 2 on even sizes it pads (0, 1), which is
      # what the shift lowering reproduces, so checkpoints move between the two.
      return lax.conv_general_dilated(
          x, kernel, self.strides, "SAME",
          dimension_numbers=("NDHWC", "DHWIO", "NDHWC"), feature_group_count=c)
    taps = kernel.reshape(-1, c)
    # Each tap reads the padded input at the output grid's stride directly: a strided K/V
    # projection computes only the positions it keeps (1/8 of them at stride 2).
    b, *sizes, _ = x.shape
    outs = [-(-n // s) for n, s in zip(sizes, self.strides)]
    starts = [_strided_start(n, k, s) for n, k, s in zip(sizes, self.kernel_size, self.strides)]
    xp = jnp.pad(x, [(0, 0), *_same_pads(self.kernel_size), (0, 0)])
    y = 0
    for n, (a, i, j) in enumerate(np.ndindex(*self.kernel_size)):
      lo = [st + off for st, off in zip(starts, (a, i, j))]
      hi = [l + (o - 1) * s + 1 for l, o, s in zip(lo, outs, self.strides)]
      win = lax.slice(xp, (0, *lo, 0), (b, *hi, c), (1, *self.strides, 1))
      y = y + win * taps[n]
    return y


def _strided_start(size: int, k: int, s: int) -> int:
  # lax 'SAME' with stride s pads total max((ceil(n/s)-1)*s + k - n, 0), low half first; the
  # stride-1 output at index o*s + (pad_lo_1 - pad_lo_s) matches strided output o.
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return (k - 1) // 2 - total // 2


def max_pool_hw(x: jax.Array) -> jax.Array:
  """2x2 spatial max pool on `[B, T, H, W, C]` (time untouched), as a reshape (cheap everywhere)."""
  b, t, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f"spatial size {h}x{w} must be even to pool; pick crop_size divisible by 2^stages")
  return x.reshape(b, t, h // 2, 2, w // 2, 2, c).max(axis=(3, 5))
