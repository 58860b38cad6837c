"""Found by random differential testing against the loop: UnboundLocalError: cannot access local variable 'alive' where it is not associated with a value.
Copied from shared/repro/04-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np

SCALE = 0.75


def f(x):
    if (SCALE <= 0.0):
        while True:
            if ((it3 % 2 == 0) and np.all((x[np.arange(2) % 3] > 0.0))):
                return x
    return x


IN_AXES = (1,)
OUT_AXES = 0
ARGS = (np.array([[-1.1869685993946462], [-1.7567292682950175], [1.1378080022818646]], dtype=np.float64),)
