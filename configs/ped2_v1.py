"""UCSD Ped2, SSMTL++v1 (T1+T2+T3+T5: adversarial pseudo-anomalies from OOD images), published
architecture.

  python -m ssmtl_jax.main --config=configs/ped2_v1.py --config.data.root=/path/to/ped2 \\
      --workdir=runs/ped2_v1

Data layout, detector settings and smoothing as configs/ped2_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
T5 adds a second backward pass per step.
Target: published SSMTL (the original, GPU): micro AUC 97.5, macro 99.8, RBDC 72.8, TBDC 91.2; the
paper gives no separate SSMTL++ figures for Ped2.
"""

from configs import common
from configs import ped2_v2


def get_config():
  return common.apply_variant(ped2_v2.get_config(), "v1")
