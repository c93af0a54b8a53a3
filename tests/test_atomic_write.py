"""`data_prep.atomic_write`: a file appears whole or not at all, and nothing temporary stays."""

import json
import os

import numpy as np
import pytest

from data_prep import atomic_write


def test_writers_round_trip_and_leave_only_the_file(tmp_path):
  atomic_write.write_text(tmp_path / "a" / "t.txt", "hello\n")  # makes the folder
  atomic_write.write_json(tmp_path / "j.json", {"x": [1, 2]}, indent=1)
  atomic_write.save_npy(tmp_path / "n.npy", np.arange(3))
  atomic_write.save_npz(tmp_path / "z.npz", a=np.ones(2), b=np.zeros(1))
  assert (tmp_path / "a" / "t.txt").read_text() == "hello\n"
  assert json.loads((tmp_path / "j.json").read_text()) == {"x": [1, 2]}
  np.testing.assert_array_equal(np.load(tmp_path / "n.npy", allow_pickle=False), np.arange(3))
  with np.load(tmp_path / "z.npz", allow_pickle=False) as z:  # np.savez added no second .npz
    assert sorted(z.files) == ["a", "b"]
  assert sorted(os.listdir(tmp_path)) == ["a", "j.json", "n.npy", "z.npz"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
  path = tmp_path / "metrics.json"
  atomic_write.write_json(path, {"old": 1})
  with pytest.raises(TypeError):
    atomic_write.write_json(path, {"new": object()})  # not JSON: fails half-way through
  assert json.loads(path.read_text()) == {"old": 1}
  assert os.listdir(tmp_path) == ["metrics.json"]


def test_temporary_path_keeps_the_extension_and_replaces_a_folder(tmp_path):
  (tmp_path / "frames").mkdir()
  (tmp_path / "frames" / "stale.png").write_text("x")
  with atomic_write.temporary_path(tmp_path / "frames") as tmp:
    os.mkdir(tmp)
    with open(os.path.join(tmp, "000.png"), "w") as f:
      f.write("y")
  assert os.listdir(tmp_path / "frames") == ["000.png"]
  with atomic_write.temporary_path(tmp_path / "v.mp4") as tmp:
    assert tmp.endswith(".mp4") and os.path.dirname(tmp) == str(tmp_path)
    with pytest.raises(RuntimeError):
      with atomic_write.temporary_path(tmp_path / "w.mp4") as inner:
        open(inner, "w").close()
        raise RuntimeError("encoder failed")
    open(tmp, "w").close()
  assert sorted(os.listdir(tmp_path)) == ["frames", "v.mp4"]
