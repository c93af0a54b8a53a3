"""Tests for data_prep.ood_images: offline fallback, TFDS path without TensorFlow, no network."""

import json
import shutil
import socket

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_prep import ood_images
from data_prep import textures
from data_prep import tfrecord

SIZE = 8


def _color(source: int, i: int) -> tuple[int, int, int]:
  return (40 + 150 * source, 20 + 30 * i + 5 * source, 200 - 25 * i)  # Distinct lumas too.


def _example(source: int, i: int) -> bytes:
  """An image whose centre square is one colour and whose margins are white.

  Landscape for even i, portrait for odd i, so a correct centre crop (either way)
  resizes to a uniform image of `_color(source, i)`.
  """
  side = 12 + i
  image = np.full((side, 2 * side, 3) if i % 2 == 0 else (2 * side, side, 3), 255, np.uint8)
  m = side // 2
  if i % 2 == 0:
    image[:, m:m + side] = _color(source, i)
  else:
    image[m:m + side] = _color(source, i)
  return cv2.imencode(".png", image[..., ::-1])[1].tobytes()  # Stored as true RGB.


class _TinyBase(tfds.core.GeneratorBasedBuilder):
  """Tiny image data sets prepared without TensorFlow (PNG bytes, array_record)."""

  VERSION = tfds.core.Version("1.0.0")
  SOURCE = 0
  SPLITS = {}

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(num_classes=10)}))

  def _split_generators(self, dl_manager):
    return {name: self._generate_examples(ids) for name, ids in self.SPLITS.items()}

  def _generate_examples(self, ids):
    for i in ids:
      yield i, {"image": _example(self.SOURCE, i), "label": i}


class TinyOodTest(_TinyBase):
  SOURCE, SPLITS = 0, {"train": range(4), "test": range(4, 6)}  # 6 images over 2 splits.


class TinyOodTestB(_TinyBase):
  SOURCE, SPLITS = 1, {"train": range(4)}


@pytest.fixture
def no_network(monkeypatch):
  """Records (and refuses) any attempt to open a network connection."""
  attempts = []

  def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network access attempted in a test")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket.socket, "connect_ex", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  monkeypatch.setattr(socket, "getaddrinfo", refuse)
  return attempts


@pytest.fixture(scope="module")
def tfds_dirs(tmp_path_factory):
  """Both tiny data sets as array_record, and a tfrecord copy of the first."""
  root = tmp_path_factory.mktemp("tfds")
  for cls in (TinyOodTest, TinyOodTestB):
    cls(data_dir=root / "ar", file_format="array_record").download_and_prepare()
  # TFDS writes tfrecord through TensorFlow; write the same layout with data_prep.tfrecord.
  src = root / "ar" / "tiny_ood_test" / "1.0.0"
  dst = root / "tfr" / "tiny_ood_test" / "1.0.0"
  dst.mkdir(parents=True)
  feats = tfds.builder("tiny_ood_test", data_dir=root / "ar").info.features
  for split, ids in TinyOodTest.SPLITS.items():
    with tfrecord.TFRecordWriter(dst / f"tiny_ood_test-{split}.tfrecord-00000-of-00001") as w:
      for i in ids:
        w.write(feats.serialize_example(feats.encode_example(
            {"image": _example(0, i), "label": i})))
  info = json.loads((src / "dataset_info.json").read_text())
  info["fileFormat"] = "tfrecord"
  (dst / "dataset_info.json").write_text(json.dumps(info))
  shutil.copy(src / "features.json", dst)
  return root / "ar", root / "tfr"


def _colors_of(images: np.ndarray) -> list[tuple[int, ...]]:
  """Each image's single colour (asserting it is uniform, i.e. the crop was centred)."""
  flat = images.reshape(len(images), -1, images.shape[-1])
  np.testing.assert_array_equal(flat, np.repeat(flat[:, :1], flat.shape[1], axis=1))
  return [tuple(int(v) for v in im[0]) for im in flat]


def test_fallback_shapes_kinds_and_determinism():
  rgb, kinds = ood_images.fallback_images(32, 24, seed=5)
  assert rgb.shape == (24, 32, 32, 3) and rgb.dtype == np.uint8 and len(kinds) == 24
  groups = [k.split("/")[0] for k in kinds]
  assert groups.count("procedural") == 12 and groups.count("packaged") == 12
  assert {f"procedural/{n}" for n in textures.PROCEDURAL} <= set(kinds)
  assert "packaged/matplotlib:grace_hopper.jpg" in kinds  # matplotlib is a dependency.
  assert all(im.std() > 5 for im in rgb), "a (near-)constant OOD image"
  again, kinds_again = ood_images.fallback_images(32, 24, seed=5)
  np.testing.assert_array_equal(rgb, again)
  assert kinds == kinds_again
  other, _ = ood_images.fallback_images(32, 24, seed=6)
  assert np.abs(rgb.astype(int) - other).mean() > 10


