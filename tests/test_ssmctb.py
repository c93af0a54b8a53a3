"""Tests for ssmtl_jax.models.ssmctb: the masked conv against explicit corner sums, its receptive
field, and the SSMCTB block's shapes, channel weights, Huber loss, gradients and jit.

Tiny shapes (batch <= 2, grids <= 7, channels <= 6, embed 8) keep the file to a few seconds on CPU.
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmtl_jax.models import ssmctb

TINY = dict(embed=8, num_blocks=2, num_heads=4, mlp_ratio=2)


def _normal(seed, shape, scale=1.0):
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _init(module, *args, seed=0):
  """Variables made by shape and filled on the host (Flax initialisers compile slowly on CPU)."""
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = path[-1].key
    if name == "kernel":
      v = rng.normal(size=s.shape) / np.sqrt(max(1, math.prod(s.shape[:-1])))
    elif name == "scale":
      v = 1.0 + 0.1 * rng.normal(size=s.shape)
    else:  # bias, pos_embed
      v = 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(v, s.dtype)

  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
  return jax.tree_util.tree_map_with_path(leaf, shapes)


def _masked_conv_reference(x, kernel, bias):
  """Bias + sum over the corners (a, b, c) of x_padded[t + 4a, h + 4b, w + 4c] @ K[a, b, c]."""
  x, kernel, bias = map(np.asarray, (x, kernel, bias))
  _, t, h, w, _ = x.shape
  xp = np.pad(x, [(0, 0), (2, 2), (2, 2), (2, 2), (0, 0)])
  y = np.broadcast_to(bias, (*x.shape[:4], bias.shape[0])).astype(np.float64)
  for a in range(2):
    for b in range(2):
      for c in range(2):
        window = xp[:, 4 * a:4 * a + t, 4 * b:4 * b + h, 4 * c:4 * c + w, :]
        y = y + np.einsum("bthwi,io->bthwo", window, kernel[a, b, c])
  return y


@pytest.mark.parametrize("impl", ssmctb.MASKED_CONV_IMPLS)
def test_masked_conv_equals_corner_sum(impl):
  x = _normal(0, (2, 3, 5, 6, 3))
  conv = ssmctb.MaskedConv3D(4, impl=impl)
  variables = _init(conv, x, seed=1)
  params = variables["params"]
  assert params["kernel"].shape == (2, 2, 2, 3, 4) and params["bias"].shape == (4,)
  y = conv.apply(variables, x)
  assert y.shape == (2, 3, 5, 6, 4)
  np.testing.assert_allclose(y, _masked_conv_reference(x, params["kernel"], params["bias"]),
                             atol=1e-5)


def test_masked_conv_hides_the_centre():
  # One input per offset in [-2, 2]^3, each perturbed at centre + offset; the output at the
  # centre may move only for the eight (±2, ±2, ±2) corners.
  offsets = [(i, j, k) for i in range(-2, 3) for j in range(-2, 3) for k in range(-2, 3)]
  base = _normal(2, (1, 7, 7, 7, 2))
  conv = ssmctb.MaskedConv3D(3)
  variables = _init(conv, base, seed=3)
  batch = np.repeat(np.asarray(base), len(offsets), axis=0)
  for n, (i, j, k) in enumerate(offsets):
    batch[n, 3 + i, 3 + j, 3 + k, :] += 5.0
  change = np.abs(conv.apply(variables, jnp.asarray(batch))[:, 3, 3, 3, :]
                  - conv.apply(variables, base)[:, 3, 3, 3, :]).max(axis=-1)
  moved = {off for off, d in zip(offsets, change) if d > 1e-4}
  corners = {(i, j, k) for i in (-2, 2) for j in (-2, 2) for k in (-2, 2)}
  assert moved == corners
  for off in [(0, 0, 0), (1, 0, 0), (-1, 1, -1), (1, 1, 1), (2, 2, 0)]:
    assert change[offsets.index(off)] < 1e-6, off
  assert change[offsets.index((2, 2, 2))] > 1e-2


def _huber(d, delta=1.0):
  d = np.abs(np.asarray(d, np.float64))
  return np.where(d <= delta, 0.5 * d ** 2, delta * (d - 0.5 * delta))


def test_block_shapes_weights_and_loss():
  x = _normal(4, (2, 3, 4, 4, 6), scale=2.0)  # |y - x| spans both Huber branches
  block = ssmctb.SSMCTB3D(**TINY)
  variables = _init(block, x, seed=5)
  (y, loss), state = jax.jit(partial(block.apply, mutable=["intermediates"]))(variables, x)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert variables["params"]["pos_embed"].shape == (6, TINY["embed"])
  (weights,) = state["intermediates"]["channel_weights"]
  assert weights.shape == (2, 6)
  assert np.all((np.asarray(weights) > 0) & (np.asarray(weights) < 1))
  # y is the ReLU'd masked conv scaled per channel by the weights.
  z = jax.nn.relu(ssmctb.MaskedConv3D(6).apply(
      {"params": variables["params"]["masked_conv"]}, x))
  np.testing.assert_allclose(y, z * weights[:, None, None, None, :], atol=1e-6)
  diff = np.asarray(y, np.float64) - np.asarray(x, np.float64)
  assert np.any(np.abs(diff) > 1) and np.any(np.abs(diff) < 1)
  assert loss.shape == () and loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, _huber(diff).mean(), rtol=1e-5)


def test_block_rejects_a_channel_change():
  x = jnp.zeros((1, 2, 4, 4, 3))
  with pytest.raises(ValueError, match="reconstructs its input"):
    jax.eval_shape(lambda: ssmctb.SSMCTB3D(channels=5, **TINY).init(jax.random.key(0), x))


def test_block_gradients_reach_every_param_and_it_jits():
  x = _normal(6, (2, 3, 4, 4, 4))
  block = ssmctb.SSMCTB3D(**TINY)
  params = _init(block, x, seed=7)["params"]

  @jax.jit
  def step(params, x):
    # The block's own loss alone must train every parameter.
    return jax.value_and_grad(lambda p: block.apply({"params": p}, x)[1])(params)

  loss, grads = step(params, x)
  assert np.isfinite(loss)
  flat = jax.tree_util.tree_leaves_with_path(grads)
  assert len(flat) == len(jax.tree_util.tree_leaves(params))
  for path, g in flat:
    assert np.all(np.isfinite(g)), jax.tree_util.keystr(path)
    assert np.abs(np.asarray(g)).max() > 0, jax.tree_util.keystr(path)
  # The loss is the one the forward pass returns.
  _, forward_loss = jax.jit(block.apply)({"params": params}, x)
  np.testing.assert_allclose(loss, forward_loss, rtol=1e-6)


def test_block_bfloat16_compute_keeps_float32_params_and_loss():
  x = _normal(8, (1, 2, 4, 4, 4))
  block = ssmctb.SSMCTB3D(dtype=jnp.bfloat16, **TINY)
  variables = _init(block, x, seed=9)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables))
  y, loss = jax.jit(block.apply)(variables, x)
  assert y.dtype == jnp.bfloat16 and loss.dtype == jnp.float32 and np.isfinite(loss)


def test_trunk_with_ssmctb_adds_its_weighted_loss_to_the_train_step():
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from ssmtl_jax import model_setup  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import optimizer  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import state as train_state  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import steps as train_steps  # pylint: disable=g-import-not-at-top
  config = test_config.get_config()
  config.model.trunk = "shallow_narrow"
  config.model.ssmctb = True
  config.tasks = ("arrow_of_time", "middle_box")
  tasks = model_setup.build_tasks(config)
  model = model_setup.build_model(config, tasks, 1)
  tx = optimizer.build_optimizer(config, tasks)
  rng = jax.random.PRNGKey(0)
  variables = model_setup.init_variables(model, tasks, {"window": (13, 16, 16, 1)}, rng)
  assert "ssmctb" in variables["params"]["backbone"]["Trunk3D_0"]
  state = train_state.new_train_state(variables, tx)
  weights = train_steps.task_weights(config, tasks)
  assert weights["ssmctb"] == pytest.approx(0.1)
  windows = {"window": jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 13, 16, 16, 1),
                                                            np.uint8))}
  _, metrics = jax.jit(train_steps.make_train_step(model, tasks, tx, weights))(state, windows, rng)
  assert np.isfinite(metrics["loss/ssmctb"]) and metrics["loss/ssmctb"] > 0
  np.testing.assert_allclose(
      metrics["loss"], metrics["loss/arrow_of_time"] + metrics["loss/middle_box"]
      + 0.1 * metrics["loss/ssmctb"], rtol=1e-5)
