"""Tests for data_prep.records: schema, sharded writer, manifest, grain source."""

import json
import os
import pickle

import grain
import numpy as np
import pytest
from tensorflow_datasets.proto import tf_example_pb2

from data_prep import records
from data_prep import tfrecord
from ssmtl_jax.data import cube_source

SHAPE = (5, 8, 8, 1)


def _window(seed, shape=SHAPE):
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _write_split(out_dir, split="train", n=11, per_shard=4, num_videos=3):
  with records.CubeWriter(out_dir, split, records_per_shard=per_shard) as w:
    for i in range(n):
      w.add(_window(i), video_id=i % num_videos, frame=i, box=[i, 1, i + 5, 6],
            source=i % 3, cls=i - 1, score=i / 10)
  return w.close()


def test_encode_decode_round_trip():
  window = _window(0)
  data = records.encode_cube(window, 7, 123, [1.5, 2, 30, 40.25], 1, -1, 0.75)
  ex = tf_example_pb2.Example.FromString(data)
  f = ex.features.feature
  assert set(f) == {"window", "shape", "video_id", "frame", "box", "source",
                    "cls", "score"}
  assert f["window"].bytes_list.value[0] == window.tobytes()
  assert list(f["shape"].int64_list.value) == list(SHAPE)
  assert f["video_id"].int64_list.value == [7]
  assert list(f["box"].float_list.value) == [1.5, 2, 30, 40.25]
  assert f["cls"].int64_list.value == [-1]

  out = records.decode_cube(data)
  np.testing.assert_array_equal(out["window"], window)
  assert out["window"].flags.writeable
  assert out["window"].dtype == np.uint8
  assert out["video_id"] == 7 and out["video_id"].dtype == np.int32
  assert out["frame"] == 123 and out["frame"].dtype == np.int32
  assert out["source"] == 1 and out["cls"] == -1
  assert out["score"].dtype == np.float32 and out["score"] == np.float32(0.75)
  np.testing.assert_array_equal(out["box"], np.float32([1.5, 2, 30, 40.25]))


def _varint(data, pos):
  value, shift = 0, 0
  while True:
    byte = data[pos]
    value |= (byte & 0x7F) << shift
    pos, shift = pos + 1, shift + 7
    if not byte & 0x80:
      return value, pos


def _length_delimited(data):
  """(field number, payload) of each length-delimited field of one protobuf message."""
  pos, out = 0, []
  while pos < len(data):
    tag, pos = _varint(data, pos)
    assert tag & 7 == 2, "Example, Features and map entries hold only length-delimited fields"
    size, pos = _varint(data, pos)
    out.append((tag >> 3, data[pos:pos + size]))
    pos += size
  return out


def test_encode_writes_feature_map_sorted_by_key():
  # The feature map's order on the wire must not depend on the process's protobuf hash seed,
  # or identical cubes give different shard bytes: the entries come sorted by key.
  teachers = {"b_task": np.ones((2, 3)), "a_task": np.zeros(4)}
  data = records.encode_cube(_window(0), 7, 123, [1.5, 2, 30, 40.25], 1, -1, 0.75, teachers)
  [(field, features)] = _length_delimited(data)
  assert field == 1
  keys = [dict(_length_delimited(entry))[1].decode() for _, entry in _length_delimited(features)]
  assert len(keys) == 12 and keys == sorted(keys)


def test_encode_rejects_bad_input():
  with pytest.raises(ValueError, match="uint8"):
    records.encode_cube(np.zeros(SHAPE, np.float32), 0, 0, [0, 0, 1, 1], 0, 0, 0)
  with pytest.raises(ValueError, match="4 values"):
    records.encode_cube(_window(0), 0, 0, [0, 0, 1], 0, 0, 0)


def test_cube_writer_shards_and_indexes(tmp_path):
  result = _write_split(tmp_path, n=11, per_shard=4)
  assert result["shards"] == ["train-00000.tfrecord", "train-00001.tfrecord",
                              "train-00002.tfrecord"]
  assert result["shard_counts"] == [4, 4, 3]
  assert result["num_records"] == 11
  assert result["window_shape"] == list(SHAPE)
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
  index = np.load(tmp_path / "train-00001.tfrecord.index.npy", allow_pickle=False)
  assert index.dtype == records.INDEX_DTYPE
  np.testing.assert_array_equal(index["frame"], [4, 5, 6, 7])
  # The shards are ordinary TFRecord files and the offsets point at records.
  shard = tmp_path / "train-00001.tfrecord"
  assert len(list(tfrecord.iter_records(shard))) == 4
  data = tfrecord.read_record_at(shard, int(index["offset"][2]))
  assert records.decode_cube(data)["frame"] == 6


def test_cube_writer_rewrite_removes_stale_shards(tmp_path):
  _write_split(tmp_path, n=11, per_shard=4)
  result = _write_split(tmp_path, n=3, per_shard=4)
  assert result["shards"] == ["train-00000.tfrecord"]
  assert sorted(os.listdir(tmp_path)) == ["train-00000.tfrecord",
                                          "train-00000.tfrecord.index.npy"]


