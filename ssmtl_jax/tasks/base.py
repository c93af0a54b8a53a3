"""What every proxy task provides, and the cube slicing the tasks share.

A task turns a batch into its own input view and target, on device, with a `jax.random` key; it
names the head it needs, its per-example loss and its per-example anomaly score. train.py and
evaluate.py never name a task.

A batch is a dict: `batch["window"]` holds the stored windows `[B, L, S, S, C]` float in [0, 1]
(L = 2*half_window+1, centre frame at index L // 2) and, for tasks with teacher targets (T4, T7,
T9), `batch["teacher/<task>"]` holds the targets data prep computed for each cube.
"""

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp

from data_prep.records import FEATURES_SUFFIX
from data_prep.records import TEACHER_PREFIX

WINDOW = "window"
Batch = Mapping[str, jax.Array]


def teacher_key(task_name: str) -> str:
  """The batch / record key of a task's teacher targets."""
  return TEACHER_PREFIX + task_name


@dataclasses.dataclass(frozen=True)
class Task:
  """Base class. Subclasses set the class attributes and override the methods.

  Attributes:
    num_frames: frames per model input (7 in the papers).
    view_from: train on another task's training view, transformed by this task's own view
      function, and share that one view (one backbone pass) with it. E.g. T1 with
      `view_from="motion_irregularity"` reverses T2's consecutive-or-intermittent clip half the
      time: a reversed clip keeps T2's label, so both tasks train on one view (a method-level
      saving, off by default: the papers give each task its own view).
  """
  num_frames: int = 7
  view_from: str = ""

  name = "base"
  head_kind = "classifier"  # or "decoder"
  # Views with the same eval_view name are identical at test time and share a backbone pass.
  eval_view_name = "base"
  eval_passes = 1
  scored = True        # has a test-time anomaly score (T5 trains only)
  adversarial = False  # trained through the negative-scale optimizer (T5)
  needs_teacher = False  # targets come from a teacher run in data prep (T4, T7, T9)

  def teacher_targets(self) -> dict[str, tuple[int, ...]]:
    """Batch key -> per-example shape of every teacher target this task reads (empty for tasks
    without a teacher)."""
    return {}

  def with_teacher_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> "Task":
    """This task sized by the stored targets' shapes (target name -> shape, from the records'
    manifest); tasks without a teacher return themselves."""
    return self

  def num_outputs(self, channels: int) -> int:
    """Classes for a classifier head, image channels for a decoder head."""
    raise NotImplementedError

  def train_view(self, batch: Batch, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (input view `[B, T, S, S, C]`, target)."""
    raise NotImplementedError

  def loss(self, output: jax.Array, target: jax.Array) -> jax.Array:
    """Per-example loss `[B]`."""
    raise NotImplementedError

  def eval_view(self, batch: Batch, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The test-time view and the target its score compares against."""
    raise NotImplementedError

  def next_eval_view(self, output: jax.Array, target: jax.Array, rng: jax.Array) -> jax.Array:
    """For multi-pass scoring (inpainting): the next pass's input from this pass's output."""
    raise NotImplementedError

  def score(self, output: jax.Array, target: jax.Array) -> jax.Array:
    """Per-example anomaly score `[B]` (higher = more anomalous)."""
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class TeacherTask(Task):
  """A task that learns a teacher's output stored in the records under its own name.

  Attributes:
    target_shape: the per-object target shape (filled in from the records' manifest).
  """
  target_shape: tuple = ()

  needs_teacher = True

  def teacher_targets(self):
    return {teacher_key(self.name): tuple(self.target_shape)}

  def with_teacher_shapes(self, shapes):
    if self.name not in shapes:
      raise KeyError(self.name)
    return dataclasses.replace(self, target_shape=tuple(shapes[self.name]))


def features_key(task_name: str) -> str:
  """The batch / record key of the pooled features of a task's teacher (built-in teacher)."""
  return teacher_key(task_name) + FEATURES_SUFFIX


@dataclasses.dataclass(frozen=True)
class ForwardCubeClassifier(Task):
  """A two-class task whose test view is the plain forward cube and whose anomaly score is
  P(class 1): a normal object's motion is recognised as normal, so the other class flags it."""
  head_kind = "classifier"
  eval_view_name = "forward"

  def num_outputs(self, channels):
    return 2

  def loss(self, output, target):
    return cross_entropy(output, target)

  def eval_view(self, batch, rng):
    window = batch[WINDOW]
    cube = consecutive(window, self.num_frames)
    return cube, jnp.zeros((cube.shape[0],), jnp.int32)

  def score(self, output, target):
    return jax.nn.softmax(output.astype(jnp.float32))[:, 1]


def consecutive(window: jax.Array, num_frames: int) -> jax.Array:
  """The `num_frames` consecutive frames centred on the window's middle frame."""
  centre = window.shape[1] // 2
  half = num_frames // 2
  if centre < half:
    raise ValueError(f"stored window of {window.shape[1]} frames is too short for {num_frames}-frame "
                     "cubes; re-run prep with a larger prep.half_window")
  return window[:, centre - half:centre - half + num_frames]


def middle(window: jax.Array) -> jax.Array:
  """The centre frame `[B, S, S, C]`."""
  return window[:, window.shape[1] // 2]


def tile_frames(image: jax.Array, num_frames: int) -> jax.Array:
  """`[B, S, S, C]` -> `[B, T, S, S, C]` by repetition (image tasks feed the video backbone)."""
  return jnp.repeat(image[:, None], num_frames, axis=1)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1)[:, 0]


def mean_per_example(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).mean(axis=1)
