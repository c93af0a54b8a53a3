"""Convolution layers with several lowerings of the same math (which one runs where is decided
in ssmtl_jax/backend.py).

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
      faster than XLA:CPU's for fwd+bwd; models/host_conv.py). im2col wins over native when
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
      multiply-adds): several times faster on XLA:CPU for fwd+bwd (DESIGN §8).
    dtype: compute dtype.
  """
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  strides: tuple[int, int, int] = (1, 1, 1)
  impl: str = "grouped"
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
