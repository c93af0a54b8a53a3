"""Evaluation figures: per-video score curves and a per-video AUC summary.

matplotlib is imported inside the functions and drawn through an explicit Agg
canvas (no pyplot), so importing this module is free, no display is needed,
and the global pyplot backend of a caller is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from data_prep import atomic_write

_SCORE_COLOR = "#1f4e9c"
_ANOMALY_COLOR = "#e8706a"


def _new_figure(width: float, height: float):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def _save_atomic(fig, path) -> Path:
  """Writes the PNG atomically (`atomic_write`)."""
  path = Path(path)
  with atomic_write.temporary_path(path) as tmp:
    with open(tmp, "xb") as f:
      fig.savefig(f, format="png")
  return path


def _abnormal_intervals(labels: np.ndarray) -> list[tuple[int, int]]:
  """[start, end) frame ranges where labels are 1."""
  edges = np.diff(np.r_[0, labels.astype(np.int8), 0])
  return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_video_scores(path, frame_scores, labels, title: str) -> Path:
  """Frame anomaly score over time with ground-truth anomalies shaded.

  Args:
    path: output PNG path; parent folders are created.
    frame_scores: [T] frame scores of one video.
    labels: [T] 0/1 ground truth, or None to draw the score alone.
    title: figure title (e.g. the video id and its AUC).

  Returns:
    The written path.

  Raises:
    ValueError: scores and labels differ in length or are not 1-D.
  """
  from matplotlib.patches import Patch

  scores = np.asarray(frame_scores, dtype=np.float64)
  if scores.ndim != 1:
    raise ValueError(f"frame_scores must be 1-D, got shape {scores.shape}")
  if labels is not None:
    labels = np.asarray(labels)
    if labels.shape != scores.shape:
      raise ValueError(f"{path}: {scores.size} scores but {labels.size} "
                       "labels")

  fig = _new_figure(8.0, 3.0)
  ax = fig.add_subplot()
  handles = []
  if labels is not None:
    for start, end in _abnormal_intervals(labels > 0):
      # Half-frame margins so a single abnormal frame is still visible.
      ax.axvspan(start - 0.5, end - 0.5, color=_ANOMALY_COLOR, alpha=0.3,
                 linewidth=0)
    handles.append(Patch(color=_ANOMALY_COLOR, alpha=0.3,
                         label="ground-truth anomaly"))
  (line,) = ax.plot(np.arange(scores.size), scores, color=_SCORE_COLOR,
                    linewidth=1.4, label="anomaly score")
  handles.insert(0, line)

  finite = scores[np.isfinite(scores)]
  if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
    ax.set_ylim(-0.02, 1.02)
  ax.set_xlim(-0.5, max(scores.size - 0.5, 0.5))
  ax.set_xlabel("frame")
  ax.set_ylabel("anomaly score")
  ax.set_title(title, loc="left")
  ax.grid(axis="y", alpha=0.3)
  # Legend above the axes, level with the title, so it never hides a peak.
  ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
            ncols=2, frameon=False, fontsize=9, borderaxespad=0.2)
  return _save_atomic(fig, path)


def plot_auc_summary(path, per_video_auc: Mapping[str, float | None],
                     title: str = "Per-video frame AUC") -> Path:
  """Bar chart of per-video AUCs (sorted ids); None is drawn as "n/a".

  Args:
    path: output PNG path; parent folders are created.
    per_video_auc: video id -> AUC in [0, 1], or None for a video with a
      single class (as in `metrics.evaluate_frames`).
    title: figure title.

  Returns:
    The written path.
  """
  vids = sorted(per_video_auc)
  values = [per_video_auc[v] for v in vids]
  heights = [0.0 if v is None else float(v) for v in values]

  # Width grows with the number of videos so labels stay legible.
  fig = _new_figure(min(max(4.0, 0.28 * len(vids) + 1.5), 40.0), 3.5)
  ax = fig.add_subplot()
  x = np.arange(len(vids))
  ax.bar(x, heights, color=_SCORE_COLOR, width=0.8)
  for i, value in enumerate(values):
    if value is None:
      ax.text(i, 0.02, "n/a", ha="center", va="bottom", rotation=90,
              fontsize=7, color="gray")
  defined = [v for v in values if v is not None]
  if defined:
    mean = float(np.mean(defined))
    ax.axhline(mean, color=_ANOMALY_COLOR, linestyle="--",
               label=f"mean {mean:.3f} ({len(defined)} videos)")
    ax.legend(loc="lower right", framealpha=0.9)
  ax.set_xticks(x, vids, rotation=90, fontsize=7)
  ax.set_xlim(-0.6, max(len(vids) - 0.4, 0.4))
  ax.set_ylim(0.0, 1.0)
  ax.set_xlabel("video")
  ax.set_ylabel("AUC")
  ax.set_title(title)
  ax.grid(axis="y", alpha=0.3)
  return _save_atomic(fig, path)
