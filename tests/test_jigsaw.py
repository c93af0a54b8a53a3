"""Tests for T8 jigsaw (ssmtl_jax.tasks.jigsaw).

The permutation table is checked for validity, determinism and spread (minimum pairwise Hamming
distance against a random set of the same size); views by cutting tiles out with NumPy slicing
and un-permuting them with the target id; loss and score against NumPy.
"""

import dataclasses
import math
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmtl_jax.tasks import base
from ssmtl_jax.tasks import jigsaw

L = 13
CENTRE = L // 2
KEYS = [jax.random.key(i) for i in range(8)]


def _random_window(seed, batch=4, size=16, channels=3, length=L):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(0.0, 1.0, (batch, length, size, size, channels)), jnp.float32)


def _min_hamming(perms):
  d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
  np.fill_diagonal(d, perms.shape[1] + 1)
  return int(d.min())


def _np_tiles(image, grid):
  """`[S, S, C]` -> list of grid*grid tiles, row-major, by plain slicing."""
  t = image.shape[0] // grid
  return [image[r * t:(r + 1) * t, c * t:(c + 1) * t] for r in range(grid) for c in range(grid)]


# ---------------------------------------------------------------- the permutation table


def test_permutations_are_distinct_valid_and_deterministic():
  jigsaw.permutations.cache_clear()
  start = time.perf_counter()
  perms = jigsaw.permutations()
  elapsed = time.perf_counter() - start
  assert elapsed < 2.0, f"selection took {elapsed:.2f} s"
  assert perms.shape == (100, 16) and perms.dtype == np.int32
  np.testing.assert_array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(16), (100, 16)))
  assert len({tuple(p) for p in perms}) == 100
  # Cached, read-only, and the same when recomputed from scratch.
  assert jigsaw.permutations() is perms
  assert not perms.flags.writeable
  jigsaw.permutations.cache_clear()
  np.testing.assert_array_equal(jigsaw.permutations(), perms)
  assert jigsaw.Jigsaw().permutation_table() is jigsaw.permutations(100, 4)


def test_permutations_are_spread_out():
  perms = jigsaw.permutations()
  spread = _min_hamming(perms)
  rng = np.random.default_rng(0)
  random_spreads = [_min_hamming(np.argsort(rng.random((100, 16)), axis=1)) for _ in range(5)]
  print(f"min pairwise Hamming distance: selected {spread}, random sets {random_spreads}")
  assert spread >= 12  # 13 for the defaults
  assert spread > max(random_spreads)


def test_permutations_other_sizes_and_seeds():
  small = jigsaw.permutations(10, 2)
  assert small.shape == (10, 4)
  assert len({tuple(p) for p in small}) == 10
  other = jigsaw.permutations(100, 4, seed=1)
  assert not np.array_equal(other, jigsaw.permutations())
  assert _min_hamming(other) >= 12
  with pytest.raises(ValueError, match="distinct permutations"):
    jigsaw.permutations(30, 2)  # 4! = 24 < 30


# ---------------------------------------------------------------- views


def test_train_view_places_tiles_by_the_target_permutation():
  task = jigsaw.Jigsaw()
  perms = jigsaw.permutations()
  window = _random_window(0)
  crop = np.asarray(window[:, CENTRE])
  train_view = jax.jit(task.train_view)
  seen = set()
  for key in KEYS:
    view, target = train_view({"window": window}, key)
    chex.assert_shape(view, (4, 7, 16, 16, 3))
    chex.assert_shape(target, (4,))
    chex.assert_type([view, target], [jnp.float32, jnp.int32])
    view, target = np.asarray(view), np.asarray(target)
    assert np.all((target >= 0) & (target < 100))
    np.testing.assert_array_equal(view, np.broadcast_to(view[:, :1], view.shape))  # tiled
    for b in range(4):
      perm = perms[target[b]]
      seen.add(int(target[b]))
      original, shown = _np_tiles(crop[b], 4), _np_tiles(view[b, 0], 4)
      for i in range(16):  # position i shows original tile perm[i]
        np.testing.assert_array_equal(shown[i], original[perm[i]])
      # Un-permuting with the target id gives back the crop exactly.
      restored = [None] * 16
      for i in range(16):
        restored[perm[i]] = shown[i]
      rows = [np.concatenate(restored[r * 4:(r + 1) * 4], axis=1) for r in range(4)]
      np.testing.assert_array_equal(np.concatenate(rows, axis=0), crop[b])
      if not np.array_equal(perm, np.arange(16)):
        assert not np.array_equal(view[b, 0], crop[b])
  assert len(seen) > 20, seen  # 32 draws from 100 classes


