"""The embedded demo: a synthetic walkway scene (walkers; cyclists, vehicles and erratic walkers
as anomalies) generated on the spot, prepped (with the built-in appearance teacher), trained with
the SSMTL++v2 tasks plus T4 distillation of that teacher, evaluated with the appearance memory
beside the task scores.

  python -m ssmtl_jax.main --config=configs/demo.py --workdir=runs/demo

No download. Runtime and AUC measured on a 2-core CPU: see README.md / benchmarks/RESULTS.md.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "synthetic_demo"
  c.data.synthetic = True
  # Ten normal training videos, chosen against six on the development sets (benchmarks/RESULTS.md,
  # "Synthetic demo"); the training budget in steps stays about the same (epochs below).
  c.data.synthetic_options = {"num_train": 10, "num_test": 4, "num_frames": 120, "height": 120,
                              "width": 160, "seed": 0}
  c.prep.detector_options = {"threshold": 18.0, "min_area": 40}
  c.prep.crop_size = 24
  c.prep.train_frame_stride = 2
  c.prep.test_frame_stride = 1
  c.model.trunk = "shallow_narrow"
  c.model.embed_dim = 32
  c.model.cvt_blocks = 1
  c.model.cvt_heads = 4
  c.model.head_width = 16
  c.train.batch_size = 32
  # About as many steps as 20 epochs of five training videos (chosen on the development sets).
  c.train.epochs = 12
  # Two of the ten training videos are held out: they select the checkpoint and give the statistics
  # that standardise each task's score (chosen on the development sets, as above).
  c.train.val_fraction = 0.2
  c.eval.batch_size = 64
  # Pretrained appearance knowledge: the built-in teacher (prep) and the appearance memory (eval),
  # chosen on a development set made by the same generator with another seed
  # (benchmarks/RESULTS.md, "Synthetic demo").
  c.prep.teachers.distillation = "efficientnet_lite0"
  c.eval.appearance_memory = 1
  c.tasks = tuple(c.tasks) + ("distillation",)  # T4 learns the teacher's probabilities + features
  # T6 trains with the others but its score stays out of the object score (chosen on both
  # development sets: benchmarks/RESULTS.md, "Which scores form the object score").
  c.eval.unscored_tasks = ("inpainting",)
  return c
