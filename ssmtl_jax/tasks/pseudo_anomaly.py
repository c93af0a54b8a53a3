"""T5 pseudo-anomalies (SSMTL++v1): reproduce out-of-distribution images, adversarially.

The decoder head learns to reproduce OOD images (flowers, textures) tiled to a clip, by gradient
descent; the shared backbone receives the same gradient through a separate optimizer with a
negative learning rate (−0.2·η, `train/optimizer.build_optimizer`), so it learns to represent such images
poorly: an unusual object should then reconstruct badly in the other tasks. The task trains
only; it has no test-time score (DESIGN §4).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from data_prep import ood_images
from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class PseudoAnomaly(base.AdversarialTask):
  """Attributes (and `start_epoch`, `backbone_scale` of `AdversarialTask`):
    images: uint8 `[N, S, S, C]` bank of OOD images, drawn from on device; None outside
      training (views are then zeros of the right shape, enough to build the model).
  """
  images: Any = base.runtime_field(None, compare=False, hash=False, repr=False)

  name = "pseudo_anomaly"
  head_kind = "decoder"
  eval_view_name = "pseudo_anomaly"

  def num_outputs(self, channels):
    return channels

  def with_assets(self, config, window_shape):
    """Loads the bank of out-of-distribution images (`config.ood`) at the crop size."""
    size, channels = window_shape[1], window_shape[3]
    o = config.ood
    images, where = ood_images.load_ood_images(size, channels, o.num_images, tuple(o.sources),
                                               o.data_dir or None, config.seed)
    print(f"{self.name}: {len(images)} out-of-distribution images from {where}", flush=True)
    return dataclasses.replace(self, images=images)

  def train_view(self, batch, rng):
    window = batch[base.WINDOW]
    batch, _, size, _, channels = window.shape
    if self.images is None:
      image = jnp.zeros((batch, size, size, channels), window.dtype)
    else:
      bank = np.asarray(self.images)
      if bank.shape[1:] != (size, size, channels):
        raise ValueError(f"OOD images are {bank.shape[1:]}, the cubes need "
                         f"{(size, size, channels)}")
      pick, flip = jax.random.split(rng)
      idx = jax.random.randint(pick, (batch,), 0, len(bank))
      image = jnp.asarray(bank)[idx].astype(window.dtype) / 255.0
      mirrored = jax.random.bernoulli(flip, 0.5, (batch, 1, 1, 1))
      image = jnp.where(mirrored, image[:, :, ::-1], image)
    return base.tile_frames(image, self.num_frames), image

  def loss(self, output, target):
    return base.mean_per_example(jnp.abs(output - target))
