"""Box geometry shared by the region metrics: IoU of (x_min, y_min, x_max, y_max) boxes."""

from __future__ import annotations

import numpy as np


def widths(boxes: np.ndarray, inclusive: bool) -> tuple[np.ndarray, np.ndarray]:
  extra = 1.0 if inclusive else 0.0
  return (boxes[..., 2] - boxes[..., 0] + extra,
          boxes[..., 3] - boxes[..., 1] + extra)


def paired_iou(a: np.ndarray, b: np.ndarray, inclusive: bool = False) -> np.ndarray:
  """Element-wise IoU of [..., 4] boxes `a` and `b` (same shape); 0 for empty unions."""
  extra = 1.0 if inclusive else 0.0
  iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + extra
  ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + extra
  inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
  wa, ha = widths(a, inclusive)
  wb, hb = widths(b, inclusive)
  union = np.maximum(wa, 0.0) * np.maximum(ha, 0.0) + np.maximum(wb, 0.0) * np.maximum(hb, 0.0)
  union = union - inter
  with np.errstate(divide="ignore", invalid="ignore"):
    iou = inter / union
  return np.where(union > 0, iou, 0.0)


def box_iou(a, b, inclusive: bool = False) -> np.ndarray:
  """Pairwise intersection over union of two sets of boxes.

  Args:
    a: [..., 4] boxes (x_min, y_min, x_max, y_max); a single box may be [4].
    b: [..., 4] boxes, same layout.
    inclusive: False (default): continuous coordinates, x_max / y_max
      exclusive, width = x_max - x_min. True: inclusive pixel indices,
      width = x_max - x_min + 1.

  Returns:
    float64 array of shape a.shape[:-1] + b.shape[:-1]: IoU of every box of
    `a` with every box of `b` ([N, M] for [N, 4] and [M, 4]; a scalar array
    for two single boxes). Boxes with negative width count as empty; two
    empty boxes have IoU 0.

  Raises:
    ValueError: the last axis of `a` or `b` is not 4.
  """
  a = np.asarray(a, dtype=np.float64)
  b = np.asarray(b, dtype=np.float64)
  for name, x in (("a", a), ("b", b)):
    if x.ndim == 0 or x.shape[-1] != 4:
      raise ValueError(f"box_iou: {name} must have shape [..., 4], got {x.shape}")
  flat_a = a.reshape(-1, 1, 4)
  flat_b = b.reshape(1, -1, 4)
  flat_a, flat_b = np.broadcast_arrays(flat_a, flat_b)
  return paired_iou(flat_a, flat_b, inclusive).reshape(a.shape[:-1] + b.shape[:-1])
