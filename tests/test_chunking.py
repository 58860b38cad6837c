"""Pieces of a batch through the same generated function: chunk_size=, cache blocking,
workers= (issues 16 and 17). Every result equals the unchunked call and the loop."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import astvmap
from astvmap import chunking, vmap
from astvmap.testing import assert_same, loop

from .programs import control as c
from .programs import names

rng = np.random.default_rng(0)


def scale_and_total(p, s):
    y = np.tanh(p["x"] * s) + p["b"]
    return y, y.sum(), 7.0


def scale_and_constant(x, w):
    return x * w, w * 2.0


def normalise(x):
    return (x - x.mean()) / (x.std() + 1.0)


def outer_reduced(x):
    return np.outer(x, x).sum(axis=0)


def layer(x, W):
    return np.tanh(x @ W)


def dict_input():
    B = 10
    return {"x": rng.standard_normal((B, 4)), "b": rng.standard_normal(4)}, 1.5


@pytest.mark.parametrize("k", [1, 5, 3, 25])  # one at a time, a divisor, a non-divisor, > batch
def test_chunk_size_gives_the_unchunked_result_for_every_k(k):
    p, s = dict_input()
    in_axes = ({"x": 0, "b": None}, None)
    whole = vmap(scale_and_total, in_axes=in_axes)(p, s)
    got = vmap(scale_and_total, in_axes=in_axes, chunk_size=k)(p, s)
    assert_same(got, whole, rtol=0, atol=0)
    assert_same(got, loop(scale_and_total, (p, s), in_axes), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [1, 4, 7])
def test_chunk_size_with_out_axes_none_for_an_unbatched_output_and_in_axes_1(k):
    X, w = rng.standard_normal((3, 9)), rng.standard_normal(3)
    kw = dict(in_axes=(1, None), out_axes=(1, None))
    want = vmap(scale_and_constant, **kw)(X, w)
    got = vmap(scale_and_constant, **kw, chunk_size=k)(X, w)
    assert_same(got, want, rtol=0, atol=0)
    assert got[0].shape == (3, 9) and got[1].shape == (3,)
    assert_same(got, loop(scale_and_constant, (X, w), (1, None), (1, None)), rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_chunk_size_under_nesting(k):
    X = rng.standard_normal((5, 3, 4))
    want = loop(lambda x: loop(normalise, (x,), 0), (X,), 0)
    outer_chunked = vmap(vmap(normalise), chunk_size=k)(X)
    inner_chunked = vmap(vmap(normalise, chunk_size=k))(X)
    np.testing.assert_allclose(outer_chunked, want, rtol=1e-12)
    np.testing.assert_allclose(inner_chunked, want, rtol=1e-12)
    np.testing.assert_array_equal(outer_chunked, vmap(vmap(normalise))(X))


@pytest.mark.parametrize("k", [1, 4])  # one row at a time; 13 = 3 x 4 + a piece of one
def test_chunk_size_with_a_matmul_is_bit_identical(k):
    """A one-row matmul goes through BLAS's gemv, whose rounding differs from gemm's: a
    piece of one example runs with a neighbour, so the cut never shows in the result."""
    X, W = rng.standard_normal((13, 64)), rng.standard_normal((64, 32))
    got = vmap(layer, in_axes=(0, None), chunk_size=k)(X, W)
    np.testing.assert_array_equal(got, vmap(layer, in_axes=(0, None))(X, W))
    np.testing.assert_allclose(got, loop(layer, (X, W), (0, None)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [{"chunk_size": 0}, {"chunk_size": -2}, {"chunk_size": 1.5}, {"chunk_size": True}]
    + [{"workers": 0}, {"workers": -2}, {"workers": 2.0}, {"workers": False}],
)
def test_bad_chunk_size_or_workers_is_a_value_error(kw):
    with pytest.raises(ValueError, match="chunk_size|workers"):
        vmap(names.np_sum, **kw)


@pytest.mark.parametrize("kw", [{"chunk_size": 4}, {"workers": 2}])
def test_axis_name_with_chunks_is_refused_clearly(kw):
    with pytest.raises(ValueError, match="collectives .* whole batch"):
        vmap(names.np_sum, axis_name="batch", **kw)


def test_peak_memory_falls_with_chunk_size():
    """A per-example outer product reduced afterwards: the (B, n, n) temporary is what
    chunk_size bounds. The trend is asserted, not a time."""
    X = rng.standard_normal((512, 64))
    want = vmap(outer_reduced)(X)
    peaks = {}
    for k in [None, 256, 64, 8]:
        f = vmap(outer_reduced, chunk_size=k)
        f(X[:2])  # transform outside the measurement
        tracemalloc.start()
        got = f(X)
        peaks[k] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_array_equal(got, want)
    temporary = 512 * 64 * 64 * 8  # the whole batch's outer products
    assert peaks[None] >= temporary
    assert peaks[None] > peaks[256] > peaks[64] > peaks[8]
    assert peaks[8] < temporary / 20


def test_an_error_in_a_piece_says_which_examples_the_piece_held():
    x = np.array([1.0, 2.0, 3.0, -4.0, 5.0, -6.0])
    with pytest.raises(ValueError, match="negative input") as got:
        vmap(c.raise_if_negative, chunk_size=2)(x)
    note = "\n".join(got.value.__notes__)
    assert "examples that reach it: 1 (1 of 2)" in note, note
    assert "piece of examples 2..3 of the batch of 6" in note, note


def test_the_fallback_warning_points_at_the_callers_line_through_pieces():
    X, k = rng.standard_normal((4, 6)), np.array([0.25, 0.5, 0.25])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = vmap(names.binned, in_axes=(0, None), chunk_size=3)(X, k)
    (w,) = [w for w in caught if issubclass(w.category, astvmap.PerformanceWarning)][:1]
    assert w.filename == __file__
    want = np.stack([np.histogram(x, bins=3, range=(-3.0, 3.0))[0] * k for x in X])
    np.testing.assert_allclose(out, want)


# ------------------------------------------------------------- cache blocking
def test_cache_blocking_measures_once_and_keeps_the_result_identical(monkeypatch):
    monkeypatch.setattr(chunking, "AUTO_MIN_BATCH", 64)
    monkeypatch.setattr(chunking, "MIN_PIECE", 16)
    monkeypatch.setattr(chunking, "l2_bytes", lambda: 16 * 32 * chunking.WORKING_SET_FACTOR)
    X = rng.standard_normal((200, 4))
    f = vmap(normalise)
    assert f.cache_blocking
    chunking._decisions.pop(normalise.__code__, None)  # measured afresh in this test
    unblocked = vmap(normalise, chunk_size=10**6)(X)
    rounds = chunking._Blocking.ROUNDS
    for call in range(2 * rounds + 1):  # pieces and whole, timed in turn; then as decided
        np.testing.assert_array_equal(f(X), unblocked)
        decided = list(chunking.blocking_decision(f).values())
        assert decided == ([None] if call < 2 * rounds - 1 else [decided[0]])
    assert decided[0] in (True, False)
    # The decision belongs to the function, not the wrapper: vmap(f)(x) inline reuses it.
    assert chunking.blocking_decision(vmap(normalise)) == chunking.blocking_decision(f)


def test_small_batches_and_an_explicit_chunk_size_do_not_block():
    f = vmap(normalise)
    f(rng.standard_normal((100, 9)))
    assert ((True, (9,), "float64"),) not in chunking.blocking_decision(f)
    assert not vmap(normalise, chunk_size=4).cache_blocking


def test_cache_blocking_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("ASTVMAP_BLOCKING", "0")
    assert not vmap(normalise).cache_blocking


# -------------------------------------------------------------------- workers
def test_workers_give_the_one_thread_result(monkeypatch):
    monkeypatch.setattr(chunking, "MIN_BYTES_PER_WORKER", 64)
    X = rng.standard_normal((300, 5))
    want = vmap(normalise)(X)
    for n in (2, 3, -1):
        got = vmap(normalise, workers=n)(X)
        np.testing.assert_array_equal(got, want)
    p, s = {"x": rng.standard_normal((300, 4)), "b": rng.standard_normal(4)}, 0.5
    in_axes = ({"x": 0, "b": None}, None)
    got = vmap(scale_and_total, in_axes=in_axes, workers=2, chunk_size=7)(p, s)
    assert_same(got, vmap(scale_and_total, in_axes=in_axes)(p, s), rtol=0, atol=0)


def test_workers_use_threads_only_for_large_batches(monkeypatch):
    used = []
    real = chunking._pool
    monkeypatch.setattr(chunking, "_pool", lambda n: used.append(n) or real(n))
    f = vmap(normalise, workers=2)
    f(rng.standard_normal((100, 5)))
    assert used == []
    f(rng.standard_normal((chunking.MIN_BYTES_PER_WORKER // 8, 5)))  # 5 MB over 2 threads
    assert used and used[0] == 1  # this thread and one more
