"""CUHK Avenue, SSMTL++v2 + 3D SSMCTB (T1+T2+T3+T6, SSMCTB in place of the penultimate trunk conv),
published architecture.

  python -m ssmtl_jax.main --config=configs/avenue_v2_ssmctb.py --config.data.root=/path/to/avenue \\
      --workdir=runs/avenue_v2_ssmctb

Data layout, detector settings and smoothing as configs/avenue_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
SSMCTB costs little (one 2x2x2 dilated conv and a tiny transformer).
Target: no published figure for v2 + SSMCTB on this data set; it should approach or beat SSMTL++v2
(micro AUC 91.6, macro 92.5, RBDC 47.8, TBDC 85.2).
"""

from configs import avenue_v2
from configs import common


def get_config():
  return common.apply_variant(avenue_v2.get_config(), "v2_ssmctb")
