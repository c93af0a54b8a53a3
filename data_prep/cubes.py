"""Object-cube extraction: the same box cut from the frames around a detection.

Following SSMTL++ (paper §3.1), an object detected in frame i yields a cube:
the *same* box cropped from frames i - hw ... i + hw and resized to
crop_size x crop_size. Indices past either end of the video are clamped, so
the window of frame 0 repeats frame 0 for its earlier positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import cv2
import numpy as np

from data_prep import records
from data_prep import teachers as teachers_lib

# With INTER_LINEAR a window is resized in one cv2 call with its frames
# stacked as channels (up to CV_CN_MAX = 512), much faster than a call per
# frame. INTER_AREA shrinking by a non-integer factor accepts at most 4
# channels (resize.cpp asserts cn <= 4), so it goes frame by frame, which
# measured faster than 4-channel chunks of the stack.
_CV_MAX_CHANNELS = 512
# Objects gathered over consecutive frames before the teachers run on them in one call (a
# teacher batches them; one frame alone holds a handful of objects).
_TEACHER_CHUNK = 256


class Detections(Protocol):
  """What `write_video_cubes` needs from one frame's detections."""

  boxes: np.ndarray  # [N, 4] xyxy pixels.
  scores: np.ndarray  # [N]
  classes: np.ndarray  # [N], -1 for motion detections.
  sources: np.ndarray  # [N], records.SOURCE_*.


def to_grayscale(frames: np.ndarray) -> np.ndarray:
  """Converts RGB frames [..., H, W, 3] to [..., H, W, 1]; 1-channel input is kept."""
  if frames.shape[-1] == 1:
    return frames
  if frames.shape[-1] != 3:
    raise ValueError(f"Expected 1 or 3 channels, got frames of shape {frames.shape}.")
  lead = frames.shape[:-3]
  flat = frames.reshape((-1,) + frames.shape[-3:])
  gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in flat])
  return gray.reshape(lead + gray.shape[1:] + (1,))


def crop_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
  """Integer crop boxes: clipped to the frame and at least 2 px wide and tall.

  Args:
    boxes: [N, 4] float xyxy in pixels.
    height: Frame height.
    width: Frame width.

  Returns:
    int64 [N, 4] (x0, y0, x1, y1) with 0 <= x0 < x1 <= width, x1 - x0 >= 2,
    and the same for y; slice a frame as frame[y0:y1, x0:x1].
  """
  if height < 2 or width < 2:
    raise ValueError(f"Frames must be at least 2x2 pixels, got {height}x{width}.")
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  if not np.all(np.isfinite(boxes)):
    raise ValueError("Boxes contain NaN or inf.")
  out = np.empty(boxes.shape, np.int64)
  for lo, hi, size in ((0, 2, width), (1, 3, height)):
    a = np.clip(np.floor(np.minimum(boxes[:, lo], boxes[:, hi])), 0, size)
    b = np.clip(np.ceil(np.maximum(boxes[:, lo], boxes[:, hi])), 0, size)
    # Grow boxes that are too small (or entirely outside the frame) around
    # their centre, then shift them back inside.
    centre = np.clip((a + b) / 2, 0, size)
    short = (b - a) < 2
    a = np.where(short, np.floor(centre) - 1, a)
    a = np.clip(a, 0, size - 2)
    b = np.where(short, a + 2, b)
    out[:, lo], out[:, hi] = a, b
  return out


def _resize_window(crop: np.ndarray, crop_size: int) -> np.ndarray:
  """Resizes a [L, h, w, C] crop to [L, S, S, C] with few cv2 calls."""
  num, h, w, c = crop.shape
  size = (crop_size, crop_size)
  if h >= crop_size and w >= crop_size:
    out = np.empty((num, crop_size, crop_size, c), np.uint8)
    for t in range(num):
      out[t] = cv2.resize(crop[t], size, interpolation=cv2.INTER_AREA).reshape(
          crop_size, crop_size, c)  # cv2 drops a single channel axis.
    return out
  # [L, h, w, C] -> [h, w, L*C]: frames become channels of one image.
  stacked = np.ascontiguousarray(crop.transpose(1, 2, 0, 3)).reshape(h, w, num * c)
  parts = []
  for start in range(0, num * c, _CV_MAX_CHANNELS):
    part = np.ascontiguousarray(stacked[..., start:start + _CV_MAX_CHANNELS])
    out = cv2.resize(part, size, interpolation=cv2.INTER_LINEAR)
    parts.append(out.reshape(crop_size, crop_size, -1))
  resized = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
  return resized.reshape(crop_size, crop_size, num, c).transpose(2, 0, 1, 3)


def window_indices(frame_index: int, half_window: int, num_frames: int) -> np.ndarray:
  """Frame indices i - hw ... i + hw, clamped to [0, num_frames - 1]."""
  idx = np.arange(frame_index - half_window, frame_index + half_window + 1)
  return np.clip(idx, 0, num_frames - 1)


