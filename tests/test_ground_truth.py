"""Tests for data_prep.ground_truth: every benchmark's published ground-truth format."""

import pathlib

import cv2
import numpy as np
import pytest
import scipy.io

from data_prep import ground_truth as gt
from data_prep import readers
from data_prep import synthetic
from data_prep import tracks as tracks_lib
from data_prep import ubnormal

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
PED2 = SHARED / "ped2"
AVENUE = SHARED / "ground_truth" / "avenue"
SHANGHAITECH = SHARED / "ground_truth" / "shanghaitech"


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def _cell(masks):
  cell = np.empty((1, len(masks)), dtype=object)
  for i, mask in enumerate(masks):
    cell[0, i] = mask
  return cell


def _avenue_masks(num_frames, abnormal, size=(6, 10)):
  masks = np.zeros((num_frames,) + size, np.uint8)
  for t in abnormal:
    masks[t, 1:3, t % size[1]:t % size[1] + 2] = 1
  masks[abnormal[0], -1, -1] = 1  # Bottom-right corner: catches a row/column-major mix-up.
  return masks


# ------------------------------------------------------------------------------------ tracks


def test_read_tracks_header_blank_lines_and_file_order(tmp_path):
  path = _write(tmp_path / "v.txt", "track_id,frame_idx,x_min,y_min,x_max,y_max\n"
                "1,5,10,20,30,40\n\n0,7.0,1,2,3,4\n 0,6,0,0,0,0 \n")
  rows = tracks_lib.read_tracks(path, num_frames=8)
  assert rows.dtype == np.int64
  assert rows.tolist() == [[1, 5, 10, 20, 30, 40], [0, 7, 1, 2, 3, 4], [0, 6, 0, 0, 0, 0]]
  assert tracks_lib.read_tracks(_write(tmp_path / "e.txt", "")).shape == (0, 6)


@pytest.mark.parametrize("text, match", [
    ("0,1,2,3,4\n", r"b.txt:1: expected 6 comma-separated"),
    ("0,1,2,3,4,5\n0,x,2,3,4,5\n", r"b.txt:2: expected an integer, got 'x'"),
    ("0,1,2,3,4,5.5\n", "expected an integer"),
    ("0,1,-2,3,4,5\n", "negative value"),
    ("0,1,9,3,4,5\n", "x_max < x_min"),
    ("0,1,2,3,4,5\n0,1,2,3,4,6\n", "track 0 has two rows for frame 1"),
    ("0,10,2,3,4,5\n", "frame_idx 10 but the video has 10 frames"),
])
def test_read_tracks_errors(tmp_path, text, match):
  with pytest.raises(ValueError, match=match):
    tracks_lib.read_tracks(_write(tmp_path / "b.txt", text), num_frames=10)


def test_read_tracks_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.txt"):
    tracks_lib.read_tracks(tmp_path / "nope.txt")


def test_read_tracks_dir(tmp_path):
  _write(tmp_path / "02.txt", "0,1,2,3,4,5\n")
  _write(tmp_path / "readme.txt", "The files have the following format:\n")
  tracks = tracks_lib.read_tracks_dir(tmp_path, {"01": 4, "02": 4})
  assert list(tracks) == ["01", "02"] and tracks["01"].shape == (0, 6)
  assert tracks["02"].tolist() == [[0, 1, 2, 3, 4, 5]]
  assert list(tracks_lib.read_tracks_dir(tmp_path)) == ["02"]
  with pytest.raises(ValueError, match=r"without a test video on disk: \['02'\]"):
    tracks_lib.read_tracks_dir(tmp_path, {"01": 4})
  with pytest.raises(ValueError, match="frame_idx 1 but the video has 1"):
    tracks_lib.read_tracks_dir(tmp_path, {"02": 1})
  with pytest.raises(FileNotFoundError, match="nope"):
    tracks_lib.read_tracks_dir(tmp_path / "nope")


