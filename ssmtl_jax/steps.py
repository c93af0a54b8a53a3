"""Pure, jit-able train / validation / scoring steps, and the builders they need.

Every function here is traced once per shape: task views are made on device from the uint8
windows with `jax.random`, so the host only ships raw bytes (DESIGN §4). A batch is a dict:
`"window"` uint8 `[B, L, S, S, C]` plus any teacher targets `"teacher/<task>"` (tasks/base.py).
"""

from typing import Any, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax

from ssmtl_jax import backend
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.models import ssmtl

SSMCTB_LOSS = "ssmctb"  # the SSMCTB block's own reconstruction loss, weighted like a task


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


def build_tasks(config) -> list[tasks_lib.base.Task]:
  return tasks_lib.build_tasks(config.tasks, config.task_options.to_dict(),
                               num_frames=config.model.num_frames)


def build_model(config, tasks: Sequence[tasks_lib.base.Task], channels: int) -> ssmtl.SSMTLModel:
  m = config.model
  choice = backend.resolve_model_choices(m)
  backbone = dict(trunk=m.trunk, embed_dim=m.embed_dim, cvt_blocks=m.cvt_blocks,
                  cvt_heads=m.cvt_heads, cvt_mode=m.cvt_mode, kv_stride=tuple(m.kv_stride),
                  mlp_ratio=m.mlp_ratio, conv_impl=choice["conv_impl"],
                  first_conv_impl=choice["first_conv_impl"],
                  depthwise_impl=choice["depthwise_impl"], ssmctb=m.ssmctb)
  specs = tuple((t.name, t.head_kind, t.num_outputs(channels)) for t in tasks)
  return ssmtl.SSMTLModel(head_specs=specs, backbone=backbone, head_width=m.head_width,
                          dtype=backend.DTYPES[choice["dtype"]])


LR_SCHEDULES = ("constant", "cosine")


def learning_rate(config, num_steps: int) -> optax.Schedule | float:
  """η of `train.learning_rate`: constant (the papers), or `cosine`: linear warm-up over
  `train.warmup_steps`, then cosine decay to 0 at `num_steps`. A decayed η ends training on a
  settled model, so the best-by-validation checkpoint depends less on the step it lands on."""
  tc = config.train
  if tc.lr_schedule not in LR_SCHEDULES:
    raise ValueError(f"train.lr_schedule={tc.lr_schedule!r}; valid: {LR_SCHEDULES}")
  if tc.lr_schedule == "constant":
    return tc.learning_rate
  warmup = max(0, min(int(tc.warmup_steps), num_steps - 1))
  return optax.warmup_cosine_decay_schedule(0.0, tc.learning_rate, warmup, max(num_steps, 1))


def num_train_steps(config, steps_per_epoch: int) -> int:
  tc = config.train
  return tc.num_steps if tc.num_steps > 0 else tc.epochs * steps_per_epoch


def build_optimizer(config, tasks=(), steps_per_epoch: int = 1) -> optax.GradientTransformation:
  """Adam for the proxy tasks; with an adversarial task (T5), a second transformation for its
  gradient: descent for its own head, ascent (learning rate `backbone_scale`·η, paper −0.2·η)
  for the shared backbone, from epoch `start_epoch` on. η follows `train.lr_schedule`.

  The adversarial variant's `update` takes `{"main": grads, "adversarial": grads}`.
  """
  lr = learning_rate(config, num_train_steps(config, steps_per_epoch))
  main = optax.adam(lr)
  adversarial = [t for t in tasks if t.adversarial]
  if not adversarial:
    return main
  if len(adversarial) > 1:
    raise ValueError(f"at most one adversarial task, got {[t.name for t in adversarial]}")
  task = adversarial[0]
  head = f"head_{task.name}"
  labels = lambda params: {k: ("backbone" if k == "backbone" else "head" if k == head else "other")
                           for k in params}
  # The count is the number of updates so far, i.e. the train step: no recompiles, no host sync.
  start = int(task.start_epoch) * int(steps_per_epoch)
  # The gated transformation's own count starts at 0 on its first active step: shift it back
  # to the train step so a schedule sees the same step as the main optimizer.
  inner = optax.multi_transform({
      # Learning rate backbone_scale·η < 0: the update climbs the T5 loss.
      "backbone": optax.chain(optax.scale_by_adam(),
                              optax.scale_by_learning_rate(_shifted(lr, task.backbone_scale, start))),
      "head": optax.chain(optax.scale_by_adam(),
                          optax.scale_by_learning_rate(_shifted(lr, 1.0, start))),
      "other": optax.set_to_zero()}, labels)
  gated = optax.conditionally_mask(inner, lambda count: count >= start)

  def init(params):
    return {"main": main.init(params), "adversarial": gated.init(params)}

  def update(grads, state, params=None):
    main_updates, main_state = main.update(grads["main"], state["main"], params)
    adv_updates, adv_state = gated.update(grads["adversarial"], state["adversarial"], params)
    return (jax.tree.map(jnp.add, main_updates, adv_updates),
            {"main": main_state, "adversarial": adv_state})

  return optax.GradientTransformation(init, update)


