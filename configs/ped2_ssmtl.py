"""UCSD Ped2, the original SSMTL: T1 arrow of time + T2 motion irregularity + T3 middle box + T4
distillation from a teacher, on the plain 3D CNN (no CvT blocks), published trunk and crops.

  python -m ssmtl_jax.main --config=configs/ped2_ssmtl.py --config.data.root=/path/to/ped2 \\
      --workdir=runs/ped2_ssmtl

T4's teacher is the built-in EfficientNet-Lite0 (common.apply_variant; README "Teacher tasks").
Data layout, detector settings and smoothing as configs/ped2_v2.py. Runtime: a GPU job.
Target: published SSMTL (GPU): micro AUC 97.5, macro 99.8, RBDC 72.8, TBDC 91.2.
"""

from configs import common
from configs import ped2_v2


def get_config():
  return common.apply_variant(ped2_v2.get_config(), "ssmtl")
