"""2D task heads on the `[B, h, w, D]` backbone feature map (DESIGN §3)."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class ClassifierHead(nn.Module):
  """Conv2D 3x3 + BN + ReLU -> global average pool -> Dense(num_classes) logits `[B, K]`."""
  num_classes: int
  width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.Conv(self.width, (3, 3), use_bias=False, dtype=self.dtype)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x))
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class DecoderHead(nn.Module):
  """`num_up` x [upsample x2, Conv2D 3x3 + BN + ReLU] -> Conv2D 3x3 -> `[B, H, W, C]` image."""
  out_channels: int
  num_up: int = 3
  width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for _ in range(self.num_up):
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour x2
      x = nn.Conv(self.width, (3, 3), use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x))
    return nn.Conv(self.out_channels, (3, 3), dtype=self.dtype)(x).astype(jnp.float32)
