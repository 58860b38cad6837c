"""Gather/scatter: every combination of batched/unbatched array, index and value."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from astvmap import vmap

from .harness import assert_runs_per_example
from .oracle import check
from .programs import gather as g

rng = np.random.default_rng(0)


def _index(batched: bool, batch: int, high: int, shape=()) -> np.ndarray:
    size = (batch, *shape) if batched else shape
    return rng.integers(0, high, size=size)


@given(batch=st.sampled_from([1, 2, 5]), x_b=st.booleans(), i_b=st.booleans())
def test_pick(batch, x_b, i_b):
    if not (x_b or i_b):
        return
    x = rng.standard_normal((batch, 6) if x_b else (6,))
    i = _index(i_b, batch, 6)
    check(g.pick, x, i, in_axes=(0 if x_b else None, 0 if i_b else None))


@pytest.mark.parametrize("x_b,i_b", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("batch", [1, 4])
def test_column_pair_rows_and_strided(x_b, i_b, batch):
    M = rng.standard_normal((batch, 4, 5) if x_b else (4, 5))
    axes = (0 if x_b else None, 0 if i_b else None)
    check(g.pick_column, M, _index(i_b, batch, 5), in_axes=axes)
    check(g.pick_rows, M, _index(i_b, batch, 4, (3,)), in_axes=axes)
    check(g.take_along, M, _index(i_b, batch, 4), in_axes=axes)
    j = _index(False, batch, 5)
    check(g.pick_pair, M, _index(i_b, batch, 4), j, in_axes=(*axes, None))


def test_embedding_lookup():
    table = rng.standard_normal((10, 3))
    tokens = rng.integers(0, 10, size=7)
    out = check(g.lookup, table, tokens, in_axes=(None, 0))
    assert out.shape == (7, 3)
    assert "table[token]" in vmap(g.lookup, in_axes=(None, 0)).emit(table, tokens)


def test_gather_emits_arange_not_a_loop():
    x, i = rng.standard_normal((5, 6)), rng.integers(0, 6, size=5)
    text = vmap(g.pick).emit(x, i)
    assert "x[np.arange(x.shape[0]), i]" in text
    assert "for " not in text.split("def pick")[1]


@pytest.mark.parametrize("combo", list(itertools.product([True, False], repeat=3)))
def test_scatter_all_eight_combinations(combo):
    x_b, i_b, v_b = combo
    batch = 4
    x = rng.standard_normal((batch, 6) if x_b else (6,))
    i = _index(i_b, batch, 6)
    v = rng.standard_normal(batch) if v_b else 2.5
    if not any(combo):
        x = rng.standard_normal((batch, 6))
        check(g.set_one, x, i, v, in_axes=(0, None, None))
        return
    check(g.set_one, x, i, v, in_axes=(0 if x_b else None, 0 if i_b else None, 0 if v_b else None))


def test_one_hot_and_histogram():
    labels = rng.integers(0, 5, size=6)
    check(g.one_hot, labels, 5, in_axes=(0, None))
    values = rng.random((4, 20))
    check(g.scatter_add_histogram, values, 5, in_axes=(0, None))


def test_argmax_then_gather():
    check(g.argmax_value, rng.standard_normal((5, 7)))


def test_boolean_mask_then_sum_is_a_masked_reduction():
    # Once refused; now a selection (tests/test_selections.py has the rest).
    check(g.mask_sum, rng.standard_normal((3, 4)))


def test_float_index_runs_per_example_and_raises_as_the_loop_does():
    args = (rng.standard_normal((3, 4)), np.array([0.0, 1.0, 2.0]))
    assert_runs_per_example(g.pick, args, where="not known to be integer", raises=IndexError)
