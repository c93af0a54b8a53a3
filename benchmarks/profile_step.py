"""Where one compiled train (or score) step spends its time, op by op, from a JAX profiler trace.

  python benchmarks/profile_step.py --config=configs/ped2_v2.py --config.train.batch_size=16 \
      [--score] [--top=25] [--trace_dir=/tmp/ssmtl_profile]

Runs the step once to compile and warm up, traces one more call, and prints the XLA ops
(fusions, host-callback custom calls, dots) with the largest summed wall time in that call. The
host convolutions show up as their custom calls. Times are from the trace of a single step, so
they are noisy; the point is the ranking.
"""

from ssmtl_jax.eval import score_steps
from ssmtl_jax.train import steps as train_steps
import collections
import glob
import gzip
import json
import os

from absl import app
from absl import flags
from ml_collections import config_flags

import jax

import harness

_CONFIG = config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
_SCORE = flags.DEFINE_bool("score", False, "Profile the score (inference) step instead.")
_TOP = flags.DEFINE_integer("top", 25, "Ops to print.")
_TRACE_DIR = flags.DEFINE_string("trace_dir", "/tmp/ssmtl_profile", "Where the trace goes.")


def _events(trace_dir: str):
  paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True),
                 key=os.path.getmtime)
  if not paths:
    raise FileNotFoundError(f"no *.trace.json.gz under {trace_dir}: did the profiler run?")
  with gzip.open(paths[-1]) as f:
    return json.load(f)["traceEvents"]


def main(argv):
  del argv
  config = _CONFIG.value
  tasks, model, tx, state, batch, rng = harness.model_and_batch(config, config.train.batch_size)
  if _SCORE.value:
    fn = jax.jit(score_steps.make_score_step(model, tasks))
    call = lambda: fn(state.variables, batch, rng)
  else:
    weights = train_steps.task_weights(config, tasks)
    fn = jax.jit(train_steps.make_train_step(model, tasks, tx, weights))
    call = lambda: fn(state, batch, rng)[1]
  jax.block_until_ready(call())
  jax.profiler.start_trace(_TRACE_DIR.value, create_perfetto_trace=True)
  jax.block_until_ready(call())
  jax.profiler.stop_trace()
  totals, counts = collections.Counter(), collections.Counter()
  for e in _events(_TRACE_DIR.value):
    name = e.get("name", "")
    # Only XLA's ops: not the Python frames ("$file:line"), the jit call or the runtime's
    # executor spans, which contain the ops and would count them twice.
    if (e.get("ph") == "X" and "dur" in e and not name.startswith(("$", "PjitFunction"))
        and "::" not in name):
      totals[e["name"]] += e["dur"] / 1e3
      counts[e["name"]] += 1
  print(f"one step: {sum(totals.values()):.0f} ms in XLA ops", flush=True)
  print(f"{'ms':>9} {'calls':>6}  op", flush=True)
  for name, ms in totals.most_common(_TOP.value):
    print(f"{ms:9.1f} {counts[name]:6d}  {name[:110]}")


if __name__ == "__main__":
  app.run(main)
