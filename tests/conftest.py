"""Test setup: 8 fake CPU devices before JAX starts (STYLE 10), absl flags parsed for grain."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402  (after the env vars on purpose)

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """Records of the tiny test config, prepared once per module (subprocess training tests)."""
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from ssmtl_jax import workflow  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp("prep")
  workflow.run(test_config.get_config(), str(workdir), "prep")
  return workdir / "records"
