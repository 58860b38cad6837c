"""Masked control flow (issue 4, DESIGN §6) against the loop oracle.

Branches: every program is run on batches where all lanes, no lane, and some
lanes take each branch. The lanes' data is drawn per branch ("regions"), so the
branch pattern is chosen first and the values then fall in the chosen branches.
Loops: the data spans orders of magnitude, so lanes stop at very different
iterations. Exceptions (UnboundLocalError, raise) must be raised exactly when the
loop raises. The generated code must not loop over the batch in Python.
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import astvmap
from astvmap import UnsupportedError, vmap

from . import harness as h
from .harness import generated_lines_run
from .oracle import check, loop
from .programs import control as c

SEED = st.integers(0, 2**32 - 1)
BATCH = st.sampled_from([1, 2, 5, 8])


# ------------------------------------------------------------- lane samplers
# A sampler makes one example's value of one argument from a numpy Generator.
Sampler = Callable[[np.random.Generator], Any]


def uniform(lo: float, hi: float) -> Sampler:
    return lambda rng: float(rng.uniform(lo, hi))


def one_of(*values: Any) -> Sampler:
    return lambda rng: values[rng.integers(len(values))]


def int_mod3(r: int) -> Sampler:
    """An integer (negative ones too) with n % 3 == r."""
    return lambda rng: np.int64(3 * rng.integers(-50, 50) + r)


def vector(lo: float, hi: float, n: int = 4) -> Sampler:
    """A vector whose sum lies in [lo, hi] (a branch on ``x.sum()``)."""

    def sample(rng):
        v = rng.standard_normal(n)
        return v - v.mean() + rng.uniform(lo, hi) / n

    return sample


def matrix(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((3, 2))


POS, NEG = uniform(0.1, 5.0), uniform(-5.0, -0.1)
ANY = uniform(-5.0, 5.0)


def stack(values: list) -> np.ndarray:
    return np.stack([np.asarray(v) for v in values])


def lane_args(regions: list[tuple[Sampler, ...]], choice: list[int], seed: int) -> tuple:
    """Batched arguments whose lane ``k`` takes branch ``choice[k]``."""
    rng = np.random.default_rng(seed)
    lanes = [[s(rng) for s in regions[j]] for j in choice]
    return tuple(stack([lane[i] for lane in lanes]) for i in range(len(regions[0])))


@st.composite
def branch_choice(draw: Any, n_branches: int, kind: str) -> list[int]:
    """Which branch each lane takes.

    ``all``: every lane takes one branch (so no lane takes the others);
    ``without``: one branch is taken by no lane, the others are mixed;
    ``mixed``: every branch is taken by at least one lane.
    """
    batch = draw(BATCH)
    if kind == "all":
        return [draw(st.integers(0, n_branches - 1))] * batch
    if kind == "without":
        skip = draw(st.integers(0, n_branches - 1))
        rest = [j for j in range(n_branches) if j != skip]
        return draw(st.lists(st.sampled_from(rest), min_size=batch, max_size=batch))
    extra = draw(st.lists(st.integers(0, n_branches - 1), max_size=4))
    return draw(st.permutations(list(range(n_branches)) + extra))


def check_like_loop(f: Callable, *args: Any, in_axes: Any = 0, **kw: Any) -> BaseException | None:
    """``check``, where the loop raising means vmap must raise the same exception.

    Returns the loop's exception (None if it ran), so callers can assert which
    case they were in.
    """
    try:
        loop(f, args, in_axes)
    except Exception as want:  # noqa: BLE001 - any exception the loop raises
        with pytest.raises(type(want)) as got:
            vmap(f, in_axes=in_axes)(*args)
        assert str(got.value) == str(want)
        return want
    check(f, *args, in_axes=in_axes, **kw)
    return None


# -------------------------------------------------------------------- branches
BRANCHES = {
    "relu_if": (c.relu_if, [(POS,), (NEG,)]),
    "if_without_else": (c.if_without_else, [(POS,), (NEG,)]),
    "elif_chain": (
        c.elif_chain,
        [(uniform(-5, -1.1),), (uniform(-0.9, -0.1),), (uniform(0.1, 0.9),), (uniform(1.1, 5),)],
    ),
    "nested_if": (c.nested_if, [(POS, POS), (POS, NEG), (NEG, POS), (NEG, NEG)]),
    "recip_if": (c.recip_if, [(POS,), (one_of(0.0, -0.0),)]),
    "log_or_zero": (c.log_or_zero, [(POS,), (uniform(-5, 0),), (one_of(0.0),)]),
    "ternary": (c.ternary, [(POS,), (NEG,)]),
    "ternary_vectors": (c.ternary_vectors, [(vector(0.1, 3),), (vector(-3, -0.1),)]),
    "bool_ops": (c.bool_ops, [(POS, POS), (POS, NEG), (NEG, POS), (NEG, NEG)]),
    "bool_values": (
        c.bool_values,
        [(one_of(0.0), one_of(0.0)), (one_of(0.0), ANY), (ANY, one_of(0.0)), (POS, NEG)],
    ),
    "chained_compare": (
        c.chained_compare,
        # The bounds themselves: 1.0 is inside (<=), -1.0 is outside (<).
        [(uniform(-0.9, 0.9),), (one_of(1.0),), (uniform(-5, -1.1),), (one_of(-1.0),)],
    ),
    "min_max_abs": (
        c.min_max_abs,
        [
            (uniform(-5, 0), uniform(0.1, 5)),
            (uniform(0.1, 5), uniform(-5, 0)),
            (one_of(1.5), one_of(1.5)),
        ],
    ),
    "sign_returns": (c.sign_returns, [(POS,), (NEG,), (one_of(0.0),)]),
    "huber": (
        c.huber,
        [(uniform(-0.9, 0.9), uniform(1, 2)), (one_of(-3.0, 2.5, 4.0), uniform(1, 2))],
    ),
    "returns_vectors": (
        c.returns_vectors,
        [(vector(1.5, 4),), (vector(-4, -1.5),), (vector(-0.9, 0.9),)],
    ),
    "augmented_under_mask": (c.augmented_under_mask, [(POS, ANY), (NEG, ANY)]),
    "swap_under_mask": (c.swap_under_mask, [(uniform(1, 2), uniform(-2, 0.9)), (NEG, POS)]),
    "int_augmented": (c.int_augmented, [(int_mod3(0),), (int_mod3(1),), (int_mod3(2),)]),
    "vector_branches": (c.vector_branches, [(vector(0.1, 3),), (vector(-3, -0.1),)]),
    "matrix_branch": (c.matrix_branch, [(matrix, POS), (matrix, NEG)]),
    "write_by_scalar_condition": (
        c.write_by_scalar_condition,
        [(vector(-2, 2, 5), POS), (vector(-2, 2, 5), NEG)],
    ),
    "bound_in_one_branch_guarded": (c.bound_in_one_branch_guarded, [(POS,), (NEG,)]),
}
KINDS = ["all", "without", "mixed"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", BRANCHES)
@settings(max_examples=6)
@given(data=st.data())
def test_branches_taken_by_all_no_and_some_lanes(name, kind, data):
    f, regions = BRANCHES[name]
    choice = data.draw(branch_choice(len(regions), kind), label="branch of each lane")
    check(f, *lane_args(regions, choice, data.draw(SEED, label="seed")))


# The branch (region index) whose lanes make the loop raise.
RAISING = {
    "bound_in_one_branch": (c.bound_in_one_branch, [(POS,), (NEG,)], 1),
    "raise_if_negative": (c.raise_if_negative, [(POS,), (NEG,)], 1),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", RAISING)
@settings(max_examples=6)
@given(data=st.data())
def test_raises_exactly_when_some_lane_would(name, kind, data):
    """UnboundLocalError (a name bound in one branch) and ``raise`` under a mask."""
    f, regions, bad = RAISING[name]
    choice = data.draw(branch_choice(len(regions), kind), label="branch of each lane")
    raised = check_like_loop(f, *lane_args(regions, choice, data.draw(SEED, label="seed")))
    assert (raised is not None) == (bad in choice)


# ----------------------------------------------------------------------- loops
def powers(rng: np.random.Generator, lo: float, hi: float, shape: Any) -> np.ndarray:
    """Magnitudes spread over orders of magnitude: iteration counts differ widely."""
    return 10.0 ** rng.uniform(lo, hi, shape)


def collatz_start(dtype: type) -> Callable:
    def make(rng, b):
        n = np.where(rng.random(b) < 0.3, 1, powers(rng, 0, 4, b))
        return (n.astype(dtype),)

    return make


def mandelbrot_points(rng, b):
    inside = rng.random(b) < 0.3  # (0, 0) is in the set: all 100 iterations
    cr = np.where(inside, 0.0, rng.uniform(-2.0, 1.0, b))
    ci = np.where(inside, 0.0, rng.uniform(-1.5, 1.5, b))
    return cr, ci


def normal(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Callable:
    return lambda rng, b: (rng.standard_normal((b, *shape)) * scale + shift,)


def with_threshold(t: float, *shape: int) -> Callable:
    return lambda rng, b: (rng.standard_normal((b, *shape)), t)


UNBATCHED_T = (0, None)

# name -> (program, make(rng, batch) -> args, in_axes)
LOOPS = {
    "collatz": (c.collatz, collatz_start(np.int64), 0),
    "collatz_int32": (c.collatz, collatz_start(np.int32), 0),
    "newton_sqrt": (c.newton_sqrt, lambda rng, b: (powers(rng, -6, 6, b),), 0),
    "mandelbrot": (c.mandelbrot, mandelbrot_points, 0),
    "grow_until": (c.grow_until, lambda rng, b: (powers(rng, -2, 1, b),), 0),
    "square_until_large": (c.square_until_large, lambda rng, b: (powers(rng, -1, 11, b),), 0),
    "halve_vector": (
        c.halve_vector,
        lambda rng, b: (rng.standard_normal((b, 3)) * powers(rng, -1, 4, (b, 1)),),
        0,
    ),
    "while_true_break": (c.while_true_break, lambda rng, b: (powers(rng, -2, 1.5, b),), 0),
    "return_in_while": (c.return_in_while, lambda rng, b: (powers(rng, -1, 2.5, b),), 0),
    "count_up_to": (c.count_up_to, lambda rng, b: (rng.integers(0, 30, b),), 0),
    "fib": (c.fib, lambda rng, b: (rng.integers(0, 60, b),), 0),
    "continue_in_range": (c.continue_in_range, lambda rng, b: (rng.integers(0, 30, b),), 0),
    "first_above": (c.first_above, with_threshold(1.0, 6), UNBATCHED_T),
    "sum_skipping": (c.sum_skipping, normal(6), 0),
    "skip_and_stop": (c.skip_and_stop, normal(6, scale=1.5), 0),
    "nested_break": (c.nested_break, with_threshold(0.8, 4, 5), UNBATCHED_T),
    "nested_while_in_for": (
        c.nested_while_in_for,
        lambda rng, b: (rng.standard_normal((b, 4)) * powers(rng, 0, 3, (b, 1)),),
        0,
    ),
    "rows_until_negative": (c.rows_until_negative, normal(4, 3, shift=0.3), 0),
    "index_of_first_above": (c.index_of_first_above, with_threshold(1.2, 6), UNBATCHED_T),
    "search_returns": (c.search_returns, normal(5), 0),
    "masked_setitem": (c.masked_setitem, normal(6), 0),
    "masked_add_setitem": (c.masked_add_setitem, normal(6), 0),
    "histogram_if": (c.histogram_if, normal(6), 0),
    "raise_in_loop": (c.raise_in_loop, normal(4, scale=1.2), 0),
}


@pytest.mark.parametrize("name", LOOPS)
@settings(max_examples=10)
@given(batch=BATCH, seed=SEED)
def test_loops_whose_lanes_stop_at_different_iterations(name, batch, seed):
    f, make, in_axes = LOOPS[name]
    check_like_loop(f, *make(np.random.default_rng(seed), batch), in_axes=in_axes)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_int_loops_return_ints(dtype):
    n = np.array([1, 2, 27, 97, 871], dtype=dtype)
    steps = check(c.collatz, n)  # also checks the dtype is the loop's
    assert steps.dtype.kind == "i"
    # The lanes stop 0 to 178 iterations in: a single masked while covers them all.
    assert steps.min() == 0 and steps.max() > 100


def test_while_condition_batched_only_after_an_iteration():
    # ``t < 3`` is a Python bool on entry (t = 0.0); after one step t = x is batched.
    t, k = check(c.grow_until, np.array([5.0, 3.0, 1.0, 0.01]))
    assert k.min() == 1 and k.max() > 250  # one lane leaves at once, one runs ~300 steps
    check(c.grow_until, np.array([4.0]))  # a batch of one lane that leaves at once


def test_tuple_assignment_under_a_mask():
    a = np.array([2.0, -1.0, 0.5, 3.0])
    b = np.array([1.0, 4.0, 0.5, -2.0])
    got_a, got_b = check(c.swap_under_mask, a, b)
    assert np.array_equal(got_a, np.where(a > b, b, a))  # the swap used the old ``a``


# ---------------------------------------------------------------- in_axes mixes
def positive(rng, lead, d):
    out = np.abs(rng.standard_normal(lead)) + 0.5
    return float(out) if out.ndim == 0 else out


IN_AXES = h.cases(
    [
        (c.huber, [h.normal(), positive]),
        (c.nested_if, [h.normal(), h.normal()]),
        (c.matrix_branch, [h.normal("m", "n"), h.normal()]),
        (c.augmented_under_mask, [h.normal(), h.normal()]),
        (c.swap_under_mask, [h.normal(), h.normal()]),
        (c.index_of_first_above, [h.normal("g"), h.normal()]),
        (c.first_above, [h.normal("g"), h.normal()]),
        (c.nested_break, [h.normal("m", "n"), h.normal()]),
        (c.search_returns, [h.normal("g")]),
        (c.masked_add_setitem, [h.normal("n")]),
        (c.write_by_scalar_condition, [h.normal("g"), h.normal()]),
        (c.vector_branches, [h.normal("n")]),
        (c.returns_vectors, [h.normal("n")]),
        (c.ternary_vectors, [h.normal("n")]),
        (c.branch_on_unbatched_flag, [h.normal(), h.Fixed(h.normal())]),
        (c.count_up_to, [h.ints(0, 20)]),
    ]
)


@pytest.mark.parametrize("f, gens", IN_AXES)
@settings(max_examples=8)
@given(setup=h.SETUP)
def test_batched_and_unbatched_arguments_mixed(f, gens, setup):
    """Every batched/unbatched combination, batch axis first or moved."""
    h.run(setup, f, gens)


# ------------------------------------------------------------------- warnings
QUIET = {
    "log of a skipped lane": (c.log_or_zero, [-1.0, 0.0, 2.0]),
    "division in a skipped lane": (c.recip_if, [0.0, 2.0]),
    # The lane starting at 1e12 stops at once; kept squaring it would overflow.
    "overflow in a retired lane": (c.square_until_large, [0.0, 1e12]),
}


@pytest.mark.parametrize("f, x", QUIET.values(), ids=QUIET.keys())
def test_lanes_the_loop_skips_raise_no_warnings(f, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the loop warns nothing on these inputs
        check(f, np.array(x))


# --------------------------------------------------------------- refusals
def line_of(f: Callable, text: str) -> int:
    lines, start = inspect.getsourcelines(f)
    return start + next(i for i, line in enumerate(lines) if text in line)


REFUSED = [
    pytest.param(c.truth_of_vector, "if x > 0:", "np.any", id="truth of a vector in if"),
    pytest.param(
        c.truth_of_vector_in_while,
        "while x > 1.0:",
        "np.any",
        id="truth of a vector in while",
    ),
    # loop_else and range_start_step (once refused here) are computed now: see test_idioms.py.
]


@pytest.mark.parametrize("f, text, words", REFUSED)
def test_refused_with_the_users_line(f, text, words):
    arg = np.ones((3, 2)) if "truth" in f.__name__ else np.array([3, 8, 1])
    with pytest.raises(UnsupportedError) as info:
        vmap(f)(arg)
    message = str(info.value)
    assert f"control.py:{line_of(f, text)}:" in message
    assert text in message and words in message


def test_the_truth_of_a_vector_is_an_error_in_the_loop_too():
    with pytest.raises(ValueError, match="truth value"):
        loop(c.truth_of_vector, (np.ones((3, 2)),))


# ------------------------------------------------- no Python loop over the batch
NO_BATCH_LOOP = [
    "collatz",
    "newton_sqrt",
    "mandelbrot",
    "grow_until",
    "count_up_to",
    "fib",
    "first_above",
    "skip_and_stop",
    "nested_break",
    "rows_until_negative",
    "search_returns",
    "return_in_while",
    "masked_add_setitem",
]


def python_loops(text: str) -> tuple[list[str], list[str]]:
    """The iterables of the ``for`` loops and the tests of the ``while`` loops."""
    fors, whiles = [], []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.For, ast.comprehension)):
            fors.append(ast.unparse(node.iter))
        elif isinstance(node, ast.While):
            whiles.append(ast.unparse(node.test))
    return fors, whiles


def repeat(args: tuple, in_axes: Any, times: int) -> tuple:
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    return tuple(a if ax is None else np.repeat(a, times, axis=ax) for a, ax in zip(args, axes))


@pytest.mark.parametrize("name", NO_BATCH_LOOP)
def test_no_python_loop_over_the_batch(name):
    f, make, in_axes = LOOPS[name]
    args = make(np.random.default_rng(0), 1)
    fors, whiles = python_loops(astvmap.emit(f, *args, in_axes=in_axes))
    for it in fors:
        assert "batch_size" not in it and "shape[0]" not in it and "len(" not in it, it
    for test in whiles:
        assert re.fullmatch(r"np\.any\(\w+\)", test), test  # over iterations, not lanes
    # The same example repeated: as many generated lines run for 40 lanes as for 1.
    fn = vmap(f, in_axes=in_axes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", astvmap.PerformanceWarning)
        one = generated_lines_run(fn, args)
        forty = generated_lines_run(fn, repeat(args, in_axes, 40))
    assert one > 0 and forty == one


# --------------------------------------------- bugs found here (fixed by the lead)
def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


ONE_LANE_POSITIVE = np.array([[[-1.0, -1.0], [1.0, -1.0]], [[1.0, -1.0], [-1.0, -1.0]]])
BUGS = [
    pytest.param(
        c.halve_with_temp,
        (np.array([4.0, 0.5]),),
        0,
        id="temp_in_batched_while",
    ),
    pytest.param(
        c.bisection,
        (np.array([0.001, 0.5, 8.0, 1000.0]),),
        0,
        id="bisection",
    ),
    pytest.param(
        c.continue_in_while,
        (np.array([0, 3, 10]),),
        0,
        id="continue_in_batched_while",
    ),
    pytest.param(
        c.return_in_nested_loops,
        (ONE_LANE_POSITIVE,),
        0,
        id="return_in_nested_loops",
    ),
    pytest.param(
        c.inner_loop_in_batched_range,
        (np.ones(3), np.array([0, 2, 5])),
        (None, 0),
        id="inner_loop_in_batched_range",
    ),
    pytest.param(
        c.inner_break_in_batched_while,
        (ONE_LANE_POSITIVE, 0.0),
        (0, None),
        id="inner_break_in_batched_while",
    ),
    pytest.param(
        c.gather_if_in_range,
        (np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([1, 3])),
        0,
        id="conditional_expression_guards_an_index",
    ),
    pytest.param(
        c.first_index_or_past_end,
        (np.array([[0.0, 3.0], [0.0, 0.0]]), 1.0),
        (0, None),
        id="or_guards_an_index",
    ),
    pytest.param(
        c.scan_while,
        (np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0]]), 1.0),
        (0, None),
        id="short_circuit_guards_an_index",
    ),
    pytest.param(
        c.guarded_gather,
        (np.ones(5), np.array([0, 7])),
        (None, 0),
        id="guarded_gather",
    ),
    pytest.param(
        c.guarded_setitem,
        (np.array([0, 7]),),
        0,
        id="guarded_setitem",
    ),
    pytest.param(
        c.tuple_returns,
        (np.array([1.0, -2.0]),),
        0,
        id="tuple_returns",
    ),
    pytest.param(
        c.tuple_returns_three_ways,
        (np.array([2.0, -2.0, 0.5, 3.0]),),
        0,
        id="tuple_returns_three_ways",
    ),
    pytest.param(
        c.loop_var_bound_before,
        (np.array([0, 3, 10]),),
        0,
        id="loop_var_bound_before_batched_range",
    ),
]


@pytest.mark.parametrize("f, args, in_axes", BUGS)
def test_known_bugs(f, args, in_axes):
    check_like_loop(f, *args, in_axes=in_axes)


@pytest.mark.parametrize(
    "f",
    [
        pytest.param(c.recip_ternary, id="ternary"),
        pytest.param(c.recip_and, id="and"),
    ],
)
def test_skipped_operands_raise_no_warnings(f):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(f, np.array([0.0, 0.25, 2.0]))


def test_a_raise_under_a_batched_condition_names_the_examples_that_reach_it():
    with pytest.raises(ValueError, match="negative input") as got:
        vmap(c.raise_if_negative)(np.array([1.0, -2.0, 3.0, -4.0]))
    note = "\n".join(got.value.__notes__)
    assert "examples that reach it: 1, 3 (2 of 4)" in note, note
    assert "control.py" in note  # the user's file and line
