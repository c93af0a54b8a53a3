"""Runs the stages a `--mode` names: prep -> train -> eval."""

import json
import os
import time

from data_prep import atomic_write
from data_prep import prepare
from ssmtl_jax import backend
from ssmtl_jax import model_setup
from ssmtl_jax import preflight
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import score_video
from ssmtl_jax.train import loop as train_loop

MODES = ("prep", "train", "eval", "all", "score")


def resolve_paths(config, workdir: str) -> None:
  """The synthetic demo lives inside the workdir unless data.root says otherwise."""
  if config.data.synthetic and not config.data.root:
    config.data.root = os.path.join(workdir, "data")


def run(config, workdir: str, mode: str = "all", video: str | None = None,
        checkpoint: str | None = None, verify: bool = False) -> dict:
  """Runs the stages of `mode` and returns what the last one produced.

  `score` mode scores `video` (a file or frame folder) with the best checkpoint of the training
  workdir `checkpoint` and writes into `workdir`. Everything the stages will need is checked
  first (`preflight.check`). `verify`: prep reads every record's CRC of records it would skip.
  """
  if mode not in MODES:
    raise ValueError(f"unknown mode {mode!r}; valid: {MODES}")
  preflight.check(config, workdir, mode, video=video, checkpoint=checkpoint)
  if mode == "score":
    result = score_video.score_video(config, video, checkpoint, workdir)
    print(f"{video}: max frame score {result['max_frame_score']}; outputs in {workdir}", flush=True)
    return result
  os.makedirs(workdir, exist_ok=True)
  resolve_paths(config, workdir)
  atomic_write.write_text(os.path.join(workdir, "config.json"),
                          config.to_json_best_effort(indent=1))
  timings, result = {}, {}
  if mode in ("prep", "all"):
    start = time.perf_counter()
    result = prepare.prepare(config, model_setup.records_dir(config, workdir), verify=verify,
                             teacher_tasks=tasks_lib.needing_teacher(config.tasks),
                             depthwise=backend.teacher_depthwise())
    timings["prep_s"] = time.perf_counter() - start
  if mode in ("train", "all"):
    start = time.perf_counter()
    result = train_loop.train_and_evaluate(config, workdir)
    timings["train_s"] = time.perf_counter() - start
    print(f"training done: {json.dumps(result)}", flush=True)
    if result.get("preempted"):
      print("timings: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), flush=True)
      return result
  if mode in ("eval", "all"):
    start = time.perf_counter()
    result = evaluate.evaluate(config, workdir)
    timings["eval_s"] = time.perf_counter() - start
    print(f"{config.data.name}: frame-level micro AUC {100 * result['micro_auc']:.2f} %, "
          f"macro AUC {100 * result['macro_auc']:.2f} % (dummy-frame convention), "
          f"{100 * (result['macro_auc_skip_single_class'] or float('nan')):.2f} % "
          f"(single-class videos skipped)", flush=True)
    if "rbdc" in result:
      print(f"region-level: RBDC {100 * result['rbdc']:.2f} %, TBDC {100 * result['tbdc']:.2f} %",
            flush=True)
    unscored = set(result.get("unscored_tasks", ()))
    print("per-task micro AUC: " + ", ".join(
        f"{k}{' (unscored)' if k in unscored else ''} {100 * v:.1f}"
        for k, v in result["per_task_micro_auc"].items()), flush=True)
    print(f"metrics: {os.path.join(workdir, 'metrics.json')}, plots: {os.path.join(workdir, 'eval')}",
          flush=True)
  print("timings: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), flush=True)
  return result
