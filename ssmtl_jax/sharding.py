"""A one-axis ("data",) device mesh: params replicated, batches split (DESIGN §5).

`jax.jit` with `NamedSharding` is the current replacement for pmap; on a pod every process
holds its slice of the global batch and `make_array_from_process_local_data` assembles it.
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  """A mesh over every device of every process, on one axis."""
  # Auto axes: Explicit (the make_mesh default) rejected a reshape in the step (DESIGN §8).
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, what: str = "train.batch_size") -> int:
  """Returns the per-process batch; a readable error when the devices do not divide it."""
  n = jax.device_count()
  if global_batch % n:
    raise ValueError(
        f"{what}={global_batch} is not divisible by the {n} devices "
        f"({jax.process_count()} process(es)); use a multiple of {n}, e.g. "
        f"{max(n, global_batch // n * n)}")
  return global_batch // jax.process_count()


def to_global(local_batch, mesh: Mesh):
  """This process's rows (an array or a dict of arrays) -> global arrays split over the data
  axis."""
  sharded = batch_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharded, x), local_batch)
