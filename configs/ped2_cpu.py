"""UCSD Ped2, SSMTL++v2 (T1+T2+T3+T6, 3D CNN + 3D CvT) sized for a 2-core CPU.

  python -m ssmtl_jax.main --config=configs/ped2_cpu.py --config.data.root=../shared/data/ped2 \
      --workdir=runs/ped2

Same method as configs/ped2_v2.py with a smaller, faster setting: 32x32 crops, a narrow trunk,
one CvT block, narrow heads, training cubes from every 4th frame and test scores at every 2nd
frame (the frames between are interpolated); 20 epochs, the papers' count (the validation loss
still fell at the last step of the 5- and 10-epoch runs, and again of the 20-epoch one).
Measured on a 2-core CPU (model.conv_impl=auto, 3D convs through OpenVINO): 60 min 11 s in all,
micro AUC 83.5 %, macro 95.3 % (benchmarks/RESULTS.md, run 4).
Published (GPU, full size): SSMTL micro AUC 97.5, macro 99.8.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "ped2"
  c.data.root = "data/ped2"
  c.prep.crop_size = 32
  c.prep.train_frame_stride = 4
  c.prep.test_frame_stride = 2
  c.model.trunk = "shallow_narrow"
  c.model.embed_dim = 64
  c.model.cvt_blocks = 1
  c.model.cvt_heads = 4
  c.model.head_width = 16
  c.train.batch_size = 64
  c.train.epochs = 20
  c.eval.batch_size = 128
  return c
