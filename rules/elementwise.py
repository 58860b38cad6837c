"""Elementwise rules: every ufunc, the Python operators, np.where/clip, math.*.

Per example the operands broadcast from the right; batched, each operand has the
batch axis first, so a batched operand of lower per-example rank than the result
gets new axes right after the batch axis (``s[:, None] * v``). Unbatched operands
are left as written: they broadcast against the batch from the right.
"""

from __future__ import annotations

import math
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, NONE, OBJECT, SCALAR, TREE, Val, result_kind

from .registry import UFUNC_DEFAULT, Arg, CallSite, Out, register


def rank_of(ctx, arg: Arg) -> int | None:
    """The per-example rank of an operand (``None`` when unknown)."""
    val = arg.val
    if val.kind in (ARRAY, SCALAR):
        return val.rank
    if val.kind == NONE:
        return 0
    if val.kind == TREE and val.static is not None and val.is_static:
        return np.ndim(val.static)
    if val.kind == TREE and not val.batched and val.children:
        ranks = [v.rank for _, v in val.children]
        if all(r == 0 for r in ranks):
            return 1
    return None


def broadcast_val(vals: list[Val]) -> Val:
    ranks = [v.rank for v in vals]
    batched = any(v.batched for v in vals)
    rank = None if any(r is None for r in ranks) else max(ranks, default=0)
    if not batched and all(v.kind == SCALAR for v in vals):
        return Val(SCALAR, rank=0)
    return Val.array(rank, batched)


def align(ctx, args: list[Arg], fn: Any = None) -> tuple[list[cst.BaseExpression], Val]:
    """Codes for ``args`` with batched operands raised to the common rank.

    ``fn`` (the elementwise function) gives the result's dtype kind.
    """
    batched = any(a.batched for a in args)
    ranks = [rank_of(ctx, a) for a in args]
    dtype = result_kind(fn, [a.val.dtype for a in args]) if fn is not None else None
    if not batched:
        known = [r for r in ranks if r is not None]
        rank = max(known) if len(known) == len(ranks) else None
        kinds = {a.val.kind for a in args}
        if kinds <= {SCALAR}:
            return [a.code for a in args], Val(SCALAR, rank=0, dtype=dtype)
        return [a.code for a in args], Val.array(rank, dtype=dtype)
    if any(r is None for r in ranks):
        raise ctx.unsupported(
            "cannot infer the per-example rank of an operand",
            "make its rank visible (for example pass it as an argument, or use np.asarray)",
        )
    rank = max(r for r in ranks if r is not None)
    codes = []
    for a, r in zip(args, ranks):
        if a.batched and r is not None and r < rank:
            codes.append(ctx.expand(a.code, rank - r))
        else:
            codes.append(a.code)
    return codes, Val.array(rank, True, dtype)


def align_binary(
    ctx, a: Arg, b: Arg, fn: Any = None
) -> tuple[tuple[cst.BaseExpression, cst.BaseExpression], Val]:
    (ca, cb), val = align(ctx, [a, b], fn)
    if not a.batched and not b.batched and a.val.kind == SCALAR and b.val.kind == SCALAR:
        return (ca, cb), Val(SCALAR, rank=0, dtype=val.dtype)
    return (ca, cb), val


# ----------------------------------------------------------------- ufuncs
def _core_ranks(signature: str) -> tuple[list[int], list[int]]:
    """Core ranks of a generalised ufunc's inputs and outputs: "(m,n),(n)->(m)"."""
    ins, outs = signature.replace(" ", "").split("->")

    def ranks(part: str) -> list[int]:
        groups = part[1:-1].split("),(")
        return [0 if g == "" else len(g.split(",")) for g in groups]

    return ranks(ins), ranks(outs)


