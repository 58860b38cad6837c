"""Lane compaction of masked loops (astvmap/compaction.py).

A masked loop compacts only above ``COMPACT_MIN_ROWS`` rows, so these tests use
batches of a few thousand examples whose lanes stop at very different iterations;
the threshold is crossed several times per call. Every result is checked against
the loop oracle, and the generated code is checked to compact where it should.
"""

from __future__ import annotations

import collections
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from astvmap import vmap
from astvmap.compaction import COMPACT_MIN_ROWS

from . import progen
from .oracle import check
from .programs import compaction as p
from .test_control_flow import LOOPS, check_like_loop

BIG = st.sampled_from([COMPACT_MIN_ROWS, COMPACT_MIN_ROWS + 1, 3 * COMPACT_MIN_ROWS])
SEED = st.integers(0, 2**32 - 1)


def long_tail(rng: np.random.Generator, batch: int, low: int = 0, high: int = 40) -> np.ndarray:
    """Iteration counts: most lanes stop within a few iterations, a few run long."""
    counts = rng.geometric(0.5, batch) + low
    counts[rng.random(batch) < 0.02] = high
    return counts


@pytest.mark.parametrize("name", LOOPS)
@settings(max_examples=2, deadline=None)
@given(batch=BIG, seed=SEED)
def test_control_flow_loops_at_compacting_batch_sizes(name, batch, seed):
    f, make, in_axes = LOOPS[name]
    check_like_loop(f, *make(np.random.default_rng(seed), batch), in_axes=in_axes)


PROGRAMS = {
    "widen_after_compaction": (p.widen_after_compaction, lambda rng, b: (long_tail(rng, b),), 0),
    "read_only_rows": (
        p.read_only_rows,
        lambda rng, b: (rng.standard_normal((b, 3)), long_tail(rng, b)),
        0,
    ),
    "read_only_rows_unbatched_v": (
        p.read_only_rows,
        lambda rng, b: (rng.standard_normal(3), long_tail(rng, b)),
        (None, 0),
    ),
    "continue_then_stop": (p.continue_then_stop, lambda rng, b: (long_tail(rng, b),), 0),
    "while_in_plain_for": (
        p.while_in_plain_for,
        lambda rng, b: (2 ** long_tail(rng, b, 0, 30),),
        0,
    ),
    "while_in_while": (p.while_in_while, lambda rng, b: (long_tail(rng, b, 0, 60),), 0),
    "vector_state": (
        p.vector_state,
        lambda rng, b: (rng.standard_normal((b, 3)), long_tail(rng, b)),
        0,
    ),
    "vector_state_unbatched_v": (
        p.vector_state,
        lambda rng, b: (rng.standard_normal(3), long_tail(rng, b)),
        (None, 0),
    ),
    "setitem_in_loop": (p.setitem_in_loop, lambda rng, b: (long_tail(rng, b),), 0),
    "calls_a_helper": (p.calls_a_helper, lambda rng, b: (long_tail(rng, b),), 0),
    "reads_a_name_bound_on_some_paths": (
        p.reads_a_name_bound_on_some_paths,
        # An int flag: a bool one is known while transforming, and `if flag:` goes.
        lambda rng, b: (long_tail(rng, b), 0),
        (0, None),
    ),
}
COMPACTS = {
    "widen_after_compaction": True,
    "read_only_rows": True,
    "read_only_rows_unbatched_v": True,
    "continue_then_stop": True,
    "while_in_plain_for": True,
    "while_in_while": True,  # the outer loop
    "vector_state": True,
    "vector_state_unbatched_v": True,
    "setitem_in_loop": False,
    "calls_a_helper": False,
    "reads_a_name_bound_on_some_paths": False,
}


@pytest.mark.parametrize("name", PROGRAMS)
@settings(max_examples=3, deadline=None)
@given(batch=BIG, seed=SEED)
def test_compacted_loops_equal_the_loop(name, batch, seed):
    f, make, in_axes = PROGRAMS[name]
    check(f, *make(np.random.default_rng(seed), batch), in_axes=in_axes)


@pytest.mark.parametrize("name", PROGRAMS)
def test_compaction_is_emitted_only_where_it_is_safe(name):
    f, make, in_axes = PROGRAMS[name]
    source = vmap(f, in_axes=in_axes).emit(*make(np.random.default_rng(0), 8))
    assert ("flatnonzero" in source) == COMPACTS[name], source


def test_widening_after_a_compaction_keeps_the_rows_put_back_earlier():
    # Iteration counts chosen so that the first compaction (after one iteration)
    # happens while `a` is still an int array, and later rows are floats.
    x = np.ones(4 * COMPACT_MIN_ROWS, dtype=np.int64)
    x[:10] = 5
    got = check(p.widen_after_compaction, x)
    assert got.dtype == np.float64
    assert got[0] == 2.0 and got[-1] == 0.0


def test_a_name_bound_in_some_lanes_raises_exactly_as_the_loop():
    # Lanes with x <= 2 never bind y: the loop raises UnboundLocalError on them.
    rng = np.random.default_rng(1)
    x = long_tail(rng, 2 * COMPACT_MIN_ROWS, low=3)
    check(p.bound_in_a_branch_across_iterations, x)
    x[5] = 1
    check_like_loop(p.bound_in_a_branch_across_iterations, x)


def test_the_callers_arrays_are_not_written():
    rng = np.random.default_rng(2)
    v, n = rng.standard_normal((2 * COMPACT_MIN_ROWS, 3)), long_tail(rng, 2 * COMPACT_MIN_ROWS)
    v.setflags(write=False)
    n.setflags(write=False)
    check(p.vector_state, v, n)


# Random programs (tests/progen.py) with loops on batched conditions, at a batch
# size where their masked loops may compact. ASTVMAP_COMPACTION_PROGRAMS raises the
# count (the closing note of the lane-compaction change records a 300-program run).
RANDOM_PROGRAMS = int(os.environ.get("ASTVMAP_COMPACTION_PROGRAMS", "12"))
BATCHED_LOOPS = {"while-batched", "break-batched", "continue-batched", "for-batched"}


def test_random_programs_with_batched_loops_at_compacting_sizes(tmp_path):
    outcomes: collections.Counter = collections.Counter()

    @settings(
        max_examples=RANDOM_PROGRAMS,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(program=progen.programs(), seed=SEED)
    def one(program: progen.Program, seed: int) -> None:
        assume(program.features & BATCHED_LOOPS)
        outcomes[progen.run(program, COMPACT_MIN_ROWS + 3, seed, tmp_path)] += 1

    one()
    assert outcomes["match"] + outcomes["fallback"] >= RANDOM_PROGRAMS // 2, outcomes
