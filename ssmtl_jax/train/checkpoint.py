"""orbax checkpoints: the best train state by validation proxy loss, and the latest full
training position (state + data iterator + loop bookkeeping) for exact resumption.

Nothing is pickled: arrays go through orbax's array handlers, the rest is JSON.
"""

import os

import jax
import orbax.checkpoint as ocp


def best_manager(workdir: str) -> ocp.CheckpointManager:
  """Keeps one checkpoint: the step with the lowest `val_loss` passed to `save`."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=1, best_fn=lambda m: m["val_loss"], best_mode="min",
      enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                               options=options)


def save(manager: ocp.CheckpointManager, step: int, state, val_loss: float) -> bool:
  """Saves `state` at `step` with its validation loss; returns whether it was written."""
  saved = manager.save(step, args=ocp.args.StandardSave(state), metrics={"val_loss": val_loss})
  manager.wait_until_finished()
  return saved


def restore_best(workdir: str, abstract_state):
  """Restores the best checkpoint into the structure / shardings of `abstract_state`."""
  manager = best_manager(workdir)
  step = manager.best_step()
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')}; "
                            "run --mode=train first")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
  return manager.restore(step, args=ocp.args.StandardRestore(abstract)), step


def latest_manager(workdir: str) -> ocp.CheckpointManager:
  """Keeps the most recent resumption point under `<workdir>/resume`."""
  options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "resume")), options=options)


def save_latest(manager: ocp.CheckpointManager, step: int, state, extra: dict) -> None:
  """Saves the train state and a JSON-able dict (data iterator state, best so far, rng)."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             extra=ocp.args.JsonSave(extra)), force=True)
  manager.wait_until_finished()


def restore_latest(manager: ocp.CheckpointManager, abstract_state):
  """Returns (state, extra, step) of the latest resumption point, or None when there is none.

  A save cut short by a kill never becomes visible: orbax writes into a temporary folder and
  renames it when complete, so the latest step found here is always whole.
  """
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()))
  return restored.state, restored.extra, step
