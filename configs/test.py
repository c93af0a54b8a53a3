"""Tiny configuration for CI: a few seconds of CPU, every stage of the pipeline exercised.

  python -m ssmtl_jax.main --config=configs/test.py --workdir=/tmp/ssmtl_test
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "synthetic_tiny"
  c.data.synthetic = True
  c.data.synthetic_options = {"num_train": 3, "num_test": 2, "num_frames": 24, "height": 48,
                              "width": 64, "seed": 0}
  c.prep.detector_options = {"threshold": 18.0, "min_area": 10}
  c.prep.half_window = 6
  c.prep.crop_size = 16
  c.prep.train_frame_stride = 2
  c.prep.test_frame_stride = 2
  c.model.trunk = "tiny"
  c.model.embed_dim = 16
  c.model.cvt_blocks = 1
  c.model.cvt_heads = 2
  c.model.head_width = 8
  # The CvT's depthwise convs as one grouped lax.conv: at these tiny sizes the train step
  # compiles in 3/4 of the time it takes with the 27-tap shift lowering (whose speed-up is for
  # real sizes); tests/test_models.py checks that both give the same outputs and gradients.
  c.model.depthwise_impl = "grouped"
  c.task_options.inpainting.passes = 2
  c.train.batch_size = 8
  c.train.num_steps = 3
  c.train.val_fraction = 0.34
  c.train.log_every_steps = 1
  c.eval.batch_size = 16
  c.eval.sigma = 1.0
  return c
