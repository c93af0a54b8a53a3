"""The appearance memory (k-NN distance to the training objects' teacher features) and T4's
feature target, with values worked out by hand."""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from data_prep import prepare
from data_prep import records
from ssmtl_jax import model_setup
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax import workflow
from ssmtl_jax.data import cube_source
from ssmtl_jax.eval import appearance_memory
from ssmtl_jax.eval import evaluate
from ssmtl_jax.eval import metrics
from ssmtl_jax.tasks import base


def test_knn_distance_by_hand():
  memory = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], np.float32)
  queries = np.array([[0.0, 0.0], [3.0, 0.0]], np.float32)
  # Query 0: distances 0, 5, 10. Query 1: 3, 4, sqrt(9 + 64) = 8.544.
  np.testing.assert_allclose(appearance_memory.knn_distance(queries, memory, 1), [0.0, 3.0],
                             atol=1e-6)
  np.testing.assert_allclose(appearance_memory.knn_distance(queries, memory, 2), [5.0, 4.0],
                             atol=1e-6)
  np.testing.assert_allclose(appearance_memory.knn_distance(queries, memory, 3),
                             [10.0, np.sqrt(73.0)], atol=1e-5)
  with pytest.raises(ValueError, match="fewer than k=4"):
    appearance_memory.knn_distance(queries, memory, 4)
  with pytest.raises(ValueError, match="k must be >= 1"):
    appearance_memory.knn_distance(queries, memory, 0)


def test_reference_scores_skip_the_objects_own_video():
  # Video 0 holds two identical objects; scored within its own video each would be 0.
  features = np.array([[1.0, 0.0], [1.0, 0.0], [4.0, 4.0], [1.0, 2.0]], np.float32)
  memory = appearance_memory.AppearanceMemory(features, np.array([0, 0, 1, 2]))
  # Row 0 -> rows 2, 3: sqrt(9 + 16) = 5, 2 -> 2. Row 2 -> rows 0, 1, 3: 5, 5, sqrt(9 + 4).
  # Row 3 -> rows 0, 1, 2: 2, 2, sqrt(9 + 4).
  np.testing.assert_allclose(memory.reference_scores(), [2.0, 2.0, np.sqrt(13.0), 2.0],
                             atol=1e-5)
  np.testing.assert_allclose(memory.score(np.array([[1.0, 0.5]], np.float32)), [0.5], atol=1e-6)
  with pytest.raises(ValueError, match="at least 2 training videos"):
    appearance_memory.AppearanceMemory(features, np.zeros(4, int)).reference_scores()


def test_memory_saves_and_loads(tmp_path):
  memory = appearance_memory.AppearanceMemory(np.eye(3, dtype=np.float32), np.array([0, 1, 2]),
                                              k=2)
  path = str(tmp_path / appearance_memory.MEMORY_FILE)
  memory.save(path)
  loaded = appearance_memory.AppearanceMemory.load(path)
  assert loaded.k == 2
  np.testing.assert_array_equal(loaded.memory, memory.memory)
  np.testing.assert_array_equal(loaded.videos, memory.videos)
  assert os.listdir(tmp_path) == [appearance_memory.MEMORY_FILE]


def test_distillation_learns_probabilities_and_features():
  task = tasks_lib.TASKS["distillation"]().with_teacher_shapes(
      {"distillation": (2,), "distillation.features": (3,)})
  assert task.target_shape == (2,) and task.feature_shape == (3,)
  assert task.num_outputs(1) == 5
  assert task.teacher_targets() == {"teacher/distillation": (2,),
                                    "teacher/distillation.features": (3,)}
  window = jnp.zeros((1, 7, 4, 4, 1))
  batch = {base.WINDOW: window, "teacher/distillation": jnp.array([[1.0, 0.0]]),
           "teacher/distillation.features": jnp.array([[1.0, 2.0, 3.0]])}
  _, target = task.train_view(batch, None)
  np.testing.assert_allclose(target, [[1.0, 0.0, 1.0, 2.0, 3.0]])
  # Logits (0, 0) -> probabilities (0.5, 0.5): L1 to (1, 0) is 1. Features (1, 1, 1) against
  # (1, 2, 3): mean |error| = (0 + 1 + 2) / 3 = 1. Loss = 1 + 1.
  output = jnp.array([[0.0, 0.0, 1.0, 1.0, 1.0]])
  np.testing.assert_allclose(task.loss(output, target), [2.0], rtol=1e-6)
  np.testing.assert_allclose(task.score(output, target), [2.0], rtol=1e-6)
  off = tasks_lib.TASKS["distillation"](use_features=False).with_teacher_shapes(
      {"distillation": (2,), "distillation.features": (3,)})
  assert off.feature_shape == () and off.num_outputs(1) == 2


