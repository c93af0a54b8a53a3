"""The weights' moving average (train.ema_decay): the update rule, its warm-up, that it is what
gets validated, checkpointed and scored, and clear errors for bad settings."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from ssmtl_jax import model_setup
from ssmtl_jax import workflow
from ssmtl_jax.train import checkpoint
from ssmtl_jax.train import loop as train_loop
from ssmtl_jax.train import optimizer
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps

WINDOW = (13, 16, 16, 1)


def _state_and_step(config, ema: bool, ema_decay: float):
  tasks = model_setup.build_tasks(config)
  model = model_setup.build_model(config, tasks, 1)
  tx = optimizer.build_optimizer(config, tasks)
  variables = model_setup.init_variables(model, tasks, {"window": WINDOW}, jax.random.PRNGKey(0))
  state = train_state.new_train_state(variables, tx, ema=ema)
  weights = train_steps.task_weights(config, tasks)
  step = jax.jit(train_steps.make_train_step(model, tasks, tx, weights, ema_decay))
  return state, step


def test_decay_warms_up_then_holds():
  got = [float(train_state.ema_decay_at(0.99, s)) for s in (0, 1, 10, 100, 10_000)]
  np.testing.assert_allclose(got[:3], [1 / 10, 2 / 11, 11 / 20], rtol=1e-6)
  assert got[3] == pytest.approx(101 / 110) and got[4] == pytest.approx(0.99)


def test_train_step_keeps_the_moving_average_of_the_live_weights():
  config = test_config.get_config()
  decay = 0.9
  with_ema, step_ema = _state_and_step(config, ema=True, ema_decay=decay)
  plain, step_plain = _state_and_step(config, ema=False, ema_decay=0.0)
  expected = jax.tree.map(np.asarray, plain.live_variables)
  data = np.random.default_rng(0).integers(0, 256, (12, *WINDOW), dtype=np.uint8)
  rng = jax.random.PRNGKey(1)
  for k in range(3):
    batch = {"window": data[4 * k:4 * k + 4]}
    d = float(train_state.ema_decay_at(decay, k))
    with_ema, _ = step_ema(with_ema, batch, rng)
    plain, _ = step_plain(plain, batch, rng)
    expected = jax.tree.map(lambda e, v: d * e + (1 - d) * np.asarray(v), expected,
                            plain.live_variables)
  # The live weights train exactly as without the average; the average follows them.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               with_ema.live_variables, plain.live_variables)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               with_ema.ema, expected)
  # `variables` (validated, checkpointed, scored) is the average, and it differs from the live
  # weights after a few steps.
  assert with_ema.variables is with_ema.ema
  assert plain.variables["params"] is plain.params
  gaps = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                      with_ema.ema["params"], with_ema.params))
  assert max(gaps) > 1e-4


def test_ema_decay_without_an_initialised_average_is_a_clear_error():
  config = test_config.get_config()
  state, step = _state_and_step(config, ema=False, ema_decay=0.99)
  batch = {"window": np.zeros((4, *WINDOW), np.uint8)}
  with pytest.raises(ValueError, match="ema"):
    step(state, batch, jax.random.PRNGKey(0))


@pytest.mark.parametrize("decay", [1.0, -0.5, 2])
def test_bad_decay_names_the_field(decay):
  with pytest.raises(ValueError, match="train.ema_decay"):
    train_state.check_ema_decay(decay)


def test_training_with_ema_checkpoints_and_scores_the_average(tmp_path):
  config = test_config.get_config()
  config.train.ema_decay = 0.5
  workdir = str(tmp_path)
  workflow.run(config, workdir, "all")
  setup = train_loop.TrainingSetup(config, workdir)
  state, step = checkpoint.restore_best(workdir, setup.abstract_state())
  assert step > 0 and state.ema
  gaps = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                      state.ema["params"], state.params))
  assert max(gaps) > 0.0  # the checkpoint holds both; the average is not the live weights
  with open(os.path.join(workdir, "metrics.json")) as f:
    assert 0.0 <= json.load(f)["micro_auc"] <= 1.0
