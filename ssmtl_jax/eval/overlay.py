"""Overlay videos: each object box coloured by its anomaly score, and a frame-score bar.

What a user looks at to see *where* the model flags an anomaly: the scored boxes drawn on the
frames (blue = normal, red = anomalous, on a shared colour scale), a strip under the frame with the
frame score over time, a cursor at the current frame and the ground-truth anomalies shaded.

Written as H.264 (`libx264`, yuv420p, `movflags=+faststart`: the index before the data) with
PyAV, whose wheels bundle libx264, so browsers and other standard players play the file, also
while it downloads. yuv420p halves the chroma resolution, so an odd width or height is padded
by one black column or row. Without PyAV or its libx264 encoder, OpenCV writes MPEG-4 Part 2
(`mp4v`, which every OpenCV wheel can encode but browsers do not play) and a warning says why,
once per reason. Either way the file is written under a temporary name and renamed when complete.
"""

import fractions
import warnings

import cv2
import numpy as np

from data_prep import atomic_write

_BAR_HEIGHT = 40
_GT_COLOR = (90, 110, 230)      # BGR: shaded ground-truth anomaly
_CURVE_COLOR = (255, 255, 255)
_CURSOR_COLOR = (0, 255, 255)


def score_colors(scores: np.ndarray, low: float, high: float) -> np.ndarray:
  """BGR uint8 colours `[N, 3]` on OpenCV's JET map: `low` -> blue, `high` -> red."""
  scores = np.asarray(scores, np.float64)
  span = max(high - low, 1e-12)
  level = np.clip((scores - low) / span, 0.0, 1.0)
  lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]
  return lut[np.round(level * 255).astype(np.int64)]


def _score_strip(frame_scores: np.ndarray, labels, width: int, low: float, high: float
                 ) -> np.ndarray:
  """`[BAR, W, 3]` image of the frame-score curve over the whole video (without cursor)."""
  num = len(frame_scores)
  strip = np.zeros((_BAR_HEIGHT, width, 3), np.uint8)
  cols = np.minimum((np.arange(num) * width) // max(num, 1), width - 1)
  if labels is not None:
    edges = (np.arange(num + 1) * width) // max(num, 1)  # frame t spans [edges[t], edges[t+1])
    for t in np.flatnonzero(np.asarray(labels) > 0):
      strip[:, edges[t]:max(edges[t + 1], edges[t] + 1)] = _GT_COLOR
  span = max(high - low, 1e-12)
  level = np.clip((np.asarray(frame_scores, np.float64) - low) / span, 0, 1)
  ys = (_BAR_HEIGHT - 2 - np.round(level * (_BAR_HEIGHT - 4))).astype(np.int32)
  points = np.stack([cols, ys], axis=1).astype(np.int32)
  cv2.polylines(strip, [points], isClosed=False, color=_CURVE_COLOR, thickness=1)
  return strip


_H264_ENCODER = "libx264"
# crf 20 keeps the 2-pixel box edges and the small score text legible; "fast" trades a little
# file size for encoding speed, since eval writes an overlay for every test video.
_H264_OPTIONS = {"crf": "20", "preset": "fast"}
_warned_fallback: set[str] = set()


def _h264_unavailable() -> str | None:
  """Why overlays cannot be written as H.264 here, or None when they can."""
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return f"PyAV is not importable ({e})"
  try:
    av.codec.Codec(_H264_ENCODER, "w")
  except ValueError as e:
    return f"PyAV {av.__version__} has no {_H264_ENCODER} encoder ({e})"
  return None


class _H264Writer:
  """BGR frames -> H.264 yuv420p in an mp4 with the index (moov) before the data (faststart)."""

  def __init__(self, path: str, fps: float, width: int, height: int):
    import av  # pylint: disable=g-import-not-at-top
    self._av = av
    rate = fractions.Fraction(fps).limit_denominator(1001)
    self._container = av.open(path, "w", format="mp4",
                              container_options={"movflags": "+faststart"})
    try:
      self._stream = self._container.add_stream(_H264_ENCODER, rate=rate)
      self._stream.width, self._stream.height = width, height
      self._stream.pix_fmt = "yuv420p"
      self._stream.codec_context.time_base = 1 / rate
      self._stream.options = dict(_H264_OPTIONS)
    except BaseException:
      self._container.close()
      raise
    self._time_base = 1 / rate
    self._count = 0

  def write(self, bgr: np.ndarray) -> None:
    frame = self._av.VideoFrame.from_ndarray(bgr, format="bgr24")
    frame.pts, frame.time_base = self._count, self._time_base
    self._count += 1
    for packet in self._stream.encode(frame):
      self._container.mux(packet)

  def close(self) -> None:
    """Flushes the encoder and writes the index; the file is complete after this."""
    try:
      for packet in self._stream.encode(None):
        self._container.mux(packet)
    finally:
      self._container.close()

  def abort(self) -> None:
    self._container.close()


class _Mp4vWriter:
  """BGR frames -> MPEG-4 Part 2 with OpenCV: the fallback without PyAV's libx264."""

  def __init__(self, path: str, fps: float, width: int, height: int):
    self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not self._writer.isOpened():
      raise RuntimeError(f"OpenCV cannot open an mp4v writer for {path}")

  def write(self, bgr: np.ndarray) -> None:
    self._writer.write(bgr)

  def close(self) -> None:
    self._writer.release()

  abort = close


def open_video_writer(path: str, fps: float, width: int, height: int):
  """A writer of `height` x `width` BGR uint8 frames into the `.mp4` file `path`: H.264 with
  PyAV, else mp4v with OpenCV (warned once per reason). It has `write(bgr)`, `close()`
  (completes the file) and `abort()` (stops without completing it). The size must be even."""
  if width % 2 or height % 2:
    raise ValueError(f"{path}: H.264 yuv420p needs an even frame size, got {width}x{height}")
  reason = _h264_unavailable()
  if reason is None:
    return _H264Writer(path, fps, width, height)
  if reason not in _warned_fallback:
    _warned_fallback.add(reason)
    warnings.warn(f"overlay videos are written as MPEG-4 Part 2 (mp4v), which browsers do not "
                  f"play, not H.264: {reason}", RuntimeWarning, stacklevel=2)
  return _Mp4vWriter(path, fps, width, height)


def _pad_even(image: np.ndarray) -> np.ndarray:
  """Pads `[H, W, 3]` with one black row / column where H / W is odd (never crops)."""
  pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
  if not pad_h and not pad_w:
    return image
  return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))


