"""What every proxy task provides, and the cube slicing the tasks share.

A task turns a batch into its own input view and target, on device, with a `jax.random` key; it
names the head it needs, its per-example loss and its per-example anomaly score. `Task` declares
every field the rest of the code reads, so a new task is one file plus one line in the registry
(tasks/__init__.py): its options are its dataclass fields, with their defaults (the config's
`task_options.<name>` lists them); training and evaluation never name a task.

A batch is a dict: `batch["window"]` holds the stored windows `[B, L, S, S, C]` float in [0, 1]
(L = 2*half_window+1, centre frame at index L // 2) and, for tasks with teacher targets (T4, T7,
T9), `batch["teacher/<task>"]` holds the targets data prep computed for each cube.
"""

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from data_prep.records import FEATURES_SUFFIX
from data_prep.records import TEACHER_PREFIX

WINDOW = "window"
Batch = Mapping[str, jax.Array]


def runtime_field(default=None, **kwargs):
  """A task field the code fills in at run time (from the model config, the records or the
  task's assets), not a user option: `task_options` does not list it."""
  return dataclasses.field(default=default, metadata={"runtime": True}, **kwargs)


def teacher_key(task_name: str) -> str:
  """The batch / record key of a task's teacher targets."""
  return TEACHER_PREFIX + task_name


@dataclasses.dataclass(frozen=True)
class Task:
  """Base class. Subclasses set the class attributes and override the methods.

  Dataclass fields are the task's options (`task_options.<name>.<field>`, defaults here), except
  those made with `runtime_field`, which the code fills in.

  Attributes:
    num_frames: frames per model input (7 in the papers; set from `model.num_frames`).
    view_from: train on another task's training view, transformed by this task's own view
      function, and share that one view (one backbone pass) with it. E.g. T1 with
      `view_from="motion_irregularity"` reverses T2's consecutive-or-intermittent clip half the
      time: a reversed clip keeps T2's label, so both tasks train on one view (a method-level
      saving, off by default: the papers give each task its own view).

  Class attributes a task sets:
    name: its registry name; its head's parameters are `head_<name>`.
    head_kind: a head of `models/ssmtl.HEADS` ("classifier": `[B, K]` logits, "decoder": an
      image), or `head_module`: a Flax module class of the task's own, called as
      `head_module(num_outputs, width=, dtype=, name=)` (+ `num_up=` if it has that field).
    eval_view_name: tasks whose test-time views have the same name share one backbone pass;
      they must compute the same view (`views.check_shared_eval_views` verifies it).
    eval_passes: forward passes at test time (> 1: `next_eval_view` chains them, T6).
    scored: has a test-time anomaly score (T5 trains only).
    adversarial: trained through the negative-scale optimizer (`AdversarialTask`, T5).
    needs_teacher: targets come from a teacher run in data prep (`TeacherTask`: T4, T7, T9).
  """
  num_frames: int = runtime_field(7)
  view_from: str = ""

  name = "base"
  head_kind = "classifier"
  head_module = None
  eval_view_name = "base"
  eval_passes = 1
  scored = True
  adversarial = False
  needs_teacher = False

  @classmethod
  def default_options(cls) -> dict[str, Any]:
    """The task's options (its fields that are not `runtime_field`s) with their defaults."""
    return {f.name: f.default for f in dataclasses.fields(cls)
            if not f.metadata.get("runtime") and f.default is not dataclasses.MISSING}

  def with_assets(self, config, window_shape: tuple[int, ...]) -> "Task":
    """This task with what it loads for training only (T5: its out-of-distribution images),
    given the config and the stored windows' `[L, S, S, C]`; most tasks load nothing."""
    del config, window_shape
    return self

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
  target_shape: tuple = runtime_field(())

  needs_teacher = True

  def teacher_targets(self):
    return {teacher_key(self.name): tuple(self.target_shape)}

  def with_teacher_shapes(self, shapes):
    if self.name not in shapes:
      raise KeyError(self.name)
    return dataclasses.replace(self, target_shape=tuple(shapes[self.name]))


@dataclasses.dataclass(frozen=True)
class AdversarialTask(Task):
  """A task whose gradient reaches the shared backbone through a second optimizer with a
  negative learning rate (T5, train/optimizer.py): the backbone learns to represent the task's
  inputs poorly. At most one per config; it trains only and is not in the validation loss.

  Attributes:
    start_epoch: the adversarial update is enabled from this epoch (paper: 5).
    backbone_scale: the backbone's learning-rate factor for this task's gradient (paper: −0.2).
  """
  start_epoch: int = 5
  backbone_scale: float = -0.2

  adversarial = True
  scored = False


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
