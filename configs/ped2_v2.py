"""UCSD Ped2, SSMTL++v2 with the published architecture (64x64 crops, deep+wide trunk, 3 CvT
blocks x 12 heads, T1+T2+T3+T6, Adam 1e-3, 20 epochs).

  python -m ssmtl_jax.main --config=configs/ped2_v2.py --config.data.root=/path/to/ped2 \
      --workdir=runs/ped2_v2

Runtime: a GPU job (its step's cost and speed: benchmarks/RESULTS.md); on a 2-core CPU use
configs/ped2_cpu.py. benchmarks/accelerator.py measures it on a device (README,
"Measuring on a GPU"). Published: SSMTL micro AUC 97.5, macro 99.8 on Ped2.
"""

from configs import common


def get_config():
  c = common.get_config()
  c.data.name = "ped2"
  c.data.root = "data/ped2"
  return c
