"""The methods of every ufunc: ``np.add.reduce``, ``np.maximum.accumulate``,
``np.multiply.outer``, ``np.add.at``, ``np.add.reduceat``.

They are looked up through the ufunc they are bound to (``registry.lookup``), so one
rule per method covers NumPy's ufuncs and any other ufunc (``scipy.special``'s).
``at`` writes in place: a batched array is updated where it lives (its batch axis
indexed by ``np.arange``); writing batched values into an unbatched array would mix
the examples' updates in one shared array, and is left to the per-example loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import SCALAR, TREE, Val

from .reductions import normalise_axes, shifted_axis_code
from .registry import UFUNC_METHODS, Arg, CallSite, Out, catalogue, literal, no_rule
from .shape_ops import _need_rank, _shift

FAMILY = "ufunc_methods"


def method(name: str, note: str) -> Callable:
    def deco(rule: Callable[[CallSite], Out]) -> Callable[[CallSite], Out]:
        UFUNC_METHODS[name] = rule
        catalogue(FAMILY, f"ufunc.{name}", note)
        return rule

    return deco


def _ufunc(site: CallSite) -> np.ufunc:
    return site.callee.__self__


def _signature(name: str) -> Callable:
    """A stand-in with the method's parameters, for ``CallSite.bind``."""
    import inspect

    sig = {
        "reduce": "array, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=True",
        "accumulate": "array, axis=0, dtype=None, out=None",
        "reduceat": "array, indices, axis=0, dtype=None, out=None",
        "at": "a, indices, b=None",
    }[name]
    namespace: dict = {}
    exec(f"def {name}({sig}): pass", namespace)  # noqa: S102 - a fixed, literal signature
    return inspect.signature(namespace[name])


def _others_unbatched(site: CallSite, keep: tuple[Arg | None, ...], what: str) -> None:
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a not in keep):
        raise no_rule(
            site, f"a batched {what} to {_ufunc(site).__name__}.{site.callee.__name__}", ""
        )


@method("reduce", "axis an int, a tuple or None; keepdims; initial")
def reduce_rule(site: CallSite) -> Out:
    b = site.bind(_signature("reduce"))
    x = b.get("array")
    assert x is not None
    _others_unbatched(site, (x,), "option")
    r = x.rank
    axis = b.value("axis", 0)
    keep = bool(b.value("keepdims", False))
    if not x.batched:
        out = None if r is None else (r if keep else r - len(_axes(site, axis, r)))
        return b.render(), Val.array(out)
    r = _need_rank(site, x)
    if "out" in b and b.value("out", None) is not None:
        raise site.unsupported("out= in a batched ufunc reduction", "assign the result instead")
    axes = _axes(site, axis, r)
    if axis is None:
        b.set("axis", literal(tuple(range(1, r + 1))))
    else:
        b.set("axis", shifted_axis_code(axes, axis))
    return b.render(), Val.array(r if keep else r - len(axes), True)


def _axes(site: CallSite, axis: object, r: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(r))
    return normalise_axes(site, axis, r)


def _along_axis(site: CallSite, b: Any, x: Arg) -> Out:
    """A method working along one axis (default 0) of its array: shifted past the batch."""
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    axis = b.value("axis", 0)
    normalise_axes(site, axis, r)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(r, True)


@method("accumulate", "axis counted per example")
def accumulate_rule(site: CallSite) -> Out:
    b = site.bind(_signature("accumulate"))
    x = b.get("array")
    assert x is not None
    _others_unbatched(site, (x,), "option")
    return _along_axis(site, b, x)


@method("reduceat", "indices unbatched")
def reduceat_rule(site: CallSite) -> Out:
    b = site.bind(_signature("reduceat"))
    x = b.get("array")
    assert x is not None
    _others_unbatched(site, (x,), "indices or option")
    return _along_axis(site, b, x)


def _rank(site: CallSite, a: Arg) -> int:
    if a.val.kind == SCALAR:
        return 0
    if a.val.kind == TREE and a.val.is_static:
        return int(np.ndim(a.val.static))
    if a.rank is None:
        raise site.unsupported("cannot infer the rank of an operand of ufunc.outer")
    return a.rank


@method("outer", "operands batched in any mix")
def outer_rule(site: CallSite) -> Out:
    if len(site.args) != 2 or any(a.batched for a in site.kwargs.values()):
        if site.any_batched:
            raise no_rule(site, "ufunc.outer with options under vmap", "")
        return site.render(), Val.array(None)
    a, c = site.args
    if not site.any_batched:
        ra, rc = (a.rank, c.rank)
        return site.render(), Val.array(None if ra is None or rc is None else ra + rc)
    ra, rc = _rank(site, a), _rank(site, c)
    ctx = site.ctx
    out = Val.array(ra + rc, True)
    if a.batched and c.batched:
        left = ctx.parse("{a}[(...,) + (None,) * %d]" % rc, a=a.code) if rc else a.code
        right = ctx.expand(c.code, ra)
        # Both batched: the ufunc itself, on operands laid out as (B, *a, 1..) and (B, 1.., *c).
        func = site.func.value if isinstance(site.func, cst.Attribute) else None
        if func is None:
            raise no_rule(site, "ufunc.outer called through a name under vmap", "")
        options = [cst.Arg(a.code, keyword=cst.Name(k)) for k, a in site.kwargs.items()]
        return cst.Call(func=func, args=[cst.Arg(left), cst.Arg(right), *options]), out
    if a.batched:  # (B, *a) outer c: already batch-first
        return site.render(), out
    code = site.render()  # (*a, B, *c): the batch axis moves to the front
    return (ctx.parse("np.moveaxis({x}, %d, 0)" % ra, x=code) if ra else code), out


@method("at", "in place on a batched array; indices and values batched or not")
def at_rule(site: CallSite) -> Out:
    b = site.bind(_signature("at"))
    x, idx, v = b.get("a"), b.get("indices"), b.get("b")
    assert x is not None and idx is not None
    if not site.any_batched:
        return b.render(), Val.const(None)
    if not x.batched:
        raise no_rule(
            site,
            f"{_ufunc(site).__name__}.at into an unbatched array with batched indices or values "
            "(every example would update the same array)",
            "",
        )
    r = _need_rank(site, x)
    if r == 0:
        raise site.unsupported("ufunc.at on a per-example scalar")
    q = _index_rank(idx)
    if q is None:
        raise no_rule(site, "ufunc.at with indices other than an int or an integer array", "")
    ctx = site.ctx
    if idx.batched:
        rows = ctx.expand(ctx.parse("np.arange({x}.shape[0])", x=x.code), q)
        index = cst.Tuple([cst.Element(rows), cst.Element(idx.code)])
    else:
        index = cst.Tuple([cst.Element(ctx.parse("slice(None)")), cst.Element(idx.code)])
    b.set("indices", index)
    if v is not None and v.batched:
        target = q + r - 1  # per example, a[i] has the index's axes, then a's other axes
        vr = _rank(site, v)
        b.set("b", ctx.expand(v.code, target - vr))
    return b.render(), Val.const(None)


def _index_rank(idx: Arg) -> int | None:
    if idx.val.kind == SCALAR:
        return 0
    if idx.val.kind == TREE and idx.val.is_static:
        value = np.asarray(idx.val.static)
        return value.ndim if value.dtype.kind in "iu" else None
    # A boolean mask would index differently next to the batch axis's arange.
    return idx.rank if idx.val.dtype in ("i", "u") else None
