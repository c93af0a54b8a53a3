"""train.lr_schedule: the step size Adam takes follows the configured schedule."""

from ssmtl_jax import model_setup
from ssmtl_jax.train import optimizer
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config


def _config(schedule, warmup=0, num_steps=10, lr=1e-2):
  c = test_config.get_config()
  c.train.lr_schedule = schedule
  c.train.warmup_steps = warmup
  c.train.num_steps = num_steps
  c.train.learning_rate = lr
  return c


def _adam_step_sizes(tx, num_steps):
  """|update| of one scalar parameter under a constant gradient: Adam's normalised step is 1,
  so the update's size is the learning rate of that step."""
  params = {"w": jnp.zeros(())}
  state = tx.init(params)
  sizes = []
  for _ in range(num_steps):
    updates, state = tx.update({"w": jnp.ones(())}, state, params)
    sizes.append(abs(float(updates["w"])))
  return np.array(sizes)


def test_constant_schedule_is_the_papers_adam():
  sizes = _adam_step_sizes(optimizer.build_optimizer(_config("constant")), 5)
  np.testing.assert_allclose(sizes, 1e-2, rtol=1e-3)


def test_cosine_warms_up_then_decays_to_zero_at_the_last_step():
  c = _config("cosine", warmup=2, num_steps=10)
  sizes = _adam_step_sizes(optimizer.build_optimizer(c), 10)
  lr = optimizer.learning_rate(c, 10)
  np.testing.assert_allclose(sizes, [lr(i) for i in range(10)], rtol=1e-3, atol=1e-7)
  assert sizes[0] == 0 and sizes[1] == pytest.approx(5e-3, rel=1e-3)  # linear warm-up
  assert sizes[2] == pytest.approx(1e-2, rel=1e-3)                       # the peak
  assert np.all(np.diff(sizes[2:]) < 0) and sizes[-1] < 1e-3             # cosine decay


def test_schedule_length_follows_epochs_when_num_steps_is_unset():
  c = _config("cosine", num_steps=-1)
  c.train.epochs = 3
  assert optimizer.num_train_steps(c, steps_per_epoch=4) == 12
  lr = optimizer.learning_rate(c, 12)
  assert float(lr(12)) == pytest.approx(0.0, abs=1e-9)


def test_adversarial_schedule_reads_the_train_step_not_its_own_count():
  """T5's gated optimizer starts at `start_epoch`; its η must be the schedule's η at that
  train step, not the schedule's start (its own counter restarts at 0 when it switches on)."""
  c = _config("cosine", warmup=0, num_steps=8)
  c.tasks = ("pseudo_anomaly",)
  c.task_options.pseudo_anomaly = {"start_epoch": 4, "backbone_scale": -0.5}
  tasks = model_setup.build_tasks(c)
  tx = optimizer.build_optimizer(c, tasks, steps_per_epoch=1)
  params = {"backbone": {"w": jnp.zeros(())}, "head_pseudo_anomaly": {"w": jnp.zeros(())}}
  grads = {"main": jax.tree.map(jnp.zeros_like, params),
           "adversarial": jax.tree.map(jnp.ones_like, params)}
  state = tx.init(params)
  lr = optimizer.learning_rate(c, 8)
  for step in range(8):
    updates, state = tx.update(grads, state, params)
    head, backbone = float(updates["head_pseudo_anomaly"]["w"]), float(updates["backbone"]["w"])
    expected = float(lr(step)) if step >= 4 else 0.0
    np.testing.assert_allclose(-head, expected, rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(backbone, 0.5 * expected, rtol=1e-3, atol=1e-8)  # ascent


def test_unknown_schedule_names_the_field():
  with pytest.raises(ValueError, match="train.lr_schedule='linear'"):
    optimizer.build_optimizer(_config("linear"))
