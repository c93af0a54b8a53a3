"""The command line's contract with a user: flag parsing, list overrides and one-line errors.

`ssmtl_jax/main.py` defines the flags; this module decides how the command line reads them and
how a failure reaches the user:

- A problem the user can fix (a config typo, a missing file, a value out of range, a full disk)
  prints as `error: <what, which file or field, how to fix>` on stderr with exit status 1, without
  a traceback. `--debug` (or `SSMTL_DEBUG=1`) re-raises it with the full traceback.
- An exception raised inside a library (a bug, not a bad input) keeps its traceback.
- `--config.tasks=arrow_of_time,jigsaw` (the comma form) means the list it looks like.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import sys
from typing import Callable, Sequence

from absl import flags

DEBUG_ENV = "SSMTL_DEBUG"
_PACKAGE_ROOTS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name) + os.sep
    for name in ("ssmtl_jax", "data_prep", "configs"))


class UserError(ValueError):
  """A problem with the user's input, stated as what is wrong, where and how to fix it."""


def debug_requested(argv: Sequence[str] = ()) -> bool:
  """`--debug` on the command line or `SSMTL_DEBUG=1`: show tracebacks of user errors."""
  if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "False"):
    return True
  return any(a in ("--debug", "--debug=true", "--debug=True", "--debug=1") for a in argv)


def raised_on_purpose(exc: BaseException) -> bool:
  """True when the innermost frame of `exc` is this project's own code (a `raise` of ours that
  explains a bad input), False when a library raised it (which deserves its traceback)."""
  if isinstance(exc, UserError):
    return True
  tb = exc.__traceback__
  if tb is None:
    return False
  while tb.tb_next is not None:
    tb = tb.tb_next
  return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_ROOTS)


def user_message(exc: BaseException) -> str | None:
  """The one-line text a user gets for `exc`, or None when it should keep its traceback."""
  if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
    where = f" writing {exc.filename}" if exc.filename else ""
    return (f"no space left on the device{where}; free some space or point "
            "--config.data.records_dir / --workdir at a larger disk")
  if not isinstance(exc, (UserError, ValueError, KeyError, FileNotFoundError, NotADirectoryError,
                          PermissionError, ModuleNotFoundError)):
    return None
  if not raised_on_purpose(exc):
    return None
  text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
  return str(text).strip()


def _override_for(key: str, argv: Sequence[str]) -> str | None:
  """The `--config.a.b=v` argument whose dotted path holds `key`, for naming it in an error."""
  for arg in argv:
    if arg.startswith("--config."):
      path = arg[len("--config."):].split("=", 1)[0]
      if key in path.split("."):
        return arg
  return None


def flag_error_message(exc: BaseException, argv: Sequence[str]) -> str:
  """One line for a flag the parser refused: the argument, the problem and the suggestion."""
  text = str(exc.args[0] if exc.args else exc)
  if isinstance(exc, (AttributeError, KeyError)):
    # ml_collections: "'batchsize'\nDid you mean "batch_size" instead of "batchsize"?"
    match = re.match(r"""^["']*\\?'?([^'"\\\n]+)""", text)
    key = match.group(1) if match else text
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    arg = _override_for(key, argv) or f"--config...{key}"
    hint = (f'did you mean "{suggestion.group(1)}"?' if suggestion
            else "see the config file for the field names")
    return f"{arg.split('=', 1)[0]}: the config has no field {key!r}; {hint}"
  return text.replace("\n", " ")


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing, with a one-line error instead of a traceback for a bad flag."""
  try:
    return flags.FLAGS(list(argv))
  except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as e:
    if debug_requested(argv):
      raise
    exit_with(flag_error_message(e, argv))
    raise  # unreachable: exit_with leaves


def split_list_overrides(config, argv: Sequence[str]) -> None:
  """Reads `--config.<field>=a,b` as the list `("a", "b")` for every tuple/list field given that
  way on the command line (ml_collections alone would make it the one item `"a,b"`)."""
  for arg in argv:
    if not arg.startswith("--config.") or "=" not in arg:
      continue
    path, raw = arg[len("--config."):].split("=", 1)
    *parents, name = path.split(".")
    holder = config
    for part in parents:
      holder = holder[part]
    value = holder[name]
    if not isinstance(value, (tuple, list)) or "," not in raw:
      continue
    if raw.lstrip()[:1] in "([":  # a Python literal; ml_collections already parsed it
      continue
    items = [item.strip().strip("'\"") for item in raw.split(",")]
    holder[name] = type(value)(item for item in items if item)


def exit_with(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


def run_with_user_errors(fn: Callable[[], object], argv: Sequence[str]) -> None:
  """Runs `fn`; a user's error ends the process with its one-line message and status 1."""
  try:
    fn()
  except Exception as e:  # pylint: disable=broad-except
    message = None if debug_requested(argv) else user_message(e)
    if message is None:
      raise
    exit_with(message)


def suggest(name: str, known: Sequence[str]) -> str:
  """` (did you mean X?)` for a misspelt name, else ``."""
  close = difflib.get_close_matches(name, list(known), n=1)
  return f" (did you mean {close[0]!r}?)" if close else ""