def test_missing_teacher_names_the_flag():
  with pytest.raises(ValueError, match="prep.teachers.distillation=efficientnet_lite0"):
    model_setup.attach_teacher_shapes(
        [tasks_lib.TASKS["distillation"]()], {"teachers": {}}, "records/")


@pytest.fixture(scope="module")
def memory_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("memory_run"))
  config = test_config.get_config()
  config.tasks = ("arrow_of_time", "distillation")
  config.prep.teachers.distillation = "efficientnet_lite0"
  config.prep.teacher_input_size = 32
  config.eval.appearance_memory = 1
  workflow.run(config, workdir, "all")
  return config, workdir


def test_eval_scores_with_the_memory(memory_run):
  config, workdir = memory_run
  with open(os.path.join(workdir, "metrics.json")) as f:
    metrics = json.load(f)
  assert set(metrics["per_task_micro_auc"]) == {"arrow_of_time", "distillation",
                                                appearance_memory.NAME}
  stats = metrics["score_stats"][appearance_memory.NAME]
  assert set(stats) == {"mean", "std"} and stats["mean"] > 0 and stats["std"] > 0
  scores = np.load(os.path.join(workdir, "eval", "object_scores.npz"))
  memory_scores = scores[f"task_{appearance_memory.NAME}"]
  assert memory_scores.shape == scores["object_score"].shape and np.all(memory_scores >= 0)
  assert os.path.isfile(os.path.join(workdir, appearance_memory.MEMORY_FILE))
  # The reference objects behind score_stats are saved, and give exactly those statistics.
  reference = np.load(os.path.join(workdir, "eval", evaluate.REFERENCE_SCORES_FILE))
  for name, value in metrics["score_stats"].items():
    ref = reference[f"task_{name}"]
    np.testing.assert_allclose([ref.mean(), ref.std()], [value["mean"], value["std"]], rtol=1e-5)


def test_score_mode_uses_the_saved_memory(memory_run, tmp_path):
  config, workdir = memory_run
  from ssmtl_jax.eval import score_video  # pylint: disable=g-import-not-at-top
  video = os.path.join(config.data.root, "testing", "frames", "01")  # the run set data.root
  summary = score_video.score_video(config, video, workdir, str(tmp_path))
  assert summary["num_objects"] > 0 and summary["standardized"]
  os.remove(os.path.join(workdir, appearance_memory.MEMORY_FILE))
  with pytest.raises(FileNotFoundError, match="appearance_memory.npz.*--mode=eval"):
    score_video.score_video(config, video, workdir, str(tmp_path))


def test_memory_share_of_the_object_score():
  scores = {"a": np.array([1.0]), "b": np.array([3.0]), appearance_memory.NAME: np.array([8.0])}
  # Equal shares: (1 + 3 + 8) / 3 = 4.
  np.testing.assert_allclose(evaluate.combine_scores(scores, None), [4.0])
  assert evaluate.score_weights(scores, -1.0) is None
  # The memory gets 0.75, the two tasks 0.125 each: 0.125 + 0.375 + 6 = 6.5.
  weights = evaluate.score_weights(scores, 0.75)
  assert weights == {"a": 0.125, "b": 0.125, appearance_memory.NAME: 0.75}
  np.testing.assert_allclose(evaluate.combine_scores(scores, None, weights), [6.5])
  # Standardised first: a -> (1 - 0) / 1, b -> (3 - 1) / 2, memory -> (8 - 4) / 2.
  stats = {"a": (0.0, 1.0), "b": (1.0, 2.0), appearance_memory.NAME: (4.0, 2.0)}
  np.testing.assert_allclose(evaluate.combine_scores(scores, stats, weights),
                             [0.125 * 1 + 0.125 * 1 + 0.75 * 2])
  assert evaluate.score_weights({"a": scores["a"]}, 0.75) is None  # no memory: equal


def test_unscored_tasks_leave_the_object_score():
  scores = {"a": np.array([1.0, 5.0]), "b": np.array([3.0, -1.0]),
            appearance_memory.NAME: np.array([8.0, 2.0])}
  # "b" unscored, equal shares: (1 + 8) / 2 and (5 + 2) / 2.
  weights = evaluate.score_weights(scores, -1.0, ("b",))
  assert weights == {"a": 1.0, "b": 0.0, appearance_memory.NAME: 1.0}
  np.testing.assert_allclose(evaluate.combine_scores(scores, None, weights), [4.5, 3.5])
  # With the memory's share 0.75, "a" is the only task left and takes the other 0.25.
  weights = evaluate.score_weights(scores, 0.75, ("b",))
  assert weights == {"a": 0.25, "b": 0.0, appearance_memory.NAME: 0.75}
  np.testing.assert_allclose(evaluate.combine_scores(scores, None, weights),
                             [0.25 * 1 + 0.75 * 8, 0.25 * 5 + 0.75 * 2])
  # Only the memory left: it is the object score.
  weights = evaluate.score_weights(scores, 0.75, ("a", "b"))
  np.testing.assert_allclose(evaluate.combine_scores(scores, None, weights), [8.0, 2.0])
  with pytest.raises(ValueError, match="'c'.*does not score"):
    evaluate.score_weights(scores, -1.0, ("c",))
  with pytest.raises(ValueError, match="leaves no score"):
    evaluate.score_weights(scores, -1.0, ("a", "b", appearance_memory.NAME))
  # A video without objects has no scores: nothing to weigh, whatever is unscored.
  assert evaluate.score_weights({}, 0.75, ("b",)) is None