def write_overlay_video(path: str, frames: np.ndarray, frame_scores: np.ndarray,
                        region_frames: np.ndarray, region_boxes: np.ndarray,
                        region_scores: np.ndarray, labels=None, fps: float = 10.0,
                        score_range: tuple[float, float] | None = None) -> str:
  """Writes one test video with its scored boxes and frame scores drawn on.

  Args:
    path: output `.mp4` path (parent folders are created).
    frames: uint8 `[T, H, W, C]` video, C = 1 or 3 (RGB).
    frame_scores: `[T]` frame anomaly scores.
    region_frames: `[N]` frame index of each scored box.
    region_boxes: `[N, 4]` xyxy pixel boxes.
    region_scores: `[N]` object anomaly scores.
    labels: optional `[T]` 0/1 ground truth, shaded in the score bar.
    fps: frame rate of the written file.
    score_range: `(low, high)` of the box colour scale; default: the 1st and 99th percentiles of
      the region scores, so one outlier does not wash the others out.

  Returns:
    The written path. The video is `H + BAR` rows by `W` columns, each rounded up to even.
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
    raise ValueError(f"{path}: frames must be uint8 [T, H, W, 1|3], got {frames.dtype} "
                     f"{frames.shape}")
  num, height, width = frames.shape[:3]
  if not fps > 0:
    raise ValueError(f"{path}: the frame rate must be > 0, got {fps}")
  frame_scores = np.asarray(frame_scores, np.float64)
  if frame_scores.shape != (num,):
    raise ValueError(f"{path}: {frame_scores.shape[0]} frame scores for {num} frames")
  region_frames = np.asarray(region_frames, np.int64).reshape(-1)
  region_boxes = np.asarray(region_boxes, np.float64).reshape(-1, 4)
  region_scores = np.asarray(region_scores, np.float64).reshape(-1)
  if score_range is None:
    score_range = ((float(np.percentile(region_scores, 1)), float(np.percentile(region_scores, 99)))
                   if len(region_scores) else (0.0, 1.0))
  colors = score_colors(region_scores, *score_range)
  finite = frame_scores[np.isfinite(frame_scores)]
  bar_range = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
  strip = _score_strip(frame_scores, labels, width, *bar_range)
  out_height, out_width = height + _BAR_HEIGHT + (height + _BAR_HEIGHT) % 2, width + width % 2
  order = np.argsort(region_frames, kind="stable")
  starts = np.searchsorted(region_frames[order], np.arange(num + 1))
  writer = None
  with atomic_write.temporary_path(path) as tmp:
    try:
      writer = open_video_writer(tmp, fps, out_width, out_height)
      for t in range(num):
        image = frames[t]
        image = (cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.shape[-1] == 1
                 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        for n in order[starts[t]:starts[t + 1]]:
          x0, y0, x1, y1 = np.round(region_boxes[n]).astype(int)
          color = tuple(int(c) for c in colors[n])
          cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), color, 2)
          cv2.putText(image, f"{region_scores[n]:.1f}", (x0, max(y0 - 2, 8)),
                      cv2.FONT_HERSHEY_PLAIN, 0.7, color, 1, cv2.LINE_AA)
        bar = strip.copy()
        x = min((t * width) // max(num, 1), width - 1)
        cv2.line(bar, (x, 0), (x, _BAR_HEIGHT - 1), _CURSOR_COLOR, 1)
        cv2.putText(bar, f"frame {t}  score {frame_scores[t]:.2f}", (4, 12),
                    cv2.FONT_HERSHEY_PLAIN, 0.8, _CURSOR_COLOR, 1, cv2.LINE_AA)
        writer.write(_pad_even(np.concatenate([image, bar], axis=0)))
      writer.close()
    except BaseException:
      if writer is not None:
        writer.abort()
      raise
  return path
