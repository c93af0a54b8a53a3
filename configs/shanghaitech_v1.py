"""ShanghaiTech Campus, SSMTL++v1 (T1+T2+T3+T5: adversarial pseudo-anomalies from OOD images),
published architecture.

  python -m ssmtl_jax.main --config=configs/shanghaitech_v1.py
--config.data.root=/path/to/shanghaitech \\
      --workdir=runs/shanghaitech_v1

Data layout, detector settings and smoothing as configs/shanghaitech_v2.py. Runtime: a GPU job (the
published step's cost and speed: benchmarks/RESULTS.md);
T5 adds a second backward pass per step.
Target: published SSMTL++v1 (GPU): micro AUC 82.9, macro 89.8, RBDC 43.2, TBDC 84.1.
"""

from configs import common
from configs import shanghaitech_v2


def get_config():
  return common.apply_variant(shanghaitech_v2.get_config(), "v1")
