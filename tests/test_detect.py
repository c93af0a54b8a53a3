"""Tests for data_prep.detect: motion detectors, the ONNX detector and the black-out rule."""

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper, TensorProto

from data_prep import detect
from data_prep import onnx_detector

H, W, T = 60, 80, 16


def _clip(objects):
  """A static textured scene with moving textured squares.

  Args:
    objects: list of (x0, y0, vx, size): top-left at frame 0, px/frame, side.

  Returns:
    (frames uint8 [T, H, W, 1], list per object of [T, 4] true xyxy boxes).
  """
  rng = np.random.default_rng(0)
  # Static texture gives DIS flow something to lock onto; the same every frame.
  # Smooth (blurred) textures: DIS is gradient based and i.i.d. pixel noise defeats it.
  background = cv2.GaussianBlur(rng.uniform(40, 120, (H, W)), (0, 0), 1.5).astype(np.uint8)
  frames = np.repeat(background[None], T, axis=0)
  truth = []
  for x0, y0, vx, size in objects:
    boxes = []
    # Aperiodic texture: a periodic one aliases with the motion and confuses flow.
    pattern = cv2.GaussianBlur(rng.uniform(150, 255, (size, size)), (0, 0), 1).astype(np.uint8)
    for t in range(T):
      x = x0 + vx * t
      frames[t, y0:y0 + size, x:x + size] = pattern
      boxes.append([x, y0, x + size, y0 + size])
    truth.append(np.array(boxes, np.float32))
  return frames[..., None], truth


def _find(dets, box, tol):
  """Index of the detection matching `box` within `tol` px on every side, or None."""
  close = np.all(np.abs(dets.boxes - np.asarray(box)) <= tol, axis=1)
  return int(np.argmax(close)) if close.any() else None


def test_detections_empty_and_concat():
  empty = detect.Detections.empty()
  assert len(empty) == 0 and empty.boxes.shape == (0, 4)
  one = detect.Detections([[1, 2, 3, 4]], [0.9], [5], [0])
  both = detect.Detections.concat([one, empty, one])
  assert len(both) == 2 and both.classes.dtype == np.int32 and both.sources.dtype == np.int8
  with pytest.raises(ValueError, match="disagree"):
    detect.Detections([[1, 2, 3, 4]], [0.9, 0.8], [5], [0])


def test_background_motion_box_and_min_area():
  # A 10x10 square moving 2 px/frame and a 3x3 blob (9 px) below min_area.
  frames, (square, _) = _clip([(5, 10, 2, 10), (60, 45, -1, 3)])
  dets = detect.BackgroundMotion(min_area=30).detect_video(frames)
  assert len(dets) == T
  for t, frame_dets in enumerate(dets):
    assert len(frame_dets) == 1, f"frame {t}: {frame_dets.boxes}"
    assert _find(frame_dets, square[t], tol=2) is not None, (t, frame_dets.boxes, square[t])
    assert frame_dets.sources[0] == detect.SOURCE_BACKGROUND
    assert frame_dets.classes[0] == -1 and frame_dets.scores[0] == 1
  # With a lower min_area the small blob is found too.
  small = detect.BackgroundMotion(min_area=4).detect_video(frames)
  assert all(len(d) == 2 for d in small)


def test_background_motion_running_average():
  frames, (square,) = _clip([(5, 10, 3, 10)])
  dets = detect.BackgroundMotion(min_area=30, background="running").detect_video(frames)
  # The running background starts from frame 0, which contains the square; later
  # frames must still give the square's current box.
  for t in range(6, T):
    assert _find(dets[t], square[t], tol=2) is not None, (t, dets[t].boxes)


def _best_iou(boxes, box):
  """Largest IoU between xyxy `boxes` [N, 4] and one xyxy `box` (0 when N = 0)."""
  if not len(boxes):
    return 0.0
  b = np.asarray(boxes)
  iw = np.clip(np.minimum(b[:, 2], box[2]) - np.maximum(b[:, 0], box[0]), 0, None)
  ih = np.clip(np.minimum(b[:, 3], box[3]) - np.maximum(b[:, 1], box[1]), 0, None)
  inter = iw * ih
  union = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + (box[2] - box[0]) * (box[3] - box[1])
  return float((inter / (union - inter)).max())


