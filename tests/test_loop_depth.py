"""Translation work grows linearly with the depth of nested batched loops.

Measured by counting, not timing: astvmap.loops.COUNTS counts every translation of a
loop statement (dry or real) and every fixpoint pass over a loop body. With k nested
masked loops both used to grow 2-5x per level (each loop's dry runs reached the loop
inside it from several states, and each of those ran its own dry runs again); they
must now grow by a constant per level. The families are tests/programs/loop_nests.py;
benchmarks/loop_depth.py times them.
"""

from __future__ import annotations

import numpy as np
import pytest

import astvmap
from astvmap import cache, loops

from .oracle import check
from .programs import loop_nests

X = np.array([0.5, 1.0, 2.0, 3.0])
N = np.array([1, 2, 3, 0])


def _counts(family: str, k: int, folder) -> dict[str, int]:
    f = loop_nests.build(family, k, folder)
    cache.memory_clear()  # another test may have translated the same text
    loops.COUNTS.clear()
    astvmap.emit(f, X, N)
    return dict(loops.COUNTS)


@pytest.mark.parametrize("family", loop_nests.FAMILIES)
def test_translation_work_is_linear_in_loop_depth(family, tmp_path):
    counts = {k: _counts(family, k, tmp_path) for k in (2, 3, 6)}
    for what in ("loop statements", "fixpoint passes"):
        c2, c3, c6 = (counts[k][what] for k in (2, 3, 6))
        assert c3 > c2, (what, counts)  # the counters see the loops at all
        # Linear: count(6) is at most twice count(3), plus a constant (count(2)).
        # At 2x per level count(6) would be 8 x count(3).
        assert c6 <= 2 * c3 + c2, (what, counts)


@pytest.mark.parametrize("family", loop_nests.FAMILIES)
@pytest.mark.parametrize("k", [1, 3])
def test_nested_loops_match_the_loop(family, k, tmp_path):
    f = loop_nests.build(family, k, tmp_path)
    check(f, X[:1], N[:1])
    check(f, X, N)
    check(f, X, 2, in_axes=(0, None))  # only x batched: the loops are plain


def test_loop_nest_sources_reject_depth_zero():
    with pytest.raises(ValueError):
        loop_nests.source("while", 0)
