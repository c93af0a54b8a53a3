"""The multi-task SSMTL++ network: one shared backbone, one head per proxy task."""

from typing import Any, Mapping, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from ssmtl_jax.models import backbone3d
from ssmtl_jax.models import heads as heads_lib

# Head kinds by name; a task says which kind it needs (or brings its own module class) and how
# many outputs.
HEADS = {"classifier": heads_lib.ClassifierHead, "decoder": heads_lib.DecoderHead}


def head_name(task: str) -> str:
  """The name of a task's head module, hence of its parameters' subtree."""
  return f"head_{task}"


class SSMTLModel(nn.Module):
  """Runs task views through the shared backbone in one batch, then each task's head.

  Attributes:
    head_specs: `((task_name, kind, num_outputs), ...)`; kind a name in HEADS or a Flax module
      class taking `(num_outputs, width=, dtype=, name=)` (and `num_up=` if it has that field).
    backbone: keyword arguments of `backbone3d.Backbone`.
    head_width: channels of the head convs.
    dtype: compute dtype; params and outputs stay float32.
  """
  head_specs: Sequence[tuple[str, str, int]]
  backbone: Mapping[str, Any]
  head_width: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, views: Mapping[str, jax.Array], routes: Sequence[tuple[str, str]],
               train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      views: view name -> `[B, T, S, S, C]` float input. All views have one shape, so they are
        concatenated and pass the backbone once (one large batch is what accelerators want).
      routes: `(task, view name)` pairs: which head reads which view's features. Two tasks may
        share a view (T1 and T2 both score the plain forward cube at test time).
      train: BatchNorm in training mode.

    Returns:
      task name -> head output (`[B, K]` logits or `[B, S, S, C]` image).
    """
    names = sorted(views)
    shapes = {views[n].shape for n in names}
    if len(shapes) != 1:
      raise ValueError(f"views must share one shape, got { {n: views[n].shape for n in names} }")
    batch = views[names[0]].shape[0]
    crop = views[names[0]].shape[2]
    x = jnp.concatenate([views[n] for n in names], axis=0)
    feats = backbone3d.Backbone(**self.backbone, dtype=self.dtype, name="backbone")(x, train)
    num_up = len(backbone3d.TRUNKS[self.backbone.get("trunk", "deep_wide")])
    chex.assert_shape(feats, (len(names) * batch, crop >> num_up, crop >> num_up, None))
    per_view = {n: feats[i * batch:(i + 1) * batch] for i, n in enumerate(names)}
    specs = {name: (kind, n) for name, kind, n in self.head_specs}
    out = {}
    for task, view in routes:
      kind, n = specs[task]
      if isinstance(kind, str):
        if kind not in HEADS:
          raise ValueError(f"unknown head kind {kind!r}; valid: {sorted(HEADS)}, or a task's "
                           "own head_module")
        kind = HEADS[kind]
      # Decoders upsample once per trunk pool, back to the crop size.
      extra = {"num_up": num_up} if "num_up" in getattr(kind, "__dataclass_fields__", {}) else {}
      head = kind(n, width=self.head_width, dtype=self.dtype, name=head_name(task), **extra)
      out[task] = head(per_view[view], train)
    return out
