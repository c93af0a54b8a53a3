"""The training loop: grain batches -> jit train_step on a device mesh -> best checkpoint by
validation loss, with exact resumption after a kill or preemption."""

import json
import math
import os
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from ssmtl_jax import backend
from ssmtl_jax import model_setup
from ssmtl_jax import sharding
from ssmtl_jax import telemetry
from ssmtl_jax.data import cube_source
from ssmtl_jax.data import input_pipeline
from ssmtl_jax.train import checkpoint
from ssmtl_jax.train import optimizer
from ssmtl_jax.train import state as train_state
from ssmtl_jax.train import steps as train_steps


class TrainingSetup(model_setup.ModelSetup):
  """`ModelSetup` plus what only training needs: loss weights, the training cubes, the
  optimizer, the tasks' training assets."""

  def __init__(self, config, workdir: str):
    super().__init__(config, workdir)
    self.weights = train_steps.task_weights(config, self.tasks)
    self.train_source = cube_source.CubeSource(self.records_dir, "training",
                                               videos=self.train_videos)
    self.steps_per_epoch = max(1, len(self.train_source) // config.train.batch_size)
    self.tx = optimizer.build_optimizer(config, self.tasks, self.steps_per_epoch)

  def load_task_assets(self) -> None:
    """Gives each task what it loads for training only (`Task.with_assets`: T5's images)."""
    self.tasks = [task.with_assets(self.config, self.window_shape) for task in self.tasks]

  def init_state(self) -> train_state.TrainState:
    return train_state.init_state(self.config, self.model, self.tasks, self.tx,
                                  self.batch_shapes, self.mesh)


def validate(val_step, variables, source, batch_size: int, mesh, rng,
             teacher_keys=()) -> dict[str, float]:
  """Mean validation proxy losses over every record of `source`."""
  totals: dict[str, float] = {}
  count = 0.0
  for batch, valid, _ in input_pipeline.eval_batches(source, batch_size,
                                                     teacher_keys=teacher_keys):
    sums, n = val_step(variables, sharding.to_global(batch, mesh),
                       sharding.to_global(valid, mesh), rng)
    for k, v in jax.device_get(sums).items():
      totals[k] = totals.get(k, 0.0) + float(v)
    count += float(n)
  return {k: v / max(count, 1.0) for k, v in totals.items()}


def check_finite(metrics: dict[str, float], step: int) -> None:
  """Stops training at the first non-finite value, naming the step and the task losses."""
  bad = [k for k, v in metrics.items() if not math.isfinite(v)]
  if bad:
    tasks = sorted(k.split("/", 1)[1] for k in bad if k.startswith("loss/"))
    raise FloatingPointError(
        f"non-finite value at step {step} in: {', '.join(sorted(bad))} "
        f"({ {k: metrics[k] for k in bad} })"
        + (f"; the loss of task(s) {', '.join(tasks)} went non-finite" if tasks else "")
        + "; lower train.learning_rate or check the input records")


class StopSignal:
  """Turns SIGTERM (a preemption notice) into a flag the loop checks after each step.

  The step in flight finishes, a resumption checkpoint is written and training returns
  normally, so the process exits 0; the previous handler comes back on exit.
  """

  def __init__(self):
    self.received = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    self.received = True

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _metrics_to_host(window_metrics) -> list[dict[str, float]]:
  """The per-step metrics of a logging window, fetched from the devices as floats."""
  host = jax.device_get(window_metrics)
  return [{k: float(v) for k, v in m.items()} for m in host]


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  """Trains on the training videos' cubes and keeps the checkpoint with the best val loss.

  Resumes exactly from `<workdir>/resume` when a previous run of the same workdir stopped
  early (killed, preempted): same state, same next batch, same random keys.

  Returns:
    A summary: steps, best val loss and step, cubes/s, and `preempted` when a SIGTERM ended
    training early.
  """
  setup = TrainingSetup(config, workdir)
  tc = config.train
  per_process_batch = sharding.check_batch_size(tc.batch_size)
  sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
  setup.load_task_assets()
  train_source = setup.train_source
  val_source = (cube_source.CubeSource(setup.records_dir, "training", videos=setup.val_videos)
                if setup.val_videos else None)
  steps_per_epoch = setup.steps_per_epoch
  num_steps = optimizer.num_train_steps(config, steps_per_epoch)
  schedule = optimizer.learning_rate(config, num_steps)
  eval_every = tc.eval_every_steps if tc.eval_every_steps > 0 else steps_per_epoch
  ckpt_every = tc.checkpoint_every_steps if tc.checkpoint_every_steps > 0 else eval_every

  state = setup.init_state()
  rng = jax.random.PRNGKey(config.seed + 1)
  data = iter(input_pipeline.train_dataset(
      setup.records_dir, setup.train_videos, per_process_batch, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      num_workers=tc.num_workers, teacher_keys=setup.teacher_keys))
  best = {"val_loss": None, "step": -1}
  last_train_loss = None
  latest = checkpoint.latest_manager(workdir)
  start_step = 1
  restored = checkpoint.restore_latest(latest, jax.eval_shape(lambda: state))
  if restored is not None:
    state, extra, done = restored
    data.set_state(extra["data"])
    rng = jnp.asarray(np.asarray(extra["rng"], np.uint32))
    best, last_train_loss = extra["best"], extra["last_train_loss"]
    start_step = done + 1
    print(f"resuming from the checkpoint of step {done} in {latest.directory}", flush=True)
  choice = backend.resolve_model_choices(config.model)
  print(f"training on {len(train_source)} cubes from {len(setup.train_videos)} videos, "
        f"validating on {len(val_source) if val_source else 0} cubes from "
        f"{len(setup.val_videos)} videos; {num_steps} steps of batch {tc.batch_size} "
        f"({steps_per_epoch} steps/epoch) on {jax.device_count()} {jax.default_backend()} "
        f"device(s), 3D convs: {choice['conv_impl']} (input conv: {choice['first_conv_impl']}), "
        f"depthwise convs: {choice['depthwise_impl']}, compute: {choice['dtype']}", flush=True)

  replicated = sharding.replicated(setup.mesh)
  train_step = jax.jit(train_steps.make_train_step(setup.model, setup.tasks, setup.tx,
                                                   setup.weights,
                                                   train_state.check_ema_decay(tc.ema_decay)),
                       donate_argnums=(0,), out_shardings=(replicated, replicated))
  val_step = jax.jit(train_steps.make_val_step(setup.model, setup.tasks, setup.weights),
                     out_shardings=replicated)
  manager = checkpoint.best_manager(workdir)
  log_path = os.path.join(workdir, "train_log.jsonl")
  window_metrics, window_start, cubes_per_s = [], time.perf_counter(), float("nan")
  compile_start = time.perf_counter()
  preempted = False

  def save_resume_point(step):
    checkpoint.save_latest(latest, step, state, {
        "data": data.get_state(), "rng": np.asarray(rng).tolist(), "best": best,
        "last_train_loss": last_train_loss})

  # One log per run: process 0 writes it, the others write nowhere.
  log_path = log_path if jax.process_index() == 0 else os.devnull
  with open(log_path, "a") as log, tqdm.tqdm(total=num_steps, initial=start_step - 1, desc="train",
                                             unit="step", disable=jax.process_index() != 0) as bar, \
      telemetry.ScalarWriter(workdir, enabled=tc.tensorboard) as board, StopSignal() as stop:
    for step in range(start_step, num_steps + 1):
      batch = sharding.to_global(next(data), setup.mesh)
      state, metrics = train_step(state, batch, rng)
      window_metrics.append(metrics)
      if step == start_step:
        jax.block_until_ready(state)
        compile_s = time.perf_counter() - compile_start
        window_start = time.perf_counter()
        check_finite(_metrics_to_host(window_metrics)[0], step)
        window_metrics = []
        log.write(json.dumps({"step": step, "compile_and_first_step_s": compile_s}) + "\n")
      bar.update(1)
      if window_metrics and (step % tc.log_every_steps == 0 or step == num_steps
                             or step % eval_every == 0 or stop.received):
        host = _metrics_to_host(window_metrics)
        for offset, m in enumerate(host):  # name the first bad step, not the window's end
          check_finite(m, step - len(host) + 1 + offset)
        mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
        elapsed = time.perf_counter() - window_start
        cubes_per_s = len(host) * tc.batch_size / elapsed
        mean.update(step=step, cubes_per_s=cubes_per_s,
                    cubes_per_s_per_device=cubes_per_s / jax.device_count(),
                    epoch=step / steps_per_epoch)
        last_train_loss = mean["loss"]
        log.write(json.dumps(mean) + "\n")
        log.flush()
        board.write(step, {f"train/{k}": v for k, v in mean.items() if k != "step"}
                    | {"train/learning_rate": float(schedule(step) if callable(schedule)
                                                    else schedule)})
        bar.set_postfix(loss=f"{mean['loss']:.4f}", cubes_s=f"{cubes_per_s:.1f}")
        window_metrics, window_start = [], time.perf_counter()
      if step % eval_every == 0 or step == num_steps:
        if val_source is not None:
          val = validate(val_step, state.variables, val_source, config.eval.batch_size,
                         setup.mesh, jax.random.PRNGKey(config.seed + 2), setup.teacher_keys)
        else:  # no held-out videos: fall back to the latest training loss
          val = {"loss": last_train_loss}
        check_finite(val, step)
        record = {"step": step, **{f"val/{k}": v for k, v in val.items()}}
        if best["val_loss"] is None or val["loss"] < best["val_loss"]:
          best = {"val_loss": val["loss"], "step": step}
          checkpoint.save(manager, step, state, val["loss"])
          record["saved_best"] = True
        log.write(json.dumps(record) + "\n")
        log.flush()
        board.write(step, {f"val/{k}": v for k, v in val.items()})
        tqdm.tqdm.write(f"step {step}: val loss {val['loss']:.4f} "
                        + " ".join(f"{k[5:]}={v:.4f}" for k, v in val.items() if k != "loss")
                        + (" (best, saved)" if record.get("saved_best") else ""))
        window_start = time.perf_counter()  # validation time is not training throughput
      if step % ckpt_every == 0 or step == num_steps or stop.received:
        save_resume_point(step)
      if stop.received:
        preempted = True
        message = (f"SIGTERM received: stopped after step {step} of {num_steps} with a resumption "
                   f"checkpoint in {latest.directory}; rerun the same command to continue")
        log.write(json.dumps({"step": step, "preempted": True}) + "\n")
        tqdm.tqdm.write(message)
        break
  manager.close()
  latest.close()
  summary = {"num_steps": num_steps, "best_step": best["step"], "best_val_loss": best["val_loss"],
             # None when this call trained no step (a finished run resumed): JSON has no NaN.
             "cubes_per_s": None if math.isnan(cubes_per_s) else cubes_per_s, "train_cubes": len(train_source), "preempted": preempted}
  return summary
