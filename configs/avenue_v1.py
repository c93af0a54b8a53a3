"""CUHK Avenue, SSMTL++v1 (T1+T2+T3+T5: adversarial pseudo-anomalies from OOD images), published
architecture.

  python -m ssmtl_jax.main --config=configs/avenue_v1.py --config.data.root=/path/to/avenue \\
      --workdir=runs/avenue_v1

Data layout, detector settings and smoothing as configs/avenue_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
T5 adds a second backward pass per step.
Target: published SSMTL++v1 (GPU): micro AUC 93.7, macro 91.7, RBDC 40.9, TBDC 82.1.
"""

from configs import avenue_v2
from configs import common


def get_config():
  return common.apply_variant(avenue_v2.get_config(), "v1")
