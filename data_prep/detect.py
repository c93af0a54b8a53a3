"""Object and motion detection behind one per-video interface.

Every detector maps a whole video (uint8 `[T, H, W, C]`) to one `Detections` per
frame, boxes in xyxy pixel coordinates with exclusive right/bottom edges (so
`frame[y0:y1, x0:x1]` is the box). Per-video rather than per-frame because motion
detectors need temporal context (a median background, consecutive frames for flow).

Motion detectors are split into "foreground mask per frame" and the shared
`mask_to_boxes`, so `CombinedDetector` can black out the boxes of an object detector (onnx_detector.py) in the mask
before connected components (paper §3.1): motion then only adds objects the
detector missed.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Protocol, Sequence

import cv2
import numpy as np

from data_prep import records

# The record schema owns the source codes; re-exported here for detector users.
SOURCE_DETECTOR = records.SOURCE_DETECTOR
SOURCE_FLOW = records.SOURCE_FLOW
SOURCE_BACKGROUND = records.SOURCE_BACKGROUND
MOTION_CLASS = -1


@dataclasses.dataclass
class Detections:
  """Boxes found in one frame.

  Attributes:
    boxes: float32 `[N, 4]` xyxy pixels (x_max, y_max exclusive).
    scores: float32 `[N]` confidence (1 for motion boxes).
    classes: int32 `[N]` detector class id, -1 for motion boxes.
    sources: int8 `[N]`: 0 detector, 1 optical flow, 2 background subtraction.
  """
  boxes: np.ndarray
  scores: np.ndarray
  classes: np.ndarray
  sources: np.ndarray

  def __post_init__(self):
    self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
    self.scores = np.asarray(self.scores, np.float32).reshape(-1)
    self.classes = np.asarray(self.classes, np.int32).reshape(-1)
    self.sources = np.asarray(self.sources, np.int8).reshape(-1)
    n = len(self.boxes)
    if not len(self.scores) == len(self.classes) == len(self.sources) == n:
      raise ValueError(
          f"Detections fields disagree in length: boxes {n}, scores {len(self.scores)}, "
          f"classes {len(self.classes)}, sources {len(self.sources)}.")

  def __len__(self) -> int:
    return len(self.boxes)

  @classmethod
  def empty(cls) -> "Detections":
    """Returns a Detections with no boxes."""
    return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0))

  @classmethod
  def concat(cls, parts: Sequence["Detections"]) -> "Detections":
    """Concatenates the boxes of several Detections of the same frame."""
    if not parts:
      return cls.empty()
    return cls(np.concatenate([p.boxes for p in parts]),
               np.concatenate([p.scores for p in parts]),
               np.concatenate([p.classes for p in parts]),
               np.concatenate([p.sources for p in parts]))


class VideoDetector(Protocol):
  """Anything that turns a video into per-frame detections."""

  def detect_video(self, frames: np.ndarray) -> list[Detections]:
    """Args: frames: uint8 `[T, H, W, C]`. Returns: T Detections, one per frame."""
    ...


def _check_frames(frames: np.ndarray) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
    raise ValueError(
        f"Expected uint8 frames [T, H, W, C] with C in (1, 3), got {frames.dtype} {frames.shape}.")
  return frames


def to_gray(frames: np.ndarray) -> np.ndarray:
  """Converts uint8 `[T, H, W, C]` RGB or gray frames to uint8 `[T, H, W]`."""
  frames = _check_frames(frames)
  if frames.shape[-1] == 1:
    return frames[..., 0]
  return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def blackout(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """Zeroes the pixels of `boxes` (xyxy, float) in a copy of a uint8 `[H, W]` mask."""
  mask = mask.copy()
  h, w = mask.shape
  for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
    # Round outwards so partially covered border pixels are blacked out too.
    x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    x1, y1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    mask[y0:y1, x0:x1] = 0
  return mask


def mask_to_boxes(mask: np.ndarray, min_area: int, max_box_frac: float, source: int,
                  close_kernel: int = 0, blackout_boxes: np.ndarray | None = None
                  ) -> Detections:
  """Turns a foreground mask into one box per connected component.

  Args:
    mask: uint8/bool `[H, W]`, non-zero = foreground.
    min_area: smallest component (foreground pixels) to keep.
    max_box_frac: drop boxes covering more than this fraction of the frame (a global
      change such as a light switch or camera shake, not an object).
    source: value for `Detections.sources`.
    close_kernel: elliptic closing kernel size (0/1 = none); joins the fragments
      (head, torso, legs) of one object.
    blackout_boxes: optional xyxy `[M, 4]` boxes zeroed after the closing (so the
      closing cannot refill them) and before connected components.

  Returns:
    Detections with score 1 and class -1.
  """
  mask = (np.asarray(mask) > 0).astype(np.uint8)
  if close_kernel > 1:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_kernel, close_kernel))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
  if blackout_boxes is not None and len(blackout_boxes):
    mask = blackout(mask, blackout_boxes)
  _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
  stats = stats[1:]  # Row 0 is the background component.
  h, w = mask.shape
  x, y, bw, bh, area = stats.T
  keep = (area >= min_area) & (bw * bh <= max_box_frac * h * w)
  boxes = np.stack([x, y, x + bw, y + bh], axis=1)[keep]
  n = len(boxes)
  return Detections(boxes, np.ones(n), np.full(n, MOTION_CLASS), np.full(n, source))


class MotionDetector:
  """Shared mask → boxes logic; subclasses provide `foreground_masks`."""

  source: int
  min_area: int
  close_kernel: int
  max_box_frac: float

  def foreground_masks(self, frames: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def boxes_from_mask(self, mask: np.ndarray, blackout_boxes: np.ndarray | None = None
                      ) -> Detections:
    """Boxes of one frame's mask, after zeroing `blackout_boxes` (xyxy) if given."""
    return mask_to_boxes(mask, self.min_area, self.max_box_frac, self.source,
                         self.close_kernel, blackout_boxes)

  def detect_video(self, frames: np.ndarray) -> list[Detections]:
    """Returns one Detections per frame of uint8 `[T, H, W, C]` frames."""
    return [self.boxes_from_mask(m) for m in self.foreground_masks(frames)]


