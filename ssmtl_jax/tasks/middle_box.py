"""T3 middle box prediction: reconstruct the zeroed middle frame from its neighbours."""

import dataclasses

import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class MiddleBox(base.Task):
  name = "middle_box"
  head_kind = "decoder"
  eval_view_name = "middle_masked"

  def num_outputs(self, channels):
    return channels

  def _view(self, batch):
    window = batch[base.WINDOW]
    cube = base.consecutive(window, self.num_frames)
    keep = jnp.ones((self.num_frames,), cube.dtype).at[self.num_frames // 2].set(0)
    return cube * keep[None, :, None, None, None], base.middle(window)

  def train_view(self, batch, rng):
    return self._view(batch)

  def loss(self, output, target):
    return base.mean_per_example(jnp.abs(output - target))

  def eval_view(self, batch, rng):
    return self._view(batch)

  def score(self, output, target):
    return base.mean_per_example(jnp.abs(output - target))
