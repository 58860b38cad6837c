"""Found by random differential testing against the loop: leaf 0: shape (2, 4, 3) != loop's (2, 2, 3).
Copied from shared/repro/02-wrong.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np

OFFS = np.arange(3) * 0.5


def f(x):
    dct1 = {'p': np.floor(np.tanh(OFFS) * 3.0).astype(int), 'q': OFFS[-2]}
    for a3, b4 in zip(x, x):
        for i5 in range(int(np.floor(np.tanh(a3) * 3.0)) % 3):
            dct1['p'] = dct1['p']
    acc7 = 0.5
    return {'out': np.argsort(((np.tile(dct1['p'], (2, 1)) * 1.0) - x), axis=1), 'aux': acc7}


IN_AXES = (0,)
OUT_AXES = 0
ARGS = (np.array([[-0.4159158450940735, 0.5090302544622338, -0.45124959670626286], [-1.0248897092897893, 0.44200902945730375, 0.8344639770216778]], dtype=np.float64),)
