"""Property tests for the axis rules (rules/axis_ops.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case is run for every batched/unbatched combination of its array arguments; the
batch size, the dims, the seed and the position of the mapped axis are drawn.
"""

import numpy as np
import pytest
from hypothesis import given

from astvmap import emit

from .harness import SETUP, Fixed, assert_runs_per_example, cases, ints, normal, run
from .oracle import check


# ------------------------------------------------------------ cumsum/cumprod
def cumsum_flat(x):
    return np.cumsum(x)


def cumsum_axis0(x):
    return np.cumsum(x, axis=0)


def cumsum_axis_neg(x):
    return np.cumsum(x, axis=-1)


def method_cumsum_axis1(x):
    return x.cumsum(axis=1)


def method_cumsum_flat(x):
    return x.cumsum()


def cumprod_flat(x):
    return np.cumprod(x)


def cumprod_positional(x):
    return np.cumprod(x, 1)


def method_cumprod_neg(x):
    return x.cumprod(axis=-2)


def nancumsum_axis(x):
    return np.nancumsum(x, axis=0)


def cumsum_mix(x, y):
    return np.cumsum(x, axis=0) + y


CUM = [
    (f, [normal(*s)])
    for f in (cumsum_flat, cumprod_flat, method_cumsum_flat)
    for s in [("m",), ("m", "n"), ("m", "n", "k")]
] + [
    (cumsum_axis0, [normal("m")]),
    (cumsum_axis0, [normal("m", "n")]),
    (cumsum_axis_neg, [normal("m", "n", "k")]),
    (method_cumsum_axis1, [normal("m", "n")]),
    (cumprod_positional, [normal("m", "n", "k")]),
    (method_cumprod_neg, [normal("m", "n")]),
    (nancumsum_axis, [normal("m", "n")]),
    (cumsum_mix, [normal("m", "n"), normal("n")]),
    (cumsum_flat, [ints(-5, 5, "m", "n")]),
    (method_cumprod_neg, [ints(-3, 3, "m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(CUM))
@given(setup=SETUP)
def test_cumulative(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------------------- sort/argsort
def sort_default(x):
    return np.sort(x)


def sort_axis0(x):
    return np.sort(x, axis=0)


def sort_none(x):
    return np.sort(x, axis=None)


def argsort_default(x):
    return np.argsort(x)


def argsort_axis0(x):
    return np.argsort(x, axis=0)


def argsort_none(x):
    return np.argsort(x, axis=None)


def method_argsort_neg(x):
    return x.argsort(axis=-2)


def argsort_stable(x):
    return np.argsort(x, kind="stable")


def sort_in_place(x):
    y = x.copy()
    y.sort()
    return y


def sort_in_place_axis0(x):
    y = x.copy()
    y.sort(axis=0)
    return y


def sort_by_other(x, y):
    return np.sort(x + y, axis=0)


def argsort_ties(x):
    # Integer data has ties: the batched sort must break them as the per-example one.
    return np.argsort(x, kind="stable"), np.argsort(x, axis=0, kind="stable"), np.argsort(x)


SORT = [
    (sort_default, [normal("m")]),
    (sort_default, [normal("m", "n")]),
    (sort_axis0, [normal("m", "n")]),
    (sort_axis0, [normal("m", "n", "k")]),
    (sort_none, [normal("m", "n")]),
    (sort_none, [normal("m")]),
    (argsort_default, [normal("m", "n")]),
    (argsort_axis0, [normal("m", "n")]),
    (argsort_none, [normal("m", "n", "k")]),
    (argsort_none, [normal("m")]),
    (method_argsort_neg, [normal("m", "n")]),
    (argsort_stable, [normal("m", "n")]),
    (sort_in_place, [normal("m", "n")]),
    (sort_in_place_axis0, [normal("m", "n")]),
    (sort_by_other, [normal("m", "n"), normal("m", "n")]),
    (argsort_ties, [ints(0, 3, "m", "n")]),
    (sort_axis0, [ints(0, 3, "m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(SORT))
@given(setup=SETUP)
def test_sort_argsort(f, gens, setup):
    run(setup, f, gens)


# --------------------------------------------------------------------- diff
def diff_default(x):
    return np.diff(x)


def diff_n2(x):
    return np.diff(x, n=2)


def diff_axis0(x):
    return np.diff(x, axis=0)


def diff_n2_axis_neg(x):
    return np.diff(x, n=2, axis=-1)


def diff_positional(x):
    return np.diff(x, 1, 0)


def diff_prepend(x):
    return np.diff(x, prepend=0.0)


DIFF = [
    (diff_default, [normal("g")]),
    (diff_default, [normal("m", "g")]),
    (diff_n2, [normal("g")]),
    (diff_n2, [normal("m", "g")]),
    (diff_axis0, [normal("g", "n")]),
    (diff_n2_axis_neg, [normal("m", "n", "g")]),
    (diff_positional, [normal("g", "n")]),
    (diff_prepend, [normal("m", "n")]),
    (diff_default, [ints(-5, 5, "m", "g")]),
]


@pytest.mark.parametrize("f,gens", cases(DIFF))
@given(setup=SETUP)
def test_diff(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------- concatenate/stack
def cat2(a, b):
    return np.concatenate([a, b])


def cat2_last(a, b):
    return np.concatenate((a, b), axis=-1)


def cat2_none(a, b):
    return np.concatenate([a, b], axis=None)


def cat3_axis1(a, b, c):
    return np.concatenate([a, b, c], axis=1)


def cat_with_literal(a):
    return np.concatenate([a, np.zeros(2), 2.0 * a])


def stack2(a, b):
    return np.stack([a, b])


def stack2_last(a, b):
    return np.stack((a, b), axis=-1)


def stack3_axis1(a, b, c):
    return np.stack([a, b, c], axis=1)


def stack_scalars(a, b):
    return np.stack([a, b, a * b])


JOIN = [
    (cat2, [normal("m"), normal("n")]),
    (cat2, [normal("m", "k"), normal("n", "k")]),
    (cat2_last, [normal("m"), normal("n")]),
    (cat2_last, [normal("k", "m"), normal("k", "n")]),
    (cat2_none, [normal("m", "n"), normal("k")]),
    (cat2_none, [normal("m"), normal("n", "k")]),
    (cat3_axis1, [normal("k", "m"), normal("k", "n"), normal("k", 2)]),
    (cat_with_literal, [normal("m")]),
    (stack2, [normal("m"), normal("m")]),
    (stack2, [normal("m", "n"), normal("m", "n")]),
    (stack2_last, [normal("m", "n"), normal("m", "n")]),
    (stack3_axis1, [normal("m", "n"), normal("m", "n"), normal("m", "n")]),
    (stack_scalars, [normal(), normal()]),
]


@pytest.mark.parametrize("f,gens", cases(JOIN))
@given(setup=SETUP)
def test_concatenate_stack(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------ hstack/vstack/column_stack
def hstack2(a, b):
    return np.hstack([a, b])


def hstack_with_number(a, b):
    return np.hstack((a, 0.5, b))


def vstack2(a, b):
    return np.vstack([a, b])


def column_stack2(a, b):
    return np.column_stack([a, b])


def column_stack3(a, b, c):
    return np.column_stack((a, b, c))


STACKS = [
    (hstack2, [normal(), normal()]),
    (hstack2, [normal(), normal("n")]),
    (hstack2, [normal("m"), normal()]),
    (hstack2, [normal("m"), normal("n")]),
    (hstack2, [normal("m", "n"), normal("m", "k")]),
    (hstack2, [normal("m", "n", "k"), normal("m", 2, "k")]),
    (hstack_with_number, [normal("m"), normal()]),
    (vstack2, [normal(), normal()]),
    (vstack2, [normal("n"), normal("n")]),
    (vstack2, [normal("n"), normal("m", "n")]),
    (vstack2, [normal("m", "n"), normal("n")]),
    (vstack2, [normal("m", "n"), normal("k", "n")]),
    (vstack2, [normal("m", "n", "k"), normal(2, "n", "k")]),
    (column_stack2, [normal(), normal()]),
    (column_stack2, [normal("m"), normal("m")]),
    (column_stack2, [normal("m"), normal("m", "k")]),
    (column_stack2, [normal("m", "n"), normal("m")]),
    (column_stack2, [normal("m", "n"), normal("m", "k")]),
    (column_stack3, [normal("m"), normal("m", 2), normal("m")]),
]


@pytest.mark.parametrize("f,gens", cases(STACKS))
@given(setup=SETUP)
def test_hstack_vstack_column_stack(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------------------------- split
def split_halves(x):
    a, b = np.split(x, 2)
    return a * 2.0 + b


def split_indices_axis1(x):
    a, b, c = np.split(x, [1, 3], axis=1)
    return a.sum(axis=1) + b.sum(axis=1) - c.sum(axis=1)


def split_last_axis_list(x):
    parts = np.split(x, 2, axis=-1)
    return parts[0] - parts[1]


def array_split_uneven(x):
    a, b, c = np.array_split(x, 3)
    return a.sum() + 2.0 * b.sum() + 3.0 * c.sum()


def split_returned(x):
    return np.split(x, 2)


def split_mix(x, y):
    a, b = np.split(x, 2, axis=0)
    return a * y + b


SPLIT = [
    (split_halves, [normal("e")]),
    (split_halves, [normal("e", "n")]),
    (split_indices_axis1, [normal("m", 4)]),
    (split_indices_axis1, [normal("m", 4, "k")]),
    (split_last_axis_list, [normal("m", "e")]),
    (array_split_uneven, [normal("g")]),
    (array_split_uneven, [normal("g", "n")]),
    (split_returned, [normal("e", "n")]),
    (split_mix, [normal("e", "n"), normal("n")]),
]


@pytest.mark.parametrize("f,gens", cases(SPLIT))
@given(setup=SETUP)
def test_split(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------------------- flip / roll
def flip_all(x):
    return np.flip(x)


def flip_axis0(x):
    return np.flip(x, 0)


def flip_axis_neg(x):
    return np.flip(x, axis=-1)


def flip_tuple(x):
    return np.flip(x, (0, 2))


def flipud(x):
    return np.flipud(x)


def fliplr(x):
    return np.fliplr(x)


def flip_mix(x, y):
    return np.flip(x, 0) * y


def roll_flat(x):
    return np.roll(x, 1)


def roll_axis0(x):
    return np.roll(x, -2, axis=0)


def roll_axis_neg(x):
    return np.roll(x, 1, axis=-1)


def roll_tuple(x):
    return np.roll(x, (1, 2), axis=(0, 1))


def roll_mix(x, y):
    return np.roll(x, 3) - y


FLIPROLL = [
    (f, [normal(*s)]) for f in (flip_all, roll_flat) for s in [("m",), ("m", "n"), ("m", "n", "k")]
] + [
    (flip_axis0, [normal("m")]),
    (flip_axis0, [normal("m", "n")]),
    (flip_axis_neg, [normal("m", "n")]),
    (flip_tuple, [normal("m", "n", "k")]),
    (flipud, [normal("m")]),
    (flipud, [normal("m", "n")]),
    (fliplr, [normal("m", "n")]),
    (fliplr, [normal("m", "n", "k")]),
    (flip_mix, [normal("m", "n"), normal("m", "n")]),
    (roll_axis0, [normal("m")]),
    (roll_axis0, [normal("m", "n")]),
    (roll_axis_neg, [normal("m", "n", "k")]),
    (roll_tuple, [normal("m", "n")]),
    (roll_mix, [normal("m", "n"), normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(FLIPROLL))
@given(setup=SETUP)
def test_flip_roll(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------------------------- take
def take_flat(x, idx):
    return np.take(x, idx)


def take_axis0(x, idx):
    return np.take(x, idx, axis=0)


def method_take_neg(x, idx):
    return x.take(idx, axis=-1)


def take_literal(x):
    return np.take(x, [0, -1, 0], axis=0)


def take_scalar(x):
    return np.take(x, 1, axis=1)


def take_flat_scalar(x):
    return np.take(x, -1)


TAKE = [
    (take_flat, [normal("m", "n"), Fixed(ints(0, 1, "k"))]),
    (take_flat, [normal("m"), Fixed(ints(-1, 1, 2, 3))]),
    (take_axis0, [normal("m", "n"), Fixed(ints(0, 1, "k"))]),
    (take_axis0, [normal("m", "n", "k"), Fixed(ints(-1, 1, 2, 2))]),
    (method_take_neg, [normal("m", "n"), Fixed(ints(-1, 1, "k"))]),
    (take_literal, [normal("m", "n")]),
    (take_scalar, [normal("m", 2, "k")]),
    (take_flat_scalar, [normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(TAKE))
@given(setup=SETUP)
def test_take(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------- repeat/tile/pad
def repeat_flat(x):
    return np.repeat(x, 2)


def repeat_axis0(x):
    return np.repeat(x, 2, axis=0)


def method_repeat_neg(x):
    return x.repeat(3, axis=-1)


def repeat_counts(x):
    return np.repeat(x, [1, 2, 0], axis=0)


def method_repeat_flat(x):
    return x.repeat(2)


def tile_int(x):
    return np.tile(x, 2)


def tile_pair(x):
    return np.tile(x, (2, 1))


def tile_more_reps(x):
    return np.tile(x, (2, 1, 3))


def tile_fewer_reps(x):
    return np.tile(x, (2,))


def pad_int(x):
    return np.pad(x, 1)


def pad_pair(x):
    return np.pad(x, (1, 2))


def pad_per_axis(x):
    return np.pad(x, ((1, 0), (0, 2)))


def pad_edge(x):
    return np.pad(x, 2, mode="edge")


def pad_per_axis_edge(x):
    return np.pad(x, ((0, 1), (2, 0)), mode="edge")


def pad_constant_value(x):
    return np.pad(x, (2, 1), constant_values=7.0)


def pad_per_axis_constant_values(x):
    return np.pad(x, 1, constant_values=((1.0, 2.0), (3.0, 4.0)))


def pad_per_axis_end_values(x):
    return np.pad(x, 2, mode="linear_ramp", end_values=((1.0, 2.0), (3.0, 4.0)))


def pad_per_axis_stat_length(x):
    return np.pad(x, 2, mode="mean", stat_length=((1, 2), (2, 1)))


def pad_width_arg(x, w):
    return np.pad(x, w)


def pad_mix(x, y):
    return np.pad(x, 1) + y


RTP = [
    (f, [normal(*s)])
    for f in (repeat_flat, method_repeat_flat, tile_int, pad_int, pad_edge)
    for s in [("m",), ("m", "n")]
] + [
    (repeat_flat, [normal()]),
    (repeat_axis0, [normal("m", "n")]),
    (method_repeat_neg, [normal("m", "n")]),
    (repeat_counts, [normal(3, "n")]),
    (tile_int, [normal()]),
    (tile_pair, [normal("m")]),
    (tile_pair, [normal("m", "n")]),
    (tile_more_reps, [normal("m", "n")]),
    (tile_fewer_reps, [normal("m", "n")]),
    (pad_int, [normal("m", "n", "k")]),
    (pad_pair, [normal("m")]),
    (pad_pair, [normal("m", "n")]),
    (pad_per_axis, [normal("m", "n")]),
    (pad_per_axis_edge, [normal("m", "n")]),
    (pad_constant_value, [normal("m")]),
    (pad_width_arg, [normal("m", "n"), Fixed(ints(0, 3, 2, 2))]),
    (pad_mix, [normal("m"), normal(1)]),
]


@pytest.mark.parametrize("f,gens", cases(RTP))
@given(setup=SETUP)
def test_repeat_tile_pad(f, gens, setup):
    run(setup, f, gens)


@pytest.mark.parametrize(
    "f",
    [pad_per_axis_constant_values, pad_per_axis_end_values, pad_per_axis_stat_length],
    ids=lambda f: f.__name__,
)
def test_pad_per_axis_options(f):
    # constant_values / end_values / stat_length given per axis ((before, after) for
    # each of the example's axes) must get an entry for the batch axis too. A plain
    # test (not hypothesis) so that a failure does not shrink for a minute.
    for batch in (1, 2, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 4))
        check(f, x)
        check(f, np.moveaxis(x, 0, 1), in_axes=1, out_axes=-1)


# ------------------------------------------- gathers: take / take_along_axis
# The index arguments are free here, so every batched/unbatched combination of array
# and index runs: with both batched, np.take is a per-example gather.
def take_row(x, i):
    return np.take(x, i, axis=0)


def take_middle(x, i):
    return np.take(x, i, axis=1)


def method_take_last(x, i):
    return x.take(i, axis=-1)


def method_take_flat(x, i):
    return x.take(i)


def take_wrap(x, i):
    return np.take(x, i, axis=1, mode="wrap")


def take_clip_flat(x, i):
    return np.take(x, i, mode="clip")


def take_of_expression(x, i):
    return np.take(2.0 * x, i, axis=-2) + 1.0


def take_argmax_row(table, scores):
    # An index computed from batched data: a gather with a scalar index per example.
    return np.take(table, np.argmax(scores), axis=0)


def along_default(x, i):
    return np.take_along_axis(x, i)


def along_axis0(x, i):
    return np.take_along_axis(x, i, axis=0)


def along_middle(x, i):
    return np.take_along_axis(x, i, axis=1)


def along_neg(x, i):
    return np.take_along_axis(x, i, axis=-2)


def along_flat(x, i):
    return np.take_along_axis(x, i, axis=None)


def sort_by_key(values, keys):
    return np.take_along_axis(values, np.argsort(keys, axis=0, kind="stable"), axis=0)


def topk_by_argsort(x):
    order = np.argsort(-x, axis=-1, kind="stable")[..., :2]
    return np.take_along_axis(x, order, axis=-1)


GATHER = [
    (take_row, [normal(3, "n"), ints(-3, 3, "k")]),
    (take_row, [normal(3, "n"), ints(-3, 3)]),
    (take_row, [normal(3), ints(-3, 3, "k", "m")]),
    (take_middle, [normal("m", 3, "n"), ints(-3, 3, "k", "n")]),
    (take_middle, [normal("m", 3), ints(-3, 3)]),
    (method_take_last, [normal("m", "n", 3), ints(-3, 3, "k")]),
    (method_take_flat, [normal(2, 3), ints(-6, 6, "k")]),
    (method_take_flat, [normal(4), ints(-4, 4, "m", "n")]),
    (method_take_flat, [normal(2, 3), ints(-6, 6)]),
    (take_wrap, [normal("m", 3), ints(-7, 7, "k")]),
    (take_wrap, [normal("m", 3, "n"), ints(-7, 7)]),
    (take_clip_flat, [normal(2, 3), ints(-9, 9, "k", "n")]),
    (take_of_expression, [normal(3, "n"), ints(-3, 3, "k")]),
    (take_argmax_row, [normal(4, "n"), normal(4)]),
    (along_default, [normal("m", 3), ints(-3, 3, "m", "k")]),
    (along_default, [normal(3), ints(-3, 3, "k")]),
    (along_axis0, [normal(3, "n"), ints(-3, 3, "k", "n")]),
    (along_middle, [normal("m", 3, "n"), ints(-3, 3, "m", "k", 1)]),
    (along_neg, [normal("m", 3, "n"), ints(-3, 3, 1, "k", "n")]),
    (along_flat, [normal(2, 3), ints(-6, 6, "k")]),
    (along_flat, [normal(5), ints(-5, 5, "k")]),
    (sort_by_key, [normal("g", "n"), normal("g", "n")]),
    (topk_by_argsort, [normal("m", "g")]),
]


@pytest.mark.parametrize("f,gens", cases(GATHER))
@given(setup=SETUP)
def test_gather(f, gens, setup):
    run(setup, f, gens)


@pytest.mark.parametrize("f,gens", cases(GATHER))
def test_gather_batch_of_one(f, gens):
    # A batch of one broadcasts like an unbatched length-1 axis would: make sure it
    # is always checked, not only when hypothesis happens to draw it.
    for moved in (False, True):
        run((1, {"m": 2, "n": 3, "k": 2, "e": 2, "g": 3}, 7, moved), f, gens)


def test_take_gather_is_advanced_indexing():
    rng = np.random.default_rng(0)
    x, i = rng.standard_normal((4, 2, 3)), rng.integers(0, 3, size=(4, 5))
    code = emit(take_middle, x, i)
    assert "np.arange(x.shape[0])" in code and "for " not in code
    code = emit(along_middle, x[0], i[:, None, :], in_axes=(None, 0))
    assert "np.take_along_axis(x[None]" in code and "for " not in code


# ------------------------------------------------------------- unsupported
def take_wrap_of_expression(x, i):
    return np.take(x + 1.0, i, mode="wrap")


def test_take_wrap_of_batched_expression_with_batched_indices_raises():
    # mode="wrap" needs the per-example length, read from a named array's shape.
    rng = np.random.default_rng(0)
    x, i = rng.standard_normal((3, 5)), rng.integers(0, 9, size=(3, 2))
    assert_runs_per_example(take_wrap_of_expression, (x, i), where="assign the array to a variable")
    check(take_wrap_of_expression, x[0], i, in_axes=(None, 0))


def along_rank_mismatch(x, i):
    return np.take_along_axis(x, i, axis=0)


def test_take_along_axis_rank_mismatch_raises():
    rng = np.random.default_rng(0)
    x, i = rng.standard_normal((3, 4, 2)), rng.integers(0, 4, size=(3, 4))
    assert_runs_per_example(along_rank_mismatch, (x, i), where="different rank", raises=ValueError)
