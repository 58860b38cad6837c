"""The property-test harness shared by tests/test_rules_*.py.

A case is a per-example function and one generator per argument. ``run`` checks
it against the loop oracle for every batched/unbatched combination of its array
arguments, with the batch size, dims, seed and mapped-axis position drawn by
hypothesis (``SETUP``).
"""

import itertools
import sys

import numpy as np
import pytest
from hypothesis import strategies as st

from .oracle import check

BATCH = st.sampled_from([1, 2, 5])
SEED = st.integers(0, 2**32 - 1)
DIMS = {
    "m": st.integers(1, 4),
    "n": st.integers(1, 4),
    "k": st.integers(1, 4),
    "e": st.sampled_from([2, 4]),  # an even dim
    "g": st.integers(3, 4),  # a dim of at least 3
}


def _dims(dims, d):
    return tuple(d[x] if isinstance(x, str) else x for x in dims)


def normal(*dims):
    def gen(rng, lead, d):
        out = rng.standard_normal(lead + _dims(dims, d))
        return float(out) if out.ndim == 0 else out

    return gen


def ints(lo, hi, *dims):
    def gen(rng, lead, d):
        out = rng.integers(lo, hi, size=lead + _dims(dims, d))
        return int(out) if out.ndim == 0 else out

    return gen


class Fixed:
    """An argument that is always unbatched (an index array, a pad width)."""

    def __init__(self, gen):
        self.gen = gen


def patterns(gens):
    """Every batched/unbatched combination of the array arguments, at least one batched."""
    free = [i for i, g in enumerate(gens) if not isinstance(g, Fixed)]
    out = []
    for p in itertools.product([True, False], repeat=len(free)):
        if any(p):
            full = [False] * len(gens)
            for i, b in zip(free, p):
                full[i] = b
            out.append(tuple(full))
    return out


SETUP = st.tuples(
    BATCH,
    st.fixed_dictionaries(DIMS),
    SEED,
    st.sampled_from([False, False, True]),  # moved: the batch axis not first
)


def build(setup, gens, pattern):
    """The arguments and in_axes/out_axes for one batching pattern.

    Each distinct in_axes/out_axes is its own specialisation (~50-100 ms to make),
    so the layout is one drawn flag: the batch axis first everywhere, or "moved":
    second on inputs of rank >= 2 (last on vectors and scalars) and last on the
    outputs.
    """
    batch, d, seed, moved = setup
    rng = np.random.default_rng(seed)
    args, axes = [], []
    for gen, mapped in zip(gens, pattern):
        if isinstance(gen, Fixed):
            gen = gen.gen
        if not mapped:
            args.append(gen(rng, (), d))
            axes.append(None)
            continue
        a = np.asarray(gen(rng, (batch,), d))
        ax = (1 if a.ndim >= 3 else -1) if moved else 0
        args.append(np.moveaxis(a, 0, ax))
        axes.append(ax)
    return args, tuple(axes), (-1 if moved else 0)


def run(setup, f, gens, **kw):
    """Check f against the loop for every batching pattern of its array arguments."""
    for pattern in patterns(gens):
        args, in_axes, out_axes = build(setup, gens, pattern)
        try:
            check(f, *args, in_axes=in_axes, out_axes=out_axes, **kw)
        except Exception as exc:
            shapes = [np.shape(a) for a in args]
            exc.add_note(f"{f.__name__}: in_axes={in_axes} out_axes={out_axes} shapes={shapes}")
            raise


def cases(table):
    """[(f, gens), ...] as pytest params named after f (and a counter when repeated)."""
    seen = {}
    out = []
    for f, gens in table:
        n = seen[f.__name__] = seen.get(f.__name__, -1) + 1
        out.append(pytest.param(f, gens, id=f.__name__ if n == 0 else f"{f.__name__}{n}"))
    return out


def pattern_params(table, patterns_of):
    """[(f, specs), ...] as pytest params (f, specs, pattern), one per batching pattern
    ``patterns_of(specs)`` gives, named like ``f-bu`` (b: batched, u: unbatched)."""
    out = []
    for f, specs in table:
        for p in patterns_of(specs):
            tag = "".join("b" if b else "u" for b in p)
            out.append(pytest.param(f, specs, p, id=f"{f.__name__}-{tag}"))
    return out


def assert_runs_per_example(f, args, in_axes=0, *, where=None, raises=None):
    """``vmap(f)`` declares the per-example fallback (a ``PerformanceWarning`` naming
    ``where``, a ``file.py`` or ``file.py:line``) and gives what the loop gives: its
    stacked result, or the exception type ``raises`` that the loop itself raises.

    For code astvmap does not vectorise but the loop runs (DESIGN §7)."""
    import copy

    from astvmap import PerformanceWarning, vmap
    from astvmap.testing import assert_same, loop

    if raises is not None:
        with pytest.raises(raises), pytest.warns(PerformanceWarning) as record:
            vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
    else:
        want = loop(f, copy.deepcopy(args), in_axes, 0)
        with pytest.warns(PerformanceWarning) as record:
            got = vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
        assert_same(got, want)
    messages = [str(w.message) for w in record if issubclass(w.category, PerformanceWarning)]
    assert messages and "per example" in messages[0], messages
    if where is not None:
        assert where in messages[0], messages[0]
    return messages[0]


def generated_lines_run(fn, args: tuple) -> int:
    """How many lines of generated code run (tracing the generated frames only): the
    same for a batch of 40 as for a batch of 2 when nothing loops over the batch."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith("<astvmap") else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args)
    finally:
        sys.settrace(previous)
    return count
