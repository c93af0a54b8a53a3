"""UBnormal, the original SSMTL: T1 arrow of time + T2 motion irregularity + T3 middle box + T4
distillation from a teacher, on the plain 3D CNN (no CvT blocks), published trunk and crops.

  python -m ssmtl_jax.main --config=configs/ubnormal_ssmtl.py --config.data.root=/path/to/ubnormal \\
      --workdir=runs/ubnormal_ssmtl

T4's teacher is the built-in EfficientNet-Lite0 (common.apply_variant; README "Teacher tasks").
Data layout, detector settings and smoothing as configs/ubnormal_v2.py. Runtime: a GPU job.
Target: no SSMTL figure in DESIGN §7; SSMTL++v1 / v2 reach micro AUC 62.1 / 56.0, macro 86.5 / 85.9 on UBnormal.
"""

from configs import common
from configs import ubnormal_v2


def get_config():
  return common.apply_variant(ubnormal_v2.get_config(), "ssmtl")
