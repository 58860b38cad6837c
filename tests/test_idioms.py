"""Issue 13: idioms of real per-example code, unchanged, against the loop oracle.

Each function is written as a user writes it for one example. vmap must equal the
loop (slice every mapped argument, call, stack) for batch sizes 1 and several,
with batched and unbatched argument mixes, and without a per-example fallback
(no PerformanceWarning).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.testing import assert_same, loop

from .harness import assert_runs_per_example

RNG = np.random.default_rng(13)


def check(f, args, in_axes=0):
    """vmap(f) equals the loop oracle, with no per-example loop."""
    want = loop(f, copy.deepcopy(args), in_axes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        got = vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
    assert_same(got, want)


# ------------------------------------------------------------ comprehensions
def row_max(M):
    return np.array([row.max() for row in M])


def _score(r):
    return np.sum(r * r) - r[0]


def scores(M):
    return np.array([_score(r) for r in M])


def dot_gen(xs, ws):
    return sum(x * w for x, w in zip(xs, ws))


def any_positive(x):
    return any(v > 0 for v in x)


def all_positive(x):
    return all(v > 0 for v in x)


def max_abs(x):
    return max(abs(v) for v in x)


def min_gen(x):
    return min(v * 2 for v in x)


def stacked_rows(M):
    return np.stack([r * i for i, r in enumerate(M)])


def list_of_rows(M, w):
    return [r + w for r in M]


def weighted(xs, ws):
    return np.array([x * w for x, w in zip(xs, ws)])


def nested_comp(M):
    return np.array([[v * 2 for v in row] for row in M])


COMPREHENSIONS = [row_max, scores, stacked_rows, nested_comp]


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("f", COMPREHENSIONS, ids=lambda f: f.__name__)
def test_comprehension_over_batched_matrix(f, batch):
    check(f, (RNG.normal(size=(batch, 3, 5)),))


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize(
    "f", [any_positive, all_positive, max_abs, min_gen], ids=lambda f: f.__name__
)
def test_reduction_of_generator(f, batch):
    x = RNG.normal(size=(batch, 6))
    x[0, 2] = np.nan  # Python's own order of comparisons, NaN included
    check(f, (x,))
    check(f, (np.abs(RNG.normal(size=(batch, 4))) + 0.1,))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("f", [dot_gen, weighted], ids=lambda f: f.__name__)
def test_zip_batched_unbatched_mixes(f, batch):
    xs, ws = RNG.normal(size=(batch, 4)), RNG.normal(size=(batch, 4))
    check(f, (xs, ws))
    check(f, (xs, ws[0]), in_axes=(0, None))
    check(f, (xs[0], ws), in_axes=(None, 0))


@pytest.mark.parametrize("batch", [1, 3])
def test_list_of_batched_rows(batch):
    M, w = RNG.normal(size=(batch, 3, 2)), RNG.normal(size=(batch, 2))
    check(list_of_rows, (M, w))
    check(list_of_rows, (M, w[0]), in_axes=(0, None))
    check(list_of_rows, (M[0], w), in_axes=(None, 0))


def any_of_vector_rows(M):
    return any(r for r in M)


def test_truth_of_batched_rows_is_refused():
    with pytest.raises(UnsupportedError, match="test_idioms.py"):
        vmap(any_of_vector_rows)(RNG.normal(size=(3, 2, 2)))


# ------------------------------------------------------- items in unpacking
def swap(a, i, j):
    a = a.copy()
    a[i], a[j] = a[j], a[i]
    return a


def bubble_sort(a):
    a = a.copy()
    n = len(a)
    for k in range(n):
        for m in range(n - 1 - k):
            if a[m] > a[m + 1]:
                a[m], a[m + 1] = a[m + 1], a[m]
    return a


def swap_rows(M):
    # Rows are views in the loop too: the second write sees the first (NumPy's own
    # pitfall, reproduced exactly).
    M = M.copy()
    M[0], M[1] = M[1], M[0]
    return M


def shift_and_name(a, i):
    a = a.copy()
    # Rows (views in the loop too) through a nested target.
    a[i], (b, a[0]) = a[0] * 2, (a[1:3], a[i] + 1)
    return a, b


@pytest.mark.parametrize("batch", [1, 4])
def test_swap_items(batch):
    a = RNG.normal(size=(batch, 5))
    i, j = RNG.integers(0, 5, batch), RNG.integers(0, 5, batch)
    check(swap, (a, i, j))
    check(swap, (a, 1, 3), in_axes=(0, None, None))
    check(swap, (a[0], i, j), in_axes=(None, 0, 0))
    check(swap, (a, i, 2), in_axes=(0, 0, None))


@pytest.mark.parametrize("batch", [1, 6])
def test_bubble_sort_swaps_under_batched_condition(batch):
    check(bubble_sort, (RNG.normal(size=(batch, 6)),))


@pytest.mark.parametrize("batch", [1, 3])
def test_swap_rows_and_nested_targets(batch):
    check(swap_rows, (RNG.normal(size=(batch, 3, 2)),))
    a = RNG.normal(size=(batch, 4, 3))
    check(shift_and_name, (a, RNG.integers(0, 4, batch)))
    check(shift_and_name, (a, 2), in_axes=(0, None))


def shift_nested_scalars(a, i):
    a = a.copy()
    a[i], (b, a[0]) = a[0] * 2, (a[i], a[i] + 1)
    return a, b


def test_nested_unpacking_of_batched_scalars_runs_per_example():
    # The inner tuple would hold views of `a` that the first item write changes.
    args = (RNG.normal(size=(3, 4)), np.array([1, 2, 3]))
    assert_runs_per_example(shift_nested_scalars, args, where="test_idioms.py")


# ------------------------------------------------------------ loop `else`
def first_above(x, t):
    idx = -1
    for i in range(len(x)):
        if x[i] > t:
            idx = i
            break
    else:
        idx = len(x) + 100
    return idx


def sqrt_newton(x):
    y = x
    n = 0
    while n < 20:
        y = 0.5 * (y + x / y)
        n += 1
        if abs(y * y - x) < 1e-6:
            break
    else:
        y = -1.0
    return y, n


def is_prime(n):
    d = 2
    r = 1
    while d * d <= n:
        if n % d == 0:
            r = 0
            break
        d += 1
    else:
        r = 2
    return r, d


def count_runs(M, t):
    # An inner loop with `else` and `continue`, inside an outer loop.
    hits = 0
    for row in M:
        for v in row:
            if v < -5:
                continue
            if v > t:
                break
        else:
            hits += 1
    return hits


@pytest.mark.parametrize("batch", [1, 5])
def test_for_else_runs_in_lanes_that_did_not_break(batch):
    x = RNG.normal(size=(batch, 6))
    t = RNG.normal(size=batch) + 1.0
    check(first_above, (x, t))
    check(first_above, (x, 0.9), in_axes=(0, None))
    check(first_above, (x[0], t), in_axes=(None, 0))


@pytest.mark.parametrize("batch", [1, 4])
def test_while_else(batch):
    x = np.array([4.0, 1e30, 2.0, 1e-30])[:batch]
    check(sqrt_newton, (x,))
    check(is_prime, (np.array([7, 8, 9, 97, 1, 2])[: batch + 2],))


@pytest.mark.parametrize("batch", [1, 4])
def test_nested_loop_else(batch):
    M = RNG.normal(size=(batch, 4, 3))
    check(count_runs, (M, RNG.normal(size=batch) + 1.0))
    check(count_runs, (M, 1.0), in_axes=(0, None))


def else_after_return(x):
    for v in x:
        if v > 1:
            return v
        if v < -1:
            break
    else:
        return 0.0
    return -1.0


def test_loop_else_with_masked_return_runs_per_example():
    assert_runs_per_example(
        else_after_return, (RNG.normal(size=(3, 4)),), where="returns from some"
    )


# ------------------------------------------------- range with a batched stop
def sum_evens(x, n):
    s = 0.0
    for i in range(0, n, 2):
        s += x[i]
    return s


def weighted_tail(x, a, n):
    s = 0.0
    for i in range(a, n):
        s += x[i] * i
    return s


def countdown(x, n):
    s = 0.0
    for i in range(len(x) - 1, n, -1):
        s = s * 2 + x[i]
    return s


def runtime_step(x, n, k):
    s = 0.0
    for i in range(0, n, k):
        s += x[i]
    return s


@pytest.mark.parametrize("batch", [1, 5])
def test_range_with_start_and_step(batch):
    x = RNG.normal(size=(batch, 8))
    n = RNG.integers(0, 9, batch)
    check(sum_evens, (x, n))
    check(sum_evens, (x[0], n), in_axes=(None, 0))
    check(weighted_tail, (x, 2, n), in_axes=(0, None, 0))
    check(countdown, (x, n - 1))


def test_range_batched_start_or_runtime_step_runs_per_example():
    x, n = RNG.normal(size=(3, 8)), np.array([2, 5, 7])
    assert_runs_per_example(weighted_tail, (x, n // 2, n), where="batched start or step")
    assert_runs_per_example(runtime_step, (x, n, 2), (0, 0, None), where="step not known")


@pytest.mark.parametrize("batch", [1, 3])
def test_control_programs_once_refused(batch):
    from .programs import control as c

    check(c.loop_else, (np.array([3.0, 8.0, 1.0, 0.5, 40.0])[: batch + 2],))
    check(c.range_start_step, (np.array([3, 8, 1, 0, 6])[: batch + 2],))


# ------------------------------------------------ recursion to a static depth
def _pair_tree(x, depth):
    if depth == 0:
        return x
    return _pair_tree(x[::2], depth - 1) + _pair_tree(x[1::2], depth - 1) * 0.5


def pair_tree(x):
    return _pair_tree(x, 3)


DEPTH = 2


def _poly(x, k):
    if k <= 0:
        return np.ones_like(x)
    return x * _poly(x, k - 1) + k


def poly(x, c):
    return _poly(x, DEPTH + 1) * c


def data_depth(x):
    return _pair_tree(x, int(x[0] > 0))


def runtime_depth(x, d):
    return _pair_tree(x, d)


def too_deep(x):
    return _poly(x, 200)


@pytest.mark.parametrize("batch", [1, 4])
def test_recursion_to_a_constant_depth(batch):
    x = RNG.normal(size=(batch, 8))
    check(pair_tree, (x,))
    check(poly, (x, RNG.normal(size=batch)))
    check(poly, (x, 2.0), in_axes=(0, None))
    check(poly, (x[0], RNG.normal(size=batch)), in_axes=(None, 0))


def test_recursion_depth_not_known_when_transforming_runs_per_example():
    x = RNG.normal(size=(3, 8))
    x[:, 0] = [-1.0, 1.0, 1.0]
    # The depth, hence the shape, differs per example: the loop's stacking raises.
    assert_runs_per_example(data_depth, (x,), where="depth not decided", raises=ValueError)
    assert_runs_per_example(runtime_depth, (x, 2), (0, None), where="depth not decided")
    assert_runs_per_example(too_deep, (x,), where="deeper than")


def comprehensions_under_masks(M):
    y = np.zeros(M.shape[0])
    if M.sum() > 0:
        y = np.array([r.max() for r in M])
    k = 0
    while k < 3 and any(v > 0.5 for v in y):
        y = np.array([v * 0.5 for v in y])
        k += 1
    return y, k


@pytest.mark.parametrize("batch", [1, 6])
def test_comprehensions_under_batched_control_flow(batch):
    check(comprehensions_under_masks, (RNG.normal(size=(batch, 3, 4)),))


# ------------------------------------------- lambdas closing over batched values
def lambda_closure(x, w):
    scale = lambda v: v * w + 1.0  # noqa: E731 - the idiom under test
    return scale(x) + (lambda a, b: a - b)(x, w)


def lambda_over_local(x, w):
    s = np.sum(x)
    norm = lambda v: v / s  # noqa: E731
    y = norm(x) * 2
    return y, norm(w)


def lambda_in_comprehension(M, w):
    k = lambda v: v * w  # noqa: E731
    return np.array([k(r) for r in M])


@pytest.mark.parametrize("batch", [1, 4])
def test_lambda_called_directly(batch):
    x, w = RNG.normal(size=(batch, 3)), RNG.normal(size=(batch, 3))
    check(lambda_closure, (x, w))
    check(lambda_closure, (x, 2.0), in_axes=(0, None))
    check(lambda_closure, (x[0], w), in_axes=(None, 0))
    check(lambda_over_local, (x, w))
    check(lambda_over_local, (x[0], w), in_axes=(None, 0))
    check(lambda_in_comprehension, (RNG.normal(size=(batch, 2, 3)), w))


def lambda_through_map(x):
    k = lambda v: v * x  # noqa: E731
    return list(map(k, [1.0, 2.0]))


def test_lambda_handed_to_untransformed_code_runs_per_example():
    x = RNG.normal(size=(3, 2))
    with pytest.warns(PerformanceWarning, match="reads batched values"):
        got = vmap(lambda_through_map)(x)
    assert_same(got, loop(lambda_through_map, (x,)))
