"""3D self-supervised masked convolutional transformer block (SSMCTB, Madan et al.; DESIGN §3).

SSMTL++ "v2 + SSMCTB" puts it in place of the penultimate trunk conv. A masked 3D convolution
sees only the eight corners of a 5x5x5 receptive field (sub-kernel k' = 1, gap d = 1, so the
centre and its immediate neighbours are hidden) and must reconstruct the hidden centre; a
channel-wise transformer then re-weights the channels. The block reconstructs its own input, so
its output has the input's channel count, and it returns a Huber loss between the two that the
training loop adds with weight λ (0.1 in the paper).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax

MASKED_CONV_IMPLS = ("native", "im2col")


class MaskedConv3D(nn.Module):
  """Masked 3D convolution with 1x1x1 corner sub-kernels, 'SAME' output size, with bias.

  Output at (t, h, w) = bias + sum over the eight corners (±offset, ±offset, ±offset) of
  `x[corner] @ K[corner]`, zero padding outside. With offset 2 (sub-kernel 1, gap 1) this is
  exactly a 2x2x2 conv with dilation 4 and padding 2, so the parameter is one `[2, 2, 2, Cin,
  Cout]` kernel: `K[a, b, c]` is the sub-kernel at offset `(4a - 2, 4b - 2, 4c - 2)`.

  Attributes:
    features: output channels.
    offset: distance of the corner sub-kernels from the centre along each axis (k' + d = 2).
    impl: `native` (dilated lax.conv) or `im2col` (concatenate the eight shifted views into
      channels, one matmul): the same math, and the faster one on XLA:CPU (DESIGN §8).
    dtype: compute dtype (params stay float32).
  """
  features: int
  offset: int = 2
  impl: str = "native"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, T, H, W, Cin]` -> `[B, T, H, W, features]`."""
    if self.impl not in MASKED_CONV_IMPLS:
      raise ValueError(f"MaskedConv3D impl {self.impl!r} unknown; valid: {MASKED_CONV_IMPLS}")
    cin = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (2, 2, 2, cin, self.features), jnp.float32).astype(self.dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    x = x.astype(self.dtype)
    o = self.offset
    if self.impl == "native":
      y = lax.conv_general_dilated(
          x, kernel, (1, 1, 1), [(o, o)] * 3, rhs_dilation=(2 * o,) * 3,
          dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    else:
      _, t, h, w, _ = x.shape
      xp = jnp.pad(x, [(0, 0), (o, o), (o, o), (o, o), (0, 0)])
      views = [xp[:, 2 * o * a:2 * o * a + t, 2 * o * b:2 * o * b + h, 2 * o * c:2 * o * c + w]
               for a in range(2) for b in range(2) for c in range(2)]
      y = jnp.concatenate(views, axis=-1) @ kernel.reshape(-1, self.features)
    return y + bias.astype(self.dtype)


class _TransformerBlock(nn.Module):
  """Pre-norm block on `[B, N, D]` tokens: x + MHSA(LN(x)); x + MLP(LN(x))."""
  num_heads: int
  mlp_ratio: int
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    y = nn.LayerNorm(dtype=self.dtype)(x)
    x = x + nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                            force_fp32_for_softmax=True)(y, y)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.Dense(d * self.mlp_ratio, dtype=self.dtype)(y)
    y = nn.Dense(d, dtype=self.dtype)(nn.gelu(y))
    return x + y


class SSMCTB3D(nn.Module):
  """Masked conv + ReLU, then channel attention from a transformer over one token per channel.

  Channel attention: global average pool over (T, H, W) -> C tokens of one value -> Dense(embed)
  + learned positional embedding `[C, embed]` -> `num_blocks` pre-norm transformer blocks ->
  mean over the embed features -> sigmoid -> one weight per channel, broadcast over (T, H, W).
  The weights are sown as `intermediates/channel_weights` (`[B, C]`).

  Attributes:
    channels: output channels; None (or equal) means the input's. The block reconstructs its
      input, so any other value is an error.
    embed: token width of the channel transformer.
    num_blocks: transformer blocks.
    num_heads: attention heads (must divide `embed`).
    mlp_ratio: transformer MLP hidden width / embed.
    offset: masked-conv corner offset (k' + d = 2: the 5x5x5 field with a hidden 3x3x3 centre).
    masked_conv: makes the masked convolution (`MaskedConv3D`, or a partial of it with a
      lowering, `native` or `im2col`).
    delta: Huber loss threshold.
    dtype: compute dtype (params stay float32; the loss is computed in float32).
  """
  channels: int | None = None
  embed: int = 64
  num_blocks: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  offset: int = 2
  masked_conv: Any = None  # None: MaskedConv3D with its default lowering
  delta: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Runs the block.

    Args:
      x: `[B, T, H, W, C]` features.

    Returns:
      `(y, loss)`: `y` is `[B, T, H, W, C]` in `dtype`; `loss` is the scalar float32 mean Huber
      loss between `y` and `x` (gradients flow into both), to be added with weight λ.
    """
    if x.ndim != 5:
      raise ValueError(f"SSMCTB3D expects [B, T, H, W, C], got shape {x.shape}")
    c = x.shape[-1]
    if self.channels is not None and self.channels != c:
      raise ValueError(f"SSMCTB3D reconstructs its input: channels={self.channels} must equal the "
                       f"input's {c} (or be None)")
    if self.embed % self.num_heads:
      raise ValueError(f"embed {self.embed} is not divisible by {self.num_heads} heads")
    masked_conv = self.masked_conv or MaskedConv3D
    z = nn.relu(masked_conv(c, offset=self.offset, dtype=self.dtype, name="masked_conv")(x))

    tokens = z.mean(axis=(1, 2, 3))[..., None]                         # [B, C, 1]
    tokens = nn.Dense(self.embed, dtype=self.dtype, name="token_embed")(tokens)
    pos = self.param("pos_embed", nn.initializers.normal(0.02), (c, self.embed), jnp.float32)
    tokens = tokens + pos.astype(self.dtype)
    for i in range(self.num_blocks):
      tokens = _TransformerBlock(self.num_heads, self.mlp_ratio, self.dtype,
                                 name=f"block_{i}")(tokens)
    weights = jax.nn.sigmoid(tokens.astype(jnp.float32).mean(axis=-1))  # [B, C]
    self.sow("intermediates", "channel_weights", weights)

    y = z * weights.astype(self.dtype)[:, None, None, None, :]
    loss = optax.huber_loss(y.astype(jnp.float32), x.astype(jnp.float32), delta=self.delta).mean()
    return y, loss
