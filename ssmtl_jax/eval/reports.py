"""Text outputs of an evaluation: per-video region files and a markdown summary."""

from typing import Any, Mapping

import numpy as np

from data_prep import atomic_write

REGION_HEADER = "frame,x_min,y_min,x_max,y_max,score"




def write_region_file(path: str, frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> str:
  """One CSV row per scored object box: `frame,x_min,y_min,x_max,y_max,score`.

  Frames are 0-based; boxes are xyxy pixels of the crop actually scored (x_max, y_max exclusive).
  Rows are sorted by frame, then by descending score.
  """
  frames = np.asarray(frames, np.int64).reshape(-1)
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  scores = np.asarray(scores, np.float64).reshape(-1)
  if not len(frames) == len(boxes) == len(scores):
    raise ValueError(f"{path}: {len(frames)} frames, {len(boxes)} boxes and {len(scores)} scores "
                     "must have the same length")
  order = np.lexsort((-scores, frames))
  lines = [REGION_HEADER] + [
      f"{frames[n]},{boxes[n, 0]:g},{boxes[n, 1]:g},{boxes[n, 2]:g},{boxes[n, 3]:g},"
      f"{scores[n]:.6g}" for n in order]
  return atomic_write.write_text(path, "\n".join(lines) + "\n")


def read_region_file(path: str) -> np.ndarray:
  """Reads a region file back as float64 `[N, 6]` (frame, x_min, y_min, x_max, y_max, score)."""
  with open(path) as f:
    header = f.readline().strip()
    if header != REGION_HEADER:
      raise ValueError(f"{path}: expected the header {REGION_HEADER!r}, found {header!r}")
    lines = [line for line in f if line.strip()]
  if not lines:
    return np.zeros((0, 6), np.float64)
  return np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64).reshape(-1, 6)


def _pct(value) -> str:
  return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.2f}"


def summary_markdown(result: Mapping[str, Any], title: str) -> str:
  """A markdown report of `metrics.json`: headline metrics, per-task and per-video AUC."""
  lines = [f"# {title}", "", "| metric | value (%) |", "|---|---|"]
  headline = [
      ("micro AUC", "micro_auc"),
      ("micro AUC, per-video min-max", "micro_auc_per_video_minmax"),
      ("micro AUC, no min-max", "micro_auc_no_minmax"),
      ("macro AUC (dummy-frame convention)", "macro_auc"),
      ("macro AUC (single-class videos skipped)", "macro_auc_skip_single_class"),
      ("RBDC", "rbdc"),
      ("TBDC", "tbdc"),
  ]
  for label, key in headline:
    if key in result:
      lines.append(f"| {label} | {_pct(result[key])} |")
  if result.get("per_task_micro_auc"):
    lines += ["", "| task | micro AUC (%) |", "|---|---|"]
    unscored = set(result.get("unscored_tasks", ()))
    lines += [f"| {k}{' (not in the object score)' if k in unscored else ''} | {_pct(v)} |"
              for k, v in result["per_task_micro_auc"].items()]
  if result.get("per_video_auc"):
    lines += ["", "| video | AUC (%) |", "|---|---|"]
    lines += [f"| {k} | {_pct(v)} |" for k, v in result["per_video_auc"].items()]
  notes = [f"{k}: {result[k]}" for k in ("checkpoint_step", "num_test_cubes") if k in result]
  if notes:
    lines += ["", "; ".join(notes)]
  return "\n".join(lines) + "\n"


def write_summary(path: str, result: Mapping[str, Any], title: str) -> str:
  return atomic_write.write_text(path, summary_markdown(result, title))
