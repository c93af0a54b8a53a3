"""Training telemetry: TensorBoard event files (tensorboardX, no TensorFlow needed).

`clu.metric_writers` would pull TensorFlow in for its summary writer (DESIGN §8); tensorboardX
writes the same event-file format on its own. Only process 0 writes, so a pod run gives one log.

  tensorboard --logdir <workdir>/tensorboard
"""

import glob
import os
from typing import Mapping

import jax

from data_prep import tfrecord


class ScalarWriter:
  """Writes scalars to `<workdir>/tensorboard` from process 0; a no-op elsewhere.

  Use as a context manager or call close(): events are flushed on close and every `flush_secs`.
  """

  def __init__(self, workdir: str, enabled: bool = True, flush_secs: int = 30):
    self._writer = None
    if enabled and jax.process_index() == 0:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.logdir = os.path.join(workdir, "tensorboard")
      self._writer = SummaryWriter(self.logdir, flush_secs=flush_secs)

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      self._writer.add_scalar(name, float(value), global_step=int(step))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
  """Reads the scalars back from the event files in `logdir` (no TensorBoard needed).

  Returns:
    tag -> [(step, value), ...] in write order. Event files are TFRecord-framed; the CRCs are
    checked by the project's reader.
  """
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out: dict[str, list[tuple[int, float]]] = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for payload in tfrecord.iter_records(path):
      event = event_pb2.Event.FromString(payload)
      for value in event.summary.value:
        out.setdefault(value.tag, []).append((event.step, value.simple_value))
  return out
