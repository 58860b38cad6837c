"""Python builtins on batched values: len, abs, min/max, sum, float/int/bool, round,
range, enumerate, zip.
"""

from __future__ import annotations

import builtins
import functools

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, OBJECT, SCALAR, TREE, Val, join_all

from .elementwise import align, align_binary
from .registry import Arg, CallSite, Out, register


def _is_array(val: Val) -> bool:
    return val.kind in (ARRAY, SCALAR)


@register(builtins.len)
def len_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val(SCALAR, rank=0)
    if x.val.kind == TREE:
        return site.render(), Val(SCALAR, rank=0)
    if not x.rank:
        raise site.refuse("len() of a batched scalar (the loop raises TypeError)")
    return site.ctx.parse("{x}.shape[1]", x=x.code), Val(SCALAR, rank=0)


@register(builtins.abs)
def abs_rule(site: CallSite) -> Out:
    x = site.args[0]
    return site.render(), (
        Val.array(x.rank, True)
        if x.batched
        else (x.val if x.val.kind == SCALAR else Val.array(x.rank))
    )


def _min_max(name: str, op: str) -> object:
    def rule(site: CallSite) -> Out:
        if not site.any_batched:
            return site.render(), _unbatched_min_max(site)
        if site.kwargs:
            raise site.unsupported(f"{name}() with key= or default= on batched values")
        if len(site.args) == 1:
            x = site.args[0]
            if x.val.kind == ARRAY and x.rank == 1:
                return site.ctx.parse(f"np.{name}({{x}}, axis=1)", x=x.code), Val.array(0, True)
            if x.val.kind == TREE and x.val.element is not None:
                return _fold_sequence(site, x, op, name)
            if x.val.kind == TREE and x.val.children:
                items = [
                    Arg(site.ctx.parse("{x}[%d]" % i, x=x.code), v)
                    for i, (_, v) in enumerate(x.val.children)
                ]
                return _fold(site, items, op, name)
            raise site.unsupported(f"{name}() of this batched value")
        return _fold(site, site.args, op, name)

    return rule


def _unbatched_min_max(site: CallSite) -> Val:
    """The result is one of the arguments (or an element of the only one)."""
    vals = [a.val for a in site.args]
    if site.kwargs:
        return Val(OBJECT)
    if len(vals) == 1:
        v = vals[0]
        if v.kind == ARRAY and v.rank:
            return Val.array(v.rank - 1, dtype=v.dtype)
        return Val(OBJECT)
    if all(v.kind == SCALAR for v in vals):
        return Val(SCALAR, rank=0)
    if all(_is_array(v) and v.rank == 0 for v in vals):
        return Val.array(0)
    return Val(OBJECT)


def _fold(site: CallSite, args: list, op: str, name: str) -> Out:
    """Python's max(a, b) is ``b if b > a else a``: exact, NaN order included."""
    _require_scalars(site, args, name)
    codes, val = align(site.ctx, args)
    acc = codes[0]
    for nxt in codes[1:]:
        acc = site.ctx.parse("np.where({b} %s {a}, {b}, {a})" % op, a=acc, b=nxt)
    return acc, val


def _fold_sequence(site: CallSite, x: Arg, op: str, name: str) -> Out:
    """``max(gen)`` of a generator of batched scalars: the same left-to-right fold as
    Python's (the first item is kept unless a later one compares greater; an empty
    sequence raises as the loop does)."""
    elem = x.val.element
    _require_scalars(site, [Arg(x.code, elem)], name)
    site.ctx.program.modules["functools"] = functools  # type: ignore[attr-defined]
    code = site.ctx.parse(
        "functools.reduce(lambda a, b: np.where(b %s a, b, a), {xs})" % op,
        xs=_parenthesised(x.code),
    )
    return code, Val.array(0, elem.batched, elem.dtype)


def _parenthesised(code: cst.BaseExpression) -> cst.BaseExpression:
    """A generator expression passed with other arguments needs its own parentheses."""
    if isinstance(code, cst.GeneratorExp) and not code.lpar:
        return code.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return code


