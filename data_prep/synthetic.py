"""Embedded demo data set: a synthetic surveillance walkway, no download needed.

The scene is a static camera over a paved walkway (grey gradient, paving joints,
fixed texture, a little per-frame sensor noise). Normal events are small people
(~8x18 px: head, body, swinging legs) walking at ~1 px/frame along mostly
horizontal or diagonal paths, entering and leaving the frame. Each test video has
one anomalous object crossing the scene: a cyclist (3-5 px/frame), a vehicle
(~30x20 px, >= 2 px/frame) or an erratic walker (jittery heading, speed bursts).
Training videos hold only walkers.

Written in the same frame-folder layout as UCSD Ped2 (see `readers.py`), plus
ground truth derived from the rendered anomaly pixels, so labels, pixel masks and
tracks agree by construction:

  root/training/frames/<vid>/NNN.png
  root/testing/frames/<vid>/NNN.png
  root/testing/frame_mask/<vid>.npy    int8 [T], 1 = anomalous object visible
  root/testing/pixel_mask/<vid>.npy    uint8 [T, H, W], anomalous track id, 0 elsewhere
  root/testing/tracks/<vid>.txt        track_id,frame_idx,x_min,y_min,x_max,y_max (0-based
                                       frames, x_max/y_max exclusive)

Usage: python -m data_prep.synthetic --root /tmp/demo
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import cv2
import numpy as np

from data_prep import atomic_write
from data_prep import tracks as tracks_lib

ANOMALY_KINDS = ("cyclist", "vehicle", "erratic")


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """A static walkway: vertical gradient, grass strip, paving joints, fixed texture."""
  rows = np.linspace(105, 165, h, dtype=np.float32)[:, None]
  bg = np.repeat(rows, w, axis=1)
  grass = max(4, h // 8)
  bg[:grass] = 70 + 10 * rng.standard_normal((grass, w)).astype(np.float32)
  # Paving joints: perspective-free grid with a slight slant of the vertical joints.
  for y in range(grass + 6, h, 14):
    bg[y] -= 22
  for x0 in range(-h // 3, w, 22):
    xs = np.clip((x0 + 0.3 * np.arange(h - grass)).astype(int), 0, w - 1)
    bg[np.arange(grass, h), xs] -= 18
  bg += 5 * rng.standard_normal((h, w)).astype(np.float32)
  return cv2.GaussianBlur(bg, (3, 3), 0)


class _Walker:
  """A pedestrian sprite (~8x18 px) with a position, velocity and gait phase."""

  def __init__(self, rng: np.random.Generator, h: int, w: int, inside: bool):
    self.tone = float(rng.choice([rng.uniform(25, 65), rng.uniform(185, 235)]))
    speed = rng.uniform(0.8, 1.3)
    angle = rng.uniform(-0.45, 0.45) + (np.pi if rng.random() < 0.5 else 0.0)
    self.v = np.array([speed * np.cos(angle), speed * np.sin(angle)])
    top = max(4, h // 8)
    y = rng.uniform(top, h - 18)
    if inside:
      x = rng.uniform(0, w - 8)
    else:  # Enter from the edge the walker heads away from.
      x = -8.0 if self.v[0] > 0 else float(w)
    self.p = np.array([x, y])
    self.phase = rng.uniform(0, 2 * np.pi)
    self.h, self.w = h, w

  def step(self):
    self.p += self.v
    self.phase += 0.5 * np.hypot(*self.v)

  def gone(self) -> bool:
    x, y = self.p
    return x < -10 or x > self.w + 2 or y < -20 or y > self.h + 2

  def draw(self, canvas: np.ndarray, value: float):
    x, y = int(round(self.p[0])), int(round(self.p[1]))
    _draw_person(canvas, x, y, self.phase, value)


def _draw_person(canvas: np.ndarray, x: int, y: int, phase: float, value: float):
  """Head, torso and two swinging legs in an ~8x18 box whose top-left is (x, y)."""
  swing = int(round(2.5 * np.sin(phase)))
  cv2.circle(canvas, (x + 4, y + 2), 2, value, -1)
  cv2.rectangle(canvas, (x + 2, y + 5), (x + 6, y + 11), value, -1)
  cv2.line(canvas, (x + 3, y + 11), (x + 3 + swing, y + 17), value, 2)
  cv2.line(canvas, (x + 5, y + 11), (x + 5 - swing, y + 17), value, 2)


def _draw_cyclist(canvas: np.ndarray, x: int, y: int, phase: float, value: float,
                  facing: int):
  """Two wheels, frame and rider in a ~16x20 box whose top-left is (x, y)."""
  cv2.circle(canvas, (x + 3, y + 16), 3, value, 1)
  cv2.circle(canvas, (x + 13, y + 16), 3, value, 1)
  cv2.line(canvas, (x + 3, y + 16), (x + 8, y + 11), value, 1)
  cv2.line(canvas, (x + 8, y + 11), (x + 13, y + 16), value, 1)
  head_x = x + (10 if facing > 0 else 6)
  cv2.circle(canvas, (head_x, y + 2), 2, value, -1)
  cv2.line(canvas, (head_x, y + 4), (x + 8, y + 11), value, 3)
  pedal = int(round(2 * np.sin(phase)))
  cv2.line(canvas, (x + 8, y + 11), (x + 8 + pedal, y + 15), value, 1)


def _draw_vehicle(canvas: np.ndarray, x: int, y: int, value: float, facing: int):
  """A cart/car body with a darker window band and wheels, ~30x20 px."""
  cv2.rectangle(canvas, (x, y + 4), (x + 29, y + 16), value, -1)
  cab = (x + 16, y) if facing > 0 else (x + 2, y)
  cv2.rectangle(canvas, cab, (cab[0] + 11, y + 5), value, -1)
  dark = value * 0.45 if value > 100 else value + 60
  cv2.rectangle(canvas, (x + 3, y + 6), (x + 26, y + 9), dark, -1)
  cv2.circle(canvas, (x + 6, y + 17), 3, 20, -1)
  cv2.circle(canvas, (x + 23, y + 17), 3, 20, -1)


class _Anomaly:
  """One anomalous object crossing the scene from one side to the other."""

  SIZE = {"cyclist": (16, 20), "vehicle": (30, 21), "erratic": (8, 18)}

  def __init__(self, rng: np.random.Generator, kind: str, h: int, w: int, start: int,
               length: int):
    self.kind, self.start, self.rng = kind, start, rng
    ow, oh = self.SIZE[kind]
    self.facing = 1 if rng.random() < 0.5 else -1
    # Average speed chosen so the crossing lasts about `length` frames, clamped to the
    # range that makes it anomalous (walkers move ~1 px/frame).
    lo, hi = {"cyclist": (3.0, 5.0), "vehicle": (2.0, 4.0), "erratic": (2.5, 5.0)}[kind]
    # Erratic walkers lose ~35 % of their nominal speed to heading jitter and pauses.
    drift = 0.65 if kind == "erratic" else 1.0
    self.speed = float(np.clip((w + ow) / max(length, 1) / drift, lo, hi))
    top = max(4, h // 8)
    self.p = np.array([-ow if self.facing > 0 else w, rng.uniform(top, h - oh - 2)], float)
    self.vy = rng.uniform(-0.25, 0.25) * self.speed
    self.heading = 0.0
    self.phase = 0.0
    self.tone = float(rng.choice([rng.uniform(20, 60), rng.uniform(190, 240)]))
    self.h, self.w, self.top, self.oh = h, w, top, oh

  def step(self):
    vx, vy = self.facing * self.speed, self.vy
    if self.kind == "erratic":
      # Jittery heading and bursts; forward drift keeps it crossing the scene.
      self.heading = np.clip(self.heading + self.rng.normal(0, 0.6), -1.3, 1.3)
      burst = self.rng.choice([0.3, 1.0, 2.0], p=[0.3, 0.4, 0.3])
      vx = self.facing * self.speed * burst * np.cos(self.heading)
      vy = self.speed * burst * np.sin(self.heading)
    self.p += (vx, vy)
    self.p[1] = np.clip(self.p[1], self.top, self.h - self.oh - 2)
    self.phase += 0.6 * self.speed

  def draw(self, canvas: np.ndarray, value: float):
    x, y = int(round(self.p[0])), int(round(self.p[1]))
    if self.kind == "cyclist":
      _draw_cyclist(canvas, x, y, self.phase, value, self.facing)
    elif self.kind == "vehicle":
      _draw_vehicle(canvas, x, y, value, self.facing)
    else:
      _draw_person(canvas, x, y, self.phase, value)


def render_video(rng: np.random.Generator, num_frames: int, h: int, w: int,
                 anomaly: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Renders one video.

  Args:
    rng: random generator (the only source of randomness).
    num_frames: T.
    h, w: frame size.
    anomaly: None for a normal video, else one of ANOMALY_KINDS.

  Returns:
    (frames uint8 `[T, H, W]`, pixel mask uint8 `[T, H, W]` with 1 on the anomaly).
  """
  bg = _background(rng, h, w)
  walkers = [_Walker(rng, h, w, inside=True) for _ in range(rng.integers(3, 6))]
  target = len(walkers)
  obj = None
  if anomaly is not None:
    length = int(round(rng.uniform(0.35, 0.55) * num_frames))
    start = int(rng.integers(int(0.1 * num_frames), max(int(0.9 * num_frames) - length, 0) + 1))
    obj = _Anomaly(rng, anomaly, h, w, start, length)
  frames = np.zeros((num_frames, h, w), np.uint8)
  masks = np.zeros((num_frames, h, w), np.uint8)
  for t in range(num_frames):
    canvas = bg.copy()
    for walker in walkers:
      walker.draw(canvas, walker.tone)
      walker.step()
    walkers = [wk for wk in walkers if not wk.gone()]
    if len(walkers) < target and rng.random() < 0.15:
      walkers.append(_Walker(rng, h, w, inside=False))
    if obj is not None and t >= obj.start:
      obj.draw(canvas, obj.tone)
      obj.draw(masks[t], 1)
      # Sprites use several tones (wheels, windows); the mask holds only the track id.
      masks[t] = masks[t] > 0
      obj.step()
    canvas += 2.0 * rng.standard_normal((h, w)).astype(np.float32)
    frames[t] = np.clip(canvas, 0, 255).astype(np.uint8)
  return frames, masks


