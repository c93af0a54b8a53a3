"""Test setup: 8 fake CPU devices before JAX starts (STYLE 10), absl flags parsed for grain."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402  (after the env vars on purpose)

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()
