"""grain pipeline over cube records: seeded global shuffle, worker processes, eval padding."""

import numpy as np
import pytest

from data_prep import records
from ssmtl_jax.data import cube_source
from ssmtl_jax.data import input_pipeline


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("records"))
  with records.CubeWriter(out, "training", records_per_shard=7) as writer:
    for video in range(3):
      for frame in range(10):
        # Each window holds its own (video, frame) so batches can be traced back to records.
        window = np.full((3, 4, 4, 1), video * 10 + frame, np.uint8)
        writer.add(window, video, frame, [0, 0, 4, 4], 2, -1, 1.0)
    result = writer.close()
  records.write_manifest(out, {"window_length": 3, "crop_size": 4, "channels": 1,
                               "splits": {"training": records.split_entry(
                                   result, ["a", "b", "c"], [10, 10, 10])},
                               "prep_config": {}})
  return out


def _ids(batch):
  return batch["window"][:, 0, 0, 0, 0].tolist()


def _take(ds, n):
  it = iter(ds)
  return [next(it) for _ in range(n)]


def test_split_videos_holds_out_whole_videos_deterministically():
  train, val = input_pipeline.split_videos(16, 0.15, seed=0)
  assert len(val) == 2 and len(train) == 14
  assert sorted(train + val) == list(range(16))
  assert input_pipeline.split_videos(16, 0.15, seed=0) == (train, val)
  assert input_pipeline.split_videos(16, 0.0, seed=0) == (list(range(16)), [])
  with pytest.raises(ValueError, match="val_fraction"):
    input_pipeline.split_videos(16, 1.0, seed=0)


def test_train_batches_cover_only_the_chosen_videos_and_repeat(records_dir):
  batches = _take(input_pipeline.train_dataset(records_dir, [0, 2], 4, seed=1), 10)
  ids = sum((_ids(b) for b in batches), [])
  assert all(set(b) == {"window"} for b in batches)
  assert all(b["window"].shape == (4, 3, 4, 4, 1) and b["window"].dtype == np.uint8
             for b in batches)
  assert set(ids) <= set(range(0, 10)) | set(range(20, 30))
  # 40 draws over 20 records: an epoch is a permutation, then it repeats.
  assert sorted(ids[:20]) == list(range(0, 10)) + list(range(20, 30))


def test_shuffle_is_a_pure_function_of_the_seed(records_dir):
  a = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 5, seed=3), 4)
  b = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 5, seed=3), 4)
  c = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 5, seed=4), 4)
  assert [_ids(x) for x in a] == [_ids(x) for x in b]
  assert [_ids(x) for x in a] != [_ids(x) for x in c]


def test_worker_processes_give_the_same_batches(records_dir):
  serial = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 5, seed=3), 6)
  workers = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 5, seed=3,
                                               num_workers=2), 6)
  assert [_ids(x) for x in serial] == [_ids(x) for x in workers]


def test_process_slices_partition_the_global_order(records_dir):
  full = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 2, seed=0), 5)
  p0 = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 1, seed=0, process_index=0,
                                          process_count=2), 5)
  p1 = _take(input_pipeline.train_dataset(records_dir, [0, 1, 2], 1, seed=0, process_index=1,
                                          process_count=2), 5)
  assert [_ids(b) for b in full] == [_ids(a) + _ids(b) for a, b in zip(p0, p1)]


def test_too_few_records_for_a_batch_is_a_clear_error(records_dir):
  with pytest.raises(ValueError, match="fewer than one global batch"):
    input_pipeline.train_dataset(records_dir, [0], 16, seed=0)


def test_eval_batches_pad_the_last_batch_and_mark_it(records_dir):
  source = cube_source.CubeSource(records_dir, "training")
  batches = list(input_pipeline.eval_batches(source, 8, with_boxes=True))
  assert len(batches) == 4
  batch, valid, idx, boxes = batches[-1]
  assert batch["window"].shape == (8, 3, 4, 4, 1) and boxes.shape == (8, 4)
  assert valid.tolist() == [True] * 6 + [False] * 2
  assert idx[:6].tolist() == list(range(24, 30)) and idx[6:].tolist() == [-1, -1]
  seen = sum((_ids(b)[:int(v.sum())] for b, v, _, _ in batches), [])
  assert seen == [v * 10 + f for v in range(3) for f in range(10)]


def test_teacher_targets_travel_with_their_windows(tmp_path):
  out = str(tmp_path)
  with records.CubeWriter(out, "training") as writer:
    for frame in range(6):
      writer.add(np.full((3, 4, 4, 1), frame, np.uint8), 0, frame, [0, 0, 4, 4], 2, -1, 1.0,
                 {"distillation": np.array([frame, 0.5, 0.25]), "pose": np.zeros((4, 4, 2))})
    result = writer.close()
  records.write_manifest(out, {"window_length": 3, "crop_size": 4, "channels": 1,
                               "splits": {"training": records.split_entry(result, ["a"], [6])},
                               "prep_config": {}})
  (batch,) = _take(input_pipeline.train_dataset(out, [0], 3, seed=0,
                                                teacher_keys=["teacher/distillation"]), 1)
  assert set(batch) == {"window", "teacher/distillation"}  # only the keys asked for
  assert batch["teacher/distillation"].dtype == np.float16
  np.testing.assert_array_equal(batch["teacher/distillation"][:, 0], _ids(batch))
  (batch, valid, _), = list(input_pipeline.eval_batches(
      cube_source.CubeSource(out, "training"), 8, teacher_keys=["teacher/pose"]))
  assert batch["teacher/pose"].shape == (8, 4, 4, 2) and valid.sum() == 6
  with pytest.raises(ValueError, match="has no .*teacher/segmentation.*prep.teachers"):
    _take(input_pipeline.train_dataset(out, [0], 3, seed=0,
                                       teacher_keys=["teacher/segmentation"]), 1)