def test_boxes_from_track_mask():
  masks = np.zeros((3, 10, 12), np.uint8)
  masks[0, 2:4, 3:6] = 2
  masks[0, 8, 11] = 2  # A stray pixel: in the union box, not in the largest component.
  masks[1, 5:7, 0:2] = 1
  masks[2, 0, 0] = 1
  rows = tracks_lib.boxes_from_track_mask(masks)
  assert rows.tolist() == [[1, 1, 0, 5, 2, 7], [1, 2, 0, 0, 1, 1], [2, 0, 3, 2, 12, 9]]
  largest = tracks_lib.boxes_from_track_mask(masks, largest_component=True)
  assert largest.tolist() == [[1, 1, 0, 5, 2, 7], [1, 2, 0, 0, 1, 1], [2, 0, 3, 2, 6, 4]]
  assert tracks_lib.boxes_from_track_mask(np.zeros((2, 4, 4), np.uint8)).shape == (0, 6)
  with pytest.raises(ValueError, match=r"integer \[T, H, W\]"):
    tracks_lib.boxes_from_track_mask(np.zeros((4, 4)))


def test_boxes_from_track_mask_on_a_synthetic_video():
  # Each row's box is exactly the extent of its track id in that frame's mask.
  _, masks = synthetic.render_video(np.random.default_rng(0), 12, 48, 64, anomaly="vehicle")
  rows = tracks_lib.boxes_from_track_mask(masks)
  assert len(rows)
  for track_id, t, x0, y0, x1, y1 in rows:
    ys, xs = np.nonzero(masks[t] == track_id)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
  assert {tuple(r[:2]) for r in rows} == {(i, t) for t in range(len(masks))
                                          for i in np.unique(masks[t][masks[t] > 0])}


def test_check_tracks_on_abnormal_frames():
  labels = {"a": np.array([0, 1, 1], np.int8)}
  tracks_lib.check_tracks_on_abnormal_frames({"a": np.array([[0, 1, 0, 0, 1, 1], [0, 2, 0, 0, 1, 1]])},
                                     labels)
  with pytest.raises(ValueError, match=r"video a \(3 frames\) has 1 track rows on normal"):
    tracks_lib.check_tracks_on_abnormal_frames({"a": np.array([[0, 0, 0, 0, 1, 1]])}, labels, "src")
  with pytest.raises(ValueError, match="missing"):
    tracks_lib.check_tracks_on_abnormal_frames({"a": np.array([[0, 3, 0, 0, 1, 1]])}, labels)
  with pytest.raises(ValueError, match="video b, which has no frame labels"):
    tracks_lib.check_tracks_on_abnormal_frames({"b": np.array([[0, 0, 0, 0, 1, 1]])}, labels)


# -------------------------------------------------------------------------------------- Ped2


def test_parse_ucsd_m(tmp_path):
  path = _write(tmp_path / "UCSDped1.m", "TestVideoFile = {};\n% a comment [1:2]\n"
                "TestVideoFile{end+1}.gt_frame = [61:180];\n"
                "TestVideoFile{end+1}.gt_frame = [5:90, 140:200]; % trailing\n"
                "TestVideoFile{end+1}.gt_frame = [1:2:7 9];\n"
                "TestVideoFile{end+1}.gt_frame = [];\n")
  videos = gt.parse_ucsd_m(path)
  assert [v.tolist() for v in videos] == [
      [[61], [180]], [[5, 140], [90, 200]], [[1, 3, 5, 7, 9], [1, 3, 5, 7, 9]], [[], []]]


@pytest.mark.parametrize("text, match", [
    ("TestVideoFile{end+1}.gt_frame = [1:x];\n", "cannot parse range '1:x'"),
    ("TestVideoFile{end+1}.gt_frame = 1:5;\n", r"UCSDped2.m:1: expected"),
    ("TestVideoFile = {};\n", "no 'gt_frame"),
])
def test_parse_ucsd_m_errors(tmp_path, text, match):
  with pytest.raises(ValueError, match=match):
    gt.parse_ucsd_m(_write(tmp_path / "UCSDped2.m", text))
  with pytest.raises(FileNotFoundError, match="gt_frame script"):
    gt.parse_ucsd_m(tmp_path / "missing.m")


