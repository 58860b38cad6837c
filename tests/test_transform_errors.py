"""The transform never fails with an internal exception.

Every failure of a transform is a ``VmapError``: ``UnsupportedError`` naming the
user's line for code that cannot be vectorised, or ``TransformBug`` for anything
else (a bug in astvmap), which names the user's ``file:line`` being translated and
the innermost astvmap frame, says how to report it, and chains the original
exception as ``__cause__``. The catch is in one place, ``pipeline.transform``;
these tests make the translator fail on purpose and check every way in (``vmap``,
``emit``, ``emit(annotate=True)``, ``astvmap emit``) reports it so.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

import cli
from astvmap import (
    PerformanceWarning,
    UnsupportedError,
    VmapError,
    cache,
    core,
    emit,
    rewrite,
    vmap,
)
from astvmap.errors import TransformBug

X = np.arange(6.0).reshape(2, 3)


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    # A cache hit would skip the translator these tests break.
    monkeypatch.setenv("ASTVMAP_CACHE", "0")
    cache.memory_clear()
    yield
    cache.memory_clear()


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(k for k, line in enumerate(lines) if text in line)


def _breaks_on(monkeypatch, marker: str, error: BaseException) -> None:
    """Make the translator raise ``error`` when it reaches a statement containing ``marker``."""
    original = rewrite.Translator.statement

    def statement(self, stmt):
        if marker in self.source.line_text(self.file_line(stmt)):
            self.current_stmt = self.current = stmt  # as the real method does first
            raise error
        return original(self, stmt)

    monkeypatch.setattr(rewrite.Translator, "statement", statement)


def scaled(x):
    y = x * 2.0
    z = np.tanh(y)  # marker: broken
    return z + 1.0


def _helper(v):
    w = v - 1.0  # marker: helper
    return w


def calls_helper(x):
    return _helper(x) * 3.0


ERRORS = [
    IndentationError("unexpected indent"),
    AttributeError("'NoneType' object has no attribute 'kind'"),
    KeyError("x"),
    AssertionError("an invariant"),
    TypeError("unsupported operand"),
    IndexError("list index out of range"),
    ValueError("bad value"),
    RecursionError("maximum recursion depth exceeded"),
]


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_an_internal_error_is_a_transform_bug(monkeypatch, error):
    _breaks_on(monkeypatch, "marker: broken", error)
    with pytest.raises(TransformBug) as info:
        vmap(scaled)(X)
    exc = info.value
    assert isinstance(exc, VmapError) and not isinstance(exc, UnsupportedError)
    assert exc.__cause__ is error
    message = str(exc)
    line = _line_of(scaled, "marker: broken")
    assert f"{__file__}:{line}: internal error in astvmap while transforming" in message
    assert type(error).__name__ in message
    assert "bug in astvmap" in message and "report it" in message
    # The innermost astvmap frame is this test's stand-in for the broken method.
    assert "innermost astvmap frame" in message


def test_the_line_named_is_the_helpers_when_the_helper_breaks(monkeypatch):
    _breaks_on(monkeypatch, "marker: helper", KeyError("w"))
    with pytest.raises(TransformBug, match=rf"{__file__}:{_line_of(_helper, 'marker: helper')}:"):
        vmap(calls_helper)(X)


def test_the_frame_named_is_the_innermost_in_astvmap(monkeypatch):
    def broken(body):
        return {}["missing"]

    # Called at the end of Translator.translate; the stand-in is not astvmap's own code.
    monkeypatch.setattr(core, "_keep_docstring_first", broken)
    with pytest.raises(TransformBug, match=r"astvmap/core\.py:\d+ in translate"):
        vmap(scaled)(X)


def test_emit_and_annotated_emit_report_it_too(monkeypatch):
    _breaks_on(monkeypatch, "marker: broken", AttributeError("gone"))
    for annotate in (False, True):
        with pytest.raises(TransformBug) as info:
            emit(scaled, X, annotate=annotate)
        assert isinstance(info.value.__cause__, AttributeError)


def test_the_cli_reports_it_as_an_error(monkeypatch, capsys, tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("import numpy as np\n\n\ndef f(x: 'd'):\n    return np.tanh(x)\n")
    _breaks_on(monkeypatch, "np.tanh", KeyError("k"))
    assert cli.main(["emit", f"{path}:f"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5: internal error in astvmap" in err and "KeyError" in err


def test_nothing_is_cached_after_a_bug(monkeypatch):
    with monkeypatch.context() as m:
        _breaks_on(m, "marker: broken", KeyError("once"))
        with pytest.raises(TransformBug):
            vmap(scaled)(X)
    np.testing.assert_allclose(vmap(scaled)(X), np.tanh(X * 2.0) + 1.0)


def test_unsupported_and_no_rule_pass_through_unchanged():
    def uses_global(x):
        global X
        return x

    with pytest.raises(UnsupportedError) as info:
        vmap(uses_global)(X)
    assert not isinstance(info.value, TransformBug)
    # A call no rule covers is still the declared per-example fallback.
    with pytest.warns(PerformanceWarning):
        got = vmap(_opaque_user)(X)
    np.testing.assert_allclose(got, X.sum(axis=1))


def _opaque_user(x):
    return float(np.frompyfunc(lambda a: a, 1, 1)(x).astype(float).sum())


def test_deeply_nested_user_code_is_a_vmap_error(tmp_path, monkeypatch):
    """A RecursionError from a deeply nested expression is reported like any other."""
    path = tmp_path / "deep.py"
    path.write_text("def f(x):\n    return " + " + ".join(["x"] * 1500) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import deep  # noqa: PLC0415

    try:
        got = vmap(deep.f)(X)
    except UnsupportedError:
        return
    except TransformBug as exc:
        assert isinstance(exc.__cause__, RecursionError)
        assert f"{path}:" in str(exc)
        return
    finally:
        sys.modules.pop("deep", None)
    np.testing.assert_allclose(got, X * 1500)


def test_the_message_reads_well():
    exc = TransformBug("f", "m.py:3", "astvmap/rewrite.py:10 in g", KeyError("k"))
    assert str(exc).splitlines()[0] == (
        "m.py:3: internal error in astvmap while transforming f: KeyError: 'k'"
    )
    assert "(innermost astvmap frame: astvmap/rewrite.py:10 in g)" in str(exc)
    assert isinstance(exc, VmapError)
