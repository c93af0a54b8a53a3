"""Tests for data_prep.synthetic: layout, label consistency and determinism."""

import json

import numpy as np
import pytest

from data_prep import detect, readers, synthetic

SMALL = dict(num_train=2, num_test=3, num_frames=40, height=64, width=96)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  root = tmp_path_factory.mktemp("demo")
  summary = synthetic.generate_dataset(root, seed=3, **SMALL)
  return root, summary


def test_layout_and_counts(demo):
  root, summary = demo
  train = readers.list_split_videos(root, "training")
  test = readers.list_split_videos(root, "testing")
  assert list(train) == ["01", "02"] and list(test) == ["01", "02", "03"]
  for path in [*train.values(), *test.values()]:
    files = readers.list_frame_files(path)
    assert [f.name for f in files] == [f"{t:03d}.png" for t in range(40)]
  video = readers.read_video(test["01"], grayscale=True)
  assert video.shape == (40, 64, 96, 1) and video.dtype == np.uint8
  assert json.loads((root / "synthetic.json").read_text()) == json.loads(json.dumps(summary))
  assert [v["anomaly"] for v in summary["testing"].values()] == list(synthetic.ANOMALY_KINDS)
  assert not list(root.rglob("*.tmp*")), "temporary files left behind"


def test_labels_match_pixel_masks_and_tracks(demo):
  root, summary = demo
  labels = readers.load_frame_labels(root, {v: 40 for v in ("01", "02", "03")})
  for vid, frame_labels in labels.items():
    masks = readers.load_pixel_masks(root, vid)
    assert masks.shape == (40, 64, 96) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    np.testing.assert_array_equal(frame_labels, masks.reshape(40, -1).any(1))
    # Some frames are abnormal and some are normal in every test video.
    assert 0 < frame_labels.sum() < 40
    assert frame_labels.sum() == summary["testing"][vid]["abnormal_frames"]

    rows = np.loadtxt(root / "testing" / "tracks" / f"{vid}.txt", delimiter=",",
                      dtype=np.int64, ndmin=2)
    np.testing.assert_array_equal(rows[:, 1], np.nonzero(frame_labels)[0])
    for track_id, t, x0, y0, x1, y1 in rows:
      ys, xs = np.nonzero(masks[t] == track_id)
      assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_training_has_walkers_only(demo):
  root, _ = demo
  # Walkers are found by the default motion detector in almost every frame, and no
  # training box is vehicle-sized.
  video = readers.read_video(root / "training" / "frames" / "01", grayscale=True)
  dets = detect.BackgroundMotion(min_area=40).detect_video(video)
  assert np.mean([len(d) > 0 for d in dets]) > 0.9
  sizes = np.concatenate([d.boxes[:, 2:] - d.boxes[:, :2] for d in dets])
  assert sizes[:, 0].max() < 28


def test_anomaly_is_detected(demo):
  root, _ = demo
  video = readers.read_video(root / "testing" / "frames" / "02", grayscale=True)
  dets = detect.BackgroundMotion(min_area=40).detect_video(video)
  rows = np.loadtxt(root / "testing" / "tracks" / "02.txt", delimiter=",", ndmin=2)
  hits = 0
  for row in rows:
    boxes = dets[int(row[1])].boxes
    # A detection whose centre lies in the anomaly's box.
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = np.all((centres >= row[2:4]) & (centres <= row[4:6]), axis=1)
    hits += int(inside.any())
  assert hits >= 0.8 * len(rows)


def test_deterministic(tmp_path):
  kwargs = dict(num_train=1, num_test=1, num_frames=12, height=48, width=64)
  synthetic.generate_dataset(tmp_path / "a", seed=7, **kwargs)
  synthetic.generate_dataset(tmp_path / "b", seed=7, **kwargs)
  synthetic.generate_dataset(tmp_path / "c", seed=8, **kwargs)
  # synthetic.json names its root, so it differs by design.
  files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file() and p.name != "synthetic.json")
  assert files_a
  same = [(tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
          for f in files_a]
  assert all(same)
  frames_a = readers.read_video(tmp_path / "a" / "testing" / "frames" / "01")
  frames_c = readers.read_video(tmp_path / "c" / "testing" / "frames" / "01")
  assert not np.array_equal(frames_a, frames_c)


def test_cli(tmp_path):
  synthetic.main(["--root", str(tmp_path), "--num_train", "1", "--num_test", "1",
                  "--num_frames", "10", "--height", "48", "--width", "64"])
  assert (tmp_path / "testing" / "frame_mask" / "01.npy").is_file()
  with pytest.raises(ValueError, match="at least"):
    synthetic.generate_dataset(tmp_path / "bad", height=16)
