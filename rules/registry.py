"""The rule registry: the tables rules fill, ``CallSite``/``Arg``, and the dtype bookkeeping.

Family modules import this module and register into it; ``rules/__init__`` only
gathers the families. Keeping the registry apart keeps the package free of import
cycles (a family never imports the package that imports it).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Protocol

import libcst as cst
import numpy as np

from astvmap.values import NOVALUE, Val

Out = tuple[cst.BaseExpression, Val]
Rule = Callable[["CallSite"], Out]

RULES: dict[Any, Rule] = {}
METHODS: dict[str, Rule] = {}
# Where each rule is documented: family -> the display names of its targets, for the README.
CATALOGUE: dict[str, list[str]] = {}
# What a rule covers beyond the plain call, by display name (``astvmap rules`` prints it).
NOTES: dict[str, str] = {}


def register(
    *targets: Any,
    methods: tuple[str, ...] = (),
    family: str | None = None,
    note: str | None = None,
) -> Callable:
    """Register ``rule`` for each runtime callable in ``targets`` and array method name."""

    def deco(rule: Rule) -> Rule:
        fam = family or rule.__module__.rsplit(".", 1)[-1]
        for target in targets:
            RULES[target] = rule
            catalogue(fam, display_name(target), note)
        for name in methods:
            METHODS[name] = rule
            catalogue(fam, f"ndarray.{name}", note)
        return rule

    return deco


def catalogue(family: str, name: str, note: str | None = None) -> None:
    """List ``name`` in the table of supported functions (under ``family``)."""
    CATALOGUE.setdefault(family, []).append(name)
    if note:
        NOTES[name] = note


def display_name(obj: Any) -> str:
    """How the README names a rule's target: ``np.sum``, ``np.linalg.inv``, ``math.sqrt``."""
    name = getattr(obj, "__name__", repr(obj))
    if isinstance(obj, np.ufunc):
        return f"np.{name}"
    if isinstance(obj, type) and issubclass(obj, np.generic):
        return f"np.{name}"  # a scalar type: np.float64(x)
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("numpy.linalg"):
        return f"np.linalg.{name}"
    if module.startswith("numpy.fft"):
        return f"np.fft.{name}"
    if module.startswith("numpy"):
        return f"np.{name}"
    if module in ("math", "builtins") or module == "":
        return f"math.{name}" if module == "math" else name
    return f"{module}.{name}"


class Context(Protocol):
    """What the translator offers rules (see ``astvmap.rewrite.Translator``)."""

    np: str

    def parse(self, template: str, **subs: cst.BaseExpression) -> cst.BaseExpression: ...
    def expand(self, code: cst.BaseExpression, count: int) -> cst.BaseExpression: ...
    def batch_size(self) -> cst.BaseExpression: ...
    def broadcast(self, code: cst.BaseExpression, val: Val) -> cst.BaseExpression: ...
    def unsupported(self, message: str, hint: str | None = None) -> Exception: ...
    def refuse(self, message: str, hint: str | None = None) -> Exception: ...


@dataclasses.dataclass
class Arg:
    code: cst.BaseExpression
    val: Val

    @property
    def batched(self) -> bool:
        return self.val.batched

    @property
    def rank(self) -> int | None:
        return self.val.rank

    @property
    def static(self) -> Any:
        return self.val.static


@dataclasses.dataclass
class CallSite:
    """One call being batched: its callee and its translated arguments."""

    ctx: Context
    func: cst.BaseExpression  # the callee as written (for methods: ``receiver.name``)
    callee: Any  # the runtime callable, or the method name
    args: list[Arg]  # positional; for a method call the receiver comes first
    kwargs: dict[str, Arg]
    method: str | None = None

    @property
    def any_batched(self) -> bool:
        return any(a.batched for a in self.args) or any(a.batched for a in self.kwargs.values())

    def bind(self, signature_of: Any) -> Binding:
        return Binding(self, signature_of)

    def render(
        self,
        args: list[cst.BaseExpression] | None = None,
        kwargs: dict[str, cst.BaseExpression] | None = None,
    ) -> cst.BaseExpression:
        """The call with (possibly rewritten) arguments, in the user's form."""
        args = [a.code for a in self.args] if args is None else args
        kwargs = {k: a.code for k, a in self.kwargs.items()} if kwargs is None else kwargs
        cst_args = [cst.Arg(value=a) for a in (args[1:] if self.method else args)]
        cst_args += [cst.Arg(value=v, keyword=cst.Name(k)) for k, v in kwargs.items()]
        if self.method:
            func = cst.Attribute(value=args[0], attr=cst.Name(self.method))
        else:
            func = self.func
        return cst.Call(func=func, args=cst_args)

    def keep(self, val: Val) -> Out:
        """The call unchanged (no argument is batched)."""
        return self.render(), val

    def unsupported(self, message: str, hint: str | None = None) -> Exception:
        """A form this rule does not cover: vmap runs the function per example."""
        return self.ctx.unsupported(message, hint)

    def refuse(self, message: str, hint: str | None = None) -> Exception:
        """A call the loop itself fails on in every example: refused, not run per example."""
        return self.ctx.refuse(message, hint)


