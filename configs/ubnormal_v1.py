"""UBnormal, SSMTL++v1 (T1+T2+T3+T5: adversarial pseudo-anomalies from OOD images), published
architecture.

  python -m ssmtl_jax.main --config=configs/ubnormal_v1.py --config.data.root=/path/to/ubnormal \\
      --workdir=runs/ubnormal_v1

Data layout, detector settings and smoothing as configs/ubnormal_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
T5 adds a second backward pass per step.
Target: published SSMTL++v1 (GPU): micro AUC 62.1, macro 86.5, RBDC 25.63, TBDC 63.53.
"""

from configs import common
from configs import ubnormal_v2


def get_config():
  return common.apply_variant(ubnormal_v2.get_config(), "v1")
