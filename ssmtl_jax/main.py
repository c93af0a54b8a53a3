"""Entry point: `python -m ssmtl_jax.main --config=configs/demo.py --workdir=runs/demo`.

Score any video with a trained run: `--mode=score --video=<file|folder> --checkpoint=runs/demo`.

Flags only; all logic is importable (STYLE 1).
"""

import os
import sys

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

from ssmtl_jax import cli
from ssmtl_jax import workflow

_CONFIG = config_flags.DEFINE_config_file("config", None, "Configuration file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (records, checkpoints, metrics).")
_MODE = flags.DEFINE_enum("mode", "all", workflow.MODES, "Stage(s) to run.")
_VIDEO = flags.DEFINE_string("video", None, "--mode=score: a video file or frame folder to score.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "--mode=score: the workdir of a trained run (its best checkpoint).")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (TPU pods, multi-node GPU).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "--multihost: host:port of process 0 (auto-detected on TPU "
    "pods and SLURM when unset).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "--multihost: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "--multihost: this process's index.")
_VERIFY = flags.DEFINE_bool("verify", False,
                            "--mode=prep: also read every record's CRC of records that look up "
                            "to date, and rebuild the videos of any damaged shard.")
_DEBUG = flags.DEFINE_bool("debug", False, "Show the traceback of errors in the input "
                           f"(also {cli.DEBUG_ENV}=1); by default they print as one line.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # orbax logs every save/restore step at INFO; our own progress goes to stdout.
  logging.set_verbosity(logging.WARNING)
  if _MULTIHOST.value:
    import jax  # pylint: disable=g-import-not-at-top
    # CPU processes talk through gloo (GPU/TPU use their own collectives; this is ignored there).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  from ssmtl_jax import backend  # pylint: disable=g-import-not-at-top  (imports JAX)
  backend.configure_process()
  cli.run_with_user_errors(_run, sys.argv)


def _run():
  config = _CONFIG.value
  cli.split_list_overrides(config, sys.argv)
  workflow.run(config, _WORKDIR.value, _MODE.value, video=_VIDEO.value,
               checkpoint=_CHECKPOINT.value, verify=_VERIFY.value)


def check_config_path(argv: list[str]) -> str | None:
  """A readable message when `--config` names a file that does not exist (ml_collections would
  raise a long traceback from inside flag parsing), else None."""
  for i, arg in enumerate(argv):
    value = (arg.split("=", 1)[1] if arg.startswith("--config=")
             else argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    if value is None:
      continue
    path = value.split(":", 1)[0]  # `file.py:arg` passes an argument to get_config
    if not os.path.isfile(path):
      here = os.path.dirname(path) or "."
      known = sorted(f for f in os.listdir(here) if f.endswith(".py")) if os.path.isdir(here) else []
      return (f"--config={value}: {path} does not exist (expected a config file such as "
              f"configs/demo.py{'; found in ' + here + ': ' + ', '.join(known) if known else ''})")
  return None


if __name__ == "__main__":
  error = check_config_path(sys.argv)
  if error:
    cli.exit_with(error)
  app.run(main, flags_parser=cli.parse_flags)
