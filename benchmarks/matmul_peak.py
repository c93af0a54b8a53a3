"""f32 matmul rate of XLA on this machine at square and conv-like (im2col) shapes.

  python benchmarks/matmul_peak.py

Prints GFLOP/s per shape (median of 3 after a warm-up); the reference for conv efficiency.
"""
import jax
import jax.numpy as jnp

from harness import bench

for M,K,N in [(2048,2048,2048),(200000,864,32),(200000,288,32),(200000,96,32),(100000,1728,64),(50000,3456,128),(50000,128,128),(200000,32,32)]:
    a = jnp.ones((M,K)); b = jnp.ones((K,N))
    t = bench(jax.jit(lambda a,b: a@b), a, b)
    print(M,K,N, f"{2*M*K*N/t/1e9:.1f} GF/s", flush=True)
