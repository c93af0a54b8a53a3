"""3x3x3 conv lowerings at the v2 trunk's shapes, all the same math (relative error printed):
lax.conv 3D; Winograd F(2x2,3x3) with the time taps folded into the matmul; the time taps folded
into the channels of one 2D conv (fold2d); three 2D convs summed over the time taps (sum2d).

  python benchmarks/conv_lowerings.py [names, default all]
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from harness import bench


def native(x, w):
    return lax.conv_general_dilated(x, w, (1,1,1), 'SAME', dimension_numbers=('NDHWC','DHWIO','NDHWC'))
G = np.array([[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]], np.float32)
def bt(d, axis):
    # B^T along axis of size 4 tiles given as list of 4 arrays -> 4 arrays
    d0,d1,d2,d3 = d
    return [d0-d2, d1+d2, d2-d1, d1-d3]
def at(m):
    m0,m1,m2,m3 = m
    return [m0+m1+m2, m1-m2-m3]
def rows(xp, axis, n):
    # 4 strided slices along axis: xp[..., r + 2i ...] for i < n
    return [lax.slice_in_dim(xp, r, r + 2*n - 1, 2, axis) for r in range(4)]
def wino2d(x, w):
    B,T,H,W,C = x.shape; O = w.shape[-1]
    h, ww = H//2, W//2
    xp = jnp.pad(x, ((0,0),(1,1),(1,1),(1,1),(0,0)))
    r = bt(rows(xp, 2, h), 2)               # 4 x [B,T+2,h,W+2,C]
    V = [v for a in r for v in bt(rows(a, 3, ww), 3)]  # 16 x [B,T+2,h,w,C]
    V = jnp.stack(V)                          # [16,B,T+2,h,w,C]
    Vt = jnp.concatenate([V[:, :, k:k+T] for k in range(3)], -1)  # [16,B,T,h,w,3C]
    U = jnp.einsum('ij,tjkco,lk->iltco', G, w, G).reshape(16, 3*C, O) if False else \
        jnp.einsum('ij,tjkco,lk->iltco', jnp.asarray(G), w, jnp.asarray(G)).reshape(16, 3, C, O).reshape(16, 3*C, O)
    M = jnp.einsum('pbthwk,pko->pbthwo', Vt, U)  # [16,B,T,h,w,O]
    M = M.reshape(4, 4, B, T, h, ww, O)
    r2 = at([M[i] for i in range(4)])        # 2 x [4,B,T,h,w,O] (row outputs), index cols next
    Y = [at([rr[j] for j in range(4)]) for rr in r2]  # Y[a][b] [B,T,h,w,O]
    Y = jnp.stack([jnp.stack(Y[a], -2) for a in range(2)], 3)  # [B,T,h,2,w,2,O]
    return Y.reshape(B,T,H,W,O)
def _conv2d(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
def fold2d(x, w):
    B,T,H,W,C = x.shape; O = w.shape[-1]
    xp = jnp.pad(x, ((0,0),(1,1),(0,0),(0,0),(0,0)))
    xs = jnp.concatenate([xp[:, k:k+T] for k in range(3)], -1).reshape(B*T, H, W, 3*C)
    w2 = w.transpose(1, 2, 0, 3, 4).reshape(3, 3, 3*C, O)  # input index = time tap * C + c
    return _conv2d(xs, w2).reshape(B, T, H, W, O)
def sum2d(x, w):
    B,T,H,W,C = x.shape; O = w.shape[-1]
    xp = jnp.pad(x, ((0,0),(1,1),(0,0),(0,0),(0,0)))
    return sum(_conv2d(xp[:, k:k+T].reshape(B*T, H, W, C), w[k]) for k in range(3)).reshape(B,T,H,W,O)
shapes = [(64,7,64,32,32),(64,7,32,64,64),(64,7,16,128,128),(64,7,64,1,32)]
for (B,T,H,Cin,Cout) in shapes:
    x = jnp.asarray(np.random.randn(B,T,H,H,Cin), jnp.float32)
    w = jnp.asarray(np.random.randn(3,3,3,Cin,Cout)*0.1, jnp.float32)
    fl = 2*B*T*H*H*Cin*Cout*27
    ref = native(x, w)
    lowerings = [('native', native), ('wino2d', wino2d), ('fold2d', fold2d), ('sum2d', sum2d)]
    wanted = sys.argv[1:] or [n for n, _ in lowerings]
    for name, f in [(n, f) for n, f in lowerings if n in wanted]:
        err = float(jnp.max(jnp.abs(f(x,w)-ref))/jnp.max(jnp.abs(ref)))
        tf = bench(jax.jit(f), x, w)
        tb = bench(jax.jit(jax.grad(lambda x,w: jnp.sum(f(x,w)*ref), argnums=(0,1))), x, w)
        print(f"B{B} T{T} H{H} {Cin}->{Cout} {name:7s}: err {err:.1e} fwd {tf*1e3:7.0f} ms {fl/tf/1e9:6.1f} GF/s | fwd+bwd {tb*1e3:7.0f} ms {3*fl/tb/1e9:6.1f} GF/s", flush=True)