def test_load_ped2_labels_from_m_file(tmp_path):
  _write(tmp_path / "testing" / "UCSDped2.m", "TestVideoFile{end+1}.gt_frame = [2:3, 5:5];\n"
         "TestVideoFile{end+1}.gt_frame = [1:4];\n")
  labels = gt.load_ped2_labels(tmp_path, {"10": 4, "9": 6})  # Natural order: 9 before 10.
  assert labels["9"].tolist() == [0, 1, 1, 0, 1, 0] and labels["10"].tolist() == [1, 1, 1, 1]
  assert labels["9"].dtype == np.int8
  with pytest.raises(ValueError, match="labels 2 test videos but 3"):
    gt.load_ped2_labels(tmp_path, {"1": 6, "2": 6, "3": 6})
  with pytest.raises(ValueError, match=r"range \[1, 4\] outside 1..3"):
    gt.load_ped2_labels(tmp_path, {"1": 6, "2": 3})
  with pytest.raises(FileNotFoundError, match="ped2.mat"):
    gt.load_ped2_labels(tmp_path / "empty", {"1": 6})


@pytest.mark.skipif(not (PED2 / "ped2.mat").is_file(), reason="real Ped2 data not present")
def test_ucsd_m_agrees_with_real_ped2_mat(tmp_path):
  counts = {vid: len(readers.list_frame_files(path))
            for vid, path in readers.list_split_videos(PED2, "testing").items()}
  cells = scipy.io.loadmat(PED2 / "ped2.mat")["gt"].reshape(-1)
  lines = ["TestVideoFile = {};"] + [
      "TestVideoFile{end+1}.gt_frame = [%s];" % ", ".join(
          f"{a}:{b}" for a, b in np.asarray(c, np.int64).reshape(2, -1).T) for c in cells]
  _write(tmp_path / "UCSDped2.m", "\n".join(lines) + "\n")
  from_mat = gt.load_ped2_labels(PED2, counts)
  from_m = gt.load_ped2_labels(tmp_path, counts)
  assert from_mat.keys() == from_m.keys() == counts.keys()
  for vid in counts:
    np.testing.assert_array_equal(from_m[vid], from_mat[vid])
  assert sum(int(x.sum()) for x in from_m.values()) == 1648
  if (PED2 / "UCSDped2.m").is_file():  # The real script says the same.
    real = [np.asarray(c, np.int64).reshape(2, -1) for c in cells]
    assert [v.tolist() for v in gt.parse_ucsd_m(PED2 / "UCSDped2.m")] == [r.tolist() for r in real]


# ------------------------------------------------------------------------------------ Avenue


@pytest.mark.parametrize("compress", [False, True])
def test_avenue_mat_labels_and_masks(tmp_path, compress):
  masks = _avenue_masks(7, [1, 2, 5])
  masks[2, 0, 0] = 255
  path = tmp_path / "3_label.mat"
  scipy.io.savemat(path, {"aaa": np.arange(5.0), "volLabel": _cell(masks)},
                   do_compression=compress)
  labels = gt.read_avenue_frame_labels(path, num_frames=7)
  assert labels.dtype == np.int8 and labels.tolist() == [0, 1, 1, 0, 0, 1, 0]
  read = gt.read_avenue_masks(path)
  assert read.dtype == np.uint8 and read.shape == (7, 6, 10)
  np.testing.assert_array_equal(read, masks)


def test_avenue_mat_double_masks(tmp_path):
  # MATLAB may store a double mask with integer values as miUINT8 data; any numeric class works.
  masks = _avenue_masks(3, [2]).astype(np.float64)
  path = tmp_path / "1_label.mat"
  scipy.io.savemat(path, {"volLabel": _cell(list(masks))}, do_compression=True)
  assert gt.read_avenue_frame_labels(path).tolist() == [0, 0, 1]
  np.testing.assert_array_equal(gt.read_avenue_masks(path), masks.astype(np.uint8))


