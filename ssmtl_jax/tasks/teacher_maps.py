"""What T7 segmentation and T9 pose share: reproduce a teacher's maps of the middle crop.

The teacher (an ONNX segmentation or pose network) ran once in data prep; its maps, resized to
the crop, are in `batch["teacher/<task>"]` `[B, S, S, K]`. The decoder head sees the middle crop
tiled to a clip and predicts the maps; loss and score are the mean squared error (DESIGN §4).
"""

import dataclasses

import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class TeacherMaps(base.TeacherTask):
  """`target_shape` is `(S, S, K)`."""
  head_kind = "decoder"
  eval_view_name = "middle_crop"  # T7 and T9 read the same view: one backbone pass at test

  def num_outputs(self, channels):
    if len(self.target_shape) != 3:
      raise ValueError(f"{self.name} needs a teacher with map outputs [N, K, h, w], got targets "
                       f"of shape {self.target_shape}")
    return self.target_shape[-1]

  def train_view(self, batch, rng):
    view = base.tile_frames(base.middle(batch[base.WINDOW]), self.num_frames)
    return view, batch[base.teacher_key(self.name)]

  def eval_view(self, batch, rng):
    return self.train_view(batch, rng)

  def loss(self, output, target):
    return base.mean_per_example(jnp.square(output.astype(jnp.float32) - target))

  def score(self, output, target):
    return self.loss(output, target)
