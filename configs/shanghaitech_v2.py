"""ShanghaiTech Campus, SSMTL++v2 with the published architecture (RGB, 64x64 crops).

  python -m ssmtl_jax.main --config=configs/shanghaitech_v2.py \
      --config.data.root=/path/to/shanghaitech --workdir=runs/shanghaitech_v2

Layout: training/videos/*.avi, testing/frames/<vid>/; test labels as
testing/frame_mask/<vid>.npy. Runtime: a GPU job (13 scenes, 274k training frames).
Published SSMTL++v2: micro AUC 83.8, macro 90.5, RBDC 47.1, TBDC 85.6.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "shanghaitech"
  c.data.root = "data/shanghaitech"
  c.data.grayscale = False
  c.prep.detector_options = {"threshold": 18.0, "min_area": 600}
  c.prep.train_frame_stride = 2
  c.eval.sigma = 7.0
  return c
