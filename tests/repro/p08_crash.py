"""Found by random differential testing against the loop: IndexError: too many indices for array: array is 2-dimensional, but 3 were indexed.
Copied from shared/repro/08-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np


def f(x, y):
    buf8 = np.zeros(4)
    buf8[(~(buf8 > 0.0))] += (y % 2 == 0)


IN_AXES = (0, -1)
OUT_AXES = 0
ARGS = (np.array([[-0.649354172585126, 0.753042026906137, -1.4558754789972799, 1.364614818036765, -0.8091214226527405]], dtype=np.float64), np.array([1], dtype=np.int64))
