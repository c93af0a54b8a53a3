"""T2 motion irregularity: consecutive frames or an intermittent (frame-skipping) sequence?"""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class MotionIrregularity(base.ForwardCubeClassifier):
  """Attributes: max_skip: largest step between chosen frames of an intermittent sequence."""
  max_skip: int = 2

  name = "motion_irregularity"

  def intermittent_indices(self, rng, batch: int, window_len: int) -> jax.Array:
    """`[B, T]` frame indices: forward, centred, steps in 1..max_skip, at least one skip.

    Steps are capped so both halves fit in the stored window.
    """
    half = self.num_frames // 2
    centre = window_len // 2
    max_skip = min(self.max_skip, centre // half)
    if max_skip < 2:
      # With steps of 1 only, "intermittent" views would equal consecutive ones: label noise.
      raise ValueError(
          f"motion_irregularity needs room to skip frames: max_skip={self.max_skip} and a stored "
          f"window of {window_len} frames allow no skip for {self.num_frames}-frame cubes; use "
          f"max_skip >= 2 and prep.half_window >= {2 * half}")
    k_steps, k_force = jax.random.split(rng)
    steps = jax.random.randint(k_steps, (batch, self.num_frames - 1), 1, max_skip + 1)
    forced = jax.random.randint(k_force, (batch,), 0, self.num_frames - 1)
    steps = jnp.where(jnp.arange(self.num_frames - 1)[None] == forced[:, None], max_skip, steps)
    offsets = jnp.concatenate([jnp.zeros((batch, 1), steps.dtype), jnp.cumsum(steps, axis=1)], 1)
    return centre + offsets - offsets[:, half:half + 1]

  def train_view(self, batch, rng):
    window = batch[base.WINDOW]
    b, length = window.shape[:2]
    k_label, k_idx = jax.random.split(rng)
    irregular = jax.random.bernoulli(k_label, 0.5, (b,))
    half = self.num_frames // 2
    regular_idx = length // 2 + jnp.arange(-half, half + 1)[None].repeat(b, 0)
    idx = jnp.where(irregular[:, None], self.intermittent_indices(k_idx, b, length), regular_idx)
    view = jnp.take_along_axis(window, idx[:, :, None, None, None], axis=1)
    return view, irregular.astype(jnp.int32)
