"""Bad input stops the command line in seconds, before prep and training, in one line.

One test per way a user's input went wrong in a trial from the outside: each runs the real
command (`python -m ssmtl_jax.main`) and asserts the message, exit status 1, no traceback, and
that no stage started.
"""

import ast
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io

from configs import test as test_config
from data_prep import prepare
from data_prep import readers
from data_prep import records
from data_prep import synthetic
from ssmtl_jax import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def _main(*args, python_prefix=()):
  """Runs the command line; returns (exit status, stdout, stderr)."""
  env = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
  done = subprocess.run([sys.executable, *python_prefix, "-m", "ssmtl_jax.main",
                         "--config=configs/test.py", *args], cwd=REPO, capture_output=True,
                        text=True, env=env, timeout=600)
  return done.returncode, done.stdout, done.stderr


def _assert_user_error(status, out, err, pattern):
  assert status == 1, (out, err)
  assert "Traceback" not in err, err
  lines = err.strip().splitlines()
  assert lines[-1].startswith("error: ") or lines[0].startswith("error: "), err
  assert re.search(pattern, err), err
  assert "prep training" not in out + err and "train:" not in out + err  # no stage started


@pytest.fixture(scope="module")
def ped2_layout(tmp_path_factory):
  """A tiny data set in UCSD Ped2's layout: JPEG frame folders and `ped2.mat`."""
  source = tmp_path_factory.mktemp("synthetic")
  options = test_config.get_config().data.synthetic_options.to_dict()
  synthetic.generate_dataset(str(source), **options)
  root = tmp_path_factory.mktemp("ped2")
  for split in ("training", "testing"):
    for video in sorted((source / split / "frames").iterdir()):
      out = root / split / "frames" / video.name
      out.mkdir(parents=True)
      for frame in sorted(video.iterdir()):
        cv2.imwrite(str(out / f"{frame.stem}.jpg"), cv2.imread(str(frame)))
  masks = sorted((source / "testing" / "frame_mask").glob("*.npy"))
  cells = []
  for mask in masks:
    labels = np.load(mask, allow_pickle=False)
    abnormal = np.flatnonzero(labels) + 1
    cells.append(np.array([[abnormal.min()], [abnormal.max()]], np.float64) if abnormal.size
                 else np.zeros((2, 0)))
  _write_mat(root / "ped2.mat", cells)
  return root


def _write_mat(path, cells):
  gt = np.empty((1, len(cells)), dtype=object)
  for i, cell in enumerate(cells):
    gt[0, i] = cell
  scipy.io.savemat(str(path), {"gt": gt})


def _copy(root, tmp_path):
  dest = tmp_path / "data"
  shutil.copytree(root, dest)
  return dest


def _ped2_args(root, workdir):
  return (f"--config.data.root={root}", "--config.data.synthetic=False",
          "--config.data.name=ped2", f"--workdir={workdir}")


def test_missing_ground_truth_stops_before_prep(ped2_layout, tmp_path):
  root = _copy(ped2_layout, tmp_path)
  (root / "ped2.mat").unlink()
  status, out, err = _main(*_ped2_args(root, tmp_path / "run"))
  _assert_user_error(status, out, err, r"No Ped2 labels under .*: expected ped2\.mat")
  assert not (tmp_path / "run" / "records").exists()


def test_ground_truth_for_fewer_videos_than_on_disk_stops_before_prep(ped2_layout, tmp_path):
  root = _copy(ped2_layout, tmp_path)
  mat = scipy.io.loadmat(str(root / "ped2.mat"))["gt"].reshape(-1)
  _write_mat(root / "ped2.mat", [mat[0]])
  status, out, err = _main(*_ped2_args(root, tmp_path / "run"))
  _assert_user_error(status, out, err, r"ped2\.mat labels 1 test videos but 2 were found on disk")


