"""Found by random differential testing against the loop: UnboundLocalError: cannot access local variable 'w10' where it is not associated with a value.
Copied from shared/repro/05-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np


def f(x, p1):
    if np.any(np.isfinite((p1[1] * 1.0))):
        for i6 in range(np.sum(((np.arange(3) * 0.5) >= (p1[0] * 1.0)))):
            pass
        w10 = x
    else:
        w10 = x
    v12 = (-np.sum(np.where(p1[1], x[-1], 0.0)))
    return np.tanh(np.maximum(w10[-1], (p1[0] * 1.0))), np.take(x[0], p1[1].astype(int) % 4), (-0.5 < (v12 if (v12 <= 0.5) else v12) < 1.0)


IN_AXES = [-1, 0]
OUT_AXES = 0
ARGS = (np.array([[[-0.6736683755230585], [-0.36561830852756383], [-0.9682264745363182], [1.8332496686004323]], [[-0.7854155964348853], [0.3181642545436487], [-2.3354653795604916], [-0.13834092624779395]], [[1.3593651635145807], [0.37539508652162396], [-0.09029162586289746], [-0.22490645798785833]]], dtype=np.float64), (np.array([0], dtype=np.int64), np.array([[False, False, False, False]], dtype=np.bool)))
