"""The device check: the published model's step speed, the input pipeline beside it, and UCSD
Ped2 end to end, one JSON line per item, in one command sized for a 10-minute device run.

  python benchmarks/accelerator.py [--out=accelerator_results.jsonl] [--ped2_root=DIR]
      [--items=train_step,score_step,end_to_end,input_pipeline] [--budget_s=480] [--smoke]

On a device with no network, after the travel pack's wheels are installed:
`bash travel_pack/run_check.sh` (benchmarks/travel_pack.py builds it; README "Measuring on a GPU").

Items, in this order (the step items of the backend's default dtype first, so the end-to-end
item can predict its training time from them; the other dtype's last, as the least needed):
  train_step / score_step, per dtype (--dtypes) and batch (--batches): configs/ped2_v2.py's
    jitted step on random windows, measured by benchmarks/train_step.py / inference.py: cubes/s
    (median of --steps timed steps after warm-up), compile s, GFLOP per cube from XLA's cost
    analysis of the step's math, achieved TFLOP/s and its share of the device's vendor peak
    (PEAK_TFLOPS), device memory.
  end_to_end: `ssmtl_jax.workflow.run` on Ped2 (--ped2_root) with configs/ped2_v2.py: prep,
    training (the config's epochs), evaluation; wall time per stage, micro / macro AUC.
  input_pipeline: the grain training pipeline's cubes/s over the end-to-end item's records with
    0 and --workers workers (benchmarks/input_pipeline.py), beside the train step's cubes/s.

An item that fails prints its line with an "error" field and the next item runs. Before each
item a wall-clock guard skips it (with a line saying so) when the items of its kind so far say
it would not finish within --budget_s; the end-to-end item predicts its training from the
measured train step after prep. A watchdog stops the process at --budget_s, printing a line
naming the item it cut, so the command never outlasts the device's limit. Every line is
flushed to --out as it is printed: a stopped run keeps the items it finished.

--smoke runs the same code at tiny sizes on CPU (configs/test.py's model, batches 8 and 16, a few
steps, the synthetic demo data generated on the spot instead of Ped2); tests/test_accelerator.py
runs it.
"""

import contextlib
import copy
import gc
import json
import os
import sys
import tempfile
import threading
import time
import traceback

from absl import app
from absl import flags

import harness  # first: puts the repository root ahead of benchmarks/ on sys.path
import inference
import input_pipeline as pipeline_bench
import train_step
import travel_pack

import jax

from configs import ped2_v2
from configs import test as test_config
from data_prep import records
from ssmtl_jax import backend
from ssmtl_jax import workflow
from ssmtl_jax.train import optimizer

