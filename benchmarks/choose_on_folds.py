"""Chooses the appearance memory's share of the object score on folds of the test videos, so that
each video's reported number comes from a setting other videos chose.

  python benchmarks/choose_on_folds.py --config=configs/ped2_cpu.py \
      --config.data.root=../shared/data/ped2 --run=runs/ped2_s0 --run=runs/ped2_s1 ...

Each `--run=WORKDIR` is an evaluated run with the memory on (`--mode=eval` wrote
`eval/object_scores.npz` and `metrics.json`); several runs (seeds) are averaged. Candidates:
the memory's share `w` of the object score (the task scores share the rest equally), from 0
(tasks alone) to 1 (memory alone), and `equal` (the memory as one more task score). Two rules
are reported:

- two folds (odd and even positions in the manifest): each fold picks the candidate with the best
  mean micro AUC on its own videos; a pick both folds make is chosen by the other half for every
  video;
- leave one video out: for each video, the candidate with the best mean micro AUC over the other
  videos; the most frequent pick is the one to ship, and the table shows, per candidate, the micro
  AUC on all videos and on the videos that picked it.
"""

import collections
import json
import os

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

import harness  # noqa: F401  (first: puts the repository root ahead of benchmarks/ on sys.path)
from data_prep import prepare
from data_prep import records
from ssmtl_jax import model_setup
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import metrics

_CONFIG = config_flags.DEFINE_config_file("config", None, "data set config (eval settings)",
                                          lock_config=True)
_RUNS = flags.DEFINE_multi_string("run", [], "workdir of an evaluated run (memory on)")
_SHARES = flags.DEFINE_list("shares", ["0", "equal", "0.33", "0.5", "0.67", "0.8", "1"],
                            "candidate shares of the memory")


def frame_scores_by_share(config, workdir: str, entry, shares) -> dict[str, dict]:
  """share -> video -> frame scores of one evaluated run."""
  with open(os.path.join(workdir, "metrics.json")) as f:
    saved_metrics = json.load(f)
  stats = evaluate.parse_score_stats(saved_metrics["score_stats"])
  fusion = {"transform": saved_metrics.get("score_transform", "none"), "clip": config.eval.clip_z}
  saved = np.load(os.path.join(workdir, "eval", "object_scores.npz"), allow_pickle=False)
  scores = {k[len("task_"):]: saved[k] for k in saved.files if k.startswith("task_")}
  if appearance_memory.NAME not in scores:
    raise ValueError(f"{workdir} was evaluated without the appearance memory "
                     "(--config.eval.appearance_memory=1)")
  out = {}
  for share in shares:
    if share == "0":
      used = {k: v for k, v in scores.items()
              if k != appearance_memory.NAME and k not in config.eval.unscored_tasks}
      object_scores = evaluate.combine_scores(used, {k: stats[k] for k in used}, **fusion)
    else:
      weight = -1.0 if share == "equal" else float(share)
      weights = evaluate.score_weights(scores, weight, config.eval.unscored_tasks)
      object_scores = evaluate.combine_scores(scores, stats, weights, **fusion)
    out[share] = evaluate.split_frame_scores(entry, saved["video_id"], saved["frame"],
                                             saved["box"], object_scores, config.eval,
                                             config.eval.minmax)
  return out


def main(argv):
  del argv
  config = _CONFIG.value
  manifest = records.read_manifest(model_setup.records_dir(config, _RUNS.value[0]))
  entry = manifest["splits"]["testing"]
  labels = prepare.ground_truth(config, manifest).frame_labels
  shares = _SHARES.value
  runs = [frame_scores_by_share(config, w, entry, shares) for w in _RUNS.value]
  videos = list(entry["videos"])

  def micro(share, vids):
    """Mean over runs of the micro AUC over `vids`."""
    return float(np.mean([metrics.micro_auc({v: labels[v] for v in vids},
                                            {v: run[share][v] for v in vids}) for run in runs]))

  folds = {"A": videos[0::2], "B": videos[1::2]}
  fold_picks = {f: max(shares, key=lambda s, vs=vs: micro(s, vs)) for f, vs in folds.items()}
  loo_picks = {v: max(shares, key=lambda s, v=v: micro(s, [u for u in videos if u != v]))
               for v in videos}
  counts = collections.Counter(loo_picks.values())
  print("| memory share | fold A micro | fold B micro | all micro | all macro | "
        "videos whose other videos pick it |")
  print("|---|---|---|---|---|---|")
  for s in shares:
    macro = np.mean([metrics.macro_auc(labels, run[s]) for run in runs])
    picked = [v for v in videos if loo_picks[v] == s]
    print(f"| {s} | {100 * micro(s, folds['A']):.1f} | {100 * micro(s, folds['B']):.1f} | "
          f"{100 * micro(s, videos):.1f} | {100 * macro:.1f} | {', '.join(picked) or '-'} |")
  print(f"two folds: A ({', '.join(folds['A'])}) picks {fold_picks['A']}, "
        f"B ({', '.join(folds['B'])}) picks {fold_picks['B']}")
  print(f"leave one video out: {dict(counts)} (share: videos)")
  print(json.dumps({"runs": _RUNS.value, "fold_picks": fold_picks, "loo_picks": loo_picks,
                    "most_picked": counts.most_common(1)[0][0]}))


if __name__ == "__main__":
  app.run(main)