@pytest.mark.parametrize("channels", [1, 3])
def test_load_without_sources_uses_fallback(channels):
  images, desc = ood_images.load_ood_images(32, channels, 10, sources=(), seed=1)
  assert images.shape == (10, 32, 32, channels) and images.dtype == np.uint8
  assert desc.startswith("offline fallback, no TFDS sources requested: 5 packaged, 5 procedural")
  assert "matplotlib:" in desc
  assert all(im.max() > im.min() for im in images)
  rgb, _ = ood_images.fallback_images(32, 10, seed=1)
  want = rgb if channels == 3 else np.stack(
      [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb])[..., None]
  np.testing.assert_array_equal(images, want)
  again, _ = ood_images.load_ood_images(32, channels, 10, sources=(), seed=1)
  np.testing.assert_array_equal(images, again)
  other, _ = ood_images.load_ood_images(32, channels, 10, sources=(), seed=2)
  assert not np.array_equal(images, other)


def test_bad_arguments():
  with pytest.raises(ValueError, match="channels must be 1 or 3"):
    ood_images.load_ood_images(32, 2, 4, sources=())
  assert ood_images.load_ood_images(16, 1, 0, sources=())[0].shape == (0, 16, 16, 1)


@pytest.mark.parametrize("which", ["array_record", "tfrecord"])
def test_tfds_source_without_tensorflow(tfds_dirs, no_network, which):
  data_dir = tfds_dirs[0] if which == "array_record" else tfds_dirs[1]
  images, desc = ood_images.load_ood_images(SIZE, 3, 4, sources=("tiny_ood_test",),
                                            data_dir=data_dir, seed=0)
  assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.uint8
  colors = _colors_of(images)
  assert len(set(colors)) == 4 and set(colors) <= {_color(0, i) for i in range(6)}
  assert desc == (f"tfds from {data_dir}: tiny_ood_test (test+train, 6 images, {which}): 4")
  again, _ = ood_images.load_ood_images(SIZE, 3, 4, sources=("tiny_ood_test",),
                                        data_dir=data_dir, seed=0)
  np.testing.assert_array_equal(images, again)
  assert not no_network


def test_tfds_spreads_over_sources(tfds_dirs, no_network):
  data_dir = tfds_dirs[0]
  sources = ("tiny_ood_test", "tiny_ood_test_b")
  images, desc = ood_images.load_ood_images(SIZE, 3, 8, sources=sources, data_dir=data_dir,
                                            seed=3)
  colors = _colors_of(images)
  from_a = [c for c in colors if c in {_color(0, i) for i in range(6)}]
  from_b = [c for c in colors if c in {_color(1, i) for i in range(4)}]
  assert len(from_a) == len(set(from_a)) == 4  # 4 of the 6 in source a, no repeats,
  assert sorted(from_b) == [_color(1, i) for i in range(4)]  # and all 4 of source b.
  assert "tiny_ood_test (test+train, 6 images, array_record): 4" in desc
  assert "tiny_ood_test_b (train, 4 images, array_record): 4" in desc
  # More images than a source holds: drawn with replacement, still spread evenly.
  gray, _ = ood_images.load_ood_images(SIZE, 1, 11, sources=sources, data_dir=data_dir)
  assert gray.shape == (11, SIZE, SIZE, 1)
  lumas = {int(cv2.cvtColor(np.uint8([[_color(s, i)]]), cv2.COLOR_RGB2GRAY)[0, 0]): s
           for s, n in ((0, 6), (1, 4)) for i in range(n)}
  assert len(lumas) == 10
  from_b = [lumas[v] for (v,) in _colors_of(gray)].count(1)
  assert from_b in (5, 6)  # 11 = 5 + 6, the odd one to a source picked by the seed.
  assert not no_network


def test_unprepared_sources_fall_back(tmp_path, monkeypatch, no_network):
  empty = tmp_path / "empty_tfds"
  empty.mkdir()
  monkeypatch.setenv("TFDS_DATA_DIR", str(empty))
  images, desc = ood_images.load_ood_images(16, 3, 6, seed=4)  # Default sources, env data dir.
  assert images.shape == (6, 16, 16, 3)
  assert desc.startswith("offline fallback, no TFDS source prepared (")
  assert f"oxford_flowers102: not prepared in {empty}" in desc
  assert f"dtd: not prepared in {empty}" in desc
  np.testing.assert_array_equal(images, ood_images.fallback_images(16, 6, seed=4)[0])
  _, desc = ood_images.load_ood_images(16, 3, 2, sources=("no_such_data_set_xyz",))
  assert "no_such_data_set_xyz: DatasetNotFoundError" in desc
  assert not list(empty.iterdir()), "looking for a data set wrote into the data dir"
  assert not no_network


def test_partly_prepared_uses_what_is_there(tfds_dirs, no_network):
  images, desc = ood_images.load_ood_images(
      SIZE, 3, 3, sources=("oxford_flowers102", "tiny_ood_test_b"), data_dir=tfds_dirs[0])
  assert set(_colors_of(images)) <= {_color(1, i) for i in range(4)}
  assert desc.endswith(f"; not used: oxford_flowers102: not prepared in {tfds_dirs[0]}")
  assert not no_network
