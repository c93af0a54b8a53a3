"""What every benchmark script shares: timing, the machine's matmul peak, the device, the record.

Timings are medians after warm-up, ended with `block_until_ready`; the matmul peak is measured in
the same run, so "share of peak" compares numbers taken under the same load (these machines are
shared and noisy).
"""

import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

_HERE = os.path.dirname(os.path.abspath(__file__))
# `python benchmarks/x.py` puts benchmarks/ first on sys.path, where data_prep.py (the prep
# benchmark) would shadow the data_prep package: scripts import this module first, and the
# repository root goes ahead of benchmarks/.
if os.path.abspath(sys.path[0]) == _HERE:
  sys.path.insert(0, os.path.dirname(_HERE))

import jax
import jax.numpy as jnp

RESULTS = os.path.join(_HERE, "RESULTS.md")


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
  """Median wall time of `fn()` (its result blocked on) over `repeats` runs after `warmup`."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def bench(fn: Callable[..., Any], *args, n: int = 3) -> float:
  """Median seconds of `fn(*args)` over `n` runs after one warm-up (compile) run."""
  return median_seconds(lambda: fn(*args), n)


def matmul_peak_gflops(size: int = 2048, repeats: int = 3) -> float:
  """f32 GFLOP/s of one jitted square matmul on the default device (median of `repeats`)."""
  a = jnp.ones((size, size), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  return 2 * size ** 3 / median_seconds(lambda: f(a), repeats) / 1e9


def compiled_gflop(compiled) -> float:
  """GFLOP of one call of a compiled function, from XLA's cost analysis (nan if unavailable)."""
  return _gflop(compiled.cost_analysis())


def lowered_gflop(lowered) -> float:
  """GFLOP of one call of a lowered function, from XLA's cost analysis of its unoptimised HLO
  (nan if unavailable)."""
  return _gflop(lowered.cost_analysis())


def _gflop(cost) -> float:
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) / 1e9 if cost else float("nan")


def uses_host_conv(config) -> bool:
  """Whether the config's convolutions resolve, here, to a host library's (a host callback)."""
  from ssmtl_jax import backend  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.models import layers  # pylint: disable=g-import-not-at-top
  choice = backend.resolve_model_choices(config.model)
  return any(choice[k] in layers.HOST_CONV_IMPLS for k in ("conv_impl", "first_conv_impl"))


def math_gflop(config, batch_size: int, lower: Callable[..., Any], lowered=None) -> float:
  """GFLOP of one call of a step: XLA's cost analysis of the step lowered with every
  convolution through lax.conv, before optimisation. That is the math as written: the same count
  on every backend whatever kernels the backend's compiler picks (a GPU's cuDNN calls, fusions),
  and it needs no compile.

  `lowered`, the step as timed, is counted directly when its convolutions are lax.conv's; XLA
  cannot see into host callbacks (the host conv lowerings), so otherwise a lax.conv build of the
  same step is lowered for the count: `lower(*model_and_batch(...))` returns it.
  """
  if lowered is not None and not uses_host_conv(config):
    return lowered_gflop(lowered)
  import copy  # pylint: disable=g-import-not-at-top
  native = copy.deepcopy(config)
  with native.unlocked():
    native.model.conv_impl = native.model.first_conv_impl = "native"
  return lowered_gflop(lower(*model_and_batch(native, batch_size, shapes_only=True)))


def memory_fields(compiled) -> dict[str, Any]:
  """Device memory of a compiled step: XLA's own account of its buffers (arguments, outputs,
  temporaries: what one call needs) and the allocator's peak since the process started
  (`device.memory_stats()`; null where the backend keeps none, as on CPU)."""
  out = {}
  try:
    m = compiled.memory_analysis()
    out = {"xla_temp_bytes": int(m.temp_size_in_bytes),
           "xla_argument_bytes": int(m.argument_size_in_bytes),
           "xla_output_bytes": int(m.output_size_in_bytes)}
  except Exception:  # pylint: disable=broad-except
    out = {"xla_temp_bytes": None, "xla_argument_bytes": None, "xla_output_bytes": None}
  stats = jax.devices()[0].memory_stats() or {}
  out["device_peak_bytes_since_start"] = stats.get("peak_bytes_in_use")
  out["device_bytes_limit"] = stats.get("bytes_limit")
  return out


def device_fields() -> dict[str, Any]:
  d = jax.devices()[0]
  return {"device": d.device_kind, "backend": jax.default_backend(),
          "num_devices": jax.device_count(), "host_cpus": os.cpu_count(),
          "host": platform.machine()}


def report(result: dict[str, Any], argv: list[str], record: bool) -> None:
  """Prints the JSON line; with `record`, appends it and its command to RESULTS.md."""
  line = json.dumps(result)
  print(line, flush=True)
  if record:
    with open(RESULTS, "a") as f:
      f.write(f"\n`python {' '.join(argv)}`\n\n```json\n{line}\n```\n")


def model_and_batch(config, batch_size: int, seed: int = 0, shapes_only: bool = False):
  """The config's tasks, model, optimizer, a replicated train state and one random global batch
  of uint8 windows, as the real pipeline builds them (random data: throughput does not depend on
  pixel values). `shapes_only`: the state and batch as `jax.ShapeDtypeStruct`s, enough to lower
  a step (no initialisation is compiled or run)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ssmtl_jax import model_setup  # pylint: disable=g-import-not-at-top
  from ssmtl_jax import sharding  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import optimizer  # pylint: disable=g-import-not-at-top
  from ssmtl_jax.train import state as train_state  # pylint: disable=g-import-not-at-top
  tasks = model_setup.build_tasks(config)
  if any(t.needs_teacher for t in tasks):
    raise ValueError("the throughput benchmarks take configs without teacher tasks (T4/T7/T9)")
  channels = 1 if config.data.grayscale else 3
  model = model_setup.build_model(config, tasks, channels)
  tx = optimizer.build_optimizer(config, tasks)
  mesh = sharding.make_mesh()
  shape = (2 * config.prep.half_window + 1, config.prep.crop_size, config.prep.crop_size, channels)
  rng = jax.random.PRNGKey(seed)
  if shapes_only:
    state = jax.eval_shape(lambda: train_state.new_train_state(
        model_setup.init_variables(model, tasks, {"window": shape}, rng), tx))
    batch = {"window": jax.ShapeDtypeStruct((batch_size, *shape), jnp.uint8)}
    return tasks, model, tx, state, batch, rng
  variables = model_setup.init_variables(model, tasks, {"window": shape}, rng)
  state = train_state.new_train_state(variables, tx)
  state = jax.device_put(state, sharding.replicated(mesh))
  windows = np.random.default_rng(seed).integers(0, 256, (batch_size, *shape), dtype=np.uint8)
  batch = sharding.to_global({"window": windows}, mesh)
  return tasks, model, tx, state, batch, rng


def use_detector(config, spec: str) -> None:
  """Switches the config to another motion detector with its default options, keeping the
  data set's `min_area` (the other detector's options would not fit it)."""
  if spec:
    config.prep.detector = spec
    config.prep.detector_options = {"min_area": config.prep.detector_options.min_area}


def config_fields(config) -> dict[str, Any]:
  from ssmtl_jax import backend  # pylint: disable=g-import-not-at-top
  m = config.model
  return {"crop": config.prep.crop_size, "trunk": m.trunk, "embed_dim": m.embed_dim,
          "cvt_blocks": m.cvt_blocks, "cvt_heads": m.cvt_heads, "tasks": list(config.tasks),
          **backend.resolve_model_choices(m)}
