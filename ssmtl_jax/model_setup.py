"""What training, evaluation and scoring all need: the records, the tasks sized by them, the
model, the device mesh, and the training state's shape for restoring a checkpoint.

Nothing here trains: evaluation and scoring import this module, never the training loop.
"""

import os
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

from data_prep import records
from ssmtl_jax import backend
from ssmtl_jax import sharding
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.data import input_pipeline
from ssmtl_jax.models import ssmtl
from ssmtl_jax.tasks import views as task_views


def records_dir(config, workdir: str) -> str:
  return config.data.records_dir or os.path.join(workdir, "records")


class ModelSetup:
  """The records, tasks, model and mesh of a config and workdir (no optimizer state, no data
  iterator: the training loop adds those in `train/loop.TrainingSetup`).

  Attributes:
    records_dir, manifest: the prepared records and their manifest.
    window_shape: `[L, S, S, C]` of a stored window.
    tasks: the configured tasks, teacher tasks sized by the records.
    teacher_keys, batch_shapes: the batch entries the tasks read, and their per-example shapes.
    model, mesh: the network and the device mesh.
    train_videos, val_videos: the training split's videos that train, and those held out (the
      validation loss during training, the normal-data statistics at evaluation).
  """

  def __init__(self, config, workdir: str):
    self.config = config
    self.records_dir = records_dir(config, workdir)
    self.manifest = records.read_manifest(self.records_dir)
    self.window_shape = (self.manifest["window_length"], self.manifest["crop_size"],
                         self.manifest["crop_size"], self.manifest["channels"])
    self.tasks = attach_teacher_shapes(build_tasks(config), self.manifest, self.records_dir)
    self.teacher_keys = tuple(k for t in self.tasks for k in t.teacher_targets())
    self.batch_shapes = batch_shapes(self.window_shape, self.tasks)
    task_views.check_shared_eval_views(self.tasks, self.window_shape, teacher_shapes(self.tasks))
    self.model = build_model(config, self.tasks, self.manifest["channels"])
    self.mesh = sharding.make_mesh()
    num_train_videos = len(self.manifest["splits"]["training"]["videos"])
    self.train_videos, self.val_videos = input_pipeline.split_videos(
        num_train_videos, config.train.val_fraction, config.seed)

  def abstract_state(self):
    """The training state's shapes, dtypes and shardings, for restoring a checkpoint."""
    return abstract_train_state(self.config, self.model, self.tasks, self.batch_shapes,
                                self.mesh)


def abstract_train_state(config, model, tasks, shapes, mesh):
  """The shapes, dtypes and shardings of the training state a checkpoint holds (nothing is
  allocated): the optimizer only gives the state its structure."""
  from ssmtl_jax.train import optimizer  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import state as train_state  # pylint: disable=g-import-not-at-top
  return jax.eval_shape(lambda: train_state.init_state(
      config, model, tasks, optimizer.build_optimizer(config, tasks), shapes, mesh))


def attach_teacher_shapes(tasks, manifest, where: str):
  """Gives each teacher-target task (T4, T7, T9) the shapes of its targets in the records, which
  size its head; a clear error when the records were prepared without that teacher."""
  teachers = manifest.get("teachers", {})
  shapes = {name: tuple(entry["shape"]) for name, entry in teachers.items()}
  out = []
  for task in tasks:
    try:
      out.append(task.with_teacher_shapes(shapes))
    except KeyError:
      raise ValueError(
          f"task {task.name} needs teacher targets, but the records in {where} were prepared "
          f"without them (teachers there: {sorted(teachers) or 'none'}); set "
          f"--config.prep.teachers.{task.name}=efficientnet_lite0 (or onnx:/path/to/model.onnx) "
          "and prepare again") from None
  return out


def teacher_shapes(tasks) -> dict[str, tuple[int, ...]]:
  """Batch key -> per-example shape of every teacher target the tasks read."""
  shapes = {}
  for task in tasks:
    shapes.update(task.teacher_targets())
  return shapes


def batch_shapes(window_shape, tasks) -> dict[str, tuple[int, ...]]:
  """Per-example shapes of a batch's entries: the window and each task's teacher targets."""
  return {tasks_lib.base.WINDOW: tuple(window_shape), **teacher_shapes(tasks)}


def build_tasks(config) -> list[tasks_lib.base.Task]:
  """The configured tasks with their options."""
  return tasks_lib.build_tasks(config.tasks, config.task_options.to_dict(),
                               num_frames=config.model.num_frames)


def build_model(config, tasks: Sequence[tasks_lib.base.Task], channels: int) -> ssmtl.SSMTLModel:
  """The multi-task network of `config.model` with one head per task, its convolutions lowered
  for this platform (`backend.model_convs`)."""
  m = config.model
  backbone = dict(trunk=m.trunk, embed_dim=m.embed_dim, cvt_blocks=m.cvt_blocks,
                  cvt_heads=m.cvt_heads, cvt_mode=m.cvt_mode, kv_stride=tuple(m.kv_stride),
                  mlp_ratio=m.mlp_ratio, ssmctb=m.ssmctb, **backend.model_convs(m))
  specs = tuple((t.name, t.head_module or t.head_kind, t.num_outputs(channels)) for t in tasks)
  return ssmtl.SSMTLModel(head_specs=specs, backbone=backbone, head_width=m.head_width,
                          dtype=backend.DTYPES[backend.resolve_dtype(m.dtype)])


def init_variables(model: ssmtl.SSMTLModel, tasks, batch_shapes: Mapping[str, Sequence[int]],
                   rng: jax.Array):
  """Parameters and BatchNorm stats for batches whose entries have the per-example shapes
  `batch_shapes` (`{"window": [L, S, S, C], "teacher/<task>": ...}`)."""
  def init(rng):
    batch = {k: jnp.zeros((2, *shape), jnp.float32) for k, shape in batch_shapes.items()}
    (views, _), routes = task_views.train_views(tasks, batch, rng)
    return model.init(rng, views, routes, False)

  # Compiled in one piece (an eager, op-by-op init compiles every draw on its own), in the
  # platform's RNG setting for parameters (backend.init_rng_context).
  with backend.init_rng_context():
    return jax.jit(init)(rng)
