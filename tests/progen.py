"""Random per-example NumPy programs, run through ``vmap`` and the loop oracle.

``programs()`` is a hypothesis strategy for :class:`Program`: the text of a module
(helper functions and a function ``f`` written for ONE example), the specs of
``f``'s arguments and random ``in_axes``/``out_axes``. ``run(program, batch, seed,
directory)`` writes the module to a real file, imports it (so its source is
findable, as a user's is), and compares ``vmap(f)`` with the loop. The contract
it checks is astvmap's: the results are equal, or ``UnsupportedError`` is raised;
and the caller's arrays are left as they were.

How programs stay valid NumPy: the generator knows every variable's per-example
shape and dtype, and *probes* each expression and statement it writes by running
it on dummy values of those shapes (ones; zeros for index variables), so a
construct NumPy rejects is never emitted: a simpler one takes its place. No
construct in the grammar has a data-dependent shape, so what holds for the
dummies holds for every example.

Why inputs are multiples of 1/4 in [-2, 2]: sums and products of a few of them are
exact in float64, so a batched reduction that adds in another order than the loop
gives the same bits, and comparisons do not flip on rounding. Elementwise
functions give the same bits whatever the memory layout, so differences beyond a
tight tolerance are bugs.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import hashlib
import importlib.util
import itertools
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.errors import TransformBug
from astvmap.testing import assert_same, loop

DTYPES = ("float64", "int64", "bool", "float32")
FLOATS = ("float64", "float32")
# The forms of issue 11 (decorators, locals(), helpers that write into their arguments,
# aliases, dict entries, `while True`, pytree arguments with negative in_axes, float32,
# ...) and of issue 13 (how real code is written: one-line suites, validation, try,
# comprehensions, defaults, inner defs, recursion, loop variables after the loop). Off
# by default: with them the 300-program CI profile draws other programs, and some find
# bugs not fixed yet (tests/test_progen_finds.py checks they find the kinds they target). ASTVMAP_PROGEN_NEW=1 turns them all on; a comma-separated
# list of FORMS names turns on those only (to tell which form a bug comes from).
FORMS = (
    "decorators",  # @_forward (functools.wraps, *args/**kwargs) on helpers and on f
    "locals",  # _from_ns(locals(), "v")
    "strings",  # an input check that never fails, its message split over lines
    "buffer-index",  # buf[np.argmax(buf) % n] = ...
    "buffer-mask",  # buf[buf > c] = ...
    "helper-writes",  # _bump(buf, v); t = _set_first(buf, v)
    "alias",  # a = buf if c else x; a = _same(buf); then buf[0] = ...
    "dict",  # d["q"] rebound under a condition
    "while-true",  # while True: ... return ... break
    "lanes",  # batched conditions that no lane or every lane takes
    "pytree",  # a tuple argument whose leaves have their own (negative) in_axes
    "float32",  # float32 arguments
    "both-paths",  # a name first bound on both paths of an if/else, read after it
    "buffer-loop",  # for t in range(len(b)): b[t] += batched (b fresh and unbatched)
    "control",  # every program may use batched control flow (else 1 in 4)
    # issue 14
    "selections",  # x[x > c].sum(), len(w[m]), x[:i].mean(); y[m] = w[m]
    "windows",  # x[i % m : i % m + k] (2-D too) used anywhere; x[i : i + k].sum(); writes
    # The forms of issue 13: how real per-example code is written around its NumPy.
    "one-line",  # `if c: v = ...`, `for ...: a; b`, `def h(p): return ...`
    "prologue",  # `if x is None: raise`, isinstance/ndim/shape checks, np.asarray(x)
    "try",  # try/except around a table lookup or a block, try/finally
    "comprehensions",  # np.array([... for r in v]), sum(a * b for a, b in zip(v, w))
    "defaults",  # helpers with a default (maybe keyword-only, maybe None) parameter
    "inner-defs",  # a def or lambda inside f, closing over its variables
    "recursion",  # _rec(v, 2): recursion whose depth is an unbatched literal
    "loop-vars",  # the loop variable read after the loop; for/else
)
FORMS_13 = frozenset(FORMS[FORMS.index("one-line") :])


def _new_forms(text: str) -> frozenset[str]:
    if text in ("", "0"):
        return frozenset()
    if text in ("1", "all"):
        return frozenset(FORMS)
    chosen = frozenset(t.strip() for t in text.split(","))
    unknown = chosen - set(FORMS)
    if unknown:
        raise ValueError(f"ASTVMAP_PROGEN_NEW: unknown forms {sorted(unknown)}; known: {FORMS}")
    return chosen


NEW_FORMS = _new_forms(os.environ.get("ASTVMAP_PROGEN_NEW", ""))
# Module-level helpers the new forms call; the generated module starts with them.
PRELUDE = """import functools


def _bump(buf, v):
    buf[0] += v


def _set_first(buf, v):
    buf[0] = v
    return 1.0


def _same(a):
    return a


def _from_ns(ns, name):
    return np.tanh(ns[name])


