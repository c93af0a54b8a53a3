"""T8 jigsaw puzzles (SSMTL++): which of 100 fixed permutations shuffled the middle crop's tiles?

The middle crop `[B, S, S, C]` is cut into a `grid x grid` (4x4) grid of tiles; the tiles are
shuffled by one of `num_permutations` (100) fixed permutations, drawn per example, and the
shuffled image is tiled to `num_frames` frames so it feeds the video backbone. The target is the
permutation id; the head a 100-way classifier; the loss cross-entropy; the anomaly score
1 - p(correct permutation): a normal object's appearance is easy to re-assemble.

Tile order: tiles are numbered row-major (tile k sits at row k // grid, column k % grid). A
permutation `p` puts original tile `p[i]` at position `i` (the view is `tiles[p]`, a gather), so
the original is recovered by putting view tile `i` back at position `p[i]`.

Test time: the view is drawn exactly as in training, from the key the evaluation passes. The
evaluation passes a fixed key, so scores are deterministic (the permutation depends only on the
key and the example's position in the batch). A random rather than a fixed permutation per
example is deliberate: a fixed one (say the identity, or id 0 for everyone) would score every
object on one class only, which the classifier may have learned better or worse than the
others, adding a class-dependent bias to every score; drawing from the same distribution as in
training scores on the average difficulty the model was trained for.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssmtl_jax.tasks import base

# The candidate pool's seed (2016: Noroozi & Favaro's year). It is part of the model's
# definition: class i of a trained jigsaw head means permutations()[i], so changing the seed, the
# pool size or the selection invalidates trained checkpoints.
SEED = 2016
POOL_SIZE = 20_000


@functools.lru_cache(maxsize=None)
def permutations(num: int = 100, grid: int = 4, seed: int = SEED,
                 pool_size: int = POOL_SIZE) -> np.ndarray:
  """Fixed permutations of the `grid * grid` tiles with maximal Hamming distance.

  Noroozi & Favaro (2016)'s greedy selection, over a random candidate pool because (grid^2)!
  candidates are too many for grid 4: start from the pool's first (random) permutation, then
  repeatedly add the candidate whose minimum Hamming distance to the chosen set is largest (ties:
  the larger total distance to the chosen set, Noroozi's average criterion, then the lower pool
  index). The identity is not forced in (Noroozi does not either); nothing about the task needs
  it, since every class is a shuffled view and the score is p(the drawn class). Pure NumPy,
  deterministic (the pool comes from `np.random.default_rng(seed).random`, argsorted),
  computed once per argument set.

  For the defaults the minimum pairwise Hamming distance is 13 of 16 (100 uniformly random
  permutations of 16 typically reach 10).

  Args:
    num: permutations to select.
    grid: tiles per side; permutations are of `grid * grid` tiles.
    seed: seed of the candidate pool.
    pool_size: random candidates to select from.

  Returns:
    Read-only int32 array `[num, grid * grid]`; row i is class i.

  Raises:
    ValueError: if the pool holds fewer than `num` distinct permutations.
  """
  n = grid * grid
  if num < 1 or grid < 2:
    raise ValueError(f"need num >= 1 and grid >= 2, got num={num}, grid={grid}")
  rng = np.random.default_rng(seed)
  pool = np.argsort(rng.random((pool_size, n)), axis=1, kind="stable").astype(np.int8)
  chosen = [0]
  min_dist = np.count_nonzero(pool != pool[0], axis=1)
  total = min_dist.astype(np.int64)
  for _ in range(num - 1):
    j = int(np.argmax(min_dist.astype(np.int64) * (n * num + 1) + total))
    if min_dist[j] == 0:
      raise ValueError(f"only {len(chosen)} distinct permutations of {n} tiles in a pool of "
                       f"{pool_size}; asked for {num}")
    chosen.append(j)
    dist = np.count_nonzero(pool != pool[j], axis=1)
    np.minimum(min_dist, dist, out=min_dist)
    total += dist
  out = pool[chosen].astype(np.int32)
  out.setflags(write=False)
  return out


def to_tiles(image: jax.Array, grid: int) -> jax.Array:
  """`[B, S, S, C]` -> `[B, grid * grid, S / grid, S / grid, C]`, tiles row-major."""
  b, s, _, c = image.shape
  if s % grid or image.shape[2] != s:
    raise ValueError(f"jigsaw needs a square crop size divisible by the grid ({grid}); got crop "
                     f"size {image.shape[1]}x{image.shape[2]}")
  t = s // grid
  tiles = image.reshape(b, grid, t, grid, t, c).transpose(0, 1, 3, 2, 4, 5)
  return tiles.reshape(b, grid * grid, t, t, c)


def from_tiles(tiles: jax.Array, grid: int) -> jax.Array:
  """Inverse of `to_tiles`."""
  b, _, t, _, c = tiles.shape
  image = tiles.reshape(b, grid, grid, t, t, c).transpose(0, 1, 3, 2, 4, 5)
  return image.reshape(b, grid * t, grid * t, c)


@dataclasses.dataclass(frozen=True)
class Jigsaw(base.Task):
  """Attributes:
    grid: tiles per side of the middle crop (crop size must be divisible by it).
    num_permutations: classes; the fixed permutations are `permutations(num_permutations, grid)`.
  """
  grid: int = 4
  num_permutations: int = 100

  name = "jigsaw"
  head_kind = "classifier"
  eval_view_name = "jigsaw"

  def num_outputs(self, channels):
    return self.num_permutations

  def permutation_table(self) -> np.ndarray:
    return permutations(self.num_permutations, self.grid)

  def shuffle(self, image: jax.Array, ids: jax.Array) -> jax.Array:
    """`[B, S, S, C]` with tile `perm[ids[b]][i]` moved to position i, per example."""
    tiles = to_tiles(image, self.grid)
    order = jnp.asarray(self.permutation_table())[ids]  # [B, grid * grid]
    shuffled = jnp.take_along_axis(tiles, order[:, :, None, None, None], axis=1)
    return from_tiles(shuffled, self.grid)

  def train_view(self, batch, rng):
    window = batch[base.WINDOW]
    crop = base.middle(window)
    ids = jax.random.randint(rng, (crop.shape[0],), 0, self.num_permutations, jnp.int32)
    return base.tile_frames(self.shuffle(crop, ids), self.num_frames), ids

  def loss(self, output, target):
    return base.cross_entropy(output, target)

  def eval_view(self, batch, rng):
    return self.train_view(batch, rng)

  def score(self, output, target):
    probs = jax.nn.softmax(output.astype(jnp.float32))
    return 1.0 - jnp.take_along_axis(probs, target[:, None].astype(jnp.int32), axis=1)[:, 0]