def test_eval_with_unscored_task_recombines_the_saved_scores(memory_run, tmp_path):
  config, trained = memory_run
  workdir = str(tmp_path / "run")
  shutil.copytree(trained, workdir)  # the other tests keep the run as trained
  config = config.copy_and_resolve_references()
  config.eval.unscored_tasks = ("arrow_of_time",)
  config.eval.overlay_videos = 0
  result = workflow.run(config, workdir, "eval")
  saved = np.load(os.path.join(workdir, "eval", "object_scores.npz"))
  reference = np.load(os.path.join(workdir, "eval", evaluate.REFERENCE_SCORES_FILE))
  # Worked by hand: the mean of the two other scores, each standardised on the reference.
  expected = np.mean([(saved[f"task_{n}"] - reference[f"task_{n}"].mean())
                      / reference[f"task_{n}"].std()
                      for n in ("distillation", appearance_memory.NAME)], axis=0)
  np.testing.assert_allclose(saved["object_score"], expected, rtol=1e-5, atol=1e-6)
  # The unscored task is still scored and reported alone.
  assert "arrow_of_time" in result["per_task_micro_auc"]
  assert "task_arrow_of_time" in saved.files and result["unscored_tasks"] == ["arrow_of_time"]
  with open(os.path.join(workdir, "summary.md")) as f:
    assert "| arrow_of_time (not in the object score) |" in f.read()


def test_unscored_tasks_are_checked_before_work():
  config = test_config.get_config()
  config.eval.unscored_tasks = ("inpaintin",)
  with pytest.raises(ValueError, match="unscored_tasks names 'inpaintin'"):
    workflow.run(config, "/nonexistent/never/written", "all")
  config.eval.unscored_tasks = tuple(config.tasks)
  with pytest.raises(ValueError, match="leaves no score"):
    workflow.run(config, "/nonexistent/never/written", "all")


def test_eval_settings_are_checked_before_work():
  config = test_config.get_config()
  config.eval.appearance_memory_weight = 1.5
  with pytest.raises(ValueError, match="appearance_memory_weight=1.5"):
    workflow.run(config, "/nonexistent/never/written", "all")
  config = test_config.get_config()
  config.eval.appearance_memory = -2
  with pytest.raises(ValueError, match="appearance_memory=-2"):
    workflow.run(config, "/nonexistent/never/written", "all")


def test_memory_finds_the_synthetic_anomalies(tmp_path):
  """End to end, prep to frame AUC, with no training: on a small synthetic walkway (a cyclist and
  a vehicle among walkers) the memory alone ranks abnormal frames far above chance."""
  config = test_config.get_config()
  config.data.synthetic_options = {"num_train": 3, "num_test": 2, "num_frames": 48,
                                   "height": 96, "width": 128, "seed": 0}
  config.prep.detector_options = {"threshold": 18.0, "min_area": 40}
  config.prep.teachers.distillation = "efficientnet_lite0"
  config.prep.teacher_input_size = 64
  workflow.run(config, str(tmp_path), "prep")
  records_dir = str(tmp_path / "records")
  manifest = records.read_manifest(records_dir)
  entry = manifest["splits"]["testing"]
  key = base.features_key(appearance_memory.TEACHER)
  train = cube_source.CubeSource(records_dir, "training")
  test = cube_source.CubeSource(records_dir, "testing")
  memory = appearance_memory.AppearanceMemory(appearance_memory.read_features(train, key),
                                              train.metadata()["video_id"])
  scores = memory.score(appearance_memory.read_features(test, key))
  meta = test.metadata()
  frame_scores = {
      name: evaluate.video_frame_scores(
          n, entry["frame_stride"], meta["frame"][meta["video_id"] == v],
          scores[meta["video_id"] == v], None, entry["frame_shapes"][v], config.eval, False)
      for v, (name, n) in enumerate(zip(entry["videos"], entry["frame_counts"]))}
  labels = prepare.ground_truth(config, manifest).frame_labels
  assert metrics.micro_auc(labels, frame_scores) > 0.85
