"""Tests for the proxy tasks (ssmtl_jax.tasks) and the jitted steps that use them (steps.py).

Views are checked against hand-built windows (frame k of a window holding the value k, so a
view's pixels name the frames it took); losses and scores against NumPy. The step tests use a
tiny model (batch 2, 16 px crops) and count traces.
"""

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssmtl_jax import model_setup
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.eval import score_steps
from ssmtl_jax.models import ssmtl
from ssmtl_jax.tasks import arrow_of_time
from ssmtl_jax.tasks import base
from ssmtl_jax.tasks import inpainting
from ssmtl_jax.tasks import middle_box
from ssmtl_jax.tasks import motion_irregularity
from ssmtl_jax.tasks import views as task_views
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps

L = 13  # stored window: 2 * 6 + 1 frames (the default prep.half_window = 6)
CENTRE = L // 2
KEYS = [jax.random.key(i) for i in range(8)]


def _random_window(seed, batch=4, size=8, channels=3, length=L):
  """Float window `[B, L, S, S, C]` with values in [0.5, 1]: no pixel is 0 by accident."""
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(0.5, 1.0, (batch, length, size, size, channels)), jnp.float32)


def _index_window(batch=4, size=8, length=L):
  """Window whose frame k holds the constant value k in every pixel."""
  frames = np.arange(length, dtype=np.float32)[None, :, None, None, None]
  return jnp.asarray(np.broadcast_to(frames, (batch, length, size, size, 1)))


def _frame_indices(view):
  """`[B, T]` frame indices of a view of `_index_window`, checking each frame is one constant."""
  view = np.asarray(view)
  idx = view[:, :, 0, 0, 0]
  np.testing.assert_array_equal(view, np.broadcast_to(idx[:, :, None, None, None], view.shape))
  np.testing.assert_array_equal(idx, np.round(idx))
  return idx.astype(int)


# ---------------------------------------------------------------- T1 arrow of time


def test_arrow_of_time_reverses_exactly_the_backward_examples():
  task = arrow_of_time.ArrowOfTime()
  window = _random_window(0)
  cube = np.asarray(window[:, CENTRE - 3:CENTRE + 4])
  np.testing.assert_array_equal(base.consecutive(window, 7), cube)
  train_view = jax.jit(task.train_view)
  seen = set()
  for key in KEYS:
    view, label = train_view({"window": window}, key)
    assert view.shape == (4, 7, 8, 8, 3)
    assert label.shape == (4,) and label.dtype == jnp.int32
    for b, lab in enumerate(np.asarray(label)):
      assert lab in (0, 1)
      seen.add(int(lab))
      np.testing.assert_array_equal(view[b], cube[b, ::-1] if lab else cube[b])
  assert seen == {0, 1}, "eight keys of four fair coins never gave both labels"


# ---------------------------------------------------------------- T2 motion irregularity


