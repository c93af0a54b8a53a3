"""T4 / T7 / T9: ONNX teachers run in data prep, their targets in the records, and the tasks.

The tests build their own tiny ONNX teachers (nothing is downloaded): a "classifier" whose class
probabilities are a softmax of a linear map of the channel means, and a "segmenter" whose maps are
a 1x1 convolution at half resolution, so every stored target can be recomputed by hand.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from configs import test as test_config
from data_prep import teachers as teachers_lib
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax import workflow
from ssmtl_jax.data import cube_source
from ssmtl_jax.tasks import base

CLASSES = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0], [2.0, 0.0, 1.0, -1.0]],
                   np.float32)  # [3 input channels, 4 classes]
MAPS = np.array([[1.0, 0.0], [0.5, -1.0], [-0.5, 2.0]], np.float32)  # [3 channels, 2 maps]


def _save(path, nodes, inputs, outputs, inits):
  graph = helper.make_graph(nodes, "teacher", inputs, outputs,
                            [numpy_helper.from_array(v, k) for k, v in inits.items()])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
  model.ir_version = 8
  onnx.checker.check_model(model)
  onnx.save(model, str(path))
  return str(path)


def classifier_onnx(path, size=8):
  """`[N, 3, size, size]` -> softmax(channel means @ CLASSES) `[N, 4]`."""
  image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])
  probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4])
  nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
           helper.make_node("MatMul", ["m", "w"], ["logits"]),
           helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
  return _save(path, nodes, [image], [probs], {"w": CLASSES})


def segmenter_onnx(path):
  """`[N, 3, H, W]` (any size) -> 1x1 conv with MAPS after 2x2 average pooling `[N, 2, H/2, W/2]`."""
  image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
  maps = helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", 2, "h", "w"])
  nodes = [helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
           helper.make_node("Conv", ["p", "k"], ["maps"])]
  return _save(path, nodes, [image], [maps], {"k": MAPS.T[:, :, None, None].copy()})


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_classifier_teacher_resizes_and_repeats_gray_crops(tmp_path):
  teacher = teachers_lib.OnnxTeacher(classifier_onnx(tmp_path / "cls.onnx", size=8))
  assert teacher.input_hw == (8, 8) and teacher.input_channels == 3
  rng = np.random.default_rng(0)
  crops = np.repeat(np.repeat(rng.integers(0, 256, (5, 4, 4, 1), dtype=np.uint8), 2, 1), 2, 2)
  got = teacher(crops)  # 8x8 gray crops: no resize, gray repeated to RGB
  mean = crops.reshape(5, -1).mean(1, keepdims=True) / 255.0
  np.testing.assert_allclose(got, _softmax(np.repeat(mean, 3, 1) @ CLASSES), atol=1e-5)
  assert teacher.target_shape(16, 1) == (4,)
  # A 16x16 crop of constant value keeps its mean through the resize to 8x8.
  const = np.full((2, 16, 16, 1), 51, np.uint8)
  np.testing.assert_allclose(teacher(const), _softmax(np.full((2, 3), 0.2) @ CLASSES), atol=1e-5)


def test_map_teacher_output_comes_back_channels_last_at_crop_size(tmp_path):
  teacher = teachers_lib.OnnxTeacher(segmenter_onnx(tmp_path / "seg.onnx"))
  assert teacher.input_hw is None  # dynamic: crops go in at their own size
  crops = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
  maps = teacher(crops)
  assert maps.shape == (3, 16, 16, 2) and teacher.target_shape(16, 3) == (16, 16, 2)
  pooled = (crops / 255.0).reshape(3, 8, 2, 8, 2, 3).mean((2, 4))
  want = pooled @ MAPS  # [3, 8, 8, 2] at half resolution; the teacher upsamples bilinearly
  np.testing.assert_allclose(maps[:, 4:12:2, 4:12:2].mean(), want[:, 2:6, 2:6].mean(), atol=0.05)
  const = np.full((1, 16, 16, 3), 255, np.uint8)
  np.testing.assert_allclose(teacher(const)[0], np.broadcast_to(MAPS.sum(0), (16, 16, 2)),
                             atol=1e-5)


def test_teacher_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match=r"task\(s\) \['distillation'\].*prep.teachers.distillation"):
    teachers_lib.build_teachers({"distillation": ""}, ("distillation",))
  with pytest.raises(ValueError, match="onnx:<path>"):
    teachers_lib.build_teachers({"pose": "hrnet.pt"})
  with pytest.raises(FileNotFoundError, match="missing.onnx"):
    teachers_lib.build_teachers({"pose": f"onnx:{tmp_path}/missing.onnx"})
  bad = tmp_path / "corrupt.onnx"
  bad.write_bytes(b"not a model")
  with pytest.raises(ValueError, match="corrupt.onnx: not a loadable ONNX model"):
    teachers_lib.OnnxTeacher(bad)
  assert teachers_lib.build_teachers({"pose": "", "segmentation": ""}) == {}


def _batch(seed, targets):
  rng = np.random.default_rng(seed)
  window = jnp.asarray(rng.uniform(size=(2, 13, 8, 8, 1)), jnp.float32)
  return {"window": window, **{base.teacher_key(k): jnp.asarray(v) for k, v in targets.items()}}


def test_distillation_task_views_targets_loss_and_score():
  probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]], np.float32)
  task = tasks_lib.TASKS["distillation"](target_shape=(4,))
  assert task.needs_teacher and task.num_outputs(1) == 4 and task.eval_view_name == "forward"
  batch = _batch(0, {"distillation": probs})
  view, target = task.train_view(batch, jax.random.key(0))
  np.testing.assert_array_equal(view, batch["window"][:, 3:10])  # the plain forward cube
  np.testing.assert_array_equal(target, probs)
  logits = jnp.log(jnp.asarray([[0.7, 0.1, 0.1, 0.1], [0.4, 0.2, 0.2, 0.2]]))
  # L1 between the student's softmax and the teacher's probabilities, summed over classes.
  np.testing.assert_allclose(task.loss(logits, target), [0.0, 0.15 + 3 * 0.05], atol=1e-6)
  np.testing.assert_allclose(task.score(logits, target), task.loss(logits, target))
  as_logits = tasks_lib.TASKS["distillation"](target_shape=(4,), teacher_logits=True)
  _, target = as_logits.train_view(_batch(0, {"distillation": np.log(probs)}), None)
  np.testing.assert_allclose(target, probs, atol=1e-6)
  with pytest.raises(ValueError, match=r"class-vector output \[N, K\]"):
    tasks_lib.TASKS["distillation"](target_shape=(8, 8, 2)).num_outputs(1)


@pytest.mark.parametrize("name", ["segmentation", "pose"])
def test_map_tasks_views_targets_loss_and_score(name):
  maps = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype(np.float32)
  task = tasks_lib.TASKS[name](target_shape=(8, 8, 3))
  assert task.needs_teacher and task.head_kind == "decoder" and task.num_outputs(1) == 3
  batch = _batch(1, {name: maps})
  view, target = task.eval_view(batch, jax.random.key(0))
  assert view.shape == (2, 7, 8, 8, 1)
  for t in range(7):  # the middle crop tiled over the clip
    np.testing.assert_array_equal(view[:, t], batch["window"][:, 6])
  np.testing.assert_array_equal(target, maps)
  output = maps + np.array([0.0, 2.0], np.float32)[:, None, None, None]
  np.testing.assert_allclose(task.loss(output, target), [0.0, 4.0], atol=1e-6)
  np.testing.assert_allclose(task.score(output, target), [0.0, 4.0], atol=1e-6)
  with pytest.raises(ValueError, match=r"map outputs \[N, K, h, w\]"):
    tasks_lib.TASKS[name](target_shape=(4,)).num_outputs(1)


def test_prep_stores_teacher_targets_and_ssmtl_trains_and_scores(tmp_path):
  """SSMTL (T1-T4) + T7 end to end on the tiny synthetic data: prep runs both teachers once per
  cube, the records hold their targets, and training and evaluation read them."""
  config = test_config.get_config()
  config.tasks = ("arrow_of_time", "middle_box", "distillation", "segmentation")
  config.model.cvt_blocks = 0  # SSMTL's plain 3D CNN
  config.train.num_steps = 2
  config.eval.overlay_videos = 0
  workdir = tmp_path / "run"
  missing = config.copy_and_resolve_references()
  with pytest.raises(ValueError, match="segmentation.*--config.prep.teachers.segmentation="):
    workflow.run(missing, str(tmp_path / "no_teacher"), "prep")
  config.prep.teachers.distillation = "onnx:" + classifier_onnx(tmp_path / "cls.onnx")
  config.prep.teachers.segmentation = "onnx:" + segmenter_onnx(tmp_path / "seg.onnx")
  metrics = workflow.run(config, str(workdir), "all")

  manifest = json.loads((workdir / "records" / "manifest.json").read_text())
  assert manifest["teachers"]["distillation"]["shape"] == [4]
  assert manifest["teachers"]["segmentation"]["shape"] == [16, 16, 2]
  test = cube_source.CubeSource(workdir / "records", "testing")
  cubes = test.read_all(range(min(5, len(test))))
  middle = cubes["window"][:, cubes["window"].shape[1] // 2]
  mean = middle.reshape(len(middle), -1).mean(1, keepdims=True) / 255.0
  np.testing.assert_allclose(cubes["teacher/distillation"], _softmax(np.repeat(mean, 3, 1) @ CLASSES),
                             atol=2e-3)  # stored as float16
  assert cubes["teacher/segmentation"].shape == (len(middle), 16, 16, 2)
  assert {"distillation", "segmentation"} <= set(metrics["per_task_micro_auc"])
  assert 0.0 <= metrics["micro_auc"] <= 1.0
