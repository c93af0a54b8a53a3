"""UCSD Ped2, SSMTL++v2 + 3D SSMCTB (T1+T2+T3+T6, SSMCTB in place of the penultimate trunk conv),
published architecture.

  python -m ssmtl_jax.main --config=configs/ped2_v2_ssmctb.py --config.data.root=/path/to/ped2 \\
      --workdir=runs/ped2_v2_ssmctb

Data layout, detector settings and smoothing as configs/ped2_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
SSMCTB costs little (one 2x2x2 dilated conv and a tiny transformer).
Target: published SSMTL (the original, GPU): micro AUC 97.5, macro 99.8, RBDC 72.8, TBDC 91.2; the
paper gives no separate SSMTL++ figures for Ped2.
"""

from configs import common
from configs import ped2_v2


def get_config():
  return common.apply_variant(ped2_v2.get_config(), "v2_ssmctb")
