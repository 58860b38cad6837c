"""The reproducers of shared/repro: each equals the loop, or is refused naming its line.

The programs were found by a random program generator written apart from the
project's own (tests/repro/pNN_*.py as it wrote them, shrunk; tests/repro/kinds.py
one hand-minimised program per kind). A wrong value or a crash inside generated
code is a bug; a refusal is allowed only where listed in REFUSED, with the reason.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import warnings

import pytest

from astvmap import UnsupportedError, vmap
from astvmap.testing import assert_same, loop

from . import repro
from .repro import kinds

PROGRAMS = sorted(m.name for m in pkgutil.iter_modules(repro.__path__) if m.name.startswith("p"))

# name -> why astvmap refuses it (with the user's line) instead of computing it.
REFUSED: dict[str, str] = {
    "j_helper_write_in_branch": "a helper that writes into its argument, called under a batched "
    "condition: its write is not masked, so it is refused with the line",
    "i_conditional_alias": "`v = buf if c else x` with a batched c is a copy in the batched code; "
    "a later write into buf is refused (v would not see it)",
    "p01_wrong": "the same conditional alias (`v9 = x if ... else buf4`, then buf4 is written)",
    "p03_wrong": "`v10 = buf6` after a helper writes a batched value into buf6: the view "
    "analysis does not look at statement order, so it refuses (conservative)",
}


def check(name: str, f, args: tuple, in_axes, out_axes=0) -> None:
    pristine = copy.deepcopy(args)
    try:
        want = loop(f, copy.deepcopy(args), in_axes, out_axes)
    except Exception as exc:  # noqa: BLE001 - the loop itself raises: vmap must raise too
        with pytest.raises(type(exc)):
            vmap(f, in_axes=in_axes, out_axes=out_axes)(*copy.deepcopy(args))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
        except UnsupportedError as exc:
            assert name in REFUSED, f"refused, not listed: {exc}"
            assert exc.lineno, "a refusal names the user's line"
            return
    assert name not in REFUSED, "computes now: take it off REFUSED"
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