class Binding:
    """A call's arguments bound to the parameter names of a NumPy signature.

    Keeps the user's positional/keyword layout, so that rewriting ``axis`` edits
    the argument where the user wrote it.
    """

    def __init__(self, site: CallSite, signature_of: Any) -> None:
        self.site = site
        sig = (
            signature_of
            if isinstance(signature_of, inspect.Signature)
            else inspect.signature(signature_of)
        )
        params = list(sig.parameters.values())
        self.args = list(site.args)
        self.codes: list[cst.BaseExpression] = [a.code for a in site.args]
        self.kwcodes: dict[str, cst.BaseExpression] = {k: a.code for k, a in site.kwargs.items()}
        self.where: dict[str, int | str] = {}
        self.extra: list[Arg] = []  # *args beyond the named parameters
        positional = [
            p
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        for i, arg in enumerate(site.args):
            if i < len(positional) and positional[i].kind != positional[i].VAR_POSITIONAL:
                self.where[positional[i].name] = i
            else:
                self.extra.append(arg)
        for name in site.kwargs:
            self.where[name] = name
        self.defaults = {
            p.name: p.default
            for p in params
            if p.default is not inspect.Parameter.empty and not _is_no_value(p.default)
        }

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def get(self, name: str) -> Arg | None:
        place = self.where.get(name)
        if place is None:
            return None
        return self.site.args[place] if isinstance(place, int) else self.site.kwargs[place]

    def value(self, name: str, default: Any = NOVALUE) -> Any:
        """The static value of a parameter (its default when not passed)."""
        arg = self.get(name)
        if arg is None:
            return self.defaults.get(name, default)
        if arg.val.static is NOVALUE:
            raise self.site.unsupported(
                f"the {name!r} argument must be known when transforming (a literal or a "
                "constant), since the batched code depends on it",
                f"write {name}=<literal>",
            )
        return arg.val.static

    def set(self, name: str, code: cst.BaseExpression) -> None:
        place = self.where.get(name)
        if isinstance(place, int):
            self.codes[place] = code
        else:
            self.kwcodes[name] = code
            self.where[name] = name

    def render(self) -> cst.BaseExpression:
        return self.site.render(self.codes, self.kwcodes)


def _is_no_value(obj: Any) -> bool:
    return type(obj).__name__ == "_NoValueType"


FAMILY_TITLES = {
    "elementwise": "Elementwise (every ufunc, operators, math.*)",
    "reductions": "Reductions",
    "axis_ops": "Axis operations and joining",
    "shape_ops": "Shape operations",
    "creation": "Array creation",
    "dtypes": "Dtype and shape queries (the same for every example)",
    "linalg": "Linear algebra",
    "fft": "Discrete Fourier transforms (np.fft)",
    "signal": "Signals, polynomials, searching and histograms",
    "ufunc_methods": "Ufunc methods (every binary ufunc, e.g. np.add.at)",
    "scipy_": "SciPy (when installed; never imported by astvmap itself)",
    "builtins_": "Python builtins",
    "random": "Random draws (randomness=)",
    "collectives": "Collectives (axis_name=)",
}


def entries() -> list[dict[str, str]]:
    """Every supported function once: its name, family and notes, sorted by family then name."""
    out = []
    seen: set[str] = set()
    for family in [*FAMILY_TITLES, *sorted(set(CATALOGUE) - set(FAMILY_TITLES))]:
        for name in sorted(set(CATALOGUE.get(family, [])) - seen):
            seen.add(name)
            out.append({"function": name, "family": family, "notes": NOTES.get(name, "")})
    return out


def table() -> str:
    """The README's table of supported functions, generated from the registry."""
    lines = ["| family | count | functions |", "|---|---|---|"]
    rows = entries()
    for family in dict.fromkeys(r["family"] for r in rows):
        names = [r["function"] for r in rows if r["family"] == family]
        title = FAMILY_TITLES.get(family, family)
        lines.append(f"| {title} | {len(names)} | {', '.join(f'`{n}`' for n in names)} |")
    lines.append(f"| **total** | **{len(rows)}** | |")
    return "\n".join(lines) + "\n"


# Functions whose result has the dtype of their first argument (the array).
KEEPS_DTYPE: set[Any] = set()
METHODS_KEEPING_DTYPE = {
    "reshape",
    "ravel",
    "flatten",
    "transpose",
    "swapaxes",
    "squeeze",
    "copy",
    "repeat",
    "take",
    "clip",
    "round",
    "cumsum",
    "cumprod",
    "diagonal",
    "max",
    "min",
    "item",
}
# Functions whose result is an integer index (argmax, argsort, ...).
INTEGER_RESULT: set[Any] = set()
METHODS_INTEGER = {"argmax", "argmin", "argsort"}
# Functions whose result is float64 unless a dtype is given.
FLOAT_RESULT: set[Any] = set()
# Creation functions that take a dtype positionally too (np.zeros(3, int)).
DTYPE_PARAMETER: set[Any] = set()


def with_dtype(site: CallSite, out: Out) -> Out:
    """Fill in the result's dtype kind where the rule left it unknown."""
    code, val = out
    if val.dtype is not None or val.kind not in ("array", "scalar"):
        return out
    target = site.method or site.callee
    dtype = _dtype_argument(site)
    if dtype is not None:
        # An explicit dtype decides (np.zeros_like(x, dtype=int) is not x's).
        return code, dataclasses.replace(val, dtype=_static_kind(dtype))
    try:
        integer = target in INTEGER_RESULT or target in METHODS_INTEGER
        keeps = target in KEEPS_DTYPE or target in METHODS_KEEPING_DTYPE
        floating = target in FLOAT_RESULT
    except TypeError:
        return out
    if floating:
        # Known dtypes keep `b[i] += v` in place (Translator.aug_assign).
        return code, dataclasses.replace(val, dtype="f")
    if integer:
        return code, dataclasses.replace(val, dtype="i")
    if keeps and site.args:
        return code, dataclasses.replace(val, dtype=site.args[0].val.dtype)
    if site.method == "astype" and len(site.args) > 1 and site.args[1].val.is_static:
        try:
            return code, dataclasses.replace(val, dtype=np.dtype(site.args[1].val.static).kind)
        except TypeError:
            return out
    return out


def _dtype_argument(site: CallSite) -> Arg | None:
    """The ``dtype`` argument of a call, by keyword (or, for creation functions, by
    position); None where it is absent or ``None`` (the function's default)."""
    if "dtype" in site.kwargs:
        arg: Arg | None = site.kwargs["dtype"]
    elif site.method is None and site.callee in DTYPE_PARAMETER:
        arg = site.bind(site.callee).get("dtype")
    else:
        return None
    return None if arg is None or arg.val.static is None else arg


def _static_kind(dtype: Arg) -> str | None:
    if dtype.val.static is NOVALUE:
        return None
    try:
        return np.dtype(dtype.val.static).kind
    except TypeError:
        return None


def first_param(fn: Any) -> str:
    return next(iter(inspect.signature(fn).parameters))


def maybe(compute: Callable[[], Any]) -> Any:
    """``compute()``, or None when it cannot be known (used for unbatched ranks only)."""
    try:
        return compute()
    except Exception:  # noqa: BLE001 - an unknown rank is fine for unbatched values
        return None


def literal(value: Any) -> cst.BaseExpression:
    """A libcst node for a Python literal (int, tuple of ints, None, bool, str)."""
    return cst.parse_expression(repr(value))


# The rule every ufunc without an entry of its own gets; elementwise.py sets it.
UFUNC_DEFAULT: list[Rule] = []
# Rules for the methods of any ufunc (np.add.at, scipy.special.xlogy.reduce): method name ->
# rule; ufunc_methods.py fills it.
UFUNC_METHODS: dict[str, Rule] = {}
# Families whose targets live in optional packages: module prefix -> installer, run the
# first time a target from that package is looked up (so astvmap never imports it).
LAZY: dict[str, Callable[[], None]] = {}


def lookup(target: Any) -> Rule | None:
    """The rule for a runtime callable (every ufunc has one)."""
    owner = getattr(target, "__self__", None)
    if isinstance(owner, (np.random.Generator, np.random.RandomState)):
        # ``rng.normal`` and ``np.random.normal`` (a method of NumPy's global
        # RandomState) are bound methods: their rule is keyed on the class's method.
        target = getattr(target, "__func__", None) or getattr(type(owner), target.__name__)
    try:
        rule = RULES.get(target)
    except TypeError:  # unhashable
        return None
    if rule is not None:
        return rule
    if isinstance(target, np.ufunc) and UFUNC_DEFAULT:
        return UFUNC_DEFAULT[0]
    owner = getattr(target, "__self__", None)
    if isinstance(owner, np.ufunc):
        return UFUNC_METHODS.get(getattr(target, "__name__", ""))
    module = getattr(target, "__module__", None) or ""
    for prefix in list(LAZY):
        if module.startswith(prefix):
            LAZY.pop(prefix)()
            return lookup(target)
    return None


def no_rule(site: CallSite, message: str, hint: str) -> Exception:
    """A form of the call the rule does not cover: vmap falls back to the per-example loop
    (with a PerformanceWarning), as it did before the function had a rule."""
    return site.unsupported(message, hint)
