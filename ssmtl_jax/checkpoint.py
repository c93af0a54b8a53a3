"""orbax checkpoints of the train state, keeping the best by validation proxy loss."""

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
