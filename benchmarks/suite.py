"""The benchmark suite: ``python -m benchmarks`` from the repository root.

    python -m benchmarks            # the full suite, ~5 minutes on a quiet core
    python -m benchmarks --quick    # smaller batches and fewer repeats, ~1 minute
    python -m benchmarks --workers 2  # adds the threaded figures (workers=2)

One process, pinned to one core (``os.sched_setaffinity``), BLAS threads fixed at one
(threadpoolctl when installed, else the environment variables benchmarks/__init__.py
sets before NumPy loads), both printed. Every figure is a ratio of medians measured in
this run, the variants interleaved repeat by repeat, because a shared machine's speed
drifts between runs; absolute milliseconds are printed only to show the scale.

Sections: the 18 kernels (``--kernels`` picks some) against hand-vectorised NumPy (astvmap with and without cache
blocking, the Python loop, np.vectorize, jax.jit(jax.vmap) and torch.func.vmap when
installed, peak memory); the cold first call over the fixtures/ demos with where its
time goes; start-up in fresh processes (import, disk-cache hit); dispatch overhead;
chunk_size against peak memory; with --workers, the thread pool.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import kernels as K
from . import peers

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from astvmap import PerformanceWarning, cache, chunking, vmap  # noqa: E402


# ------------------------------------------------------------------ machine
def pin(core: int | None) -> str:
    """Pin this process to one core; a description of what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if core is None else core
    os.sched_setaffinity(0, {chosen})
    return f"pinned to core {chosen} of {allowed}"


