"""The host conv lowerings (OpenVINO, onnxruntime) compute lax.conv's math, values and gradients,
and are picked only where they can run (one CPU device)."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ssmtl_jax import backend
from ssmtl_jax import host_memory
from ssmtl_jax.models import host_conv
from ssmtl_jax.models import layers

REPO = pathlib.Path(__file__).resolve().parents[1]


def _native(x, w):
  return lax.conv_general_dilated(x, w, (1, 1, 1), "SAME",
                                  dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))


@pytest.mark.parametrize("backend", host_conv.BACKENDS)
@pytest.mark.parametrize("shape,kernel,out", [
    ((2, 7, 12, 10, 3), (3, 3, 3), 5),   # odd, non-square frames; weight grad by im2col
    ((3, 5, 8, 8, 1), (3, 3, 3), 4),     # the 1-channel input conv
    ((2, 4, 6, 9, 8), (1, 3, 3), 3),     # no time taps; weight grad by 9 GEMMs
    ((1, 6, 5, 5, 6), (3, 1, 5), 2),     # unequal odd kernel sides
])
def test_values_and_gradients_match_lax_conv(shape, kernel, out, backend):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  w = jnp.asarray(rng.normal(size=(*kernel, shape[-1], out)), jnp.float32)
  probe = jnp.asarray(rng.normal(size=(*shape[:4], out)), jnp.float32)
  loss = lambda f: (lambda x, w: jnp.sum(f(x, w) * probe))
  conv = lambda x, w: host_conv.conv3d_same(x, w, backend)
  np.testing.assert_allclose(conv(x, w), _native(x, w), rtol=1e-5, atol=1e-4)
  want = jax.grad(loss(_native), argnums=(0, 1))(x, w)
  got = jax.jit(jax.grad(loss(conv), argnums=(0, 1)))(x, w)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)


def test_private_callback_only_on_tested_jax_versions():
  assert host_conv._private_callback_emitter((0, 99, 0)) is None
  assert host_conv._private_callback_emitter((1, 0, 0)) is None
  installed = host_conv._private_callback_emitter(jax.__version_info__)
  if tuple(jax.__version_info__[:2]) in host_conv.PRIVATE_CALLBACK_JAX_VERSIONS:
    assert installed is not None, "the fast host-call path is missing on a tested JAX"


def test_pure_callback_fallback_computes_the_same(monkeypatch):
  # Without JAX's private FFI callback emitter the host calls go through jax.pure_callback.
  monkeypatch.setattr(host_conv, "_emit_python_callback", None)
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 6, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 3, 6, 4)), jnp.float32)
  loss = lambda f: (lambda x, w: jnp.sum(f(x, w) ** 2))
  conv = lambda x, w: host_conv.conv3d_same(x, w, "onnxruntime")
  assert "pure_callback" in str(jax.make_jaxpr(conv)(x, w))
  got = jax.jit(jax.grad(loss(conv), argnums=(0, 1)))(x, w)
  want = jax.grad(loss(_native), argnums=(0, 1))(x, w)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("channels", [2, 6])  # the im2col and the 9-GEMM weight gradient
def test_weight_gradient_sees_every_border(channels):
  # dy nonzero only at the corners: every tap that reads across a border must hit a zero.
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 4, 5, channels)), jnp.float32)
  dy = np.zeros((2, 3, 4, 5, 3), np.float32)
  dy[np.ix_([0, 1], [0, 2], [0, 3], [0, 4], [0, 1, 2])] = 1.0
  w = jnp.zeros((3, 3, 3, channels, 3))
  want = jax.vjp(lambda w: _native(x, w), w)[1](jnp.asarray(dy))[0]
  np.testing.assert_allclose(host_conv._host_weight_grad(np.asarray(x), dy, (3, 3, 3)), want,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", host_conv.BACKENDS)
def test_repeated_calls_are_bit_identical(backend):
  # Exact resume relies on a step computing the same bits every time.
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(4, 7, 16, 16, 8)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 3, 8, 8)), jnp.float32)
  f = jax.jit(jax.grad(lambda x, w: jnp.sum(host_conv.conv3d_same(x, w, backend) ** 2),
                       argnums=(0, 1)))
  a, b = f(x, w), f(x, w)
  for u, v in zip(a, b):
    assert np.array_equal(np.asarray(u), np.asarray(v))


def test_conv3d_layer_lowerings_agree():
  x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 7, 8, 8, 3)), jnp.float32)
  params = layers.Conv3D(6, impl="native").init(jax.random.PRNGKey(0), x)
  outs = {impl: layers.Conv3D(6, impl=impl).apply(params, x) for impl in layers.CONV_IMPLS}
  for impl, y in outs.items():
    np.testing.assert_allclose(y, outs["native"], rtol=1e-5, atol=1e-5, err_msg=impl)


def test_auto_picks_a_lowering_that_runs_here():
  # This process has 8 fake CPU devices: a host callback would stall the other devices' threads
  # in their collectives, so 'auto' keeps lax.conv and an explicit request is refused clearly.
  assert jax.device_count() == 8
  assert backend.resolve_conv_impl("auto") == "native"
  assert backend.resolve_conv_impl("auto", first_layer=True) == "native"
  assert backend.resolve_conv_impl("im2col") == "im2col"
  for impl in layers.HOST_CONV_IMPLS:
    with pytest.raises(ValueError, match="one CPU device.*8 cpu device"):
      backend.resolve_conv_impl(impl)


def test_single_cpu_device_trains_with_the_host_lowerings(prepared, tmp_path):
  env = dict(os.environ, XLA_FLAGS=" ".join(
      f for f in os.environ.get("XLA_FLAGS", "").split()
      if not f.startswith("--xla_force_host_platform_device_count")))
  done = subprocess.run(
      [sys.executable, "-m", "ssmtl_jax.main", "--config=configs/test.py", f"--workdir={tmp_path}",
       "--mode=train", f"--config.data.records_dir={prepared}", "--config.train.tensorboard=False"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr
  assert "on 1 cpu device(s), 3D convs: openvino (input conv: onnxruntime)" in done.stdout
  with open(tmp_path / "train_log.jsonl") as f:
    losses = [json.loads(line)["loss"] for line in f if '"loss"' in line]
  assert losses and all(np.isfinite(losses))


def test_openvino_is_imported_without_its_telemetry():
  # openvino's converter sends a usage event over the network from a forked process at import;
  # the lowering imports the runtime only. A fresh interpreter, so no earlier import interferes.
  code = ("import sys; from ssmtl_jax.models import host_conv; import numpy as np; "
          "y = host_conv._host_conv(np.ones((1, 3, 4, 4, 2)), np.ones((3, 3, 3, 2, 2)), 'openvino'); "
          "assert y.shape == (1, 3, 4, 4, 2) and y[0, 1, 1, 1, 0] == 54.0, y[0, 1, 1, 1]; "
          "assert sys.modules.get('openvino.tools.ovc') is None; "
          "print(sorted(m for m in sys.modules if 'telemetry' in m))")
  done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == "[]"


def test_retain_freed_memory_takes_effect_on_glibc():
  # On glibc (Linux) the settings take; elsewhere the call is a documented no-op.
  want = sys.platform.startswith("linux")
  assert host_memory.retain_freed_memory() is want
  assert host_memory.retain_freed_memory() is want  # idempotent
