"""T1 arrow of time: is the cube played forward or backward? (SSMTL, DESIGN §4).

Score: P(backward) on the forward cube (base.ForwardCubeClassifier).
"""

import dataclasses

import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


@dataclasses.dataclass(frozen=True)
class ArrowOfTime(base.ForwardCubeClassifier):
  name = "arrow_of_time"

  def train_view(self, batch, rng):
    window = batch[base.WINDOW]
    cube = base.consecutive(window, self.num_frames)
    backward = jax.random.bernoulli(rng, 0.5, (cube.shape[0],))
    view = jnp.where(backward[:, None, None, None, None], cube[:, ::-1], cube)
    return view, backward.astype(jnp.int32)
