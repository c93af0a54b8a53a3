"""Pure, jit-able train / validation / scoring steps, and the builders they need.

Every function here is traced once per shape: task views are made on device from the uint8
windows with `jax.random`, so the host only ships raw bytes (DESIGN §4).
"""

from typing import Any, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax

from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.models import ssmtl

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any

  @property
  def variables(self):
    return {"params": self.params, "batch_stats": self.batch_stats}


def build_tasks(config) -> list[tasks_lib.base.Task]:
  return tasks_lib.build_tasks(config.tasks, config.task_options.to_dict(),
                               num_frames=config.model.num_frames)


def build_model(config, tasks: Sequence[tasks_lib.base.Task], channels: int) -> ssmtl.SSMTLModel:
  m = config.model
  if m.dtype not in DTYPES:
    raise ValueError(f"model.dtype {m.dtype!r} unknown; valid: {sorted(DTYPES)}")
  backbone = dict(trunk=m.trunk, embed_dim=m.embed_dim, cvt_blocks=m.cvt_blocks,
                  cvt_heads=m.cvt_heads, cvt_mode=m.cvt_mode, kv_stride=tuple(m.kv_stride),
                  mlp_ratio=m.mlp_ratio, conv_impl=m.conv_impl,
                  first_conv_impl=m.first_conv_impl, depthwise_impl=m.depthwise_impl)
  specs = tuple((t.name, t.head_kind, t.num_outputs(channels)) for t in tasks)
  return ssmtl.SSMTLModel(head_specs=specs, backbone=backbone, head_width=m.head_width,
                          dtype=DTYPES[m.dtype])


def build_optimizer(config) -> optax.GradientTransformation:
  return optax.adam(config.train.learning_rate)


def task_weights(config, tasks) -> dict[str, float]:
  weights = dict(config.task_weights)
  unknown = set(weights) - {t.name for t in tasks}
  if unknown:
    raise ValueError(f"task_weights names tasks not in config.tasks: {sorted(unknown)}")
  return {t.name: float(weights.get(t.name, 1.0)) for t in tasks}


def init_variables(model: ssmtl.SSMTLModel, tasks, window_shape: Sequence[int], rng: jax.Array):
  """Parameters and BatchNorm stats for windows of `window_shape` = `[L, S, S, C]`."""
  (views, _), routes = _train_views(tasks, jnp.zeros((2, *window_shape), jnp.float32), rng)
  return model.init(rng, views, routes, False)


def _to_float(windows: jax.Array) -> jax.Array:
  return windows.astype(jnp.float32) / 255.0


def _train_views(tasks, window, rng):
  keys = jax.random.split(rng, len(tasks))
  views, targets = {}, {}
  for task, key in zip(tasks, keys):
    views[task.name], targets[task.name] = task.train_view(window, key)
  return (views, targets), tuple((t.name, t.name) for t in tasks)


def per_task_losses(model, tasks, variables, windows, rng, train: bool):
  """Returns ({task: per-example loss `[B]`}, new batch_stats or None)."""
  (views, targets), routes = _train_views(tasks, _to_float(windows), rng)
  if train:
    out, mutated = model.apply(variables, views, routes, True, mutable=["batch_stats"])
    new_stats = mutated["batch_stats"]
  else:
    out, new_stats = model.apply(variables, views, routes, False), None
  return {t.name: t.loss(out[t.name], targets[t.name]) for t in tasks}, new_stats


def make_train_step(model, tasks, tx: optax.GradientTransformation, weights: Mapping[str, float]):
  """`train_step(state, windows uint8 [B, L, S, S, C], rng) -> (state, metrics)`."""

  def train_step(state: TrainState, windows: jax.Array, rng: jax.Array):
    step_rng = jax.random.fold_in(rng, state.step)

    def loss_fn(params):
      variables = {"params": params, "batch_stats": state.batch_stats}
      losses, new_stats = per_task_losses(model, tasks, variables, windows, step_rng, True)
      means = {k: v.mean() for k, v in losses.items()}
      total = sum(weights[k] * means[k] for k in means)
      return total, (means, new_stats)

    (total, (means, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=new_stats, opt_state=opt_state)
    metrics = {"loss": total, "l2_grads": optax.tree.norm(grads)}
    metrics.update({f"loss/{k}": v for k, v in means.items()})
    return new_state, metrics

  return train_step


def make_val_step(model, tasks, weights: Mapping[str, float]):
  """`val_step(variables, windows, valid, rng) -> {name: summed loss}, count`: the proxy loss
  with eval-mode BatchNorm and views drawn from a fixed key, so epochs compare like for like."""

  def val_step(variables, windows, valid, rng):
    losses, _ = per_task_losses(model, tasks, variables, windows, rng, False)
    mask = valid.astype(jnp.float32)
    sums = {f"loss/{k}": jnp.sum(v * mask) for k, v in losses.items()}
    sums["loss"] = sum(weights[k] * sums[f"loss/{k}"] for k in losses)
    return sums, jnp.sum(mask)

  return val_step


def make_score_step(model, tasks):
  """`score_step(variables, windows, rng) -> {task: anomaly score [B]}`.

  Tasks with the same eval view (T1, T2: the plain forward cube) share one backbone pass;
  multi-pass tasks (T6's chained inpainting) run their later passes inside the same compiled
  function.
  """

  def score_step(variables, windows, rng):
    window = _to_float(windows)
    keys = jax.random.split(rng, len(tasks))
    views, targets = {}, {}
    for task, key in zip(tasks, keys):
      view, targets[task.name] = task.eval_view(window, key)
      views.setdefault(task.eval_view_name, view)
    routes = tuple((t.name, t.eval_view_name) for t in tasks)
    out = model.apply(variables, views, routes, False)
    for p in range(1, max(t.eval_passes for t in tasks)):
      chained = [t for t in tasks if t.eval_passes > p]
      next_views = {t.name: t.next_eval_view(out[t.name], targets[t.name],
                                             jax.random.fold_in(keys[i], p))
                    for i, t in enumerate(tasks) if t in chained}
      out.update(model.apply(variables, next_views, tuple((t.name, t.name) for t in chained), False))
    return {t.name: t.score(out[t.name], targets[t.name]) for t in tasks}

  return score_step
