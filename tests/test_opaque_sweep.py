"""No call that the translator does not transform ever receives a batched value.

An opaque call (a C function with no rule), a call with ``*args``/``**kwargs`` the
translator cannot enumerate, a call given ``locals()``/``vars()``, a call on a value
of unknown type: whatever it gets, it runs once on the whole batch, so if a batched
value reaches it, directly or inside a container, a namespace, an object's attribute
or a closure, its result is silently wrong. This sweep passes a batched ``x`` to a
receiver in every one of those ways, through every kind of callee, and requires one
of three outcomes:

- the call is transformed, and the result equals the loop (no warning);
- it is the declared per-example fallback (``PerformanceWarning``), equal to the loop;
- ``UnsupportedError`` naming a line of the vmapped function or of a receiver.

A different result, or any other exception, is a failure. Every receiver returns
``sum(v * W) + 100 * ndim(v)``, so a batched value that reaches it shows in the result
at every batch size (the ``ndim`` term catches a batch of 1).

The functions are written into a real module file (their source must be findable)
from the templates below: ``WAYS`` (how ``x`` travels: the receiver, the argument
text, lines that prepare it) times ``CALLEES`` (how the receiver is called).
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.testing import assert_same, loop

RECEIVERS = """
import functools
import operator
import types

import numpy as np

W = np.array([1.0, 10.0, 100.0])


def total(v):
    return float(np.sum(v * W)) + 100.0 * np.ndim(v)


def total_seq(seq):
    return total(seq[0])


def total_map(d):
    return total(d["v"])


def total_nested(d):
    return total(d["a"][0])


def total_ns(ns):
    return total(ns["x"])


def total_attr(o):
    return total(o.v)


def total_thunk(fn):
    return total(fn())


def total_star(*args, **kwargs):
    return total(args[0] if args else kwargs["v"])


class Box:
    def __init__(self, v):
        self.v = v


def scale2(v):
    return 2.0 * v


def scale3(v):
    return 3.0 * v


def apply(x, fn):
    return fn(x)


def _get(name):
    return globals()[name]


