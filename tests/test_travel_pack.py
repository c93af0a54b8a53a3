"""The travel pack's video re-encoding, read-back and box agreement, on tiny synthetic frames."""

import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))

import travel_pack  # noqa: E402  (benchmarks/ is not a package)

from configs import test as test_config  # noqa: E402
from data_prep import detect  # noqa: E402
from data_prep import readers  # noqa: E402
from data_prep import synthetic  # noqa: E402


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  root = tmp_path_factory.mktemp("frames")
  synthetic.generate_dataset(root, num_train=1, num_test=1, num_frames=24, height=48, width=64)
  return root


def test_match_boxes_pairs_one_to_one_above_the_iou():
  a = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)
  b = np.array([[20, 20, 30, 31], [0, 0, 10, 10], [40, 40, 46, 50]], np.float32)
  # a[1] vs b[0]: IoU 100/110 = 0.909; a[2] vs b[2]: 0.6, below 0.9.
  assert sorted(travel_pack.match_boxes(a, b)) == [(0, 1), (1, 0)]
  assert travel_pack.match_boxes(a, b[:0]) == []
  twins = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
  assert len(travel_pack.match_boxes(twins, twins[:1])) == 1  # one box matches one box


@pytest.mark.parametrize("qp", [0, travel_pack.DEFAULT_QP])
def test_pack_reads_back_and_keeps_the_boxes(source, tmp_path, qp):
  pack = tmp_path / "ped2"
  info = travel_pack.encode_dataset(str(source), str(pack), qp)
  for split in readers.SPLITS:
    videos = readers.list_split_videos(pack, split)
    assert list(videos) == list(readers.list_split_videos(source, split))
    assert all(p.suffix == travel_pack.VIDEO_SUFFIX for p in videos.values())
    for vid, path in videos.items():
      frames = readers.read_video(path)
      want = readers.read_video(readers.list_split_videos(source, split)[vid])
      assert frames.shape == want.shape and readers.count_frames(path) == len(want)
  assert (pack / "testing" / "frame_mask").is_dir() is False  # only the root's files are copied
  assert (pack / "synthetic.json").is_file()
  assert travel_pack.is_pack(str(pack)) and len(info["videos"]) == 2

  result = travel_pack.check_pack(str(source), str(pack), test_config.get_config(), cube_stride=2)
  assert result["ref_objects"] > 20
  if qp == 0:  # lossless: the same pixels, so the same boxes and cubes
    assert result["box_agreement"] == 1.0 and result["cube_mad"] == 0.0
    assert all(v["frame_mad"] == 0 for v in info["videos"])
  else:
    assert result["matched_of_ref"] >= 0.9 and 0 < result["cube_mad"] < 2.0


def test_verify_pack_names_a_video_decoded_differently(source, tmp_path):
  pack = tmp_path / "ped2"
  travel_pack.encode_dataset(str(source), str(pack))
  assert travel_pack.verify_pack(str(pack))["frames"] == 24
  info = json.loads((pack / travel_pack.PACK_FILE).read_text())
  for v in info["videos"]:
    v["mean_level"] += 3
  (pack / travel_pack.PACK_FILE).write_text(json.dumps(info))
  with pytest.raises(ValueError, match=r"testing_videos/.*\.mp4: decoded 24 frames"):
    travel_pack.verify_pack(str(pack))


def test_noise_floor_moves_pixels_but_not_the_frame_count(source):
  result = travel_pack.check_pack(str(source), str(source), test_config.get_config(),
                                  cube_stride=4, noise=1)
  assert result["noise"] == 1 and 0 < result["cube_mad"] <= 1.0


def test_patch_gives_the_detector_its_boxes_back(source, tmp_path):
  config = test_config.get_config()
  lossy = tmp_path / "lossy"
  travel_pack.encode_dataset(str(source), str(lossy), qp=20)
  before = travel_pack.check_pack(str(source), str(lossy), config, cube_stride=2)
  info = travel_pack.encode_dataset(str(source), str(tmp_path / "patched"), 20, config)
  after = travel_pack.check_pack(str(source), str(tmp_path / "patched"), config, cube_stride=2)
  assert before["matched_of_ref"] < 0.9  # QP 20 moves many of the synthetic people's boxes
  assert after["box_agreement"] == 1.0 and info["patch"]["frames_unmatched"] == 0
  assert 0 < info["patch"]["patched_frames"] < 48  # only frames whose boxes moved
  patches = sorted(p.name for p in (tmp_path / "patched").glob("*_videos/*.patch.npz"))
  assert patches and all(p.endswith(".mp4.patch.npz") for p in patches)
  assert after["cube_mad"] <= before["cube_mad"]


def test_patch_needs_a_median_background_detector():
  frames = np.zeros((4, 8, 8), np.uint8)
  with pytest.raises(ValueError, match="FlowMotion: the patch needs a median-background"):
    travel_pack.detector_patch(frames, frames, detect.FlowMotion())
