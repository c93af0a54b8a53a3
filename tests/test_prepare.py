"""Prep stage: actionable errors, resuming, per-shard record counts, reproducible bytes."""

import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from configs import test as test_config
from data_prep import prepare
from data_prep import records
from data_prep import tfrecord

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _static_dataset(root):
  for split in ("training", "testing"):
    folder = os.path.join(root, split, "frames", "01")
    os.makedirs(folder)
    for i in range(12):
      cv2.imwrite(os.path.join(folder, f"{i:03d}.png"), np.full((32, 48, 3), 90, np.uint8))


def test_no_detections_anywhere_names_the_split_and_detector(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = str(tmp_path / "static")
  _static_dataset(config.data.root)
  with pytest.raises(ValueError, match=r"no objects were detected in any training video.*background"):
    prepare.prepare(config, str(tmp_path / "records"))


def test_missing_data_root_is_named(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    prepare.prepare(config, str(tmp_path / "records"))


def test_empty_data_root_setting_is_explained(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = ""
  with pytest.raises(ValueError, match="config.data.root"):
    prepare.prepare(config, str(tmp_path / "records"))


def _records_bytes(out_dir, manifest):
  return {split: b"".join(open(os.path.join(out_dir, s), "rb").read() for s in e["shards"])
          for split, e in manifest["splits"].items()}


def test_interrupted_prep_skips_finished_videos_and_redoes_the_half_written_one(tmp_path,
                                                                                 monkeypatch):
  config = test_config.get_config()
  config.data.root = str(tmp_path / "data")
  out = str(tmp_path / "records")
  first = prepare.prepare(config, out)
  want = _records_bytes(out, first)
  # A run killed while writing training video 2: no manifest yet, that video's marker missing,
  # its shard half written under the temporary name.
  os.remove(os.path.join(out, "manifest.json"))
  os.remove(os.path.join(out, "training_v00001.done.json"))
  shard = os.path.join(out, first["splits"]["training"]["shards"][1])
  os.replace(shard, shard + ".tmp")
  with open(shard + ".tmp", "r+b") as f:
    f.truncate(100)
  redone = []
  original = prepare._prepare_video
  monkeypatch.setattr(prepare, "_prepare_video",
                      lambda out_dir, split, video_id, *a: redone.append((split, video_id))
                      or original(out_dir, split, video_id, *a))
  again = prepare.prepare(config, out)
  assert redone == [("training", 1)]
  assert again == first and _records_bytes(out, again) == want


def test_changed_prep_settings_redo_every_video(tmp_path, monkeypatch):
  config = test_config.get_config()
  config.data.root = str(tmp_path / "data")
  out = str(tmp_path / "records")
  prepare.prepare(config, out)
  config.prep.crop_size = 8
  calls = []
  original = prepare._prepare_video
  monkeypatch.setattr(prepare, "_prepare_video",
                      lambda *a: calls.append(a[1]) or original(*a))
  manifest = prepare.prepare(config, out)
  assert len(calls) == 5 and manifest["crop_size"] == 8


def test_manifest_counts_the_records_of_every_shard(tmp_path, monkeypatch):
  config = test_config.get_config()
  config.data.root = str(tmp_path / "data")
  config.prep.records_per_shard = 8
  out = str(tmp_path / "records")
  manifest = prepare.prepare(config, out)
  for entry in manifest["splits"].values():
    assert sorted(entry["shard_records"]) == sorted(entry["shards"])
    assert len(entry["shards"]) > len(entry["videos"])  # some video fills several shards
    for name, count in entry["shard_records"].items():
      path = os.path.join(out, name)
      assert count == sum(1 for _ in tfrecord.iter_records(path))
      assert count == len(np.load(records.index_path(path), allow_pickle=False))
    assert sum(entry["shard_records"].values()) == entry["num_records"]
  # Videos finished by an earlier run are read back from their markers with the same counts;
  # a marker without counts cannot fill the manifest, so that video is redone.
  os.remove(os.path.join(out, "manifest.json"))
  marker = os.path.join(out, "testing_v00001.done.json")
  with open(marker) as f:
    done = json.load(f)
  del done["shard_counts"]
  with open(marker, "w") as f:
    json.dump(done, f)
  redone = []
  original = prepare._prepare_video
  monkeypatch.setattr(prepare, "_prepare_video",
                      lambda out_dir, split, video_id, *a: redone.append((split, video_id))
                      or original(out_dir, split, video_id, *a))
  assert prepare.prepare(config, out) == manifest
  assert redone == [("testing", 1)]


_PREP_SCRIPT = """
import sys
from configs import test as test_config
from data_prep import prepare
config = test_config.get_config()
config.data.root = sys.argv[1]
config.prep.records_per_shard = 8
prepare.prepare(config, sys.argv[2])
"""


def test_two_identical_preps_write_identical_bytes(tmp_path):
  # Each prep in its own process, with different hash seeds: whatever order depends on the
  # process (Python's string hashing, protobuf's map hashing) must not reach the files.
  config = test_config.get_config()
  config.data.root = str(tmp_path / "data")
  prepare.ensure_dataset(config)
  outs = [tmp_path / "a", tmp_path / "b"]
  for seed, out in zip(("1", "2"), outs):
    env = dict(os.environ, PYTHONHASHSEED=seed,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", _PREP_SCRIPT, config.data.root, str(out)], env=env,
                   cwd=str(ROOT), check=True, capture_output=True)
  manifest = records.read_manifest(outs[0])
  shards = [s for e in manifest["splits"].values() for s in e["shards"]]
  assert len(shards) > 5  # several shards per video at 8 records a shard
  names = sorted(os.listdir(outs[0]))
  assert names == sorted(os.listdir(outs[1]))
  for name in shards + [records.index_path(s) for s in shards] + [records.MANIFEST_NAME]:
    assert name in names
  for name in names:
    assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
