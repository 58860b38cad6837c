"""The reproducers of shared/repro: each equals the loop, vectorised or (where listed)
run per example with a PerformanceWarning naming its line.

The programs were found by a random program generator written apart from the
project's own (tests/repro/pNN_*.py as it wrote them, shrunk; tests/repro/kinds.py
one hand-minimised program per kind). A wrong value or a crash inside generated
code is a bug; the per-example fallback is allowed only where listed in PER_EXAMPLE,
with the reason.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import warnings

import pytest

from astvmap import PerformanceWarning, vmap
from astvmap.testing import assert_same, loop

from . import repro
from .repro import kinds

PROGRAMS = sorted(m.name for m in pkgutil.iter_modules(repro.__path__) if m.name.startswith("p"))

# name -> why astvmap runs it per example (declared, naming the line) instead of
# vectorising it.
PER_EXAMPLE: dict[str, str] = {
    "j_helper_write_in_branch": "a helper that writes into its argument, called under a batched "
    "condition: its write is not masked in the batched code",
    "i_conditional_alias": "`v = buf if c else x` with a batched c is a copy in the batched code; "
    "a later write into buf would not reach v",
    "p01_wrong": "the same conditional alias (`v9 = x if ... else buf4`, then buf4 is written)",
    "p03_wrong": "`v10 = buf6` after a helper writes a batched value into buf6: the view "
    "analysis does not look at statement order (conservative)",
}


def check(name: str, f, args: tuple, in_axes, out_axes=0) -> None:
    pristine = copy.deepcopy(args)
    try:
        want = loop(f, copy.deepcopy(args), in_axes, out_axes)
    except Exception as exc:  # noqa: BLE001 - the loop itself raises: vmap must raise too
        with pytest.raises(type(exc)):
            vmap(f, in_axes=in_axes, out_axes=out_axes)(*copy.deepcopy(args))
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, PerformanceWarning)]
    if name in PER_EXAMPLE:
        assert fallbacks, "vectorised now: take it off PER_EXAMPLE"
        assert ".py:" in fallbacks[0], "the warning names the user's line"
    else:
        assert not fallbacks, f"runs per example, not listed: {fallbacks}"
    assert_same(got, want)
    for a, b in zip(args, pristine):
        assert_same(a, b)


@pytest.mark.parametrize("module", PROGRAMS)
def test_generated_reproducer(module: str) -> None:
    mod = importlib.import_module(f"tests.repro.{module}")
    check(module, mod.f, mod.ARGS, mod.IN_AXES, mod.OUT_AXES)


@pytest.mark.parametrize("case", kinds.CASES, ids=lambda c: c[0].__name__)
def test_kind(case) -> None:
    f, args, in_axes = case
    check(f.__name__, f, args, in_axes)
