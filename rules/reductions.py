"""Reductions: per-example axis ``k >= 0`` becomes ``k + 1``, a negative axis stays,
``axis=None`` becomes "every axis but the batch axis". Function and method forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import Val

from .registry import CallSite, Out, first_param, literal, maybe, register

# Reductions whose ``axis`` accepts a tuple.
TUPLE_AXIS = [
    np.sum,
    np.prod,
    np.mean,
    np.std,
    np.var,
    np.min,
    np.max,
    np.amin,
    np.amax,
    np.any,
    np.all,
    np.median,
    np.ptp,
    np.nansum,
    np.nanprod,
    np.nanmean,
    np.nanstd,
    np.nanvar,
    np.nanmin,
    np.nanmax,
    np.nanmedian,
    np.count_nonzero,
]
# Reductions whose ``axis`` is a single int (None flattens).
INT_AXIS = [np.argmin, np.argmax, np.nanargmin, np.nanargmax]
# Array methods and the NumPy function whose signature they share (minus ``a``).
METHOD_FUNCTIONS = {
    "sum": np.sum,
    "prod": np.prod,
    "mean": np.mean,
    "std": np.std,
    "var": np.var,
    "min": np.min,
    "max": np.max,
    "any": np.any,
    "all": np.all,
    "argmin": np.argmin,
    "argmax": np.argmax,
}


def normalise_axes(site: CallSite, axis: Any, rank: int) -> tuple[int, ...]:
    """Per-example axes as non-negative ints, checked against ``rank``."""
    axes = tuple(range(rank)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    out = []
    for k in axes:
        if not isinstance(k, int) or not -rank <= k < rank:
            raise site.unsupported(
                f"axis {k!r} is out of range for a per-example array of rank {rank}",
                "check the axis: it counts the axes of one example",
            )
        out.append(k % rank)
    return tuple(out)


def shifted_axis_code(axes: tuple[int, ...], original: Any) -> cst.BaseExpression:
    """The batched ``axis=`` argument. Negative axes the user wrote are kept."""
    if isinstance(original, int) and original < 0:
        return literal(original)
    if isinstance(original, tuple):
        return literal(tuple(k if k < 0 else k + 1 for k in original))
    moved = tuple(k + 1 for k in axes)
    return literal(moved[0] if len(moved) == 1 else moved)


def reduction(fn: Callable, tuple_axis: bool) -> Callable[[CallSite], Out]:
    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        first = first_param(fn)
        x = b.get(first)
        assert x is not None
        others = [a for a in [*site.args, *site.kwargs.values()] if a is not x]
        if any(a.batched for a in others):
            raise site.unsupported(f"a batched argument other than the array to {fn.__name__}")
        rank = x.rank
        if not x.batched:
            return b.render(), Val.array(maybe(lambda: _out_rank(site, b, rank)))
        if rank is None:
            raise site.unsupported("cannot infer the rank of the reduced array")
        axis = b.value("axis", None)
        keepdims = bool(b.value("keepdims", False))
        if rank == 0 and axis is not None:
            axis = _scalar_axis(site, fn, axis)
        axes = normalise_axes(site, axis, rank) if rank else ()
        out_rank = rank if keepdims else rank - len(axes)
        if not tuple_axis and axis is None:
            if keepdims:
                raise site.unsupported(f"{fn.__name__} with axis=None and keepdims=True")
            if rank == 0:
                raise site.unsupported(f"{fn.__name__} of a scalar")
            if rank > 1:
                b.set(first, site.ctx.parse("{x}.reshape({x}.shape[0], -1)", x=x.code))
            b.set("axis", literal(1))
            return b.render(), Val.array(0, True)
        b.set("axis", shifted_axis_code(axes, axis))
        return b.render(), Val.array(out_rank, True)

    return rule


def _accepts_scalar_axis(fn: Callable) -> bool:
    """Whether NumPy lets ``fn`` reduce a 0-d array over axis 0 (ufunc reductions do)."""
    try:
        fn(np.array(1.0), axis=0)
    except (ValueError, TypeError):
        return False
    return True


def _scalar_axis(site: CallSite, fn: Callable, axis: Any) -> tuple[()]:
    """``axis=0``/``axis=-1`` on a per-example scalar reduces nothing: ``axis=()``."""
    if isinstance(axis, int) and axis in (0, -1) and _accepts_scalar_axis(fn):
        return ()
    raise site.unsupported(
        f"{fn.__name__}(..., axis={axis!r}) of a per-example scalar (NumPy raises AxisError)",
        "drop the axis argument: a scalar has no axes",
    )


def _out_rank(site: CallSite, b: Any, rank: int | None) -> int | None:
    if rank is None:
        return None
    axis = b.value("axis", None)
    if b.value("keepdims", False):
        return rank
    return rank - len(normalise_axes(site, axis, rank)) if rank else 0


for _fn in TUPLE_AXIS:
    register(_fn)(reduction(_fn, tuple_axis=True))
for _fn in INT_AXIS:
    register(_fn)(reduction(_fn, tuple_axis=False))
for _name, _fn in METHOD_FUNCTIONS.items():
    register(methods=(_name,))(reduction(_fn, tuple_axis=_fn not in INT_AXIS))


def _quantile_rule(fn: Callable) -> Callable[[CallSite], Out]:
    base = reduction(fn, tuple_axis=True)

    def rule(site: CallSite) -> Out:
        q = site.bind(fn).get("q")
        if q is not None and (q.batched or q.rank not in (0,)) and site.any_batched:
            raise site.unsupported(
                f"{fn.__name__} with an array of q (its axes would come before the batch axis)",
                "call it once per q",
            )
        return base(site)

    return rule


for _fn in (np.percentile, np.quantile, np.nanpercentile, np.nanquantile):
    register(_fn)(_quantile_rule(_fn))


@register(np.linalg.norm, family="reductions")
def norm_rule(site: CallSite) -> Out:
    b = site.bind(np.linalg.norm)
    x = b.get("x")
    assert x is not None
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()] if a is not x):
        raise site.unsupported("a batched ord= or axis= in np.linalg.norm")
    rank = x.rank
    if not x.batched:
        return b.render(), Val.array(maybe(lambda: _norm_rank(site, b, rank)))
    if rank is None:
        raise site.unsupported("cannot infer the rank of the array in np.linalg.norm")
    keepdims = bool(b.value("keepdims", False))
    axis = b.value("axis", None)
    if axis is None:
        axes = tuple(range(rank))
    else:
        axes = normalise_axes(site, axis, rank)
    out_rank = rank if keepdims else rank - len(axes)
    if axis is None:
        if rank == 0 or rank > 2:
            if b.value("ord", None) is not None:
                raise site.unsupported("np.linalg.norm with ord= of an array of rank > 2")
            if keepdims and rank:
                raise site.unsupported("np.linalg.norm with keepdims=True of an array of rank > 2")
            if keepdims:  # a scalar's norm with keepdims=True is still a scalar
                b.set("keepdims", literal(False))
            b.set("x", site.ctx.parse("{x}.reshape({x}.shape[0], -1)", x=x.code))
            b.set("axis", literal(1))
            return b.render(), Val.array(0, True)
    b.set("axis", shifted_axis_code(axes, axis))
    return b.render(), Val.array(out_rank, True)


def _norm_rank(site: CallSite, b: Any, rank: int | None) -> int | None:
    if rank is None:
        return None
    if b.value("keepdims", False):
        return rank
    axis = b.value("axis", None)
    return 0 if axis is None else rank - len(normalise_axes(site, axis, rank))
