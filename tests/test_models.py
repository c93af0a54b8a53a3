"""Tests for ssmtl_jax.models: layer lowerings against references, CvT, heads, the full model.

Everything runs on tiny shapes (batch <= 4, crops 4-16 px, widths <= 8) so the file takes a few
seconds on CPU; the published network is only traced (`jax.eval_shape`), never run.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ssmtl_jax import backend
from ssmtl_jax.models import backbone3d
from ssmtl_jax.models import cvt
from ssmtl_jax.models import layers
from ssmtl_jax.models import ssmctb
from ssmtl_jax.models import ssmtl

# Model-level tests use the lowerings that compile fastest on CPU; the others are checked
# against them layer by layer below.
TINY_BACKBONE = dict(trunk="tiny", embed_dim=8, cvt_blocks=1, cvt_heads=2, mlp_ratio=2)
TINY_HEADS = (("arrow_of_time", "classifier", 2), ("motion_irregularity", "classifier", 2),
              ("middle_box", "decoder", 3))


def _normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _fill(shapes, seed):
  """Random values for a tree of variable shapes: fan-in-scaled kernels, BN/LN near identity.

  Tests initialise by shape (`jax.eval_shape`) and fill on the host: compiling Flax's
  truncated-normal initialisers costs seconds on CPU, and non-trivial BN statistics and biases
  test more than the zeros/ones a fresh init gives.
  """
  rng = np.random.default_rng(seed)

  def leaf(path, s):
    name = path[-1].key
    if name == "kernel":
      v = rng.normal(size=s.shape) / np.sqrt(max(1, math.prod(s.shape[:-1])))
    elif name == "var":
      v = rng.uniform(0.5, 1.5, s.shape)
    elif name == "scale":
      v = 1.0 + 0.1 * rng.normal(size=s.shape)
    else:  # bias, mean
      v = 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(v, s.dtype)

  return jax.tree_util.tree_map_with_path(leaf, shapes)


def _init(module, *args, seed=0):
  """Variables of `module` for `args`, made by shape and filled by `_fill`."""
  return _fill(jax.eval_shape(lambda: module.init(jax.random.key(0), *args)), seed)


# ---------------------------------------------------------------- Conv3D


def _numpy_conv3d(x, kernel):
  """Stride-1 'SAME' 3D cross-correlation by explicit loops (the definition, no lax)."""
  kt, kh, kw, _, cout = kernel.shape
  b, t, h, w, _ = x.shape
  pads = [(0, 0), ((kt - 1) // 2, kt // 2), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2),
          (0, 0)]
  xp = np.pad(x, pads)
  y = np.zeros((b, t, h, w, cout), np.float64)
  for ti in range(t):
    for hi in range(h):
      for wi in range(w):
        patch = xp[:, ti:ti + kt, hi:hi + kh, wi:wi + kw, :]  # [B, kt, kh, kw, Cin]
        y[:, ti, hi, wi] = np.einsum("bijkc,ijkco->bo", patch, kernel)
  return y


def _apply(module, variables, *args, **kwargs):
  """`module.apply` compiled as one program (faster than op-by-op on CPU); args are constants."""
  return jax.jit(lambda v: module.apply(v, *args, **kwargs))(variables)


@pytest.mark.parametrize("kernel_size", [(3, 3, 3), (1, 3, 3), (3, 1, 2)])
def test_conv3d_im2col_equals_native(kernel_size):
  x = _normal(0, (2, 5, 6, 6, 3))
  native = layers.Conv3D(4, kernel_size, use_bias=True, impl="native")
  im2col = layers.Conv3D(4, kernel_size, use_bias=True, impl="im2col")
  variables = _init(native, x)  # non-zero bias, so a dropped bias in one lowering shows
  assert variables["params"]["kernel"].shape == (*kernel_size, 3, 4)

  @jax.jit
  def both(v, x):
    return native.apply(v, x), im2col.apply(v, x)

  y_native, y_im2col = both(variables, x)
  assert y_native.shape == (2, 5, 6, 6, 4)
  np.testing.assert_allclose(y_im2col, y_native, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", layers.CONV_IMPLS)
def test_conv3d_matches_numpy_loop(impl):
  x = _normal(2, (2, 3, 4, 5, 2))
  conv = layers.Conv3D(3, (3, 3, 3), impl=impl)
  variables = _init(conv, x, seed=3)
  kernel = np.asarray(variables["params"]["kernel"], np.float64)
  assert kernel.shape == (3, 3, 3, 2, 3)
  expected = _numpy_conv3d(np.asarray(x, np.float64), kernel)
  np.testing.assert_allclose(_apply(conv, variables, x), expected, rtol=1e-5, atol=1e-5)


def test_conv3d_unknown_impl():
  with pytest.raises(ValueError, match="im2col"):
    _init(layers.Conv3D(2, impl="winograd"), jnp.zeros((1, 3, 4, 4, 1)))


# ---------------------------------------------------------------- DepthwiseConv3D


@pytest.mark.parametrize("strides,size", [
    ((1, 1, 1), 4),
    ((1, 1, 1), 5),
    ((2, 2, 2), 4),
    ((2, 2, 2), 5),
    ((1, 2, 2), 4),
    ((1, 2, 2), 5),
])
def test_depthwise_shift_equals_grouped(strides, size):
  """T = 7 (odd) always; H = W = size. Outputs and gradients (kernel and input) must match."""
  x = _normal(4, (2, 7, size, size, 3))
  grouped = layers.DepthwiseConv3D(strides=strides, impl="grouped")
  shift = layers.DepthwiseConv3D(strides=strides, impl="shift")
  variables = _init(grouped, x, seed=5)
  expected_shape = (2, *(-(-n // s) for n, s in zip((7, size, size), strides)), 3)
  # A weighted sum, so every output position enters the gradients.
  weights = _normal(6, expected_shape)

  @jax.jit
  def outputs_and_grads(params, x):
    res = []
    for module in (grouped, shift):
      y, vjp = jax.vjp(lambda p, i: module.apply({"params": p}, i), params, x)
      res.append((y, vjp(weights)))  # grads of sum(weights * y) w.r.t. kernel and input
    return res

  (y_grouped, g_grouped), (y_shift, g_shift) = outputs_and_grads(variables["params"], x)
  assert y_grouped.shape == expected_shape
  assert y_shift.shape == expected_shape
  np.testing.assert_allclose(y_shift, y_grouped, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g_shift), jax.tree.leaves(g_grouped)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [4, 5])
def test_depthwise_shift_matches_lax_same(size):
  # Documents which convention the shift lowering follows: lax 'SAME' padding.
  x = _normal(7, (1, 7, size, size, 2))
  shift = layers.DepthwiseConv3D(strides=(2, 2, 2), impl="shift")
  variables = _init(shift, x, seed=8)
  ref = lax.conv_general_dilated(x, variables["params"]["kernel"], (2, 2, 2), "SAME",
                                 dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
                                 feature_group_count=2)
  np.testing.assert_allclose(_apply(shift, variables, x), ref, rtol=1e-5, atol=1e-5)


def test_depthwise_unknown_impl():
  with pytest.raises(ValueError, match="shift"):
    _init(layers.DepthwiseConv3D(impl="fft"), jnp.zeros((1, 3, 4, 4, 2)))


# ---------------------------------------------------------------- per-backend choices


def test_auto_choices_follow_the_backend():
  from configs import common  # pylint: disable=g-import-not-at-top
  m = common.get_config().model
  assert (m.depthwise_impl, m.dtype) == ("auto", "auto")  # the shipped default
  # This process runs on CPU (8 fake devices): the CPU choices.
  assert jax.default_backend() == "cpu"
  here = backend.resolve_model_choices(m)
  assert here["depthwise_impl"] == "shift" and here["dtype"] == "float32"
  assert here["conv_impl"] == here["first_conv_impl"] == "native"  # sharded CPU mesh: lax.conv
  for platform in ("gpu", "tpu"):
    assert backend.resolve_model_choices(m, platform) == {
        "conv_impl": "native", "first_conv_impl": "native", "depthwise_impl": "grouped",
        "dtype": "bfloat16"}
  assert backend.resolve_depthwise_impl("auto", "cpu") == "shift"
  assert backend.resolve_dtype("auto", "cpu") == "float32"
  # Explicit choices pass through on every backend.
  assert backend.resolve_depthwise_impl("shift", "gpu") == "shift"
  assert backend.resolve_dtype("float32", "tpu") == "float32"
  with pytest.raises(ValueError, match="model.dtype='float16' unknown"):
    backend.resolve_dtype("float16")
  with pytest.raises(ValueError, match="model.depthwise_impl='fft' unknown"):
    backend.resolve_depthwise_impl("fft")
  # The model receives modules with the lowering bound, not lowering names.
  gpu = backend.model_convs(m, "gpu")
  assert {k: (v.func, v.keywords) for k, v in gpu.items()} == {
      "conv": (layers.Conv3D, {"impl": "native"}), "first_conv": (layers.Conv3D, {"impl": "native"}),
      "depthwise_conv": (layers.DepthwiseConv3D, {"impl": "grouped"}),
      "masked_conv": (ssmctb.MaskedConv3D, {"impl": "native"})}
  assert backend.model_convs(m, "cpu")["depthwise_conv"].keywords == {"impl": "shift"}
  # The built-in teacher's depthwise convolutions follow the model's rule.
  assert backend.teacher_depthwise("cpu") == "shift" and backend.teacher_depthwise("gpu") == "grouped"


def test_test_config_keeps_its_explicit_depthwise_choice():
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  m = test_config.get_config().model
  assert backend.resolve_model_choices(m, "gpu")["depthwise_impl"] == "grouped"
  assert backend.resolve_model_choices(m, "cpu")["depthwise_impl"] == "grouped"


# ---------------------------------------------------------------- max_pool_hw


def test_max_pool_hw_matches_numpy():
  x = np.asarray(_normal(9, (2, 3, 4, 6, 2)))
  expected = np.zeros((2, 3, 2, 3, 2), np.float32)
  for i in range(2):
    for j in range(3):
      expected[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
  np.testing.assert_array_equal(layers.max_pool_hw(jnp.asarray(x)), expected)


@pytest.mark.parametrize("h,w", [(5, 4), (4, 5), (3, 3)])
def test_max_pool_hw_odd_size_raises(h, w):
  with pytest.raises(ValueError, match="even"):
    layers.max_pool_hw(jnp.zeros((1, 2, h, w, 1)))


# ---------------------------------------------------------------- CvT


@pytest.mark.parametrize("mode,expected", [("3d", (2, 3, 4, 4, 8)), ("2d", (2, 4, 4, 8))])
def test_cvt_stack_shapes(mode, expected):
  x = jax.ShapeDtypeStruct((2, 3, 4, 4, 8), jnp.float32)
  stack = cvt.CvTStack(num_blocks=2, num_heads=2, mode=mode, mlp_ratio=2)
  y, _ = jax.eval_shape(lambda x: stack.init_with_output(jax.random.key(0), x, False), x)
  assert y.shape == expected


def test_cvt_2d_sees_only_the_temporal_mean():
  # The 2D CvT averages time first, so reversing the frames cannot change its output.
  x = _normal(12, (2, 3, 4, 4, 8))
  stack = cvt.CvTStack(num_blocks=1, num_heads=2, mode="2d", mlp_ratio=2)
  y = _apply(stack, _init(stack, x, False, seed=13), jnp.concatenate([x, x[:, ::-1]]), False)
  np.testing.assert_allclose(y[2:], y[:2], atol=1e-5)
  assert not np.allclose(y[0], y[1], atol=1e-4)  # while different inputs do differ


def test_cvt_unknown_mode():
  with pytest.raises(ValueError, match="mode"):
    _init(cvt.CvTStack(num_blocks=1, num_heads=2, mode="4d"), jnp.zeros((1, 2, 4, 4, 8)), False)


def test_cvt_heads_must_divide_dim():
  with pytest.raises(ValueError, match="divisible"):
    _init(cvt.CvTStack(num_blocks=1, num_heads=3), jnp.zeros((1, 2, 4, 4, 8)), False)


# ---------------------------------------------------------------- SSMTLModel


def _tiny_model(dtype=jnp.float32):
  return ssmtl.SSMTLModel(head_specs=TINY_HEADS, backbone=TINY_BACKBONE, head_width=8, dtype=dtype)


ALL_ROUTES = tuple((name, "v") for name, _, _ in TINY_HEADS)


@pytest.fixture(scope="module")
def tiny():
  """A tiny float32 model, random variables (all heads), a `[B=2, T=7, 16, 16, 3]` input and
  the eval-mode outputs of every head on it."""
  model = _tiny_model()
  x = jax.random.uniform(jax.random.key(20), (2, 7, 16, 16, 3))
  variables = _init(model, {"v": x}, ALL_ROUTES, False, seed=21)
  return model, variables, x, _apply(model, variables, {"v": x}, ALL_ROUTES, False)


def test_model_output_shapes(tiny):
  *_, out = tiny
  assert set(out) == {"arrow_of_time", "motion_irregularity", "middle_box"}
  assert out["arrow_of_time"].shape == (2, 2)
  assert out["motion_irregularity"].shape == (2, 2)
  assert out["middle_box"].shape == (2, 16, 16, 3)
  for v in out.values():
    assert v.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(v)))
  # Different heads, different outputs (each head has its own parameters).
  assert not np.allclose(out["arrow_of_time"], out["motion_irregularity"], atol=1e-4)


def test_model_views_must_share_shape(tiny):
  model, variables, x, _ = tiny
  with pytest.raises(ValueError, match="one shape"):
    jax.eval_shape(lambda v: model.apply(v, {"a": x, "b": x[:, :5]}, (("arrow_of_time", "a"),),
                                         False), variables)


def test_shared_view_equals_separate_routes(tiny):
  # In the fixture T1, T2 and T3 all read one shared view "v".
  model, variables, x, shared = tiny
  other = jax.random.uniform(jax.random.key(22), x.shape)

  @jax.jit
  def run(v, x, other):
    apply = lambda views, routes: model.apply(v, views, routes, False)
    # T1 routed alone to its own view, batched beside an unrelated view read by T2 (eval-mode BN
    # is per example, so nothing may leak between views); T2 routed alone.
    separate = apply({"a": x, "b": other}, (("arrow_of_time", "a"), ("motion_irregularity", "b")))
    alone = apply({"a": x}, (("motion_irregularity", "a"),))
    return separate, alone

  separate, alone = run(variables, x, other)
  assert set(alone) == {"motion_irregularity"}
  np.testing.assert_allclose(separate["arrow_of_time"], shared["arrow_of_time"], atol=1e-5)
  np.testing.assert_allclose(alone["motion_irregularity"], shared["motion_irregularity"],
                             atol=1e-5)
  # The routing is real: the same head on another view gives another answer.
  assert not np.allclose(separate["motion_irregularity"], shared["motion_irregularity"],
                         atol=1e-4)


def test_model_bfloat16_keeps_float32_params_and_outputs(tiny):
  _, variables, x, out32 = tiny
  model16 = _tiny_model(jnp.bfloat16)
  shapes = jax.eval_shape(lambda: model16.init(jax.random.key(0), {"v": x}, ALL_ROUTES, False))
  assert jax.tree.structure(shapes) == jax.tree.structure(variables)
  for leaf in jax.tree.leaves(shapes):
    assert leaf.dtype == jnp.float32
  # Train mode (traced only): outputs and updated BN statistics stay float32 too.
  out_train, stats = jax.eval_shape(
      lambda v: model16.apply(v, {"v": x}, ALL_ROUTES, True, mutable=["batch_stats"]), variables)
  for leaf in jax.tree.leaves((out_train, stats)):
    assert leaf.dtype == jnp.float32

  out16 = _apply(model16, variables, {"v": x}, ALL_ROUTES, False)
  for task, _, _ in TINY_HEADS:
    assert out16[task].dtype == jnp.float32
    assert out16[task].shape == out32[task].shape
    assert bool(jnp.all(jnp.isfinite(out16[task])))
    # bfloat16 keeps ~3 significant digits: the same params give nearly the same outputs.
    scale = float(jnp.abs(out32[task]).max())
    np.testing.assert_allclose(out16[task], out32[task], atol=0.05 * scale + 1e-2)


def test_backbone_unknown_trunk():
  with pytest.raises(ValueError, match="deep_wide"):
    _init(backbone3d.Backbone(trunk="huge"), jnp.zeros((1, 7, 16, 16, 1)), False)


# ---------------------------------------------------------------- the published network


def _published_param_count(trunk, channels, dim, blocks, mlp_ratio, head_specs, head_width):
  """Parameters from the layer list of DESIGN §3: conv weights, BN and LN scale + bias, dense
  kernel + bias."""
  bn = lambda c: 2 * c
  n, cin = 0, channels
  for stage in backbone3d.TRUNKS[trunk]:
    for width in stage:
      n += 27 * cin * width + bn(width)  # Conv3D 3x3x3, no bias (a BN follows)
      cin = width
  n += cin * dim + dim  # pointwise embedding
  per_block = (2 * 2 * dim  # two LayerNorms: scale + bias each
               + 3 * (27 * dim + bn(dim) + dim * dim + dim)  # Q, K, V: depthwise + BN + dense
               + dim * dim + dim  # attention output projection
               + dim * mlp_ratio * dim + mlp_ratio * dim + mlp_ratio * dim * dim + dim)  # MLP
  n += blocks * per_block
  num_up = len(backbone3d.TRUNKS[trunk])
  for _, kind, k in head_specs:
    n += 9 * dim * head_width + bn(head_width)  # first conv 3x3 + BN
    if kind == "classifier":
      n += head_width * k + k
    else:
      n += (num_up - 1) * (9 * head_width * head_width + bn(head_width))
      n += 9 * head_width * k + k
  return n


def test_published_network_shapes_and_param_count():
  dim, blocks, heads, channels = 192, 3, 12, 3
  backbone = dict(trunk="deep_wide", embed_dim=dim, cvt_blocks=blocks, cvt_heads=heads)
  x = jax.ShapeDtypeStruct((2, 7, 64, 64, channels), jnp.float32)
  count = lambda tree: sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))

  feats, bb_vars = jax.eval_shape(
      lambda v: backbone3d.Backbone(**backbone).init_with_output(jax.random.key(0), v, False), x)
  assert feats.shape == (2, 8, 8, dim)
  assert count(bb_vars["params"]) == _published_param_count("deep_wide", channels, dim, blocks, 4,
                                                            (), 64)

  specs = (("arrow_of_time", "classifier", 2), ("motion_irregularity", "classifier", 2),
           ("middle_box", "decoder", channels), ("inpainting", "decoder", channels))
  model = ssmtl.SSMTLModel(head_specs=specs, backbone=backbone)
  views = {name: x for name, _, _ in specs}
  routes = tuple((name, name) for name, _, _ in specs)
  out, variables = jax.eval_shape(
      lambda v: model.init_with_output(jax.random.key(0), v, routes, False), views)
  assert out["arrow_of_time"].shape == (2, 2)
  assert out["inpainting"].shape == (2, 64, 64, channels)
  total = count(variables["params"])
  assert total == _published_param_count("deep_wide", channels, dim, blocks, 4, specs, 64)
  # Conv and dense weights bound it from below; norms and biases add only a few percent.
  weights_only = sum(math.prod(leaf.shape) for path, leaf in
                     jax.tree_util.tree_leaves_with_path(variables["params"])
                     if path[-1].key == "kernel")
  assert weights_only < total < 1.05 * weights_only
