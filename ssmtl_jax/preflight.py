"""Checks, in seconds and before any work, everything a later stage of a `--mode` will need.

Without it a missing label file is found after prep and training (an hour and more on a real
data set), a batch size of 0 divides by zero in the training loop and a full disk fails half-way
through writing records. `check` reads the config, the file layout, the ground truth and the
free disk space, and raises one `PreflightError` listing every problem (one line each), or
returns having changed nothing.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax

from data_prep import prepare
from data_prep import readers
from data_prep import records
from data_prep import teachers as teachers_lib
from ssmtl_jax import cli
from ssmtl_jax import model_setup
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import evaluate
from ssmtl_jax.train import state as train_state

# Objects per sampled frame assumed by the records' size estimate (UCSD Ped2 gives 8.5).
_OBJECTS_PER_FRAME = 8
# Frame files whose completeness is listed in one error (the rest are counted).
_LIST_AT_MOST = 5


class PreflightError(cli.UserError):
  """Every problem found before the work started, one per line."""

  def __init__(self, problems: list[str]):
    self.problems = list(problems)
    if len(problems) == 1:
      text = problems[0]
    else:
      text = (f"{len(problems)} problems, found before any work started:\n"
              + "\n".join(f"  - {p}" for p in problems))
    super().__init__(text)


def _collect(problems: list[str], check, *args) -> Any:
  """Runs `check(*args)`; a ValueError/FileNotFoundError/ModuleNotFoundError it raises becomes a
  problem line. Returns what `check` returned (None on a problem)."""
  try:
    return check(*args)
  except (ValueError, TypeError, KeyError, FileNotFoundError, ModuleNotFoundError) as e:
    problems.append(str(e.args[0] if isinstance(e, KeyError) and e.args else e))
    return None


def config_problems(config, mode: str) -> list[str]:
  """Values out of range and names that do not exist, for the stages of `mode`."""
  problems = []
  tc, ec, p = config.train, config.eval, config.prep
  devices = jax.device_count()
  if mode in ("train", "all"):
    if tc.batch_size < 1:
      problems.append(f"train.batch_size={tc.batch_size}: must be >= 1 (a multiple of the "
                      f"{devices} device(s))")
    elif tc.batch_size % devices:
      problems.append(f"train.batch_size={tc.batch_size} is not divisible by the {devices} "
                      f"devices; use a multiple of {devices}")
    if tc.num_steps <= 0 and tc.epochs < 1:
      problems.append(f"train.epochs={tc.epochs}: must be >= 1 (or set train.num_steps > 0)")
    if not tc.learning_rate > 0:
      problems.append(f"train.learning_rate={tc.learning_rate}: must be > 0")
    if not 0.0 <= tc.val_fraction < 1.0:
      problems.append(f"train.val_fraction={tc.val_fraction}: a share of the training videos in "
                      "[0, 1)")
    _collect(problems, train_state.check_ema_decay, tc.ema_decay)
  if mode in ("train", "eval", "all", "score"):
    if ec.batch_size < 1:
      problems.append(f"eval.batch_size={ec.batch_size}: must be >= 1")
    elif ec.batch_size % devices:
      problems.append(f"eval.batch_size={ec.batch_size} is not divisible by the {devices} "
                      f"devices; use a multiple of {devices}")
    _collect(problems, evaluate.check_config, ec)
  for field in ("train_frame_stride", "test_frame_stride", "records_per_shard", "half_window",
                "crop_size"):
    if int(p[field]) < 1:
      problems.append(f"prep.{field}={p[field]}: must be >= 1")
  if p.damaged_frames not in readers.DAMAGED_FRAME_POLICIES:
    problems.append(f"prep.damaged_frames={p.damaged_frames!r}: one of "
                    f"{readers.DAMAGED_FRAME_POLICIES}")
  tasks = _collect(problems, tasks_lib.build_tasks, config.tasks, config.task_options.to_dict(),
                   config.model.num_frames)
  for name in config.task_weights.keys():
    if name not in config.tasks:
      problems.append(f"task_weights.{name}: not a configured task; tasks: {list(config.tasks)}"
                      + cli.suggest(name, config.tasks))
  if mode in ("prep", "all", "score"):
    needed = tasks_lib.needing_teacher(config.tasks)
    for task in needed:
      if not p.teachers.get(task):
        problems.append(f"task {task} learns from a teacher's outputs: set "
                        f"--config.prep.teachers.{task}=efficientnet_lite0 (or onnx:<path>)")
    for task, spec in p.teachers.items():
      if spec:
        problem = teachers_lib.spec_problem(spec, task)
        if problem:
          problems.append(problem)
  if (ec.appearance_memory > 0 and mode in ("prep", "all")
      and p.teachers.get("distillation") != "efficientnet_lite0"):
    problems.append(f"eval.appearance_memory={ec.appearance_memory} scores the built-in teacher's "
                    "features: set --config.prep.teachers.distillation=efficientnet_lite0 (or "
                    "--config.eval.appearance_memory=0)")
  if tasks and mode in ("train", "eval", "all", "score") and ec.unscored_tasks:
    _check_unscored_tasks(problems, tasks, ec)
  if tasks and mode in ("train", "all") and any(t.adversarial for t in tasks):
    if config.ood.data_dir and not os.path.isdir(config.ood.data_dir):
      problems.append(f"ood.data_dir={config.ood.data_dir}: no such folder (unset it to use the "
                      "offline images)")
  return problems


def _check_unscored_tasks(problems: list[str], tasks, ec):
  """eval.unscored_tasks must name scores this config computes and leave at least one."""
  names = [t.name for t in tasks if t.scored]
  if ec.appearance_memory > 0:
    names.append(appearance_memory.NAME)
  for name in ec.unscored_tasks:
    if name not in names:
      problems.append(f"eval.unscored_tasks names {name!r}, which this config does not score; "
                      f"its scores: {names}" + cli.suggest(name, names))
  if names and set(names) <= set(ec.unscored_tasks):
    problems.append(f"eval.unscored_tasks={list(ec.unscored_tasks)} leaves no score to combine: "
                    f"keep at least one of {names}")


def _frame_counts(video_paths: dict[str, Any], problems: list[str], check_files: bool
                  ) -> dict[str, int]:
  """Frames of each video, counted without decoding; with `check_files`, a truncated frame file
  is a problem (named)."""
  counts, damaged = {}, []
  for name, path in video_paths.items():
    if not os.path.isdir(path):
      count = _collect(problems, readers.count_frames, path)
      if count is not None:
        counts[name] = count
      continue
    files = _collect(problems, readers.list_frame_files, path)  # listed once: count and check
    if files is None:
      continue
    counts[name] = len(files)
    if check_files:
      damaged += [f"{frame} ({why})" for frame in files
                  if (why := readers.frame_file_problem(frame))]
  if damaged:
    listed = ", ".join(damaged[:_LIST_AT_MOST])
    more = f" and {len(damaged) - _LIST_AT_MOST} more" if len(damaged) > _LIST_AT_MOST else ""
    problems.append(f"damaged frame file(s): {listed}{more}; replace them, or set "
                    "--config.prep.damaged_frames=repeat_previous to use the previous frame in "
                    "their place")
  return counts


def estimated_record_bytes(config, frame_counts: dict[str, dict[str, int]]) -> int:
  """A rough size of the records prep will write: `_OBJECTS_PER_FRAME` objects per sampled
  frame, each a window of pixels plus its teacher targets."""
  p = config.prep
  channels = 1 if config.data.grayscale else 3
  per_object = (2 * p.half_window + 1) * p.crop_size ** 2 * channels + 256
  if any(p.teachers.values()):
    per_object += (1000 + 1280) * 2  # the built-in teacher's float16 targets
  stride_fields = dict(prepare.SPLITS)
  frames = sum(sum(counts.values()) // max(1, int(p[stride_fields[split]]))
               for split, counts in frame_counts.items())
  return frames * _OBJECTS_PER_FRAME * per_object


def _existing_parent(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def _disk_problems(config, records_dir: str, counts: dict[str, dict[str, int]]) -> list[str]:
  """An error when the records' disk has less than half the estimated space (the estimate is
  rough), a warning when it has less than the estimate."""
  need = estimated_record_bytes(config, counts)
  where = _existing_parent(records_dir)
  free = shutil.disk_usage(where).free
  if free < need // 2:
    return [f"{records_dir}: {free / 1e9:.2f} GB free on its disk ({where}), the records need "
            f"about {need / 1e9:.2f} GB (estimated at {_OBJECTS_PER_FRAME} objects per sampled "
            "frame); free some space or set --config.data.records_dir to a larger disk"]
  if free < need:
    print(f"warning: {free / 1e9:.2f} GB free for records estimated at about {need / 1e9:.2f} GB "
          f"in {records_dir}", flush=True)
  return []


def data_problems(config, workdir: str, mode: str) -> list[str]:
  """The data a `mode` reads: videos on disk, ground truth that matches them, records, and free
  disk space for the records prep would write."""
  problems: list[str] = []
  records_dir = model_setup.records_dir(config, workdir)
  root = config.data.root or (os.path.join(workdir, "data") if config.data.synthetic else "")
  generated_later = config.data.synthetic and not os.path.exists(
      os.path.join(root, "synthetic.json"))
  runs_prep = mode in ("prep", "all") and not prepare.is_prepared(config, records_dir,
                                                                  check_shards=False)
  if mode in ("prep", "all") and not generated_later:
    if not root:
      return ["data.root is empty: set --config.data.root=/path/to/dataset"]
    if not os.path.isdir(root):
      return [f"data.root={root}: no such folder; set --config.data.root to the data set"]
    counts = {}
    for split, _ in prepare.SPLITS:
      videos = _collect(problems, readers.list_split_videos, root, split)
      if videos is not None:
        counts[split] = _frame_counts(videos, problems, check_files=(
            runs_prep and config.prep.damaged_frames == "error"))
    if mode == "all" and "testing" in counts:
      config_view = _with_root(config, root)
      _collect(problems, prepare.ground_truth_for, config_view, counts["testing"], False)
    if runs_prep and len(counts) == len(prepare.SPLITS):
      problems += _disk_problems(config, records_dir, counts)
  if runs_prep and generated_later:  # the synthetic demo: its size follows from its options
    o = config.data.synthetic_options
    counts = {"training": {str(i): o.num_frames for i in range(o.num_train)},
              "testing": {str(i): o.num_frames for i in range(o.num_test)}}
    problems += _disk_problems(config, records_dir, counts)
  if mode in ("train", "eval"):
    manifest = _collect(problems, records.read_manifest, records_dir)
    if manifest is not None and mode == "eval":
      _collect(problems, prepare.ground_truth, _with_root(config, root), manifest)
  return problems


def _with_root(config, root: str):
  """`config` with `data.root` filled in (the synthetic demo's default lives in the workdir)."""
  if config.data.root == root:
    return config
  view = config.copy_and_resolve_references()
  with view.unlocked():
    view.data.root = root
  return view


def score_problems(video: str | None, checkpoint: str | None) -> list[str]:
  problems = []
  if not video or not checkpoint:
    return ["--mode=score needs --video=<file or frame folder> and --checkpoint=<training "
            "workdir>"]
  if not os.path.exists(video):
    problems.append(f"--video={video}: no such file or folder")
  if not os.path.isdir(os.path.join(checkpoint, "checkpoints")):
    problems.append(f"--checkpoint={checkpoint} holds no checkpoints/ folder; pass the workdir "
                    "of a training run")
  return problems


def check(config, workdir: str, mode: str, video: str | None = None,
          checkpoint: str | None = None) -> None:
  """Raises PreflightError naming every problem `mode` would run into; returns silently when
  there is none."""
  problems = config_problems(config, mode)
  if mode == "score":
    problems += score_problems(video, checkpoint)
  else:
    problems += data_problems(config, workdir, mode)
  if problems:
    raise PreflightError(problems)