def test_tile_round_trip_and_grid_option():
  image = _random_window(1, size=12)[:, CENTRE]
  for grid in (2, 3, 4):
    np.testing.assert_array_equal(jigsaw.from_tiles(jigsaw.to_tiles(image, grid), grid), image)
  task = jigsaw.Jigsaw(grid=2, num_permutations=10, num_frames=5)
  assert task.num_outputs(3) == 10
  window = _random_window(1, size=12)
  view, target = task.train_view({"window": window}, KEYS[0])
  assert view.shape == (4, 5, 12, 12, 3)
  perms = jigsaw.permutations(10, 2)
  crop = np.asarray(window[:, CENTRE])
  for b in range(4):
    shown = _np_tiles(np.asarray(view[b, 0]), 2)
    original = _np_tiles(crop[b], 2)
    for i in range(4):
      np.testing.assert_array_equal(shown[i], original[perms[target[b]][i]])


def test_crop_size_not_divisible_by_the_grid_is_a_clear_error():
  task = jigsaw.Jigsaw()
  with pytest.raises(ValueError, match="crop size 18"):
    task.train_view({"window": _random_window(2, size=18)}, KEYS[0])
  with pytest.raises(ValueError, match="crop size"):
    jax.jit(task.eval_view)({"window": _random_window(2, size=10)}, KEYS[0])


def test_eval_view_is_deterministic_given_the_key():
  task = jigsaw.Jigsaw()
  window = _random_window(3)
  eval_view = jax.jit(chex.assert_max_traces(task.eval_view, n=1))
  v1, y1 = eval_view({"window": window}, KEYS[0])
  v2, y2 = eval_view({"window": window}, KEYS[0])
  np.testing.assert_array_equal(v1, v2)
  np.testing.assert_array_equal(y1, y2)
  tv, ty = task.train_view({"window": window}, KEYS[0])  # the same draw as training
  np.testing.assert_array_equal(v1, tv)
  np.testing.assert_array_equal(y1, ty)
  differs = [not np.array_equal(eval_view({"window": window}, k)[1], y1) for k in KEYS[1:4]]
  assert any(differs)
  # A legacy uint32 key works too.
  view, target = task.eval_view({"window": window}, jax.random.PRNGKey(7))
  assert view.shape == (4, 7, 16, 16, 3) and target.shape == (4,)


def test_attributes():
  task = jigsaw.Jigsaw()
  assert (task.name, task.head_kind, task.eval_view_name) == ("jigsaw", "classifier", "jigsaw")
  assert task.eval_passes == 1 and task.num_frames == 7 and task.grid == 4
  assert task.num_outputs(1) == task.num_outputs(3) == 100
  assert isinstance(task, base.Task)
  with pytest.raises(dataclasses.FrozenInstanceError):
    task.grid = 3  # frozen, hashable like the other tasks
  assert hash(task) == hash(jigsaw.Jigsaw())


# ---------------------------------------------------------------- loss and score


def test_loss_is_cross_entropy_and_score_is_one_minus_p_correct():
  task = jigsaw.Jigsaw()
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(5, 100)) * 3
  labels = rng.integers(0, 100, 5).astype(np.int32)
  logz = [math.log(sum(math.exp(v) for v in row)) for row in logits]
  expected_ce = [logz[b] - logits[b, labels[b]] for b in range(5)]
  expected_score = [1.0 - math.exp(logits[b, labels[b]] - logz[b]) for b in range(5)]
  loss = jax.jit(task.loss)(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
  score = jax.jit(task.score)(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
  chex.assert_shape([loss, score], (5,))
  chex.assert_type([loss, score], jnp.float32)
  np.testing.assert_allclose(loss, expected_ce, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(score, expected_score, rtol=1e-5, atol=1e-6)
  assert np.all((np.asarray(score) >= 0) & (np.asarray(score) <= 1))
  # A confident correct prediction scores ~0, a confident wrong one ~1.
  sure = jnp.zeros((2, 100)).at[0, 3].set(50.0).at[1, 5].set(50.0)
  np.testing.assert_allclose(task.score(sure, jnp.array([3, 4])), [0.0, 1.0], atol=1e-6)
  # bfloat16 logits (a bfloat16 model) score in float32.
  assert task.score(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(labels)).dtype == jnp.float32
