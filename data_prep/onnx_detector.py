"""A YOLO-family object detector exported to ONNX, run with onnxruntime (`onnx:<path>`).

Returns the same per-frame `detect.Detections` as the motion detectors; `detect.build_detector`
builds it from a config spec. No weights are downloaded: the user brings the .onnx file.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import cv2
import numpy as np

from data_prep.detect import SOURCE_DETECTOR, Detections, _check_frames


class OnnxDetector:
  """A YOLO-family detector exported to ONNX, run with onnxruntime on CPU.

  Accepts YOLOv8-style output `[1, 4+K, N]` (cx, cy, w, h, K class scores) and
  YOLOv5-style `[1, N, 5+K]` (cx, cy, w, h, objectness, K class scores), in pixels
  of the letterboxed model input.
  """

  def __init__(self, path: str | pathlib.Path, conf: float = 0.8, iou: float = 0.45,
               classes: Sequence[int] | None = None, output_format: str = "auto",
               default_size: int = 640):
    """Args:
      path: the .onnx file.
      conf: confidence threshold (paper: 0.8).
      iou: NMS IoU threshold.
      classes: class ids to keep (None = all).
      output_format: "auto", "v8" or "v5".
      default_size: input side used when the model's input shape is dynamic.
    """
    import onnxruntime  # Imported here so motion-only runs do not need it.
    path = pathlib.Path(path)
    if not path.is_file():
      raise FileNotFoundError(f"ONNX detector {path} does not exist.")
    if output_format not in ("auto", "v8", "v5"):
      raise ValueError(f"output_format must be 'auto', 'v8' or 'v5', got {output_format!r}.")
    self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model_input = self.session.get_inputs()[0]
    self.input_name = model_input.name
    shape = model_input.shape
    if len(shape) != 4:
      raise ValueError(f"{path}: expected an NCHW image input, got shape {shape}.")
    dims = [d if isinstance(d, int) and d > 0 else default_size for d in shape[2:]]
    self.input_hw = (dims[0], dims[1])
    self.conf, self.iou, self.output_format = conf, iou, output_format
    self.classes = None if classes is None else np.asarray(list(classes), np.int64)
    self.path = path

  def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Resizes keeping aspect ratio and pads with grey 114 (the YOLO convention)."""
    h, w = image.shape[:2]
    ih, iw = self.input_hw
    scale = min(ih / h, iw / w)
    nh, nw = int(round(h * scale)), int(round(w * scale))
    pad_y, pad_x = (ih - nh) / 2, (iw - nw) / 2
    canvas = np.full((ih, iw, 3), 114, np.uint8)
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    canvas[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh),
                                                      interpolation=cv2.INTER_LINEAR)
    return canvas, scale, left, top

  def _parse(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (cxcywh [N, 4], scores [N], classes [N]) from a raw model output."""
    out = np.asarray(output, np.float32)
    if out.ndim == 3:
      if out.shape[0] != 1:
        raise ValueError(f"{self.path}: expected batch 1 output, got {out.shape}.")
      out = out[0]
    if out.ndim != 2:
      raise ValueError(f"{self.path}: expected output [1, 4+K, N] or [1, N, 5+K], got {output.shape}.")
    fmt = self.output_format
    if fmt == "auto":
      # YOLOv8 puts the few channels first and the many anchors last.
      fmt = "v8" if out.shape[0] < out.shape[1] else "v5"
    if fmt == "v8":
      rows = out.T
      cls_scores = rows[:, 4:]
    else:
      rows = out
      cls_scores = rows[:, 5:] * rows[:, 4:5]
    if cls_scores.shape[1] == 0:
      raise ValueError(f"{self.path}: output {output.shape} has no class columns for format {fmt}.")
    classes = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(rows)), classes]
    return rows[:, :4], scores, classes

  def detect_frame(self, frame: np.ndarray) -> Detections:
    """Detects objects in one uint8 `[H, W, C]` RGB or gray frame."""
    h, w = frame.shape[:2]
    rgb = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame
    canvas, scale, left, top = self._letterbox(rgb)
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    output = self.session.run(None, {self.input_name: blob})[0]
    cxcywh, scores, classes = self._parse(output)
    keep = scores >= self.conf
    if self.classes is not None:
      keep &= np.isin(classes, self.classes)
    cxcywh, scores, classes = cxcywh[keep], scores[keep], classes[keep]
    if not len(scores):
      return Detections.empty()
    xywh = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, 2:]], axis=1)
    # Class-aware NMS: offset boxes per class so different classes never suppress.
    offset = classes[:, None].astype(np.float32) * 4096.0
    shifted = xywh.copy()
    shifted[:, :2] += offset
    idx = np.asarray(cv2.dnn.NMSBoxes(shifted.tolist(), scores.tolist(), self.conf, self.iou),
                     np.int64).reshape(-1)
    xywh, scores, classes = xywh[idx], scores[idx], classes[idx]
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - left) / scale, 0, w)
    boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - top) / scale, 0, h)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    n = int(valid.sum())
    return Detections(boxes[valid], scores[valid], classes[valid],
                      np.full(n, SOURCE_DETECTOR))

  def detect_video(self, frames: np.ndarray) -> list[Detections]:
    """Returns one Detections per frame of uint8 `[T, H, W, C]` frames."""
    return [self.detect_frame(f) for f in _check_frames(frames)]
