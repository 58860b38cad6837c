"""Reductions: per-example axis ``k >= 0`` becomes ``k + 1``, a negative axis stays,
``axis=None`` becomes "every axis but the batch axis". Function and method forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import SCALAR, Val

from .registry import Arg, CallSite, Out, first_param, literal, maybe, no_rule, register

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
    """A scalar q is a reduction. An array of q puts its axes first: with a batched
    array they are moved behind the batch axis; with a batched q (and an unbatched
    array) the batch axis already comes first."""
    base = reduction(fn, tuple_axis=True)

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        a, q = b.get("a"), b.get("q")
        assert a is not None and q is not None
        qr = q.rank if q.val.kind != "tree" else (np.ndim(q.static) if q.val.is_static else None)
        if q.val.kind == "scalar":
            qr = 0
        if not q.batched and qr == 0:
            return base(site)
        if qr is None:
            raise site.unsupported(f"cannot infer the rank of {fn.__name__}'s q")
        others = [x for x in [*site.args, *site.kwargs.values()] if x is not a and x is not q]
        if any(x.batched for x in others):
            raise site.unsupported(f"a batched option to {fn.__name__}")
        if not site.any_batched:
            return b.render(), Val.array(maybe(lambda: qr + _out_rank(site, b, a.rank)))
        if a.batched and q.batched:
            raise no_rule(site, f"{fn.__name__} with a batched array and a batched q", "")
        if q.batched:  # (B, *q) + reduced shape: already batch-first
            r = a.rank
            if r is None:
                raise site.unsupported("cannot infer the rank of the array")
            return b.render(), Val.array(qr + _out_rank(site, b, r), True)  # type: ignore[operator]
        code, val = base(site)  # the array's axes; the result is (*q, B, ...)
        if val.rank is None:
            raise site.unsupported("cannot infer the rank of the result")
        code = site.ctx.parse("np.moveaxis({x}, %d, 0)" % qr, x=code)
        return code, Val.array(qr + val.rank, True)

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


# ------------------------------------------------------ comparisons of arrays
def _flat_all(site: CallSite, test: cst.BaseExpression) -> cst.BaseExpression:
    return site.ctx.parse(
        "np.all(np.reshape({t}, ({b}, -1)), axis=1)", t=test, b=site.ctx.batch_size()
    )


@register(np.allclose, note="rtol/atol/equal_nan unbatched")
def allclose_rule(site: CallSite) -> Out:
    from .elementwise import align

    b = site.bind(np.allclose)
    x, y = b.get("a"), b.get("b")
    assert x is not None and y is not None
    if not site.any_batched:
        return b.render(), Val(SCALAR, rank=0, dtype="b")
    opts = [a for a in [*site.args, *site.kwargs.values()] if a is not x and a is not y]
    if any(a.batched for a in opts):
        raise site.unsupported("a batched rtol/atol/equal_nan in np.allclose")
    codes, _ = align(site.ctx, [x, y])
    b.set("a", codes[0])
    b.set("b", codes[1])
    close = cst.Call(func=site.ctx.parse("np.isclose"), args=b.render().args)
    return _flat_all(site, close), Val.array(0, True, "b")


@register(np.array_equal, note="equal_nan unbatched")
def array_equal_rule(site: CallSite) -> Out:
    """Per example: equal shapes and equal entries. The examples' shapes are the batch's
    shapes past the batch axis, so the shape test is one test for the whole batch."""
    b = site.bind(np.array_equal)
    x, y = b.get("a1"), b.get("a2")
    assert x is not None and y is not None
    if not site.any_batched:
        return b.render(), Val(SCALAR, rank=0, dtype="b")
    nan = b.get("equal_nan")
    if nan is not None and nan.batched:
        raise site.unsupported("a batched equal_nan in np.array_equal")
    equal_nan = b.value("equal_nan", False)
    ctx = site.ctx

    def shape(a) -> cst.BaseExpression:
        return ctx.parse("np.shape({x})[1:]" if a.batched else "np.shape({x})", x=a.code)

    ca = x.code if x.batched else ctx.parse("np.asarray({x})", x=x.code)
    cb = y.code if y.batched else ctx.parse("np.asarray({y})", y=y.code)
    test = ctx.parse("{a} == {b}", a=ca, b=cb)
    if equal_nan:
        test = ctx.parse("({a} == {b}) | (np.isnan({a}) & np.isnan({b}))", a=ca, b=cb)
    code = ctx.parse(
        "{all} if {sa} == {sb} else np.zeros({n}, dtype=bool)",
        all=_flat_all(site, test),
        sa=shape(x),
        sb=shape(y),
        n=ctx.batch_size(),
    )
    return code, Val.array(0, True, "b")


# ----------------------------------------------------------------- averages
@register(np.average, note="weights batched or not, 1-D along axis or shaped like a")
def average_rule(site: CallSite) -> Out:
    b = site.bind(np.average)
    x, w = b.get("a"), b.get("weights")
    assert x is not None
    if w is None or w.val.kind == "none":
        if "returned" in b and b.value("returned"):
            raise no_rule(site, "np.average(..., returned=True) under vmap", "")
        return _average_unweighted(site, b)
    opts = [b.get(n) for n in ("axis", "returned", "keepdims")]
    if any(a is not None and a.batched for a in opts):
        raise site.unsupported("a batched option to np.average")
    r, wr = x.rank, w.rank
    if not site.any_batched:
        return b.render(), Val.array(maybe(lambda: _out_rank(site, b, r)))
    if b.value("returned", False):
        raise no_rule(site, "np.average(..., returned=True) under vmap", "")
    if r is None or wr is None:
        raise site.unsupported("cannot infer the ranks in np.average")
    axis = b.value("axis", None)
    axes = normalise_axes(site, axis, r) if r else ()
    ctx = site.ctx
    wc = w.code
    if wr != r:
        if wr != 1 or len(axes) != 1:
            raise site.unsupported(
                "np.average weights that are neither 1-D along one axis nor a's shape"
            )
        k = axes[0]
        # The weights run along axis k: unit axes after them (and, batched, between the
        # batch axis and them), so they broadcast against a from the right.
        lead = "(slice(None),) + (None,) * %d + " % k if w.batched else ""
        wc = ctx.parse("{w}[%s(slice(None),) + (None,) * %d]" % (lead, r - 1 - k), w=w.code)
    from .elementwise import align

    codes, _ = align(ctx, [Arg(x.code, x.val), Arg(wc, Val.array(r, w.batched))])
    spread = ctx.parse("np.broadcast_arrays({a}, {w})", a=codes[0], w=codes[1])
    b.set("a", ctx.parse("{s}[0]", s=spread))
    b.set("weights", ctx.parse("{s}[1]", s=spread))
    if axis is None:
        b.set("axis", literal(tuple(range(1, r + 1))))
    else:
        b.set("axis", shifted_axis_code(axes, axis))
    keep = bool(b.value("keepdims", False))
    return b.render(), Val.array(r if keep else r - len(axes), True)


def _average_unweighted(site: CallSite, b) -> Out:
    """np.average without weights is np.mean (with NumPy's float result)."""
    x = b.get("a")
    if not x.batched:
        return b.render(), Val.array(maybe(lambda: _out_rank(site, b, x.rank)))
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise site.unsupported("a batched option to np.average")
    r = x.rank
    if r is None:
        raise site.unsupported("cannot infer the rank of the averaged array")
    axis = b.value("axis", None)
    axes = normalise_axes(site, axis, r) if r else ()
    if axis is None:
        b.set("axis", literal(tuple(range(1, r + 1))))
    else:
        b.set("axis", shifted_axis_code(axes, axis))
    keep = bool(b.value("keepdims", False))
    return b.render(), Val.array(r if keep else r - len(axes), True)


# -------------------------------------------------------- covariance
def _cov_parts(site: CallSite, fn: Callable) -> tuple[Any, Any, int | None]:
    """The batched, centred (B, V, N) variables of np.cov/np.corrcoef, and the result's
    per-example rank (None where a single variable would squeeze it away)."""
    b = site.bind(fn)
    m, y = b.get("m") or b.get("x"), b.get("y")
    assert m is not None
    names = [n for n in ("rowvar", "bias", "ddof", "fweights", "aweights", "dtype") if n in b]
    if any(b.get(n).batched for n in names):  # type: ignore[union-attr]
        raise site.unsupported(f"a batched option to np.{fn.__name__}")
    for n in ("fweights", "aweights", "dtype"):
        if n in b and b.value(n, None) is not None:
            raise no_rule(site, f"np.{fn.__name__} with {n}= under vmap", "")
    rowvar = b.value("rowvar", True)
    ctx = site.ctx

    def variables(a: Any) -> Any:
        r = a.rank
        if r not in (1, 2):
            raise no_rule(site, f"np.{fn.__name__} of an array of rank {r} under vmap", "")
        code = a.code if a.batched else ctx.broadcast(a.code, Val.array(r))
        if r == 1:
            return ctx.parse("np.asarray({x})[:, None, :]", x=code), 1
        return (code if rowvar else ctx.parse("np.swapaxes({x}, 1, 2)", x=code)), None

    X, count = variables(m)
    rank = 0 if count == 1 else None
    if y is not None and y.val.kind != "none":
        Y, _ = variables(y)
        X = ctx.parse("np.concatenate([{x}, {y}], axis=1)", x=X, y=Y)
        rank = 2 if (m.rank == 1 and y.rank == 1) else None
    ddof = b.value("ddof", None) if fn is np.cov else None
    if ddof is None:
        ddof = 0 if (fn is np.cov and b.value("bias", False)) else 1
    centred = ctx.parse("{x} - np.mean({x}, axis=-1, keepdims=True)", x=X)
    c = ctx.parse(
        "{c} @ np.conj(np.swapaxes({c}, 1, 2)) / max({x}.shape[-1] - %d, 0)" % ddof,
        c=centred,
        x=X,
    )
    return c, b, rank


def _squeezed(site: CallSite, c: Any, rank: int | None) -> Any:
    """NumPy squeezes the per-example (V, V) result (V = 1 gives a 0-d array)."""
    if rank == 0:
        return site.ctx.parse("{c}.reshape({c}.shape[0])", c=c)
    if rank == 2:
        return c
    return site.ctx.parse(
        "{c}.reshape({c}.shape[:1] + tuple(d for d in {c}.shape[1:] if d != 1))", c=c
    )


@register(np.cov, note="rowvar/bias/ddof unbatched; no weights")
def cov_rule(site: CallSite) -> Out:
    if not site.any_batched:
        return site.render(), Val.array(None)
    c, _, rank = _cov_parts(site, np.cov)
    return _squeezed(site, c, rank), Val.array(rank, True)


@register(np.corrcoef, note="rowvar unbatched")
def corrcoef_rule(site: CallSite) -> Out:
    if not site.any_batched:
        return site.render(), Val.array(None)
    c, _, rank = _cov_parts(site, np.corrcoef)
    if rank == 0:  # one variable: NumPy returns c / c
        return site.ctx.parse("{c} / {c}", c=_squeezed(site, c, 0)), Val.array(0, True)
    ctx = site.ctx
    d = ctx.parse("np.sqrt(np.diagonal({c}, axis1=1, axis2=2).real)", c=c)
    r = ctx.parse("{c} / {d}[:, :, None] / {d}[:, None, :]", c=c, d=d)
    # NumPy clips the real (and imaginary) parts to [-1, 1].
    r = ctx.parse(
        "np.clip({r}.real, -1, 1) + 1j * np.clip({r}.imag, -1, 1) "
        "if np.iscomplexobj({r}) else np.clip({r}, -1, 1)",
        r=r,
    )
    return _squeezed(site, r, rank), Val.array(rank, True)
