"""3x3x3 conv fwd / fwd+bwd GFLOP/s at v2 trunk shapes (batch 16), to compare XLA:CPU flags:

  XLA_FLAGS=--xla_cpu_use_onednn=true python benchmarks/conv_flags.py
  XLA_FLAGS=--xla_cpu_use_xnnpack=true python benchmarks/conv_flags.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from harness import bench


def conv(x, w):
    return lax.conv_general_dilated(x, w, (1,1,1), 'SAME', dimension_numbers=('NDHWC','DHWIO','NDHWC'))
a = jnp.ones((2048,2048)); b = jnp.ones((2048,2048))
t = bench(jax.jit(lambda a,b: a@b), a, b)
print(f"matmul 2048: {2*2048**3/t/1e9:.1f} GFLOP/s", flush=True)
for (B,T,H,Cin,Cout) in [(16,13,64,1,32),(16,13,32,32,64),(16,13,16,64,128),(16,13,32,64,64)]:
    x = jnp.asarray(np.random.randn(B,T,H,H,Cin), jnp.float32)
    w = jnp.asarray(np.random.randn(3,3,3,Cin,Cout)*0.1, jnp.float32)
    fl = 2*B*T*H*H*Cin*Cout*27
    tf = bench(jax.jit(conv), x, w)
    tb = bench(jax.jit(jax.grad(lambda x,w: jnp.sum(conv(x,w)**2), argnums=(0,1))), x, w)
    print(f"B{B} T{T} H{H} {Cin}->{Cout}: fwd {tf*1e3:7.1f} ms {fl/tf/1e9:6.1f} GF/s | fwd+bwd {tb*1e3:7.1f} ms {3*fl/tb/1e9:6.1f} GF/s", flush=True)
