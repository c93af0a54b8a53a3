"""Convolutional vision transformer blocks (CvT, Wu et al. 2021) in 3D and 2D (DESIGN §3).

Q/K/V come from a depthwise conv (k=3, no bias) + BatchNorm followed by a linear projection;
K/V use a strided depthwise conv, which cuts the attention cost. No positional embedding: the
convolutions carry position.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssmtl_jax.models import layers

CVT_MODES = ("3d", "2d")
ModuleDef = Callable[..., nn.Module]


class ConvProjection(nn.Module):
  """Depthwise conv (stride s) + BN + Dense: `[B, T, H, W, D]` -> `[B, N, D]` tokens."""
  dim: int
  strides: tuple[int, int, int]
  depthwise_conv: ModuleDef
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = self.depthwise_conv(strides=self.strides, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    x = nn.Dense(self.dim, dtype=self.dtype)(x)
    return x.reshape(x.shape[0], -1, self.dim)


class ConvAttention(nn.Module):
  """Multi-head attention whose Q/K/V are convolutional projections of the token grid."""
  num_heads: int
  kv_stride: tuple[int, int, int]
  depthwise_conv: ModuleDef
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    b, t, h, w, d = x.shape
    if d % self.num_heads:
      raise ValueError(f"embed dim {d} is not divisible by {self.num_heads} heads")
    hd = d // self.num_heads
    proj = lambda s, name: ConvProjection(d, s, self.depthwise_conv, self.dtype,
                                          name=name)(x, train)
    q = proj((1, 1, 1), "q").reshape(b, -1, self.num_heads, hd)
    k = proj(self.kv_stride, "k").reshape(b, -1, self.num_heads, hd)
    v = proj(self.kv_stride, "v").reshape(b, -1, self.num_heads, hd)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(hd).astype(self.dtype)
    attn = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, t, h, w, d)
    return nn.Dense(d, dtype=self.dtype, name="out")(out)


class CvTBlock(nn.Module):
  """Pre-norm block: x + Attn(LN(x)); x + MLP(LN(x)). Works on `[B, T, H, W, D]`."""
  num_heads: int
  kv_stride: tuple[int, int, int]
  mlp_ratio: int
  depthwise_conv: ModuleDef
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    d = x.shape[-1]
    y = nn.LayerNorm(dtype=self.dtype)(x)
    x = x + ConvAttention(self.num_heads, self.kv_stride, self.depthwise_conv, self.dtype)(y, train)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.Dense(d * self.mlp_ratio, dtype=self.dtype)(y)
    y = nn.Dense(d, dtype=self.dtype)(nn.gelu(y))
    return x + y


class CvTStack(nn.Module):
  """`num_blocks` CvT blocks. mode '3d' attends over (T, H, W) tokens and returns
  `[B, T, H, W, D]`; mode '2d' averages time first and returns `[B, H, W, D]`."""
  num_blocks: int
  num_heads: int
  mode: str = "3d"
  kv_stride: tuple[int, int, int] = (2, 2, 2)
  mlp_ratio: int = 4
  depthwise_conv: ModuleDef = layers.DepthwiseConv3D
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.mode not in CVT_MODES:
      raise ValueError(f"unknown cvt mode {self.mode!r}; valid: {CVT_MODES}")
    stride = self.kv_stride
    if self.mode == "2d":
      # A 2D CvT is the 3D one on a single time step with no temporal kernel extent.
      x = x.mean(axis=1, keepdims=True)
      stride = (1, *stride[1:])
    for _ in range(self.num_blocks):
      x = CvTBlock(self.num_heads, stride, self.mlp_ratio, self.depthwise_conv,
                   self.dtype)(x, train)
    return x[:, 0] if self.mode == "2d" else x