def _check_intermittent(idx, length, max_step):
  """Strictly increasing, centred on the middle frame, inside the window, one skip at least."""
  steps_ = np.diff(idx)
  assert np.all(steps_ >= 1), idx
  assert np.all(steps_ <= max_step), idx
  assert np.any(steps_ > 1), idx
  assert idx[len(idx) // 2] == length // 2, idx
  assert idx[0] >= 0 and idx[-1] <= length - 1, idx


def test_motion_irregularity_train_view():
  task = motion_irregularity.MotionIrregularity(max_skip=2)
  window = _index_window()
  train_view = jax.jit(task.train_view)
  seen = set()
  for key in KEYS:
    view, label = train_view({"window": window}, key)
    assert view.shape == (4, 7, 8, 8, 1)
    assert label.dtype == jnp.int32
    idx = _frame_indices(view)
    for b, lab in enumerate(np.asarray(label)):
      seen.add(int(lab))
      if lab == 0:
        np.testing.assert_array_equal(idx[b], np.arange(CENTRE - 3, CENTRE + 4))
      else:
        _check_intermittent(idx[b], L, 2)
  assert seen == {0, 1}


@pytest.mark.parametrize("max_skip,length", [(2, 13), (3, 13), (3, 19), (4, 21)])
def test_motion_irregularity_indices_fit_the_window(max_skip, length):
  task = motion_irregularity.MotionIrregularity(max_skip=max_skip)
  # Steps are capped so both 3-frame halves fit in the window.
  cap = min(max_skip, (length // 2) // 3)
  for key in KEYS[:4]:
    idx = np.asarray(task.intermittent_indices(key, 4, length))
    assert idx.shape == (4, 7)
    for row in idx:
      _check_intermittent(row, length, cap)
      assert np.any(np.diff(row) == cap)  # the forced step


@pytest.mark.parametrize("max_skip,length", [
    (2, 7),
    (1, 13),
])
def test_motion_irregularity_is_never_silently_degenerate(max_skip, length):
  task = motion_irregularity.MotionIrregularity(max_skip=max_skip)
  window = _index_window(length=length)
  try:
    view, label = task.train_view({"window": window}, KEYS[0])
  except ValueError:
    return  # a clear error is an acceptable answer
  idx = _frame_indices(view)
  assert np.any(label == 1)
  for b in np.flatnonzero(np.asarray(label)):
    assert np.any(np.diff(idx[b]) > 1), idx[b]


def test_consecutive_rejects_a_short_window():
  with pytest.raises(ValueError, match="half_window"):
    base.consecutive(_index_window(length=5), 7)


# ---------------------------------------------------------------- T3 middle box


def test_middle_box_zeroes_exactly_the_middle_frame():
  task = middle_box.MiddleBox()
  window = _random_window(1)
  view, target = task.train_view({"window": window}, KEYS[0])
  cube = np.asarray(window[:, CENTRE - 3:CENTRE + 4])
  assert view.shape == (4, 7, 8, 8, 3)
  expected = cube.copy()
  expected[:, 3] = 0.0
  np.testing.assert_array_equal(view, expected)
  np.testing.assert_array_equal(target, window[:, CENTRE])
  # Deterministic: test-time view equals the training view, whatever the key.
  eval_view, eval_target = task.eval_view({"window": window}, KEYS[1])
  np.testing.assert_array_equal(eval_view, view)
  np.testing.assert_array_equal(eval_target, target)


# ---------------------------------------------------------------- T6 inpainting


def _hole(image, masked):
  """Rows and columns of the one axis-aligned rectangle where `masked` zeroed `image`."""
  zero = np.all(np.asarray(masked) == 0, axis=-1)
  assert np.all(np.asarray(image) != 0)
  rows, cols = np.flatnonzero(zero.any(axis=1)), np.flatnonzero(zero.any(axis=0))
  assert rows.size and cols.size, "no patch removed"
  assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1), "patch not contiguous"
  rect = np.zeros_like(zero)
  rect[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
  np.testing.assert_array_equal(zero, rect)  # exactly one filled rectangle, nothing else
  # The same pixels in every channel, the rest untouched.
  np.testing.assert_array_equal(np.asarray(masked), np.where(rect[..., None], 0, image))
  return rows, cols


def test_inpainting_view_and_target():
  # 16 px crops: the default side range 4..32 px of 64 scales to 1..8 px. (Below 16 px the
  # smallest patches are under a pixel and may remove nothing.)
  task, size = inpainting.Inpainting(), 16
  window = _random_window(2, size=size)
  lo, hi = math.floor(task.min_patch * size / 64), math.ceil(task.max_patch * size / 64)
  for key in KEYS[:4]:
    view, target = task.train_view({"window": window}, key)
    assert view.shape == (4, 7, size, size, 3)
    np.testing.assert_array_equal(target, window[:, CENTRE])
    np.testing.assert_array_equal(view, np.broadcast_to(view[:, :1], view.shape))  # tiled
    for b in range(4):
      rows, cols = _hole(target[b], view[b, 0])
      assert rows.size <= hi and cols.size <= hi
      inside = rows[0] > 0 and cols[0] > 0 and rows[-1] < size - 1 and cols[-1] < size - 1
      if inside:  # not cut by the border: a square up to pixel rounding, side in range
        assert lo <= rows.size and lo <= cols.size
        assert abs(rows.size - cols.size) <= 1


@pytest.mark.parametrize("size", [8, 16])
def test_inpainting_patch_side_scales_with_crop(size):
  # Centred (std 0), side fixed at 32 px of a 64 px crop: exactly the central half.
  task = inpainting.Inpainting(min_patch=32, max_patch=32, centre_std=0.0)
  mask = np.asarray(task.patch_mask(KEYS[0], 4, size))[..., 0]
  expected = np.ones((size, size), np.float32)
  expected[size // 4:3 * size // 4, size // 4:3 * size // 4] = 0
  np.testing.assert_array_equal(mask, np.broadcast_to(expected, (4, size, size)))


def test_inpainting_centred_patches_are_squares_of_random_side():
  task = inpainting.Inpainting(min_patch=16, max_patch=48, centre_std=0.0)
  sides = []
  for key in KEYS:
    mask = np.asarray(task.patch_mask(key, 4, 16))
    for b in range(4):
      rows, cols = _hole(np.ones((16, 16, 1)), mask[b])
      assert rows.size == cols.size
      assert 4 <= rows.size <= 12
      sides.append(rows.size)
  assert len(set(sides)) > 2, sides


def test_inpainting_next_eval_view_masks_the_output():
  task = inpainting.Inpainting()
  assert task.eval_passes == task.passes == 3
  window = _random_window(3, size=16)
  _, target = task.eval_view({"window": window}, KEYS[0])
  output = _random_window(4, size=16)[:, 0]
  nxt = task.next_eval_view(output, target, KEYS[5])
  assert nxt.shape == (4, 7, 16, 16, 3)
  mask = task.patch_mask(KEYS[5], 4, 16)
  np.testing.assert_array_equal(nxt, np.broadcast_to((output * mask)[:, None], nxt.shape))
  for b in range(4):
    _hole(output[b], nxt[b, 3])


# ---------------------------------------------------------------- losses and scores

LOGITS = np.array([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.0], [0.0, 4.0]], np.float32)
LABELS = np.array([0, 1, 1, 0], np.int32)


@pytest.mark.parametrize("task", [arrow_of_time.ArrowOfTime(),
                                  motion_irregularity.MotionIrregularity()])
def test_classifier_loss_and_score(task):
  logits = LOGITS.astype(np.float64)
  expected_ce = [math.log(math.exp(l[0]) + math.exp(l[1])) - l[y] for l, y in zip(logits, LABELS)]
  loss = task.loss(jnp.asarray(LOGITS), jnp.asarray(LABELS))
  assert loss.shape == (4,)
  np.testing.assert_allclose(loss, expected_ce, rtol=1e-5, atol=1e-6)
  expected_p1 = [1.0 / (1.0 + math.exp(l[0] - l[1])) for l in logits]
  score = task.score(jnp.asarray(LOGITS), jnp.zeros(4, jnp.int32))
  assert score.shape == (4,)
  np.testing.assert_allclose(score, expected_p1, rtol=1e-5, atol=1e-7)
  # bfloat16 logits (a bfloat16 model) score in float32.
  assert task.score(jnp.asarray(LOGITS, jnp.bfloat16), jnp.zeros(4, jnp.int32)).dtype == jnp.float32


@pytest.mark.parametrize("task,reduce", [
    (middle_box.MiddleBox(), np.abs),
    (inpainting.Inpainting(), np.square),
])
def test_reconstruction_loss_and_score(task, reduce):
  rng = np.random.default_rng(5)
  output, target = rng.normal(size=(3, 8, 8, 2)), rng.normal(size=(3, 8, 8, 2))
  expected = [reduce(output[b] - target[b]).sum() / (8 * 8 * 2) for b in range(3)]
  for fn in (task.loss, task.score):
    got = fn(jnp.asarray(output, jnp.float32), jnp.asarray(target, jnp.float32))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# ---------------------------------------------------------------- registry and shared views


def test_build_tasks_by_name():
  tasks = tasks_lib.build_tasks(["middle_box", "motion_irregularity"],
                                {"motion_irregularity": {"max_skip": 3}}, num_frames=5)
  assert [t.name for t in tasks] == ["middle_box", "motion_irregularity"]
  assert tasks[1].max_skip == 3
  assert all(t.num_frames == 5 for t in tasks)


def test_build_tasks_unknown_name_lists_valid_tasks():
  with pytest.raises(ValueError, match="jigsaw_typo") as err:
    tasks_lib.build_tasks(["arrow_of_time", "jigsaw_typo"])
  for name in tasks_lib.TASKS:
    assert name in str(err.value)


def test_arrow_and_motion_share_their_eval_view():
  t1, t2 = arrow_of_time.ArrowOfTime(), motion_irregularity.MotionIrregularity()
  window = _random_window(6)
  v1, y1 = t1.eval_view({"window": window}, KEYS[0])
  v2, y2 = t2.eval_view({"window": window}, KEYS[1])
  assert t1.eval_view_name == t2.eval_view_name
  np.testing.assert_array_equal(v1, v2)
  np.testing.assert_array_equal(v1, window[:, CENTRE - 3:CENTRE + 4])  # the plain forward cube
  np.testing.assert_array_equal(y1, np.zeros(4))
  np.testing.assert_array_equal(y2, np.zeros(4))


def test_tasks_sharing_an_eval_view_name_make_the_same_view():
  """score_step passes one view per name through the backbone: tasks claiming the same name must
  make identical views, which `views.check_shared_eval_views` verifies for every registered
  task (it runs when a model is set up)."""
  all_tasks = [dataclasses.replace(t, target_shape=(3,)) if t.needs_teacher else t
               for t in tasks_lib.build_tasks(list(tasks_lib.TASKS))]
  shapes = {k: v for t in all_tasks for k, v in t.teacher_targets().items()}
  task_views.check_shared_eval_views(all_tasks, (7, 16, 16, 1), shapes)


# ---------------------------------------------------------------- jitted steps on a tiny model

ALL_TASKS = ("arrow_of_time", "motion_irregularity", "middle_box", "inpainting")
BATCH, SIZE, CHANNELS = 2, 16, 1


def _batch(seed):
  rng = np.random.default_rng(seed)
  return {"window": jnp.asarray(rng.integers(0, 256, (BATCH, L, SIZE, SIZE, CHANNELS)), jnp.uint8)}


def _fill(shapes, seed):
  """Host-side random values for a tree of variable shapes (compiling Flax's initialisers costs
  seconds on CPU): fan-in-scaled kernels, BN/LN near identity, small biases and means."""
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = path[-1].key
    if name == "kernel":
      v = rng.normal(size=s.shape) / np.sqrt(max(1, math.prod(s.shape[:-1])))
    elif name in ("var", "scale"):
      v = rng.uniform(0.8, 1.2, s.shape)
    else:
      v = 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(v, s.dtype)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


def _tiny_setup(names, cvt_blocks, options=None):
  """(model, tasks, variables) on `[2, 13, 16, 16, 1]` windows."""
  tasks = tasks_lib.build_tasks(names, options)
  specs = tuple((t.name, t.head_kind, t.num_outputs(CHANNELS)) for t in tasks)
  # The lowerings that compile fastest on CPU; tests/test_models.py checks the others match.
  backbone = dict(trunk="tiny", embed_dim=8, cvt_blocks=cvt_blocks, cvt_heads=2, mlp_ratio=2)
  model = ssmtl.SSMTLModel(head_specs=specs, backbone=backbone, head_width=8)
  shapes = jax.eval_shape(lambda: model_setup.init_variables(
      model, tasks, {"window": (L, SIZE, SIZE, CHANNELS)}, jax.random.key(0)))
  return model, tasks, _fill(shapes, 0)


@pytest.fixture(scope="module")
def tiny():
  """All four tasks (two inpainting passes) on a tiny model. No CvT block: compiling it costs
  seconds and tests/test_models.py covers it; these tests are about the steps' plumbing."""
  return _tiny_setup(ALL_TASKS, 0, {"inpainting": {"passes": 2}})


class _Recorder:
  """Stands in for the model in make_score_step and records what each apply receives."""

  def __init__(self, model):
    self.model, self.calls = model, []

  def apply(self, variables, views, routes, train, **kwargs):
    self.calls.append((sorted(views), tuple(routes)))
    return self.model.apply(variables, views, routes, train, **kwargs)


def test_score_step_shares_the_forward_pass_of_t1_and_t2(tiny):
  model, tasks, variables = tiny
  recorder = _Recorder(model)
  scores = jax.eval_shape(score_steps.make_score_step(recorder, tasks), variables, _batch(0),
                          jax.random.key(0))
  assert {k: v.shape for k, v in scores.items()} == {t: (BATCH,) for t in ALL_TASKS}
  (views, routes), (views2, routes2) = recorder.calls  # inpainting: 2 passes
  assert views == ["forward", "inpainting", "middle_masked"]  # 3 backbone views for 4 tasks
  assert dict(routes) == {"arrow_of_time": "forward", "motion_irregularity": "forward",
                          "middle_box": "middle_masked", "inpainting": "inpainting"}
  assert views2 == ["inpainting"] and routes2 == (("inpainting", "inpainting"),)


@pytest.fixture(scope="module")
def score_fn(tiny):
  """The jitted score step and a list that grows by one per trace."""
  model, tasks, _ = tiny
  traces = []
  score_step = score_steps.make_score_step(model, tasks)

  def counted(variables, windows, rng):
    traces.append(1)
    return score_step(variables, windows, rng)

  return jax.jit(counted), traces


def test_score_step_one_score_per_task_and_deterministic(tiny, score_fn):
  _, _, variables = tiny
  fn, _ = score_fn
  windows = _batch(1)
  first = jax.device_get(fn(variables, windows, jax.random.key(7)))
  again = jax.device_get(fn(variables, windows, jax.random.key(7)))
  other = jax.device_get(fn(variables, windows, jax.random.key(8)))
  assert set(first) == set(ALL_TASKS)
  for name in ALL_TASKS:
    assert first[name].shape == (BATCH,) and first[name].dtype == np.float32
    assert np.all(np.isfinite(first[name]))
    np.testing.assert_array_equal(again[name], first[name])
  for name in ("arrow_of_time", "motion_irregularity"):
    assert np.all((first[name] >= 0) & (first[name] <= 1))  # probabilities
  # Only inpainting draws random views at test time (fresh patches); the others ignore the key.
  for name in ("arrow_of_time", "motion_irregularity", "middle_box"):
    np.testing.assert_array_equal(other[name], first[name])
  assert not np.array_equal(other["inpainting"], first["inpainting"])


def test_score_step_traces_once(tiny, score_fn):
  _, _, variables = tiny
  fn, traces = score_fn
  for i in range(3):
    jax.block_until_ready(fn(variables, _batch(10 + i), jax.random.key(i)))
  assert len(traces) == 1


def test_train_step_traces_once_and_learns():
  # Compiling the backward pass dominates this file's time, so it trains only the two tasks
  # whose views need random draws and gathers (one classifier, one decoder head).
  names = ("motion_irregularity", "inpainting")
  model, tasks, variables = _tiny_setup(names, 0)
  tx = optax.adam(1e-2)
  weights = {"motion_irregularity": 1.0, "inpainting": 0.5}
  state = train_state.new_train_state(variables, tx)
  train_step = jax.jit(chex.assert_max_traces(train_steps.make_train_step(model, tasks, tx, weights),
                                              n=1))
  start = state
  for i in range(3):
    state, metrics = train_step(state, _batch(20 + i), jax.random.key(i))
  metrics = jax.device_get(metrics)
  assert int(state.step) == 3
  assert set(metrics) == {"loss", "l2_grads", *(f"loss/{t}" for t in names)}
  assert all(np.isfinite(v) for v in metrics.values())
  np.testing.assert_allclose(
      metrics["loss"], metrics["loss/motion_irregularity"] + 0.5 * metrics["loss/inpainting"],
      rtol=1e-5)
  for tree in ("params", "batch_stats"):
    before, after = jax.tree.leaves(getattr(start, tree)), jax.tree.leaves(getattr(state, tree))
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), tree



def test_shared_motion_view_keeps_both_labels_true_and_saves_a_view():
  """T1 with view_from=T2: one view per cube, reversed or not (T1's label) and consecutive or
  intermittent (T2's label); the frame numbers written into the pixels prove both labels."""
  tasks = tasks_lib.build_tasks(["arrow_of_time", "motion_irregularity"],
                                {"arrow_of_time": {"view_from": "motion_irregularity"}})
  window = jnp.broadcast_to(jnp.arange(L, dtype=jnp.float32)[None, :, None, None, None],
                            (64, L, 2, 2, 1))
  (views, targets), routes = task_views.train_views(tasks, {"window": window}, KEYS[3])  # pylint: disable=protected-access
  assert list(views) == ["motion_irregularity"]
  assert dict(routes) == {"arrow_of_time": "motion_irregularity",
                          "motion_irregularity": "motion_irregularity"}
  frames = np.asarray(views["motion_irregularity"][:, :, 0, 0, 0])
  steps_ = np.diff(frames, axis=1)
  backward = np.asarray(targets["arrow_of_time"]) == 1
  intermittent = np.asarray(targets["motion_irregularity"]) == 1
  assert 0 < backward.sum() < 64 and 0 < intermittent.sum() < 64
  np.testing.assert_array_equal(np.all(steps_ < 0, axis=1), backward)
  np.testing.assert_array_equal(np.any(np.abs(steps_) > 1, axis=1), intermittent)
  np.testing.assert_array_equal(frames[:, 3], CENTRE)  # still centred on the object's frame
