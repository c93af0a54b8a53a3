"""Tests for ssmtl_jax.eval.plots: figures are written atomically as PNGs."""

import numpy as np
import pytest

from ssmtl_jax.eval import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
  data = path.read_bytes()
  assert len(data) > 1000
  assert data[:8] == PNG_MAGIC


def test_plot_video_scores_writes_png(tmp_path):
  t = np.arange(200)
  labels = ((t > 60) & (t < 110)) | (t == 180)
  scores = 0.2 + 0.6 * labels + 0.05 * np.sin(t / 5)
  out = plots.plot_video_scores(tmp_path / "sub" / "01.png", scores, labels,
                                "video 01 (AUC 0.97)")
  assert out == tmp_path / "sub" / "01.png"
  _assert_png(out)
  # Nothing but the finished figure is left in the folder.
  assert [p.name for p in out.parent.iterdir()] == ["01.png"]


def test_plot_video_scores_unnormalised_and_no_labels(tmp_path):
  path = tmp_path / "raw.png"
  plots.plot_video_scores(path, np.linspace(-3, 7, 50), None, "raw")
  _assert_png(path)


def test_plot_video_scores_length_mismatch(tmp_path):
  with pytest.raises(ValueError, match="labels"):
    plots.plot_video_scores(tmp_path / "x.png", np.zeros(5), np.zeros(4), "x")
  assert not list(tmp_path.iterdir())


def test_plot_auc_summary_writes_png(tmp_path):
  path = tmp_path / "auc.png"
  plots.plot_auc_summary(path, {"01": 0.91, "02": 0.75, "03": None})
  _assert_png(path)
  assert [p.name for p in tmp_path.iterdir()] == ["auc.png"]