def gufunc_rule(site: CallSite) -> Out:
    """A generalised ufunc (np.matvec, np.vecdot, ...): the operands broadcast over their
    loop axes only, so a batched operand is aligned by its loop rank, not its rank."""
    ufunc: np.ufunc = site.callee
    ins = site.args[: ufunc.nin]
    if len(site.args) > ufunc.nin or len(ins) != ufunc.nin:
        raise site.unsupported(f"{ufunc.__name__} with out= or missing operands")
    core_in, core_out = _core_ranks(ufunc.signature)
    ranks = [rank_of(site.ctx, a) for a in ins]
    loops = [None if r is None else r - c for r, c in zip(ranks, core_in)]
    known = None not in loops
    loop = max(loops) if known else None  # type: ignore[type-var]
    if not site.any_batched:
        val = Val.array(None if loop is None else loop + core_out[0])
        return site.render(), val
    if any(k in site.kwargs for k in ("axes", "axis", "out", "where")):
        raise site.unsupported(f"{ufunc.__name__} with axes=/axis=/out=/where= under vmap")
    if not known or any(x < 0 for x in loops):  # type: ignore[operator]
        raise site.unsupported(f"cannot infer the ranks of {ufunc.__name__}'s operands")
    codes = [
        site.ctx.expand(a.code, loop - lr) if a.batched else a.code  # type: ignore[operator]
        for a, lr in zip(ins, loops)
    ]
    val = Val.array(loop + core_out[0], True)  # type: ignore[operator]
    code = site.render(codes + [a.code for a in site.args[ufunc.nin :]])
    if ufunc.nout > 1:
        return code, Val.tree(tuple, [(i, val) for i in range(ufunc.nout)])
    return code, val


def ufunc_rule(site: CallSite) -> Out:
    ufunc: np.ufunc = site.callee
    if ufunc.signature is not None:
        return gufunc_rule(site)
    ins = site.args[: ufunc.nin]
    if len(site.args) > ufunc.nin:
        raise site.unsupported(f"positional `out` arguments to {ufunc.__name__}", "omit out=")
    where = site.kwargs.get("where")
    out = site.kwargs.get("out")
    if out is not None and site.any_batched:
        raise site.unsupported(
            f"out= in a batched call to {ufunc.__name__}", "assign the result instead"
        )
    operands = ins + ([where] if where is not None else [])
    codes, val = align(site.ctx, operands, ufunc if where is None else None)
    kwargs = {k: a.code for k, a in site.kwargs.items()}
    if where is not None:
        kwargs["where"] = codes[-1]
        codes = codes[:-1]
    code = site.render(codes, kwargs)
    if ufunc.nout > 1:
        kids = [(i, val) for i in range(ufunc.nout)]
        return code, Val.tree(tuple, kids)
    return code, val


for _name, _obj in sorted(vars(np).items()):
    if isinstance(_obj, np.ufunc):
        register(_obj, family="elementwise")(ufunc_rule)


def elementwise_rule(site: CallSite, n_inputs: int | None = None) -> Out:
    """A function elementwise in its positional array arguments (keywords pass through)."""
    ins = site.args if n_inputs is None else site.args[:n_inputs]
    for k, a in site.kwargs.items():
        if a.batched:
            raise site.unsupported(f"a batched {k}= argument")
    codes, val = align(site.ctx, ins)
    return site.render(codes + [a.code for a in site.args[len(ins) :]]), val


@register(np.where)
def where_rule(site: CallSite) -> Out:
    if len(site.args) != 3:
        raise site.unsupported(
            "np.where with one argument returns indices whose number depends on the data",
            "use the three-argument form np.where(condition, x, y)",
        )
    return elementwise_rule(site)


@register(np.clip, methods=("clip",))
def clip_rule(site: CallSite) -> Out:
    names = ["a", "a_min", "a_max", "min", "max"]
    b = site.bind(np.clip)
    present = [n for n in names if n in b]
    args = [b.get(n) for n in present]
    usable = [a for a in args if a is not None and a.val.kind != NONE]
    codes, val = align(site.ctx, usable)
    it = iter(codes)
    for n, a in zip(present, args):
        if a is not None and a.val.kind != NONE:
            b.set(n, next(it))
    return b.render(), val


