"""How a batch becomes the tasks' views on device: the uint8 windows to floats, and each task's
training view and target, routed so tasks that share a view share one backbone pass."""

from typing import Mapping

import jax
import jax.numpy as jnp

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