def test_truncated_jpeg_is_named_before_prep(ped2_layout, tmp_path):
  root = _copy(ped2_layout, tmp_path)
  frame = root / "training" / "frames" / "02" / "005.jpg"
  data = frame.read_bytes()
  frame.write_bytes(data[:len(data) // 2])
  status, out, err = _main(*_ped2_args(root, tmp_path / "run"))
  _assert_user_error(status, out, err, re.escape(str(frame)) + r" \(truncated JPEG")
  assert "damaged_frames=repeat_previous" in err


def test_truncated_jpeg_is_an_error_while_reading_or_replaced_when_asked(ped2_layout, tmp_path):
  root = _copy(ped2_layout, tmp_path)
  folder = root / "training" / "frames" / "01"
  clean = readers.read_video(folder)
  frame = folder / "003.jpg"
  frame.write_bytes(frame.read_bytes()[:200])
  with pytest.raises(readers.DamagedFrameError, match=re.escape(str(frame))):
    readers.read_video(folder)
  seen = []
  frames = readers.read_video(folder, on_damaged=lambda path, message: seen.append(path))
  assert seen == [frame]
  np.testing.assert_array_equal(frames[3], clean[2])  # the previous frame stands in
  np.testing.assert_array_equal(np.delete(frames, 3, 0), np.delete(clean, 3, 0))


def test_config_typo_gets_the_suggestion_only(tmp_path):
  status, out, err = _main("--config.train.batchsize=8", f"--workdir={tmp_path}")
  _assert_user_error(status, out, err, r'--config\.train\.batchsize: .*did you mean "batch_size"')
  assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
  status, _, err = _main("--config.train.batchsize=8", f"--workdir={tmp_path}", "--debug")
  assert status != 0 and "Traceback" in err


def test_batch_size_zero_stops_before_prep(tmp_path):
  status, out, err = _main("--config.train.batch_size=0", f"--workdir={tmp_path}")
  _assert_user_error(status, out, err, r"train\.batch_size=0: must be >= 1")
  assert not (tmp_path / "data").exists()  # not even the synthetic data was generated


def test_several_problems_are_listed_together(tmp_path):
  status, out, err = _main("--config.train.batch_size=0", "--config.train.learning_rate=-1",
                           "--config.tasks=arrow_of_time,jigsw", f"--workdir={tmp_path}")
  _assert_user_error(status, out, err, r"3 problems")
  assert "train.batch_size=0" in err and "learning_rate=-1" in err
  assert "unknown task 'jigsw'" in err


def test_appearance_memory_without_the_teacher_stops_before_prep(tmp_path):
  status, out, err = _main("--config.eval.appearance_memory=1", f"--workdir={tmp_path}")
  _assert_user_error(status, out, err, r"appearance_memory=1 scores the built-in teacher's "
                     r"features: set --config\.prep\.teachers\.distillation=efficientnet_lite0")


def _readme_task_lists():
  """Every `--config.tasks=` argument of the README, as the shell would pass it."""
  text = (REPO / "README.md").read_text()
  spans = re.findall(r"`([^`]*--config\.tasks=[^`]*)`", text)
  return [word for span in spans for word in shlex.split(span)
          if word.startswith("--config.tasks=")]


def _expected_tasks(form):
  value = form.split("=", 1)[1]
  if value[:1] in "([":
    return list(ast.literal_eval(value))
  return [v.strip() for v in value.split(",")]


def test_readme_list_overrides_give_lists(tmp_path):
  forms = _readme_task_lists()
  assert forms, "the README shows how to set a list of tasks"
  for form in forms:
    status, out, err = _main(form, "--config.data.synthetic_options.num_frames=16",
                             "--mode=prep", f"--workdir={tmp_path / 'run'}")
    assert status == 0, (form, err)
    tasks = json.loads((tmp_path / "run" / "config.json").read_text())["tasks"]
    assert tasks == _expected_tasks(form), (form, tasks)


def test_list_override_forms_agree():
  config = test_config.get_config()
  cli.split_list_overrides(config, ["--config.tasks=arrow_of_time, jigsaw"])
  assert config.tasks == ("arrow_of_time", "jigsaw")
  config = test_config.get_config()
  before = tuple(config.tasks)
  cli.split_list_overrides(config, ["--config.tasks=('a','b')", "--config.seed=3"])
  assert config.tasks == before  # literals are ml_collections' to parse


def test_full_disk_stops_before_prep(tmp_path):
  fake_disk = ("import collections, runpy, shutil, sys; "
               "shutil.disk_usage = lambda path: collections.namedtuple('u', 'total used free')"
               "(10**9, 10**9, 1000); sys.argv[0] = 'main'; "
               "runpy.run_module('ssmtl_jax.main', run_name='__main__')")
  done = subprocess.run([sys.executable, "-c", fake_disk, "--config=configs/test.py",
                         f"--workdir={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                        timeout=600)
  _assert_user_error(done.returncode, done.stdout, done.stderr,
                     r"records: 0\.00 GB free on its disk .* need about")
  assert not (tmp_path / "records").exists()


def test_disk_full_while_writing_names_the_file_and_keeps_finished_shards(tmp_path, monkeypatch):
  writer = records.CubeWriter(tmp_path, "training", records_per_shard=1)
  window = np.zeros((3, 4, 4, 1), np.uint8)
  writer.add(window, 0, 0, [0, 0, 1, 1], 2, -1, 1.0)  # one finished shard

  class FullDisk:
    """A file on a full disk: writes fail as the OS reports it, with no file name."""

    def __init__(self, path, mode):
      self.file = open(path, mode)  # pylint: disable=consider-using-with

    def write(self, data):
      raise OSError(28, "No space left on device")

    def flush(self):
      raise OSError(28, "No space left on device")

    def close(self):
      self.file.close()

  from data_prep import tfrecord  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(tfrecord, "open", FullDisk, raising=False)
  with pytest.raises(OSError) as raised:
    with writer:
      writer.add(window, 0, 1, [0, 0, 1, 1], 2, -1, 1.0)
  message = cli.user_message(raised.value)
  assert "no space left on the device writing" in message
  assert "training-00001.tfrecord" in message
  assert raised.value.__context__ is None or raised.value.__suppress_context__
  assert sorted(os.listdir(tmp_path)) == ["training-00000.tfrecord",
                                         "training-00000.tfrecord.index.npy"]


def test_prep_rebuilds_a_damaged_shard(tmp_path, capsys):
  config = test_config.get_config()
  config.data.root = str(tmp_path / "data")
  out = str(tmp_path / "records")
  prepare.prepare(config, out)
  manifest = records.read_manifest(out)
  shard = manifest["splits"]["training"]["shards"][0]
  path = os.path.join(out, shard)
  original = pathlib.Path(path).read_bytes()
  for damage in (lambda b: b[:len(b) // 2],                       # truncated
                 lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:]):  # one bit flipped
    pathlib.Path(path).write_bytes(damage(original))
    capsys.readouterr()
    prepare.prepare(config, out)
    printed = capsys.readouterr().out
    assert f"shard {shard} is damaged" in printed and "up to date" not in printed
    assert pathlib.Path(path).read_bytes() == original
  prepare.prepare(config, out, verify=True)
  assert "every record CRC verified" in capsys.readouterr().out


def test_finished_run_summary_has_no_nan(tmp_path, prepared):
  config = test_config.get_config()
  config.data.records_dir = str(prepared)
  config.data.root = str(prepared.parent / "data")
  from ssmtl_jax.train import loop as train_loop  # pylint: disable=import-outside-toplevel
  train_loop.train_and_evaluate(config, str(tmp_path))
  again = train_loop.train_and_evaluate(config, str(tmp_path))
  assert again["cubes_per_s"] is None
  json.dumps(again, allow_nan=False)