def _require_scalars(site: CallSite, args: list, name: str) -> None:
    for a in args:
        if a.batched and _is_array(a.val) and a.rank:
            raise site.refuse(
                f"{name}() of batched arrays (Python compares whole arrays; the loop raises)",
                f"use np.{'maximum' if name == 'max' else 'minimum'} for elementwise {name}",
            )
        if a.batched and (not _is_array(a.val) or a.rank != 0):
            raise site.unsupported(
                f"{name}() of batched arrays (Python compares whole arrays; the loop raises)",
                f"use np.{'maximum' if name == 'max' else 'minimum'} for elementwise {name}",
            )


register(builtins.max)(_min_max("max", ">"))
register(builtins.min)(_min_max("min", "<"))


@register(builtins.sum)
def sum_rule(site: CallSite) -> Out:
    x = site.args[0]
    start = site.args[1] if len(site.args) > 1 else site.kwargs.get("start")
    if not site.any_batched:
        return site.render(), (
            Val(OBJECT)
            if x.val.kind != ARRAY
            else Val.array(None if x.rank is None else max(x.rank - 1, 0))
        )
    if x.val.kind == TREE:
        # Python's own left-to-right sum of batched arrays is the loop's order exactly.
        elems = [x.val.element] if x.val.element is not None else [v for _, v in x.val.children]
        ranks = {v.rank for v in elems} | ({start.rank} if start is not None else set())
        if len(ranks) != 1 or None in ranks:
            raise site.unsupported("sum() of values with different per-example ranks")
        return site.render(), Val.array(ranks.pop(), True)
    if x.val.kind != ARRAY:
        raise site.unsupported("sum() of this batched value")
    if x.batched:
        if not x.rank:
            raise site.refuse("sum() of a batched scalar (the loop raises TypeError)")
        total = Arg(_sum_first_axis(site, x), Val.array(x.rank - 1, True, _sum_kind(x.val.dtype)))
    else:
        # Only the start value is batched.
        total = Arg(
            site.ctx.parse("sum({x})", x=x.code),
            Val.array(None if x.rank is None else max(x.rank - 1, 0)),
        )
    if start is None:
        return total.code, total.val
    (s, t), val = align_binary(site.ctx, start, total, np.add)
    return site.ctx.parse("{s} + {t}", s=s, t=t), val


def _sum_first_axis(site: CallSite, x: Arg) -> cst.BaseExpression:
    """Python's ``sum`` over a batched array's per-example first axis.

    Per example it is ``0 + x[0] + x[1] + ...``: its dtype is that of
    ``0 + x[0]``, so integers keep their width (int32 stays int32) and booleans
    count as ints, where ``np.sum`` would widen small integers to int64.
    """
    kind = x.val.dtype
    if kind in ("f", "c", "b"):
        return site.ctx.parse("np.sum({x}, axis=1)", x=x.code)
    if kind in ("i", "u"):
        return site.ctx.parse("np.sum({x}, axis=1, dtype={x}.dtype)", x=x.code)
    return site.ctx.parse("np.sum({x}, axis=1, dtype=np.result_type(0, {x}.dtype))", x=x.code)


def _sum_kind(kind: str | None) -> str | None:
    return "i" if kind == "b" else kind


def _any_all(name: str, op: str, start: str) -> object:
    """``any(v > 0 for v in x)``: Python tests each item's truth left to right; on
    per-example scalars that is a logical or/and over the items, starting from the
    empty result (False for any, True for all)."""

    def rule(site: CallSite) -> Out:
        if not site.any_batched:
            return site.render(), Val(SCALAR, rank=0, dtype="b")
        x = site.args[0]
        if x.val.kind == ARRAY:
            if x.rank != 1:
                raise site.unsupported(
                    f"{name}() of a batched array of rank {x.rank} "
                    "(the loop tests whole arrays and raises)",
                    f"use np.{name}",
                )
            return site.ctx.parse(f"np.{name}({{x}}, axis=1)", x=x.code), Val.array(0, True, "b")
        if x.val.kind != TREE:
            raise site.unsupported(f"{name}() of this batched value")
        items = [x.val.element] if x.val.element is not None else [v for _, v in x.val.children]
        for v in items:
            if _is_array(v) and v.rank:
                raise site.refuse(
                    f"{name}() of items that are per-example arrays "
                    "(the loop tests whole arrays and raises)"
                )
            if not _is_array(v) or v.rank != 0:
                raise site.unsupported(f"{name}() of items of unknown rank")
        site.ctx.program.modules["functools"] = functools  # type: ignore[attr-defined]
        code = site.ctx.parse(
            f"functools.reduce(np.{op}, {{xs}}, np.{start}({{b}}, dtype=bool))",
            xs=_parenthesised(x.code),
            b=site.ctx.batch_size(),
        )
        return code, Val.array(0, True, "b")

    return rule


