"""Found by random differential testing against the loop: IndexError: index 3 is out of bounds for axis 1 with size 3.
Copied from shared/repro/06-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np


def f(x):
    u4, u5 = min((-np.max(x)), (int(np.floor(np.tanh(x[np.argmax(x)]) * 3.0)) * 0.5)), max((-np.max(x)), (int(np.floor(np.tanh(x[np.argmax(x)]) * 3.0)) * 0.5))
    buf6 = np.zeros((3, 4))
    buf6[np.argmax(buf6[:, 3][np.argsort(buf6[:, 3])]), int(np.floor(np.tanh(u4) * 3.0)) % 4] *= u5


IN_AXES = 0
OUT_AXES = -1
ARGS = (np.array([[-0.19673988223075867, 0.09139009565114975, -1.075966477394104, 0.7594289183616638]], dtype=np.float32),)
