"""T1 arrow of time: is the cube played forward or backward? (SSMTL, DESIGN §4)."""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class ArrowOfTime(base.Task):
  name = "arrow_of_time"
  head_kind = "classifier"
  eval_view_name = "forward"

  def num_outputs(self, channels):
    return 2

  def train_view(self, window, rng):
    cube = base.consecutive(window, self.num_frames)
    backward = jax.random.bernoulli(rng, 0.5, (cube.shape[0],))
    view = jnp.where(backward[:, None, None, None, None], cube[:, ::-1], cube)
    return view, backward.astype(jnp.int32)

  def loss(self, output, target):
    return base.cross_entropy(output, target)

  def eval_view(self, window, rng):
    cube = base.consecutive(window, self.num_frames)
    return cube, jnp.zeros((cube.shape[0],), jnp.int32)

  def score(self, output, target):
    # A normal object's forward motion is recognised as forward; P(backward) flags the rest.
    return jax.nn.softmax(output.astype(jnp.float32))[:, 1]
