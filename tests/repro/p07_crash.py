"""Found by random differential testing against the loop: IndexError: shape mismatch: indexing arrays could not be broadcast together with shapes (2,) (2,3).
Copied from shared/repro/07-crash.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np

TABLE = np.linspace(-2.0, 2.0, 7)


def f(p0):
    buf8 = np.zeros(3, dtype=bool)
    buf8[(buf8 * 1)[np.argmax(p0[1])] % 3] = (TABLE[np.argsort((buf8[np.arange(7) % 3] * 1.0))[2]] > 0.0)


IN_AXES = ((0, -2),)
OUT_AXES = 0
ARGS = ((np.array([3, 6], dtype=np.int64), np.array([[0.295529842376709, 0.355290949344635, -1.3449894189834595], [-1.3618552684783936, 0.3491087257862091, -1.821683406829834]], dtype=np.float32)),)
