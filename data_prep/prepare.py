"""Prep stage: videos -> detections -> object cube records + manifest (DESIGN §1-2).

Run once per data set and configuration; training and evaluation only read the records.
"""

import json
import os
from typing import Any

import tqdm

from data_prep import cubes
from data_prep import detect
from data_prep import ground_truth as ground_truth_lib
from data_prep import readers
from data_prep import synthetic
from ssmtl_jax import records

SPLITS = (("training", "train_frame_stride"), ("testing", "test_frame_stride"))


def prep_signature(config) -> dict[str, Any]:
  """What the records depend on; a manifest with another signature is stale."""
  return {"data": config.data.to_dict(), "prep": config.prep.to_dict()}


def ensure_dataset(config) -> str:
  """Returns the data root, generating the embedded synthetic demo there first if asked."""
  root = config.data.root
  if not root:
    raise ValueError("config.data.root is empty: set --config.data.root=/path/to/dataset")
  if config.data.synthetic and not os.path.exists(os.path.join(root, "synthetic.json")):
    print(f"generating the synthetic demo data set in {root}", flush=True)
    synthetic.generate_dataset(root, **config.data.synthetic_options.to_dict())
  if not os.path.isdir(root):
    raise FileNotFoundError(f"data root {root} does not exist (config.data.root)")
  return root


def is_prepared(config, out_dir: str) -> bool:
  try:
    manifest = records.read_manifest(out_dir)
  except (FileNotFoundError, ValueError):
    return False
  return manifest.get("prep_config") == json.loads(json.dumps(prep_signature(config)))


def prepare(config, out_dir: str, force: bool = False) -> dict[str, Any]:
  """Writes the cube records of both splits and the manifest into `out_dir`.

  Skips the work when `out_dir` already holds records made with the same configuration.

  Returns:
    The manifest.
  """
  if not force and is_prepared(config, out_dir):
    print(f"records in {out_dir} are up to date; skipping prep", flush=True)
    return records.read_manifest(out_dir)
  root = ensure_dataset(config)
  p = config.prep
  detector = detect.build_detector(p.detector, **p.detector_options.to_dict())
  splits = {}
  for split, stride_field in SPLITS:
    stride = int(p[stride_field])
    if stride < 1:
      raise ValueError(f"prep.{stride_field} must be >= 1, got {stride}")
    videos = readers.list_split_videos(root, split)
    frame_counts, frame_shapes = [], []
    with records.CubeWriter(out_dir, split, p.records_per_shard) as writer:
      bar = tqdm.tqdm(list(videos.items()), desc=f"prep {split}", unit="video")
      for video_id, (name, path) in enumerate(bar):
        frames = readers.read_video(path)
        dets = detector.detect_video(frames)
        indices = list(range(0, len(frames), stride))
        n = cubes.write_video_cubes(writer, video_id, frames, [dets[i] for i in indices],
                                    indices, p.half_window, p.crop_size, config.data.grayscale)
        frame_counts.append(len(frames))
        frame_shapes.append(list(frames.shape[1:3]))
        bar.set_postfix(video=name, cubes=n)
      result = writer.close()
    if result["num_records"] == 0:
      raise ValueError(f"no objects were detected in any {split} video under {root}; "
                       f"check prep.detector={p.detector!r} and its options (min_area, threshold)")
    entry = records.split_entry(result, list(videos), frame_counts)
    entry["frame_shapes"] = frame_shapes
    entry["frame_stride"] = stride
    splits[split] = entry
    print(f"{split}: {result['num_records']} cubes from {len(videos)} videos "
          f"({result['num_records'] / max(1, sum(frame_counts) / stride):.1f} per sampled frame)",
          flush=True)
  manifest = {"window_length": 2 * p.half_window + 1, "crop_size": p.crop_size,
              "channels": 1 if config.data.grayscale else 3, "splits": splits,
              "data_root": os.path.abspath(root), "prep_config": prep_signature(config)}
  records.write_manifest(out_dir, manifest)
  return records.read_manifest(out_dir)


def ground_truth(config, manifest) -> ground_truth_lib.GroundTruth:
  """Frame labels (and tracks where the data set has them) of the test videos, checked against
  the prepared frame counts. A data set name outside `ground_truth.DATASETS` is read in the
  generic frame-folder layout (`ped2.mat` or `testing/frame_mask/<vid>.npy`), without tracks."""
  test = manifest["splits"]["testing"]
  counts = dict(zip(test["videos"], test["frame_counts"]))
  name = "synthetic" if config.data.synthetic else config.data.name.lower()
  if name in ground_truth_lib.DATASETS:
    return ground_truth_lib.load_ground_truth(name, config.data.root, counts)
  return ground_truth_lib.GroundTruth(name, readers.load_frame_labels(config.data.root, counts),
                                      None)