def test_avenue_mat_errors(tmp_path):
  path = tmp_path / "1_label.mat"
  scipy.io.savemat(path, {"volLabel": _cell(_avenue_masks(4, [1]))}, do_compression=True)
  with pytest.raises(ValueError, match=r"1_label.mat: 'volLabel' has 4 frames but the video"):
    gt.read_avenue_frame_labels(path, num_frames=5)
  with pytest.raises(ValueError, match="4 frames but the video has 3"):
    gt.read_avenue_masks(path, num_frames=3)
  scipy.io.savemat(path, {"gt": _cell(_avenue_masks(4, [1]))})
  with pytest.raises(ValueError, match=r"no variable 'volLabel' \(found \['gt'\]\)"):
    gt.read_avenue_frame_labels(path)
  scipy.io.savemat(path, {"volLabel": np.zeros((4, 5), np.uint8)})
  with pytest.raises(ValueError, match="should be a 1xT cell array"):
    gt.read_avenue_frame_labels(path)
  scipy.io.savemat(path, {"volLabel": _cell([np.zeros((2, 2), np.uint8), np.zeros(3)])})
  with pytest.raises(ValueError, match=r"volLabel\{2\} is \(1, 3\) but volLabel\{1\} is \(2, 2\)"):
    gt.read_avenue_masks(path)
  scipy.io.savemat(path, {"volLabel": _cell(_avenue_masks(40, [1]))}, do_compression=True)
  data = path.read_bytes()
  path.write_bytes(data[:128 + (len(data) - 128) // 2])
  with pytest.raises(ValueError, match="truncated or corrupt"):
    gt.read_avenue_frame_labels(path)
  scipy.io.savemat(path, {"volLabel": _cell(_avenue_masks(40, [1]))})
  path.write_bytes(path.read_bytes()[:-100])
  with pytest.raises(ValueError, match="truncated or corrupt"):
    gt.read_avenue_masks(path)
  path.write_bytes(b"not a mat file at all")
  with pytest.raises(ValueError, match="not a level 5 MAT-file"):
    gt.read_avenue_frame_labels(path)
  path.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128) + b"\x89HDF")
  with pytest.raises(ValueError, match="v7.3"):
    gt.read_avenue_frame_labels(path)
  with pytest.raises(FileNotFoundError, match="9_label.mat"):
    gt.read_avenue_frame_labels(tmp_path / "9_label.mat")


def test_load_avenue_labels_maps_numbers_to_video_ids(tmp_path):
  folder = tmp_path / "ground_truth_demo" / "testing_label_mask"
  folder.mkdir(parents=True)
  for n, (count, abnormal) in {1: (4, [0]), 2: (3, [2]), 10: (5, [1, 3])}.items():
    scipy.io.savemat(folder / f"{n}_label.mat", {"volLabel": _cell(_avenue_masks(count, abnormal))})
  (folder / "look_gt.m").write_text("% demo script, not a label file\n")
  labels = gt.load_avenue_labels(tmp_path, {"01": 4, "02": 3, "10": 5})
  assert list(labels) == ["01", "02", "10"] and labels["10"].tolist() == [0, 1, 0, 1, 0]
  assert list(gt.load_avenue_labels(tmp_path)) == ["01", "02", "10"]
  with pytest.raises(ValueError, match=r"missing labels: \['11'\], labels without video: \['10'\]"):
    gt.load_avenue_labels(tmp_path, {"01": 4, "02": 3, "11": 5})
  with pytest.raises(ValueError, match="2_label.mat: 'volLabel' has 3 frames but the video has 4"):
    gt.load_avenue_labels(tmp_path, {"01": 4, "02": 4, "10": 5})
  with pytest.raises(FileNotFoundError, match="testing_label_mask"):
    gt.load_avenue_labels(tmp_path / "nope")


def test_load_ground_truth_avenue_with_tracks(tmp_path):
  folder = tmp_path / "testing_label_mask"
  folder.mkdir()
  scipy.io.savemat(folder / "1_label.mat", {"volLabel": _cell(_avenue_masks(4, [2, 3]))})
  _write(tmp_path / "tracks" / "01.txt", "0,2,1,1,3,3\n0,3,1,1,3,3\n")
  truth = gt.load_ground_truth("avenue", tmp_path, {"01": 4})
  assert truth.frame_labels["01"].tolist() == [0, 0, 1, 1]
  assert truth.tracks["01"].shape == (2, 6)
  np.testing.assert_array_equal(truth.pixel_mask("01"), _avenue_masks(4, [2, 3]))
  _write(tmp_path / "tracks" / "01.txt", "0,1,1,1,3,3\n")
  with pytest.raises(ValueError, match="avenue ground truth.*video 01 .* has 1 track rows"):
    gt.load_ground_truth("avenue", tmp_path)
  assert gt.load_ground_truth("avenue", tmp_path, check_tracks=False).tracks["01"].shape == (1, 6)
  assert gt.load_ground_truth("avenue", tmp_path, tracks=False).tracks is None


