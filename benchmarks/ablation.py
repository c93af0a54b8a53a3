"""Ablation runner: trains task sets / backbones on one data set and tabulates the AUCs.

  python benchmarks/ablation.py --config=configs/ped2_cpu.py \
      --config.data.root=../shared/data/ped2 --workdir=runs/ablation_ped2 \
      --variants=t123,v1,v2,v2_ssmctb --record

Each variant trains in `<workdir>/<variant>` on records prepared once in `<workdir>/records`,
with everything else as in the config (same seed, epochs, batch), then is evaluated. A variant
whose `metrics.json` exists is not run again, and an interrupted one resumes exactly, so the
command can simply be rerun. The table (like the paper's Table 4) goes to `<workdir>/ablation.md`
and, with `--record`, to benchmarks/RESULTS.md.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

import harness  # noqa: F401  (first: puts the repository root ahead of benchmarks/ on sys.path)
from ssmtl_jax import workflow

T123 = ("arrow_of_time", "motion_irregularity", "middle_box")
# name -> (description, tasks, config changes)
VARIANTS = {
    "t123": ("T1+T2+T3", T123, {}),
    # Needs --config.prep.teachers.distillation=efficientnet_lite0 (or onnx:<classifier>); the
    # records are shared, so set it for the whole ablation.
    "ssmtl": ("T1+T2+T3+T4 (SSMTL, plain 3D CNN)", T123 + ("distillation",),
              {"model.cvt_blocks": 0}),
    "v1": ("T1+T2+T3+T5 (SSMTL++v1)", T123 + ("pseudo_anomaly",), {}),
    "v2": ("T1+T2+T3+T6 (SSMTL++v2)", T123 + ("inpainting",), {}),
    "v2_ssmctb": ("T1+T2+T3+T6 + 3D SSMCTB", T123 + ("inpainting",), {"model.ssmctb": True}),
    "v2_jigsaw": ("T1+T2+T3+T6+T8", T123 + ("inpainting", "jigsaw"), {}),
    "v2_cvt2d": ("SSMTL++v2, 2D CvT", T123 + ("inpainting",), {"model.cvt_mode": "2d"}),
    # Method-level saving: T1 and T2 train on one shared view (3 backbone passes, not 4).
    "v2_shared": ("SSMTL++v2, T1/T2 share a view", T123 + ("inpainting",),
                  {"task_options.arrow_of_time": {"view_from": "motion_irregularity"}}),
}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Base configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for the records and one run per variant.")
_VARIANTS = flags.DEFINE_list("variants", ["t123", "v1", "v2", "v2_ssmctb"],
                              f"Variants to run, from {sorted(VARIANTS)}.")
_RECORD = flags.DEFINE_bool("record", False, "Append the table to benchmarks/RESULTS.md.")
flags.mark_flags_as_required(["config", "workdir"])


def variant_config(base, name: str):
  """The base config with the variant's tasks and changes; T5 starts after a quarter of the
  epochs (the paper's epoch 5 of 20), so shortened runs still train it adversarially."""
  if name not in VARIANTS:
    raise ValueError(f"unknown variant {name!r}; valid: {sorted(VARIANTS)}")
  _, tasks, changes = VARIANTS[name]
  config = base.copy_and_resolve_references()
  config.unlock()
  config.tasks = tasks
  for key, value in changes.items():
    section, field = key.split(".")
    config[section][field] = value
  if "pseudo_anomaly" in tasks and "pseudo_anomaly" not in config.task_options:
    config.task_options.pseudo_anomaly = {"start_epoch": max(1, config.train.epochs // 4)}
  config.data.records_dir = os.path.join(_WORKDIR.value, "records")
  if config.data.synthetic and not config.data.root:  # one generated data set for all variants
    config.data.root = os.path.join(_WORKDIR.value, "data")
  config.lock()
  return config


def run_variant(base, name: str) -> dict:
  workdir = os.path.join(_WORKDIR.value, name)
  path = os.path.join(workdir, "metrics.json")
  if not os.path.exists(path):
    start = time.perf_counter()
    result = workflow.run(variant_config(base, name), workdir, "all")
    if result.get("preempted"):  # SIGTERM: the variant resumes when the command is rerun
      print(f"{name}: preempted; rerun the same command to continue", flush=True)
      sys.exit(0)
    with open(os.path.join(workdir, "wall_s.txt"), "w") as f:
      f.write(f"{time.perf_counter() - start:.0f}\n")
  with open(path) as f:
    result = json.load(f)
  wall = os.path.join(workdir, "wall_s.txt")
  result["wall_s"] = float(open(wall).read()) if os.path.exists(wall) else float("nan")
  return result


def table(results: dict[str, dict]) -> str:
  lines = ["| variant | micro AUC (%) | macro AUC (%) | per task micro AUC (%) | wall (min) |",
           "|---|---|---|---|---|"]
  for name, r in results.items():
    per_task = ", ".join(f"{k} {100 * v:.1f}" for k, v in r["per_task_micro_auc"].items())
    lines.append(f"| {VARIANTS[name][0]} | {100 * r['micro_auc']:.1f} | "
                 f"{100 * r['macro_auc']:.1f} | {per_task} | {r['wall_s'] / 60:.0f} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  base = _CONFIG.value
  results = {name: run_variant(base, name) for name in _VARIANTS.value}
  text = table(results)
  print(text, flush=True)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  with open(os.path.join(_WORKDIR.value, "ablation.md"), "w") as f:
    f.write(text)
  if _RECORD.value:
    with open(harness.RESULTS, "a") as f:
      f.write(f"\n`python {' '.join(sys.argv)}`\n\n{text}")


if __name__ == "__main__":
  app.run(main)
