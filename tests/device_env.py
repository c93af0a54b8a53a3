"""The environment of a subprocess that should see `devices` CPU devices (conftest.py gives this
process 8 fake ones through XLA_FLAGS)."""

import os

_FLAG = "--xla_force_host_platform_device_count"


def cpu_devices_env(devices: int, env=None) -> dict:
  """`env` (default: this process's) with XLA_FLAGS set for `devices` CPU devices; for one device
  the flag is dropped, as in a user's run. Filtered token by token (under pytest-xdist the flag
  can appear twice), and XLA_FLAGS is removed rather than left blank, which XLA would read as a
  file name."""
  env = dict(os.environ if env is None else env)
  flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_FLAG)]
  if devices != 1:
    flags.append(f"{_FLAG}={devices}")
  if flags:
    env["XLA_FLAGS"] = " ".join(flags)
  else:
    env.pop("XLA_FLAGS", None)
  return env