def test_cube_writer_rejects_mixed_shapes(tmp_path):
  with pytest.raises(ValueError, match="one shape"):
    with records.CubeWriter(tmp_path, "train") as w:
      w.add(_window(0), 0, 0, [0, 0, 1, 1], 0, 0, 0)
      w.add(_window(1, (5, 8, 8, 3)), 0, 1, [0, 0, 1, 1], 0, 0, 0)
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_cube_source_getitem_filter_metadata_read_all(tmp_path):
  _write_split(tmp_path, n=11, per_shard=4, num_videos=3)
  src = cube_source.CubeSource(tmp_path, "train")
  assert len(src) == 11
  for i in (0, 5, 10, -1):
    cube = records.decode_cube(src[i])
    assert cube["frame"] == (i % 11)
    np.testing.assert_array_equal(cube["window"], _window(i % 11))
  with pytest.raises(IndexError):
    src[11]

  only = cube_source.CubeSource(tmp_path, "train", videos=[0, 2])
  meta = only.metadata()
  np.testing.assert_array_equal(meta["frame"], [0, 2, 3, 5, 6, 8, 9])
  np.testing.assert_array_equal(meta["video_id"], [0, 2, 0, 2, 0, 2, 0])
  np.testing.assert_array_equal(meta["record"], meta["frame"])
  assert len(only) == 7
  assert records.decode_cube(only[1])["frame"] == 2

  everything = only.read_all()
  assert everything["window"].shape == (7,) + SHAPE
  np.testing.assert_array_equal(everything["frame"], meta["frame"])
  some = only.read_all([6, 0])
  np.testing.assert_array_equal(some["video_id"], [0, 0])
  np.testing.assert_array_equal(some["window"][0], _window(9))


def test_cube_source_reports_corruption(tmp_path):
  _write_split(tmp_path, n=4, per_shard=4)
  shard = tmp_path / "train-00000.tfrecord"
  index = np.load(str(shard) + ".index.npy")
  raw = bytearray(shard.read_bytes())
  raw[int(index["offset"][2]) + 40] ^= 0xFF
  shard.write_bytes(bytes(raw))
  src = cube_source.CubeSource(tmp_path, "train")
  src[1]
  with pytest.raises(tfrecord.TFRecordError,
                     match=r"train-00000.tfrecord: CRC mismatch .* record 2 of split 'train'"):
    src[2]


def test_cube_source_missing_data_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="no shards"):
    cube_source.CubeSource(tmp_path, "train")
  _write_split(tmp_path, n=2)
  os.remove(tmp_path / "train-00000.tfrecord.index.npy")
  with pytest.raises(FileNotFoundError, match="index"):
    cube_source.CubeSource(tmp_path, "train")


def test_pickled_source_in_grain_pipeline(tmp_path):
  _write_split(tmp_path, n=11, per_shard=4)
  src = cube_source.CubeSource(tmp_path, "train")
  src[0]  # Opens files in this process; pickling must not carry them.
  clone = pickle.loads(pickle.dumps(src))
  assert len(clone) == 11 and clone[3] == src[3]

  ds = (grain.MapDataset.source(clone).shuffle(seed=0)
        .map(records.decode_cube).batch(4))
  batches = list(ds)
  assert [b["window"].shape for b in batches] == [(4,) + SHAPE] * 2 + [(3,) + SHAPE]
  frames = np.concatenate([b["frame"] for b in batches])
  assert sorted(frames.tolist()) == list(range(11))
  assert frames.tolist() != list(range(11))  # Shuffled.
  # The same seed gives the same order.
  again = grain.MapDataset.source(src).shuffle(seed=0).map(records.decode_cube)
  assert [int(c["frame"]) for c in again] == frames.tolist()


def test_manifest_round_trip_and_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="manifest.json"):
    records.read_manifest(tmp_path)
  result = _write_split(tmp_path, n=11, per_shard=4)
  entry = records.split_entry(result, ["a", "b", "c"], [10, 20, 30])
  manifest = {"window_length": 5, "crop_size": 8, "channels": 1,
              "splits": {"train": entry}, "prep_config": {"detector": "fake"}}
  path = records.write_manifest(tmp_path, manifest)
  assert not os.path.exists(path + ".tmp")
  back = records.read_manifest(tmp_path)
  assert back["schema_version"] == records.SCHEMA_VERSION
  assert back["splits"]["train"] == {
      "videos": ["a", "b", "c"], "frame_counts": [10, 20, 30],
      "num_records": 11, "shards": result["shards"],
      "shard_records": {"train-00000.tfrecord": 4, "train-00001.tfrecord": 4,
                        "train-00002.tfrecord": 3}}
  assert back["prep_config"] == {"detector": "fake"}
  # With a manifest, the source takes the shard list from it.
  assert len(cube_source.CubeSource(tmp_path, "train")) == 11
  with pytest.raises(KeyError, match="test"):
    cube_source.CubeSource(tmp_path, "test")

  wrong = dict(manifest, splits={"train": dict(entry, num_records=12)})
  records.write_manifest(tmp_path, wrong)
  with pytest.raises(ValueError, match="lists 12 train records"):
    cube_source.CubeSource(tmp_path, "train")
  wrong = dict(manifest, splits={"train": dict(
      entry, shard_records=dict(entry["shard_records"], **{"train-00001.tfrecord": 3,
                                                           "train-00002.tfrecord": 4}))})
  records.write_manifest(tmp_path, wrong)
  with pytest.raises(ValueError, match="train-00001.tfrecord: the manifest lists 3 records"):
    cube_source.CubeSource(tmp_path, "train")
  # A manifest without per-shard counts (older preps) still reads.
  old = dict(manifest, splits={"train": {k: v for k, v in entry.items() if k != "shard_records"}})
  records.write_manifest(tmp_path, old)
  assert len(cube_source.CubeSource(tmp_path, "train")) == 11

  with pytest.raises(ValueError, match="missing keys"):
    records.write_manifest(tmp_path, {"splits": {}})
  with pytest.raises(ValueError, match="videos but"):
    records.split_entry(result, ["a"], [1, 2])
  bad = dict(back, schema_version=records.SCHEMA_VERSION + 1)
  with open(path, "w") as f:
    json.dump(bad, f)
  with pytest.raises(ValueError, match=r"manifest.json: schema_version"):
    records.read_manifest(tmp_path)