register(builtins.any)(_any_all("any", "logical_or", "zeros"))
register(builtins.all)(_any_all("all", "logical_and", "ones"))


def _convert(kind: str) -> object:
    def rule(site: CallSite) -> Out:
        if not site.any_batched:
            return site.render(), Val(SCALAR, rank=0)
        x = site.args[0]
        if x.val.kind in (ARRAY, SCALAR) and x.rank:
            raise site.refuse(
                f"{kind}() of a per-example array (the loop raises TypeError: only scalars "
                "convert)",
                f"use .astype({kind}) for an array of {kind}s",
            )
        if x.val.kind not in (ARRAY, SCALAR) or x.rank != 0:
            raise site.unsupported(f"{kind}() of a batched value of unknown rank")
        return site.ctx.parse(f"np.asarray({{x}}).astype({kind})", x=x.code), Val.array(0, True)

    return rule


for _t in ("float", "int", "bool", "complex"):
    register(getattr(builtins, _t))(_convert(_t))


@register(builtins.round)
def round_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not site.any_batched:
        return site.render(), Val(SCALAR, rank=0) if len(site.args) == 1 else x.val
    if x.rank:
        raise site.refuse(
            "round() of a per-example array (the loop raises TypeError: an ndarray has no "
            "__round__)",
            "use np.round",
        )
    if x.rank != 0:
        raise site.unsupported("round() of a batched value of unknown rank", "use np.round")
    if len(site.args) > 1 or site.kwargs:
        nd = site.args[1] if len(site.args) > 1 else site.kwargs["ndigits"]
        if nd.batched:
            raise site.unsupported("round() with batched ndigits")
        if nd.val.static is None:
            return site.ctx.parse("np.round({x}).astype(int)", x=x.code), Val.array(x.rank, True)
        return site.ctx.parse("np.round({x}, {n})", x=x.code, n=nd.code), Val.array(x.rank, True)
    # round(x) returns a Python int per example; NumPy rounds half to even like Python.
    return site.ctx.parse("np.round({x}).astype(int)", x=x.code), Val.array(0, True)


@register(builtins.range)
def range_rule(site: CallSite) -> Out:
    if site.any_batched:
        raise site.unsupported(
            "range() of a batched bound is not supported yet",
            "loop to a bound that is the same for every example and mask with np.where",
        )
    return site.render(), Val(OBJECT, static=range(0))


@register(builtins.enumerate)
def enumerate_rule(site: CallSite) -> Out:
    x = site.args[0]
    elem = _element(site, x.val)
    code = site.render()
    if x.batched and x.val.kind == ARRAY:
        code = site.render(
            [site.ctx.parse("np.moveaxis({x}, 1, 0)", x=x.code), *[a.code for a in site.args[1:]]]
        )
    pair = Val.tree(tuple, [(0, Val(SCALAR, rank=0)), (1, elem)])
    return code, Val(TREE, batched=elem.batched, container=list, element=pair)


@register(builtins.zip)
def zip_rule(site: CallSite) -> Out:
    elems = []
    codes = []
    for a in site.args:
        elems.append(_element(site, a.val))
        if a.batched and a.val.kind == ARRAY:
            codes.append(site.ctx.parse("np.moveaxis({x}, 1, 0)", x=a.code))
        else:
            codes.append(a.code)
    tup = Val.tree(tuple, list(enumerate(elems)))
    return site.render(codes), Val(TREE, batched=tup.batched, container=list, element=tup)


def _element(site: CallSite, val: Val) -> Val:
    if val.kind == ARRAY:
        if val.rank is None or val.rank == 0:
            if val.batched:
                raise site.unsupported("iterating a batched value of unknown or zero rank")
            return Val.array(None)
        return Val.array(val.rank - 1, val.batched)
    if val.kind == TREE:
        if val.element is not None:
            return val.element
        kids = [v for _, v in val.children]
        if len({k.batched for k in kids}) > 1:
            raise site.unsupported("iterating a container whose items are batched differently")
        return join_all(kids) if kids else Val(OBJECT)
    if isinstance(val.static, range):
        return Val(SCALAR, rank=0)
    return Val(OBJECT)


