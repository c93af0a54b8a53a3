"""Proxy task registry: adding a task is one module and one line here (or a `register` call from
the task's own module)."""

from ssmtl_jax.tasks import arrow_of_time
from ssmtl_jax.tasks import base
from ssmtl_jax.tasks import distillation
from ssmtl_jax.tasks import inpainting
from ssmtl_jax.tasks import jigsaw
from ssmtl_jax.tasks import middle_box
from ssmtl_jax.tasks import motion_irregularity
from ssmtl_jax.tasks import pose
from ssmtl_jax.tasks import pseudo_anomaly
from ssmtl_jax.tasks import segmentation

TASKS = {
    "arrow_of_time": arrow_of_time.ArrowOfTime,              # T1
    "motion_irregularity": motion_irregularity.MotionIrregularity,  # T2
    "middle_box": middle_box.MiddleBox,                      # T3
    "distillation": distillation.Distillation,               # T4 (SSMTL; teacher in data prep)
    "pseudo_anomaly": pseudo_anomaly.PseudoAnomaly,          # T5 (SSMTL++v1)
    "inpainting": inpainting.Inpainting,                     # T6 (SSMTL++v2)
    "segmentation": segmentation.Segmentation,               # T7 (teacher in data prep)
    "jigsaw": jigsaw.Jigsaw,                                 # T8
    "pose": pose.Pose,                                       # T9 (teacher in data prep)
}


def register(task_class: type[base.Task]) -> type[base.Task]:
  """Adds a task class to the registry under its `name` (usable as a class decorator).

  Raises:
    ValueError: another class is registered under that name.
  """
  existing = TASKS.get(task_class.name)
  if existing is not None and existing is not task_class:
    raise ValueError(f"a task named {task_class.name!r} is registered already ({existing})")
  TASKS[task_class.name] = task_class
  return task_class


def default_options() -> dict[str, dict]:
  """Task name -> its options with their defaults, for every registered task (the config's
  `task_options`)."""
  return {name: cls.default_options() for name, cls in TASKS.items()}


def needing_teacher(names) -> tuple[str, ...]:
  """The tasks among `names` that learn from a teacher's outputs (T4, T7, T9); unknown names are
  left to `build_tasks` to report."""
  return tuple(name for name in names if name in TASKS and TASKS[name].needs_teacher)


def build_tasks(names, options=None, num_frames: int = 7) -> list[base.Task]:
  """Instantiates tasks by name.

  Args:
    names: task names (keys of TASKS).
    options: task name -> dict of constructor keyword arguments.
    num_frames: frames per model input.

  Returns:
    The task objects in the given order.
  """
  options = options or {}
  out = []
  for name in names:
    if name not in TASKS:
      raise ValueError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    out.append(TASKS[name](num_frames=num_frames, **dict(options.get(name, {}))))
  by_name = {t.name: t for t in out}
  for task in out:
    source = by_name.get(task.view_from) if task.view_from else None
    if task.view_from and (source is None or source.view_from or source is task):
      raise ValueError(f"task_options.{task.name}.view_from={task.view_from!r} must name another "
                       f"configured task that makes its own view; tasks: {sorted(by_name)}")
  return out
