"""Scoring a video's frames: detection and cube cutting on a host thread, the model on the device.

The paper's two-thread pipeline: while the device scores one batch of cubes, a host thread
detects objects in the next chunk of frames and cuts their cubes, so neither waits for the
other. With `chunk_frames <= 0` the whole video is detected first and then scored (the serial
path; the background detector's median then sees the whole video, as in data prep). With chunks,
each chunk is detected on its own frames (plus one frame before it, for optical flow), so a
median background is the chunk's median: an online model, as a live camera would need.
"""

import queue
import threading
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from data_prep import cubes
from data_prep import teachers as teachers_lib
from ssmtl_jax.data import input_pipeline
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.tasks import base


def cut_cubes(config, frames: np.ndarray, gray: np.ndarray, indices: Sequence[int], detections
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Cubes of every detection at the frames `indices` (detections aligned with them):
  (windows uint8 `[N, L, S, S, C]`, centre frames `[N]`, boxes `[N, 4]`)."""
  p = config.prep
  height, width = frames.shape[1:3]
  windows, centre, boxes = [], [], []
  for t, det in zip(indices, detections):
    det_boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
    if not len(det_boxes):
      continue
    windows.append(cubes.extract_windows(gray, t, det_boxes, p.half_window, p.crop_size, False))
    centre.append(np.full(len(det_boxes), t, np.int64))
    boxes.append(cubes.crop_boxes(det_boxes, height, width).astype(np.float32))
  if not windows:
    channels = 1 if config.data.grayscale else 3
    shape = (0, 2 * p.half_window + 1, p.crop_size, p.crop_size, channels)
    return np.zeros(shape, np.uint8), np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
  return np.concatenate(windows), np.concatenate(centre), np.concatenate(boxes)


SIDE_KEYS = ("centre", "box", appearance_memory.NAME)


def cube_chunks(config, frames: np.ndarray, detector, chunk_frames: int,
                teachers: Mapping[str, Any] | None = None, memory=None
                ) -> Iterator[dict[str, np.ndarray]]:
  """Per chunk of frames: detect, cut the cubes of every `prep.test_frame_stride`-th frame and
  run the teachers; yields dicts of rows (`window`, teacher targets, `centre`, `box`, and with
  an `AppearanceMemory` the objects' `appearance_memory` scores)."""
  stride = int(config.prep.test_frame_stride)
  gray = cubes.to_grayscale(frames) if config.data.grayscale else frames
  chunk = len(frames) if chunk_frames <= 0 else int(chunk_frames)
  for start in range(0, len(frames), chunk):
    end = min(len(frames), start + chunk)
    context = 1 if start > 0 else 0  # optical flow needs the previous frame
    detections = detector.detect_video(frames[start - context:end])[context:]
    indices = [t for t in range(start, end) if t % stride == 0]
    windows, centre, boxes = cut_cubes(config, frames, gray, indices,
                                       [detections[t - start] for t in indices])
    rows = {base.WINDOW: windows, "centre": centre, "box": boxes}
    if teachers and len(windows):
      # float16, as the records store them, so a video scores as its prepared records would.
      rows.update({base.teacher_key(name): t.astype(np.float16) for name, t in
                   teachers_lib.object_targets(teachers, windows, gray, centre, boxes).items()})
    if memory is not None:
      key = base.features_key(appearance_memory.TEACHER)
      if key not in rows:
        raise ValueError("eval.appearance_memory needs the features of "
                         f"prep.teachers.{appearance_memory.TEACHER}=efficientnet_lite0")
      rows[appearance_memory.NAME] = memory.score(rows[key].astype(np.float32))
    yield rows


def fixed_batches(chunks: Iterator[dict[str, np.ndarray]], batch_size: int
                  ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]]:
  """Regroups rows into batches of exactly `batch_size` (the last one padded) so one compiled
  step serves the whole stream: (model inputs, valid mask, {"centre", "box"})."""
  pending: list[dict[str, np.ndarray]] = []
  count = 0

  def join(parts):
    return {k: np.concatenate([r[k] for r in parts]) for k in parts[0]}

  def emit(rows):
    side = {k: rows[k] for k in SIDE_KEYS if k in rows}
    inputs = {k: v for k, v in rows.items() if k not in side}
    (inputs, side), valid = input_pipeline.pad_batch([inputs, side], batch_size)
    return inputs, valid, side

  for rows in chunks:
    if not len(rows[base.WINDOW]):
      continue
    pending.append(rows)
    count += len(rows[base.WINDOW])
    if count < batch_size:
      continue
    # Join once, then slice: every row is copied once however large the chunk (a whole video).
    joined = join(pending)
    full = count - count % batch_size
    for start in range(0, full, batch_size):
      yield emit({k: v[start:start + batch_size] for k, v in joined.items()})
    count -= full
    pending = [{k: v[full:] for k, v in joined.items()}] if count else []
  if count:
    yield emit(join(pending))


def in_background(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
  """Runs `items` on a host thread, at most `depth` ahead of the consumer; re-raises its
  errors in the consumer."""
  buffer: queue.Queue = queue.Queue(maxsize=depth)
  done = object()

  def produce():
    try:
      for item in items:
        buffer.put(item)
    except BaseException as e:  # pylint: disable=broad-except
      buffer.put(e)
      return
    buffer.put(done)

  thread = threading.Thread(target=produce, daemon=True, name="detect-and-cut")
  thread.start()
  while True:
    item = buffer.get()
    if item is done:
      break
    if isinstance(item, BaseException):
      raise item
    yield item
  thread.join()
