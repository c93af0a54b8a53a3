"""UBnormal, SSMTL++v2 with the published architecture (RGB, 64x64 crops).

  python -m ssmtl_jax.main --config=configs/ubnormal_v2.py --config.data.root=/path/to/ubnormal \
      --workdir=runs/ubnormal_v2

Expects the training / test videos arranged as training/videos/*.mp4 and testing/frames/<vid>/
(prep does not read the native Scene*/ video layout yet); the ground truth is read from the native
Scene*/<video>_annotations/ (data_prep/ubnormal.py). Runtime: a GPU job.
Published SSMTL++v2: micro AUC 56.0, macro 85.9, RBDC 20.33, TBDC 57.76.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "ubnormal"
  c.data.root = "data/ubnormal"
  c.data.grayscale = False
  c.prep.detector_options = {"threshold": 18.0, "min_area": 400}
  c.prep.train_frame_stride = 2
  c.eval.sigma = 5.0
  return c
