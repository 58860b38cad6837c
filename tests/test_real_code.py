"""``emit`` over real pure-Python NumPy code: every function transforms or is refused.

The functions of NumPy's own Python modules, SciPy's, and a few scientific libraries
(tests/realcode.py lists them) are transformed with ranks guessed from annotations
or defaults. Each must transform or raise ``UnsupportedError`` naming a line; a
``TransformBug`` (an internal error), any other exception, or a transform slower
than the time limit fails.

- default (CI): a fixed sample, one function in ``realcode.EVERY`` of the
  cheap-to-import parts (``realcode.SAMPLE_PACKAGES``), chosen by a hash of its name;
- ``ASTVMAP_REAL_CODE=all``: every function of every code base (about 5,800; a few
  minutes). ``python -m tests.realcode`` runs the same and prints the counts and
  the bug groups.

Sample cases that fail today are strict xfails with the reason: a fix makes the case
pass, which fails the xfail, and the entry is deleted with the fix.
"""

from __future__ import annotations

import os

import pytest

from astvmap import rewrite

from . import realcode

FULL = os.environ.get("ASTVMAP_REAL_CODE", "") == "all"
OK = {"transformed", "unsupported", "no-source", "no-arguments"}

XFAIL: dict[str, str] = {}  # every sample case transforms or is refused with its line


def _cases() -> list:
    if FULL:
        cases = realcode.collect()
    else:
        cases = realcode.sample(realcode.collect(packages=realcode.SAMPLE_PACKAGES), realcode.EVERY)
    out = []
    for case in cases:
        marks = []
        if case.id in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[case.id]))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    # Thousands of one-off specialisations: the disk cache would only fill up.
    monkeypatch.setenv("ASTVMAP_CACHE", "0")


@pytest.mark.parametrize("case", _cases())
def test_transforms_or_refuses(case):
    outcome = realcode.run_case(case)
    assert outcome.kind in OK, f"{case.id}: {outcome.kind}: {outcome.group}\n{outcome.error}"


def test_the_sample_is_large_and_mostly_supported_or_refused():
    """The sample covers every code base it names and is not empty by accident."""
    cases = realcode.sample(realcode.collect(packages=realcode.SAMPLE_PACKAGES), realcode.EVERY)
    assert len(cases) >= 150
    assert {c.codebase for c in cases} >= {"numpy", "scipy", "transforms3d", "pytransform3d"}


# ------------------------------------------------------------ the runner itself
def _some_case() -> realcode.Case:
    return realcode.Case("numpy", "numpy.lib._function_base_impl", "sinc")


def test_a_transform_bug_is_a_bug(monkeypatch):
    def broken(self, *args, **kwargs):
        raise KeyError("broken on purpose")

    monkeypatch.setattr(rewrite.Translator, "translate", broken)
    outcome = realcode.run_case(_some_case())
    assert outcome.kind == "bug"
    assert outcome.group == "KeyError at astvmap/pipeline.py in _translate"


def test_a_slow_transform_is_reported(monkeypatch):
    def slow(self, *args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(rewrite.Translator, "translate", slow)
    assert realcode.run_case(_some_case(), limit=0.5).kind == "slow"


def test_the_example_arguments_follow_annotations_then_defaults():
    def f(x: "n d", y, eps: float = 1e-3, *rest, scale=2.0):  # noqa: F722
        return x

    made = realcode.example_arguments(f)
    # x from its annotation (rank 2), y rank 1 by default; eps and scale keep their defaults.
    assert [a.shape for a in made.args] == [(2, 3, 3), (2, 3)]
    assert made.kwargs == {}


def test_the_runner_transforms_a_known_function():
    case = realcode.Case("numpy", "numpy.lib._twodim_base_impl", "fliplr")
    assert realcode.run_case(case).kind == "transformed"
