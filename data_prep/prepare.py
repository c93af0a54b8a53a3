"""Prep stage: videos -> detections -> object cube records + manifest (DESIGN §1-2).

Run once per data set and configuration; training and evaluation only read the records.
"""

import json
import os
import zlib
from typing import Any

import tqdm

from data_prep import atomic_write
from data_prep import cubes
from data_prep import detect
from data_prep import ground_truth as ground_truth_lib
from data_prep import readers
from data_prep import records
from data_prep import synthetic
from data_prep import teachers as teachers_lib
from data_prep import tfrecord

SPLITS = (("training", "train_frame_stride"), ("testing", "test_frame_stride"))


# Prep settings that cannot change a record: with "error" a damaged frame stops prep, so any
# records that exist are the same under both policies.
_NOT_IN_SIGNATURE = ("damaged_frames",)


def prep_signature(config) -> dict[str, Any]:
  """What the records depend on; a manifest with another signature is stale."""
  prep = {k: v for k, v in config.prep.to_dict().items() if k not in _NOT_IN_SIGNATURE}
  return {"data": config.data.to_dict(), "prep": prep}


def file_check(path: str) -> dict[str, int]:
  """Size and CRC-32 of a file: what the up-to-date check compares (about 1 s per GB)."""
  crc = 0
  with open(path, "rb") as f:
    while block := f.read(1 << 22):
      crc = zlib.crc32(block, crc)
  return {"bytes": os.path.getsize(path), "crc32": crc}


def damaged_shards(out_dir: str, checks: dict[str, dict[str, int]], verify: bool = False
                   ) -> dict[str, str]:
  """Shard name -> what is wrong, for every shard whose file or index is missing, whose size or
  CRC-32 differs from `checks` (recorded when it was written), or, with `verify`, one of whose
  records fails its TFRecord CRC."""
  damaged = {}
  for name, expected in checks.items():
    path = os.path.join(out_dir, name)
    if not (os.path.isfile(path) and os.path.isfile(records.index_path(path))):
      damaged[name] = "missing"
    elif os.path.getsize(path) != expected["bytes"]:
      damaged[name] = f"{os.path.getsize(path)} bytes, {expected['bytes']} when written"
    elif file_check(path)["crc32"] != expected["crc32"]:
      damaged[name] = "its checksum differs from the one recorded when it was written"
    elif verify:
      try:
        for _ in tfrecord.iter_records(path):
          pass
      except tfrecord.TFRecordError as e:
        damaged[name] = str(e)
  return damaged


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


def is_prepared(config, out_dir: str, verify: bool = False, check_shards: bool = True) -> bool:
  """Whether `out_dir` holds complete, undamaged records made with this configuration: the
  manifest's signature matches and (with `check_shards`) every shard has the size and checksum
  recorded when it was written (with `verify`, every record's CRC is read too). Damaged shards
  are named."""
  try:
    manifest = records.read_manifest(out_dir)
  except (FileNotFoundError, ValueError):
    return False
  if manifest.get("prep_config") != json.loads(json.dumps(prep_signature(config))):
    return False
  checks = manifest.get("shard_checks")
  if checks is None:
    return False  # written before shards were checksummed: rebuild once
  if not check_shards:
    return True
  damaged = damaged_shards(out_dir, checks, verify)
  for name, why in damaged.items():
    print(f"records in {out_dir}: shard {name} is damaged ({why}); its video is prepared again",
          flush=True)
  return not damaged


def _done_path(out_dir: str, split: str, video_id: int) -> str:
  return os.path.join(out_dir, f"{split}_v{video_id:05d}.done.json")




def _finished_video(out_dir: str, split: str, video_id: int, name: str, signature,
                    verify: bool = False) -> dict[str, Any] | None:
  """The result of a video finished by an earlier run with the same settings, else None.

  A video counts as finished only once its marker is written, which happens after all of its
  shards are renamed into place; a run killed half-way through a video redoes that video, and so
  does a video whose shards no longer match the sizes and checksums its marker recorded.
  """
  path = _done_path(out_dir, split, video_id)
  try:
    with open(path) as f:
      result = json.load(f)
  except (FileNotFoundError, json.JSONDecodeError):
    return None
  if result.get("prep") != signature or result.get("name") != name:
    return None
  if len(result.get("shard_counts", ())) != len(result["shards"]):
    return None  # no per-shard record counts to fill the manifest with: redo the video
  checks = result.get("shard_checks")
  if checks is None or damaged_shards(out_dir, checks, verify):
    return None
  return result


def _prepare_video(out_dir: str, split: str, video_id: int, name: str, path, detector,
                   stride: int, config, teachers) -> dict[str, Any]:
  """Detects objects in one video and writes its cubes into its own shards."""
  p = config.prep
  damaged = []

  def on_damaged(frame_path, message):
    damaged.append(str(frame_path))
    print(f"warning: {message.split(';')[0]}; using the previous frame in its place", flush=True)

  frames = readers.read_video(path, on_damaged=(on_damaged if p.damaged_frames == "repeat_previous"
                                                else None))
  dets = detector.detect_video(frames)
  indices = list(range(0, len(frames), stride))
  with records.CubeWriter(out_dir, f"{split}_v{video_id:05d}", p.records_per_shard) as writer:
    cubes.write_video_cubes(writer, video_id, frames, [dets[i] for i in indices], indices,
                            p.half_window, p.crop_size, config.data.grayscale, teachers)
    result = writer.close()
  return {"name": name, "frame_count": len(frames), "frame_shape": list(frames.shape[1:3]),
          "num_records": result["num_records"], "shards": result["shards"],
          "shard_counts": result["shard_counts"],
          "shard_checks": {s: file_check(os.path.join(out_dir, s)) for s in result["shards"]},
          "damaged_frames": damaged}


