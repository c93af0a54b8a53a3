"""Each 3x3x3 conv of the published v2 trunk alone, lax.conv against the host lowerings
(models/host_conv.py: OpenVINO, onnxruntime): largest relative error of the output and both
gradients, forward and forward+backward ms (median of 3 after a warm-up) and GFLOP/s.

  python benchmarks/conv_layers.py [--batch=16] [--trunk=ped2_v2|ped2_cpu]

--trunk=ped2_cpu: the convs of configs/ped2_cpu.py's trunk (32x32 crops, 16/32/64 channels);
its train step's view batch is 256.
"""
import sys

import harness  # noqa: F401  (puts the repository root on sys.path first)

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from harness import bench
from ssmtl_jax import host_memory
from ssmtl_jax.models import host_conv


def native(x, w):
  return lax.conv_general_dilated(x, w, (1, 1, 1), "SAME",
                                  dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))


# (frames, side, in, out) of each 3x3x3 trunk conv.
TRUNK_CONVS = {
    "ped2_v2": [(7, 64, 1, 32), (7, 64, 32, 32), (7, 32, 32, 64), (7, 32, 64, 64),
                (7, 16, 64, 128), (7, 16, 128, 128)],
    "ped2_cpu": [(7, 32, 1, 16), (7, 16, 16, 32), (7, 8, 32, 64)],
}


def main():
  host_memory.retain_freed_memory()
  flag = lambda name, default: next(
      (a.split("=")[1] for a in sys.argv[1:] if a.startswith(f"--{name}=")), default)
  b = int(flag("batch", 16))
  rng = np.random.default_rng(0)
  for t, h, c, o in TRUNK_CONVS[flag("trunk", "ped2_v2")]:
    x = jnp.asarray(rng.normal(size=(b, t, h, h, c)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, c, o)) * 0.1, jnp.float32)
    flops = 2 * b * t * h * h * c * o * 27
    probe = native(x, w)
    loss = lambda f: (lambda x, w: jnp.sum(f(x, w) * probe))
    want = jax.grad(loss(native), argnums=(0, 1))(x, w)
    impls = {"native": native}
    for backend in host_conv.BACKENDS:
      impls[backend] = lambda x, w, backend=backend: host_conv.conv3d_same(x, w, backend)
    errs = []
    for backend in host_conv.BACKENDS:
      got = jax.grad(loss(impls[backend]), argnums=(0, 1))(x, w)
      errs += [float(jnp.max(jnp.abs(a - r)) / jnp.max(jnp.abs(r)))
               for a, r in [(impls[backend](x, w), probe), *zip(got, want)]]
    line = [f"B{b} {h}x{h} {c:3d}->{o:3d} err {max(errs):.0e}"]
    for name, f in impls.items():
      tf = bench(jax.jit(f), x, w)
      tb = bench(jax.jit(jax.grad(loss(f), argnums=(0, 1))), x, w)
      line.append(f"{name} fwd {tf * 1e3:5.0f} ms, fwd+bwd {tb * 1e3:5.0f} ms "
                  f"({3 * flops / tb / 1e9:4.0f} GF/s)")
    print(" | ".join(line), flush=True)


if __name__ == "__main__":
  main()
