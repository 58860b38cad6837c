"""Found by random differential testing against the loop: leaf 1: values differ (max abs diff 1.0).
Copied from shared/repro/01-wrong.py; tests/test_repro.py checks it against the loop."""
import math

import numpy as np

def f(d0, x, y):
    buf4 = np.array((x if (d0['b'] % 2 == 0) else x))
    buf6 = np.zeros(3)
    buf7 = np.zeros((3, 5))
    v8 = d0['a']
    v9 = (x if ((v8 / (1.0 + abs(v8))) >= 0.5) else buf4)
    cnt10 = -1
    buf4[cnt10 % 5] = buf4[d0['b'] % 5]
    return buf6, {'m': ((v9 - np.floor(np.tanh(x) * 3.0).astype(int)) >= np.median(buf7, axis=0)), 'n': buf7}


IN_AXES = ({'a': 0, 'b': 0}, -1, -2)
OUT_AXES = (0, 0)
ARGS = ({'a': np.array([-0.9817967664300866, -0.5036421193964257], dtype=np.float64), 'b': np.array([-2, 1], dtype=np.int64)}, np.array([[1.102593063224711, 0.047892527654394855], [-0.02961615920980351, 2.935148263456512], [-0.7755237601573562, -1.2977520307121218], [0.1374786320497226, 0.9948908021665565], [-0.780600764629577, 0.36630187570613715]], dtype=np.float64), np.array([[0.28095451888219547, 0.5930032705284395, -0.8290525600294033, 0.0912440755120449, -0.6344655102155774], [-0.5566770680199887, -1.0082441052771294, 0.4582253031256056, 1.2180639415531906, -1.8172551695723638]], dtype=np.float64))