ITEMS = ("train_step", "score_step", "end_to_end", "input_pipeline")
STEP_ITEMS = ("train_step", "score_step")

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a script, so tests can import the items."""
  flags.DEFINE_string("out", "accelerator_results.jsonl", "JSON lines file (rewritten).")
  flags.DEFINE_string("ped2_root", "", "UCSD Ped2 root (frame folders or the travel pack's "
                      "ped2/); default: ../shared/data/ped2, else travel_pack/ped2.")
  flags.DEFINE_list("items", list(ITEMS), f"Items to run, of {ITEMS}.")
  flags.DEFINE_list("batches", [], "Step batch sizes; default 16,64,256 (smoke: 8,16).")
  flags.DEFINE_list("dtypes", ["bfloat16", "float32"], "Step compute dtypes.")
  flags.DEFINE_integer("steps", 0, "Timed steps per step item; default 5 (smoke: 2).")
  flags.DEFINE_integer("workers", -1, "grain workers of the pipeline item's second measurement "
                       "and of end-to-end training; default min(8, cpus/2) (smoke: 1 and 0).")
  flags.DEFINE_float("budget_s", 480.0, "Wall-clock budget of the whole command (s).")
  flags.DEFINE_string("workdir", "", "Work folder (records, checkpoints); default: tmp.")
  flags.DEFINE_bool("e2e_teacher", False, "End to end with the built-in teacher and the "
                    "appearance memory (configs/ped2_cpu.py's settings) added.")
  flags.DEFINE_bool("smoke", False, "Tiny sizes on CPU: the CI check of this script.")


# Dense peak TFLOP/s per chip (no structured sparsity) by device kind: (substring of jax's
# `device_kind`, lower case; name; bfloat16; float32 as JAX runs it by default: TF32 tensor
# cores on NVIDIA (XLA's default precision for float32 convs and matmuls there), bfloat16 passes
# on TPU). Vendor figures: NVIDIA H100 datasheet (SXM5 / PCIe / NVL: BF16 1979 / 1513 / 1671,
# TF32 989 / 756 / 835 TFLOPS, quoted with sparsity, halved here); NVIDIA H200 datasheet (SXM /
# NVL: as H100 SXM / NVL); NVIDIA A100 datasheet (BF16 312, TF32 156, dense); Google Cloud TPU
# system architecture pages, per chip: v4 275, v5e 197, v5p 459, v6e (Trillium) 918 bf16.
# First match wins, so the more specific names come first.
PEAK_TFLOPS = (
    ("h200 nvl", "NVIDIA H200 NVL", 835.5, 417.5),
    ("h200", "NVIDIA H200 SXM", 989.4, 494.7),
    ("h100 nvl", "NVIDIA H100 NVL", 835.5, 417.5),
    ("h100 pcie", "NVIDIA H100 PCIe", 756.5, 378.0),
    ("h100", "NVIDIA H100 SXM", 989.4, 494.7),
    ("a100", "NVIDIA A100", 312.0, 156.0),
    ("v6 lite", "TPU v6e", 918.0, 918.0),
    ("v6e", "TPU v6e", 918.0, 918.0),
    ("v5 lite", "TPU v5e", 197.0, 197.0),
    ("v5e", "TPU v5e", 197.0, 197.0),
    ("v5", "TPU v5p", 459.0, 459.0),
    ("v4", "TPU v4", 275.0, 275.0),
)


def device_peak(device_kind: str, dtype: str) -> dict:
  """The vendor peak of one device of this kind for a dtype, or nulls for an unknown kind."""
  kind = device_kind.lower()
  for key, name, bf16, f32 in PEAK_TFLOPS:
    if key in kind:
      return {"peak_name": name, "peak_tflop_s_per_device": bf16 if dtype == "bfloat16" else f32,
              "peak_basis": "bf16" if dtype == "bfloat16" or "TPU" in name else "tf32"}
  return {"peak_name": None, "peak_tflop_s_per_device": None, "peak_basis": None}


class Run:
  """The budget, the output file, the results so far, and the watchdog."""

  def __init__(self, out_path: str, budget_s: float, smoke: bool):
    self.start = time.monotonic()
    self.budget_s = budget_s
    self.smoke = smoke
    self.results: list[dict] = []
    self.current = None
    self._lock = threading.Lock()
    self._stdout = sys.stdout
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    self._out = open(out_path, "w")
    self._finished = threading.Event()
    threading.Thread(target=self._watchdog, daemon=True).start()

  def elapsed(self) -> float:
    return time.monotonic() - self.start

  def left(self) -> float:
    return self.budget_s - self.elapsed()

  def emit(self, line: dict) -> None:
    line = {**line, "elapsed_s": round(self.elapsed(), 1), "smoke": self.smoke}
    text = json.dumps(line)
    with self._lock:
      print(text, file=self._stdout, flush=True)
      self._out.write(text + "\n")
      self._out.flush()
      os.fsync(self._out.fileno())
    self.results.append(line)

  def find(self, item: str, **fields) -> dict | None:
    """The last successful result of `item` whose fields equal `fields`."""
    for r in reversed(self.results):
      if r["item"] == item and "error" not in r and "skipped" not in r and all(
          r.get(k) == v for k, v in fields.items()):
        return r
    return None

  def close(self) -> None:
    self._finished.set()
    self._out.close()

  def _watchdog(self) -> None:
    if self._finished.wait(max(0.0, self.left())):
      return
    self.emit({"item": self.current or "none", "error": f"--budget_s={self.budget_s:g} reached "
               "during this item: stopped here; the items after it did not run"})
    os._exit(3)  # pylint: disable=protected-access


def run_item(run: Run, item: str, fields: dict, fn, estimate_s: float | None) -> None:
  """Runs one item: skipped when `estimate_s` exceeds the budget left; an exception becomes
  the item's error line. Library output goes to stderr so stdout holds only the JSON lines."""
  run.current = item
  base = {"item": item, **fields, **harness.device_fields()}
  if estimate_s is not None and estimate_s > run.left():
    run.emit({**base, "skipped": f"needs ~{estimate_s:.0f} s by the items of its kind so far; "
              f"{max(0.0, run.left()):.0f} s of --budget_s left"})
    run.current = None
    return
  start = time.monotonic()
  try:
    with contextlib.redirect_stdout(sys.stderr):
      result = fn()
    run.emit({**base, **result, "item_s": round(time.monotonic() - start, 1)})
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc(file=sys.stderr)
    run.emit({**base, "error": f"{type(e).__name__}: {e}".splitlines()[0][:500],
              "item_s": round(time.monotonic() - start, 1)})
  finally:
    run.current = None
    gc.collect()


