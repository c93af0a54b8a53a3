"""3D CNN trunk + pointwise embedding + 3D CvT: the shared SSMTL++ backbone (DESIGN §3)."""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssmtl_jax.models import cvt
from ssmtl_jax.models import layers
from ssmtl_jax.models import ssmctb

ModuleDef = Callable[..., nn.Module]  # a module class or a functools.partial of one

# Trunk variants by name: per stage, the conv widths; a 2x2 spatial pool closes each stage.
TRUNKS = {
    "deep_wide": ((32, 32), (64, 64), (128, 128)),   # the published SSMTL++ trunk
    "deep_narrow": ((16, 16), (32, 32), (64, 64)),
    "shallow_wide": ((32,), (64,), (128,)),
    "shallow_narrow": ((16,), (32,), (64,)),
    "tiny": ((4,), (8,)),
}


class Trunk3D(nn.Module):
  """Stages of [Conv3D 3x3x3 + BN + ReLU]* then 2x2 spatial max pool.

  `[B, T, H, W, C]` -> `[B, T, H / 2^S, W / 2^S, widths[-1][-1]]`. The convolutions are made by
  `conv` (`first_conv` for the input layer) and SSMCTB's by `masked_conv`: the lowerings
  `ssmtl_jax/backend.py` picks for the platform.
  """
  stages: Sequence[Sequence[int]]
  conv: ModuleDef = layers.Conv3D
  first_conv: ModuleDef = layers.Conv3D
  masked_conv: ModuleDef = ssmctb.MaskedConv3D
  bn_momentum: float = 0.9
  ssmctb: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    num_convs = sum(len(w) for w in self.stages)
    n = 0
    for widths in self.stages:
      for width in widths:
        if self.ssmctb and n == num_convs - 2:
          # 3D SSMCTB in place of the penultimate conv (DESIGN §3): it keeps its input's
          # channels and brings its own ReLU; its reconstruction loss is sown for the step.
          x, loss = ssmctb.SSMCTB3D(masked_conv=self.masked_conv, dtype=self.dtype,
                                    name="ssmctb")(x)
          self.sow("losses", "ssmctb_reconstruction", loss)
        else:
          conv = self.first_conv if n == 0 else self.conv
          x = conv(width, dtype=self.dtype)(x)
          x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                           dtype=self.dtype)(x)
          x = nn.relu(x)
        n += 1
      x = layers.max_pool_hw(x)
    return x


class Backbone(nn.Module):
  """Trunk -> pointwise embedding -> CvT blocks -> temporal mean.

  Returns the `[B, h, w, embed_dim]` feature map the 2D task heads read. `conv`, `first_conv`,
  `depthwise_conv` and `masked_conv` make its convolutions (backend.model_convs: the platform's
  lowerings; the defaults are the plain `lax.conv` forms).
  """
  trunk: str = "deep_wide"
  embed_dim: int = 192
  cvt_blocks: int = 3
  cvt_heads: int = 12
  cvt_mode: str = "3d"
  kv_stride: tuple[int, int, int] = (2, 2, 2)
  mlp_ratio: int = 4
  conv: ModuleDef = layers.Conv3D
  first_conv: ModuleDef = layers.Conv3D
  depthwise_conv: ModuleDef = layers.DepthwiseConv3D
  masked_conv: ModuleDef = ssmctb.MaskedConv3D
  ssmctb: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.trunk not in TRUNKS:
      raise ValueError(f"unknown trunk {self.trunk!r}; valid: {sorted(TRUNKS)}")
    x = Trunk3D(TRUNKS[self.trunk], conv=self.conv, first_conv=self.first_conv,
                masked_conv=self.masked_conv, ssmctb=self.ssmctb, dtype=self.dtype)(x, train)
    x = nn.Dense(self.embed_dim, dtype=self.dtype, name="embed")(x)  # pointwise Conv3D
    x = cvt.CvTStack(num_blocks=self.cvt_blocks, num_heads=self.cvt_heads, mode=self.cvt_mode,
                     kv_stride=self.kv_stride, mlp_ratio=self.mlp_ratio,
                     depthwise_conv=self.depthwise_conv, dtype=self.dtype)(x, train)
    if x.ndim == 5:  # 3D CvT keeps time; the 2D heads see its temporal average.
      x = x.mean(axis=1)
    return x
