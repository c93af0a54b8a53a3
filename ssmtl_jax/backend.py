"""The one place that decides, from the devices present, how the model and the teacher run.

Every per-platform choice lives here: how 3D and depthwise convolutions are lowered
(models/layers.py holds the lowerings, all computing the same math with the same parameters),
the compute dtype, and the CPU-only process settings (the allocator, the initialisation RNG).
The rest of the code receives the result and never asks which platform it is on.
"""

import contextlib
import functools

import jax
import jax.numpy as jnp

from ssmtl_jax import host_memory
from ssmtl_jax.models import host_conv
from ssmtl_jax.models import layers
from ssmtl_jax.models import ssmctb

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
AUTO = "auto"


def _backend(backend: str | None) -> str:
  return backend or jax.default_backend()


def resolve_conv_impl(impl: str, first_layer: bool = False, backend: str | None = None) -> str:
  """`auto` -> the fastest same-math lowering here, lax.conv on GPU / TPU and on sharded CPU
  meshes; on a single CPU device a host library's convolution (models/host_conv.py): OpenVINO's
  (oneDNN), except for the 1-channel input conv (`first_layer`): onnxruntime's MLAS, the faster
  of the two on the published v2 step (benchmarks/RESULTS.md, "the input conv's lowering").
  Checks that an explicit host lowering can run here. Other names pass through unchanged.
  `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  cpu_single = _backend(backend) == "cpu" and jax.device_count() == 1
  if impl == "auto":
    if not cpu_single:
      return "native"
    return "openvino" if not first_layer and host_conv.available("openvino") else "onnxruntime"
  if impl in layers.HOST_CONV_IMPLS:
    if not cpu_single:
      raise ValueError(
          f"model.conv_impl={impl!r} runs on one CPU device (a host callback); this process "
          f"sees {jax.device_count()} {_backend(backend)} device(s): use 'auto' or 'native'")
    if not host_conv.available(impl):
      raise ValueError(f"model.conv_impl={impl!r} needs the {impl} package (pip install {impl}); "
                       f"'auto' falls back to what is installed")
  return impl


def resolve_depthwise_impl(impl: str, backend: str | None = None) -> str:
  """`auto` -> `shift` on CPU, where XLA:CPU runs a grouped convolution several times slower
  than the 27 shifted multiply-adds (DESIGN §8); `grouped` on GPU / TPU, where it is one cuDNN /
  TPU
  convolution instead of 27 passes over the activations. Both compute the same math with the
  same parameters. `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  if impl == AUTO:
    return "shift" if _backend(backend) == "cpu" else "grouped"
  if impl not in layers.DEPTHWISE_IMPLS:
    raise ValueError(f"model.depthwise_impl={impl!r} unknown; valid: "
                     f"{(AUTO, *layers.DEPTHWISE_IMPLS)}")
  return impl


def resolve_dtype(name: str, backend: str | None = None) -> str:
  """The compute dtype's name. `auto` -> `bfloat16` on GPU / TPU, whose matrix units run it at
  twice the TF32 rate (and activations take half the memory); `float32` on CPU, where the host
  library convolutions compute in float32 anyway. Parameters, BatchNorm statistics, softmax,
  head outputs and losses stay float32 in every case (the modules cast; tests/test_models.py).
  `backend`: the platform to choose for (default: `jax.default_backend()`)."""
  if name == AUTO:
    return "float32" if _backend(backend) == "cpu" else "bfloat16"
  if name not in DTYPES:
    raise ValueError(f"model.dtype={name!r} unknown; valid: {(AUTO, *DTYPES)}")
  return name


def resolve_model_choices(model_config, backend: str | None = None) -> dict[str, str]:
  """Every per-backend choice of a `config.model`, `auto` resolved: `conv_impl`,
  `first_conv_impl`, `depthwise_impl`, `dtype` (a name of DTYPES). The one place the model's
  lowerings and precision are picked from the platform; the model receives the result."""
  m = model_config
  return {"conv_impl": resolve_conv_impl(m.conv_impl, backend=backend),
          "first_conv_impl": resolve_conv_impl(m.first_conv_impl, first_layer=True,
                                               backend=backend),
          "depthwise_impl": resolve_depthwise_impl(m.depthwise_impl, backend),
          "dtype": resolve_dtype(m.dtype, backend)}


def model_convs(model_config, backend: str | None = None) -> dict:
  """The convolution modules the backbone builds its layers with (`conv`, `first_conv`,
  `depthwise_conv`, `masked_conv`: classes of models/layers.py and models/ssmctb.py with this
  platform's lowering bound), from `resolve_model_choices`. SSMCTB's masked conv is dilated,
  which the host-library lowering does not cover; im2col is the faster of its two on CPU."""
  choice = resolve_model_choices(model_config, backend)
  masked = choice["conv_impl"] if choice["conv_impl"] in ssmctb.MASKED_CONV_IMPLS else "im2col"
  return {"conv": functools.partial(layers.Conv3D, impl=choice["conv_impl"]),
          "first_conv": functools.partial(layers.Conv3D, impl=choice["first_conv_impl"]),
          "depthwise_conv": functools.partial(layers.DepthwiseConv3D,
                                              impl=choice["depthwise_impl"]),
          "masked_conv": functools.partial(ssmctb.MaskedConv3D, impl=masked)}


def teacher_depthwise(backend: str | None = None) -> str:
  """How the built-in teacher (data_prep/efficientnet_lite.py) lowers its depthwise convs: by
  the same rule as the model's (`resolve_depthwise_impl("auto")`)."""
  return resolve_depthwise_impl(AUTO, backend)


def configure_process() -> None:
  """Process-wide settings for this platform, once at start-up: on CPU, XLA's buffers (and the
  host-library convolutions) reuse freed pages instead of faulting in new ones."""
  if jax.default_backend() == "cpu":
    host_memory.retain_freed_memory()


def init_rng_context():
  """The context in which parameters are drawn. On CPU the non-partitionable threefry: XLA:CPU
  compiles each multi-dimensional draw of the partitionable one an order of magnitude slower
  (benchmarks/compile_times.py), and replicated parameters gain nothing from partitioned draws.
  Elsewhere JAX's default."""
  if jax.default_backend() == "cpu":
    return jax.threefry_partitionable(False)
  return contextlib.nullcontext()