def _shifted(lr, factor: float, offset: int):
  """`factor`·η, with a schedule read `offset` steps later."""
  return (lambda count: factor * lr(count + offset)) if callable(lr) else factor * lr


def task_weights(config, tasks) -> dict[str, float]:
  weights = dict(config.task_weights)
  unknown = set(weights) - {t.name for t in tasks}
  if unknown:
    raise ValueError(f"task_weights names tasks not in config.tasks: {sorted(unknown)}")
  out = {t.name: float(weights.get(t.name, 1.0)) for t in tasks}
  if config.model.ssmctb:
    out[SSMCTB_LOSS] = float(config.model.ssmctb_weight)
  return out


def init_variables(model: ssmtl.SSMTLModel, tasks, batch_shapes: Mapping[str, Sequence[int]],
                   rng: jax.Array):
  """Parameters and BatchNorm stats for batches whose entries have the per-example shapes
  `batch_shapes` (`{"window": [L, S, S, C], "teacher/<task>": ...}`)."""
  def init(rng):
    batch = {k: jnp.zeros((2, *shape), jnp.float32) for k, shape in batch_shapes.items()}
    (views, _), routes = _train_views(tasks, batch, rng)
    return model.init(rng, views, routes, False)

  # Compiled in one piece (an eager, op-by-op init compiles every draw on its own), in the
  # platform's RNG setting for parameters (backend.init_rng_context).
  with backend.init_rng_context():
    return jax.jit(init)(rng)


def _to_float(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """uint8 windows -> [0, 1]; teacher targets (stored as float16) -> float32."""
  return {k: v.astype(jnp.float32) / 255.0 if k == tasks_lib.base.WINDOW else v.astype(jnp.float32)
          for k, v in batch.items()}


def _train_views(tasks, batch, rng):
  """Each task's training view and target, and the (task, view) routes. A task with `view_from`
  transforms its source task's view instead of the stored window, and both read the result."""
  keys = dict(zip([t.name for t in tasks], jax.random.split(rng, len(tasks))))
  views, targets, route = {}, {}, {}
  for task in sorted(tasks, key=lambda t: bool(t.view_from)):  # sources first
    if task.view_from:
      shared = route[task.view_from]
      views[shared], targets[task.name] = task.train_view(
          {**batch, tasks_lib.base.WINDOW: views[shared]}, keys[task.name])
      route[task.name] = shared
    else:
      views[task.name], targets[task.name] = task.train_view(batch, keys[task.name])
      route[task.name] = task.name
  return (views, targets), tuple((t.name, route[t.name]) for t in tasks)


def batch_size(batch: Mapping[str, jax.Array]) -> int:
  return batch[tasks_lib.base.WINDOW].shape[0]


def per_task_losses(model, tasks, variables, batch, rng, train: bool):
  """Returns ({task: per-example loss `[B]`}, new batch_stats or None)."""
  (views, targets), routes = _train_views(tasks, _to_float(batch), rng)
  mutable = ["batch_stats", "losses"] if train else ["losses"]
  out, mutated = model.apply(variables, views, routes, train, mutable=mutable)
  losses = {t.name: t.loss(out[t.name], targets[t.name]) for t in tasks}
  sown = jax.tree.leaves(mutated.get("losses", {}))
  if sown:  # the SSMCTB loss is per batch; spread it so every entry is per example
    losses[SSMCTB_LOSS] = jnp.full((batch_size(batch),), sum(sown), jnp.float32)
  return losses, mutated["batch_stats"] if train else None


def make_train_step(model, tasks, tx: optax.GradientTransformation, weights: Mapping[str, float],
                    ema_decay: float = 0.0):
  """`train_step(state, batch, rng) -> (state, metrics)`; `batch["window"]` is uint8
  `[B, L, S, S, C]`. With `ema_decay` > 0 (and `state.ema` initialised), the step also updates
  the moving average of the weights (Polyak averaging: a steadier model to select and score
  than the last iterate of a constant learning rate)."""

  def train_step(state: TrainState, batch: Mapping[str, jax.Array], rng: jax.Array):
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
                         "(train.init_state does it when train.ema_decay > 0)")
      ema = update_ema(ema, {"params": new_params, "batch_stats": new_stats},
                       ema_decay_at(ema_decay, state.step))
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


def make_score_step(model, tasks):
  """`score_step(variables, batch, rng) -> {task: anomaly score [B]}`.

  Tasks with the same eval view (T1, T2: the plain forward cube) share one backbone pass;
  multi-pass tasks (T6's chained inpainting) run their later passes inside the same compiled
  function.
  """

  tasks = [t for t in tasks if t.scored]

  def score_step(variables, batch, rng):
    batch = _to_float(batch)
    keys = jax.random.split(rng, len(tasks))
    views, targets = {}, {}
    for task, key in zip(tasks, keys):
      view, targets[task.name] = task.eval_view(batch, key)
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
