"""T5 pseudo-anomalies: views from the OOD bank, and the sign of the adversarial update."""

from ssmtl_jax import model_setup
from ssmtl_jax.train import optimizer
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config

WINDOW = (13, 16, 16, 1)


@functools.lru_cache(maxsize=None)  # one compile per setting, shared by the tests
def _setup(start_epoch=0, extra_tasks=()):
  config = test_config.get_config()
  config.tasks = ("pseudo_anomaly", *extra_tasks)
  config.task_options.pseudo_anomaly = {"start_epoch": start_epoch}
  config.train.learning_rate = 1e-4
  tasks = model_setup.build_tasks(config)
  bank = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 1), dtype=np.uint8)
  tasks = [dataclasses.replace(t, images=bank) if t.adversarial else t for t in tasks]
  model = model_setup.build_model(config, tasks, 1)
  tx = optimizer.build_optimizer(config, tasks, steps_per_epoch=1)
  rng = jax.random.PRNGKey(0)
  variables = model_setup.init_variables(model, tasks, {"window": WINDOW}, rng)
  state = train_state.new_train_state(variables, tx)
  step = jax.jit(train_steps.make_train_step(model, tasks, tx, train_steps.task_weights(config, tasks)))
  windows = {"window": jnp.asarray(np.random.default_rng(1).integers(0, 256, (8, *WINDOW),
                                                            dtype=np.uint8))}
  return model, tasks, state, step, windows, rng


def test_view_draws_bank_images_tiled_over_time():
  _, tasks, _, _, windows, rng = _setup()
  t5 = tasks[0]
  view, target = t5.train_view({"window": windows["window"].astype(jnp.float32) / 255}, rng)
  assert view.shape == (8, 7, 16, 16, 1) and target.shape == (8, 16, 16, 1)
  np.testing.assert_array_equal(view[:, 3], target)
  bank = np.asarray(t5.images, np.float32) / 255
  for image in np.asarray(target):  # each target is a bank image, possibly mirrored
    assert any(np.allclose(image, b) or np.allclose(image, b[:, ::-1]) for b in bank)
  assert not t5.scored and t5.adversarial


def test_adversarial_step_raises_backbone_loss_and_lowers_head_loss():
  model, tasks, state, step, windows, rng = _setup()
  new_state, metrics = step(state, windows, rng)

  def t5_loss(params):
    losses, _ = train_steps.per_task_losses(model, tasks, {"params": params,
                                                           "batch_stats": state.batch_stats},
                                            windows, jax.random.fold_in(rng, 0), True)
    return float(losses["pseudo_anomaly"].mean())

  old, new = state.params, new_state.params
  before = t5_loss(old)
  np.testing.assert_allclose(before, metrics["loss/pseudo_anomaly"], rtol=1e-5)
  backbone_moved = t5_loss({**old, "backbone": new["backbone"]})
  head_moved = t5_loss({**new, "backbone": old["backbone"]})
  assert backbone_moved > before, (before, backbone_moved)
  assert head_moved < before, (before, head_moved)


def test_adversarial_update_waits_for_its_start_epoch():
  _, _, state, step, windows, rng = _setup(start_epoch=2)
  after_one, _ = step(state, windows, rng)  # count 0 < 2 steps (= 2 epochs of 1 step)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(after_one.params)):
    np.testing.assert_array_equal(a, b)
  after_three, _ = step(*[step(after_one, windows, rng)[0], windows, rng])
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params),
                                                    jax.tree.leaves(after_three.params))]
  assert any(moved)


def test_other_tasks_still_train_normally_next_to_t5():
  _, _, state, step, windows, rng = _setup(start_epoch=100, extra_tasks=("middle_box",))
  new_state, metrics = step(state, windows, rng)
  # T5 is gated off: only the T3 loss drives the update, and it is the reported total.
  np.testing.assert_allclose(metrics["loss"], metrics["loss/middle_box"], rtol=1e-6)
  assert not np.array_equal(state.params["backbone"]["embed"]["kernel"],
                            new_state.params["backbone"]["embed"]["kernel"])


def test_two_adversarial_tasks_are_rejected():
  config = test_config.get_config()
  config.tasks = ("pseudo_anomaly", "pseudo_anomaly")
  with pytest.raises(ValueError, match="at most one adversarial task"):
    optimizer.build_optimizer(config, model_setup.build_tasks(config))
