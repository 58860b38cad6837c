"""The astvmap benchmark suite: ``python -m benchmarks`` (see suite.py and the README).

BLAS threads are fixed here, before anything imports NumPy: the environment variables
are read when the BLAS library loads.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
