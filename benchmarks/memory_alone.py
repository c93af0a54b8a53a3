"""Frame-level AUC of the appearance memory alone (no training) on prepared records, per fold.

  python benchmarks/memory_alone.py --config=configs/ped2_cpu.py \
      --config.data.root=../shared/data/ped2 --records=runs/prep_t224/records --k=1,5 \
      --features=raw,l2norm,sqrt

The records must hold the built-in teacher's features. Folds as in choose_on_folds.py: A = odd,
B = even positions of the test videos. Prints fold A, fold B and all-video micro AUC and the
macro AUC for each feature transform and k.
"""

import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

import harness  # noqa: F401  (first: puts the repository root ahead of benchmarks/ on sys.path)
from data_prep import prepare
from data_prep import records
from ssmtl_jax.data import cube_source
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import metrics
from ssmtl_jax.tasks import base

_CONFIG = config_flags.DEFINE_config_file("config", None, "data set config (eval settings)",
                                          lock_config=True)
_RECORDS = flags.DEFINE_string("records", None, "records folder prepared with the teacher")
_K = flags.DEFINE_list("k", ["1"], "k of the k-th nearest neighbour")
_FEATURES = flags.DEFINE_list("features", ["raw"], "raw | l2norm | sqrt")

TRANSFORMS = {"raw": lambda f: f,
              "l2norm": lambda f: f / np.linalg.norm(f, axis=1, keepdims=True),
              "sqrt": np.sqrt}


def main(argv):
  del argv
  config = _CONFIG.value
  manifest = records.read_manifest(_RECORDS.value)
  entry = manifest["splits"]["testing"]
  labels = prepare.ground_truth(config, manifest).frame_labels
  key = base.features_key(appearance_memory.TEACHER)
  train = cube_source.CubeSource(_RECORDS.value, "training")
  test = cube_source.CubeSource(_RECORDS.value, "testing")
  train_features = appearance_memory.read_features(train, key)
  test_features = appearance_memory.read_features(test, key)
  meta = test.metadata()
  boxes = np.stack([records.decode_cube(test[i])["box"] for i in range(len(test))])
  videos = list(entry["videos"])
  folds = {"A": videos[0::2], "B": videos[1::2]}
  print("| features | k | fold A micro | fold B micro | all micro | all macro |")
  print("|---|---|---|---|---|---|")
  for name in _FEATURES.value:
    transform = TRANSFORMS[name]
    for k in (int(k) for k in _K.value):
      scores = appearance_memory.knn_distance(transform(test_features),
                                              transform(train_features), k)
      frame_scores = {}
      for vid, (video, n) in enumerate(zip(entry["videos"], entry["frame_counts"])):
        sel = meta["video_id"] == vid
        frame_scores[video] = evaluate.video_frame_scores(
            n, entry.get("frame_stride", 1), meta["frame"][sel], scores[sel], boxes[sel],
            entry["frame_shapes"][vid], config.eval, config.eval.minmax)
      fold = {f: metrics.micro_auc({v: labels[v] for v in vs}, {v: frame_scores[v] for v in vs})
              for f, vs in folds.items()}
      print(f"| {name} | {k} | {100 * fold['A']:.1f} | {100 * fold['B']:.1f} | "
            f"{100 * metrics.micro_auc(labels, frame_scores):.1f} | "
            f"{100 * metrics.macro_auc(labels, frame_scores):.1f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
