"""Found by random differential testing against the loop: ValueError: operands could not be broadcast together with shapes (2,) (1,3).
Copied from shared/repro/11-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np


def f(x):
    buf6 = np.zeros((2, 3))
    buf6[np.argmin(np.minimum(np.linspace(-1.0, 1.0, 2), buf6[:, 1])), -3] *= x


IN_AXES = (-1,)
OUT_AXES = 0
ARGS = (np.array([0.819103818721886], dtype=np.float64),)
