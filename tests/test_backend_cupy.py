"""CuPy arrays as mapped arguments.

The tests marked ``gpu`` run real CuPy and skip unless CuPy is installed and sees
a GPU (``pip install -e ".[test,cupy]"`` on a CUDA machine, then
``python -m pytest tests/test_backend_cupy.py``). The others run everywhere: they
put a stand-in ``cupy`` (tests/fake_cupy: NumPy arrays whose type says ``cupy``,
NumPy functions counted per call) on the path of a subprocess and check what
astvmap does with it: the generated code calls that module where it says ``np``,
unmapped NumPy arrays are copied to the "device" once per call, outputs stay
device arrays.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from astvmap import PerformanceWarning, vmap
from astvmap.testing import assert_same, loop

ROOT = Path(__file__).resolve().parent.parent


def _gpu() -> object | None:
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # noqa: BLE001 - no driver, no device: no GPU to test on
        return None


gpu = pytest.mark.skipif(_gpu() is None, reason="needs CuPy and a GPU")


class Out(NamedTuple):
    y: np.ndarray
    norm: np.ndarray


def layer(x, W, b):
    h = np.tanh(x @ W + b)
    return Out(h, np.sqrt((h * h).sum()))


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-10 * a:
        x = 0.5 * (x + a / x)
    return x


def conv(x, k):
    return np.histogram(x, bins=len(k), range=(-3.0, 3.0))[0] * k  # no rule: per example


# ------------------------------------------------------------- real CuPy
@gpu
def test_layer_on_the_gpu_equals_the_loop():
    cp = _gpu()
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((50, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    for in_axes, out_axes, Xs in [((0, None, None), 0, X), ((1, None, None), Out(1, 0), X.T)]:
        f = vmap(layer, in_axes=in_axes, out_axes=out_axes)
        got = f(cp.asarray(Xs), W, b)  # W and b stay NumPy: moved to the device per call
        assert all(isinstance(v, cp.ndarray) for v in got)
        want = loop(layer, (Xs, W, b), in_axes, out_axes)
        assert_same(Out(*(cp.asnumpy(v) for v in got)), want)


@gpu
def test_control_flow_on_the_gpu():
    cp = _gpu()
    a = np.random.default_rng(1).uniform(0.5, 50.0, size=33)
    got = vmap(newton_sqrt)(cp.asarray(a))
    assert isinstance(got, cp.ndarray)
    assert_same(cp.asnumpy(got), loop(newton_sqrt, (a,)))


@gpu
def test_fallback_runs_on_the_host_and_returns_device_arrays():
    cp = _gpu()
    X, k = np.random.default_rng(2).standard_normal((9, 5)), np.array([1.0, -2.0, 0.5])
    with pytest.warns(PerformanceWarning, match="np.histogram"):
        got = vmap(conv, in_axes=(0, None))(cp.asarray(X), k)
    assert isinstance(got, cp.ndarray)
    assert_same(cp.asnumpy(got), loop(conv, (X, k), (0, None)))


# ------------------------------------------- the stand-in, in a subprocess
FAKE = textwrap.dedent("""
    import warnings
    import numpy as np
    import cupy
    from astvmap import vmap, PerformanceWarning
    from astvmap.testing import assert_same, loop
    from tests.test_backend_cupy import Out, conv, layer, newton_sqrt

    def K_NS():
        from astvmap.backends.cupy import NAMESPACE
        return NAMESPACE

    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((20, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    f = vmap(layer, in_axes=(1, None, None), out_axes=Out(1, 0))
    got = f(cupy.asarray(X.T), W, b)
    assert all(type(v) is cupy.ndarray for v in got), [type(v) for v in got]
    assert_same(Out(*(cupy.asnumpy(v) for v in got)), loop(layer, (X.T, W, b), (1, None, None), Out(1, 0)))
    # The generated code called the stand-in where it says np.tanh; W and b went over once.
    before = dict(cupy.calls)
    f(cupy.asarray(X.T), W, b)
    moved = cupy.calls["asarray"] - before["asarray"]
    assert moved == 3, moved  # X itself (in the call above) and W, b: once each per call
    assert cupy.calls["tanh"] == 2 and cupy.calls["sqrt"] == 2, cupy.calls
    # The CuPy variant of the generated functions was made once, for both calls.
    from astvmap.backends import kernel as K
    (variants,) = [v for k, v in K._VARIANTS.items() if k.__name__ == "layer"]
    assert len(variants) == 1
    (made,) = variants.values()
    f(cupy.asarray(X.T), W, b)
    assert [v for k, v in K._VARIANTS.items() if k.__name__ == "layer"][0][K_NS()] is made

    a = rng.uniform(0.5, 50.0, size=17)
    got = vmap(newton_sqrt)(cupy.asarray(a))
    assert type(got) is cupy.ndarray
    assert_same(cupy.asnumpy(got), loop(newton_sqrt, (a,)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = vmap(conv, in_axes=(0, None))(cupy.asarray(X), np.ones(2))
    assert [w.category for w in caught] == [PerformanceWarning], caught
    assert type(got) is cupy.ndarray and cupy.calls["asnumpy"] >= 1
    assert_same(cupy.asnumpy(got), loop(conv, (X, np.ones(2)), (0, None)))
    print("fake cupy ok")
    """)


def test_cupy_path_with_a_stand_in_module(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fake_cupy"), str(ROOT)]),
        "ASTVMAP_CACHE_DIR": str(tmp_path / "cache"),
    }
    run = subprocess.run(
        [sys.executable, "-c", FAKE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fake cupy ok" in run.stdout


def test_no_gpu_needed_to_warn_on_a_numpy_call():
    # The NumPy path is untouched by the backends (a sanity check for the hook).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = vmap(newton_sqrt)(np.array([4.0, 9.0]))
    np.testing.assert_allclose(got, [2.0, 3.0])
