"""How a batch becomes the tasks' views on device: the uint8 windows to floats, and each task's
training view and target, routed so tasks that share a view share one backbone pass."""

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ssmtl_jax.tasks import base


def to_float(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """uint8 windows -> [0, 1]; teacher targets (stored as float16) -> float32."""
  return {k: v.astype(jnp.float32) / 255.0 if k == base.WINDOW else v.astype(jnp.float32)
          for k, v in batch.items()}


def train_views(tasks, batch, rng):
  """Each task's training view and target, and the (task, view) routes. A task with `view_from`
  transforms its source task's view instead of the stored window, and both read the result."""
  keys = dict(zip([t.name for t in tasks], jax.random.split(rng, len(tasks))))
  views, targets, route = {}, {}, {}
  for task in sorted(tasks, key=lambda t: bool(t.view_from)):  # sources first
    if task.view_from:
      shared = route[task.view_from]
      views[shared], targets[task.name] = task.train_view(
          {**batch, base.WINDOW: views[shared]}, keys[task.name])
      route[task.name] = shared
    else:
      views[task.name], targets[task.name] = task.train_view(batch, keys[task.name])
      route[task.name] = task.name
  return (views, targets), tuple((t.name, route[t.name]) for t in tasks)


def batch_size(batch: Mapping[str, jax.Array]) -> int:
  return batch[base.WINDOW].shape[0]


def check_shared_eval_views(tasks, window_shape, teacher_shapes: Mapping[str, tuple] = ()):
  """Raises ValueError when tasks that name the same `eval_view_name` (and so share one backbone
  pass at test time) compute different views: each view is made, eagerly, from one random batch
  of two objects with two different keys, and must not differ between tasks or keys.

  Args:
    tasks: the configured tasks.
    window_shape: `[L, S, S, C]` of a stored window.
    teacher_shapes: batch key -> per-example shape of each teacher target.
  """
  groups = {}
  for task in tasks:
    if task.scored:
      groups.setdefault(task.eval_view_name, []).append(task)
  shared = {name: group for name, group in groups.items() if len(group) > 1}
  if not shared:
    return
  rng = np.random.default_rng(0)
  batch = {base.WINDOW: jnp.asarray(rng.random((2, *window_shape)), jnp.float32),
           **{k: jnp.asarray(rng.random((2, *shape)), jnp.float32)
              for k, shape in dict(teacher_shapes).items()}}
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  for name, group in shared.items():
    reference = np.asarray(group[0].eval_view(batch, keys[0])[0])
    for task, key in [(t, k) for t in group for k in keys][1:]:
      view = np.asarray(task.eval_view(batch, key)[0])
      if view.shape != reference.shape or not np.array_equal(view, reference):
        raise ValueError(
            f"tasks {group[0].name} and {task.name} both name the test-time view "
            f"{name!r}, so they would share one backbone pass, but they make different views "
            f"(or one depends on its random key): give {task.name} an eval_view_name of its own")
