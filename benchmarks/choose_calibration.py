"""Chooses how task scores are put on one scale before they are averaged (`eval.score_transform`,
`eval.clip_z`) and which of them form the object score (`eval.unscored_tasks`), on evaluated
runs of a development set.

  python benchmarks/choose_calibration.py --config=configs/demo.py \\
      --config.data.synthetic_options.seed=1 --config.data.root=runs/demo_dev_data \\
      --config.data.records_dir=runs/demo_dev_records \\
      --run=runs/demo_dev_s0 --run=runs/demo_dev_s1 --run=runs/demo_dev_s2

Each `--run=WORKDIR` is a run that `--mode=eval` scored with this code: it saved the test
objects' per-task scores (`eval/object_scores.npz`) and the normal reference objects' ones
(`eval/reference_scores.npz`). Every candidate `transform/clip[/unscored]` re-standardises both
with `evaluate.reference_stats` and re-combines them with the config's memory share, exactly as
`--mode=eval` would with `--config.eval.score_transform=transform --config.eval.clip_z=clip
--config.eval.unscored_tasks=(unscored)`; `unscored` is a `+`-joined list of task names
(`none/0/inpainting+arrow_of_time`), absent or empty for every score.
Prints one row per candidate: micro AUC of each run, their mean and the worst run, then one JSON
line.
"""

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
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import metrics

_CONFIG = config_flags.DEFINE_config_file("config", None, "data set config (eval settings)",
                                          lock_config=True)
_RUNS = flags.DEFINE_multi_string("run", [], "workdir of a run evaluated with this code")
_CANDIDATES = flags.DEFINE_list("candidates", ["none/0", "none/2", "none/3", "none/4", "log/0",
                                               "log/2", "log/3", "log/4"],
                                "transform/clip[/unscored+tasks] candidates to compare")


def load_run(workdir: str):
  """(test scores by task, reference scores by task, the saved test objects) of one run."""
  test = np.load(os.path.join(workdir, "eval", "object_scores.npz"), allow_pickle=False)
  path = os.path.join(workdir, "eval", evaluate.REFERENCE_SCORES_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} does not exist: run --mode=eval in {workdir} with this code "
                            "(with eval.standardize on) to save the reference objects' scores")
  reference = np.load(path, allow_pickle=False)

  def by_task(npz):
    return {k[len("task_"):]: npz[k] for k in npz.files if k.startswith("task_")}
  return by_task(test), by_task(reference), test


def parse_candidate(candidate: str) -> tuple[str, float, tuple[str, ...]]:
  """`transform/clip[/task+task]` -> (transform, clip, unscored task names)."""
  parts = candidate.split("/")
  if len(parts) not in (2, 3):
    raise app.UsageError(f"--candidates: {candidate!r} is not transform/clip[/task+task]")
  unscored = tuple(n for n in parts[2].split("+") if n) if len(parts) == 3 else ()
  return parts[0], float(parts[1]), unscored


def micro_auc(config, entry, labels, workdir: str, transform: str, clip: float,
              unscored: tuple[str, ...] = ()) -> float:
  """Micro AUC of one run with its scores re-standardised on `transform`, clipped at `clip` and
  combined without the `unscored` ones."""
  scores, reference, saved = load_run(workdir)
  stats = evaluate.reference_stats(reference, transform)
  weights = evaluate.score_weights(scores, config.eval.appearance_memory_weight, unscored)
  object_scores = evaluate.combine_scores(scores, stats, weights, transform, clip)
  frame_scores = evaluate.split_frame_scores(entry, saved["video_id"], saved["frame"],
                                             saved["box"], object_scores, config.eval,
                                             config.eval.minmax)
  return metrics.micro_auc(labels, frame_scores)


def main(argv):
  del argv
  config = _CONFIG.value
  if not _RUNS.value:
    raise app.UsageError("pass at least one --run=WORKDIR")
  manifest = records.read_manifest(model_setup.records_dir(config, _RUNS.value[0]))
  entry = manifest["splits"]["testing"]
  labels = prepare.ground_truth(config, manifest).frame_labels
  table = {}
  for candidate in _CANDIDATES.value:
    transform, clip, unscored = parse_candidate(candidate)
    table[candidate] = [micro_auc(config, entry, labels, w, transform, clip, unscored)
                        for w in _RUNS.value]
  names = [os.path.basename(os.path.normpath(w)) for w in _RUNS.value]
  print("| transform / clip / unscored | " + " | ".join(names) + " | mean | worst |")
  print("|---|" + "---|" * (len(names) + 2))
  for candidate, aucs in table.items():
    print(f"| {candidate} | " + " | ".join(f"{100 * a:.1f}" for a in aucs) +
          f" | {100 * np.mean(aucs):.2f} | {100 * np.min(aucs):.2f} |")
  print(json.dumps({"runs": _RUNS.value, "micro_auc": table}))


if __name__ == "__main__":
  app.run(main)
