"""Prep stage errors a user can act on."""

import os

import cv2
import numpy as np
import pytest

from configs import test as test_config
from data_prep import prepare


def _static_dataset(root):
  for split in ("training", "testing"):
    folder = os.path.join(root, split, "frames", "01")
    os.makedirs(folder)
    for i in range(12):
      cv2.imwrite(os.path.join(folder, f"{i:03d}.png"), np.full((32, 48, 3), 90, np.uint8))


def test_no_detections_anywhere_names_the_split_and_detector(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = str(tmp_path / "static")
  _static_dataset(config.data.root)
  with pytest.raises(ValueError, match=r"no objects were detected in any training video.*background"):
    prepare.prepare(config, str(tmp_path / "records"))


def test_missing_data_root_is_named(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    prepare.prepare(config, str(tmp_path / "records"))


def test_empty_data_root_setting_is_explained(tmp_path):
  config = test_config.get_config()
  config.data.synthetic = False
  config.data.root = ""
  with pytest.raises(ValueError, match="config.data.root"):
    prepare.prepare(config, str(tmp_path / "records"))
