"""grain input pipelines over the cube records (DESIGN §5).

Training: a global shuffle with a seed over every record of the training videos, repeated
forever, each process taking its own slice, decoded to model inputs (the uint8 window and any
teacher targets the tasks need: a dict, see tasks/base.py) and batched. Evaluation:
every record once, in order, padded to full batches with a validity mask so one compiled
function serves every batch.
"""

import functools
from typing import Iterator, Sequence

import grain
import jax
import numpy as np

from data_prep import records
from ssmtl_jax.data import cube_source


def split_videos(num_videos: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
  """Holds out whole videos for validation, so validation cubes are never neighbours of
  training cubes. Returns (train ids, val ids); val is empty when val_fraction is 0."""
  if not 0 <= val_fraction < 1:
    raise ValueError(f"train.val_fraction must be in [0, 1), got {val_fraction}")
  num_val = int(round(num_videos * val_fraction))
  if val_fraction > 0:
    num_val = min(max(num_val, 1), num_videos - 1)
  order = np.random.default_rng(seed).permutation(num_videos)
  return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


def model_inputs(cube: dict[str, np.ndarray], teacher_keys: Sequence[str] = ()
                 ) -> dict[str, np.ndarray]:
  """The fields of a decoded cube the model's tasks read: the window and `teacher_keys`."""
  missing = [k for k in teacher_keys if k not in cube]
  if missing:
    raise ValueError(f"cube record of video {int(cube['video_id'])}, frame {int(cube['frame'])} "
                     f"has no {missing}: prepare the records with the teachers the tasks need "
                     "(prep.teachers)")
  return {"window": cube["window"], **{k: cube[k] for k in teacher_keys}}


def _decode_inputs(data: bytes, teacher_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
  return model_inputs(records.decode_cube(data), teacher_keys)


def stack_inputs(cubes: Sequence[dict[str, np.ndarray]], teacher_keys: Sequence[str] = ()
                 ) -> dict[str, np.ndarray]:
  inputs = [model_inputs(c, teacher_keys) for c in cubes]
  return {k: np.stack([x[k] for x in inputs]) for k in inputs[0]}


class _ProcessRows(grain.MapDataset):
  """This process's contiguous rows of each global batch.

  Global batch k is the shuffled records `[k*G, (k+1)*G)` with `G = per_process * count`;
  process p reads rows `[k*G + p*per_process, k*G + (p+1)*per_process)`. Assembled in process
  order on the mesh, the global batch is then row for row what one process would have read, so
  a pod run computes exactly what a single-host run of the same global batch computes.
  """

  def __init__(self, parent: grain.MapDataset, per_process: int, index: int, count: int):
    super().__init__(parent)
    self._per_process, self._index, self._count = per_process, index, count

  def __len__(self) -> int:
    return len(self._parent)

  def __getitem__(self, i):
    if isinstance(i, slice):
      return self.slice(i)
    batch, row = divmod(int(i), self._per_process)
    global_batch = self._per_process * self._count
    return self._parent[batch * global_batch + self._index * self._per_process + row]

  def __str__(self) -> str:
    return f"ProcessRows(process {self._index} of {self._count})"


def train_dataset(records_dir: str, video_ids: Sequence[int], batch_size: int, seed: int,
                  process_index: int = 0, process_count: int = 1,
                  num_workers: int = 0, teacher_keys: Sequence[str] = ()) -> grain.IterDataset:
  """Infinite shuffled batches for this process: dicts with `"window"` uint8
  `[batch_size, L, S, S, C]` and the `teacher_keys` targets.

  Args:
    records_dir: folder with the manifest and shards.
    video_ids: training videos (ids into the manifest's training list).
    batch_size: per-process batch.
    seed: shuffle seed; the order is a pure function of it (resumable, reproducible).
    process_index, process_count: this host's slice of the global order.
    num_workers: grain worker processes (0 = decode in the main process).
    teacher_keys: teacher targets to read with each window (`"teacher/<task>"`).
  """
  source = cube_source.CubeSource(records_dir, "training", videos=video_ids)
  if len(source) < batch_size * process_count:
    raise ValueError(f"{records_dir}: {len(source)} training cubes are fewer than one global "
                     f"batch of {batch_size * process_count}; lower train.batch_size or add data")
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  if process_count > 1:
    ds = _ProcessRows(ds, batch_size, process_index, process_count)
  ds = ds.map(functools.partial(_decode_inputs, teacher_keys=tuple(teacher_keys)))
  ds = ds.batch(batch_size, drop_remainder=True)
  # No reader threads: on few cores they compete with the step for the CPU (DESIGN §8).
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if num_workers > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return it


def pad_batch(arrays, batch_size: int) -> tuple[list, np.ndarray]:
  """Pads each array of a short last batch to `batch_size` rows with copies of its first row.

  Args:
    arrays: a sequence of arrays (or of dicts of arrays) with the same number of rows.
    batch_size: rows wanted.

  Returns the padded arrays and a `[batch_size]` bool mask of the real rows, so every batch has
  one shape and the compiled step is reused.
  """
  num = len(jax.tree.leaves(arrays[0])[0])
  valid = np.arange(batch_size) < num
  if num == batch_size:
    return list(arrays), valid
  pad = batch_size - num
  grow = lambda a: np.concatenate([a, np.repeat(a[:1], pad, axis=0)])
  return [jax.tree.map(grow, a) for a in arrays], valid


def eval_batches(source: cube_source.CubeSource, batch_size: int,
                 indices: Sequence[int] | None = None, with_boxes: bool = False,
                 teacher_keys: Sequence[str] = ()) -> Iterator[tuple]:
  """Yields (batch: `"window"` `[B, L, S, S, C]` uint8 and the `teacher_keys` targets, valid
  `[B]` bool, record indices `[B]`) and, with `with_boxes`, the boxes `[B, 4]`; the last batch
  is padded (`pad_batch`).
  """
  order = np.arange(len(source)) if indices is None else np.asarray(indices)
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    cubes = [records.decode_cube(source[int(i)]) for i in idx]
    (batch, boxes), valid = pad_batch(
        [stack_inputs(cubes, teacher_keys), np.stack([c["box"] for c in cubes])], batch_size)
    idx = np.where(valid, np.resize(idx, batch_size), -1)
    yield (batch, valid, idx, boxes) if with_boxes else (batch, valid, idx)
