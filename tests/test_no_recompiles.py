"""The train and score steps compile once: fixed shapes, ragged batches padded and masked."""

import chex
import jax
import numpy as np

from configs import test as test_config
from ssmtl_jax import model_setup
from ssmtl_jax.data import input_pipeline
from ssmtl_jax.eval import score_steps
from ssmtl_jax.train import optimizer
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps

WINDOW = (13, 16, 16, 1)


def test_train_and_score_steps_trace_once():
  config = test_config.get_config()
  tasks = model_setup.build_tasks(config)
  model = model_setup.build_model(config, tasks, 1)
  tx = optimizer.build_optimizer(config, tasks)
  rng = jax.random.PRNGKey(0)
  variables = model_setup.init_variables(model, tasks, {"window": WINDOW}, rng)
  state = train_state.new_train_state(variables, tx)
  weights = train_steps.task_weights(config, tasks)
  train_step = jax.jit(chex.assert_max_traces(
      train_steps.make_train_step(model, tasks, tx, weights), n=1), donate_argnums=(0,))
  score_step = jax.jit(chex.assert_max_traces(score_steps.make_score_step(model, tasks), n=1))
  data = np.random.default_rng(0).integers(0, 256, (11, *WINDOW), dtype=np.uint8)
  for k in range(3):  # new data and a new step count each time: still one trace
    state, _ = train_step(state, {"window": data[k:k + 4]}, rng)
  # A ragged tail (3 of 4 rows) is padded to the same shape, so scoring reuses the compile.
  for start in range(0, len(data), 4):
    (batch,), valid = input_pipeline.pad_batch([data[start:start + 4]], 4)
    scores = score_step(state.variables, {"window": batch}, rng)
    assert all(v.shape == (4,) for v in scores.values())
  assert valid.tolist() == [True, True, True, False]
