"""The training state (parameters, BatchNorm statistics, optimizer state, weight average) and
how it starts."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from ssmtl_jax import model_setup
from ssmtl_jax import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  # Exponential moving average of {"params", "batch_stats"} when train.ema_decay > 0, else {}.
  ema: Any = flax.struct.field(default_factory=dict)

  @property
  def variables(self):
    """The variables to validate, score and checkpoint as the model: the weights' moving
    average when one is kept (train.ema_decay > 0), else the current weights."""
    return self.ema or self.live_variables

  @property
  def live_variables(self):
    return {"params": self.params, "batch_stats": self.batch_stats}


def new_train_state(variables, tx: optax.GradientTransformation, ema: bool = False) -> TrainState:
  """Step 0 from initialised `variables`; with `ema`, the moving average starts at them."""
  live = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
  return TrainState(step=jnp.zeros((), jnp.int32), params=live["params"],
                    batch_stats=live["batch_stats"], opt_state=tx.init(live["params"]),
                    ema=jax.tree.map(jnp.copy, live) if ema else {})


def ema_decay_at(decay: float, step: jax.Array) -> jax.Array:
  """`decay`, warmed up as min(decay, (1 + step) / (10 + step)) (TensorFlow's
  ExponentialMovingAverage with num_updates): the average forgets the random initialisation
  within the first few dozen steps instead of carrying it for ~1 / (1 - decay) steps."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(ema, variables, decay: jax.Array):
  return jax.tree.map(lambda e, v: decay * e + (1.0 - decay) * v, ema, variables)


def init_state(config, model, tasks, tx, batch_shapes, mesh) -> TrainState:
  """Initialises by shape first, then allocates replicated on the mesh (STYLE 6)."""
  rng = jax.random.PRNGKey(config.seed)

  decay = check_ema_decay(config.train.ema_decay)

  def init():
    return new_train_state(model_setup.init_variables(model, tasks, batch_shapes, rng), tx,
                           ema=decay > 0)

  return jax.jit(init, out_shardings=sharding.replicated(mesh))()


def check_ema_decay(decay) -> float:
  decay = float(decay)
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"train.ema_decay={decay}: expected 0 (off) or a decay in (0, 1), "
                     "e.g. 0.99")
  return decay
