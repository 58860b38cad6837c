"""Differential testing: random per-example programs, ``vmap`` against the loop.

Every generated program (tests/progen.py) must either give the loop's result or
raise ``UnsupportedError``; a wrong value, shape or dtype, a modified input, or any
other exception is a bug.

- Quick profile (CI): 300 programs, derandomized (the same programs every run).
- ``--long``: 10,000 fresh random programs.

Neither stops at the first bug: each runs all its programs, groups the bugs by
kind (exception type and message), minimises the smallest program of each kind
(``progen.minimize``: hypothesis's own shrinker re-runs the transform thousands of
times and can take many minutes per bug) and fails with one standalone reproducer
per kind and the counts. Both print the outcome counts; most programs must be
supported, or the test proves little."""

from __future__ import annotations

import collections
import inspect
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from . import progen

# ASTVMAP_PROGEN_EXAMPLES=N: N derandomized programs instead of 300 (with
# ASTVMAP_PROGEN_NEW=1, progen's issue-11 and issue-13 forms are drawn too; see
# tests/progen.py).
# (The text of `one` below must not change: hypothesis derives the derandomized
# programs from it, so an edit there draws another CI profile.)
QUICK = int(os.environ.get("ASTVMAP_PROGEN_EXAMPLES", 300))
LONG = 10_000


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return tmp_path_factory.mktemp("progen")


def _summary(outcomes: collections.Counter, features: collections.Counter) -> str:
    total = max(1, sum(outcomes.values()))
    parts = [f"{k} {n} ({n / total:.1%})" for k, n in sorted(outcomes.items())]
    seen = ", ".join(f"{k} {n}" for k, n in sorted(features.items()))
    return f"differential: {total} programs: " + ", ".join(parts) + f"\n  programs using: {seen}"


def _report(groups: dict, directory, budget: float) -> str:
    """One reproducer per kind of bug, most frequent kind first, minimised while the
    time ``budget`` (seconds, for all of them) lasts."""
    out = []
    deadline = time.monotonic() + budget
    for sig, (count, program, batch, seed) in sorted(groups.items(), key=lambda g: -g[1][0]):
        left = deadline - time.monotonic()
        if left > 0:
            program = progen.minimize(program, batch, seed, directory, budget=min(60.0, left))
        out.append(
            f"--- {sig} ({count} programs); batch={batch}\n{program.reproducer(batch, seed)}"
        )
    return "\n\n".join(out)


