"""The optimizer: Adam for the proxy tasks, and for an adversarial task (T5) a second gradient
transformation with a negative learning rate on the shared backbone; the learning-rate schedule."""

import jax
import jax.numpy as jnp
import optax

from ssmtl_jax.models import ssmtl


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
  head = ssmtl.head_name(task.name)
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