@register(
    np.nan_to_num,
    np.real,
    np.imag,
    np.angle,
    np.sinc,
    np.round,
    np.around,
    np.fix,
    np.isreal,
    np.iscomplex,
    np.isclose,
    np.i0,
)
def elementwise_first_args(site: CallSite) -> Out:
    fn = site.callee
    n = 2 if fn is np.isclose else 1
    return elementwise_rule(site, n)


@register(methods=("round", "conj", "conjugate"))
def elementwise_method(site: CallSite) -> Out:
    return elementwise_rule(site, 1)


@register(methods=("astype",))
def astype_rule(site: CallSite) -> Out:
    recv = site.args[0]
    for a in site.args[1:] + list(site.kwargs.values()):
        if a.batched:
            raise site.unsupported("a batched dtype")
    return site.render(), Val.array(recv.rank, recv.batched)


# ------------------------------------------------------------------ math.*
# math functions on batched scalars become the NumPy ufunc of the same meaning.
MATH_TO_NUMPY = {
    "sqrt": "sqrt",
    "exp": "exp",
    "expm1": "expm1",
    "log2": "log2",
    "log10": "log10",
    "log1p": "log1p",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "atan2": "arctan2",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
    "fabs": "fabs",
    "hypot": "hypot",
    "copysign": "copysign",
    "degrees": "degrees",
    "radians": "radians",
    "isnan": "isnan",
    "isinf": "isinf",
    "isfinite": "isfinite",
    "fmod": "fmod",
    "gcd": "gcd",
    "lcm": "lcm",
    "exp2": "exp2",
    "cbrt": "cbrt",
}
# These return a Python int per example.
MATH_INTEGER = {"floor": "floor", "ceil": "ceil", "trunc": "trunc"}


def math_rule(site: CallSite) -> Out:
    name = site.callee.__name__
    if not site.any_batched:
        vals = [a.val for a in site.args]
        return site.keep(
            Val(SCALAR, rank=0) if all(v.kind == SCALAR for v in vals) else Val.array(0)
        )
    for a in site.args:
        if a.val.kind in (ARRAY, SCALAR) and a.val.rank:
            raise site.refuse(
                f"math.{name} of a per-example array (it takes scalars: the loop raises TypeError)",
                f"use np.{name}",
            )
        if a.val.rank is None or a.val.kind in (TREE, OBJECT):
            raise site.unsupported(f"math.{name} of a batched value of unknown rank")
    codes, val = align(site.ctx, site.args)
    ctx = site.ctx
    if name in MATH_INTEGER:
        inner = cst.Call(
            func=ctx.parse(f"np.{MATH_INTEGER[name]}"), args=[cst.Arg(c) for c in codes]
        )
        return ctx.parse("{x}.astype(int)", x=inner), val
    if name == "log":
        if len(codes) == 2:
            return ctx.parse("np.log({x}) / np.log({b})", x=codes[0], b=codes[1]), val
        return ctx.parse("np.log({x})", x=codes[0]), val
    if name == "pow":
        return ctx.parse("np.power({x}, {y}, dtype=float)", x=codes[0], y=codes[1]), val
    func = ctx.parse(f"np.{MATH_TO_NUMPY[name]}")
    return cst.Call(func=func, args=[cst.Arg(c) for c in codes]), val


for _name in [*MATH_TO_NUMPY, *MATH_INTEGER, "log", "pow"]:
    if hasattr(math, _name):
        register(getattr(math, _name), family="elementwise")(math_rule)

UFUNC_DEFAULT.append(ufunc_rule)


# ------------------------------------------------------------ scalar types
SCALAR_TYPES = sorted(
    {
        t
        for t in (
            np.bool_,
            np.int8,
            np.int16,
            np.int32,
            np.int64,
            np.uint8,
            np.uint16,
            np.uint32,
            np.uint64,
            np.intp,
            np.uintp,
            np.float16,
            np.float32,
            np.float64,
            np.longdouble,
            np.complex64,
            np.complex128,
            np.clongdouble,
        )
    },
    key=lambda t: t.__name__,
)


