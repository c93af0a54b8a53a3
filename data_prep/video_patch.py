"""Pixel corrections stored beside a lossy video file, applied by the video reader.

A lossy re-encoding (the travel pack's H.264 Ped2, benchmarks/travel_pack.py) moves pixels by
a level or two. That is invisible to the model, but a thresholding detector flips the pixels
that sit at its threshold. A patch restores chosen pixels of chosen frames.
`readers.read_video` applies the patch `<video file name>.patch.npz` whenever one lies beside
the video, so everything that reads the video sees the corrected frames.

A patch is an `.npz` with:
  shape         int64 `[3]`: T, H, W of the video it corrects;
  frames        int32 `[K]`: the frame numbers it corrects, ascending;
  residual      int8 `[K, H, W]`: added to every channel of those frames, clipped to 0..255;
  decoded_sums  int64 `[K]`: the sum of each of those frames, in gray, as decoded when the
                patch was made. H.264 decoding is exact, so the same file decodes to the same
                pixels everywhere; a decoder that disagrees is refused, not patched wrongly.
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from data_prep import atomic_write

SUFFIX = ".patch.npz"
_KEYS = ("shape", "frames", "residual", "decoded_sums")


def patch_path(video: str | pathlib.Path) -> pathlib.Path:
  """The patch file that belongs to the video file `video`."""
  video = pathlib.Path(video)
  return video.with_name(video.name + SUFFIX)


def write(video: str | pathlib.Path, decoded: np.ndarray, corrected: np.ndarray) -> dict:
  """Writes the patch that turns `decoded` (the video as the reader decodes it in gray without
  a patch, uint8 `[T, H, W]`) into `corrected` (same shape) beside `video`, atomically; with no
  pixel to correct it removes any patch there instead. Returns its frame count and size."""
  if decoded.shape != corrected.shape or decoded.ndim != 3:
    raise ValueError(f"{video}: decoded {decoded.shape} and corrected {corrected.shape} must "
                     "be the same [T, H, W]")
  residual = corrected.astype(np.int16) - decoded
  if residual.min() < -128 or residual.max() > 127:
    raise ValueError(f"{video}: a correction of {int(np.abs(residual).max())} levels does not "
                     "fit the patch's int8")
  frames = np.flatnonzero(residual.any(axis=(1, 2))).astype(np.int32)
  path = patch_path(video)
  if not len(frames):
    path.unlink(missing_ok=True)
    return {"patched_frames": 0, "patch_bytes": 0}
  atomic_write.save_npz(path, compressed=True, shape=np.asarray(decoded.shape, np.int64),
                        frames=frames, residual=residual[frames].astype(np.int8),
                        decoded_sums=decoded[frames].sum(axis=(1, 2), dtype=np.int64))
  return {"patched_frames": len(frames), "patch_bytes": path.stat().st_size}


def apply(video: str | pathlib.Path, frames: np.ndarray) -> np.ndarray:
  """Applies `video`'s patch, if it has one, in place to uint8 `[T, H, W, C]` `frames` decoded
  from it (the reader's own fresh array) and returns them. Raises ValueError naming the patch
  file when it does not fit the frames."""
  path = patch_path(video)
  if not path.is_file():
    return frames
  with np.load(path, allow_pickle=False) as data:
    missing = [k for k in _KEYS if k not in data.files]
    if missing:
      raise ValueError(f"{path}: not a video patch (no {', '.join(missing)}); remove it or "
                       "rebuild it with benchmarks/travel_pack.py")
    shape, index, residual, sums = (data[k] for k in _KEYS)
  if tuple(shape) != frames.shape[:3]:
    raise ValueError(f"{path}: made for a {tuple(int(s) for s in shape)} (T, H, W) video, but "
                     f"{video} decodes to {frames.shape[:3]}; rebuild the patch with the video")
  gray = (frames[index, ..., 0] if frames.shape[-1] == 1 else
          np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[index]]))
  decoded = gray.sum(axis=(1, 2), dtype=np.int64)
  if not np.array_equal(decoded, sums):
    bad = int(index[np.flatnonzero(decoded != sums)[0]])
    raise ValueError(f"{path}: frame {bad} of {video} decodes to other pixels here than when "
                     "the patch was made (another decoder); rebuild the patch here, or delete it to "
                     "read the video without it")
  fixed = frames[index].astype(np.int16) + residual[..., None]
  frames[index] = np.clip(fixed, 0, 255).astype(np.uint8)
  return frames
