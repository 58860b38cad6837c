"""Found by random differential testing against the loop: leaf 0: values differ (max abs diff 1.0).
Copied from shared/repro/03-wrong.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np


def h1(buf, p0):
    buf[np.argmin(np.where(np.ones(5, dtype=bool), buf, -1.0))] = min(3, 1)
    if ((np.sum(np.where((np.arange(5) % 2 == 0), buf, 0.0)) - p0.size) <= p0.sum()):
        it1 = 0
        while True:
            it1 += 1
            if it1 > 1:
                break
            buf += np.clip(buf, -1.0, 1.0)
def f(x):
    buf5 = np.array((np.eye(2, 5) * np.linspace(-1.0, 1.0, 2)[:, None]))
    buf6 = np.zeros(5)
    v7 = (buf5 if (x > 2) else buf5[:, np.argsort(buf6)])
    h1(buf6, (v7 * buf6))
    v10 = buf6
    return v10, buf5, buf6


IN_AXES = (0,)
OUT_AXES = -1
ARGS = (np.array([-1], dtype=np.int64),)
