"""A new proxy task is one file and one registry line: a toy task written to a temporary module,
with its own option and its own head module, registered, trained and scored through the real
command path on `configs/test.py` with no other edit; and what the task interface refuses."""

import dataclasses
import importlib.util
import json
import os
import textwrap

import pytest

from configs import test as test_config
from ssmtl_jax import model_setup
from ssmtl_jax import tasks as tasks_lib
from ssmtl_jax import workflow
from ssmtl_jax.tasks import base
from ssmtl_jax.tasks import views as task_views

TOY_MODULE = '''
"""A toy proxy task: is the clip upside down? (Its own head: one dense layer on pooled features.)"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssmtl_jax.tasks import base


class PooledDense(nn.Module):
  """Global average pool, then one dense layer."""
  num_outputs: int
  width: int = 8
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    return nn.Dense(self.num_outputs, dtype=self.dtype)(x.mean(axis=(1, 2))).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class UpsideDown(base.Task):
  """Attributes:
    flip_share: the share of training clips that are turned upside down.
  """
  flip_share: float = 0.5

  name = "upside_down"
  head_module = PooledDense
  eval_view_name = "upside_down"

  def num_outputs(self, channels):
    return 2

  def train_view(self, batch, rng):
    cube = base.consecutive(batch[base.WINDOW], self.num_frames)
    label = jax.random.bernoulli(rng, self.flip_share, (cube.shape[0],)).astype(jnp.int32)
    flipped = jnp.where(label[:, None, None, None, None] == 1, cube[:, :, ::-1], cube)
    return flipped, label

  def loss(self, output, target):
    return base.cross_entropy(output, target)

  def eval_view(self, batch, rng):
    cube = base.consecutive(batch[base.WINDOW], self.num_frames)
    return cube, jnp.zeros((cube.shape[0],), jnp.int32)

  def score(self, output, target):
    return jax.nn.softmax(output)[:, 1]
'''


@pytest.fixture
def toy_task(tmp_path, monkeypatch):
  """The toy task's class, loaded from a module file of its own and registered."""
  path = tmp_path / "upside_down.py"
  path.write_text(textwrap.dedent(TOY_MODULE))
  spec = importlib.util.spec_from_file_location("upside_down", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  monkeypatch.setitem(tasks_lib.TASKS, "upside_down", None)  # removed again after the test
  del tasks_lib.TASKS["upside_down"]
  return tasks_lib.register(module.UpsideDown)


def test_a_registered_task_trains_and_scores_with_no_other_edit(toy_task, tmp_path):
  config = test_config.get_config()
  assert dict(config.task_options.upside_down) == {"flip_share": 0.5, "view_from": ""}
  config.task_options.upside_down.flip_share = 0.25  # its option, overridable like any other
  config.tasks = ("arrow_of_time", "upside_down")
  workdir = str(tmp_path / "run")
  workflow.run(config, workdir, "all")
  with open(os.path.join(workdir, "metrics.json")) as f:
    metrics = json.load(f)
  assert set(metrics["per_task_micro_auc"]) == {"arrow_of_time", "upside_down"}
  assert 0.0 <= metrics["per_task_micro_auc"]["upside_down"] <= 1.0
  with open(os.path.join(workdir, "train_log.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  assert any("loss/upside_down" in r for r in logged)
  setup = model_setup.ModelSetup(config, workdir)
  toy = next(t for t in setup.tasks if t.name == "upside_down")
  assert toy.flip_share == 0.25
  params = setup.abstract_state().params
  assert set(params["head_upside_down"]) == {"Dense_0"}  # the task's own head module


def test_register_refuses_a_second_class_under_one_name(toy_task):
  clash = dataclasses.make_dataclass("Clash", [], bases=(toy_task,), frozen=True)
  with pytest.raises(ValueError, match="named 'upside_down' is registered already"):
    tasks_lib.register(clash)
  assert tasks_lib.register(toy_task) is toy_task  # the same class again is fine


def test_runtime_fields_are_not_options():
  assert tasks_lib.TASKS["distillation"].default_options() == {
      "view_from": "", "teacher_logits": False, "use_features": True}
  t5 = tasks_lib.TASKS["pseudo_anomaly"]
  assert issubclass(t5, base.AdversarialTask) and t5.adversarial and not t5.scored
  assert t5.default_options() == {"view_from": "", "start_epoch": 5, "backbone_scale": -0.2}


def test_a_task_borrowing_another_eval_view_name_is_refused():
  @dataclasses.dataclass(frozen=True)
  class Borrower(base.ForwardCubeClassifier):
    name = "borrower"

    def eval_view(self, batch, rng):  # the forward cube reversed in time: not T1's view
      cube, target = super().eval_view(batch, rng)
      return cube[:, ::-1], target

  tasks = [tasks_lib.TASKS["arrow_of_time"](), Borrower()]
  with pytest.raises(ValueError, match="arrow_of_time and borrower both name the test-time view "
                                       "'forward'.*give borrower an eval_view_name of its own"):
    task_views.check_shared_eval_views(tasks, (7, 8, 8, 1))
  task_views.check_shared_eval_views(tasks[:1] + [tasks_lib.TASKS["motion_irregularity"]()],
                                     (7, 8, 8, 1))