def step_item(kind: str, config, dtype: str, batch: int, num_steps: int) -> dict:
  """One train or score step measurement with the share of the device's peak added."""
  config = copy.deepcopy(config)
  config.model.dtype = dtype
  config.train.batch_size = batch
  if kind == "train_step":
    r = train_step.measure(config, num_steps)
  else:
    r = inference.measure(config, batch, num_steps)
  r.pop("benchmark", None)
  for k in list(harness.device_fields()):
    r.pop(k, None)
  achieved = r["gflop_per_cube"] * r["cubes_per_s"] / 1e3
  peak = device_peak(jax.devices()[0].device_kind, dtype)
  total_peak = (peak["peak_tflop_s_per_device"] or 0) * jax.device_count()
  return {**r, "achieved_tflop_s": round(achieved, 4), **peak,
          "share_of_device_peak": round(achieved / total_peak, 4) if total_peak else None}


def e2e_config(smoke: bool, ped2_root: str, workers: int, teacher: bool):
  config = test_config.get_config() if smoke else ped2_v2.get_config()
  if not smoke:
    config.data.root = ped2_root
    config.train.num_workers = workers
  config.eval.overlay_videos = 0  # the product's overlay videos: no part of speed or AUC
  if teacher:
    config.prep.teachers.distillation = "efficientnet_lite0"
    config.eval.appearance_memory = 1
    config.eval.appearance_memory_weight = 0.67
  return config


