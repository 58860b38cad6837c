"""Issue 13, second batch: idioms of real library code (transforms3d, ahrs,
numpy-financial, colour), minimised, against the loop oracle.

``vectorised`` checks that vmap equals the loop for batch sizes 1 and several and every
listed in_axes mix, with no PerformanceWarning and with the function's body run once per
vmapped call (``_tick`` counts it: a per-example loop would run it once per example).
``falls_back`` checks a form that only the loop can answer: equal to the loop, with the
warning naming this file.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import KeysView, ValuesView
from decimal import Decimal

import numpy as np
import pytest

from astvmap import PerformanceWarning, vmap
from astvmap.testing import assert_same, loop

from .harness import assert_runs_per_example

RNG = np.random.default_rng(1302)
RUNS: list[int] = []


def _tick() -> None:
    """Called once by each function body below: counts how often the body runs."""
    RUNS.append(1)


def _example0(args: tuple, in_axes: tuple) -> tuple:
    return tuple(a if ax is not None else a[0] for a, ax in zip(args, in_axes))


def vectorised(f, make, mixes) -> None:
    """vmap(f) equals the loop at batch sizes 1 and 4 for each in_axes mix (arguments a
    mix leaves unbatched are example 0), and runs the body once, not per example."""
    for batch in (1, 4):
        full = make(batch)
        for in_axes in mixes:
            args = _example0(full, in_axes)
            want = loop(f, copy.deepcopy(args), in_axes)
            RUNS.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("error", PerformanceWarning)
                got = vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
            assert len(RUNS) == 1, f"the body ran {len(RUNS)} times for a batch of {batch}"
            assert_same(got, want)


def falls_back(f, args, in_axes=0, match: str = "") -> None:
    """Only the loop can answer it: vmap runs f per example, says so, and equals it."""
    want = loop(f, copy.deepcopy(args), in_axes)
    with pytest.warns(PerformanceWarning, match=match) as caught:
        got = vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
    assert "test_idioms2.py" in str(caught[0].message)
    assert_same(got, want)


def vec(batch: int, n: int = 3) -> np.ndarray:
    return RNG.normal(size=(batch, n))


def scal(batch: int) -> np.ndarray:
    return RNG.uniform(0.1, 2.0, size=batch)


# ------------------------------------------------------------ isinstance, statically
def decimal_check(values, rate):  # numpy_financial.mirr
    _tick()
    n = values.size
    if isinstance(rate, Decimal):
        n = Decimal(n)
    return values.sum() * (1 + rate) ** (1 / (n - 1))


def view_check(a):  # colour.utilities.as_array
    _tick()
    if isinstance(a, (KeysView, ValuesView)):
        a = list(a)
    if not isinstance(a, np.ndarray):
        raise TypeError("not an array")
    return np.asarray(a) * 2.0


def as_array(a):
    if isinstance(a, (KeysView, ValuesView)):
        a = list(a)
    return np.asarray(a)


def matrix_times(m, v):  # colour.algebra.vecmul, m unbatched
    _tick()
    return np.matmul(as_array(m), as_array(v)[..., None]).squeeze(-1)


def test_isinstance_decided_from_the_per_example_type():
    vectorised(decimal_check, lambda b: (vec(b, 5), scal(b)), [(0, 0), (0, None), (None, 0)])
    vectorised(view_check, lambda b: (vec(b),), [(0,)])
    # An unbatched array of known rank is decided too, so its branch keeps the rank.
    vectorised(matrix_times, lambda b: (RNG.normal(size=(b, 3, 3)), vec(b)), [(None, 0), (0, 0)])


def zero_d_check(x):
    y = np.asarray(x)  # a 0-d array per example, where x is a NumPy scalar
    if isinstance(y, np.ndarray):
        return x * 1.0
    return x * 2.0


def float_check(x):
    return x * (2.0 if isinstance(x, float) else 3.0)  # np.float64 is a float; float32 not


def matrix_check(m):
    return m.sum() if isinstance(m, np.matrix) else m.sum() * 2  # a subclass could be one


@pytest.mark.parametrize("batch", [1, 4])
def test_isinstance_the_examples_may_answer_differently_runs_per_example(batch):
    # Rank 0: a NumPy scalar, a Python number or a 0-d array; the transform knows which
    # kind, not which of these, so the loop answers (astvmap once said False here).
    falls_back(zero_d_check, (scal(batch),), match="isinstance")
    falls_back(float_check, (scal(batch),), match="isinstance")
    falls_back(float_check, (scal(batch).astype(np.float32),), match="isinstance")
    falls_back(matrix_check, (RNG.normal(size=(batch, 2, 2)),), match="isinstance")


# ------------------------------------------------------------ map over a literal list
def mapped_asarray(rate, nper, pmt, when=0):  # numpy_financial.fv
    _tick()
    rate, nper, pmt, when = map(np.asarray, [rate, nper, pmt, when])
    temp = (1 + rate) ** nper
    return -(pmt * (1 + rate * when) / rate * (temp - 1)) + temp


def mapped_pairs(a, b):
    _tick()
    s, d = map(np.add, [a, b], (b, 1.0))
    return s * d


def test_map_over_literal_lists_is_written_out():
    make = lambda b: (scal(b) * 0.1, scal(b) * 10, -scal(b) * 100)  # noqa: E731
    vectorised(mapped_asarray, make, [(0, 0, 0), (None, 0, None), (0, None, 0)])
    vectorised(mapped_pairs, lambda b: (vec(b), vec(b)), [(0, 0), (None, 0), (0, None)])


def mapped_over_name(a, b):
    items = [a, b]
    x, y = map(np.sort, items)  # not a literal: map itself is handed the batch
    return x - y


def test_map_over_a_name_still_runs_per_example():
    falls_back(mapped_over_name, (vec(3), vec(3)), match="map")


# ------------------------------------------------------------ .flat of a batched array
def flat_unpack(M):  # transforms3d.quaternions.mat2quat
    _tick()
    Qxx, Qyx, Qzx, Qxy, Qyy, Qzy, Qxz, Qyz, Qzz = M.flat
    return np.array([Qxx - Qyy, Qyx + Qxy, Qzz * Qxz, Qzy - Qyz, Qzx])


def flat_index(M):
    _tick()
    return M.flat[4] + M.flat[-1] * len(M.flat)


def flat_write(M):
    M = M.copy()
    M.flat[0] = 1.0
    return M


def test_flat_reads_each_example_in_c_order():
    vectorised(flat_unpack, lambda b: (RNG.normal(size=(b, 3, 3)),), [(0,)])
    vectorised(flat_index, lambda b: (RNG.normal(size=(b, 2, 3)),), [(0,)])


def flat_assign(M):
    M = M.copy()
    M.flat = [1.0, 2.0]  # cycled over each example; over the batch it would not be
    return M


def shape_assign(M):
    M = M.copy()
    M.shape = (4,)
    return M


@pytest.mark.parametrize(
    "f, match",
    [(flat_write, "through .flat"), (flat_assign, "to .flat"), (shape_assign, "to .shape")],
)
def test_writing_through_flat_or_shape_runs_per_example(f, match):
    x = RNG.normal(size=(3, 3, 3)) if f is flat_assign else RNG.normal(size=(2, 2, 2))
    message = assert_runs_per_example(f, (x,), where=match)
    assert "test_idioms2.py" in message


# ------------------------------------------------------------ starred items, list + list
def starred_vector(n, e):  # ahrs hughes
    _tick()
    q = np.array([n, *e])
    return q / np.linalg.norm(q)


def starred_tuple(x, y):
    _tick()
    t = (x, y)
    return np.stack([*t, x * y, *[y, x]])


def list_concat(axis, angle):  # ahrs axang2quat
    _tick()
    s = np.sin(angle / 2.0)
    q = np.array([np.cos(angle / 2.0)] + list(s * axis))
    return q / np.linalg.norm(q)


def list_repeat(x):
    _tick()
    return np.array([x] * 3) + np.array(2 * [x, -x]).sum(axis=0)


def starred_after_a_known_tuple(a, n, e):
    _tick()
    t = (a, a * 2)
    return np.array([*t, n, *e])  # n (unbatched) gets the batch axis, not *e


def test_starred_and_joined_sequences_of_batched_items():
    make = lambda b: (scal(b), scal(b), vec(b, 4))  # noqa: E731
    vectorised(starred_after_a_known_tuple, make, [(0, None, 0), (0, 0, 0)])
    vectorised(starred_vector, lambda b: (scal(b), vec(b)), [(0, 0), (None, 0)])
    vectorised(starred_tuple, lambda b: (vec(b), vec(b)), [(0, 0), (0, None), (None, 0)])
    vectorised(list_concat, lambda b: (vec(b), scal(b)), [(0, 0), (0, None), (None, 0)])
    vectorised(list_repeat, lambda b: (vec(b),), [(0,)])


def starred_mixed(u, e):
    return np.array([*u, *e])


def test_starring_an_unbatched_array_next_to_batched_items_runs_per_example():
    message = assert_runs_per_example(starred_mixed, (np.ones(2), vec(3)), (None, 0))
    assert "starred" in message and "test_idioms2.py" in message


# ------------------------------------------------------------ joined pieces, named lists
def concat_literal_piece(v, theta):  # transforms3d.quaternions.axangle2quat
    _tick()
    t2 = theta / 2.0
    return np.concatenate(([np.cos(t2)], v * np.sin(t2)))


def tstack(a):
    return np.asarray(a).T


def stack_named_list(x, y):  # colour's tstack([a, b])
    _tick()
    return tstack([x, y * 2.0])


def test_joined_literal_pieces_and_lists_held_in_names():
    vectorised(concat_literal_piece, lambda b: (vec(b), scal(b)), [(0, 0), (None, 0), (0, None)])
    vectorised(stack_named_list, lambda b: (scal(b), scal(b)), [(0, 0), (None, 0)])


# ------------------------------------------------------------ np.c_ and np.r_
def columns(a, b, c):  # ahrs ecompass / TRIAD
    _tick()
    return np.c_[a, b, c].T @ a


def rows(a, b):  # ahrs FLAE
    _tick()
    return np.r_[[a / np.linalg.norm(a)], [b]]


def joined(a, b):
    _tick()
    return np.r_[a, b] + np.c_[np.outer(a, b), np.outer(b, a)].sum()


def test_index_tricks_with_batched_items():
    mixes3 = [(0, 0, 0), (None, 0, None), (0, None, None)]
    vectorised(columns, lambda b: (vec(b), vec(b), vec(b)), mixes3)
    vectorised(rows, lambda b: (vec(b), vec(b)), [(0, 0), (None, 0), (0, None)])
    vectorised(joined, lambda b: (vec(b), vec(b)), [(0, 0), (None, 0)])


def r_of_scalar(x, v):
    return np.r_[x, v]


def test_index_tricks_of_scalars_run_per_example():
    falls_back(r_of_scalar, (scal(3), vec(3)), match="np.r_")


# ------------------------------------------------------------ unbatched values of unknown rank
def _conj(q):
    return q * np.array([1.0, -1, -1, -1])


def unpack_helper_result(v, q):  # transforms3d.quaternions.rotate_vector
    _tick()
    w1, x1, y1, z1 = v
    w2, x2, y2, z2 = _conj(q)
    return np.array([w1 * w2 - x1 * x2, y1 * z2 - z1 * y2])


def test_unpacking_an_unbatched_array_of_known_rank():
    make = lambda b: (RNG.normal(size=(b, 4)), RNG.normal(size=(b, 4)))  # noqa: E731
    vectorised(unpack_helper_result, make, [(0, 0), (0, None), (None, 0)])


def _either(flag):
    try:
        return {"a": [1.0, 0.5, 2.0]}[flag]
    except KeyError:
        return np.eye(3)


def unknown_rank_operand(x, flag):
    return x * np.asarray(_either(flag))


def unknown_rank_matmul(x, flag):
    return np.diag(x) @ np.asarray(_either(flag))


@pytest.mark.parametrize("flag", ["a", "b"])
def test_unbatched_operand_of_unknown_rank_runs_per_example(flag):
    # The loop has each example's operand whole: it computes what the transform
    # cannot size (refused before, though nothing batched was unknown).
    falls_back(unknown_rank_operand, (vec(3), flag), (0, None), match="rank")
    falls_back(unknown_rank_matmul, (vec(3), flag), (0, None), match="rank")


# ------------------------------------------------------------ a selection's k-th item
def last_unit_eigenvalue(x):  # transforms3d.axangles.mat2axangle: W[:, i[-1]]
    _tick()
    i = np.where(np.abs(x - 1.0) < 0.5)[0]
    return i[-1] * 10 + i[0]


def second_and_second_last(x, y):
    _tick()
    s = y[x > 0]
    return s[1] * s[-2]


def item_under_condition(x):
    s = x[x > 0]
    if x[0] > 0:
        return s[1]
    return x[0]


def _near_one(b: int) -> np.ndarray:
    x = RNG.uniform(-3.0, 3.0, size=(b, 6))
    x[:, 1] = x[:, 4] = 1.0  # at least two places selected in every example
    return x


def _positive_pairs(b: int) -> np.ndarray:
    x = RNG.normal(size=(b, 6))
    x[:, 2] = x[:, 5] = 1.0
    return x


def test_a_selections_item_at_a_static_position():
    vectorised(last_unit_eigenvalue, lambda b: (_near_one(b),), [(0,)])
    make = lambda b: (_positive_pairs(b), RNG.normal(size=(b, 6)))  # noqa: E731
    vectorised(second_and_second_last, make, [(0, 0), (0, None)])


def test_a_selection_too_short_raises_the_loops_index_error_where_it_runs():
    # The second example skips the branch, so its single selected value is never indexed.
    x = np.array([[1.0, 2, -2, -3], [-1, 2, -3, -4]])
    assert_same(vmap(item_under_condition)(x), loop(item_under_condition, (x,)))
    x[0, 1] = -2.0  # now the first example runs the branch with one selected value
    with pytest.raises(IndexError):
        loop(item_under_condition, (x,))
    with pytest.raises(IndexError, match="index 1 is out of bounds"):
        vmap(item_under_condition)(x)


# ------------------------------------------------------------ dataclasses.astuple
@dataclasses.dataclass
class _Terms:
    scale: np.ndarray
    shift: float
    power: np.ndarray


def _terms(x, y):
    return _Terms(x * 2.0, 0.5, y)


def astuple_fields(x, y):  # colour.difference.delta_E_CIE2000
    _tick()
    s, t, p = dataclasses.astuple(_terms(x, y))
    return s**2 + t * p


def test_astuple_of_a_dataclass_of_arrays():
    vectorised(astuple_fields, lambda b: (vec(b), vec(b)), [(0, 0), (0, None), (None, 0)])


# ------------------------------------------------------------ joining comprehensions
def vstack_rows(M):
    _tick()
    return np.vstack([r for r in M])  # astvmap once gave (B, 20) here, not (B, 4, 5)


def hstack_items(M):
    _tick()
    return np.hstack([r[0] for r in M])


def column_rows(M):
    _tick()
    return np.column_stack([r for r in M])


def concat_flat(M):
    _tick()
    return np.concatenate([r * 2 for r in M], axis=None)


def stack_mapped(a, b):
    _tick()
    x, y = list(map(np.sin, [a, b]))
    return np.stack(tuple(map(np.cos, (x, y))))


def test_joining_pieces_from_a_comprehension_prepares_each():
    for f in (vstack_rows, hstack_items, column_rows, concat_flat):
        vectorised(f, lambda b: (RNG.normal(size=(b, 4, 5)),), [(0,)])
    vectorised(stack_mapped, lambda b: (vec(b), vec(b)), [(0, 0)])


def map_read_twice(a, b):
    m = map(np.asarray, [a, b])
    first = list(m)
    second = list(m)  # empty: the iterator is spent (a written-out list would not be)
    return first[0] + len(second)


def test_a_map_kept_in_a_name_is_not_written_out():
    falls_back(map_read_twice, (vec(3), vec(3)), match="map")
