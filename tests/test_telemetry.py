"""TensorBoard event files written by the training telemetry."""

import os

from ssmtl_jax import telemetry


def test_scalars_reach_the_event_file(tmp_path):
  with telemetry.ScalarWriter(str(tmp_path)) as board:
    board.write(1, {"train/loss": 2.5, "train/cubes_per_s": 10.0})
    board.write(2, {"train/loss": 1.5})
  scalars = telemetry.read_scalars(str(tmp_path / "tensorboard"))
  assert scalars["train/loss"] == [(1, 2.5), (2, 1.5)]
  assert scalars["train/cubes_per_s"] == [(1, 10.0)]


def test_disabled_writer_writes_nothing(tmp_path):
  with telemetry.ScalarWriter(str(tmp_path), enabled=False) as board:
    board.write(1, {"train/loss": 1.0})
  assert not os.path.exists(tmp_path / "tensorboard")