def scalar_type_rule(site: CallSite) -> Out:
    """``np.float64(x)``: per example a cast of the value; batched, a cast of the batch."""
    kind = np.dtype(site.callee).kind
    if not site.any_batched:
        x = site.args[0] if site.args else None
        rank = x.rank if x is not None and x.val.kind in (ARRAY, SCALAR) else 0
        return site.render(), Val.array(rank, dtype=kind)
    if len(site.args) != 1 or site.kwargs:
        raise site.unsupported(f"{site.callee.__name__}() with several arguments under vmap")
    x = site.args[0]
    if x.val.kind not in (ARRAY, SCALAR):
        raise site.unsupported(f"{site.callee.__name__}() of a batched container")
    code = site.ctx.parse("np.asarray({x}).astype({t})", x=x.code, t=site.func)
    return code, Val.array(x.rank, True, kind)


for _t in SCALAR_TYPES:
    register(_t, family="elementwise", note="a cast, as x.astype")(scalar_type_rule)


@register(np.astype)
def astype_function_rule(site: CallSite) -> Out:
    x = site.args[0]
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
        raise site.unsupported("a batched dtype in np.astype")
    return site.render(), Val.array(x.rank, x.batched)


@register(np.isposinf, np.isneginf)
def isinf_sign_rule(site: CallSite) -> Out:
    code, val = elementwise_rule(site, 1)
    return code, Val.array(val.rank, val.batched, "b")


@register(np.iscomplexobj, np.isrealobj, note="the dtype's answer: the same for every example")
def dtype_test_rule(site: CallSite) -> Out:
    return site.render(), Val(SCALAR, rank=0, dtype="b")


def _listed(site: CallSite, arg: Arg, what: str) -> list[Arg]:
    code = arg.code
    if not (isinstance(code, (cst.List, cst.Tuple)) and arg.val.kind == TREE):
        raise site.unsupported(f"{what} that is not a literal list", "write the list out")
    if any(isinstance(e, cst.StarredElement) for e in code.elements):
        raise site.unsupported(f"a starred {what}")
    return [Arg(e.value, v) for e, (_, v) in zip(code.elements, arg.val.children)]


@register(np.select, note="conditions, choices and default batched in any mix (literal lists)")
def select_rule(site: CallSite) -> Out:
    b = site.bind(np.select)
    conds, choices = b.get("condlist"), b.get("choicelist")
    assert conds is not None and choices is not None
    default = b.get("default")
    if not site.any_batched:
        return b.render(), Val.array(None)
    cs, ch = _listed(site, conds, "condlist"), _listed(site, choices, "choicelist")
    operands = cs + ch + ([default] if default is not None else [])
    codes, val = align(site.ctx, operands)
    b.set("condlist", cst.List([cst.Element(c) for c in codes[: len(cs)]]))
    b.set("choicelist", cst.List([cst.Element(c) for c in codes[len(cs) : len(cs) + len(ch)]]))
    if default is not None:
        b.set("default", codes[-1])
    return b.render(), val


@register(np.choose, note="index and choices batched in any mix (literal list of choices)")
def choose_rule(site: CallSite) -> Out:
    b = site.bind(np.choose)
    idx, choices = b.get("a"), b.get("choices")
    assert idx is not None and choices is not None
    if not site.any_batched:
        return b.render(), Val.array(None)
    if b.get("out") is not None:
        raise site.unsupported("np.choose(..., out=) under vmap")
    ch = _listed(site, choices, "choices")
    codes, val = align(site.ctx, [idx, *ch])
    b.set("a", codes[0])
    b.set("choices", cst.List([cst.Element(c) for c in codes[1:]]))
    return b.render(), val
