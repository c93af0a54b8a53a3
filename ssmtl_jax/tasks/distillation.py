"""T4 knowledge distillation (SSMTL): predict a teacher's class probabilities for the object.

The teacher (an ONNX classifier or detector head) ran once in data prep on the cube's middle
crop; its output is in `batch["teacher/distillation"]`. An object the teacher sees as something
normal objects never are (a bicycle on a walkway) is hard to imitate, so the L1 gap flags it.
"""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class Distillation(base.Task):
  """Attributes:
    target_shape: `(K,)`, the teacher's output size (filled in from the records' manifest).
    teacher_logits: the stored targets are logits: softmax them before comparing.
  """
  target_shape: tuple = ()
  teacher_logits: bool = False

  name = "distillation"
  head_kind = "classifier"
  eval_view_name = "forward"  # the plain cube, shared with T1 / T2 at test time
  needs_teacher = True

  def num_outputs(self, channels):
    if len(self.target_shape) != 1:
      raise ValueError(f"distillation needs a teacher with a class-vector output [N, K], got "
                       f"targets of shape {self.target_shape}")
    return self.target_shape[0]

  def _targets(self, batch):
    target = batch[base.teacher_key(self.name)]
    return jax.nn.softmax(target) if self.teacher_logits else target

  def train_view(self, batch, rng):
    return base.consecutive(batch[base.WINDOW], self.num_frames), self._targets(batch)

  def eval_view(self, batch, rng):
    return self.train_view(batch, rng)

  def loss(self, output, target):
    probs = jax.nn.softmax(output.astype(jnp.float32))
    return jnp.abs(probs - target).sum(axis=-1)

  def score(self, output, target):
    return self.loss(output, target)
