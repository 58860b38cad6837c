"""Found by random differential testing against the loop: TypeError: only integer scalar arrays can be converted to a scalar index.
Copied from shared/repro/10-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np

def f(x):
    it3 = 0
    for i5 in range(it3 % 4):
        if (np.tile(x, (3, 1))[-2, it3 % 4] <= np.sum(x)):
            continue
        it3 -= np.argmax(np.abs(x[np.arange(3) % 4]))


IN_AXES = (1,)
OUT_AXES = -1
ARGS = (np.array([[1.5897289895674345], [0.1567156771628564], [0.2561038091178139], [-0.7537860891679821]], dtype=np.float64),)