def test_flow_motion_finds_square():
  frames, (square, _) = _clip([(5, 10, 2, 10), (60, 45, -1, 3)])
  dets = detect.FlowMotion(min_area=30).detect_video(frames)
  assert len(dets) == T
  for t in range(T):
    # DIS flow spreads a few pixels past object edges, so boxes are looser than
    # background subtraction's; the 3x3 blob moves 1 px/frame, not above 1 px.
    assert len(dets[t]) == 1, (t, dets[t].boxes)
    assert _best_iou(dets[t].boxes, square[t]) >= 0.4, (t, dets[t].boxes, square[t])
    assert np.all(dets[t].sources == detect.SOURCE_FLOW)


def _tiny_onnx(path, output, size=(320, 320)):
  """Writes a model that ignores the image (except its shape) and emits `output`."""
  image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *size])
  out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
  nodes = [
      helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
      helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
      helper.make_node("Add", ["const", "nothing"], ["output0"]),
  ]
  inits = [numpy_helper.from_array(output.astype(np.float32), "const"),
           numpy_helper.from_array(np.zeros((), np.float32), "zero")]
  graph = helper.make_graph(nodes, "fake_yolo", [image], [out], inits)
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
  model.ir_version = 8
  onnx.checker.check_model(model)
  onnx.save(model, str(path))
  return path


# Original frame 240x360 (HxW) → 320x320 input: scale 8/9, 213 rows, 53 rows of padding on top.
SCALE, TOP = 320 / 360, 53


def _to_input(box):
  """Original xyxy → letterboxed cx, cy, w, h."""
  x0, y0, x1, y1 = box
  x0, x1 = x0 * SCALE, x1 * SCALE
  y0, y1 = y0 * SCALE + TOP, y1 * SCALE + TOP
  return [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]


def _v8_output():
  rows = [  # original-pixel box, class-0 score, class-1 score
      ([100, 50, 160, 130], 0.95, 0.01),   # the confident person
      ([102, 52, 161, 131], 0.85, 0.02),   # duplicate: removed by NMS
      ([200, 100, 260, 200], 0.79, 0.10),  # just below the confidence threshold
      ([10, 10, 40, 40], 0.20, 0.30),      # low confidence
      ([300, 150, 350, 230], 0.05, 0.90),  # confident class 1
  ] + [([0, 0, 5, 5], 0.0, 0.0)] * 4       # padding anchors
  table = np.array([_to_input(b) + [s0, s1] for b, s0, s1 in rows], np.float32)
  return table.T[None]  # [1, 4+K, N]


def test_onnx_detector_v8_letterbox_and_threshold(tmp_path):
  path = _tiny_onnx(tmp_path / "fake.onnx", _v8_output())
  frames = np.zeros((2, 240, 360, 3), np.uint8)
  dets = onnx_detector.OnnxDetector(path, conf=0.8).detect_video(frames)
  assert len(dets) == 2
  d = dets[0]
  assert len(d) == 2, d.boxes
  person = _find(d, [100, 50, 160, 130], tol=1)
  assert person is not None, d.boxes
  assert d.classes[person] == 0 and d.scores[person] == pytest.approx(0.95)
  other = _find(d, [300, 150, 350, 230], tol=1)
  assert other is not None and d.classes[other] == 1
  assert np.all(d.sources == detect.SOURCE_DETECTOR)

  only_people = onnx_detector.OnnxDetector(path, conf=0.8, classes=[0]).detect_video(frames[:1])[0]
  assert len(only_people) == 1 and only_people.classes[0] == 0
  # Grayscale frames are accepted (repeated to RGB).
  assert len(onnx_detector.OnnxDetector(path).detect_video(frames[:1, ..., :1])[0]) == 2


