"""DESIGN §7: what astvmap does not vectorise but the loop runs is run per example (a
declared fallback with a ``PerformanceWarning`` naming the line); ``UnsupportedError``
is kept for what the loop gives no meaning under vmap, and for calls the loop fails on
in every example."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, emit, vmap

from .harness import assert_runs_per_example

RNG = np.random.default_rng(0)


def tail_from(x, a, n):  # a range with a batched start: not vectorised
    s = 0.0
    for i in range(a, n):
        s += x[i] * i
    return s


def positives(x):  # a selection returned: its length differs per example
    return x[x > 0]


def into_shared(x, w):  # the loop would accumulate every example into one w
    w += x
    return w


ARGS = (RNG.normal(size=(4, 8)), np.array([1, 2, 0, 3]), np.array([5, 8, 2, 7]))


@pytest.mark.parametrize("batch", [1, 4])
def test_a_form_not_vectorised_runs_per_example_with_the_line(batch):
    args = tuple(a[:batch] for a in ARGS)
    message = assert_runs_per_example(tail_from, args, where="test_fallback_policy.py:24")
    assert "for i in range(a, n):" in message and "hint:" in message


def test_emit_raises_what_the_fallback_names():
    with pytest.raises(UnsupportedError, match="batched start or step"):
        emit(tail_from, *ARGS)


def test_the_fallback_can_be_made_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        with pytest.raises(PerformanceWarning, match="test_fallback_policy.py:24"):
            vmap(tail_from)(*ARGS)


@pytest.mark.parametrize(
    "f, args, in_axes, words",
    [
        (positives, (RNG.normal(size=(3, 5)),), 0, "its length differs per example"),
        (into_shared, (RNG.normal(size=(3, 2)), np.zeros(2)), (0, None), "outside the function"),
    ],
    ids=["ragged", "shared-write"],
)
def test_what_the_loop_gives_no_meaning_is_refused_without_running(f, args, in_axes, words):
    before = [a.copy() for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)  # no fallback is tried
        with pytest.raises(UnsupportedError, match=words) as info:
            vmap(f, in_axes=in_axes)(*args)
    assert "test_fallback_policy.py" in info.value.filename
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_modes_that_need_the_whole_batch_refuse_instead_of_looping():
    with pytest.raises(UnsupportedError, match="fallback is not used"):
        vmap(tail_from, axis_name="i")(*ARGS)


def test_cli_emit_says_the_function_runs_per_example(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "def tail_from(x, a, n):\n"
        "    s = 0.0\n"
        "    for i in range(a, n):\n"
        "        s += x[i] * i\n"
        "    return s\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "astvmap.cli",
            "emit",
            f"{src}:tail_from",
            "--rank",
            "x=1",
            "a=0",
            "n=0",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert "m.py:3" in out.stderr and "runs this function per example" in out.stderr