class BackgroundMotion(MotionDetector):
  """Background subtraction on grayscale frames.

  The default background is the per-pixel median of (up to `median_frames` evenly
  spaced) frames of the video: on a static camera it contains no ghosts of people
  who stood still for a while, which a running average smears into wide boxes.
  `background="running"` is the streaming alternative (selective running average).
  """

  def __init__(self, threshold: float = 18, min_area: int = 60, close_kernel: int = 3,
               max_box_frac: float = 0.25, blur: int = 3, background: str = "median",
               median_frames: int = 64, alpha: float = 0.05):
    """Args:
      threshold: |frame − background| above this (0..255) is foreground.
      min_area: smallest connected component kept, in pixels (per data set: Ped2
        people far from the camera are ~80 px, Avenue objects ~1500 px).
      close_kernel: morphological closing kernel size (0/1 = none).
      max_box_frac: drop boxes larger than this fraction of the frame.
      blur: Gaussian blur kernel before differencing (0/1 = none); suppresses JPEG noise.
      background: "median" (whole video) or "running" (online average).
      median_frames: at most this many frames enter the median (speed).
      alpha: running-average update rate.
    """
    if background not in ("median", "running"):
      raise ValueError(f"background must be 'median' or 'running', got {background!r}.")
    self.threshold, self.min_area, self.close_kernel = threshold, min_area, close_kernel
    self.max_box_frac, self.blur, self.background = max_box_frac, blur, background
    self.median_frames, self.alpha = median_frames, alpha
    self.source = SOURCE_BACKGROUND

  def _smooth(self, gray: np.ndarray) -> np.ndarray:
    if self.blur and self.blur > 1:
      return np.stack([cv2.GaussianBlur(g, (self.blur, self.blur), 0) for g in gray])
    return gray

  def smoothed_and_background(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two sides of the median-background difference of uint8 `[T, H, W, C]` frames:
    the blurred gray frames, uint8 `[T, H, W]`, and their per-pixel median, uint8 `[H, W]`.
    A pixel is foreground where they differ by more than `threshold`."""
    if self.background != "median":
      raise ValueError(f"background={self.background!r} has no single background image; "
                       "only 'median' has")
    gray = self._smooth(to_gray(frames))
    step = max(1, -(-len(gray) // self.median_frames))
    return gray, np.median(gray[::step], axis=0).astype(np.uint8)

  def foreground_masks(self, frames: np.ndarray) -> np.ndarray:
    """Returns uint8 `[T, H, W]` masks (1 = foreground) of uint8 `[T, H, W, C]` frames."""
    if self.background == "median":
      gray, bg = self.smoothed_and_background(frames)
      return np.stack([(cv2.absdiff(g, bg) > self.threshold) for g in gray]).astype(np.uint8)
    gray = self._smooth(to_gray(frames))
    masks = np.zeros(gray.shape, np.uint8)
    bg = gray[0].astype(np.float32)
    for t, g in enumerate(gray):
      masks[t] = np.abs(g.astype(np.float32) - bg) > self.threshold
      # Update only background pixels, so slow objects are not absorbed into bg.
      update = masks[t] == 0
      bg[update] += self.alpha * (g[update] - bg[update])
    return masks


class FlowMotion(MotionDetector):
  """Optical-flow motion: DIS flow magnitude above `min_magnitude` pixels."""

  PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
             "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
             "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

  def __init__(self, preset: str = "fast", min_magnitude: float = 1.0, min_area: int = 60,
               close_kernel: int = 3, max_box_frac: float = 0.25):
    """Args:
      preset: DIS preset, one of "ultrafast", "fast", "medium".
      min_magnitude: flow magnitude (pixels/frame) above which a pixel moves (paper: 1).
      min_area: smallest connected component kept, in pixels.
      close_kernel: morphological closing kernel size (0/1 = none).
      max_box_frac: drop boxes larger than this fraction of the frame.
    """
    if preset not in self.PRESETS:
      raise ValueError(f"Unknown DIS preset {preset!r}; valid: {sorted(self.PRESETS)}.")
    self.preset, self.min_magnitude, self.min_area = preset, min_magnitude, min_area
    self.close_kernel, self.max_box_frac = close_kernel, max_box_frac
    self.source = SOURCE_FLOW

  def foreground_masks(self, frames: np.ndarray) -> np.ndarray:
    """Returns uint8 `[T, H, W]` masks of uint8 `[T, H, W, C]` frames.

    Frame t uses the flow from t to t-1 (frame 0: from 0 to 1): flow is defined on
    the grid of its first image, so this marks where objects are in frame t rather
    than where they were.
    """
    gray = to_gray(frames)
    masks = np.zeros(gray.shape, np.uint8)
    if len(gray) < 2:
      return masks
    dis = cv2.DISOpticalFlow_create(self.PRESETS[self.preset])
    for t in range(len(gray)):
      flow = dis.calc(gray[t], gray[t - 1] if t else gray[1], None)
      masks[t] = (flow[..., 0] ** 2 + flow[..., 1] ** 2) > self.min_magnitude ** 2
    return masks


class CombinedDetector:
  """Object detector plus motion boxes for what it missed (paper's black-out rule)."""

  def __init__(self, detector: VideoDetector, motion: MotionDetector,
               blackout_margin: float = 3.0):
    """Args:
      detector: the object detector (source 0 boxes).
      motion: a BackgroundMotion or FlowMotion; detector boxes are zeroed in its
        foreground mask before connected components.
      blackout_margin: pixels added on each side of a detector box before blacking it
        out; flow spreads a few pixels past object edges, and those slivers would
        otherwise come back as duplicate motion boxes.
    """
    self.detector, self.motion, self.blackout_margin = detector, motion, blackout_margin

  def detect_video(self, frames: np.ndarray) -> list[Detections]:
    """Returns detector boxes followed by the extra motion boxes, per frame."""
    frames = _check_frames(frames)
    detected = self.detector.detect_video(frames)
    masks = self.motion.foreground_masks(frames)
    grow = np.array([-1, -1, 1, 1], np.float32) * self.blackout_margin
    return [Detections.concat([d, self.motion.boxes_from_mask(m, d.boxes + grow)])
            for d, m in zip(detected, masks)]


_MOTION = {"background": BackgroundMotion, "flow": FlowMotion}
VALID_SPECS = ("background", "flow", "onnx:<path>", "onnx:<path>+background",
               "onnx:<path>+flow")


def _construct(cls, spec: str, options: dict):
  """`cls(**options)`, with an error naming the config field when an option does not fit."""
  valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
  unknown = set(options) - valid
  if unknown:
    raise ValueError(f"prep.detector_options {sorted(unknown)} are not options of the {spec!r} "
                     f"detector; valid: {sorted(valid)}")
  return cls(**options)


def build_detector(spec: str, **options) -> VideoDetector:
  """Builds a detector from a config string.

  Args:
    spec: one of "background", "flow", "onnx:<path>", "onnx:<path>+background",
      "onnx:<path>+flow".
    **options: keyword arguments. For a single detector they go to its constructor;
      for a combined one, `detector=dict(...)`, `motion=dict(...)` and
      `combined=dict(blackout_margin=...)`.

  Returns:
    An object with `detect_video(frames) -> list[Detections]`.

  Raises:
    ValueError: unknown spec.
    FileNotFoundError: the ONNX file does not exist.
  """
  if spec in _MOTION:
    return _construct(_MOTION[spec], spec, options)
  if spec.startswith("onnx:"):
    from data_prep.onnx_detector import OnnxDetector  # pylint: disable=g-import-not-at-top
    path, motion_name = spec[len("onnx:"):], None
    for name in _MOTION:
      # Split on the last "+<motion>" only, so a path may itself contain "+".
      if path.endswith("+" + name):
        path, motion_name = path[:-len(name) - 1], name
    if path and motion_name is None:
      return OnnxDetector(path, **options)
    if path:
      unknown = set(options) - {"detector", "motion", "combined"}
      if unknown:
        raise ValueError(f"Combined spec {spec!r} takes options 'detector', 'motion' and "
                         f"'combined' (dicts), got {sorted(unknown)}.")
      return CombinedDetector(OnnxDetector(path, **options.get("detector", {})),
                              _MOTION[motion_name](**options.get("motion", {})),
                              **options.get("combined", {}))
  raise ValueError(f"Unknown detector spec {spec!r}; valid forms: {', '.join(VALID_SPECS)}.")
