"""grain input pipelines over the cube records (DESIGN §5).

Training: a global shuffle with a seed over every record of the training videos, repeated
forever, each process taking its own slice, decoded to uint8 windows and batched. Evaluation:
every record once, in order, padded to full batches with a validity mask so one compiled
function serves every batch.
"""

from typing import Iterator, Sequence

import grain
import numpy as np

from ssmtl_jax import records


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


def _window(data: bytes) -> np.ndarray:
  return records.decode_cube(data)["window"]


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
                  num_workers: int = 0) -> grain.IterDataset:
  """Infinite shuffled batches of `[batch_size, L, S, S, C]` uint8 windows for this process.

  Args:
    records_dir: folder with the manifest and shards.
    video_ids: training videos (ids into the manifest's training list).
    batch_size: per-process batch.
    seed: shuffle seed; the order is a pure function of it (resumable, reproducible).
    process_index, process_count: this host's slice of the global order.
    num_workers: grain worker processes (0 = decode in the main process).
  """
  source = records.CubeSource(records_dir, "training", videos=video_ids)
  if len(source) < batch_size * process_count:
    raise ValueError(f"{records_dir}: {len(source)} training cubes are fewer than one global "
                     f"batch of {batch_size * process_count}; lower train.batch_size or add data")
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
  if process_count > 1:
    ds = _ProcessRows(ds, batch_size, process_index, process_count)
  ds = ds.map(_window).batch(batch_size, drop_remainder=True)
  # On 2 cores, no reader threads was ~4x faster than grain's default 16 (DESIGN §8).
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if num_workers > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return it


def pad_batch(arrays: Sequence[np.ndarray], batch_size: int) -> tuple[list[np.ndarray], np.ndarray]:
  """Pads each array of a short last batch to `batch_size` rows with copies of its first row.

  Returns the padded arrays and a `[batch_size]` bool mask of the real rows, so every batch has
  one shape and the compiled step is reused.
  """
  num = len(arrays[0])
  valid = np.arange(batch_size) < num
  if num == batch_size:
    return list(arrays), valid
  pad = batch_size - num
  return [np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in arrays], valid


def eval_batches(source: records.CubeSource, batch_size: int,
                 indices: Sequence[int] | None = None, with_boxes: bool = False) -> Iterator[tuple]:
  """Yields (windows `[B, L, S, S, C]` uint8, valid `[B]` bool, record indices `[B]`) and,
  with `with_boxes`, the boxes `[B, 4]`; the last batch is padded (`pad_batch`).
  """
  order = np.arange(len(source)) if indices is None else np.asarray(indices)
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    cubes = [records.decode_cube(source[int(i)]) for i in idx]
    (windows, boxes), valid = pad_batch(
        [np.stack([c["window"] for c in cubes]), np.stack([c["box"] for c in cubes])], batch_size)
    idx = np.where(valid, np.resize(idx, batch_size), -1)
    yield (windows, valid, idx, boxes) if with_boxes else (windows, valid, idx)