@register(builtins.print)
def print_rule(site: CallSite) -> Out:
    if site.any_batched:
        raise site.unsupported(
            "print() of a batched value (the loop prints once per example)",
            "return the value, or print outside the vmapped function",
        )
    return site.render(), Val.const(None)


@register(builtins.isinstance, builtins.type, builtins.callable, builtins.getattr, builtins.hasattr)
def introspection_rule(site: CallSite) -> Out:
    if site.any_batched and site.callee is builtins.isinstance:
        x = site.args[0]
        decided = _isinstance_per_example(x.val, site.args[1].val if len(site.args) > 1 else None)
        if decided is not None:
            return cst.Name(str(decided)), Val.const(decided)
        if x.val.kind in (ARRAY, SCALAR):
            raise site.unsupported("isinstance() of a batched value (it is an array under vmap)")
    if site.any_batched and site.callee is not builtins.isinstance:
        raise site.unsupported(f"{site.callee.__name__}() of a batched value")
    return site.render(), Val(OBJECT)


@register(builtins.list, builtins.tuple)
def sequence_rule(site: CallSite) -> Out:
    """``list(c)`` / ``tuple(c)``: a container keeps its items; a batched array is split
    along its first per-example axis (the loop iterates that axis)."""
    container = site.callee
    if not site.args:
        return site.render(), Val.tree(container, [])
    x = site.args[0]
    if len(site.args) > 1 or site.kwargs:
        raise site.unsupported(f"{container.__name__}() with more than one argument")
    if x.val.kind == TREE and x.val.element is None:
        return site.render(), Val.tree(container, list(enumerate(v for _, v in x.val.children)))
    if not x.batched:
        if x.val.kind == TREE:
            return site.render(), Val(TREE, container=container, element=x.val.element)
        return site.render(), Val(OBJECT)
    if x.val.kind == TREE:
        return site.render(), Val(TREE, batched=True, container=container, element=x.val.element)
    elem = _element(site, x.val)
    code = site.render([site.ctx.parse("np.moveaxis({x}, 1, 0)", x=x.code)])
    return code, Val(TREE, batched=True, container=container, element=elem)


# What a per-example slice of a batched array can be: an array, or a NumPy scalar.
_PER_EXAMPLE_TYPES = (
    np.ndarray,
    *{np.dtype(c).type for c in "?bhilqBHILQefdgFDG"},
)


def _isinstance_per_example(x: Val, types_: Val | None) -> bool | None:
    """``isinstance(x, T)`` for a batched ``x``, when every example gives the same answer:
    a per-example slice of rank >= 1 is an ``np.ndarray``; of rank 0, a NumPy scalar
    (``np.generic``) whose exact type is not known here, so only ``np.ndarray`` and
    ``np.generic`` (and classes above them) are decided for it."""
    if x.kind != ARRAY or types_ is None or not types_.is_static:
        return None
    wanted = types_.static if isinstance(types_.static, tuple) else (types_.static,)
    if not all(isinstance(t, type) for t in wanted):
        return None
    if x.rank is None:
        # Of unknown rank: an array or a NumPy scalar; decided when all agree.
        answers = {any(issubclass(c, t) for t in wanted) for c in _PER_EXAMPLE_TYPES}
        return answers.pop() if len(answers) == 1 else None
    if x.rank >= 1:
        return any(issubclass(np.ndarray, t) for t in wanted)
    if any(issubclass(np.generic, t) for t in wanted):
        return True
    if all(t is np.ndarray or issubclass(t, np.ndarray) for t in wanted):
        return False
    return None


@register(np.isscalar)
def isscalar_rule(site: CallSite) -> Out:
    """``np.isscalar(x)`` of a batched value: per example a rank-0 slice is a NumPy
    scalar (True) and any other an array (False), the same for every example."""
    x = site.args[0] if site.args else None
    if x is None or not x.batched:
        return site.render(), Val(SCALAR, rank=0, dtype="b")
    if x.val.kind != ARRAY or x.val.rank is None:
        raise site.unsupported("np.isscalar() of a batched value of unknown rank")
    decided = x.val.rank == 0
    return cst.Name(str(decided)), Val.const(decided)
