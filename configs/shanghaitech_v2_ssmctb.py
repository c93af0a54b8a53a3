"""ShanghaiTech Campus, SSMTL++v2 + 3D SSMCTB (T1+T2+T3+T6, SSMCTB in place of the penultimate trunk
conv), published architecture.

  python -m ssmtl_jax.main --config=configs/shanghaitech_v2_ssmctb.py
--config.data.root=/path/to/shanghaitech \\
      --workdir=runs/shanghaitech_v2_ssmctb

Data layout, detector settings and smoothing as configs/shanghaitech_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
SSMCTB costs little (one 2x2x2 dilated conv and a tiny transformer).
Target: no published figure for v2 + SSMCTB on this data set; it should approach or beat SSMTL++v2
(micro AUC 83.8, macro 90.5, RBDC 47.1, TBDC 85.6).
"""

from configs import common
from configs import shanghaitech_v2


def get_config():
  return common.apply_variant(shanghaitech_v2.get_config(), "v2_ssmctb")
