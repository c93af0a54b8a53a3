"""T4 knowledge distillation (SSMTL): predict a teacher's view of the object.

The teacher ran once in data prep on the object's middle crop; its class probabilities are in
`batch["teacher/distillation"]` and, for the built-in teacher, its pooled features in
`batch["teacher/distillation.features"]` (the paper distils a detector's class probabilities and a
ResNet-50's features). An object the teacher sees as something normal objects never are (a
bicycle on a walkway) is hard to imitate, so the gap flags it: the score is the L1 distance of
the probabilities plus the mean absolute error of the features.
"""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class Distillation(base.TeacherTask):
  """Attributes:
    target_shape: `(K,)`, the teacher's class-probability size.
    feature_shape: `(F,)` when the records hold the teacher's features and `use_features` is on
      (filled in from the manifest), else `()`.
    teacher_logits: the stored class targets are logits: softmax them before comparing.
    use_features: also learn the teacher's features when the records hold them.
  """
  feature_shape: tuple = base.runtime_field(())
  teacher_logits: bool = False
  use_features: bool = True

  name = "distillation"
  head_kind = "classifier"
  eval_view_name = "forward"  # the plain cube, shared with T1 / T2 at test time

  def teacher_targets(self):
    targets = super().teacher_targets()
    if self.feature_shape:
      targets[base.features_key(self.name)] = tuple(self.feature_shape)
    return targets

  def with_teacher_shapes(self, shapes):
    task = super().with_teacher_shapes(shapes)
    features = shapes.get(self.name + base.FEATURES_SUFFIX)
    if self.use_features and features:
      task = dataclasses.replace(task, feature_shape=tuple(features))
    return task

  def _num_classes(self):
    if len(self.target_shape) != 1:
      raise ValueError(f"distillation needs a teacher with a class-vector output [N, K], got "
                       f"targets of shape {self.target_shape}")
    return self.target_shape[0]

  def num_outputs(self, channels):
    return self._num_classes() + (self.feature_shape[0] if self.feature_shape else 0)

  def _targets(self, batch):
    target = batch[base.teacher_key(self.name)]
    target = jax.nn.softmax(target) if self.teacher_logits else target
    if self.feature_shape:
      target = jnp.concatenate([target, batch[base.features_key(self.name)]], axis=-1)
    return target

  def train_view(self, batch, rng):
    return base.consecutive(batch[base.WINDOW], self.num_frames), self._targets(batch)

  def eval_view(self, batch, rng):
    return self.train_view(batch, rng)

  def loss(self, output, target):
    k = self._num_classes()
    output = output.astype(jnp.float32)
    probs = jax.nn.softmax(output[:, :k])
    loss = jnp.abs(probs - target[:, :k]).sum(axis=-1)
    if self.feature_shape:
      loss = loss + jnp.abs(output[:, k:] - target[:, k:]).mean(axis=-1)
    return loss

  def score(self, output, target):
    return self.loss(output, target)
