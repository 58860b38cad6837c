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
import time

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from . import progen

QUICK = 300
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
        report = _report(groups, directory, budget=600.0 if long else 120.0)
        pytest.fail(f"{sum(g[0] for g in groups.values())} bugs\n\n{report}", pytrace=False)
    refused = outcomes["unsupported"] / max(1, sum(outcomes.values()) - outcomes["loop-error"])
    assert (
        refused < 0.5
    ), f"most programs were refused: the tester proves little. {_summary(outcomes, features)}"