def prepare(config, out_dir: str, force: bool = False, verify: bool = False,
            teacher_tasks: tuple[str, ...] = (), depthwise: str = "grouped") -> dict[str, Any]:
  """Writes the cube records of both splits and the manifest into `out_dir`.

  `teacher_tasks` are the configured tasks that learn from a teacher (a missing
  `prep.teachers` entry for one is an error); `depthwise` lowers the built-in teacher's
  depthwise convolutions (efficientnet_lite.DEPTHWISE_LOWERINGS). The caller decides both.

  Skips the work when `out_dir` already holds undamaged records made with the same
  configuration, and within a run skips each video an interrupted earlier run finished (`force`
  redoes all). A shard whose size or checksum changed since it was written (with `verify`: any
  record failing its CRC) has its video prepared again.

  Returns:
    The manifest.
  """
  if not force and is_prepared(config, out_dir, verify):
    print(f"records in {out_dir} are up to date{' (every record CRC verified)' if verify else ''}"
          "; skipping prep", flush=True)
    return records.read_manifest(out_dir)
  p = config.prep
  if p.damaged_frames not in readers.DAMAGED_FRAME_POLICIES:
    raise ValueError(f"prep.damaged_frames={p.damaged_frames!r}: one of "
                     f"{readers.DAMAGED_FRAME_POLICIES}")
  # Teachers and detector first: a wrong spec fails before any data is generated or read.
  teachers = teachers_lib.build_teachers(p.teachers.to_dict(), teacher_tasks,
                                         p.teacher_input_size, depthwise)
  detector = detect.build_detector(p.detector, **p.detector_options.to_dict())
  root = ensure_dataset(config)
  channels = 1 if config.data.grayscale else 3
  teacher_entries = {name: {"spec": p.teachers[name.split(".")[0]], "shape": list(shape)}
                     for name, shape in teachers_lib.target_shapes(teachers, p.crop_size,
                                                                   channels).items()}
  signature = json.loads(json.dumps(prep_signature(config)))
  splits, shard_checks = {}, {}
  for split, stride_field in SPLITS:
    stride = int(p[stride_field])
    if stride < 1:
      raise ValueError(f"prep.{stride_field} must be >= 1, got {stride}")
    videos = readers.list_split_videos(root, split)
    done = []
    bar = tqdm.tqdm(list(videos.items()), desc=f"prep {split}", unit="video")
    for video_id, (name, path) in enumerate(bar):
      result = None if force else _finished_video(out_dir, split, video_id, name, signature,
                                                  verify)
      if result is None:
        result = _prepare_video(out_dir, split, video_id, name, path, detector, stride, config,
                                teachers)
        atomic_write.write_json(_done_path(out_dir, split, video_id), {**result, "prep": signature})
      done.append(result)
      bar.set_postfix(video=name, cubes=result["num_records"],
                      **({"skipped": "done before"} if result.get("prep") else {}))
    num_records = sum(r["num_records"] for r in done)
    if num_records == 0:
      raise ValueError(f"no objects were detected in any {split} video under {root}; "
                       f"check prep.detector={p.detector!r} and its options (min_area, threshold)")
    frame_counts = [r["frame_count"] for r in done]
    shards = [s for r in done for s in r["shards"]]
    entry = {"videos": list(videos), "frame_counts": frame_counts, "num_records": num_records,
             "shards": shards,
             "shard_records": records.shard_records(shards,
                                                    [n for r in done for n in r["shard_counts"]]),
             "frame_shapes": [r["frame_shape"] for r in done], "frame_stride": stride}
    splits[split] = entry
    shard_checks.update({k: v for r in done for k, v in r["shard_checks"].items()})
    damaged = [f for r in done for f in r.get("damaged_frames", [])]
    print(f"{split}: {num_records} cubes from {len(videos)} videos "
          f"({num_records / max(1, sum(frame_counts) / stride):.1f} per sampled frame)"
          + (f"; {len(damaged)} damaged frame(s) replaced by the previous one: "
             f"{', '.join(damaged[:5])}{' ...' if len(damaged) > 5 else ''}" if damaged else ""),
          flush=True)
  manifest = {"window_length": 2 * p.half_window + 1, "crop_size": p.crop_size,
              "channels": channels, "splits": splits, "teachers": teacher_entries,
              "data_root": os.path.abspath(root), "prep_config": prep_signature(config),
              "shard_checks": shard_checks}
  records.write_manifest(out_dir, manifest)
  return records.read_manifest(out_dir)


def ground_truth(config, manifest) -> ground_truth_lib.GroundTruth:
  """Frame labels (and tracks where the data set has them) of the test videos, checked against
  the prepared frame counts."""
  test = manifest["splits"]["testing"]
  return ground_truth_for(config, dict(zip(test["videos"], test["frame_counts"])))


def ground_truth_for(config, frame_counts: dict[str, int], tracks: bool = True
                     ) -> ground_truth_lib.GroundTruth:
  """The test videos' ground truth, checked against `frame_counts` (video -> frames). A data set
  name outside `ground_truth.DATASETS` is read in the generic frame-folder layout (`ped2.mat` or
  `testing/frame_mask/<vid>.npy`), without tracks."""
  name = "synthetic" if config.data.synthetic else config.data.name.lower()
  if name in ground_truth_lib.DATASETS:
    return ground_truth_lib.load_ground_truth(name, config.data.root, frame_counts, tracks=tracks)
  return ground_truth_lib.GroundTruth(
      name, readers.load_frame_labels(config.data.root, frame_counts), None)
