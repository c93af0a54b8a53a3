"""CUHK Avenue, SSMTL++v2 with the published architecture (RGB, 64x64 crops, T1+T2+T3+T6).

  python -m ssmtl_jax.main --config=configs/avenue_v2.py --config.data.root=/path/to/avenue \
      --workdir=runs/avenue_v2

Layout: training_videos/01.avi, testing_videos/01.avi (or training/frames/<vid>/ folders);
ground truth: testing_label_mask/<n>_label.mat (key volLabel), optional tracks/<vid>.txt.
Runtime: a GPU job. Published SSMTL++v2: micro AUC 91.6, macro 92.5, RBDC 47.8, TBDC 85.2.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "avenue"
  c.data.root = "data/avenue"
  c.data.grayscale = False
  c.prep.detector_options = {"threshold": 18.0, "min_area": 1500}  # paper: 1500 px at 360x640
  c.eval.sigma = 7.0
  return c
