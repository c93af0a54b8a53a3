"""CUHK Avenue, the original SSMTL: T1 arrow of time + T2 motion irregularity + T3 middle box + T4
distillation from a teacher, on the plain 3D CNN (no CvT blocks), published trunk and crops.

  python -m ssmtl_jax.main --config=configs/avenue_ssmtl.py --config.data.root=/path/to/avenue \\
      --workdir=runs/avenue_ssmtl

T4's teacher is the built-in EfficientNet-Lite0 (common.apply_variant; README "Teacher tasks").
Data layout, detector settings and smoothing as configs/avenue_v2.py. Runtime: a GPU job.
Target: no SSMTL figure in DESIGN §7; SSMTL++v1 / v2 reach micro AUC 93.7 / 91.6, macro 91.7 / 92.5 on Avenue.
"""

from configs import avenue_v2
from configs import common


def get_config():
  return common.apply_variant(avenue_v2.get_config(), "ssmtl")
