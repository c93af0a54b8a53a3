"""End to end on tiny configs: prep -> sharded training on 8 fake devices -> evaluation."""

import json
import os

import av
import cv2
import jax
import numpy as np
import pytest

from configs import ped2_v2
from configs import test as test_config
from data_prep import records
from ssmtl_jax import telemetry
from ssmtl_jax import workflow
from ssmtl_jax.eval import reports


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = test_config.get_config()
  result = workflow.run(config, workdir, "all")
  return config, workdir, result


def test_eight_devices_are_present():
  assert jax.device_count() == 8


def test_all_stages_write_their_outputs(tiny_run):
  config, workdir, result = tiny_run
  manifest = records.read_manifest(os.path.join(workdir, "records"))
  assert manifest["window_length"] == 2 * config.prep.half_window + 1
  assert manifest["splits"]["training"]["num_records"] > config.train.batch_size
  with open(os.path.join(workdir, "metrics.json")) as f:
    metrics = json.load(f)
  for key in ("micro_auc", "macro_auc", "macro_auc_skip_single_class", "per_video_auc",
              "per_task_micro_auc"):
    assert key in metrics
  assert 0.0 <= metrics["micro_auc"] <= 1.0
  assert set(metrics["per_task_micro_auc"]) == set(config.tasks)
  videos = manifest["splits"]["testing"]["videos"]
  for vid, n in zip(videos, manifest["splits"]["testing"]["frame_counts"]):
    scores = np.load(os.path.join(workdir, "eval", f"frame_scores_{vid}.npy"))
    assert scores.shape == (n,) and np.all(np.isfinite(scores))
    with open(os.path.join(workdir, "eval", f"scores_{vid}.png"), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_three_sharded_steps_logged_finite_losses(tiny_run):
  config, workdir, _ = tiny_run
  with open(os.path.join(workdir, "train_log.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  losses = [r for r in rows if "loss" in r and "step" in r]
  assert [r["step"] for r in losses] == [2, 3]  # step 1 is compile + first step
  for r in losses:
    assert np.isfinite(r["loss"])
    assert set(f"loss/{t}" for t in config.tasks) <= set(r)
  assert any(r.get("saved_best") for r in rows)


def test_prep_is_skipped_when_records_are_current(tiny_run, capsys):
  config, workdir, _ = tiny_run
  workflow.run(config, workdir, "prep")
  assert "up to date" in capsys.readouterr().out


def test_batch_not_divisible_by_devices_is_a_clear_error(tiny_run):
  config, workdir, _ = tiny_run
  config = test_config.get_config()
  config.train.batch_size = 12
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    workflow.run(config, workdir, "train")


def test_locked_config_rejects_unknown_field():
  config = test_config.get_config()
  config.lock()
  with pytest.raises(AttributeError):
    config.train.lernig_rate = 1.0


def test_published_v2_architecture_runs_three_steps(tmp_path):
  """configs/ped2_v2.py: 64x64 crops, deep+wide trunk, 3 CvT blocks x 12 heads, batch cut to 8."""
  config = ped2_v2.get_config()
  tiny = test_config.get_config()
  config.data.synthetic = True
  config.data.root = str(tmp_path / "data")
  config.data.synthetic_options = tiny.data.synthetic_options
  config.prep.detector_options = tiny.prep.detector_options
  config.prep.train_frame_stride = 2
  config.train.num_steps = 3
  config.train.batch_size = 8
  config.train.val_fraction = 0.0
  config.eval.batch_size = 8
  workflow.run(config, str(tmp_path), "prep")
  summary = workflow.run(config, str(tmp_path), "train")
  assert summary["num_steps"] == 3
  assert np.isfinite(summary["best_val_loss"])
  manifest = records.read_manifest(os.path.join(str(tmp_path), "records"))
  assert manifest["crop_size"] == 64


def test_eval_writes_regions_overlays_summary_and_tensorboard(tiny_run):
  config, workdir, result = tiny_run
  manifest = records.read_manifest(os.path.join(workdir, "records"))
  test = manifest["splits"]["testing"]
  for vid, n in zip(test["videos"], test["frame_counts"]):
    rows = reports.read_region_file(os.path.join(workdir, "eval", "regions", f"{vid}.csv"))
    assert rows.shape[1] == 6 and np.all((rows[:, 0] >= 0) & (rows[:, 0] < n))
    path = os.path.join(workdir, "eval", "overlays", f"{vid}.mp4")
    cap = cv2.VideoCapture(path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()
    with av.open(path) as container:  # H.264, which browsers play
      assert container.streams.video[0].codec_context.name == "h264"
  with open(os.path.join(workdir, "summary.md")) as f:
    summary = f.read()
  assert f"| micro AUC | {100 * result['micro_auc']:.2f} |" in summary
  # The synthetic demo has track annotations, so the region metrics are computed.
  assert 0.0 <= result["rbdc"] <= 1.0 and 0.0 <= result["tbdc"] <= 1.0
  scalars = telemetry.read_scalars(os.path.join(workdir, "tensorboard"))
  assert [s for s, _ in scalars["train/loss"]] == [2, 3]
  assert "val/loss" in scalars and "train/cubes_per_s" in scalars


def test_score_mode_scores_a_frame_folder_like_eval(tiny_run, tmp_path):
  config, workdir, _ = tiny_run
  vid = records.read_manifest(os.path.join(workdir, "records"))["splits"]["testing"]["videos"][0]
  video = os.path.join(config.data.root, "testing", "frames", vid)
  out = str(tmp_path / "score")
  summary = workflow.run(config, out, "score", video=video, checkpoint=workdir)
  assert summary["standardized"] and summary["num_objects"] > 0
  scores = np.load(os.path.join(out, f"frame_scores_{vid}.npy"))
  assert scores.shape == (summary["num_frames"],) and np.all(np.isfinite(scores))
  # Same detector and cubes as the eval: the scored boxes match eval's region file.
  mine = reports.read_region_file(os.path.join(out, "regions", f"{vid}.csv"))
  evals = reports.read_region_file(os.path.join(workdir, "eval", "regions", f"{vid}.csv"))
  key = lambda rows: sorted(map(tuple, rows[:, :5]))
  assert key(mine) == key(evals)
  assert os.path.isfile(os.path.join(out, "overlays", f"{vid}.mp4"))


def test_score_mode_needs_video_and_checkpoint(tmp_path):
  with pytest.raises(ValueError, match="--video"):
    workflow.run(test_config.get_config(), str(tmp_path), "score")
  # Both problems at once, before any work: the video is missing and so are the checkpoints.
  with pytest.raises(ValueError, match=r"(?s)--video=x\.avi: no such file.*no checkpoints"):
    workflow.run(test_config.get_config(), str(tmp_path), "score", video="x.avi",
                 checkpoint=str(tmp_path))


def test_score_mode_on_a_video_without_objects_gives_defined_scores(tiny_run, tmp_path):
  config, workdir, _ = tiny_run
  folder = tmp_path / "static"
  folder.mkdir()
  for i in range(10):
    cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((48, 64, 3), 100, np.uint8))
  summary = workflow.run(config, str(tmp_path / "out"), "score", video=str(folder),
                         checkpoint=workdir)
  assert summary["num_objects"] == 0
  scores = np.load(tmp_path / "out" / "frame_scores_static.npy")
  np.testing.assert_array_equal(scores, np.zeros(10))
