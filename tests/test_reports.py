"""Region files and the markdown summary."""

import numpy as np
import pytest

from ssmtl_jax.eval import reports


def test_region_file_round_trip_sorted_by_frame_then_score(tmp_path):
  path = str(tmp_path / "regions" / "01.csv")
  frames = np.array([3, 1, 3])
  boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 25.5], [2, 2, 4, 4]])
  scores = np.array([0.5, 2.0, 0.9])
  reports.write_region_file(path, frames, boxes, scores)
  with open(path) as f:
    assert f.readline().strip() == reports.REGION_HEADER
  rows = reports.read_region_file(path)
  np.testing.assert_allclose(rows, [[1, 5, 5, 15, 25.5, 2.0], [3, 2, 2, 4, 4, 0.9],
                                    [3, 0, 0, 10, 10, 0.5]])


def test_empty_region_file_reads_back_empty(tmp_path):
  path = str(tmp_path / "r.csv")
  reports.write_region_file(path, [], np.zeros((0, 4)), [])
  assert reports.read_region_file(path).shape == (0, 6)


def test_region_file_errors(tmp_path):
  with pytest.raises(ValueError, match="same length"):
    reports.write_region_file(str(tmp_path / "r.csv"), [1, 2], np.zeros((1, 4)), [1.0])
  bad = tmp_path / "bad.csv"
  bad.write_text("frame,score\n1,2\n")
  with pytest.raises(ValueError, match="expected the header"):
    reports.read_region_file(str(bad))


def test_summary_lists_headline_task_and_video_rows():
  result = {"micro_auc": 0.9512, "macro_auc": 0.8, "macro_auc_skip_single_class": None,
            "rbdc": 0.25, "per_task_micro_auc": {"arrow_of_time": 0.6},
            "per_video_auc": {"01": 1.0, "02": None}, "checkpoint_step": 7}
  text = reports.summary_markdown(result, "ped2")
  assert text.startswith("# ped2\n")
  assert "| micro AUC | 95.12 |" in text
  assert "| macro AUC (single-class videos skipped) | n/a |" in text
  assert "| RBDC | 25.00 |" in text and "TBDC" not in text
  assert "| arrow_of_time | 60.00 |" in text
  assert "| 02 | n/a |" in text
  assert "checkpoint_step: 7" in text
