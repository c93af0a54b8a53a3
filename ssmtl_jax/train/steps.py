"""Pure, jit-able train and validation steps.

Every function here is traced once per shape: task views are made on device from the uint8
windows with `jax.random` (tasks/views.py), so the host only ships raw bytes (DESIGN §4). A batch
is a dict: `"window"` uint8 `[B, L, S, S, C]` plus any teacher targets `"teacher/<task>"`.
"""

from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from ssmtl_jax.tasks import views as task_views
from ssmtl_jax.train import state as train_state

SSMCTB_LOSS = "ssmctb"  # the SSMCTB block's own reconstruction loss, weighted like a task


def task_weights(config, tasks) -> dict[str, float]:
  weights = dict(config.task_weights)
  unknown = set(weights) - {t.name for t in tasks}
  if unknown:
    raise ValueError(f"task_weights names tasks not in config.tasks: {sorted(unknown)}")
  out = {t.name: float(weights.get(t.name, 1.0)) for t in tasks}
  if config.model.ssmctb:
    out[SSMCTB_LOSS] = float(config.model.ssmctb_weight)
  return out


def per_task_losses(model, tasks, variables, batch, rng, train: bool):
  """Returns ({task: per-example loss `[B]`}, new batch_stats or None)."""
  (views, targets), routes = task_views.train_views(tasks, task_views.to_float(batch), rng)
  mutable = ["batch_stats", "losses"] if train else ["losses"]
  out, mutated = model.apply(variables, views, routes, train, mutable=mutable)
  losses = {t.name: t.loss(out[t.name], targets[t.name]) for t in tasks}
  sown = jax.tree.leaves(mutated.get("losses", {}))
  if sown:  # the SSMCTB loss is per batch; spread it so every entry is per example
    losses[SSMCTB_LOSS] = jnp.full((task_views.batch_size(batch),), sum(sown), jnp.float32)
  return losses, mutated["batch_stats"] if train else None


def make_train_step(model, tasks, tx: optax.GradientTransformation, weights: Mapping[str, float],
                    ema_decay: float = 0.0):
  """`train_step(state, batch, rng) -> (state, metrics)`; `batch["window"]` is uint8
  `[B, L, S, S, C]`. With `ema_decay` > 0 (and `state.ema` initialised), the step also updates
  the moving average of the weights (Polyak averaging: a steadier model to select and score
  than the last iterate of a constant learning rate)."""

  def train_step(state: train_state.TrainState, batch: Mapping[str, jax.Array], rng: jax.Array):
    step_rng = jax.random.fold_in(rng, state.step)

    adversarial = [t.name for t in tasks if t.adversarial]

    def loss_fn(params):
      variables = {"params": params, "batch_stats": state.batch_stats}
      losses, new_stats = per_task_losses(model, tasks, variables, batch, step_rng, True)
      means = {k: v.mean() for k, v in losses.items()}
      total = sum((weights[k] * means[k] for k in means if k not in adversarial), jnp.zeros(()))
      adv = sum((weights[k] * means[k] for k in adversarial), jnp.zeros(()))
      return (total, adv), (means, new_stats)

    (total, adv), pullback, (means, new_stats) = jax.vjp(loss_fn, state.params, has_aux=True)
    one, zero = jnp.ones_like(total), jnp.zeros_like(total)
    (grads,) = pullback((one, zero))
    if adversarial:  # a second backward pass: T5's gradient goes through its own optimizer
      (adv_grads,) = pullback((zero, one))
      updates, opt_state = tx.update({"main": grads, "adversarial": adv_grads}, state.opt_state,
                                     state.params)
    else:
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    ema = state.ema
    if ema_decay > 0:
      if not ema:
        raise ValueError("ema_decay > 0 needs a TrainState whose ema was initialised "
                         "(train/state.init_state does it when train.ema_decay > 0)")
      ema = train_state.update_ema(ema, {"params": new_params, "batch_stats": new_stats},
                                   train_state.ema_decay_at(ema_decay, state.step))
    new_state = state.replace(step=state.step + 1, params=new_params, batch_stats=new_stats,
                              opt_state=opt_state, ema=ema)
    metrics = {"loss": total, "l2_grads": optax.tree.norm(grads)}
    metrics.update({f"loss/{k}": v for k, v in means.items()})
    return new_state, metrics

  return train_step


def make_val_step(model, tasks, weights: Mapping[str, float]):
  """`val_step(variables, batch, valid, rng) -> {name: summed loss}, count`: the proxy loss
  with eval-mode BatchNorm and views drawn from a fixed key, so epochs compare like for like."""

  def val_step(variables, batch, valid, rng):
    losses, _ = per_task_losses(model, tasks, variables, batch, rng, False)
    mask = valid.astype(jnp.float32)
    sums = {f"loss/{k}": jnp.sum(v * mask) for k, v in losses.items()}
    # The adversarial task's loss is reported but not part of the model-selection loss.
    adversarial = {t.name for t in tasks if t.adversarial}
    sums["loss"] = sum((weights[k] * sums[f"loss/{k}"] for k in losses if k not in adversarial),
                       jnp.zeros(()))
    return sums, jnp.sum(mask)

  return val_step