def _forward(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = list(args)
        for i, v in enumerate(args):
            args[i] = np.asarray(v)
        return fn(*args, **kwargs)

    return wrapper
"""
# What the issue-13 forms call.
PRELUDE_13 = """_TABLE = {"a": 2.0, "b": 0.5}


def _rec(x, depth):
    if depth <= 0:
        return np.tanh(x)
    return 0.5 * _rec(x, depth - 1) + x


def _tree(x, depth):
    if depth == 0 or x.shape[0] < 2:
        return x.sum(axis=0)
    h = x.shape[0] // 2
    return _tree(x[:h], depth - 1) + _tree(x[h:], depth - 1)
"""


def _prelude(new: frozenset[str]) -> list[str]:
    """The module text the drawn forms call (none without new forms: the default
    profile's programs stay as they were)."""
    if not new:
        return []
    return [PRELUDE, PRELUDE_13] if new & FORMS_13 else [PRELUDE]


MAX_SIZE = 144  # elements per example in any intermediate: keeps programs fast
MAX_RANK = 4
TIME_LIMIT = 20.0  # seconds for one call: a program takes milliseconds


# ------------------------------------------------------------------ programs
@dataclasses.dataclass(frozen=True)
class Arg:
    """One argument of ``f``: what it holds per example, and its ``in_axes`` entry."""

    name: str
    kind: str  # float | float32 | int | index | count | flag | scalar | pair
    shape: tuple[int, ...]
    axis: Any  # an int or None; a pair: a tuple of two (one per leaf) or None
    bound: int = 0  # index: values in [-bound, bound)
    shape2: tuple[int, ...] = ()  # a pair's second leaf

    def value(self, rng: np.random.Generator, batch: int) -> Any:
        if self.kind == "pair":
            axes = self.axis if self.axis is not None else (None, None)
            return tuple(
                Arg(self.name, "float", shape, ax).value(rng, batch)
                for shape, ax in zip((self.shape, self.shape2), axes)
            )
        lead = () if self.axis is None else (batch,)
        size = lead + self.shape
        if self.kind in ("float", "scalar"):
            out = rng.integers(-8, 9, size=size) / 4
        elif self.kind == "float32":
            out = (rng.integers(-8, 9, size=size) / 4).astype(np.float32)
        elif self.kind == "int":
            out = rng.integers(-3, 4, size=size)
        elif self.kind == "index":
            out = rng.integers(-self.bound, self.bound, size=size)
        elif self.kind == "count":
            out = rng.integers(0, 4, size=size)
        else:
            out = rng.integers(0, 2, size=size).astype(bool)
        if self.axis is None:
            if self.kind == "float32":
                return out if out.ndim else out[()]  # a NumPy float32 scalar stays one
            # An unmapped per-example scalar is passed as the Python scalar a user would pass.
            return out.item() if out.ndim == 0 else out
        return np.moveaxis(out, 0, self.axis)


@dataclasses.dataclass(frozen=True)
class Program:
    """A generated module and how to call its function ``f``."""

    source: str
    args: tuple[Arg, ...]
    out_axes: Any
    features: frozenset[str]

    @property
    def in_axes(self) -> tuple:
        return tuple(a.axis for a in self.args)

    @property
    def digest(self) -> str:
        text = f"{self.source}\n{self.in_axes!r}\n{self.out_axes!r}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def arguments(self, batch: int, seed: int) -> tuple:
        rng = np.random.default_rng(seed)
        return tuple(a.value(rng, batch) for a in self.args)

    def reproducer(self, batch: int, seed: int) -> str:
        """A standalone script: the module text, then the call with literal arguments."""
        lines = [self.source.rstrip(), "", "", "# the call: run from the repository root"]
        lines.append("from tests.oracle import check")
        lines.append(f"in_axes = {self.in_axes!r}")
        lines.append(f"out_axes = {self.out_axes!r}")
        for a, v in zip(self.args, self.arguments(batch, seed)):
            lines.append(f"{a.name} = {_literal(v)}")
        names = ", ".join(a.name for a in self.args)
        lines.append(f"check(f, {names}, in_axes=in_axes, out_axes=out_axes)")
        return "\n".join(lines)

    def __repr__(self) -> str:  # hypothesis prints this for the falsifying example
        return f"Program(in_axes={self.in_axes!r}, out_axes={self.out_axes!r}):\n{self.source}"


def _literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.dtype != np.float64 and value.dtype.kind == "f":
            return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
        return f"np.array({value.tolist()!r})"
    if isinstance(value, tuple):
        return "(" + "".join(_literal(v) + ", " for v in value) + ")"
    return repr(value)


# ------------------------------------------------------------------ variables
@dataclasses.dataclass(frozen=True)
class Var:
    """What the generator knows about a variable, per example."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    batched: bool  # depends on a mapped argument or on batched control flow
    mutable: bool = False  # a buffer this function made: in-place writes are allowed
    bound: int | None = None  # every value is a valid index into an axis this long
    count: bool = False  # a small non-negative int: range(v) is a short loop
    py: bool = False  # a Python scalar (an unmapped scalar argument, a loop counter)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dummy(self) -> Any:
        """A value of this shape and type: ones, or zeros for an index (valid anywhere)."""
        fill = 2 if self.count else 0 if self.bound is not None else 1
        out = np.full(self.shape, fill, dtype=np.dtype(self.dtype))
        if out.ndim:
            return out
        return out.item() if self.py else out[()]


@dataclasses.dataclass(frozen=True)
class Flow:
    """Where a statement is: inside a loop (break is allowed), under batched control."""

    in_loop: bool = False
    batched: bool = False


Scope = dict[str, Var]

UNARY_FLOAT = [
    "np.tanh({})",
    "np.sin({})",
    "np.abs({})",
    "-{}",
    "{0} * {0}",
    "np.exp(-np.abs({}))",
    "np.sqrt(np.abs({}))",
    "np.log1p(np.abs({}))",
    "np.cos({})",
    "np.square({})",
    "np.sign({})",
    "np.floor({})",
    "np.clip({}, -1.0, 1.0)",
    "np.maximum({}, 0.0)",
    "abs({})",
    "np.arctan({})",
    "np.exp({})",
    "{} ** 2",
    "np.where({0} > 0.5, {0}, 0.25 * {0})",
]
UNARY_INT = ["{} + 1", "-{}", "{} * 2", "np.abs({})", "{} % 3", "{} // 2"]
UNARY_BOOL = ["~{}", "np.logical_not({})"]
BINARY = [
    "{} + {}",
    "{} * {}",
    "{} - {}",
    "np.maximum({}, {})",
    "np.minimum({}, {})",
    "{} / (1.0 + np.abs({}))",
    "np.arctan2({}, {})",
    "np.hypot({}, {})",
]
COMPARE = ["{} > {}", "{} < {}", "{} >= {}", "{} == {}", "{} != {}"]
LOGICAL = ["{} & {}", "{} | {}", "{} ^ {}", "np.logical_and({}, {})"]
REDUCE = [
    # (template, takes a tuple axis, takes keepdims, result is an index)
    ("np.sum({}{})", True, True, False),
    ("{}.sum({})", True, True, False),
    ("np.mean({}{})", True, True, False),
    ("np.max({}{})", True, True, False),
    ("{}.min({})", True, True, False),
    ("np.prod({}{})", True, True, False),
    ("np.std({}{})", True, True, False),
    ("{}.var({})", True, True, False),
    ("np.any({}{})", True, True, False),
    ("np.all({}{})", True, True, False),
    ("np.argmax({}{})", False, True, True),
    ("{}.argmin({})", False, False, True),
    ("np.linalg.norm({}{})", False, True, False),
    ("np.median({}{})", True, True, False),
    ("np.count_nonzero({}{})", True, True, False),
    ("np.ptp({}{})", True, True, False),
]
AXIS_OPS = [
    "np.cumsum({}, axis={})",
    "np.flip({}, axis={})",
    "np.sort({}, axis={})",
    "np.roll({}, 1, axis={})",
    "np.cumprod({}, axis={})",
    "np.diff({}, axis={})",
    "np.repeat({}, 2, axis={})",
    "np.argsort({}, axis={})",
]
CONSTANTS = ["0.5", "2.0", "1.0", "-1.5", "0.25", "3"]


# Calls whose result is a new array (or a scalar), never a view of an argument: a
# variable bound to one may be written in place without touching the caller's arrays.
_FRESH_NP = """
    tanh sin abs exp sqrt log1p cos square sign floor clip maximum minimum arctan arctan2 hypot
    where sum mean max min prod std var any all argmax argmin median count_nonzero ptp cumsum
    cumprod sort argsort roll diff repeat take dot outer inner matmul concatenate hstack vstack
    stack zeros ones zeros_like ones_like full_like arange linspace eye array logical_and
    logical_not
"""
FRESH_CALLS = {"abs", "float", "round", "sum", "np.linalg.norm"} | {
    f"np.{name}" for name in _FRESH_NP.split()
}
FRESH_METHODS = {"sum", "min", "var", "argmin", "copy", "astype", "flatten"}


def _fresh(src: str) -> bool:
    """Whether ``src`` evaluates to a new array, not a view of (or a name for) another."""
    node = ast.parse(src, mode="eval").body
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
        return True
    if not isinstance(node, ast.Call):
        return False
    func = ast.unparse(node.func)
    if isinstance(node.func, ast.Attribute) and not func.startswith("np."):
        return node.func.attr in FRESH_METHODS
    return func in FRESH_CALLS  # not a helper: it may return its parameter itself


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


# ------------------------------------------------------------------ generator
class _Context:
    """State shared by every function of one program."""

    def __init__(
        self,
        draw: Callable,
        dims: tuple[int, ...],
        batched_control: bool,
        new: frozenset[str] = frozenset(),
    ) -> None:
        self.new = new  # the issue-11 forms drawn (NEW_FORMS)
        self.draw = draw
        self.dims = dims
        self.allow_batched_control = batched_control
        self.used_batched_control = False
        self.env: dict[str, Any] = {"np": np}  # helpers, for probing calls to them
        for text in _prelude(new):
            exec(text, self.env)  # noqa: S102 - so probes can call the prelude's helpers
        # name, parameter shapes, and the name of a parameter with a default (or "")
        self.helpers: list[tuple[str, tuple[tuple[int, ...], ...], str]] = []
        self.features: set[str] = set()

    def pick(self, options: list) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, weight: int = 1, out_of: int = 2) -> bool:
        return self.draw(st.integers(0, out_of - 1)) < weight

    def shape(self, min_rank: int = 0, max_rank: int = 3) -> tuple[int, ...]:
        rank = self.draw(st.integers(min_rank, max_rank))
        return tuple(self.pick(list(self.dims)) for _ in range(rank))


class _Function:
    """Writes one function: its statements, with every name's shape and dtype known."""

    def __init__(self, ctx: _Context, name: str, max_depth: int) -> None:
        self.ctx = ctx
        self.name = name
        self.lines: list[str] = []
        self.counter = itertools.count()
        self.max_depth = max_depth
        self.signature: list[tuple[tuple[int, ...], str]] | None = None
        self.batched_return = False

    # ------------------------------------------------------------ probing
    def probe(self, src: str, scope: Scope) -> tuple[tuple[int, ...], str] | None:
        """The shape and dtype of ``src`` on dummies of the scope, or None if NumPy rejects it."""
        got = self.probe_full(src, scope)
        return None if got is None else got[:2]

    def probe_full(self, src: str, scope: Scope) -> tuple[tuple[int, ...], str, bool] | None:
        """``probe`` and whether the value is a Python scalar."""
        env = dict(self.ctx.env)
        env.update({v.name: v.dummy() for v in scope.values()})
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = eval(src, env)  # noqa: S307 - generated NumPy expressions
        except Exception:
            return None
        if not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
            return None
        arr = np.asarray(value)
        if arr.dtype.name not in DTYPES or arr.ndim > MAX_RANK:
            return None
        if arr.size == 0 or arr.size > MAX_SIZE:
            return None
        return arr.shape, arr.dtype.name, isinstance(value, (int, float, bool))

    def runs(self, stmt: str, scope: Scope) -> bool:
        """Whether a statement runs on dummies of the scope."""
        env = dict(self.ctx.env)
        env.update({v.name: v.dummy() for v in scope.values()})
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(stmt, env)  # noqa: S102 - generated NumPy statements
        except Exception:
            return False
        return True

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * (depth + 1) + text)

    def fresh(self, prefix: str = "v") -> str:
        return f"{prefix}{next(self.counter)}"

    # ------------------------------------------------------------ operands
    def pick_var(self, scope: Scope, pred: Callable[[Var], bool] = lambda v: True) -> Var | None:
        options = [v for v in scope.values() if pred(v)]
        if not options:
            return None
        return self.ctx.pick(options)

    def depends(self, src: str, scope: Scope) -> bool:
        """Whether ``src`` may depend on the batch: it names a batched variable.

        An over-approximation (``len(x)`` counts), which is all its uses need.
        """
        return any(scope[t].batched for t in re.findall(r"[A-Za-z_]\w*", src) if t in scope)

    def scalar_of(self, v: Var) -> str:
        """A per-example rank-0 float from any variable."""
        if v.dtype == "float32":
            return f"np.mean({v.name}).astype(np.float64)"
        return f"np.mean({v.name})" if v.rank or v.dtype != "float64" else v.name

    def operand_for(self, scope: Scope, shape: tuple[int, ...]) -> str:
        """An operand whose shape broadcasts against ``shape`` without growing it."""
        fits = [v for v in scope.values() if _broadcasts(v.shape, shape) == shape]
        if fits and not self.ctx.chance(1, 4):
            return self.ctx.pick(fits).name
        if self.ctx.chance():
            return self.scalar_of(self.pick_var(scope))
        return self.ctx.pick(CONSTANTS)

    def fit(self, scope: Scope, shape: tuple[int, ...], dtype: str) -> str:
        """An expression of exactly this per-example shape and dtype."""
        exact = [v for v in scope.values() if v.shape == shape and v.dtype == dtype]
        if exact and not self.ctx.chance(1, 3):
            return self.ctx.pick(exact).name
        v = self.pick_var(scope)
        src = None
        if v is not None and v.rank and int(np.prod(v.shape)) == int(np.prod(shape)) and shape:
            src = f"{v.name}.reshape({shape!r})"
            if dtype != v.dtype:
                src = None
        if src is None:
            s = self.scalar_of(v) if v is not None else "1.0"
            if dtype == "float64":
                src = f"np.zeros({shape!r}) + {s}" if shape else s
            elif dtype == "float32":
                src = f"(np.zeros({shape!r}) + {s}).astype(np.float32)"
            elif dtype == "int64":
                src = f"np.zeros({shape!r}, dtype=np.int64) + np.sum({s} > 0)"
            else:
                src = f"np.zeros({shape!r}, dtype=bool) | np.any({s} > 0)"
        got = self.probe(src, scope)
        assert got == (shape, dtype), (src, got, shape, dtype)
        return src

    # ------------------------------------------------------------ expressions
    def expr(self, scope: Scope) -> tuple[str, dict]:
        """An expression over the scope: (source, extra Var fields such as an index bound)."""
        kinds = [
            self.e_unary,
            self.e_binary,
            self.e_reduce,
            self.e_shape,
            self.e_index,
            self.e_compare,
            self.e_where,
            self.e_gather,
            self.e_matmul,
            self.e_axis_op,
            self.e_join,
            self.e_call,
            self.e_create,
            self.e_einsum,
            self.e_builtin,
        ]
        if "comprehensions" in self.ctx.new:
            kinds.append(self.e_comprehension)
        if "recursion" in self.ctx.new:
            kinds.append(self.e_recursion)
        if "selections" in self.ctx.new:
            kinds.append(self.e_selection)
        if "windows" in self.ctx.new:
            kinds.append(self.e_window)
        kind = self.ctx.pick(kinds)
        got = kind(scope)
        if got is None or self.probe(got[0], scope) is None:
            kind, got = self.e_unary, self.e_unary(scope)
        self.ctx.features.add(kind.__name__[2:])
        return got

    def e_unary(self, scope: Scope) -> tuple[str, dict]:
        v = self.pick_var(scope)
        table = {
            "float64": UNARY_FLOAT,
            "float32": UNARY_FLOAT,
            "int64": UNARY_INT + UNARY_FLOAT,
            "bool": UNARY_BOOL,
        }
        template = self.ctx.pick(table[v.dtype])
        src = template.format(v.name)
        if self.probe(src, scope) is None:
            src = self.keep_type(v)
        return src, {}

    def e_binary(self, scope: Scope) -> tuple[str, dict] | None:
        a = self.pick_var(scope, lambda v: v.dtype != "bool")
        if a is None:
            return None
        b_src = self.operand_for(scope, a.shape)
        template = self.ctx.pick(BINARY)
        first, second = (a.name, b_src) if self.ctx.chance(3, 4) else (b_src, a.name)
        return template.format(first, second), {}

    def e_compare(self, scope: Scope) -> tuple[str, dict] | None:
        a = self.pick_var(scope)
        if a.dtype == "bool" and self.ctx.chance():
            b = self.pick_var(
                scope, lambda v: v.dtype == "bool" and _broadcasts(v.shape, a.shape) is not None
            )
            if b is not None:
                return self.ctx.pick(LOGICAL).format(a.name, b.name), {}
        b_src = self.operand_for(scope, a.shape)
        return self.ctx.pick(COMPARE).format(a.name, b_src), {}

    def e_where(self, scope: Scope) -> tuple[str, dict] | None:
        a = self.pick_var(scope, lambda v: v.dtype != "bool")
        if a is None:
            return None
        b_src = self.operand_for(scope, a.shape)
        c = self.pick_var(
            scope, lambda v: v.dtype == "bool" and _broadcasts(v.shape, a.shape) is not None
        )
        if c is not None and self.ctx.chance():
            cond = c.name
        else:
            cond = f"{a.name} > {self.ctx.pick(CONSTANTS)}"
        return f"np.where({cond}, {a.name}, {b_src})", {}

    def axis_arg(self, v: Var, tuple_ok: bool) -> tuple[Any, str]:
        """A random ``axis`` for v: None, an int (maybe negative) or a tuple."""
        choice = self.ctx.draw(st.integers(0, 3 if tuple_ok and v.rank >= 2 else 2))
        if choice == 0 or v.rank == 0:
            return None, "None"
        if choice == 3:
            k = self.ctx.draw(st.integers(2, v.rank))
            axes = tuple(sorted(self.ctx.draw(st.permutations(range(v.rank)))[:k]))
            if self.ctx.chance():
                axes = tuple(a - v.rank for a in axes)
            return axes, repr(axes)
        ax = self.ctx.draw(st.integers(-v.rank, v.rank - 1))
        return ax, str(ax)

    def e_reduce(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope)
        template, tuple_ok, keep_ok, index = self.ctx.pick(REDUCE)
        method = template.startswith("{}.")
        if method and v.rank == 0:
            template = "np." + template[3:].replace("({})", "({}{})")
            method = False
        axis, axis_src = self.axis_arg(v, tuple_ok)
        keep = keep_ok and self.ctx.chance(1, 3)
        parts = []
        if axis is not None or self.ctx.chance(1, 4):
            parts.append(f"axis={axis_src}")
        if keep:
            parts.append("keepdims=True")
        tail = ", ".join(parts)
        src = (
            template.format(v.name, tail)
            if method
            else template.format(v.name, ", " + tail if tail else "")
        )
        extra: dict = {}
        if index and not keep:
            bound = int(np.prod(v.shape)) if axis is None else v.shape[axis]
            extra = {"bound": bound}
        return src, extra

    # ------------------------------------------------------------ issue-14 forms
    def starts(self, scope: Scope) -> list[Var]:
        """Integer scalars a slice may start at (any value: ``% m`` brings it in range)."""
        return [v for v in scope.values() if v.rank == 0 and v.dtype == "int64"]

    def e_selection(self, scope: Scope) -> tuple[str, dict] | None:
        """A boolean-mask selection (or a slice with a batched bound), reduced at once."""
        v = self.pick_var(scope, lambda v: v.rank in (1, 2) and v.dtype != "bool")
        if v is None:
            return None
        n, c = v.shape[0], self.ctx.pick(CONSTANTS)
        others = [w for w in scope.values() if w.rank == 1 and w.shape[0] == n]
        starts = self.starts(scope)
        masks = [f"{v.name} > {c}"] if v.rank == 1 else []
        masks += [f"{w.name} > {c}" for w in others if w.dtype != "bool"]
        masks += [w.name for w in others if w.dtype == "bool"]
        if starts and self.ctx.chance(1, 3):
            i = self.ctx.pick(starts).name
            picked = self.ctx.pick([f"{v.name}[:{i}]", f"{v.name}[{i}:]"])
        elif masks:
            picked = f"{v.name}[{self.ctx.pick(masks)}]"
        else:
            return None
        if v.rank == 2:
            src = self.ctx.pick([f"{picked}.sum(axis=0)", f"len({picked})", f"{picked}.sum()"])
        else:
            src = self.ctx.pick(
                [
                    f"{picked}.sum()",
                    f"np.sum({picked})",
                    f"len({picked})",
                    f"{picked}.size",
                    f"np.count_nonzero({picked} > {c})",
                    f"({picked} ** 2).sum()",
                    f"np.abs({picked}).max(initial=0.0)",
                    f"{picked}.mean()",
                    f"np.any({picked} < {c})",
                ]
            )
        self.ctx.features.add("selection")
        return src, {}

    def e_window(self, scope: Scope) -> tuple[str, dict] | None:
        """``x[i % m : i % m + k]`` (in range: used as an array), in 2-D too, or a raw
        ``x[i : i + k]`` reduced at once (exact where the slice is shorter)."""
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        starts = self.starts(scope)
        if v is None or not starts:
            return None
        i = self.ctx.pick(starts).name
        n = v.shape[0]
        k = self.ctx.draw(st.integers(1, n))
        if v.dtype != "bool" and self.ctx.chance():
            raw = f"{v.name}[{i} : {i} + {k}]"
            self.ctx.features.add("window-reduced")
            src = self.ctx.pick([f"{raw}.sum()", f"len({raw})", f"np.mean({raw} * 2.0)"])
            return src, {}
        elems = [f"{i} % {n - k + 1} : {i} % {n - k + 1} + {k}"]
        if v.rank >= 2 and self.ctx.chance():
            j = self.ctx.pick(starts).name
            k2 = self.ctx.draw(st.integers(1, v.shape[1]))
            m2 = v.shape[1] - k2 + 1
            elems.append(f"{j} % {m2} : {j} % {m2} + {k2}")
        self.ctx.features.add("window")
        return f"{v.name}[{', '.join(elems)}]", {}

    def s_issue14_write(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A write through a window or a mask (one entry among the statements, so the
        other forms keep their share)."""
        writes = [self.s_window_write] if "windows" in self.ctx.new else []
        writes += [self.s_mask_write] if "selections" in self.ctx.new else []
        self.ctx.pick(writes)(scope, depth, flow)

    def s_window_write(self, scope: Scope, depth: int, flow: Flow) -> None:
        """``buf[i % m : i % m + k] = value`` (or ``+=``)."""
        b = self.float_buffer(scope)
        starts = self.starts(scope)
        if b is None or not starts:
            return self.s_buffer(scope, depth, flow)
        i, n = self.ctx.pick(starts).name, b.shape[0]
        k = self.ctx.draw(st.integers(1, n))
        index = f"{i} % {n - k + 1} : {i} % {n - k + 1} + {k}"
        if self.ctx.chance():
            value = self.scalar_of(self.pick_var(scope))
        else:
            value = self.fit(scope, (k, *b.shape[1:]), b.dtype)
        stmt = f"{b.name}[{index}] {self.ctx.pick(['=', '+='])} {value}"
        if not self.runs(stmt, scope):
            return self.s_setitem(scope, depth, flow, target=b)
        self.ctx.features.add("window-write")
        self.emit(depth, stmt)
        self.written(scope, b, stmt, flow)

    def s_mask_write(self, scope: Scope, depth: int, flow: Flow) -> None:
        """``buf[m] = w[m]`` / ``buf[m] += v`` through a mask of another array."""
        b = self.float_buffer(scope)
        if b is None or b.rank != 1:
            return self.s_buffer(scope, depth, flow)
        n, c = b.shape[0], self.ctx.pick(CONSTANTS)
        others = [w for w in scope.values() if w.rank == 1 and w.shape[0] == n]
        w = self.ctx.pick(others)  # b itself at least
        m = self.fresh("m")
        mask = w.name if w.dtype == "bool" else f"{w.name} > {c}"
        values = [self.scalar_of(self.pick_var(scope)), "0.0"]
        values += [f"{u.name}[{m}]" for u in others if u.dtype in FLOATS]
        stmt = f"{b.name}[{m}] {self.ctx.pick(['=', '+=', '*='])} {self.ctx.pick(values)}"
        if not self.runs(f"{m} = {mask}\n{stmt}", scope):
            return self.s_setitem(scope, depth, flow, target=b)
        self.ctx.features.add("mask-write")
        self.emit(depth, f"{m} = {mask}")
        scope[m] = Var(m, (n,), "bool", self.depends(mask, scope) or flow.batched)
        self.emit(depth, stmt)
        self.written(scope, b, stmt, flow)

    def e_shape(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        if v is None:
            return None
        n, r = v.name, v.rank
        size = int(np.prod(v.shape))
        options = [f"{n}.T", f"{n}.ravel()", f"{n}[None]", f"np.expand_dims({n}, {r})"]
        new = self.reshape_target(size)
        options += [f"{n}.reshape({new!r})", f"np.reshape({n}, {new!r})"]
        options += [f"{n}.reshape(-1)", f"{n}[..., None]", f"np.transpose({n})", f"{n}.flatten()"]
        if r >= 2:
            perm = tuple(self.ctx.draw(st.permutations(range(r))))
            options += [f"np.transpose({n}, {perm!r})", f"{n}.transpose({perm!r})"]
            options += [f"np.swapaxes({n}, 0, -1)", f"np.moveaxis({n}, 0, -1)", f"{n}[:, None]"]
        if 1 in v.shape:
            options += [f"np.squeeze({n})", f"{n}.squeeze()"]
        target = self.broadcast_target(v.shape)
        options.append(f"np.broadcast_to({n}, {target!r})")
        src = self.ctx.pick(options)
        return src, {"bound": v.bound} if "broadcast_to" not in src else {}

    def reshape_target(self, size: int) -> tuple[int, ...]:
        """A random shape with ``size`` elements, maybe with one -1."""
        dims = []
        left = size
        for _ in range(self.ctx.draw(st.integers(0, 2))):
            divisors = [d for d in range(1, left + 1) if left % d == 0]
            d = self.ctx.pick(divisors)
            dims.append(d)
            left //= d
        dims.append(left)
        dims = list(self.ctx.draw(st.permutations(dims)))
        if len(dims) > 1 and self.ctx.chance(1, 3):
            dims[self.ctx.draw(st.integers(0, len(dims) - 1))] = -1
        return tuple(dims)

    def broadcast_target(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        out = [d if d != 1 else self.ctx.pick(list(self.ctx.dims)) for d in shape]
        if self.ctx.chance(1, 3):
            out.insert(0, self.ctx.pick(list(self.ctx.dims)))
        return tuple(out)

    def basic_index(self, shape: tuple[int, ...]) -> str:
        """A random basic index (ints, slices with steps, None, ...) for an array of this shape."""
        items = []
        for d in shape[: self.ctx.draw(st.integers(1, len(shape)))]:
            choice = self.ctx.draw(st.integers(0, 4))
            if choice == 0:
                items.append(str(self.ctx.draw(st.integers(-d, d - 1))))
            elif choice == 1:
                items.append(":")
            elif choice == 2:
                lo = self.ctx.draw(st.integers(0, d - 1))
                items.append(f"{lo}:")
            elif choice == 3:
                items.append("::-1" if self.ctx.chance() else "::2")
            else:
                lo = self.ctx.draw(st.integers(-d, d - 1))
                items.append(f"{lo}:{self.ctx.draw(st.integers(-d, d))}")
        if self.ctx.chance(1, 4):
            items.insert(self.ctx.draw(st.integers(0, len(items))), "None")
        if self.ctx.chance(1, 5):
            items = ["...", *items[1:]] if len(items) > 1 else ["...", items[0]]
        return ", ".join(items)

    def e_index(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        if v is None:
            return None
        return f"{v.name}[{self.basic_index(v.shape)}]", {}

    def index_for(self, scope: Scope, size: int) -> Var | None:
        return self.pick_var(scope, lambda v: v.bound is not None and v.bound <= size)

    def e_gather(self, scope: Scope) -> tuple[str, dict] | None:
        bounds = [v.bound for v in scope.values() if v.bound is not None]
        if not bounds:
            return None
        v = self.pick_var(scope, lambda v: v.rank >= 1 and max(v.shape) >= min(bounds))
        if v is None:
            return None
        axis = self.ctx.draw(st.integers(0, v.rank - 1))
        i = self.index_for(scope, v.shape[axis])
        if i is None:
            return None
        form = self.ctx.draw(st.integers(0, 3))
        if form == 0 or axis > 1:
            src = f"np.take({v.name}, {i.name}, axis={axis})" if axis else f"{v.name}[{i.name}]"
        elif form == 1:
            src = f"{v.name}[{':, ' * axis}{i.name}]"
        elif form == 2:
            src = f"{v.name}[{'..., ' if axis == v.rank - 1 else ':, ' * axis}{i.name}]"
        else:
            j = self.index_for(scope, v.shape[1]) if v.rank >= 2 and axis == 0 else None
            src = f"{v.name}[{i.name}, {j.name}]" if j is not None else f"{v.name}[{i.name}, ...]"
        return src, {}

    def e_matmul(self, scope: Scope) -> tuple[str, dict] | None:
        a = self.pick_var(scope, lambda v: v.rank >= 1 and v.dtype != "bool")
        if a is None:
            return None
        k = a.shape[-1]

        def fits(b: Var) -> bool:
            if b.rank == 0 or b.dtype == "bool":
                return False
            return (b.rank == 1 and b.shape[0] == k) or (b.rank >= 2 and b.shape[-2] == k)

        b = self.pick_var(scope, fits)
        if b is None:
            b_src = f"np.ones(({k}, {self.ctx.pick(list(self.ctx.dims))}))"
        else:
            b_src = b.name
        form = self.ctx.draw(st.integers(0, 3))
        if form == 1 and a.rank <= 2 and (b is None or b.rank <= 2):
            src = f"np.dot({a.name}, {b_src})"
        elif form == 2 and a.rank == 1 and b is not None and b.rank == 1:
            src = (
                f"np.outer({a.name}, {b.name})"
                if self.ctx.chance()
                else f"np.inner({a.name}, {b.name})"
            )
        elif form == 3:
            src = f"np.matmul({a.name}, {b_src})"
        else:
            src = f"{a.name} @ {b_src}"
        return src, {}

    def e_einsum(self, scope: Scope) -> tuple[str, dict] | None:
        ops = [self.pick_var(scope, lambda v: v.rank >= 1 and v.dtype == "float64")]
        if ops[0] is None:
            return None
        if self.ctx.chance():
            other = self.pick_var(scope, lambda v: v.rank >= 1 and v.dtype == "float64")
            ops.append(other)
        letters: dict[str, int] = {}
        specs = []
        for v in ops:
            spec = ""
            for d in v.shape:
                same = [c for c, n in letters.items() if n == d and c not in spec]
                if same and self.ctx.chance(2, 3):
                    spec += self.ctx.pick(same)
                else:
                    c = "ijklmnopqr"[len(letters)]
                    letters[c] = d
                    spec += c
            specs.append(spec)
        used = sorted(set("".join(specs)))
        keep = [c for c in self.ctx.draw(st.permutations(used)) if self.ctx.chance()]
        spec = ",".join(specs) + "->" + "".join(keep)
        names = ", ".join(v.name for v in ops)
        return f'np.einsum("{spec}", {names})', {}

    def e_axis_op(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope, lambda v: v.rank >= 1 and v.dtype != "bool")
        if v is None:
            return None
        axis = self.ctx.draw(st.integers(-v.rank, v.rank - 1))
        return self.ctx.pick(AXIS_OPS).format(v.name, axis), {}

    def e_join(self, scope: Scope) -> tuple[str, dict] | None:
        a = self.pick_var(scope, lambda v: v.rank >= 1)
        if a is None:
            return None
        if self.ctx.chance():
            axis = self.ctx.draw(st.integers(0, a.rank))
            b = self.pick_var(scope, lambda v: v.shape == a.shape)
            return f"np.stack([{a.name}, {b.name}], axis={axis})", {}
        axis = self.ctx.draw(st.integers(0, a.rank - 1))

        def fits(v: Var) -> bool:
            return v.rank == a.rank and all(
                n == m for k, (n, m) in enumerate(zip(v.shape, a.shape)) if k != axis
            )

        b = self.pick_var(scope, fits)
        fn = self.ctx.pick(["np.concatenate", "np.concatenate", "np.hstack", "np.vstack"])
        if fn != "np.concatenate":
            return f"{fn}([{a.name}, {b.name}])", {}
        return f"np.concatenate([{a.name}, {b.name}], axis={axis})", {}

    def e_call(self, scope: Scope) -> tuple[str, dict] | None:
        if not self.ctx.helpers:
            return None
        name, params, default = self.ctx.pick(self.ctx.helpers)
        args = [self.fit(scope, shape, "float64") for shape in params]
        if len(args) > 1 and self.ctx.chance(1, 3):
            args[-1] = f"p{len(args) - 1}={args[-1]}"
        if default and self.ctx.chance():
            value = self.ctx.pick([self.scalar_of(self.pick_var(scope)), "0.75"])
            args.append(f"{default}={value}")
            self.ctx.features.add("default-passed")
        self.ctx.features.add("call")
        return f"{name}({', '.join(args)})", {}

    def e_create(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        d = self.ctx.pick(list(self.ctx.dims))
        options = [f"np.arange({d}) * 0.5", f"np.linspace(-1.0, 1.0, {d})", f"np.eye({d})"]
        if v is not None:
            options += [
                f"np.ones_like({v.name}) * {self.scalar_of(self.pick_var(scope))}",
                f"np.zeros({v.name}.shape) + {self.scalar_of(self.pick_var(scope))}",
                f"np.full_like({v.name}, 2)",
                f"np.arange({v.name}.shape[0]) + 1",
            ]
        return self.ctx.pick(options), {}

    def e_builtin(self, scope: Scope) -> tuple[str, dict] | None:
        v = self.pick_var(scope)
        w = self.pick_var(scope)
        options = [
            f"float(np.sum({v.name}))",
            f"max({self.scalar_of(v)}, {self.scalar_of(w)})",
            f"min({self.scalar_of(v)}, 0.5)",
            f"abs({self.scalar_of(v)})",
            f"round({self.scalar_of(v)}, 1)",
        ]
        if v.rank >= 1:
            options += [f"len({v.name}) * 1.0", f"sum({v.name})", f"{v.name}.astype(np.float64)"]
        if v.dtype == "float64" and v.rank >= 1:
            options.append(f"{v.name} * {v.name}.astype(np.int64)")
        return self.ctx.pick(options), {}

    def e_comprehension(self, scope: Scope) -> tuple[str, dict] | None:
        """A comprehension or generator over an array's first axis (or a static range)."""
        v = self.pick_var(scope, lambda v: v.rank >= 1 and v.dtype != "bool")
        if v is None:
            return None
        body = self.ctx.pick(["np.tanh({})", "{} * 2.0", "np.abs({})", "np.sum({})", "{} - 0.5"])
        options = [
            f"np.array([{body.format('r')} for r in {v.name}])",
            f"np.stack([{v.name} * k for k in range({self.ctx.draw(st.integers(1, 3))})])",
            f"max(float(np.max(r)) for r in {v.name})",
            f"any(np.any(r > 0.5) for r in {v.name})",
            f"sum(np.sum(r) for r in {v.name})",
            f'{{k: {v.name} * w for k, w in (("a", 1.0), ("b", 2.0))}}["b"]',
        ]
        if v.rank >= 2:
            options.append(f"np.array([[q * 2.0 for q in row] for row in {v.name}])")
        w = self.pick_var(scope, lambda w: w.rank >= 1 and w.shape[0] == v.shape[0])
        if w is not None and w.dtype != "bool":
            options.append(f"sum(a * b for a, b in zip({v.name}, {w.name}))")
            options.append(f"np.array([a - b for a, b in zip({v.name}, {w.name})])")
        return self.ctx.pick(options), {}

    def e_recursion(self, scope: Scope) -> tuple[str, dict] | None:
        """A call of a recursive helper whose depth is an unbatched literal."""
        v = self.pick_var(scope, lambda v: v.dtype in FLOATS)
        if v is None:
            return None
        depth = self.ctx.draw(st.integers(0, 3))
        if v.rank >= 1 and self.ctx.chance():
            return f"_tree({v.name}, {depth})", {}
        return f"_rec({v.name}, {depth})", {}

    # ------------------------------------------------------------ issue-13 statements
    def s_prologue(self, scope: Scope, depth: int, flow: Flow) -> None:
        """Input validation in front of the math: checks every example passes (presence,
        type, rank, shape, a data check no example fails), or a conversion."""
        v = self.pick_var(scope)
        n = v.name
        # An unmapped rank-0 argument is a Python number per example: no .ndim.
        ndim = f"{n}.ndim" if v.rank else f"np.ndim({n})"
        checks = [
            f"{n} is None",
            f"{ndim} != {v.rank}",
            f"len(np.shape({n})) > {v.rank}",
            f"not isinstance({n}, (np.ndarray, np.generic, float, int))",
        ]
        if v.rank:
            checks += [
                f"not isinstance({n}, np.ndarray)",
                f"{n}.shape[-1] != {v.shape[-1]}",
                f"np.isscalar({n})",
            ]
        if v.dtype in FLOATS:
            checks.append(f"np.any(np.isnan({n}))")  # data-dependent, taken by no example
        form = self.ctx.draw(st.integers(0, 3))
        if form == 3 and not v.py and v.dtype != "bool":
            # A conversion that changes nothing; the name is no longer known fresh.
            self.emit(depth, f"{n} = np.asarray({n})")
            scope[n] = dataclasses.replace(v, mutable=False)
            self.ctx.features.add("prologue-asarray")
            return
        if form == 2:
            # The branch every example takes.
            self.emit(depth, f"if {n} is not None:")
            self.merge(scope, self.nested(scope, depth, flow), flow.batched)
            self.ctx.features.add("prologue-taken")
            return
        cond = self.ctx.pick(checks)
        self.emit(depth, f"if {cond}:")
        kind = "TypeError" if "isinstance" in cond or "None" in cond else "ValueError"
        message = self.ctx.pick(
            [
                f'"{n} has the wrong shape"',
                f'f"{n}: got shape {{np.shape({n})}}"',
                f'"bad input: %s" % ({n},)',
            ]
        )
        self.emit(depth + 1, f"raise {kind}({message})")
        self.ctx.features.add("prologue-nan" if "isnan" in cond else "prologue")

    def s_try(self, scope: Scope, depth: int, flow: Flow) -> None:
        """try statements: a table lookup that may miss, a guarded block, try/finally."""
        form = self.ctx.draw(st.integers(0, 2))
        if form == 0:
            v = self.pick_var(scope)
            x = self.scalar_of(v)
            name = self.fresh()
            self.emit(depth, "try:")
            self.emit(depth + 1, f'{name} = _TABLE["{self.ctx.pick(["a", "b", "c"])}"] * {x}')
            self.emit(depth, "except KeyError:")
            self.emit(depth + 1, f"{name} = 0.5 * {x}")
            self.bind(scope, name, f"0.5 * {x}", flow)
            self.ctx.features.add("try-lookup")
            return
        self.emit(depth, "try:")
        self.merge(scope, self.nested(scope, depth, flow), flow.batched)
        if form == 1:
            self.emit(depth, self.ctx.pick(["except (ValueError, TypeError):", "except KeyError:"]))
            self.emit(depth + 1, self.ctx.pick(["raise", "pass"]))
            self.ctx.features.add("try-except")
        else:
            self.emit(depth, "finally:")
            self.merge(scope, self.nested(scope, depth, flow), flow.batched)
            self.ctx.features.add("try-finally")

    def s_inner_def(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A def or lambda inside the function, closing over one of its variables, then
        called."""
        v = self.pick_var(scope, lambda v: v.dtype != "bool")
        if v is None:
            return self.s_assign(scope, depth, flow)
        closure = self.ctx.pick([self.scalar_of(self.pick_var(scope)), self.ctx.pick(CONSTANTS)])
        body = self.ctx.pick(["np.tanh(a) * {}", "a * a + {}", "np.maximum(a, {})"])
        body = body.format(closure)
        g, name = self.fresh("g"), self.fresh()
        default = self.ctx.chance(1, 3)
        params = "a, c=2.0" if default else "a"
        if default:
            body += " * c"
        got = self.probe_full(f"(lambda {params}: {body})({v.name})", scope)
        if got is None:
            return self.s_assign(scope, depth, flow)
        if self.ctx.chance(1, 3):
            self.emit(depth, f"{g} = lambda {params}: {body}")
            self.ctx.features.add("inner-lambda")
        else:
            self.emit(depth, f"def {g}({params}):")
            self.emit(depth + 1, f"return {body}")
            self.ctx.features.add("inner-def")
        self.emit(depth, f"{name} = {g}({v.name})")
        batched = flow.batched or self.depends(f"{body} {v.name}", scope)
        scope[name] = Var(name, got[0], got[1], batched, py=got[2])

    # ------------------------------------------------------------ statements
    def block(self, scope: Scope, depth: int, count: int, flow: Flow) -> None:
        for _ in range(count):
            self.statement(scope, depth, flow)

    def statement(self, scope: Scope, depth: int, flow: Flow) -> None:
        kinds = [self.s_assign] * 4 + [self.s_update] * 2 + [self.s_buffer, self.s_setitem]
        if depth < self.max_depth:
            kinds += [self.s_if, self.s_for, self.s_while, self.s_if_return]
        if flow.in_loop:
            kinds.append(self.s_break)
        forms = {
            "helper-writes": self.s_helper_write,
            "buffer-index": self.s_buffer_index,
            "buffer-mask": self.s_buffer_mask,
            "alias": self.s_alias,
            "dict": self.s_dict,
            "locals": self.s_locals,
            "strings": self.s_validate,
            "prologue": self.s_prologue,
            "try": self.s_try,
            "inner-defs": self.s_inner_def,
            "buffer-loop": self.s_buffer_loop,
            "both-paths": self.s_both_paths,
        }
        kinds += [method for form, method in forms.items() if form in self.ctx.new]
        if {"windows", "selections"} & self.ctx.new:
            kinds.append(self.s_issue14_write)
        if "while-true" in self.ctx.new and depth < self.max_depth:
            kinds.append(self.s_while_true)
        self.ctx.pick(kinds)(scope, depth, flow)

    # ------------------------------------------------------------ issue-11 forms
    def float_buffer(self, scope: Scope) -> Var | None:
        """A buffer this function owns, of a float dtype and rank >= 1."""
        return self.pick_var(scope, lambda v: v.mutable and v.rank >= 1 and v.dtype in FLOATS)

    def written(self, scope: Scope, v: Var, value: str, flow: Flow) -> None:
        """``v`` was written with ``value``: batched if the value or the control flow is."""
        batched = v.batched or flow.batched or self.depends(value, scope)
        scope[v.name] = dataclasses.replace(v, batched=batched)

    def s_helper_write(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A helper that writes into its buffer argument: as a statement, or for its value;
        into a buffer made for it or one that exists; maybe inside a branch or a loop."""
        b = self.float_buffer(scope)
        if b is None or self.ctx.chance(1, 3):
            b = self.zeros_buffer(scope, depth, flow)
        value = self.scalar_of(self.pick_var(scope))
        name = ""
        if self.ctx.chance():
            stmt = f"_bump({b.name}, {value})"
            self.ctx.features.add("helper-writes")
        else:
            name = self.fresh()
            stmt = f"{name} = _set_first({b.name}, {value})"
            self.ctx.features.add("helper-writes-value")
        if not self.runs(stmt, scope):
            return self.s_setitem(scope, depth, flow, target=b)
        where = self.ctx.draw(st.integers(0, 4))
        inner = flow
        if where == 0:
            cond, batched = self.condition(scope)
            self.emit(depth, f"if {cond}:")
            inner = dataclasses.replace(flow, batched=flow.batched or batched)
            self.ctx.features.add("helper-writes-in-branch")
        elif where == 1:
            self.emit(depth, f"for {self.fresh('t')} in range({self.ctx.draw(st.integers(1, 2))}):")
            self.ctx.features.add("helper-writes-in-loop")
        self.emit(depth + (where < 2), stmt)
        if name and where != 0:  # (bound on one path only after a branch)
            scope[name] = Var(name, (), "float64", inner.batched, py=True)
        self.written(scope, b, value, inner)

    def zeros_buffer(self, scope: Scope, depth: int, flow: Flow) -> Var:
        """A fresh float buffer, unbatched until a batched value is written into it."""
        name = self.fresh("b")
        shape = self.ctx.shape(1, 2)
        self.emit(depth, f"{name} = np.{self.ctx.pick(['zeros', 'ones'])}({shape!r})")
        scope[name] = Var(name, shape, "float64", flow.batched, mutable=True)
        return scope[name]

    def s_buffer_loop(self, scope: Scope, depth: int, flow: Flow) -> None:
        """``for t in range(len(b))`` over a fresh buffer the body writes a batched value
        into (the range is read from the buffer as it was before the loop)."""
        if depth >= self.max_depth:
            return self.s_buffer(scope, depth, flow)
        b = self.pick_var(
            scope, lambda v: v.mutable and v.rank >= 1 and v.dtype in FLOATS and not v.batched
        )
        if b is None:
            b = self.zeros_buffer(scope, depth, flow)
        t = self.fresh("t")
        bound = self.ctx.pick([f"len({b.name})", f"{b.name}.shape[0]"])
        self.emit(depth, f"for {t} in range({bound}):")
        var = Var(t, (), "int64", flow.batched, bound=b.shape[0], py=True)
        inner = {**scope, t: var}
        value = self.scalar_of(self.pick_var(scope))
        write = self.ctx.pick([f"{b.name}[{t}] += {value}", f"{b.name} = {b.name} + {value}"])
        self.emit(depth + 1, write)
        self.written(inner, b, value, flow)
        inner_flow = dataclasses.replace(flow, in_loop=True)
        self.block(inner, depth + 1, self.ctx.draw(st.integers(0, 2)), inner_flow)
        self.merge(scope, inner, flow.batched)
        for name, v in scope.items():
            if inner[name] != v:
                scope[name] = dataclasses.replace(scope[name], batched=True)
        self.ctx.features.add("loop-over-buffer")

    def s_buffer_index(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A write into a buffer at an index computed from that buffer."""
        b = self.float_buffer(scope)
        if b is None or self.ctx.chance(1, 3):
            b = self.zeros_buffer(scope, depth, flow)
        n = b.shape[0]
        index = self.ctx.pick(
            [
                f"np.argmax({b.name}) % {n}",
                f"np.argsort({b.name}.ravel())[0] % {n}",
                f"int({b.name}.ravel()[-1] * 4) % {n}",
                f"np.argmin({b.name}, axis=0)" if b.rank == 1 else f"np.argmax({b.name}) % {n}",
                f"{b.name}[0].astype(int) % {n}",
                f"np.argsort({b.name}, axis=0)[0]" if b.rank == 1 else f"{b.name}[:, 0] > 0.5",
            ]
        )
        value = self.scalar_of(self.pick_var(scope))
        op = self.ctx.pick(["=", "+="])
        stmt = f"{b.name}[{index}] {op} {value}"
        if not self.runs(stmt, scope):
            return self.s_setitem(scope, depth, flow, target=b)
        self.ctx.features.add("index-from-buffer")
        self.emit(depth, stmt)
        self.written(scope, b, value, flow)

    def s_buffer_mask(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A write through a boolean mask of a buffer (the mask read from the buffer)."""
        b = self.float_buffer(scope)
        if b is None or self.ctx.chance(1, 3):
            b = self.zeros_buffer(scope, depth, flow)
        c = self.ctx.pick(CONSTANTS)
        value = self.ctx.pick([self.scalar_of(self.pick_var(scope)), "0.0", "-1.0"])
        stmt = self.ctx.pick(
            [
                f"{b.name}[{b.name} > {c}] = {value}",
                f"{b.name}[{b.name} < {c}] *= 2.0",
                f"{b.name}[({b.name} > {c}) | ({b.name} < -{c})] += {value}",
            ]
        )
        if not self.runs(stmt, scope):
            return self.s_setitem(scope, depth, flow, target=b)
        self.ctx.features.add("mask-of-buffer")
        self.emit(depth, stmt)
        self.written(scope, b, value, flow)

    def s_alias(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A name that may be the buffer (a ternary, a helper returning its argument), then
        a write into the buffer that the name must see."""
        b = self.float_buffer(scope)
        if b is None:
            return self.s_buffer(scope, depth, flow)
        name = self.fresh()
        other = ""
        if self.ctx.chance():
            cond, batched = self.condition(scope)
            other = self.fit(scope, b.shape, b.dtype)
            self.emit(depth, f"{name} = {b.name} if {cond} else {other}")
            self.ctx.features.add("alias-ternary-batched" if batched else "alias-ternary")
        else:
            batched = False
            self.emit(depth, f"{name} = _same({b.name})")
            self.ctx.features.add("alias-returned")
        value = self.scalar_of(self.pick_var(scope))
        self.emit(depth, f"{b.name}[0] = {value}")
        alias_batched = (
            b.batched
            or batched
            or flow.batched
            or self.depends(value, scope)
            or self.depends(other, scope)
        )
        scope[name] = Var(name, b.shape, b.dtype, alias_batched)
        self.written(scope, b, value, flow)

    def s_dict(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A dict entry rebound under a condition, then read."""
        v = self.pick_var(scope, lambda v: v.dtype in FLOATS and not v.py)
        if v is None:
            return self.s_assign(scope, depth, flow)
        d, out = self.fresh("d"), self.fresh()
        cond, batched = self.condition(scope)
        self.emit(depth, f'{d} = {{"q": {v.name} * 1.0, "n": 0}}')
        self.emit(depth, f"if {cond}:")
        # The new values may be batched (under a plain `if`, one path makes the item so).
        other = self.pick_var(scope)
        scalar = self.scalar_of(other)
        # (not into float32: a float64 scalar would change the item's dtype on one path)
        bump = self.ctx.pick(["1.0", scalar]) if v.dtype == "float64" else "1.0"
        count = self.ctx.pick(["1", f"({scalar} > 0) * 1"])
        self.emit(depth + 1, f'{d}["q"] = {d}["q"] * 2.0 + {bump}')
        self.emit(depth + 1, f'{d}["n"] = {d}["n"] + {count}')
        self.emit(depth, f'{out} = {d}["q"] * ({d}["n"] + 1)')
        self.ctx.features.add("dict-entry-batched" if batched else "dict-entry")
        batched = batched or (other.batched and (bump != "1.0" or count != "1"))
        got = self.probe(f"{v.name} * 1.0 * 1", scope)
        dtype = got[1] if got else v.dtype
        scope[out] = Var(out, v.shape, dtype, v.batched or batched or flow.batched, mutable=True)

    def s_locals(self, scope: Scope, depth: int, flow: Flow) -> None:
        """locals() handed to a helper that reads a variable from it."""
        v = self.pick_var(scope, lambda v: v.dtype in FLOATS and not v.py)
        if v is None:
            return self.s_assign(scope, depth, flow)
        name = self.fresh()
        src = f'_from_ns(locals(), "{v.name}")'
        self.emit(depth, f"{name} = {src}")
        self.ctx.features.add("locals")
        got = self.probe(f"np.tanh({v.name})", scope)
        scope[name] = Var(name, v.shape, got[1], v.batched or flow.batched, mutable=True)

    def s_validate(self, scope: Scope, depth: int, flow: Flow) -> None:
        """An input check that never fails, its message split over lines."""
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        if v is None:
            v = self.pick_var(scope)
        if self.ctx.chance():
            cond = f"{v.name}.shape != {v.shape!r}" if v.rank else f"np.ndim({v.name}) != 0"
        else:
            cond = f"np.ndim({v.name}) != {v.rank}"
        self.emit(depth, f"if {cond}:")
        form = self.ctx.draw(st.integers(0, 2))
        if form == 0:
            self.emit(depth + 1, "raise ValueError(")
            self.emit(depth + 2, '"expected another shape, got "')
            self.emit(depth + 2, f'"an array of shape %s" % ({v.name}.shape,)')
            self.emit(depth + 1, ")")
        elif form == 1:
            self.emit(depth + 1, 'raise ValueError("bad " "input")')
        else:
            self.emit(depth + 1, f'raise ValueError(f"bad shape {{np.shape({v.name})}} " "here")')
        self.ctx.features.add("validation")

    def s_while_true(self, scope: Scope, depth: int, flow: Flow) -> None:
        """``while True`` left by an early return or by a counted break."""
        t = self.fresh("t")
        k = self.ctx.draw(st.integers(1, 3))
        self.emit(depth, f"{t} = 0")
        self.emit(depth, "while True:")
        # The counter and the exit first, so that `continue` cannot skip them.
        self.emit(depth + 1, f"{t} = {t} + 1")
        self.emit(depth + 1, f"if {t} > {k}:")
        self.emit(depth + 2, "break")
        var = Var(t, (), "int64", flow.batched, py=True)
        inner_flow = dataclasses.replace(flow, in_loop=True)
        inner = {**scope, t: var}
        self.block(inner, depth + 1, self.ctx.draw(st.integers(0, 2)), inner_flow)
        cond, batched = self.condition(inner)
        self.emit(depth + 1, f"if {cond}:")
        stmt = self.return_stmt(inner)
        self.emit(depth + 2, stmt)
        self.batched_return = True
        self.ctx.features.add("while-true-return-batched" if batched else "while-true-return")
        self.merge(scope, inner, flow.batched or batched)
        for name, v in scope.items():
            if inner[name] != v:
                scope[name] = dataclasses.replace(scope[name], batched=True)

    def bind(self, scope: Scope, name: str, src: str, flow: Flow, **extra: Any) -> None:
        shape, dtype, py = self.probe_full(src, scope)
        batched = flow.batched or self.depends(src, scope)
        scope[name] = Var(name, shape, dtype, batched, py=py, **extra)

    def s_assign(self, scope: Scope, depth: int, flow: Flow) -> None:
        src, extra = self.expr(scope)
        name = self.fresh()
        self.emit(depth, f"{name} = {src}")
        self.bind(scope, name, src, flow, mutable=_fresh(src), **extra)

    def s_update(self, scope: Scope, depth: int, flow: Flow) -> None:
        """Rebind, or update in place, a name that exists: same shape and dtype."""
        # Loop variables stay as the loop made them (a while counter must stay an int).
        v = self.pick_var(scope, lambda v: not v.count and v.bound is None and v.name[0] != "t")
        if v is None:
            return self.s_assign(scope, depth, flow)
        value = self.fit_like(scope, v, self.expr(scope)[0])
        op = self.ctx.pick(["+", "*", "-"])
        stmt = f"{v.name} {op}= {value}"
        in_place = (
            v.mutable
            and v.dtype != "bool"
            and self.ctx.chance()
            and self.probe(f"{v.name} {op} ({value})", scope) == (v.shape, v.dtype)
            and self.runs(stmt, scope)
        )
        if not in_place:
            stmt = f"{v.name} = {value}"
        self.emit(depth, stmt)
        batched = v.batched or flow.batched or self.depends(value, scope)
        mutable = v.mutable if in_place else _fresh(value)
        scope[v.name] = dataclasses.replace(v, batched=batched, mutable=mutable)

    def keep_type(self, v: Var) -> str:
        return {
            "float64": f"np.tanh({v.name})",
            "float32": f"np.tanh({v.name})",
            "int64": f"{v.name} + 1",
            "bool": f"~{v.name}",
        }[v.dtype]

    def fit_like(self, scope: Scope, v: Var, src: str) -> str:
        """``src`` combined with v into a value of v's shape and dtype."""
        if self.probe(src, scope) == (v.shape, v.dtype):
            return src
        floats = [f"{v.name} * 0.5 + ({src})", f"np.maximum({v.name}, {src})"]
        if v.dtype == "float32":
            floats = [f"({c}).astype(np.float32)" for c in floats]
        combos = {
            "float64": floats,
            "float32": floats,
            "int64": [f"{v.name} + (({src}) > 0)", f"np.maximum({v.name}, np.sum(({src}) > 0))"],
            "bool": [f"{v.name} ^ (({src}) > 0)", f"{v.name} | (({src}) > 1)"],
        }[v.dtype]
        for combo in self.ctx.draw(st.permutations(combos)):
            for candidate in (combo, combo.replace(src, f"np.mean({src})")):
                if self.probe(candidate, scope) == (v.shape, v.dtype):
                    return candidate
        return self.keep_type(v)

    def s_buffer(self, scope: Scope, depth: int, flow: Flow) -> None:
        """A buffer this function owns, then a write into it."""
        v = self.pick_var(scope, lambda v: v.rank >= 1)
        options = [f"np.zeros({self.ctx.shape(1)!r})", f"np.ones({self.ctx.shape(1)!r})"]
        if v is not None:
            options += [f"{v.name}.copy()", f"np.zeros_like({v.name})", f"np.array({v.name})"]
        src = self.ctx.pick(options)
        name = self.fresh("b")
        self.emit(depth, f"{name} = {src}")
        self.bind(scope, name, src, flow, mutable=True)
        self.s_setitem(scope, depth, flow, target=scope[name])

    def s_setitem(self, scope: Scope, depth: int, flow: Flow, target: Var | None = None) -> None:
        """``buf[index] = value`` or ``+=``: basic indices, or a scatter at index variables."""
        v = target or self.pick_var(scope, lambda v: v.mutable and v.rank >= 1)
        if v is None:
            return self.s_buffer(scope, depth, flow)
        i = self.index_for(scope, v.shape[0])
        if i is not None and self.ctx.chance():
            index = i.name if self.ctx.chance() else f"{i.name}, ..."
            self.ctx.features.add("scatter")
        else:
            index = self.basic_index(v.shape)
        region = self.probe(f"{v.name}[{index}]", scope)
        if region is None:
            index, region = "...", (v.shape, v.dtype)
        src = self.expr(scope)[0]
        got = self.probe(src, scope)
        if got is None or _broadcasts(got[0], region[0]) != region[0]:
            src = self.fit(scope, region[0], v.dtype)
        op = "+=" if v.dtype != "bool" and self.ctx.chance(1, 3) else "="
        stmt = f"{v.name}[{index}] {op} {src}"
        if not self.runs(stmt, scope):
            stmt = f"{v.name}[{index}] = {self.fit(scope, region[0], v.dtype)}"
        self.emit(depth, stmt)
        batched = v.batched or flow.batched or self.depends(stmt, scope)
        scope[v.name] = dataclasses.replace(v, batched=batched)

    def condition(self, scope: Scope) -> tuple[str, bool]:
        """A per-example truth value, batched only where the program allows."""
        if self.ctx.allow_batched_control and self.ctx.chance():
            v = self.pick_var(scope, lambda v: v.batched)
            if v is not None:
                self.ctx.used_batched_control = True
                return self.batched_condition(v), True
        options = [
            f"{v.name}.shape[{k}] > {self.ctx.draw(st.integers(1, 3))}"
            for v in scope.values()
            for k in range(v.rank)
        ]
        for v in scope.values():
            if v.batched:
                continue
            if v.count:
                options.append(f"{v.name} > 1")
            elif v.name.startswith("flag"):
                options.append(v.name)
            elif v.name.startswith("t") and v.dtype == "int64" and not v.rank:
                options.append(f"{v.name} % 2 == 0")
            else:
                options.append(f"np.sum({v.name}) > 0.5")
        return (self.ctx.pick(options) if options else "True"), False

    def batched_condition(self, v: Var) -> str:
        c = self.ctx.pick(["0.5", "0.0", "-0.25", "1.0"])
        options = [
            f"np.sum({v.name}) > {c}",
            f"np.max({v.name}) < {c}",
            f"np.any({v.name} > {c})",
            f"np.mean({v.name}) >= {c} and np.min({v.name}) < {c}",
            f"not np.all({v.name} > {c})",
        ]
        if v.rank == 0:
            options.append(v.name if v.dtype == "bool" else f"{v.name} > {c}")
        if "lanes" in self.ctx.new and self.ctx.chance(1, 3):
            # Batched, yet no lane (or every lane) takes it.
            self.ctx.features.add("no-or-every-lane")
            return self.ctx.pick(
                [f"np.sum(np.abs({v.name})) > 1e9", f"np.sum(np.abs({v.name})) < 1e9"]
            )
        return self.ctx.pick(options)

    def nested(self, scope: Scope, depth: int, flow: Flow, loop_vars: Scope | None = None) -> Scope:
        """Statements one level in, on a copy of the scope; returns the copy."""
        inner = {**scope, **(loop_vars or {})}
        self.block(inner, depth + 1, self.ctx.draw(st.integers(1, 3)), flow)
        return inner

    @staticmethod
    def merge(scope: Scope, inner: Scope, batched: bool) -> None:
        """Names bound first inside a block are dropped (unbound on some path); the rest
        keep their shape and dtype, and become batched if the block made them so or
        ran under a batched condition."""
        for name, v in scope.items():
            w = inner[name]
            changed = w != v
            scope[name] = dataclasses.replace(
                v,
                batched=v.batched or w.batched or (batched and changed),
                mutable=v.mutable and w.mutable,
                py=v.py or w.py,
            )

    def s_if(self, scope: Scope, depth: int, flow: Flow) -> None:
        cond, batched = self.condition(scope)
        self.ctx.features.add("if-batched" if batched else "if")
        self.emit(depth, f"if {cond}:")
        inner = dataclasses.replace(flow, batched=flow.batched or batched)
        first = self.nested(scope, depth, inner)
        self.merge(scope, first, inner.batched)
        if self.ctx.chance():
            self.emit(depth, "else:")
            second = self.nested(scope, depth, inner)
            if "both-paths" in self.ctx.new:
                self.bound_on_both(scope, first, second, depth + 1, inner)
            self.merge(scope, second, inner.batched)

    def s_both_paths(self, scope: Scope, depth: int, flow: Flow) -> None:
        """An if/else that binds a new name on both paths, the first path holding a loop;
        the name is readable after it."""
        if depth >= self.max_depth:
            return self.s_assign(scope, depth, flow)
        cond, batched = self.condition(scope)
        inner = dataclasses.replace(flow, batched=flow.batched or batched)
        name = self.fresh()
        self.emit(depth, f"if {cond}:")
        first = dict(scope)
        self.s_for(first, depth + 1, inner)
        src = self.expr(first)[0]
        self.emit(depth + 1, f"{name} = {src}")
        shape, dtype, _ = self.probe_full(src, first)
        self.merge(scope, first, inner.batched)
        self.emit(depth, "else:")
        second = self.nested(scope, depth, inner)
        other = self.fit(second, shape, dtype)
        self.emit(depth + 1, f"{name} = {other}")
        self.merge(scope, second, inner.batched)
        batched = inner.batched or self.depends(src, first) or self.depends(other, second)
        scope[name] = Var(name, shape, dtype, batched)
        self.ctx.features.add("bound-on-both-paths-loop")

    def bound_on_both(
        self, scope: Scope, first: Scope, second: Scope, depth: int, flow: Flow
    ) -> None:
        """A name the `if` branch bound first, bound in the `else` branch too (at its
        end): bound on every path, so readable after the statement."""
        new = [v for n, v in first.items() if n not in scope and n not in second and n[0] != "t"]
        if not new:
            return
        v = self.ctx.pick(new)
        src = self.fit(second, v.shape, v.dtype)
        self.emit(depth, f"{v.name} = {src}")
        batched = flow.batched or v.batched or self.depends(src, second)
        scope[v.name] = Var(v.name, v.shape, v.dtype, batched, mutable=v.mutable and _fresh(src))
        second[v.name] = scope[v.name]
        self.ctx.features.add("bound-on-both-paths")

    def s_if_return(self, scope: Scope, depth: int, flow: Flow) -> None:
        cond, batched = self.condition(scope)
        self.ctx.features.add("return-batched" if batched else "return")
        self.emit(depth, f"if {cond}:")
        stmt = self.return_stmt(scope)
        self.emit(depth + 1, stmt)
        self.batched_return |= batched or flow.batched or flow.in_loop or self.depends(stmt, scope)

    def s_break(self, scope: Scope, depth: int, flow: Flow) -> None:
        cond, batched = self.condition(scope)
        word = self.ctx.pick(["break", "continue"])
        self.ctx.features.add(f"{word}-batched" if batched else word)
        self.emit(depth, f"if {cond}:")
        self.emit(depth + 1, word)

    def s_for(self, scope: Scope, depth: int, flow: Flow) -> None:
        t = self.fresh("t")
        rows = self.pick_var(scope, lambda v: v.rank >= 1)
        counts = [v for v in scope.values() if v.count]
        form = self.ctx.draw(st.integers(0, 3))
        batched = False
        if form == 1 and rows is not None:
            self.emit(depth, f"for {t} in {rows.name}:")
            var = Var(t, rows.shape[1:], rows.dtype, True)
        elif form == 2 and counts:
            n = self.ctx.pick(counts)
            batched = n.batched
            self.emit(depth, f"for {t} in range({n.name}):")
            var = Var(t, (), "int64", True, count=True)
        elif form == 3 and rows is not None:
            k = self.ctx.draw(st.integers(0, rows.rank - 1))
            self.emit(depth, f"for {t} in range({rows.name}.shape[{k}]):")
            var = Var(t, (), "int64", flow.batched, bound=rows.shape[k], py=True)
        else:
            k = self.ctx.draw(st.integers(1, 3))
            self.emit(depth, f"for {t} in range({k}):")
            var = Var(t, (), "int64", flow.batched, bound=k, py=True)
        self.ctx.features.add("for-batched" if batched else "for")
        self.loop_body(
            scope, depth, dataclasses.replace(flow, batched=flow.batched or batched), var
        )
        if "loop-vars" not in self.ctx.new:
            return
        if self.ctx.chance(1, 3):
            self.emit(depth, "else:")
            inner = dataclasses.replace(flow, batched=True)  # no break in some lanes only
            self.merge(scope, self.nested(scope, depth, inner), True)
            self.ctx.features.add("for-else")
        if form != 2 and self.ctx.chance():
            # The loop runs at least once: its variable is bound after it, per lane the
            # value of the lane's last iteration.
            name = self.fresh()
            src = f"{t} * 1.0" if var.dtype != "bool" else f"~{t}"
            shape, dtype, py = self.probe_full(src, {**scope, t: var})
            self.emit(depth, f"{name} = {src}")
            scope[name] = Var(name, shape, dtype, True, py=py)
            self.ctx.features.add("loop-var-after")

    def s_while(self, scope: Scope, depth: int, flow: Flow) -> None:
        t = self.fresh("t")
        k = self.ctx.draw(st.integers(1, 3))
        self.emit(depth, f"{t} = 0")
        cond, batched = self.condition(scope) if self.ctx.chance(1, 3) else (None, False)
        self.ctx.features.add("while-batched" if batched else "while")
        self.emit(depth, f"while {t} < {k}:" if cond is None else f"while {t} < {k} and {cond}:")
        # The counter first, so that `continue` cannot skip it.
        self.emit(depth + 1, f"{t} = {t} + 1")
        var = Var(t, (), "int64", flow.batched or batched, py=True)
        self.loop_body(
            scope, depth, dataclasses.replace(flow, batched=flow.batched or batched), var
        )

    def loop_body(self, scope: Scope, depth: int, flow: Flow, var: Var) -> None:
        inner = self.nested(scope, depth, dataclasses.replace(flow, in_loop=True), {var.name: var})
        self.merge(scope, inner, flow.batched)
        # A later iteration sees values an earlier one made batched, and a batched
        # `break` retires lanes at different iterations: what the loop changed is
        # treated as batched (an over-approximation, as everywhere here).
        for name, v in scope.items():
            if inner[name] != v:
                scope[name] = dataclasses.replace(scope[name], batched=True)

    def return_stmt(self, scope: Scope) -> str:
        if self.signature is None:
            count = self.ctx.draw(st.integers(1, 2)) if self.name == "f" else 1
            names = list(scope)
            recent = names[-4:] if self.ctx.chance() else names
            chosen = [scope[self.ctx.pick(recent)] for _ in range(count)]
            self.signature = [(v.shape, v.dtype) for v in chosen]
            self.single = count == 1 and (self.name != "f" or self.ctx.chance(3, 4))
            values = [v.name for v in chosen]
        else:
            values = [self.fit(scope, shape, dtype) for shape, dtype in self.signature]
        if self.single:
            return f"return {values[0]}"
        return "return " + ", ".join(values) + ("," if len(values) == 1 else "")

    def body(self, scope: Scope, count: int) -> str:
        self.block(scope, 0, count, Flow())
        self.lines.append("    " + self.return_stmt(scope))
        return "\n".join(self.lines)


# ------------------------------------------------------------------ strategy
def _arguments(ctx: _Context) -> tuple[list[Arg], Scope]:
    args: list[Arg] = []
    extra = [k for k, form in (("float32", "float32"), ("pair", "pytree")) if form in ctx.new]
    kinds = ["float"] + [
        ctx.pick(["float", "float", "index", "count", "flag", "scalar", "int", *extra])
        for _ in range(ctx.draw(st.integers(0, 3)))
    ]
    counter: dict[str, int] = {}
    for kind in kinds:
        prefix = {
            "float32": "y",
            "pair": "p",
            "float": "x",
            "int": "k",
            "index": "i",
            "count": "n",
            "flag": "flag",
            "scalar": "s",
        }[kind]
        name = f"{prefix}{counter.setdefault(prefix, 0)}"
        counter[prefix] += 1
        if kind == "pair":
            args.append(_pair(ctx, name))
            continue
        if kind == "float32":
            ctx.features.add("float32")
        if kind in ("float", "int", "float32"):
            shape = ctx.shape()
        elif kind == "index":
            shape = () if ctx.chance(2, 3) else (ctx.pick(list(ctx.dims)),)
        else:
            shape = ()
        bound = ctx.pick(list(ctx.dims)) if kind == "index" else 0
        mapped = ctx.chance(3, 4) if kind not in ("count", "flag") else ctx.chance(1, 6)
        axis = ctx.draw(st.integers(-len(shape) - 1, len(shape))) if mapped else None
        args.append(Arg(name, kind, shape, axis, bound))
    if all(a.axis is None for a in args):
        args[0] = dataclasses.replace(args[0], axis=0)
    scope: Scope = {}
    for a in args:
        if a.kind == "pair":
            continue  # its leaves enter the scope when f unpacks it (_unpack_pairs)
        dtype = {"float": "float64", "scalar": "float64", "flag": "bool", "float32": "float32"}.get(
            a.kind, "int64"
        )
        scope[a.name] = Var(
            a.name,
            a.shape,
            dtype,
            a.axis is not None,
            bound=a.bound if a.kind == "index" else None,
            count=a.kind == "count",
        )
    return args, scope


def _pair(ctx: _Context, name: str) -> Arg:
    """A pytree argument: a tuple of two float arrays, each leaf with its own (often
    negative) in_axes entry, or None for the whole pair."""
    shapes = (ctx.shape(), ctx.shape())
    if ctx.chance(1, 5):
        axes = None
    else:
        axes = tuple(ctx.draw(st.integers(-len(sh) - 1, len(sh))) for sh in shapes)
    return Arg(name, "pair", shapes[0], axes, shape2=shapes[1])


def _unpack_pairs(fn: _Function, args: list[Arg], scope: Scope) -> None:
    """f's first lines: the leaves of each pair argument, as variables."""
    for a in args:
        if a.kind != "pair":
            continue
        for k, shape in enumerate((a.shape, a.shape2)):
            leaf = f"{a.name}_{k}"
            fn.emit(0, f"{leaf} = {a.name}[{k}]")
            batched = a.axis is not None and a.axis[k] is not None
            scope[leaf] = Var(leaf, shape, "float64", batched, py=not batched and not shape)
        fn.ctx.features.add("pytree-negative-axes" if a.axis and min(a.axis) < 0 else "pytree")


def _helper(ctx: _Context, index: int) -> str:
    name = f"h{index}"
    params = tuple(ctx.shape(0, 2) for _ in range(ctx.draw(st.integers(1, 2))))
    fn = _Function(ctx, name, max_depth=1)
    scope = {f"p{k}": Var(f"p{k}", s, "float64", True) for k, s in enumerate(params)}
    signature = ", ".join(scope)
    default = ""
    if "defaults" in ctx.new and ctx.chance():
        default, signature = "s", signature + _default_param(ctx, fn)
        # Callers may pass a batched value, or leave the default.
        scope["s"] = Var("s", (), "float64", True, py=True)
    body = fn.body(scope, ctx.draw(st.integers(1, 3)))
    if "one-line" in ctx.new:
        body = "\n".join(_one_line(fn.lines, ctx, top=f"def {name}({signature}):"))
        source = body + "\n"
    else:
        source = f"def {name}({signature}):\n{body}\n"
    if "decorators" in ctx.new and ctx.chance(1, 3):
        source = "@_forward\n" + source  # a functools.wraps wrapper forwarding *args/**kwargs
        ctx.features.add("decorated-helper")
    exec(compile(source, f"<progen {name}>", "exec"), ctx.env)  # noqa: S102 - so probes can call it
    ctx.helpers.append((name, params, default))
    return source


def _default_param(ctx: _Context, fn: _Function) -> str:
    """The text of a parameter ``s`` with a default, appended to a helper's signature:
    a number, keyword-only, or None replaced in the body's first lines."""
    form = ctx.draw(st.integers(0, 2))
    ctx.features.add(("default", "default-kwonly", "default-none")[form])
    if form == 0:
        return f", s={ctx.pick(CONSTANTS[:5])}"
    if form == 1:
        return f", *, s={ctx.pick(CONSTANTS[:5])}"
    fn.emit(0, "if s is None:")
    fn.emit(1, "s = 1.5")
    return ", s=None"


def _simple(line: str) -> bool:
    """A whole simple statement on this line (no block header, no continued line)."""
    text = line.strip()
    return bool(text) and not text.endswith((":", "(", ",")) and not text.startswith((")", '"'))


def _one_line(lines: list[str], ctx: _Context, top: str = "") -> list[str]:
    """Some simple statements joined by `;`, and some blocks of simple statements written
    on their header's line (``if c: v = 1``, ``def h(p): v = p; return v``). ``top``: a
    def line to put in front of the (indented) lines first."""
    lines = [top, *lines] if top else list(lines)
    joined: list[str] = []
    for line in lines:
        prev = joined[-1] if joined else ""
        if (
            joined
            and _simple(line)
            and _simple(prev)
            and _indent(prev) == _indent(line)
            and not prev.strip().startswith("return")
            and ctx.chance(1, 8)
        ):
            joined[-1] = f"{prev}; {line.strip()}"
            ctx.features.add("semicolons")
            continue
        joined.append(line)
    out: list[str] = []
    k = 0
    while k < len(joined):
        line = joined[k]
        end = k + 1
        while end < len(joined) and _indent(joined[end]) > _indent(line):
            end += 1
        block = joined[k + 1 : end]
        if (
            line.rstrip().endswith(":")
            and 1 <= len(block) <= 3
            and all(_indent(b) == _indent(line) + 4 and _simple(b) for b in block)
            and ctx.chance(1, 3)
        ):
            out.append(line.rstrip() + " " + "; ".join(b.strip() for b in block))
            ctx.features.add("one-line-suite")
            k = end
            continue
        out.append(line)
        k += 1
    return out


def _out_axes(
    ctx: _Context, fn: _Function, outputs: list[tuple[tuple[int, ...], str]], unbatched: list[bool]
) -> Any:
    axes = []
    for (shape, _), free in zip(outputs, unbatched):
        if free and ctx.chance(1, 3):
            axes.append(None)
        else:
            axes.append(ctx.draw(st.integers(-len(shape) - 1, len(shape))))
    if fn.single:
        return axes[0]
    if len(set(axes)) == 1 and ctx.chance():
        return axes[0]
    return tuple(axes)


@st.composite
def programs(
    draw: Callable,
    max_statements: int = 6,
    max_helpers: int = 2,
    new: frozenset[str] | None = None,
) -> Program:
    """A random program: helpers, then ``f`` over random arguments, with in/out axes.

    ``new``: the issue-11 forms to draw too (default: NEW_FORMS, from ASTVMAP_PROGEN_NEW).
    """
    new = NEW_FORMS if new is None else new
    dims = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    batched_control = draw(st.integers(0, 3)) == 3 or "control" in new
    ctx = _Context(draw, dims, batched_control=batched_control, new=new)
    helpers = [_helper(ctx, k) for k in range(draw(st.integers(0, max_helpers)))]
    args, scope = _arguments(ctx)
    fn = _Function(ctx, "f", max_depth=2)
    _unpack_pairs(fn, args, scope)
    body = fn.body(scope, draw(st.integers(1, max_statements)))
    final = fn.lines[-1].strip()
    head = f"def f({', '.join(a.name for a in args)}):\n"
    if "one-line" in new:
        body = "\n".join(_one_line(fn.lines, ctx, top=head.rstrip()))
        head = ""
    # (not with a pytree argument: the wrapper's np.asarray would stack its leaves)
    pairs = any(a.kind == "pair" for a in args)
    if "decorators" in new and not pairs and ctx.chance(1, 4):
        head = "@_forward\n" + head
        ctx.features.add("decorated-f")
    prelude = ["import numpy as np\n", *_prelude(new)]
    source = "\n\n".join([*prelude, *helpers, f"{head}{body}\n"])
    # An output can be returned once (out_axes None) only if nothing batched reaches it.
    names = [n.strip() for n in final[len("return ") :].split(",") if n.strip()]
    clean = not ctx.used_batched_control and not fn.batched_return
    unbatched = [clean and n in scope and not scope[n].batched for n in names]
    out_axes = _out_axes(ctx, fn, fn.signature, unbatched)
    features = set(ctx.features)
    features.add("mapped:" + ",".join("1" if a.axis is not None else "0" for a in args))
    return Program(source, tuple(args), out_axes, frozenset(features))


# ------------------------------------------------------------------ running
def load(program: Program, directory: Path) -> Callable:
    """Write the program to a real module file and import it; return its ``f``."""
    name = f"progen_{program.digest}"
    path = Path(directory) / f"{name}.py"
    if not path.exists():
        path.write_text(program.source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def run(program: Program, batch: int, seed: int, directory: Path) -> str:
    """Compare vmap with the loop on one program.

    Returns "match", "fallback" (matched, through the declared per-example loop),
    "unsupported" (UnsupportedError) or "loop-error" (the program itself fails on
    these inputs, or writes into them: no verdict). Raises AssertionError, or
    whatever vmap raised, on a bug.
    """
    f = load(program, directory)
    args = program.arguments(batch, seed)
    before = copy.deepcopy(args)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_limit(TIME_LIMIT, "the loop"):
                want = loop(_untouching(f), copy.deepcopy(args), program.in_axes, program.out_axes)
        except Exception:
            return "loop-error"
    with np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(TIME_LIMIT, "vmap"):
                got = vmap(f, in_axes=program.in_axes, out_axes=program.out_axes)(*args)
        except UnsupportedError:
            _assert_unmodified(program, args, before)
            return "unsupported"
    _assert_unmodified(program, args, before)
    assert_same(got, want, rtol=1e-7, atol=1e-9)
    if any(issubclass(w.category, PerformanceWarning) for w in caught):
        return "fallback"
    return "match"


def _untouching(f: Callable) -> Callable:
    """f, raising if it writes into its arguments.

    Such a function is outside the contract (the loop's examples would see each
    other's writes). The generator never writes one; deleting lines while
    minimising can (an in-place update whose fresh binding was deleted).
    """

    def call(*example: Any) -> Any:
        before = copy.deepcopy(example)
        out = f(*example)
        for now, then in zip(example, before):
            if isinstance(then, np.ndarray):
                np.testing.assert_array_equal(now, then, err_msg="the program writes its input")
        return out

    return call


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError after ``seconds``: every generated loop ends within a few
    iterations, so a call that runs this long is stuck (a batched loop whose lanes
    never retire). Only on the main thread, where signals are delivered."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} did not finish in {seconds} s: an endless loop?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _assert_unmodified(program: Program, args: tuple, before: tuple) -> None:
    for a, now, then in zip(program.args, args, before):
        if isinstance(then, np.ndarray):
            np.testing.assert_array_equal(now, then, err_msg=f"vmap modified the argument {a.name}")


# ------------------------------------------------------------------ minimising
def signature(exc: BaseException) -> str:
    """What kind of bug: the exception type and its message's first line, digits blanked
    (shapes and names change while a program is minimised; the kind does not)."""
    if isinstance(exc, TransformBug):  # its first line names the program's file: use the cause
        where = exc.frame.split(":")[0] + " in " + exc.frame.split(" in ")[-1]
        return f"TransformBug: {type(exc.__cause__).__name__} at {where}"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+', '#', first)[:60]}"


def failure(program: Program, batch: int, seed: int, directory: Path) -> str | None:
    """The signature of the bug this program shows, or None if it shows none."""
    try:
        compile(program.source, "<progen>", "exec")
        run(program, batch, seed, directory)
    except Exception as exc:
        return signature(exc)
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


_CLAUSES = ("else:", "else ", "elif ", "except", "finally:")


def _statements(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line ranges of every statement inside a def, with its nested block
    (and an `if`'s `else:` block), and of every helper def."""
    out = []
    for k, line in enumerate(lines):
        stripped = line.strip()
        if line.startswith("def h"):
            end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("def "))
            out.append((k, end))
            continue
        if not line.startswith("    ") or not stripped or stripped.startswith(_CLAUSES):
            continue
        end = k + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(line)):
            end += 1
        # An `if`'s `else:`, a `for`'s, a `try`'s `except`/`finally:` (maybe one-line)
        while (
            end < len(lines)
            and lines[end].strip().startswith(_CLAUSES)
            and _indent(lines[end]) == _indent(line)
        ):
            end += 1
            while end < len(lines) and (
                not lines[end].strip() or _indent(lines[end]) > _indent(line)
            ):
                end += 1
        while not lines[end - 1].strip():
            end -= 1  # the blank lines between defs stay
        out.append((k, end))
    return out


def _without(lines: list[str], start: int, end: int) -> list[str] | None:
    """The lines with [start, end) deleted (`pass` where a block would be empty), or
    None for f's final return."""
    if start == len(lines) - 1:
        return None
    indent = lines[start][: _indent(lines[start])]
    trial = lines[:start] + lines[end:]
    before = trial[start - 1].rstrip() if start else ""
    after = trial[start] if start < len(trial) else ""
    if before.endswith(":") and not after.startswith(indent):
        if lines[start].strip() == "pass":
            return None
        trial = lines[:start] + [indent + "pass"] + lines[end:]
    return trial


def minimize(
    program: Program, batch: int, seed: int, directory: Path, budget: float = 60.0
) -> Program:
    """Delete statements (with their blocks) while the same bug still shows.

    Line-level delta debugging on the text, within ``budget`` seconds. Deleting a
    block's last statement leaves `pass`, so the text stays valid.
    """
    want = failure(program, batch, seed, directory)
    if want is None:
        return program
    lines = program.source.splitlines()
    deadline = time.monotonic() + budget
    tried: set[tuple[str, ...]] = set()  # text that had to stay, in this version
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        # Largest blocks first: one success removes the most text.
        for start, end in sorted(_statements(lines), key=lambda r: r[0] - r[1]):
            trial = _without(lines, start, end)
            key = tuple(lines[start:end])
            if trial is None or key in tried or time.monotonic() > deadline:
                continue
            candidate = dataclasses.replace(program, source="\n".join(trial) + "\n")
            if failure(candidate, batch, seed, directory) == want:
                lines, progress = trial, True
                tried.clear()
                break
            tried.add(key)
    return dataclasses.replace(program, source="\n".join(lines) + "\n")