def end_to_end(run: Run, config, workdir: str, default_dtype: str) -> dict:
  """Prep, training and evaluation through `workflow.run`, each stage timed; after prep, the
  training time predicted from the measured train step and a short read of the input pipeline,
  and the item stopped when the prediction does not fit the budget left."""
  out = {"config": "configs/test.py" if run.smoke else "configs/ped2_v2.py",
         "data_root": config.data.root or "synthetic (generated)", "epochs": config.train.epochs,
         "num_steps": config.train.num_steps, "batch": config.train.batch_size,
         "train_workers": config.train.num_workers, "overlay_videos": config.eval.overlay_videos,
         "teacher": config.prep.teachers.distillation or None,
         **backend.resolve_model_choices(config.model)}
  if config.data.root and travel_pack.is_pack(config.data.root):
    out["pack_check"] = travel_pack.verify_pack(config.data.root)
  start = time.monotonic()
  workflow.run(config, workdir, "prep")
  out["prep_s"] = round(time.monotonic() - start, 1)
  manifest = records.read_manifest(os.path.join(workdir, "records"))
  n_train = manifest["splits"]["training"]["num_records"]
  n_test = manifest["splits"]["testing"]["num_records"]
  out.update(train_cubes=n_train, test_cubes=n_test)
  step = run.find("train_step", dtype=out["dtype"], batch=out["batch"]) or run.find(
      "train_step", dtype=default_dtype)
  score = run.find("score_step", dtype=out["dtype"]) or run.find("score_step")
  if step and score:
    batch = out["batch"]
    kept = int(n_train * (1 - config.train.val_fraction))
    n_steps = optimizer.num_train_steps(config, max(1, kept // batch))
    # Training runs at the slower of the step and the input pipeline that feeds it.
    feed = pipeline_bench.pipeline_cubes_per_s(os.path.join(workdir, "records"), batch,
                                               config.train.num_workers, 10, 1)
    rate = min(step["cubes_per_s"], feed)
    # Validation once per epoch and the checkpoints: ~15 % on top of the steps (a guess, shown).
    train_s = step["compile_s"] + 1.15 * n_steps * batch / rate
    # Evaluation scores the test cubes and the training cubes (the normal-score statistics).
    eval_s = score["compile_s"] + (n_test + n_train) / score["cubes_per_s"] + 30
    out.update(input_cubes_per_s=round(feed, 1), predicted_train_s=round(train_s),
               predicted_eval_s=round(eval_s))
    if train_s + eval_s > run.left():
      out["skipped"] = (f"training + evaluation predicted ~{train_s + eval_s:.0f} s, "
                        f"{run.left():.0f} s of --budget_s left: rerun with --items=end_to_end")
      return out
  for stage in ("train", "eval"):
    start = time.monotonic()
    result = workflow.run(config, workdir, stage)
    out[f"{stage}_s"] = round(time.monotonic() - start, 1)
    if stage == "train":
      out.update(train_steps=result["num_steps"], best_step=result["best_step"],
                 train_cubes_per_s=result["cubes_per_s"] and round(result["cubes_per_s"], 1))
  out.update(total_s=round(out["prep_s"] + out["train_s"] + out["eval_s"], 1),
             micro_auc=result["micro_auc"], macro_auc=result["macro_auc"],
             macro_auc_skip_single_class=result["macro_auc_skip_single_class"],
             per_task_micro_auc=result["per_task_micro_auc"])
  return out


def input_pipeline_item(run: Run, config, workdir: str, workers: int, default_dtype: str,
                        smoke: bool) -> dict:
  """The training pipeline's cubes/s over the end-to-end item's records (prepared here when
  that item did not get that far), beside the train step's cubes/s at the same batch."""
  records_dir = os.path.join(workdir, "records")
  prepared = os.path.exists(os.path.join(records_dir, records.MANIFEST_NAME))
  if not prepared:
    workflow.run(config, workdir, "prep")
  batch = config.train.batch_size
  out = {"batch": batch, "crop": config.prep.crop_size, "records_prepared_here": not prepared}
  num_batches, windows = (4, 2) if smoke else (20, 3)
  for w in sorted({0, workers}):
    out[f"cubes_per_s_workers_{w}"] = round(
        pipeline_bench.pipeline_cubes_per_s(records_dir, batch, w, num_batches, windows), 1)
  step = run.find("train_step", dtype=default_dtype, batch=batch)
  if step:
    best = max(v for k, v in out.items() if k.startswith("cubes_per_s_workers_"))
    out.update(train_step_cubes_per_s=step["cubes_per_s"], train_step_dtype=default_dtype,
               pipeline_over_train_step=round(best / step["cubes_per_s"], 2))
  return out


def ped2_root(flag: str) -> str:
  if flag:
    return flag
  here = os.path.dirname(harness.RESULTS)
  for candidate in (os.path.join(here, "..", "..", "shared", "data", "ped2"),
                    os.path.join(here, "..", "travel_pack", "ped2")):
    if os.path.isdir(candidate):
      return os.path.normpath(candidate)
  return ""


def main(argv):
  del argv
  smoke = FLAGS.smoke
  unknown = sorted(set(FLAGS.items) - set(ITEMS))
  if unknown:
    raise SystemExit(f"error: --items: unknown {unknown}; valid: {','.join(ITEMS)}")
  bad_dtypes = sorted(set(FLAGS.dtypes) - set(backend.DTYPES))
  if bad_dtypes:
    raise SystemExit(f"error: --dtypes: unknown {bad_dtypes}; valid: {','.join(backend.DTYPES)}")
  try:
    batches = [int(b) for b in (FLAGS.batches or (["8", "16"] if smoke else ["16", "64", "256"]))]
  except ValueError as e:
    raise SystemExit(f"error: --batches: integers separated by commas ({e})") from e
  if min(batches) < 1 or FLAGS.budget_s <= 0:
    raise SystemExit(f"error: --batches={','.join(map(str, batches))} and "
                     f"--budget_s={FLAGS.budget_s:g} must be positive")
  num_steps = FLAGS.steps or (2 if smoke else 5)
  workers = FLAGS.workers if FLAGS.workers >= 0 else (
      1 if smoke else min(8, max(1, (os.cpu_count() or 2) // 2)))
  root = "" if smoke else ped2_root(FLAGS.ped2_root)
  if "end_to_end" in FLAGS.items and not smoke and not os.path.isdir(root):
    raise SystemExit(f"error: --ped2_root={FLAGS.ped2_root or root!r}: no such folder (UCSD "
                     "Ped2 frame folders, or a travel pack's ped2/)")
  workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="accelerator_")
  step_config = test_config.get_config() if smoke else ped2_v2.get_config()
  config = e2e_config(smoke, root, 0 if smoke else workers, FLAGS.e2e_teacher)
  default_dtype = backend.resolve_dtype("auto")
  dtypes = sorted(FLAGS.dtypes, key=lambda d: d != default_dtype)

  run = Run(FLAGS.out, FLAGS.budget_s, smoke)
  durations: dict[str, list[float]] = {}

  def steps_of(dtype):
    for batch in batches:
      for kind in STEP_ITEMS:
        if kind in FLAGS.items:
          yield kind, dtype, batch

  plan = [("step", s) for s in steps_of(dtypes[0])] if dtypes else []
  plan += [(name, None) for name in ("end_to_end", "input_pipeline") if name in FLAGS.items]
  plan += [("step", s) for d in dtypes[1:] for s in steps_of(d)]
  e2e_dir = os.path.join(workdir, "end_to_end")
  for kind, spec in plan:
    if kind == "step":
      item, dtype, batch = spec
      seen = durations.get(item, [])
      before = len(run.results)
      run_item(run, item, {"dtype": dtype, "batch": batch},
               lambda: step_item(item, step_config, dtype, batch, num_steps),
               1.5 * max(seen) if seen else None)
      if "item_s" in run.results[before]:
        durations.setdefault(item, []).append(run.results[before]["item_s"])
    elif kind == "end_to_end":
      run_item(run, kind, {}, lambda: end_to_end(run, config, e2e_dir, default_dtype), None)
    else:
      run_item(run, kind, {"workers": [0, workers]},
               lambda: input_pipeline_item(run, config, e2e_dir, workers, default_dtype, smoke),
               None if smoke else 20.0)
  failed = [r["item"] for r in run.results if "error" in r]
  run.emit({"item": "summary", "items": len(run.results), "failed": failed,
            "skipped": [r["item"] for r in run.results if "skipped" in r],
            "out": os.path.abspath(FLAGS.out), "workdir": workdir})
  run.close()


if __name__ == "__main__":
  define_flags()
  app.run(main)