def extract_windows(frames: np.ndarray, frame_index: int, boxes: np.ndarray,
                    half_window: int, crop_size: int,
                    grayscale: bool) -> np.ndarray:
  """Cuts one cube per box around frame `frame_index`.

  Args:
    frames: uint8 [T, H, W, C] video, RGB (C=3) or grayscale (C=1).
    frame_index: Centre frame i of the windows.
    boxes: [N, 4] xyxy pixel boxes detected in frame i.
    half_window: hw; the window covers frames i - hw ... i + hw (clamped).
    crop_size: S, side of the resized crops.
    grayscale: Convert RGB to one channel (1-channel frames are kept as is).

  Returns:
    uint8 [N, 2 * hw + 1, S, S, C'] with C' = 1 if grayscale else C.
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8 [T, H, W, C], got {frames.dtype} "
                     f"{frames.shape}.")
  num_frames, height, width, channels = frames.shape
  if not 0 <= frame_index < num_frames:
    raise ValueError(f"frame_index {frame_index} outside a {num_frames}-frame video.")
  if half_window < 0 or crop_size < 1:
    raise ValueError(f"Need half_window >= 0 and crop_size >= 1, got "
                     f"{half_window}, {crop_size}.")
  window = frames[window_indices(frame_index, half_window, num_frames)]
  if grayscale:
    window = to_grayscale(window)
  crops = crop_boxes(boxes, height, width)
  out = np.empty((len(crops), 2 * half_window + 1, crop_size, crop_size,
                  window.shape[-1]), np.uint8)
  for n, (x0, y0, x1, y1) in enumerate(crops):
    out[n] = _resize_window(window[:, y0:y1, x0:x1], crop_size)
  return out


def write_video_cubes(writer: records.CubeWriter, video_id: int,
                      frames: np.ndarray,
                      detections_per_frame: Sequence[Detections],
                      frame_indices: Sequence[int], half_window: int,
                      crop_size: int, grayscale: bool,
                      teachers: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None
                      ) -> int:
  """Extracts and writes the cube of every detection of one video.

  Args:
    writer: Destination of the records.
    video_id: Index of this video in the split's manifest video list.
    frames: uint8 [T, H, W, C] video, RGB or grayscale.
    detections_per_frame: Detections of frame `frame_indices[k]` at position
      k (same length as `frame_indices`).
    frame_indices: Centre frames to cut cubes at.
    half_window: Window half length hw (the record holds 2 * hw + 1 frames).
    crop_size: Side of the resized crops.
    grayscale: Store one channel.
    teachers: task name -> teacher (`data_prep.teachers`), run on the middle crops; each
      record stores its targets.

  Returns:
    Number of records written.
  """
  if len(detections_per_frame) != len(frame_indices):
    raise ValueError(f"{len(detections_per_frame)} detection sets for "
                     f"{len(frame_indices)} frame indices; they must align.")
  frames = np.asarray(frames)
  if grayscale and frames.ndim == 4 and frames.shape[-1] == 3:
    # Convert each frame once rather than once per window that contains it.
    frames = to_grayscale(frames)
  height, width = frames.shape[1:3]
  pending: list[tuple] = []

  def flush():
    """Runs the teachers once over the pending frames' objects, then writes their records."""
    if not pending:
      return
    windows = np.concatenate([p[1] for p in pending])
    targets = {}
    if teachers:
      centres = np.concatenate([np.full(len(p[1]), p[0]) for p in pending])
      targets = teachers_lib.object_targets(teachers, windows, frames, centres,
                                            np.concatenate([p[2] for p in pending]))
    n = 0
    for frame_index, wins, used, scores, classes, sources in pending:
      for k in range(len(wins)):
        # Store the box actually cropped, so scores map to the region shown.
        writer.add(wins[k], video_id, int(frame_index), used[k], int(sources[k]),
                   int(classes[k]), float(scores[k]), {name: t[n] for name, t in targets.items()})
        n += 1
    pending.clear()

  count = 0
  queued = 0
  for frame_index, det in zip(frame_indices, detections_per_frame):
    boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
      continue
    windows = extract_windows(frames, int(frame_index), boxes, half_window,
                              crop_size, grayscale=False)
    used = crop_boxes(boxes, height, width).astype(np.float32)
    scores = np.broadcast_to(np.asarray(det.scores, np.float32), (len(boxes),))
    classes = np.broadcast_to(np.asarray(det.classes, np.int64), (len(boxes),))
    sources = np.broadcast_to(np.asarray(det.sources, np.int64), (len(boxes),))
    pending.append((frame_index, windows, used, scores, classes, sources))
    count += len(boxes)
    queued += len(boxes)
    if queued >= _TEACHER_CHUNK:
      flush()
      queued = 0
  flush()
  return count
