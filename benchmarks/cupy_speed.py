"""Benchmark: the same vmapped functions on NumPy (CPU) and on CuPy (GPU).

    python benchmarks/cupy_speed.py [--batch 100000]

Needs CuPy and a GPU (``pip install -e ".[cupy]"``). Three kernels: a dense layer
(matmul + tanh), a row softmax, and Newton's square root (a ``while`` loop on
batched values). Each is checked against the NumPy result, then timed (best of 5,
the device synchronised; the CuPy time includes copying the unmapped NumPy
parameters to the device, which a call does each time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astvmap import vmap  # noqa: E402


def layer(x, W, b):
    return np.tanh(x @ W + b)


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-10 * a:
        x = 0.5 * (x + a / x)
    return x


def best(fn, sync, repeat: int = 5) -> float:
    fn()
    sync()
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=100_000)
    n = ap.parse_args().batch
    import cupy as cp

    cuda = getattr(cp, "cuda", None)
    sync = cuda.Device().synchronize if cuda is not None else (lambda: None)
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((256, 256)) / 16, rng.standard_normal(256)
    cases = [
        (
            "layer (256 -> 256)",
            vmap(layer, in_axes=(0, None, None)),
            (rng.standard_normal((n, 256)), W, b),
        ),
        ("softmax (256)", vmap(softmax), (rng.standard_normal((n, 256)),)),
        ("newton_sqrt (while)", vmap(newton_sqrt), (rng.uniform(0.5, 1e4, n),)),
    ]
    print(f"batch {n:,}")
    print(f"{'kernel':22} {'NumPy (CPU)':>12} {'CuPy (GPU)':>12} {'speed-up':>9}")
    for name, f, args in cases:
        dev = (cp.asarray(args[0]), *args[1:])
        np.testing.assert_allclose(cp.asnumpy(f(*dev)), f(*args), rtol=1e-9, atol=1e-12)
        cpu = best(lambda f=f, args=args: f(*args), lambda: None)
        gpu = best(lambda f=f, dev=dev: f(*dev), sync)
        print(f"{name:22} {cpu * 1e3:10.2f}ms {gpu * 1e3:10.2f}ms {cpu / gpu:8.1f}x")


if __name__ == "__main__":
    main()
