"""Benchmark: vmap against hand-vectorised NumPy and the Python loop, in one run.

    python benchmarks/bench.py [--batch 10000]

The machine is shared and noisy, so everything is reported as ratios measured
back to back (best of several repeats). Also measures the cold first call (rewrite
+ black + compile, disk cache off) and the warm per-call overhead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astvmap import cache, vmap  # noqa: E402
from cli import load_module  # noqa: E402


def best(fn, *args, repeat=7):
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        out = min(out, time.perf_counter() - t)
    return out


def loop_time(fn, args, in_axes, n=2000, repeat=3):
    """Seconds per example of the Python loop: call per example (a view of each mapped
    argument, as a user's loop would index it) and stack the outputs; best of
    ``repeat`` runs over ``n`` examples, scaled to one."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
    views = [a if ax is None else np.moveaxis(a, ax, 0) for a, ax in zip(args, axes)]
    n = min(n, next(len(v) for v, ax in zip(views, axes) if ax is not None))

    def run():
        outs = [fn(*[v if ax is None else v[k] for v, ax in zip(views, axes)]) for k in range(n)]
        return np.stack(outs)

    return best(run, repeat=repeat) / n


# Hand-vectorised versions, as a NumPy expert would write them for the batch.
def hand_mlp_layer(x, W, b):
    return np.tanh(x @ W + b)


def hand_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def hand_layernorm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return g * (x - mu) / np.sqrt(var + 1e-5) + b


def hand_pairwise_distances(p):
    d = p[:, :, None, :] - p[:, None, :, :]
    return np.sqrt((d**2).sum(-1))


def hand_linear_layer_class(x, W, b):
    return np.tanh(x @ W + b)


# Control flow: the hand-written versions are the best a NumPy expert would write —
# np.where for an if, and loops that compact the lanes still running.
def hand_huber_branch(r, delta):
    a = np.abs(r)
    return np.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def hand_newton_sqrt(a, tol):
    y = 0.5 * (a + 1.0)
    idx = np.flatnonzero(np.abs(y * y - a) > tol * a)
    while idx.size:
        ys, az = y[idx], a[idx]
        ys = 0.5 * (ys + az / ys)
        y[idx] = ys
        idx = idx[np.abs(ys * ys - az) > tol * az]
    return y


def hand_collatz(n):
    n = n.copy()
    steps = np.zeros_like(n)
    idx = np.flatnonzero(n != 1)
    while idx.size:
        m = n[idx]
        m = np.where(m % 2 == 0, m // 2, 3 * m + 1)
        n[idx] = m
        steps[idx] += 1
        idx = idx[m != 1]
    return steps


def hand_mandelbrot(c, max_iter):
    z = np.zeros_like(c)
    count = np.zeros(c.shape, dtype=int)
    idx = np.arange(c.size)
    for _ in range(max_iter):
        zs = z[idx]
        keep = np.abs(zs) <= 2.0
        idx, zs = idx[keep], zs[keep]
        if not idx.size:
            break
        z[idx] = zs * zs + c[idx]
        count[idx] += 1
    return count


def hand_bisection(a, steps):
    lo = np.zeros_like(a)
    hi = np.maximum(a, 1.0)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        up = mid * mid * mid > a
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    return 0.5 * (lo + hi)


CONTROL_FLOW = {
    "huber_branch": hand_huber_branch,
    "newton_sqrt": hand_newton_sqrt,
    "collatz": hand_collatz,
    "mandelbrot": hand_mandelbrot,
    "bisection": hand_bisection,
}

HAND = {
    "mlp_layer": hand_mlp_layer,
    "linear_layer_class": hand_linear_layer_class,
    "softmax": hand_softmax,
    "layernorm": hand_layernorm,
    "pairwise_distances": hand_pairwise_distances,
}
# What a hand-written version needs beyond the fixture's example() arguments: the
# class-based layer keeps its weights on the object that is vmapped.
HAND_EXTRA = {"linear_layer_class": lambda module: (module.model.W, module.model.b)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--control-batch", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}; times are best of 7; ratios measured back to back\n")
    table(HAND, args.batch, rng)
    print(f"\ncontrol flow on batched values, batch {args.control_batch}\n")
    table(CONTROL_FLOW, args.control_batch, rng)
    overheads(rng)


def table(programs: dict, batch: int, rng: np.random.Generator) -> None:
    print(f"{'program':22} {'vmap (ms)':>10} {'vmap / hand':>12} {'loop / vmap':>12}")
    for name, hand in programs.items():
        module = load_module(ROOT / "fixtures" / f"{name}.py")
        spec = module.VMAP
        fn = getattr(module, spec["fn"])
        batch_args = module.example(rng, batch)
        v = vmap(fn, in_axes=spec["in_axes"], out_axes=spec.get("out_axes", 0))
        hand_args = (*batch_args, *HAND_EXTRA.get(name, lambda m: ())(module))
        np.testing.assert_allclose(v(*batch_args), hand(*hand_args), rtol=1e-9, atol=1e-12)
        t_v = best(v, *batch_args)
        t_h = best(hand, *hand_args)
        t_l = loop_time(fn, batch_args, spec["in_axes"]) * batch
        print(f"{name:22} {t_v * 1e3:10.2f} {t_v / t_h:12.2f} {t_l / t_v:12.0f}")


def overheads(rng: np.random.Generator) -> None:
    # Cold first call: a fresh process-equivalent (memory and disk caches off).
    os.environ["ASTVMAP_CACHE"] = "0"
    cold = []
    for name in HAND:
        cache.memory_clear()
        module = load_module(ROOT / "fixtures" / f"{name}.py")
        spec = module.VMAP
        fn = getattr(module, spec["fn"])
        small = module.example(rng, 4)
        t = time.perf_counter()
        vmap(fn, in_axes=spec["in_axes"])(*small)
        cold.append(time.perf_counter() - t)
    print(f"\ncold first call (rewrite + black + compile): median {np.median(cold) * 1e3:.0f} ms")

    x, W, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    v = vmap(hand_mlp_layer, in_axes=(0, None, None))
    v(x, W, b)
    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        v(x, W, b)
    t_v = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(n):
        hand_mlp_layer(x, W, b)
    t_h = (time.perf_counter() - t) / n
    print(f"warm per-call overhead (tiny inputs): {(t_v - t_h) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