@pytest.mark.skipif(not AVENUE.is_dir(), reason="real Avenue masks not present")
def test_real_avenue_masks():
  # Streams all 21 volumes (3.5 GB of masks once inflated) without keeping them: ~10 s.
  labels = gt.load_avenue_labels(AVENUE)
  assert list(labels) == [f"{n:02d}" for n in range(1, 22)]
  assert sum(len(x) for x in labels.values()) == 15324
  assert sum(int(x.sum()) for x in labels.values()) == 3712
  path = AVENUE / "testing_label_mask" / "21_label.mat"  # The smallest: check against scipy.
  reference = scipy.io.loadmat(path)["volLabel"].reshape(-1)
  masks = gt.read_avenue_masks(path, num_frames=len(labels["21"]))
  assert masks.shape == (76, 360, 640)
  np.testing.assert_array_equal(masks, np.stack(reference))
  np.testing.assert_array_equal(labels["21"], masks.reshape(76, -1).sum(axis=1) > 0)


# ------------------------------------------------------------------------------ ShanghaiTech


def _shanghaitech(root, under=""):
  base = root / under
  masks = np.zeros((5, 4, 6), np.uint8)
  masks[2:4, 1, 2] = 1
  (base / "test_frame_mask").mkdir(parents=True)
  (base / "test_pixel_mask").mkdir()
  np.save(base / "test_frame_mask" / "01_0014.npy", np.array([0, 0, 1, 1, 0], np.int64))
  np.save(base / "test_frame_mask" / "02_0001.npy", np.zeros(3, np.int64))
  np.save(base / "test_pixel_mask" / "01_0014.npy", masks)
  _write(base / "tracks" / "01_0014.txt", "0,3,2,1,3,2\n0,2,2,1,3,2\n")
  _write(base / "tracks" / "readme.txt", "track_id,frame_idx,x_min,y_min,x_max,y_max\n")
  return masks


@pytest.mark.parametrize("under", ["", "testing"])
def test_load_ground_truth_shanghaitech(tmp_path, under):
  masks = _shanghaitech(tmp_path, under)
  truth = gt.load_ground_truth("shanghaitech", tmp_path, {"01_0014": 5, "02_0001": 3})
  assert truth.dataset == "shanghaitech"
  assert truth.frame_labels["01_0014"].tolist() == [0, 0, 1, 1, 0]
  assert truth.frame_labels["01_0014"].dtype == np.int8
  assert truth.tracks["01_0014"].tolist() == [[0, 3, 2, 1, 3, 2], [0, 2, 2, 1, 3, 2]]
  assert truth.tracks["02_0001"].shape == (0, 6)
  np.testing.assert_array_equal(truth.pixel_mask("01_0014"), masks)
  assert truth.pixel_mask("02_0001") is None
  with pytest.raises(KeyError, match="no test video"):
    truth.pixel_mask("03_0001")
  with pytest.raises(ValueError, match=r"01_0014.npy: video 01_0014 has 5 labels but 6 frames"):
    gt.load_ground_truth("shanghaitech", tmp_path, {"01_0014": 6, "02_0001": 3})
  with pytest.raises(ValueError, match=r"missing labels: \['03_0001'\]"):
    gt.load_ground_truth("shanghaitech", tmp_path, {"01_0014": 5, "02_0001": 3, "03_0001": 9})


def test_shanghaitech_errors(tmp_path):
  _shanghaitech(tmp_path)
  np.save(tmp_path / "test_pixel_mask" / "01_0014.npy", np.zeros((4, 4, 6), np.uint8))
  truth = gt.load_ground_truth("shanghaitech", tmp_path)
  with pytest.raises(ValueError, match="mask has 4 frames but the video has 5"):
    truth.pixel_mask("01_0014")
  np.save(tmp_path / "test_frame_mask" / "02_0001.npy", np.array([0, 2, 0]))
  with pytest.raises(ValueError, match="02_0001.npy: expected 0/1 labels"):
    gt.load_shanghaitech_labels(tmp_path)
  with pytest.raises(FileNotFoundError, match="test_frame_mask"):
    gt.load_shanghaitech_labels(tmp_path / "nope")


