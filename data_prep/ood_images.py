"""Out-of-distribution (OOD) images for the T5 pseudo-anomaly task of SSMTL++v1.

T5 trains a decoder head to reproduce OOD images while the shared backbone gets the
T5 gradient negatively scaled, so it learns to model them poorly (DESIGN §4). This
module supplies those images as uint8 `[N, size, size, C]`, from the first of:

1. TFDS data sets (default `oxford_flowers102` and `dtd`), **only when already
   prepared** in the TFDS data dir; nothing is ever downloaded (`try_gcs=False`,
   `download_and_prepare` is never called). All splits of a data set are pooled.
   No TensorFlow is needed: data prepared in the `array_record` (or `parquet`)
   file format is read with `builder.as_data_source` (random access, needs the
   `array_record` package); data prepared in the default `tfrecord` format (what
   `tfds build` writes on a machine with TensorFlow) is read with
   `data_prep.tfrecord` and decoded with `features.deserialize_example_np`.
   Picks are seeded and spread evenly over the prepared sources; each image is
   centre-cropped to a square and resized with `cv2.INTER_AREA`.
2. An offline fallback, used when no source is prepared: half procedural textures
   (textures.py: fractal noise, marble, stripes/plaids, rotated checkerboards,
   Voronoi cells, coloured blobs, Gabor patches, rings), half random crops (several scales, random
   flips/rotations) of real images that ship inside installed packages: matplotlib's
   `sample_data` (grace_hopper.jpg, Minduka_Present_Blue_Pack.png, logo2.png, the
   s1045.ima.gz MRI slice, the jacksboro_fault_dem.npz and topobathy.npz elevation
   maps, the last three false-coloured with OpenCV colour maps) and, when
   scikit-learn is installed, its china.jpg and flower.jpg. All of it is
   deterministic for a seed, and none of it looks like a surveillance scene.

To get the preferred source, prepare once where there is internet (`tfds build
oxford_flowers102 dtd --file_format=array_record --data_dir=DIR`, or any tfrecord
copy) and pass `data_dir=DIR` or set `TFDS_DATA_DIR`.

Usage (contact sheet for a look): python -m data_prep.ood_images --out /tmp/ood.png
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib.util
import os
import pathlib
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from absl import logging

from data_prep import textures

DEFAULT_SOURCES = ("oxford_flowers102", "dtd")

# --------------------------------------------------------------------------- TFDS


class _TFRecordShard:
  """Random access to one TFDS tfrecord shard (offsets found by skipping payloads)."""

  def __init__(self, path: str, features):
    self.path, self.features = path, features
    self.offsets = []
    with open(path, "rb") as f:
      size, offset = os.fstat(f.fileno()).st_size, 0
      while offset < size:
        self.offsets.append(offset)
        f.seek(offset)
        offset += 16 + int.from_bytes(f.read(8), "little")  # 12-byte header + 4-byte CRC.

  def __len__(self) -> int:
    return len(self.offsets)

  def __getitem__(self, i: int):
    from data_prep import tfrecord  # pylint: disable=import-outside-toplevel
    record = tfrecord.read_record_at(self.path, self.offsets[i])
    return self.features.deserialize_example_np(record)


def _open_tfds(name: str, data_dir: str) -> tuple[list[Sequence] | None, str, str]:
  """Returns (parts, image key, note); parts is None with the reason in note."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except Exception as e:  # pylint: disable=broad-except
    return None, "", f"{name}: tensorflow_datasets not importable ({e!r})"
  try:
    builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    if not builder.is_prepared():
      return None, "", f"{name}: not prepared in {data_dir}"
    feats = builder.info.features
    keys = [k for k, f in feats.items() if isinstance(f, tfds.features.Image)]
    if not keys:
      return None, "", f"{name}: has no image feature"
    key = "image" if "image" in keys else keys[0]
    splits = sorted(builder.info.splits)
    fmt = builder.info.file_format
    if fmt in tfds.core.FileFormat.with_random_access():
      parts = [builder.as_data_source(split=s) for s in splits]
    elif fmt == tfds.core.FileFormat.TFRECORD:
      parts = [_TFRecordShard(os.fspath(p), feats)
               for s in splits for p in builder.info.splits[s].filepaths]
    else:
      return None, "", f"{name}: unsupported file format {fmt}"
  except Exception as e:  # pylint: disable=broad-except
    return None, "", f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
  total = sum(len(p) for p in parts)
  if not total:
    return None, "", f"{name}: prepared but empty"
  return parts, key, f"{name} ({'+'.join(splits)}, {total} images, {fmt.value})"


