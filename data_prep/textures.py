"""Procedural textures: the half of T5's offline OOD images that needs no file at all.

Each generator maps (rng, size) to a float RGB image in [0, 1]; all are deterministic for the
rng, and none looks like a surveillance scene (ood_images.py draws from `PROCEDURAL`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _contrasting_colors(rng: np.random.Generator, k: int) -> np.ndarray:
  """k random RGB colours in [0, 1] whose first two differ clearly in luma (gray too)."""
  while True:
    colors = rng.random((k, 3)).astype(np.float32)
    if abs((colors[0] - colors[1]) @ _LUMA) > 0.3:
      return colors


def _colorize(rng: np.random.Generator, field: np.ndarray) -> np.ndarray:
  """Maps a [0, 1] field through a random 2-4 colour gradient -> HW3 float."""
  colors = _contrasting_colors(rng, int(rng.integers(2, 5)))
  colors[[1, -1]] = colors[[-1, 1]]  # The contrasting pair at the ends.
  stops = np.linspace(0, 1, len(colors))
  return np.stack([np.interp(field, stops, colors[:, c]) for c in range(3)], -1)


def normalize(field: np.ndarray) -> np.ndarray:
  return (field - field.min()) / max(float(np.ptp(field)), 1e-6)


def _grid(rng: np.random.Generator, size: int, angle: float | None = None):
  """Pixel coordinates rotated by a random (or given) angle: (u, v)."""
  angle = rng.uniform(0, np.pi) if angle is None else angle
  y, x = np.mgrid[:size, :size].astype(np.float32) - size / 2
  return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def _fractal_noise(rng: np.random.Generator, size: int, marble: bool = False) -> np.ndarray:
  """Value noise summed over octaves; `marble` bends stripes with it."""
  field, amp, cells = np.zeros((size, size), np.float32), 1.0, int(rng.integers(2, 5))
  persistence = rng.uniform(0.4, 0.65)
  while cells <= size:
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    field += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    amp, cells = amp * persistence, cells * 2
  field = normalize(field)
  if marble:
    u, _ = _grid(rng, size)
    field = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 8) * u / size
                               + rng.uniform(3, 9) * field)
  return _colorize(rng, field)


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
  """Sine or square stripes at a random angle; sometimes two sets (plaid)."""
  field = np.ones((size, size), np.float32)
  for _ in range(1 + int(rng.random() < 0.4)):
    u, _ = _grid(rng, size)
    wave = np.sin(2 * np.pi * rng.uniform(2, 16) * u / size + rng.uniform(0, 2 * np.pi))
    field *= 0.5 + 0.5 * (np.sign(wave) if rng.random() < 0.5 else wave)
  return _colorize(rng, field)


def _checkerboard(rng: np.random.Generator, size: int) -> np.ndarray:
  u, v = _grid(rng, size)
  period = size / rng.uniform(2, 12)
  field = (np.floor(u / period) + np.floor(v / period)) % 2
  return _colorize(rng, field.astype(np.float32))


def _voronoi(rng: np.random.Generator, size: int) -> np.ndarray:
  """Flat-coloured Voronoi cells, sometimes with dark borders."""
  points = rng.random((int(rng.integers(6, 50)), 2)) * size
  y, x = np.mgrid[:size, :size]
  dist = np.hypot(x[..., None] - points[:, 0], y[..., None] - points[:, 1])
  order = np.argsort(dist, axis=-1)
  image = rng.random((len(points), 3)).astype(np.float32)[order[..., 0]]
  if rng.random() < 0.5:
    d = np.take_along_axis(dist, order[..., :2], -1)
    image[(d[..., 1] - d[..., 0]) < max(1.0, size / 64)] = 0.05
  return image


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
  """Random filled circles, ellipses, rectangles and polygons, drawn at 2x and shrunk."""
  big = 2 * size
  canvas = np.empty((big, big, 3), np.float32)
  canvas[:] = rng.random(3)
  for _ in range(int(rng.integers(5, 25))):
    color = rng.random(3).tolist()
    c = tuple(int(t) for t in rng.integers(0, big, 2))
    r = int(rng.integers(big // 20, big // 4))
    shape = rng.integers(4)
    if shape == 0:
      cv2.circle(canvas, c, r, color, -1, cv2.LINE_AA)
    elif shape == 1:
      axes = (r, int(r * rng.uniform(0.2, 1)))
      cv2.ellipse(canvas, c, axes, rng.uniform(0, 180), 0, 360, color, -1, cv2.LINE_AA)
    elif shape == 2:
      cv2.rectangle(canvas, c, (c[0] + r, c[1] + int(r * rng.uniform(0.3, 2))), color, -1)
    else:
      pts = (np.array(c) + rng.integers(-r, r, (int(rng.integers(3, 7)), 2))).astype(np.int32)
      cv2.fillPoly(canvas, [pts], color, cv2.LINE_AA)
  return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def _gabor(rng: np.random.Generator, size: int) -> np.ndarray:
  """A sum of Gabor patches at random places, orientations, wavelengths and widths."""
  field = np.zeros((size, size), np.float32)
  y, x = np.mgrid[:size, :size].astype(np.float32)
  for _ in range(int(rng.integers(3, 12))):
    cx, cy = rng.random(2) * size
    sigma = size * rng.uniform(0.05, 0.25)
    u, _ = _grid(rng, size)
    envelope = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    field += envelope * np.cos(2 * np.pi * u / (sigma * rng.uniform(0.3, 1.2)))
  # tanh of the standardised sum: the patches saturate instead of fading into the background.
  return _colorize(rng, normalize(np.tanh(field / (field.std() + 1e-6))))


def _rings(rng: np.random.Generator, size: int) -> np.ndarray:
  """Concentric rings or radial spokes around a random centre."""
  y, x = np.mgrid[:size, :size].astype(np.float32) - rng.random((2, 1, 1)) * size
  if rng.random() < 0.5:
    field = np.sin(2 * np.pi * np.hypot(x, y) / (size / rng.uniform(3, 15)))
  else:
    field = np.sin(np.arctan2(y, x) * int(rng.integers(3, 20)))
  return _colorize(rng, 0.5 + 0.5 * field)


PROCEDURAL: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "fractal_noise": _fractal_noise,
    "marble": functools.partial(_fractal_noise, marble=True),
    "stripes": _stripes,
    "checkerboard": _checkerboard,
    "voronoi": _voronoi,
    "blobs": _blobs,
    "gabor": _gabor,
    "rings": _rings,
}
