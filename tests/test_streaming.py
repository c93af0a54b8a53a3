"""Streaming scoring: regrouping into fixed batches, the host thread, and equality with the
serial path when the detector needs no more than the previous frame (optical flow)."""

import jax
import numpy as np
import pytest

from configs import test as test_config
from data_prep import readers
from data_prep import synthetic
from ssmtl_jax import model_setup
from ssmtl_jax.eval import score_video
from ssmtl_jax.eval import streaming


def _rows(start, n):
  return {"window": np.arange(start, start + n)[:, None].astype(np.uint8),
          "centre": np.arange(start, start + n), "box": np.zeros((n, 4), np.float32)}


def test_fixed_batches_regroup_rows_in_order_and_pad_the_last():
  chunks = [_rows(0, 3), _rows(3, 0), _rows(3, 6), _rows(9, 2)]  # 11 rows, one empty chunk
  batches = list(streaming.fixed_batches(iter(chunks), 4))
  assert [b[0]["window"].shape for b in batches] == [(4, 1)] * 3
  assert [b[1].sum() for b in batches] == [4, 4, 3]
  centres = np.concatenate([side["centre"][valid] for _, valid, side in batches])
  np.testing.assert_array_equal(centres, np.arange(11))
  np.testing.assert_array_equal(batches[-1][0]["window"][:3, 0], [8, 9, 10])


def test_in_background_keeps_order_and_reraises_errors():
  assert list(streaming.in_background(iter(range(10)), depth=2)) == list(range(10))

  def failing():
    yield 1
    raise ValueError("corrupt frame 7 in clip.avi")

  got = []
  with pytest.raises(ValueError, match="corrupt frame 7 in clip.avi"):
    for item in streaming.in_background(failing()):
      got.append(item)
  assert got == [1]


def test_streamed_flow_scores_equal_the_serial_ones(tmp_path):
  synthetic.generate_dataset(tmp_path, num_train=1, num_test=1, num_frames=30, height=48,
                             width=64, seed=3)
  frames = readers.read_video(next(iter(readers.list_split_videos(tmp_path, "testing").values())))
  config = test_config.get_config()
  config.prep.detector = "flow"
  config.prep.detector_options = {"min_area": 10}
  scorer = score_video.VideoScorer(config)
  p = config.prep
  window = (2 * p.half_window + 1, p.crop_size, p.crop_size, scorer.channels)
  variables = model_setup.init_variables(scorer.model, scorer.tasks, {"window": window},
                                         jax.random.PRNGKey(0))
  serial = scorer.task_scores(variables, frames, chunk_frames=0)
  streamed = scorer.task_scores(variables, frames, chunk_frames=7)
  assert len(serial[1]) > 10  # enough objects to span several batches and chunks
  np.testing.assert_array_equal(streamed[1], serial[1])
  np.testing.assert_array_equal(streamed[2], serial[2])
  for task, scores in serial[0].items():
    np.testing.assert_allclose(streamed[0][task], scores, rtol=1e-5, atol=1e-6, err_msg=task)
