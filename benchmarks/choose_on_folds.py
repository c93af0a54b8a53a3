"""Chooses an evaluation setting on folds of the test videos, so no reported number comes from
the labels that chose it.

  python benchmarks/choose_on_folds.py --config=configs/ped2_cpu.py \
      --config.data.root=../shared/data/ped2 --run=v2=runs/ped2 --run=v2_t4=runs/ped2_t4

Each `--run=NAME=WORKDIR` is an evaluated run (`--mode=eval` wrote `eval/object_scores.npz` and
`metrics.json`). Candidates are every run's task set alone (`NAME`), with the appearance memory
(`NAME+memory`, where the run scored it) and the memory alone (`memory`). The test videos are
split into two folds (odd and even positions in the manifest). Each fold picks the candidate with
the best frame-level micro AUC on its own videos; the rule this project keeps: a candidate is
chosen when both folds pick it (then every video's setting was also picked by videos other than
itself), otherwise the script says so and the a-priori default stays. It prints one row per
candidate with the AUC on each fold and on all videos, and each fold's pick.
"""

import json
import os

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

import harness  # noqa: F401  (first: puts the repository root ahead of benchmarks/ on sys.path)
from data_prep import prepare
from ssmtl_jax import appearance_memory
from ssmtl_jax import evaluate
from ssmtl_jax import metrics
from ssmtl_jax import records
from ssmtl_jax import train as train_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "data set config (eval settings)",
                                          lock_config=True)
_RUNS = flags.DEFINE_multi_string("run", [], "NAME=WORKDIR of an evaluated run")


def candidate_scores(workdir: str) -> dict[str, np.ndarray]:
  """Object scores of the run's task set, with and without the memory, and the memory alone."""
  with open(os.path.join(workdir, "metrics.json")) as f:
    stats = json.load(f)["score_stats"]
  saved = np.load(os.path.join(workdir, "eval", "object_scores.npz"))
  tasks = {k[len("task_"):]: saved[k] for k in saved.files if k.startswith("task_")}
  stats = {k: tuple(v) for k, v in stats.items()} if stats else None
  mem = appearance_memory.NAME
  trained = {k: v for k, v in tasks.items() if k != mem}
  out = {"": evaluate.combine_scores(trained, stats and {k: stats[k] for k in trained})}
  if mem in tasks:
    out["+memory"] = evaluate.combine_scores(tasks, stats)
    out["memory"] = tasks[mem]
  return out, saved


def main(argv):
  del argv
  config = _CONFIG.value
  rows = {}
  labels = entry = None
  for spec in _RUNS.value:
    name, workdir = spec.split("=", 1)
    manifest = records.read_manifest(train_lib.records_dir(config, workdir))
    entry = manifest["splits"]["testing"]
    labels = prepare.ground_truth(config, manifest).frame_labels
    scores, saved = candidate_scores(workdir)
    for suffix, object_scores in scores.items():
      key = "memory" if suffix == "memory" else name + suffix
      frame_scores = {}
      for vid, (video, n) in enumerate(zip(entry["videos"], entry["frame_counts"])):
        sel = saved["video_id"] == vid
        frame_scores[video] = evaluate.video_frame_scores(
            n, entry.get("frame_stride", 1), saved["frame"][sel], object_scores[sel],
            saved["box"][sel], entry["frame_shapes"][vid], config.eval, config.eval.minmax)
      rows[key] = frame_scores
  videos = entry["videos"]
  folds = {"A": videos[0::2], "B": videos[1::2]}
  table = {}
  for key, frame_scores in rows.items():
    table[key] = {f: metrics.micro_auc({v: labels[v] for v in vs},
                                       {v: frame_scores[v] for v in vs})
                  for f, vs in folds.items()}
    table[key]["all"] = metrics.micro_auc(labels, frame_scores)
    table[key]["macro"] = metrics.macro_auc(labels, frame_scores)
  print(f"| candidate | fold A micro | fold B micro | all micro | all macro |")
  print("|---|---|---|---|---|")
  for key, r in table.items():
    print(f"| {key} | {100 * r['A']:.1f} | {100 * r['B']:.1f} | {100 * r['all']:.1f} | "
          f"{100 * r['macro']:.1f} |")
  picks = {f: max(table, key=lambda k, f=f: table[k][f]) for f in folds}
  print(f"fold A ({', '.join(folds['A'])}) picks {picks['A']}; "
        f"fold B ({', '.join(folds['B'])}) picks {picks['B']}")
  print(json.dumps({"picks": picks, "chosen": picks["A"] if picks["A"] == picks["B"] else None,
                    "table": table}))


if __name__ == "__main__":
  app.run(main)
