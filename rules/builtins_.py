"""Python builtins on batched values: len, abs, min/max, sum, float/int/bool, round,
range, enumerate, zip.
"""

from __future__ import annotations

import builtins

from astvmap.values import ARRAY, OBJECT, SCALAR, TREE, Val

from . import CallSite, Out, register
from .elementwise import align


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
        raise site.unsupported("len() of a batched scalar (the loop raises TypeError)")
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
            vals = [a.val for a in site.args]
            kind = SCALAR if all(v.kind == SCALAR for v in vals) else OBJECT
            return site.render(), Val(kind, rank=0) if kind == SCALAR else Val(OBJECT)
        if site.kwargs:
            raise site.unsupported(f"{name}() with key= or default= on batched values")
        if len(site.args) == 1:
            x = site.args[0]
            if x.val.kind == ARRAY and x.rank == 1:
                return site.ctx.parse(f"np.{name}({{x}}, axis=1)", x=x.code), Val.array(0, True)
            if x.val.kind == TREE and x.val.children:
                from . import Arg

                items = [
                    Arg(site.ctx.parse("{x}[%d]" % i, x=x.code), v)
                    for i, (_, v) in enumerate(x.val.children)
                ]
                return _fold(site, items, op, name)
            raise site.unsupported(f"{name}() of this batched value")
        return _fold(site, site.args, op, name)

    return rule


def _fold(site: CallSite, args: list, op: str, name: str) -> Out:
    """Python's max(a, b) is ``b if b > a else a``: exact, NaN order included."""
    _require_scalars(site, args, name)
    codes, val = align(site.ctx, args)
    acc = codes[0]
    for nxt in codes[1:]:
        acc = site.ctx.parse("np.where({b} %s {a}, {b}, {a})" % op, a=acc, b=nxt)
    return acc, val


def _require_scalars(site: CallSite, args: list, name: str) -> None:
    for a in args:
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
    if not site.any_batched:
        return site.render(), (
            Val(OBJECT)
            if x.val.kind != ARRAY
            else Val.array(None if x.rank is None else max(x.rank - 1, 0))
        )
    if x.val.kind == ARRAY:
        if not x.rank:
            raise site.unsupported("sum() of a batched scalar (the loop raises TypeError)")
        code = site.ctx.parse("np.sum({x}, axis=1)", x=x.code)
        if len(site.args) > 1 or "start" in site.kwargs:
            start = site.args[1] if len(site.args) > 1 else site.kwargs["start"]
            code = site.ctx.parse("{s} + {c}", s=start.code, c=code)
        return code, Val.array(x.rank - 1, True)
    if x.val.kind == TREE:
        # Python's own left-to-right sum of batched arrays is the loop's order exactly.
        elems = [x.val.element] if x.val.element is not None else [v for _, v in x.val.children]
        ranks = {v.rank for v in elems}
        if len(ranks) != 1 or None in ranks:
            raise site.unsupported("sum() of values with different per-example ranks")
        return site.render(), Val.array(ranks.pop(), True)
    raise site.unsupported("sum() of this batched value")


def _convert(kind: str) -> object:
    def rule(site: CallSite) -> Out:
        if not site.any_batched:
            return site.render(), Val(SCALAR, rank=0)
        x = site.args[0]
        if x.val.kind not in (ARRAY, SCALAR) or x.rank != 0:
            raise site.unsupported(f"{kind}() of a batched array (only scalars convert)")
        return site.ctx.parse(f"np.asarray({{x}}).astype({kind})", x=x.code), Val.array(0, True)

    return rule


for _t in ("float", "int", "bool", "complex"):
    register(getattr(builtins, _t))(_convert(_t))


@register(builtins.round)
def round_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not site.any_batched:
        return site.render(), Val(SCALAR, rank=0) if len(site.args) == 1 else x.val
    if len(site.args) > 1 or site.kwargs:
        nd = site.args[1] if len(site.args) > 1 else site.kwargs["ndigits"]
        if nd.batched:
            raise site.unsupported("round() with batched ndigits")
        if nd.val.static is None:
            return site.ctx.parse("np.round({x}).astype(int)", x=x.code), Val.array(x.rank, True)
        return site.ctx.parse("np.round({x}, {n})", x=x.code, n=nd.code), Val.array(x.rank, True)
    if x.rank != 0:
        raise site.unsupported("round() of a batched array", "use np.round")
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
        if kids and all(k == kids[0] for k in kids):
            return kids[0]
        if any(k.batched for k in kids):
            raise site.unsupported("iterating a container whose items are batched differently")
        return Val(OBJECT)
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
        if x.val.kind in (ARRAY, SCALAR):
            raise site.unsupported("isinstance() of a batched value (it is an array under vmap)")
    if site.any_batched and site.callee is not builtins.isinstance:
        raise site.unsupported(f"{site.callee.__name__}() of a batched value")
    return site.render(), Val(OBJECT)