def test_differential(request, directory, capsys):
    long = request.config.getoption("--long")
    outcomes: collections.Counter = collections.Counter()
    features: collections.Counter = collections.Counter()
    groups: dict[str, tuple] = {}

    @settings(
        max_examples=LONG if long else QUICK,
        deadline=None,
        derandomize=not long,
        database=None,
        phases=[Phase.generate],  # bugs are collected, grouped and minimised below
        suppress_health_check=list(HealthCheck),
    )
    @given(program=progen.programs(), batch=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
    def one(program: progen.Program, batch: int, seed: int) -> None:
        try:
            outcome = progen.run(program, batch, seed, directory)
        except Exception as exc:
            sig = progen.signature(exc)
            count, *best = groups.get(sig, (0, program, batch, seed))
            if len(program.source) < len(best[0].source):
                best = [program, batch, seed]
            groups[sig] = (count + 1, *best)
            outcome = "bug"
        outcomes[outcome] += 1
        assume(outcome != "loop-error")  # the program fails on these inputs: no verdict
        features.update(f for f in program.features if not f.startswith("mapped:"))

    one()
    with capsys.disabled():
        print("\n" + _summary(outcomes, features))
    if groups:
        report = _report(groups, directory, budget=600.0 if long or QUICK > 300 else 30.0)
        pytest.fail(f"{sum(g[0] for g in groups.values())} bugs\n\n{report}", pytrace=False)
    total = sum(outcomes.values())
    # Programs are valid NumPy by construction: the loop itself must (almost) never fail.
    assert outcomes["loop-error"] <= 0.01 * total, _summary(outcomes, features)
    refused = outcomes["unsupported"] / max(1, total - outcomes["loop-error"])
    assert (
        refused < 0.5
    ), f"most programs were refused: the tester proves little. {_summary(outcomes, features)}"


# ------------------------------------------------------------ the tester itself
SOURCE = """import numpy as np


def f(x0, i0):
    v0 = np.tanh(x0)
    v1 = v0.sum(axis=0)
    v2 = np.sin(v1)
    v3 = np.cos(x0)
    return v2 + x0[i0]
"""
PROGRAM = progen.Program(
    SOURCE,
    (progen.Arg("x0", "float", (3, 2), 1), progen.Arg("i0", "index", (), None, bound=3)),
    0,
    frozenset(),
)


def _fake_vmap(change):
    """A stand-in for vmap that computes the loop, then lets ``change`` spoil it."""

    def fake(f, in_axes, out_axes):
        def call(*args):
            want = progen.loop(f, args, in_axes, out_axes)
            return change(args, want)

        return call

    return fake


def test_run_matches_the_real_vmap(directory):
    assert progen.run(PROGRAM, 3, 0, directory) == "match"


@pytest.mark.parametrize(
    "change",
    [
        lambda args, want: want + 1e-3,  # a wrong value
        lambda args, want: want[:, :1],  # a wrong shape
        lambda args, want: want.astype(np.float32),  # a wrong dtype
        lambda args, want: (args[0].__setitem__(0, 9.0), want)[1],  # a modified input
    ],
    ids=["value", "shape", "dtype", "input"],
)
def test_run_reports_each_kind_of_bug(monkeypatch, directory, change):
    monkeypatch.setattr(progen, "vmap", _fake_vmap(change))
    with pytest.raises(AssertionError):
        progen.run(PROGRAM, 3, 0, directory)


def test_run_accepts_unsupported(monkeypatch, directory):
    def refuse(args, want):
        raise progen.UnsupportedError("not yet")

    monkeypatch.setattr(progen, "vmap", _fake_vmap(refuse))
    assert progen.run(PROGRAM, 3, 0, directory) == "unsupported"


def test_minimize_keeps_the_bug_and_drops_the_rest(monkeypatch, directory):
    def fake(f, in_axes, out_axes):
        if "np.sin" not in inspect.getsource(f):
            return _fake_vmap(lambda args, want: want)(f, in_axes, out_axes)

        def crash(*args):
            raise ValueError("sin is broken")

        return crash

    monkeypatch.setattr(progen, "vmap", fake)
    small = progen.minimize(PROGRAM, 3, 0, directory)
    # v3 goes; v0 and v1 stay (deleting them makes the loop fail: no verdict).
    assert "v3" not in small.source
    assert all(line in small.source for line in ("v0 = ", "v1 = ", "v2 = np.sin(v1)"))


def test_the_new_forms_are_drawn():
    """With every issue-11, 13 and 14 form on, 400 programs use each of them (generation only),
    and every program is valid Python that the loop runs."""
    seen: collections.Counter = collections.Counter()

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(program=progen.programs(new=frozenset(progen.FORMS)))
    def one(program: progen.Program) -> None:
        compile(program.source, "<progen>", "exec")
        seen.update(program.features)

    one()
    wanted = {
        "decorated-f",
        "decorated-helper",
        "locals",
        "validation",
        "index-from-buffer",
        "mask-of-buffer",
        "helper-writes",
        "helper-writes-value",
        "alias-ternary",
        "alias-returned",
        "dict-entry",
        "while-true-return",
        "no-or-every-lane",
        "pytree-negative-axes",
        "float32",
        "bound-on-both-paths",
        "bound-on-both-paths-loop",
        "loop-over-buffer",
        "helper-writes-in-branch",
        "helper-writes-in-loop",
        # issue 13's
        "one-line-suite",
        "semicolons",
        "prologue",
        "prologue-taken",
        "prologue-asarray",
        "try-lookup",
        "try-except",
        "try-finally",
        "comprehension",
        "default",
        "default-kwonly",
        "default-none",
        "inner-def",
        "inner-lambda",
        "recursion",
        "loop-var-after",
        "for-else",
        "selection",
        "window",
        "window-reduced",
        "window-write",
        "mask-write",
    }
    assert wanted <= set(seen), sorted(wanted - set(seen))
    assert any(f.startswith("mapped:") for f in seen)


def test_new_forms_are_off_by_default():
    assert progen._new_forms("") == frozenset()
    assert progen._new_forms("1") == frozenset(progen.FORMS)
    assert progen._new_forms("locals,alias") == {"locals", "alias"}
    with pytest.raises(ValueError, match="unknown forms"):
        progen._new_forms("nonsense")
