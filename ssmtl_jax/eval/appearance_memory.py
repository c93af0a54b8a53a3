"""Appearance memory: how unlike every normal training object an object looks to the teacher.

The built-in teacher (data_prep/teachers.py) stores each object's pooled EfficientNet-Lite0
features in the records (`teacher/<task>.features`). The memory is the set of those features of
all training objects; an object's score is its Euclidean distance to the k-th nearest of them.
It needs no training, and it carries the pretrained appearance knowledge (a bicycle, a car) that
the proxy tasks, trained on normal video alone, lack. At evaluation it is one more per-object
score, standardised and averaged with the task scores like any of them.

The statistics that standardise it come from the training objects themselves, each scored
against the memory objects of the *other* training videos: a neighbouring frame of the same
video is a near-duplicate, so scoring it against its own video would make normal objects look
far more typical than an unseen test object can.
"""

from __future__ import annotations


import numpy as np
import tqdm

from data_prep import atomic_write
from data_prep import records

NAME = "appearance_memory"
TEACHER = "distillation"  # the prep.teachers entry whose features the memory holds
MEMORY_FILE = "appearance_memory.npz"
_CHUNK = 1024


def read_features(source, key: str) -> np.ndarray:
  """float32 `[N, F]` features of every record of a `CubeSource`, in record order.

  Raises:
    ValueError: the records hold no such features (prepared without the teacher).
  """
  rows = []
  for i in tqdm.tqdm(range(len(source)), desc="read features", unit="cube", leave=False):
    cube = records.decode_cube(source[i])
    if key not in cube:
      raise ValueError(
          f"eval.appearance_memory needs the teacher features {key!r} in the records of "
          f"{source.out_dir}, which were prepared without them: set "
          "--config.prep.teachers.distillation=efficientnet_lite0 and prepare again")
    rows.append(cube[key])
  if not rows:
    return np.zeros((0, 0), np.float32)
  return np.stack(rows).astype(np.float32)


def knn_distance(queries: np.ndarray, memory: np.ndarray, k: int = 1,
                 query_groups: np.ndarray | None = None,
                 memory_groups: np.ndarray | None = None) -> np.ndarray:
  """Euclidean distance of each query `[N, F]` to its k-th nearest memory row `[M, F]`.

  With groups, a query ignores the memory rows of its own group (its own video).

  Raises:
    ValueError: fewer than k memory rows are eligible for some query.
  """
  queries = np.asarray(queries, np.float32)
  memory = np.asarray(memory, np.float32)
  if k < 1:
    raise ValueError(f"eval.appearance_memory={k}: k must be >= 1 (0 turns the memory off)")
  sq_memory = (memory.astype(np.float64) ** 2).sum(1)
  out = np.empty(len(queries), np.float64)
  for start in range(0, len(queries), _CHUNK):
    q = queries[start:start + _CHUNK]
    d2 = (q.astype(np.float64) ** 2).sum(1)[:, None] + sq_memory[None] - 2.0 * (q @ memory.T)
    if query_groups is not None:
      same = query_groups[start:start + _CHUNK, None] == memory_groups[None]
      d2 = np.where(same, np.inf, d2)
    if np.any(np.isfinite(d2).sum(axis=1) < k):
      raise ValueError(f"the appearance memory holds fewer than k={k} eligible training objects")
    out[start:start + len(q)] = np.partition(d2, k - 1, axis=1)[:, k - 1]
  return np.sqrt(np.maximum(out, 0.0))


class AppearanceMemory:
  """The training objects' features, and the score of new objects against them.

  Attributes:
    memory: float32 `[M, F]` training features.
    videos: int `[M]` the training video of each row.
    k: which nearest neighbour's distance is the score.
  """

  def __init__(self, memory: np.ndarray, videos: np.ndarray, k: int = 1):
    if len(memory) == 0:
      raise ValueError("the appearance memory is empty: no training objects")
    self.memory = np.asarray(memory, np.float32)
    self.videos = np.asarray(videos)
    self.k = int(k)

  def score(self, features: np.ndarray) -> np.ndarray:
    """Anomaly score `[N]` of new objects' features `[N, F]`: distance to the k-th nearest
    training object."""
    return knn_distance(features, self.memory, self.k)

  def reference_scores(self) -> np.ndarray:
    """Each training object's score against the other training videos (for standardising)."""
    if len(np.unique(self.videos)) < 2:
      raise ValueError("the appearance memory needs at least 2 training videos to calibrate "
                       "its score (each scored against the others)")
    return knn_distance(self.memory, self.memory, self.k, self.videos, self.videos)

  def save(self, path: str) -> None:
    """float16 features + video ids, written atomically (`--mode=score` loads them)."""
    atomic_write.save_npz(path, memory=self.memory.astype(np.float16), videos=self.videos,
                          k=self.k)

  @classmethod
  def load(cls, path: str) -> "AppearanceMemory":
    with np.load(path, allow_pickle=False) as f:
      return cls(f["memory"].astype(np.float32), f["videos"], int(f["k"]))
