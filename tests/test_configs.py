"""Every shipped config loads, locks, and builds its tasks and model (by shape: no compile)."""

from ssmtl_jax import model_setup
from ssmtl_jax.train import optimizer
import importlib
import pathlib

import jax
import pytest

from configs import common

NAMES = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / "configs").glob("*.py")
               if p.stem not in ("__init__", "common"))


@pytest.mark.parametrize("name", NAMES)
def test_config_builds_its_model(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  config.lock()
  channels = 1 if config.data.grayscale else 3
  size = config.prep.crop_size
  # What data prep would record for T4 / T7 / T9 teachers: 80 classes, or 17 maps.
  manifest = {"teachers": {"distillation": {"shape": [80]}, "segmentation": {"shape": [size, size, 17]},
                           "pose": {"shape": [size, size, 17]}}}
  tasks = model_setup.attach_teacher_shapes(model_setup.build_tasks(config), manifest, "test")
  model = model_setup.build_model(config, tasks, channels)
  window = (2 * config.prep.half_window + 1, size, size, channels)
  shapes = jax.eval_shape(lambda: model_setup.init_variables(
      model, tasks, model_setup.batch_shapes(window, tasks), jax.random.PRNGKey(0)))
  assert {f"head_{t.name}" for t in tasks} <= set(shapes["params"])
  optimizer.build_optimizer(config, tasks)


def test_variants_set_the_papers_task_sets():
  assert NAMES.count("ped2_v1") and NAMES.count("avenue_v2_ssmctb")
  v1 = importlib.import_module("configs.shanghaitech_v1").get_config()
  assert v1.tasks[-1] == "pseudo_anomaly" and v1.task_options.pseudo_anomaly.start_epoch == 5
  assert v1.task_options.pseudo_anomaly.backbone_scale == -0.2
  ssmctb = importlib.import_module("configs.ubnormal_v2_ssmctb").get_config()
  assert ssmctb.model.ssmctb and ssmctb.tasks[-1] == "inpainting"
  ssmtl = importlib.import_module("configs.avenue_ssmtl").get_config()
  assert ssmtl.tasks[-1] == "distillation" and ssmtl.model.cvt_blocks == 0
  assert ssmtl.prep.teachers.distillation == "efficientnet_lite0"  # built in, offline
  with pytest.raises(ValueError, match="unknown variant"):
    common.apply_variant(common.get_config(), "v3")
