"""T6 masked-patch inpainting (SSMTL++v2): fill a removed patch of the middle crop."""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class Inpainting(base.Task):
  """Attributes (in pixels of a 64x64 crop; scaled with the crop size):
    min_patch, max_patch: side range of the removed square patch.
    centre_std: std of its centre around the crop centre.
    passes: chained passes at test time, each with a fresh patch.
  """
  min_patch: int = 4
  max_patch: int = 32
  centre_std: float = 20.0
  passes: int = 3

  name = "inpainting"
  head_kind = "decoder"
  eval_view_name = "inpainting"

  @property
  def eval_passes(self):
    return self.passes

  def num_outputs(self, channels):
    return channels

  def patch_mask(self, rng, batch: int, size: int) -> jax.Array:
    """`[B, S, S, 1]` mask, 0 inside one random square per example."""
    scale = size / 64.0
    k_side, k_centre = jax.random.split(rng)
    side = jax.random.uniform(k_side, (batch, 1), minval=self.min_patch * scale,
                              maxval=self.max_patch * scale)
    centre = size / 2 + self.centre_std * scale * jax.random.normal(k_centre, (batch, 2))
    centre = jnp.clip(centre, 0, size - 1)
    lo, hi = centre - side / 2, centre + side / 2
    pix = jnp.arange(size, dtype=jnp.float32) + 0.5
    in_y = (pix[None] >= lo[:, :1]) & (pix[None] < hi[:, :1])
    in_x = (pix[None] >= lo[:, 1:]) & (pix[None] < hi[:, 1:])
    return 1.0 - (in_y[:, :, None] & in_x[:, None, :]).astype(jnp.float32)[..., None]

  def _masked(self, image, rng):
    return base.tile_frames(image * self.patch_mask(rng, image.shape[0], image.shape[1]),
                            self.num_frames)

  def train_view(self, batch, rng):
    window = batch[base.WINDOW]
    crop = base.middle(window)
    return self._masked(crop, rng), crop

  def loss(self, output, target):
    return base.mean_per_example(jnp.square(output - target))

  def eval_view(self, batch, rng):
    return self.train_view(batch, rng)

  def next_eval_view(self, output, target, rng):
    return self._masked(output, rng)

  def score(self, output, target):
    return base.mean_per_example(jnp.square(output - target))