def _to_rgb(image: np.ndarray) -> np.ndarray:
  """Any HW / HWC (1, 3 or 4 channels) image of any dtype -> uint8 HW3."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = image.astype(np.float32)
    lo, hi = float(image.min()), float(image.max())
    image = ((image - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  return np.ascontiguousarray(image[..., :3])


def _resize(image: np.ndarray, size: int) -> np.ndarray:
  shrink = image.shape[0] >= size
  return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink
                    else cv2.INTER_LINEAR)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
  """Centre-crops an `[H, W, C]` image to a square and resizes it to `[size, size, C]`."""
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  return _resize(np.ascontiguousarray(image[top:top + side, left:left + side]), size)


def tfds_images(size: int, num: int, sources: Sequence[str], data_dir: str,
                seed: int = 0) -> tuple[np.ndarray | None, str]:
  """RGB images from the prepared TFDS sources, or None when none is prepared.

  Args:
    size: Output side in pixels.
    num: Number of images, spread evenly over the prepared sources.
    sources: TFDS data set names (`name` or `name/config`).
    data_dir: TFDS data dir to look in (nothing is downloaded).
    seed: Seeds which images are picked and their order.

  Returns:
    (uint8 `[num, size, size, 3]` or None, description naming what was used and what
    was not available and why).
  """
  opened, notes, skipped = [], [], []
  for name in sources:
    parts, key, note = _open_tfds(name, data_dir)
    if parts:
      opened.append((parts, key))
      notes.append(note)
    else:
      skipped.append(note)
  if not opened:
    return None, "; ".join(skipped)
  rng = np.random.default_rng(seed)
  counts = np.full(len(opened), num // len(opened))
  counts[rng.permutation(len(opened))[:num % len(opened)]] += 1
  images = []
  for (parts, key), count in zip(opened, counts):
    bounds = np.cumsum([0] + [len(p) for p in parts])
    picks = rng.choice(bounds[-1], size=count, replace=count > bounds[-1])
    for i in np.sort(picks):  # Sorted: sequential reads within a shard.
      j = int(np.searchsorted(bounds, i, side="right")) - 1
      images.append(center_square(_to_rgb(parts[j][int(i - bounds[j])][key]), size))
  out = np.zeros((num, size, size, 3), np.uint8)
  if num:
    out[rng.permutation(num)] = np.stack(images)
  desc = f"tfds from {data_dir}: " + ", ".join(f"{n}: {c}" for n, c in zip(notes, counts))
  return out, desc + (f"; not used: {'; '.join(skipped)}" if skipped else "")


# ----------------------------------------------------------------- packaged images

_COLORMAPS = (cv2.COLORMAP_VIRIDIS, cv2.COLORMAP_JET, cv2.COLORMAP_BONE, cv2.COLORMAP_HOT,
              cv2.COLORMAP_OCEAN, cv2.COLORMAP_TWILIGHT)


def _read_rgb(path: pathlib.Path) -> np.ndarray:
  """Reads a JPEG/PNG as RGB; transparency is composited over white."""
  image = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
  if image is None:
    raise ValueError(f"{path}: not readable as an image")
  if image.ndim == 3 and image.shape[2] == 4:
    alpha = image[..., 3:].astype(np.float32) / 255
    image = (image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
  return cv2.cvtColor(_to_rgb(image), cv2.COLOR_BGR2RGB)


def _npz(path: pathlib.Path, key: str) -> np.ndarray:
  with np.load(path, allow_pickle=False) as arrays:
    return arrays[key]


def _packaged_files() -> list[tuple[str, Callable[[], np.ndarray]]]:
  """(label, loader) for images shipped in installed packages; loaders give RGB or 2D."""
  files = []
  mpl = importlib.util.find_spec("matplotlib")
  if mpl and mpl.submodule_search_locations:
    data = pathlib.Path(mpl.submodule_search_locations[0]) / "mpl-data" / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
      files.append((f"matplotlib:{name}", functools.partial(_read_rgb, data / name)))
    files += [
        ("matplotlib:s1045.ima.gz", lambda: np.frombuffer(gzip.decompress(
            (data / "s1045.ima.gz").read_bytes()), ">u2").reshape(256, 256)),  # MRI slice.
        ("matplotlib:jacksboro_fault_dem.npz",
         functools.partial(_npz, data / "jacksboro_fault_dem.npz", "elevation")),
        ("matplotlib:topobathy.npz", functools.partial(_npz, data / "topobathy.npz", "topo")),
    ]
  sk = importlib.util.find_spec("sklearn")
  if sk and sk.submodule_search_locations:
    images = pathlib.Path(sk.submodule_search_locations[0]) / "datasets" / "images"
    for name in ("china.jpg", "flower.jpg"):
      files.append((f"sklearn:{name}", functools.partial(_read_rgb, images / name)))
  return files


@functools.lru_cache(maxsize=1)
def packaged_images() -> tuple[tuple[str, np.ndarray], ...]:
  """The images found in installed packages as (label, uint8 RGB or 2D float32 array)."""
  found = []
  for label, load in _packaged_files():
    try:
      image = load()
    except (OSError, ValueError, KeyError) as e:
      logging.info("OOD images: skipping %s (%s)", label, e)
      continue
    found.append((label, image if image.ndim == 3 else textures.normalize(image.astype(np.float32))))
  return tuple(found)


def _random_crop(rng: np.random.Generator, image: np.ndarray, size: int) -> np.ndarray:
  """A random square crop (10-100 % of the short side), flipped/rotated, as uint8 RGB."""
  h, w = image.shape[:2]
  for _ in range(8):  # Retry crops of flat regions (white margins, black MRI background).
    side = max(min(h, w, 16), int(min(h, w) * np.exp(rng.uniform(np.log(0.1), 0))))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = np.rot90(image[top:top + side, left:left + side], int(rng.integers(4)))
    crop = np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)
    if crop.ndim == 2:  # Scientific data: false colour with a random colour map.
      gray = (textures.normalize(crop) * 255).astype(np.uint8)
      crop = cv2.cvtColor(cv2.applyColorMap(gray, _COLORMAPS[rng.integers(len(_COLORMAPS))]),
                          cv2.COLOR_BGR2RGB)
    crop = _resize(crop, size)
    if cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).std() > 10:
      break
  return crop


def fallback_images(size: int, num: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
  """Offline OOD images: half procedural textures, half crops of packaged images.

  Args:
    size: Output side in pixels.
    num: Number of images.
    seed: Everything is a function of the seed.

  Returns:
    (uint8 RGB `[num, size, size, 3]`, per-image kind: `procedural/<name>` or
    `packaged/<package>:<file>`).
  """
  rng = np.random.default_rng(seed)
  packaged = packaged_images()
  num_packaged = num // 2 if packaged else 0
  kinds = [f"procedural/{name}" for name in np.resize(list(textures.PROCEDURAL), num - num_packaged)]
  kinds += [f"packaged/{packaged[i % len(packaged)][0]}" for i in range(num_packaged)]
  kinds = [kinds[i] for i in rng.permutation(num)]
  by_label = dict(packaged)
  images = np.zeros((num, size, size, 3), np.uint8)
  for i, kind in enumerate(kinds):
    group, name = kind.split("/", 1)
    if group == "procedural":
      images[i] = np.clip(textures.PROCEDURAL[name](rng, size) * 255 + 0.5, 0, 255).astype(np.uint8)
    else:
      images[i] = _random_crop(rng, by_label[name], size)
  return images, kinds


# ------------------------------------------------------------------------- public


def load_ood_images(size: int, channels: int, num: int,
                    sources: Sequence[str] = DEFAULT_SOURCES, data_dir: str | None = None,
                    seed: int = 0) -> tuple[np.ndarray, str]:
  """OOD images for T5: prepared TFDS sources if any, else the offline fallback.

  Args:
    size: Output side in pixels (images are square).
    channels: 1 (grayscale, cv2 RGB->GRAY) or 3 (RGB).
    num: Number of images.
    sources: TFDS data set names to try; only those already prepared are used.
    data_dir: TFDS data dir; default `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`
      (read at call time).
    seed: Makes the selection (and the fallback) deterministic.

  Returns:
    (uint8 `[num, size, size, channels]`, short description of where they came from).
  """
  if channels not in (1, 3):
    raise ValueError(f"load_ood_images: channels must be 1 or 3, got {channels}.")
  if size < 1 or num < 0:
    raise ValueError(f"load_ood_images: need size >= 1 and num >= 0, got {size}, {num}.")
  data_dir = os.fspath(data_dir or os.environ.get("TFDS_DATA_DIR")
                       or os.path.expanduser("~/tensorflow_datasets"))
  images, desc = tfds_images(size, num, sources, data_dir, seed) if sources else (None, "")
  if images is None:
    images, kinds = fallback_images(size, num, seed)
    groups = sorted({k.split("/")[0] for k in kinds})
    counts = ", ".join(f"{sum(k.startswith(g) for k in kinds)} {g}" for g in groups)
    files = sorted({k.split("/", 1)[1] for k in kinds if k.startswith("packaged/")})
    reason = f"no TFDS source prepared ({desc})" if desc else "no TFDS sources requested"
    desc = f"offline fallback, {reason}: {counts or '0 images'}"
    desc += f" (packaged: {', '.join(files)})" if files else ""
    logging.warning("OOD images: %s", desc)
  if channels == 1 and num:  # The batch as one tall image: a single cv2 call.
    images = cv2.cvtColor(images.reshape(-1, size, 3), cv2.COLOR_RGB2GRAY)
    images = images.reshape(num, size, size, 1)
  elif channels == 1:
    images = images[..., :1]
  return images, desc


def main(argv: list[str] | None = None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="contact sheet PNG to write")
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--num", type=int, default=48)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  images, desc = load_ood_images(args.size, args.channels, args.num, data_dir=args.data_dir,
                                 seed=args.seed)
  cols = int(np.ceil(np.sqrt(len(images))))
  sheet = np.zeros((cols * cols, *images.shape[1:]), np.uint8)
  sheet[:len(images)] = images
  sheet = sheet.reshape(cols, cols, *images.shape[1:]).swapaxes(1, 2)
  sheet = sheet.reshape(cols * args.size, cols * args.size, args.channels)
  cv2.imwrite(args.out, sheet[..., ::-1] if args.channels == 3 else sheet)
  print(desc)


if __name__ == "__main__":
  main()