@pytest.mark.skipif(not SHANGHAITECH.is_dir(), reason="real ShanghaiTech files not present")
def test_real_shanghaitech():
  truth = gt.load_ground_truth("shanghaitech", SHANGHAITECH)  # Checks rows lie on abnormal frames.
  labels = truth.frame_labels
  assert len(labels) == 107 and len(truth.tracks) == 107
  assert sum(len(x) for x in labels.values()) == 40791
  assert sum(int(x.sum()) for x in labels.values()) == 17326
  assert all(len(rows) for rows in truth.tracks.values())
  shifted = {vid: rows + [0, 1, 0, 0, 0, 0] for vid, rows in truth.tracks.items()}
  with pytest.raises(ValueError, match="0-based"):  # 1-based indexing does not fit.
    tracks_lib.check_tracks_on_abnormal_frames(shifted, labels)


# ---------------------------------------------------------------------------------- UBnormal


def _ubnormal(root):
  """Scene3: one abnormal video (objects 4 and 7), one normal video; split lists in scripts/."""
  video = "abnormal_scene_3_scenario_1"
  folder = root / "Scene3" / f"{video}_annotations"
  folder.mkdir(parents=True)
  _write(folder / f"{video}_tracks.txt", "7,3,4\n4.0,1,2\n")
  masks = np.zeros((6, 8, 10), np.uint8)
  masks[1, 2:4, 1:3] = 4
  masks[2, 3:5, 2:4] = 4
  masks[2, 7, 9] = 4  # Stray pixel: ignored by the largest-contour box.
  masks[3, 0:2, 5:9] = 7
  masks[4, 1, 6] = 7
  for t, mask in enumerate(masks):
    assert cv2.imwrite(str(ubnormal.ubnormal_gt_png(folder, t)), mask)
  scripts = root / "scripts"
  for kind, names in {"abnormal": [video], "normal": ["normal_scene_3_scenario_2"]}.items():
    for split in ("training", "validation", "test"):
      _write(scripts / f"{kind}_{split}_video_names.txt", "\n".join(names) + "\n\n")
  return video, folder, masks


def test_ubnormal_video(tmp_path):
  video, folder, masks = _ubnormal(tmp_path)
  assert folder == ubnormal.ubnormal_annotation_dir(tmp_path, video)
  assert ubnormal.read_ubnormal_tracks(folder / f"{video}_tracks.txt").tolist() == [[7, 3, 4], [4, 1, 2]]
  labels, rows = ubnormal.read_ubnormal_video(tmp_path, video, 6)
  assert labels.dtype == np.int8 and labels.tolist() == [0, 1, 1, 1, 1, 0]
  # Sorted by object id (4 then 7) and renumbered 0, 1 as the official RBDC track files.
  assert rows.tolist() == [[0, 1, 1, 2, 3, 4], [0, 2, 2, 3, 4, 5],
                           [1, 3, 5, 0, 9, 2], [1, 4, 6, 1, 7, 2]]
  masks[4] = 0
  cv2.imwrite(str(ubnormal.ubnormal_gt_png(folder, 4)), masks[4])
  from_masks, _ = ubnormal.read_ubnormal_video(tmp_path, video, 6, tracks=False, labels_from="masks")
  assert from_masks.tolist() == [0, 1, 1, 1, 0, 0]
  _, rows = ubnormal.read_ubnormal_video(tmp_path, video, 6)
  assert rows[:, 1].tolist() == [1, 2, 3]  # An object absent from its frame gives no region.
  _write(folder / f"{video}_new_tracks.txt", "7,3,3\n")
  labels, rows = ubnormal.read_ubnormal_video(tmp_path, video, 6)
  assert labels.tolist() == [0, 1, 1, 1, 1, 0]  # Labels still from _tracks.txt.
  assert rows.tolist() == [[0, 3, 5, 0, 9, 2]]
  np.testing.assert_array_equal(ubnormal.read_ubnormal_masks(tmp_path, video, 6), masks)
  normal_labels, normal_rows = ubnormal.read_ubnormal_video(tmp_path, "normal_scene_3_scenario_2", 4)
  assert normal_labels.tolist() == [0, 0, 0, 0] and normal_rows.shape == (0, 6)
  assert ubnormal.read_ubnormal_masks(tmp_path, "normal_scene_3_scenario_2", 4) is None