P_CALL = functools.partial(operator.call)
"""

# name -> (receiver, argument text, lines run first). ``x`` is the batched parameter.
WAYS = {
    "positional": ("total", "x", []),
    "keyword": ("total", "v=x", []),
    "star-list": ("total", "*[x]", []),
    "star-name": ("total", "*args", ["args = (x,)"]),
    "star-forwarded": ("total_star", "*args", ["args = [x]"]),
    "double-star-dict": ("total", '**{"v": x}', []),
    "double-star-name": ("total", "**kw", ['kw = {"v": x}']),
    "double-star-forwarded": ("total_star", "**kw", ["kw = dict(v=x)"]),
    "list": ("total_seq", "[x]", []),
    "tuple": ("total_seq", "(x,)", []),
    "tuple-name": ("total_seq", "t", ["t = (x * 1.0,)"]),
    "dict": ("total_map", '{"v": x}', []),
    "nested-container": ("total_nested", '{"a": [x]}', []),
    "locals": ("total_ns", "locals()", []),
    "vars": ("total_ns", "vars()", []),
    "namespace-attribute": ("total_attr", "o", ["o = types.SimpleNamespace(v=x)"]),
    "object-attribute": ("total_attr", "o", ["o = Box(x)"]),
    "object-attribute-set": ("total_attr", "o", ["o = types.SimpleNamespace()", "o.v = x"]),
    "closure": ("total_thunk", "inner", ["def inner():", "    return x"]),
    "lambda-closure": ("total_thunk", "lambda: x", []),
}

# name -> how the receiver R is called with the arguments A (``fn``: an unmapped argument).
CALLEES = {
    "python": "{R}({A})",  # a plain call of a module function: the translator follows it
    "c-builtin": "operator.call({R}, {A})",  # a C function with no rule
    "c-partial": "P_CALL({R}, {A})",  # a callable object of a C type with no rule
    "unknown-type": 'operator.call(_get, "{R}")({A})',  # a callee the translator cannot know
    "unmapped-arg": "fn({A})",  # a function passed in as an unmapped argument
}

# (way, callee) -> why it fails today (issue 11). Strict: a fix makes its case XPASS, which
# fails, so the entry is deleted with the fix.
XFAIL: dict[tuple[str, str], str] = {}  # every way and callee is one of the three outcomes


def _source() -> str:
    parts = [RECEIVERS]
    for (way, (receiver, arg, setup)), (kind, call) in itertools.product(
        WAYS.items(), CALLEES.items()
    ):
        body = [*setup, "return " + call.format(R=receiver, A=arg)]
        text = "\n".join("    " + line for line in body)
        parts.append(f"\ndef {_name(way, kind)}(x, fn):\n{text}\n")
    return "\n".join(parts)


def _name(way: str, kind: str) -> str:
    return f"f_{way}_{kind}".replace("-", "_")


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("opaque")) / "opaque_sweep_cases.py"
    path.write_text(_source())
    spec = importlib.util.spec_from_file_location("opaque_sweep_cases", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cases():
    for way, kind in itertools.product(WAYS, CALLEES):
        marks = []
        if (way, kind) in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[(way, kind)]))
        yield pytest.param(way, kind, marks=marks, id=f"{way}-{kind}")


def outcome(f, receiver, batch: int) -> str:
    """Run vmap(f) against the loop: "transformed", "fallback" or "refused"; raises
    AssertionError (or what vmap raised) on a failure."""
    x = np.arange(batch * 3, dtype=float).reshape(batch, 3) + 1.0
    args = (x, receiver)
    want = loop(f, args, (0, None), 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = vmap(f, in_axes=(0, None))(*args)
        except UnsupportedError as exc:
            _check_names_a_line(exc, f)
            return "refused"
    assert_same(got, want, rtol=1e-12, atol=0)
    if any(issubclass(w.category, PerformanceWarning) for w in caught):
        return "fallback"
    return "transformed"


def _check_names_a_line(exc: UnsupportedError, f) -> None:
    """The refusal names a line of the module's source (the vmapped function or a receiver)."""
    path = inspect.getsourcefile(f)
    assert exc.filename == path, f"the refusal names {exc.filename}, not {path}: {exc}"
    lines = Path(path).read_text().splitlines()
    assert exc.lineno is not None and 1 <= exc.lineno <= len(lines), str(exc)
    assert exc.source and exc.source.strip() == lines[exc.lineno - 1].strip(), str(exc)


@pytest.mark.parametrize("way, kind", _cases())
def test_a_batched_value_never_reaches_an_untransformed_call(module, way, kind):
    f = getattr(module, _name(way, kind))
    receiver = getattr(module, WAYS[way][0])
    with np.errstate(all="ignore"):
        seen = {outcome(f, receiver, batch) for batch in (1, 3)}
    assert seen <= {"transformed", "fallback", "refused"}


def test_the_sweep_sees_a_batched_value_reaching_a_receiver(module):
    """The receivers tell a batched value from an example, at every batch size."""
    one = np.array([1.0, 2.0, 3.0])
    for batch in (1, 3):
        whole = np.tile(one, (batch, 1))
        got = [module.total(row) for row in whole]
        assert module.total(whole) not in got


def test_every_way_and_callee_runs_under_the_loop(module):
    """The templates are valid per-example code: the loop runs every case."""
    x = np.ones((2, 3))
    for way, kind in itertools.product(WAYS, CALLEES):
        f = getattr(module, _name(way, kind))
        out = loop(f, (x, getattr(module, WAYS[way][0])), (0, None), 0)
        assert out.shape == (2,)


def test_a_function_argument_is_not_baked_in(module):
    x = np.arange(6.0).reshape(2, 3)
    batched = vmap(module.apply, in_axes=(0, None))
    for receiver in (module.scale2, module.scale3):
        want = loop(module.apply, (x, receiver), (0, None), 0)
        assert_same(batched(x, receiver), want, rtol=1e-12, atol=0)
        assert_same(vmap(module.apply, in_axes=(0, None))(x, receiver), want, rtol=1e-12, atol=0)