def _write_frames(folder: pathlib.Path, frames: np.ndarray):
  """Writes NNN.png into a temporary folder, then renames it into place."""
  with atomic_write.temporary_path(folder) as tmp:
    os.mkdir(tmp)
    for t, frame in enumerate(frames):
      if not cv2.imwrite(os.path.join(tmp, f"{t:03d}.png"), frame):
        raise OSError(f"Could not write frame {folder / f'{t:03d}.png'}.")




def generate_dataset(root: str | pathlib.Path, num_train: int = 6, num_test: int = 4,
                     num_frames: int = 120, height: int = 120, width: int = 160,
                     seed: int = 0) -> dict:
  """Generates the demo data set in the Ped2 frame-folder layout.

  Args:
    root: output directory (created; existing videos of the same ids are replaced).
    num_train: number of normal training videos.
    num_test: number of test videos, each with one anomaly (kinds cycle through
      cyclist, vehicle, erratic walker).
    num_frames: frames per video.
    height, width: frame size in pixels.
    seed: makes the output deterministic.

  Returns:
    Summary dict: root, seed, frame size, `training` {vid: num_frames} and
    `testing` {vid: {"frames", "abnormal_frames", "anomaly"}}; also written to
    `root/synthetic.json`.
  """
  if min(height, width) < 48 or num_frames < 8:
    raise ValueError(f"Frames must be at least 48x48 and videos 8 frames long, got "
                     f"{height}x{width}, {num_frames} frames.")
  root = pathlib.Path(root)
  summary = {"root": str(root), "seed": seed, "height": height, "width": width,
             "training": {}, "testing": {}}
  for i in range(num_train):
    vid = f"{i + 1:02d}"
    frames, _ = render_video(np.random.default_rng([seed, 0, i]), num_frames, height, width)
    _write_frames(root / "training" / "frames" / vid, frames)
    summary["training"][vid] = num_frames
  for i in range(num_test):
    vid = f"{i + 1:02d}"
    kind = ANOMALY_KINDS[i % len(ANOMALY_KINDS)]
    frames, masks = render_video(np.random.default_rng([seed, 1, i]), num_frames, height,
                                 width, anomaly=kind)
    labels = masks.reshape(num_frames, -1).any(axis=1).astype(np.int8)
    rows = tracks_lib.boxes_from_track_mask(masks).tolist()
    _write_frames(root / "testing" / "frames" / vid, frames)
    atomic_write.save_npy(root / "testing" / "frame_mask" / f"{vid}.npy", labels)
    atomic_write.save_npy(root / "testing" / "pixel_mask" / f"{vid}.npy", masks)
    atomic_write.write_text(root / "testing" / "tracks" / f"{vid}.txt",
                "".join(",".join(map(str, r)) + "\n" for r in rows))
    summary["testing"][vid] = {"frames": num_frames, "abnormal_frames": int(labels.sum()),
                               "anomaly": kind}
  atomic_write.write_text(root / "synthetic.json", json.dumps(summary, indent=2) + "\n")
  return summary


def main(argv: list[str] | None = None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--root", required=True, help="output directory")
  parser.add_argument("--num_train", type=int, default=6)
  parser.add_argument("--num_test", type=int, default=4)
  parser.add_argument("--num_frames", type=int, default=120)
  parser.add_argument("--height", type=int, default=120)
  parser.add_argument("--width", type=int, default=160)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  summary = generate_dataset(args.root, args.num_train, args.num_test, args.num_frames,
                             args.height, args.width, args.seed)
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  main()