def test_ubnormal_splits_and_dispatcher(tmp_path):
  video, _, _ = _ubnormal(tmp_path)
  for split in ("train", "val", "testing"):
    assert ubnormal.ubnormal_split_videos(tmp_path, split) == {
        "abnormal": [video], "normal": ["normal_scene_3_scenario_2"]}
  split = ubnormal.ubnormal_split_videos(tmp_path, "test")
  counts = {name: 6 for names in split.values() for name in names}
  truth = gt.load_ground_truth("ubnormal", tmp_path, counts)
  assert truth.frame_labels[video].tolist() == [0, 1, 1, 1, 1, 0]
  assert truth.tracks[video].shape == (4, 6)
  assert truth.tracks["normal_scene_3_scenario_2"].shape == (0, 6)
  assert truth.pixel_mask(video).shape == (6, 8, 10)
  assert gt.load_ground_truth("ubnormal", tmp_path, counts, tracks=False).tracks is None
  with pytest.raises(ValueError, match="needs frame_counts"):
    gt.load_ground_truth("ubnormal", tmp_path)
  with pytest.raises(ValueError, match="split must be one of"):
    ubnormal.ubnormal_split_videos(tmp_path, "dev")
  with pytest.raises(FileNotFoundError, match="abnormal training video list"):
    ubnormal.ubnormal_split_videos(tmp_path / "nope", "training")


def test_ubnormal_errors(tmp_path):
  video, folder, _ = _ubnormal(tmp_path)
  with pytest.raises(ValueError, match="end_frame 4 but the video has 4 frames"):
    ubnormal.read_ubnormal_video(tmp_path, video, 4)
  with pytest.raises(ValueError, match="not a UBnormal video name"):
    ubnormal.ubnormal_annotation_dir(tmp_path, "scene3_video1")
  with pytest.raises(FileNotFoundError, match="abnormal_scene_4_scenario_1_annotations"):
    ubnormal.read_ubnormal_video(tmp_path, "abnormal_scene_4_scenario_1", 6)
  ubnormal.ubnormal_gt_png(folder, 2).unlink()
  with pytest.raises(FileNotFoundError, match="abnormal_scene_3_scenario_1_0002_gt.png"):
    ubnormal.read_ubnormal_video(tmp_path, video, 6)
  for text, match in [("7,3\n", "expected 3 comma-separated fields"),
                      ("0,3,4\n", "object_id 1..255"), ("7,4,3\n", "start_frame <= end_frame")]:
    _write(folder / f"{video}_tracks.txt", text)
    with pytest.raises(ValueError, match=match):
      ubnormal.read_ubnormal_video(tmp_path, video, 6, tracks=False)
  _write(tmp_path / "list.txt", "a b\n")
  with pytest.raises(ValueError, match="one video name per line"):
    ubnormal.read_video_list(tmp_path / "list.txt")
  _write(tmp_path / "list.txt", "a\na\n")
  with pytest.raises(ValueError, match="repeated"):
    ubnormal.read_video_list(tmp_path / "list.txt")


# -------------------------------------------------------------------------------- dispatcher


def test_load_ground_truth_synthetic(tmp_path):
  summary = synthetic.generate_dataset(tmp_path, num_train=0, num_test=2, num_frames=16,
                                       height=48, width=64)
  counts = {vid: info["frames"] for vid, info in summary["testing"].items()}
  truth = gt.load_ground_truth("synthetic", tmp_path, counts)
  assert truth.frame_labels.keys() == truth.tracks.keys() == counts.keys()
  for vid, info in summary["testing"].items():
    assert int(truth.frame_labels[vid].sum()) == info["abnormal_frames"]
    masks = truth.pixel_mask(vid)
    np.testing.assert_array_equal(masks, readers.load_pixel_masks(tmp_path, vid))
    np.testing.assert_array_equal(truth.tracks[vid], tracks_lib.boxes_from_track_mask(masks))


def test_load_ground_truth_ped2_and_bad_names(tmp_path):
  _write(tmp_path / "UCSDped2.m", "TestVideoFile{end+1}.gt_frame = [2:3];\n")
  truth = gt.load_ground_truth("Ped2", tmp_path, {"01": 4})
  assert truth.frame_labels["01"].tolist() == [0, 1, 1, 0] and truth.tracks is None
  assert truth.pixel_mask("01") is None
  with pytest.raises(ValueError, match="needs frame_counts"):
    gt.load_ground_truth("ped2", tmp_path)
  with pytest.raises(ValueError, match="Unknown data set 'ucf'"):
    gt.load_ground_truth("ucf", tmp_path, {})