def test_onnx_detector_v5_objectness(tmp_path):
  table = np.array([
      _to_input([100, 50, 160, 130]) + [0.9, 0.95, 0.05],  # 0.9 * 0.95 ≥ 0.8
      _to_input([200, 100, 260, 200]) + [0.5, 0.99, 0.0],  # objectness too low
  ] + [[1, 1, 1, 1, 0, 0, 0]] * 8, np.float32)[None]      # [1, N, 5+K]
  path = _tiny_onnx(tmp_path / "v5.onnx", table)
  d = onnx_detector.OnnxDetector(path, conf=0.8).detect_video(np.zeros((1, 240, 360, 3), np.uint8))[0]
  assert len(d) == 1 and _find(d, [100, 50, 160, 130], tol=1) is not None


class _FakeDetector:
  """Returns a fixed box per frame, like an object detector that saw object A."""

  def __init__(self, boxes):
    self.boxes = boxes

  def detect_video(self, frames):
    return [detect.Detections([b], [0.9], [0], [detect.SOURCE_DETECTOR])
            for b in self.boxes[:len(frames)]]


@pytest.mark.parametrize("motion_cls", [detect.BackgroundMotion, detect.FlowMotion])
def test_combined_detector_blackout(motion_cls):
  frames, (obj_a, obj_b) = _clip([(12, 8, 2, 10), (60, 40, -2, 10)])
  # The detector box is A's box grown by 2 px, as a real detector would roughly give.
  detector_boxes = obj_a + np.array([-2, -2, 2, 2], np.float32)
  combined = detect.CombinedDetector(_FakeDetector(detector_boxes), motion_cls(min_area=30))
  dets = combined.detect_video(frames)
  # Without the black-out both objects would come back as motion boxes.
  assert all(len(d) == 2 for d in motion_cls(min_area=30).detect_video(frames))
  for t in range(T):
    d = dets[t]
    motion = d.sources != detect.SOURCE_DETECTOR
    assert (d.sources == detect.SOURCE_DETECTOR).sum() == 1
    assert motion.sum() == 1, (t, d.boxes, d.sources)
    if motion_cls is detect.BackgroundMotion:
      assert np.all(np.abs(d.boxes[motion][0] - obj_b[t]) <= 2), (t, d.boxes, obj_b[t])
    else:
      assert _best_iou(d.boxes[motion], obj_b[t]) >= 0.4, (t, d.boxes, obj_b[t])


def test_build_detector_specs(tmp_path):
  assert isinstance(detect.build_detector("background", min_area=10), detect.BackgroundMotion)
  assert isinstance(detect.build_detector("flow", preset="ultrafast"), detect.FlowMotion)
  path = _tiny_onnx(tmp_path / "fake+model.onnx", _v8_output())
  assert isinstance(detect.build_detector(f"onnx:{path}", conf=0.5), onnx_detector.OnnxDetector)
  combined = detect.build_detector(f"onnx:{path}+flow", detector={"conf": 0.5},
                                   motion={"min_area": 5})
  assert isinstance(combined, detect.CombinedDetector)
  assert isinstance(combined.motion, detect.FlowMotion) and combined.motion.min_area == 5
  assert isinstance(detect.build_detector(f"onnx:{path}+background").motion,
                    detect.BackgroundMotion)

  with pytest.raises(ValueError) as err:
    detect.build_detector("yolo")
  for form in ("background", "flow", "onnx:<path>", "onnx:<path>+background", "onnx:<path>+flow"):
    assert form in str(err.value)
  with pytest.raises(FileNotFoundError, match="missing.onnx"):
    detect.build_detector(f"onnx:{tmp_path / 'missing.onnx'}+background")


def test_unknown_detector_lists_the_valid_specs():
  with pytest.raises(ValueError, match=r"Unknown detector spec 'yolo'; valid forms: background, "
                                       r"flow, onnx:<path>"):
    detect.build_detector("yolo")
