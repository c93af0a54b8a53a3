"""Forward+backward time of the parts of the published v2 network at the step's view batch (64).

  python benchmarks/step_parts.py [trunk backbone cvt dec cls cvt_parts] [--conv_impl=openvino|onnxruntime]

Prints ms, GFLOP (XLA cost analysis) and GFLOP/s per part: where the train step's time goes.
"""
import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
from ssmtl_jax.models import backbone3d, cvt, heads, layers
def bench(f, *a, n=2):
    r = f(*a); jax.block_until_ready(r)
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter()-t)
    return float(np.median(ts))
B = 64
def time_module(name, mod, x):
    v = mod.init(jax.random.PRNGKey(0), x, True)
    def loss(p, x):
        y, _ = mod.apply({**v, 'params': p}, x, True, mutable=['batch_stats'])
        return jnp.mean(y**2)
    g = jax.jit(jax.grad(loss))
    c = g.lower(v['params'], x).compile(); fl = c.cost_analysis()
    fl = (fl[0] if isinstance(fl, (list,tuple)) else fl).get('flops', 0)
    t = bench(g, v['params'], x)
    print(f"{name:20s} {t*1e3:8.0f} ms  {fl/1e9:7.1f} GFLOP  {fl/t/1e9:6.1f} GF/s", flush=True)
x = jnp.asarray(np.random.rand(B,7,64,64,1), jnp.float32)
impl = next((a.split('=')[1] for a in sys.argv[1:] if a.startswith('--conv_impl=')), 'native')
which = [a for a in sys.argv[1:] if not a.startswith('--')] or ['trunk','backbone','cvt','dec','cls']
first = 'im2col' if impl == 'native' else 'onnxruntime'
convs = dict(conv=functools.partial(layers.Conv3D, impl=impl),
             first_conv=functools.partial(layers.Conv3D, impl=first))
shift = functools.partial(layers.DepthwiseConv3D, impl='shift')
if 'trunk' in which: time_module('trunk', backbone3d.Trunk3D(backbone3d.TRUNKS['deep_wide'], **convs), x)
if 'backbone' in which: time_module('backbone', backbone3d.Backbone(**convs, depthwise_conv=shift), x)
f = jnp.asarray(np.random.rand(B,7,8,8,192), jnp.float32)
if 'cvt' in which: time_module('cvt3x12', cvt.CvTStack(num_blocks=3, num_heads=12, depthwise_conv=shift), f)
h = jnp.asarray(np.random.rand(B//4,8,8,192), jnp.float32)
if 'dec' in which: time_module('decoder(B/4)', heads.DecoderHead(1), h)
if 'cls' in which: time_module('classifier(B/4)', heads.ClassifierHead(2), h)


class _Attention(nn.Module):
  """The attention core of one CvT block (after the Q/K/V projections)."""
  @nn.compact
  def __call__(self, x, train):
    b, t, h, w, d = x.shape
    x = x * self.param("scale", nn.initializers.ones, ())  # a parameter to differentiate
    q = x.reshape(b, -1, 12, 16)
    kv = x[:, ::2, ::2, ::2].reshape(b, -1, 12, 16)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, kv) / 4.0
    attn = jax.nn.softmax(logits, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", attn, kv).reshape(b, t, h, w, d)


class _Mlp(nn.Module):
  @nn.compact
  def __call__(self, x, train):
    y = nn.LayerNorm()(x)
    return nn.Dense(192)(nn.gelu(nn.Dense(768)(y)))


class _Projections(nn.Module):
  """Q, K, V: depthwise conv (+ BN + Dense), the K/V ones strided."""
  @nn.compact
  def __call__(self, x, train):
    q = cvt.ConvProjection(192, (1, 1, 1), shift, jnp.float32)(x, train)
    k = cvt.ConvProjection(192, (2, 2, 2), shift, jnp.float32)(x, train)
    v = cvt.ConvProjection(192, (2, 2, 2), shift, jnp.float32)(x, train)
    return q.sum() + k.sum() + v.sum()


class _Depthwise(nn.Module):
  strides: tuple
  @nn.compact
  def __call__(self, x, train):
    return shift(strides=self.strides)(x)


if 'cvt_parts' in which:
  # One block's pieces at the v2 step's token grid: where the 3 CvT blocks' time goes.
  time_module('dw stride 1', _Depthwise((1, 1, 1)), f)
  time_module('dw stride 2', _Depthwise((2, 2, 2)), f)
  time_module('q/k/v projections', _Projections(), f)
  time_module('attention core', _Attention(), f)
  time_module('LN+MLP', _Mlp(), f)
  time_module('1 block', cvt.CvTStack(num_blocks=1, num_heads=12, depthwise_conv=shift), f)