def unpin(cores: list[int]) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        return "environment " + ", ".join(f"{n}={os.environ.get(n)}" for n in names)
    threadpool_limits(1)
    pools = threadpool_info()
    return "threadpoolctl: " + ", ".join(
        f"{p['internal_api']} {p['num_threads']} thread(s)" for p in pools
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ------------------------------------------------------------------- timing
def interleaved(variants: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median seconds of each variant, timed in turn within each repeat."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeat):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_bytes(run: Callable[[], Any]) -> int:
    """Peak traced allocation of one call (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _slice(args: tuple, in_axes: Any, n: int) -> tuple:
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    return tuple(a if ax is None else a[:n] for a, ax in zip(args, axes))


def loop_call(fn: Callable, args: tuple, in_axes: Any) -> Callable[[], Any]:
    """The Python loop a user would write: call per example, stack the outputs."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    n = next(len(a) for a, ax in zip(args, axes) if ax is not None)

    def run() -> Any:
        outs = [fn(*[a if ax is None else a[i] for a, ax in zip(args, axes)]) for i in range(n)]
        if isinstance(outs[0], tuple):
            return tuple(np.stack(o) for o in zip(*outs))
        return np.stack(outs)

    return run


def vectorize_call(k: K.Kernel, args: tuple) -> Callable[[], Any]:
    if k.signature is None:
        f = np.vectorize(k.fn, excluded=set(k.excluded))
    else:
        f = np.vectorize(k.fn, signature=k.signature, excluded=set(k.excluded))
    return lambda: f(*args)


def same(got: Any, want: Any) -> None:
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ kernels
def kernel_table(args: argparse.Namespace, rng: np.random.Generator) -> list[dict]:
    jax = peers.jax_kernels() if not args.no_peers else None
    torch = peers.torch_kernels() if not args.no_peers else None
    kernels = _chosen(args)
    print(
        f"\n## {len(kernels)} kernels against hand-vectorised NumPy (one core; medians of "
        f"{args.repeat})\n"
    )
    print("ratio = time / hand-vectorised time (lower is better; < 1 is faster than hand)")
    print("astvmap = the default (cache blocking on); one call = cache blocking off")
    print("loop and np.vectorize are timed on the first", args.loop_n, "examples, scaled\n")
    head = (
        f"| {'kernel':16} | {'batch':>7} | {'hand ms':>8} | {'astvmap':>7} | {'one call':>8} "
        f"| {'blocks':>6} | {'loop':>7} | {'np.vect':>7} | {'jax':>6} | {'torch':>6} "
        f"| {'mem':>5} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    rows = []
    for k in kernels:
        rows.append(_kernel_row(k, args, rng, jax, torch))
    _summary(rows)
    return rows


def _chosen(args: argparse.Namespace) -> list[K.Kernel]:
    """The kernels named by ``--kernels`` (all by default)."""
    if not args.kernels:
        return list(K.KERNELS)
    names = args.kernels.split(",")
    unknown = sorted(set(names) - {k.name for k in K.KERNELS})
    if unknown:
        raise SystemExit(f"unknown kernel(s): {', '.join(unknown)}")
    return [k for k in K.KERNELS if k.name in names]


def _kernel_row(k: K.Kernel, args: argparse.Namespace, rng, jax, torch) -> dict:
    batch = max(1000, k.batch // (10 if args.quick else 1))
    data = k.args(rng, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerformanceWarning)  # a kernel without a rule
        blocked = vmap(k.fn, in_axes=k.in_axes)
        whole = vmap(k.fn, in_axes=k.in_axes)
        whole.cache_blocking = False
        want = k.hand(*data)
        same(blocked(*data), want)
        for _ in range(2 * chunking._Blocking.ROUNDS):  # let cache blocking decide
            blocked(*data)
        same(whole(*data), want)
        fallback = any(
            issubclass(w.category, PerformanceWarning)
            for w in _caught(lambda: vmap(k.fn, in_axes=k.in_axes)(*_slice(data, k.in_axes, 4)))
        )
        variants: dict[str, Callable[[], Any]] = {
            "hand": lambda: k.hand(*data),
            "astvmap": lambda: blocked(*data),
            "one call": lambda: whole(*data),
        }
        for name, table in (("jax", jax), ("torch", torch)):
            if table and k.name in table:
                same(table[k.name](*data), want)
                variants[name] = lambda f=table[k.name]: f(*data)
        t = interleaved(variants, args.repeat)
        small = _slice(data, k.in_axes, min(args.loop_n, batch))
        scale = batch / min(args.loop_n, batch)
        t_loop = interleaved({"loop": loop_call(k.fn, small, k.in_axes)}, 3)["loop"] * scale
        t_vec = interleaved({"vec": vectorize_call(k, small)}, 3)["vec"] * scale
        mem = peak_bytes(lambda: blocked(*data)) / max(1, peak_bytes(lambda: k.hand(*data)))
    decision = list(chunking.blocking_decision(blocked).values())
    blocks = "yes" if decision == [True] else ("no" if decision == [False] else "n/a")
    hand = t["hand"]
    row = {
        "kernel": k.name,
        "batch": batch,
        "hand_ms": hand * 1e3,
        "astvmap": t["astvmap"] / hand,
        "one_call": t["one call"] / hand,
        "blocks": blocks,
        "loop": t_loop / hand,
        "vectorize": t_vec / hand,
        "jax": t["jax"] / hand if "jax" in t else None,
        "torch": t["torch"] / hand if "torch" in t else None,
        "mem": mem,
        "fallback": fallback,
    }
    name = k.name + (" *" if fallback else "")

    def opt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    print(
        f"| {name:16} | {batch:>7} | {hand * 1e3:8.2f} | {row['astvmap']:7.2f} | "
        f"{row['one_call']:8.2f} | {blocks:>6} | {row['loop']:7.0f} | {row['vectorize']:7.0f} "
        f"| {opt(row['jax']):>6} | {opt(row['torch']):>6} | {mem:5.2f} |",
        flush=True,
    )
    return row


def _caught(run: Callable[[], Any]) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return caught


def _summary(rows: list[dict]) -> None:
    for key, label in (("astvmap", "astvmap (cache blocking)"), ("one_call", "one call")):
        ratios = [r[key] for r in rows]
        worst = max(rows, key=lambda r: r[key])
        print(
            f"\n{label}: median {statistics.median(ratios):.2f}x hand, "
            f"worst {worst[key]:.2f}x ({worst['kernel']})",
            end="",
        )
    print()
    if any(r["fallback"] for r in rows):
        names = ", ".join(r["kernel"] for r in rows if r["fallback"])
        print(f"* runs per example in a Python loop (no batching rule yet): {names}")
    print("blocks: what cache blocking chose after measuring (n/a: batch too small to try)")
    print("mem: peak traced memory of one astvmap call / of the hand-vectorised call")


# --------------------------------------------------------------- cold calls
def cold_calls(args: argparse.Namespace, rng: np.random.Generator) -> None:
    """First call with nothing cached (libraries imported) over the fixtures/ demos."""
    from astvmap import codegen, pipeline, rewrite, source, syntax
    from cli import load_module

    phases: dict[str, float] = {}
    depth: dict[str, int] = {}

    def timed(owner: Any, attr: str, phase: str) -> Callable[[], None]:
        """Time calls of ``owner.attr`` as ``phase``; a call inside a call of the same
        phase (a helper function's translation inside the main one's) counts once."""
        real = getattr(owner, attr)

        def wrapper(*a: Any, **kw: Any) -> Any:
            if depth.get(phase):
                return real(*a, **kw)
            depth[phase] = 1
            start = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                depth[phase] = 0
                phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - start

        setattr(owner, attr, wrapper)
        return lambda: setattr(owner, attr, real)

    os.environ["ASTVMAP_CACHE"] = "0"
    paths = sorted(p for p in (ROOT / "fixtures").glob("*.py") if not p.name.endswith(".vmap.py"))
    undo = [
        timed(source, "_parse", "parse"),
        timed(rewrite.Translator, "translate", "translate"),
        timed(rewrite.Translator, "__init__", "translate"),  # its analysis starts here
        timed(codegen, "format_code", "black"),
        timed(codegen, "finish", "finish"),
        timed(codegen, "assemble", "assemble"),
        timed(cache, "load", "compile"),
        timed(pipeline, "_generate", "total"),
    ]
    rounds = 1 if args.quick else 3
    best: dict[str, tuple[float, dict[str, float]]] = {}  # demo -> its fastest round
    modules = {path.stem: load_module(path) for path in paths}
    try:
        for r in range(rounds):
            for i, (name, module) in enumerate(modules.items()):
                spec = module.VMAP
                fn = getattr(module, spec["fn"])
                small = module.example(rng, 4)
                cache.memory_clear()
                syntax.clear_caches()  # each demo as the first function of its process
                phases.clear()
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    vmap(fn, in_axes=spec["in_axes"], out_axes=spec.get("out_axes", 0))(*small)
                took = time.perf_counter() - start
                if r == 0 and i == 0:
                    continue  # the first one imports libcst and black: not a per-transform cost
                if name not in best or took < best[name][0]:
                    best[name] = (took, dict(phases))
    finally:
        for u in undo:
            u()
        del os.environ["ASTVMAP_CACHE"]
    totals = [t for t, _ in best.values()]
    per_phase = [p for _, p in best.values()]
    ms = sorted(t * 1e3 for t in totals)
    q = statistics.quantiles(ms, n=20)
    print(
        f"\n## Cold first call (nothing cached, libraries imported): {len(ms)} fixtures/ demos, "
        f"each the fastest of {rounds} round(s)\n"
    )
    print(
        f"median {statistics.median(ms):.1f} ms; percentiles 10th {q[1]:.1f}, 25th {q[4]:.1f}, "
        f"75th {q[14]:.1f}, 90th {q[17]:.1f}; min {ms[0]:.1f}, max {ms[-1]:.1f} ms; "
        f"{sum(1 for t in ms if t <= 20)} of {len(ms)} within 20 ms"
    )

    def med(key: str) -> float:
        return statistics.median(p.get(key, 0.0) for p in per_phase) * 1e3

    for p, total in zip(per_phase, totals):
        p["translate only"] = p.get("translate", 0.0) - p.get("parse", 0.0)
        p["emit"] = p.get("assemble", 0.0) + p.get("finish", 0.0) - p.get("black", 0.0)
        p["rest"] = total - sum(
            p.get(k, 0.0) for k in ("translate", "assemble", "finish", "compile")
        )
    print(
        "where it goes (median of each phase): "
        + ", ".join(
            f"{label} {med(key):.1f} ms"
            for label, key in [
                ("parse (libcst)", "parse"),
                ("translate", "translate only"),
                ("emit (optimise, parenthesise, libcst codegen, line map)", "emit"),
                ("black", "black"),
                ("compile", "compile"),
                ("rest (source lookup, keys, disk write, argument checks)", "rest"),
            ]
        )
    )


# ----------------------------------------------------------------- start-up
STARTUP = r"""
import sys, time, json
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
sys.path.insert(0, {root!r})
import astvmap
t2 = time.perf_counter()
from benchmarks import kernels as K
X, g, b = K.args_layernorm(np.random.default_rng(0), 64)
f = astvmap.vmap(K.layernorm, in_axes=(0, None, None))
t3 = time.perf_counter()
f(X, g, b)
t4 = time.perf_counter()
f(X, g, b)
t5 = time.perf_counter()
heavy = [m for m in ("libcst", "black", "optree") if m in sys.modules]
print(json.dumps({{"numpy": t1 - t0, "astvmap": t2 - t1, "first": t4 - t3, "plain": t5 - t4,
                  "heavy": heavy}}))
"""


def startup(args: argparse.Namespace) -> None:
    """Fresh processes: import times and the first call with a warm disk cache."""
    runs = 5 if args.quick else 15
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ASTVMAP_CACHE_DIR": tmp}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode is cached
        code = STARTUP.format(root=str(ROOT))
        results = []
        for i in range(runs + 2):  # the first fills the disk cache, the second the .pyc files
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            if i >= 2:
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))

    def ms(key: str) -> list[float]:
        return sorted(r[key] * 1e3 for r in results)

    def show(values: list[float]) -> str:
        return f"median {statistics.median(values):.1f} ms (min {values[0]:.1f})"

    hits = sorted((r["first"] - r["plain"]) * 1e3 for r in results)
    heavy = sorted({m for r in results for m in r["heavy"]})
    print(f"\n## Start-up in a fresh process ({runs} processes)\n")
    print(f"import numpy: {show(ms('numpy'))}")
    print(f"import astvmap after it (astvmap's own cost): {show(ms('astvmap'))}")
    print(
        f"first call with a warm disk cache, over a plain call: median {statistics.median(hits):.2f} "
        f"ms (min {hits[0]:.2f}; a plain call {statistics.median(ms('plain')):.3f} ms)"
    )
    print(f"loaded on the disk hit: {heavy or 'none of libcst, black, optree'}")


# ----------------------------------------------------------------- dispatch
def dispatch(rng: np.random.Generator) -> None:
    x, W, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    v = vmap(K.mlp_layer, in_axes=(0, None, None))
    v(x, W, b)
    n = 20000
    t = interleaved(
        {
            "astvmap": lambda: [v(x, W, b) for _ in range(n)],
            "hand": lambda: [K.hand_mlp_layer(x, W, b) for _ in range(n)],
        },
        5,
    )
    print("\n## Dispatch overhead\n")
    print(
        f"warm call on a batch of 2 (MLP layer): {(t['astvmap'] - t['hand']) / n * 1e6:.1f} us "
        "over the hand-written call"
    )


# ------------------------------------------------------------- chunk memory
def outer_reduced(x):
    return np.outer(x, x).sum(axis=0)


def chunk_memory(rng: np.random.Generator) -> None:
    X = rng.standard_normal((2048, 128))
    print("\n## chunk_size against peak memory (per-example outer product, reduced)\n")
    print("| chunk_size | peak MB | ms |")
    print("|---|---|---|")
    want = None
    for k in [None, 1024, 256, 64, 16]:
        f = vmap(outer_reduced, chunk_size=k)
        f(X[:2])
        start = time.perf_counter()
        got = f(X)
        ms = (time.perf_counter() - start) * 1e3
        want = got if want is None else want
        np.testing.assert_array_equal(got, want)
        print(f"| {k or 'whole batch'} | {peak_bytes(lambda f=f: f(X)) / 2**20:.1f} | {ms:.1f} |")


# ------------------------------------------------------------------ workers
def workers_table(args: argparse.Namespace, rng: np.random.Generator, cores: list[int]) -> None:
    n = args.workers if args.workers != -1 else len(cores)
    unpin(cores)
    print(f"\n## workers={n} against one thread (process on cores {cores}; medians)\n")
    print("| kernel | batch | 1 thread ms | speed-up |")
    print("|---|---|---|---|")
    ups = []
    for k in _chosen(args):
        batch = max(1000, k.batch // (10 if args.quick else 1))
        data = k.args(rng, batch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PerformanceWarning)
            one = vmap(k.fn, in_axes=k.in_axes)
            many = vmap(k.fn, in_axes=k.in_axes, workers=n)
            same(many(*data), one(*data))
            for _ in range(2 * chunking._Blocking.ROUNDS):
                one(*data)
            runs = {"1": lambda f=one, d=data: f(*d), "n": lambda f=many, d=data: f(*d)}
            t = interleaved(runs, args.repeat)
        ups.append(t["1"] / t["n"])
        print(f"| {k.name} | {batch} | {t['1'] * 1e3:.2f} | {ups[-1]:.2f}x |", flush=True)
    print(f"\nmedian speed-up {statistics.median(ups):.2f}x with {n} threads")
    print("\nWhere threads start to pay (quaternion to matrix, elementwise):\n")
    print("| batch | speed-up |")
    print("|---|---|")
    for batch in [1024, 4096, 16384, 65536, 262144]:
        (Q,) = K.args_quat_to_matrix(rng, batch)
        one = vmap(K.quat_to_matrix)
        one.cache_blocking = False
        many = vmap(K.quat_to_matrix, workers=n)
        saved = chunking.MIN_BYTES_PER_WORKER
        chunking.MIN_BYTES_PER_WORKER = 1  # force threads, to see where they pay
        try:
            many(Q)
            runs = {"1": lambda f=one, q=Q: f(q), "n": lambda f=many, q=Q: f(q)}
            t = interleaved(runs, args.repeat)
        finally:
            chunking.MIN_BYTES_PER_WORKER = saved
        print(f"| {batch} | {t['1'] / t['n']:.2f}x |")


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="batches / 10, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed repeats per variant")
    parser.add_argument("--loop-n", type=int, default=300, help="examples the loop is timed on")
    parser.add_argument("--workers", type=int, default=None, help="also measure workers=N")
    parser.add_argument("--core", type=int, default=None, help="the core to pin to")
    parser.add_argument("--no-peers", action="store_true", help="skip jax and torch")
    parser.add_argument("--kernels", default="", help="kernel names, comma-separated (all)")
    parser.add_argument(
        "--only", default="kernels,cold,startup,dispatch,memory", help="sections, comma-separated"
    )
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (5 if args.quick else 11)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = pin(args.core)
    print("# astvmap benchmark suite\n")
    print(f"machine: {cpu_model()}, {len(cores)} core(s) available; {pinned}")
    print(f"L2 cache per core (for cache blocking): {chunking.l2_bytes() // 1024} KiB")
    print(f"python {platform.python_version()}, numpy {np.__version__}; BLAS: {blas_threads()}")
    print(f"peers: jax {_version('jax')}, torch {_version('torch')}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average at start: {load} (other processes share these cores)")
    rng = np.random.default_rng(0)
    sections = set(args.only.split(","))
    if "kernels" in sections:
        kernel_table(args, rng)
    if "cold" in sections:
        cold_calls(args, rng)
    if "startup" in sections:
        startup(args)
    if "dispatch" in sections:
        dispatch(rng)
    if "memory" in sections:
        chunk_memory(rng)
    if args.workers is not None:
        workers_table(args, rng, cores)


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
