"""Signals, polynomials and searching: convolve, correlate, interp, polyval, searchsorted,
digitize, trapezoid, ediff1d, unwrap.

These are 1-D functions per example, so a batch is a stack of rows. The batched code
is one vectorised expression per call, never a loop over examples: a convolution is a
sliding-window view of the padded signal contracted with the (flipped) kernel; a
search in a batch of sorted rows is a count of the entries below each value.
"""

from __future__ import annotations

from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import Val

from .axis_ops import axis_rule
from .registry import Arg, CallSite, Out, literal, no_rule, register
from .shape_ops import _need_rank


def _vector(site: CallSite, a: Arg, what: str) -> None:
    """Refuse (falling back to the loop) an operand that is not a vector per example."""
    if a.rank != 1:
        raise no_rule(
            site,
            f"{what} of rank {a.rank if a.rank is not None else 'unknown'} under vmap "
            "(the batched rule takes vectors)",
            "pass 1-D arrays",
        )


# ------------------------------------------------------------- convolution
def _full(
    site: CallSite, a: Arg, v: Arg, kernel: cst.BaseExpression, pad: bool = True
) -> cst.BaseExpression:
    """The 'full' convolution of signal ``a`` with kernel ``v`` (flipped as ``kernel``):
    every window of ``a`` padded by len(v) - 1 zeros, contracted with the kernel by one
    matmul. Without ``pad``, the windows of ``a`` itself ('valid' when ``a`` is longer)."""
    ctx = site.ctx
    m = ctx.parse("{v}.shape[-1]", v=v.code)
    signal = a.code
    if pad:
        widths = "[(0, 0), ({m} - 1, {m} - 1)]" if a.batched else "[({m} - 1, {m} - 1)]"
        signal = ctx.parse("np.pad({a}, %s)" % widths, a=a.code, m=m)
    windows = ctx.parse(
        "np.lib.stride_tricks.sliding_window_view({p}, {m}, axis=-1)", p=signal, m=m
    )
    if a.batched and v.batched:  # (B, K, M) @ (B, M, 1)
        return ctx.parse("({w} @ {k}[:, :, None])[:, :, 0]", w=windows, k=kernel)
    if a.batched:  # (B, K, M) @ (M,)
        return ctx.parse("{w} @ {k}", w=windows, k=kernel)
    return ctx.parse("{k} @ {w}.T", w=windows, k=kernel)  # (B, M) @ (M, K)


def _mode_slice(
    site: CallSite, full: cst.BaseExpression, a: Arg, v: Arg, mode: str, correlate: bool
) -> cst.BaseExpression:
    """NumPy's 'same'/'valid' outputs are slices of the full one (which depend on which
    of the two is longer; np.correlate also flips the centre when the kernel is longer)."""
    if mode == "full":
        return full
    ctx = site.ctx
    n, m = ctx.parse("{a}.shape[-1]", a=a.code), ctx.parse("{v}.shape[-1]", v=v.code)
    lo, hi = ctx.parse("min({n}, {m})", n=n, m=m), ctx.parse("max({n}, {m})", n=n, m=m)
    if mode == "valid":
        return ctx.parse("{f}[:, {lo} - 1 : {hi}]", f=full, lo=lo, hi=hi)
    start = ctx.parse("({lo} - 1) // 2", lo=lo)
    if correlate:
        start = ctx.parse("({lo} - 1) // 2 if {n} >= {m} else {lo} // 2", lo=lo, n=n, m=m)
    return ctx.parse("{f}[:, {s} : {s} + {hi}]", f=full, s=start, hi=hi)


def _convolution(correlate: bool) -> Any:
    fn = np.correlate if correlate else np.convolve

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        a, v = b.get("a"), b.get("v")
        assert a is not None and v is not None
        if not site.any_batched:
            return b.render(), Val.array(1)
        mode_arg = b.get("mode")
        if mode_arg is not None and mode_arg.batched:
            raise site.unsupported(f"a batched mode in np.{fn.__name__}")
        mode = b.value("mode", "valid" if correlate else "full")
        if mode not in ("full", "same", "valid"):
            raise site.unsupported(f"np.{fn.__name__} with mode={mode!r}")
        _vector(site, a, f"np.{fn.__name__}'s first argument")
        _vector(site, v, f"np.{fn.__name__}'s second argument")
        if correlate:
            kernel = site.ctx.parse("np.conj({v})", v=v.code)
        else:
            kernel = site.ctx.parse("{v}[..., ::-1]", v=v.code)
        full = _full(site, a, v, kernel)
        code = _mode_slice(site, full, a, v, mode, correlate)
        if mode == "valid":
            # A signal at least as long as the kernel needs no padding (the usual case).
            code = site.ctx.parse(
                "{direct} if {a}.shape[-1] >= {v}.shape[-1] else {general}",
                direct=_full(site, a, v, kernel, pad=False),
                a=a.code,
                v=v.code,
                general=code,
            )
        return code, Val.array(1, True)

    return rule


register(np.convolve, note="signal and kernel batched in any mix; a sliding-window contraction")(
    _convolution(False)
)
register(np.correlate, note="signal and kernel batched in any mix; a sliding-window contraction")(
    _convolution(True)
)


# --------------------------------------------------------------- searching
def _count_below(site: CallSite, a: Arg, v: Arg, side: str) -> tuple[cst.BaseExpression, Val]:
    """``np.searchsorted(a, v, side)`` for a batch of sorted rows ``a``: the number of
    entries of each row that sort before each value (NaN sorts last, as in NumPy)."""
    ctx = site.ctx
    q = v.rank if v.rank is not None else None
    if q is None:
        raise site.unsupported("cannot infer the rank of the searched values")
    rows = ctx.expand(a.code, q) if a.batched else a.code
    vals = ctx.parse("np.asarray({v})[..., None]", v=v.code)
    if side == "left":  # a[i] < v, NaN last
        test = "({a} < {v}) | (np.isnan({v}) & ~np.isnan({a}))"
    else:  # not (v < a)
        test = "~(({v} < {a}) | (np.isnan({a}) & ~np.isnan({v})))"
    code = ctx.parse("np.count_nonzero(%s, axis=-1)" % test, a=rows, v=vals)
    return code, Val.array(q, True, "i")


@register(np.searchsorted, note="a batched sorted array counts per row (no sorter=)")
def searchsorted_rule(site: CallSite) -> Out:
    b = site.bind(np.searchsorted)
    a, v = b.get("a"), b.get("v")
    assert a is not None and v is not None
    for name in ("side", "sorter"):
        arg = b.get(name)
        if arg is not None and arg.batched:
            raise no_rule(site, f"a batched {name}= in np.searchsorted", "batch only a and v")
    if not a.batched:
        return b.render(), Val.array(v.rank, v.batched, "i")
    _vector(site, a, "np.searchsorted's sorted array")
    if b.value("sorter", None) is not None:
        raise no_rule(site, "np.searchsorted with sorter= and a batched array", "sort a first")
    side = b.value("side", "left")
    if side not in ("left", "right"):
        raise site.unsupported(f"np.searchsorted with side={side!r}")
    return _count_below(site, a, v, side)


@register(np.digitize, note="x batched; batched bins fall back to the loop")
def digitize_rule(site: CallSite) -> Out:
    b = site.bind(np.digitize)
    x, bins = b.get("x"), b.get("bins")
    assert x is not None and bins is not None
    if bins.batched or (b.get("right") is not None and b.get("right").batched):  # type: ignore[union-attr]
        raise no_rule(
            site,
            "np.digitize with batched bins (whether they rise or fall depends on the data)",
            "use np.searchsorted on increasing bins",
        )
    return b.render(), Val.array(x.rank, x.batched, "i")


@register(np.interp, note="x, xp and fp batched in any mix (no period=)")
def interp_rule(site: CallSite) -> Out:
    b = site.bind(np.interp)
    x, xp, fp = b.get("x"), b.get("xp"), b.get("fp")
    assert x is not None and xp is not None and fp is not None
    others = [b.get(n) for n in ("left", "right", "period")]
    if not xp.batched and not fp.batched and not any(a is not None and a.batched for a in others):
        return b.render(), Val.array(x.rank, x.batched)
    if b.value("period", None) is not None:
        raise no_rule(site, "np.interp with period= and batched sample points", "omit period=")
    _vector(site, xp, "np.interp's xp")
    _vector(site, fp, "np.interp's fp")
    if x.rank is None:
        raise site.unsupported("cannot infer the rank of np.interp's x")
    ctx = site.ctx
    q = x.rank
    # The sample rows as (B, 1, ..., K) against the values as (..., 1).

    def rows(a: Arg) -> cst.BaseExpression:
        return ctx.expand(a.code, q) if a.batched else a.code

    xs = ctx.parse("np.asarray({x})[..., None]", x=x.code)
    XP, FP = rows(xp), rows(fp)
    # j: the last sample point at or below x, kept inside [0, K - 2].
    j = ctx.parse(
        "np.clip(np.count_nonzero({xp} <= {x}, axis=-1, keepdims=True) - 1, 0, " "max({k} - 2, 0))",
        xp=XP,
        x=xs,
        k=ctx.parse("{xp}.shape[-1]", xp=xp.code),
    )
    j1 = ctx.parse("np.minimum({j} + 1, {xp}.shape[-1] - 1)", j=j, xp=xp.code)

    def at(arr: cst.BaseExpression, idx: cst.BaseExpression) -> cst.BaseExpression:
        # Rows and indices brought to one shape (either may lack the batch axis).
        lead = ctx.parse("np.broadcast_shapes({r}.shape[:-1], {i}.shape[:-1])", r=arr, i=idx)
        return ctx.parse(
            "np.take_along_axis(np.broadcast_to({r}, {s} + {r}.shape[-1:]), "
            "np.broadcast_to({i}, {s} + (1,)), axis=-1)[..., 0]",
            r=arr,
            i=idx,
            s=lead,
        )

    x0, x1 = at(XP, j), at(XP, j1)
    f0, f1 = at(FP, j), at(FP, j1)
    # NumPy's formula: slope * (x - x0) + f0, the slope 0 where x0 == x1.
    inner = ctx.parse(
        "np.where({x1} == {x0}, {f0}, ({f1} - {f0}) / np.where({x1} == {x0}, 1, {x1} - {x0}) "
        "* ({x} - {x0}) + {f0})",
        x0=x0,
        x1=x1,
        f0=f0,
        f1=f1,
        x=x.code,
    )
    first = ctx.parse("{r}[..., 0]", r=XP)
    last = ctx.parse("{r}[..., -1]", r=XP)
    left = b.get("left")
    right = b.get("right")
    lo = ctx.parse("{r}[..., 0]", r=FP) if left is None or left.static is None else left.code
    hi = ctx.parse("{r}[..., -1]", r=FP) if right is None or right.static is None else right.code
    if left is not None and left.batched:
        lo = ctx.expand(left.code, q)
    if right is not None and right.batched:
        hi = ctx.expand(right.code, q)
    code = ctx.parse(
        "np.where({x} < {first}, {lo}, np.where({x} > {last}, {hi}, {inner}))",
        x=x.code,
        first=first,
        last=last,
        lo=lo,
        hi=hi,
        inner=inner,
    )
    return code, Val.array(q, True)


# ------------------------------------------------------------- polynomials
@register(np.polyval, note="coefficients and points batched in any mix")
def polyval_rule(site: CallSite) -> Out:
    b = site.bind(np.polyval)
    p, x = b.get("p"), b.get("x")
    assert p is not None and x is not None
    if not p.batched:  # Horner's rule over the (batched) points, as NumPy runs it
        return b.render(), Val.array(x.rank, x.batched)
    _vector(site, p, "np.polyval's coefficients")
    if x.rank is None:
        raise site.unsupported("cannot infer the rank of np.polyval's x")
    ctx = site.ctx
    coeffs = ctx.expand(p.code, x.rank)
    powers = ctx.parse("np.arange({p}.shape[-1] - 1, -1, -1)", p=p.code)
    code = ctx.parse(
        "np.sum({c} * np.asarray({x})[..., None] ** {k}, axis=-1)", c=coeffs, x=x.code, k=powers
    )
    return code, Val.array(x.rank, True)


# ------------------------------------------------------ integrals, differences
@register(np.trapezoid, note="y and x batched in any mix; x 1-D or shaped like y")
def trapezoid_rule(site: CallSite) -> Out:
    b = site.bind(np.trapezoid)
    y, x = b.get("y"), b.get("x")
    assert y is not None
    dx = b.get("dx")
    if not site.any_batched:
        return b.render(), Val.array(None if y.rank is None else y.rank - 1)
    if dx is not None and dx.batched:
        raise no_rule(site, "np.trapezoid with a batched dx", "pass x= instead")
    r = _need_rank(site, y)
    axis = b.value("axis", -1)
    if not isinstance(axis, int) or not -r <= axis < r:
        raise site.unsupported(f"axis {axis!r} is out of range for a rank-{r} example")
    k = axis % r
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not y and a is not x):
        raise site.unsupported("a batched axis in np.trapezoid")
    if x is None or not x.batched:
        # The axis counted from the right means the same for y (batched) and x (not).
        b.set("axis", literal(k - r))
        return b.render(), Val.array(r - 1, True)
    xr = _need_rank(site, x)
    if xr == 1 and r > 1:
        # A 1-D x runs along the axis: give it that place among y's axes.
        x_code = site.ctx.parse(
            "{x}[(slice(None),) + (None,) * %d + (slice(None),) + (None,) * %d]" % (k, r - 1 - k),
            x=x.code,
        )
    elif xr == r:
        x_code = x.code
    else:
        raise site.unsupported("np.trapezoid with x neither 1-D nor of y's rank")
    y_code = site.ctx.expand(y.code, 0)
    b.set("y", y_code)
    b.set("x", x_code)
    b.set("axis", literal(k - r))
    return b.render(), Val.array(r - 1, True)


@register(np.ediff1d, note="to_begin/to_end unbatched")
def ediff1d_rule(site: CallSite) -> Out:
    b = site.bind(np.ediff1d)
    x = b.get("ary")
    assert x is not None
    ends = [b.get("to_begin"), b.get("to_end")]
    if any(e is not None and e.batched for e in ends):
        raise no_rule(site, "np.ediff1d with a batched to_begin/to_end", "use np.concatenate")
    if not x.batched:
        return b.render(), Val.array(1)
    ctx = site.ctx
    _need_rank(site, x)
    flat = ctx.parse("{x}.reshape({x}.shape[0], -1)", x=x.code)
    parts = [ctx.parse("np.diff({f}, axis=1)", f=flat)]
    for arg, front in ((ends[0], True), (ends[1], False)):
        if arg is None or arg.static is None:
            continue
        # ediff1d casts the ends to the array's dtype (refusing an unsafe cast, as NumPy).
        piece = ctx.parse(
            "np.broadcast_to(np.asarray({e}).ravel().astype({x}.dtype, casting='same_kind'), "
            "({x}.shape[0], np.size({e})))",
            e=arg.code,
            x=x.code,
        )
        parts.insert(0, piece) if front else parts.append(piece)
    if len(parts) == 1:
        return parts[0], Val.array(1, True, x.val.dtype)
    code = ctx.parse("np.concatenate({p}, axis=1)", p=cst.List([cst.Element(p) for p in parts]))
    return code, Val.array(1, True, x.val.dtype)


register(np.unwrap, family="signal", note="discont/period unbatched")(
    axis_rule(np.unwrap, False, lambda r, axis, b: r)
)


# --------------------------------------------------- polynomial arithmetic
def _front_padded(site: CallSite, p: Arg, length: cst.BaseExpression) -> cst.BaseExpression:
    """Coefficients (highest power first) padded at the front to ``length``, batched."""
    ctx = site.ctx
    if p.batched:
        return ctx.parse("np.pad({p}, [(0, 0), ({n} - {p}.shape[-1], 0)])", p=p.code, n=length)
    return ctx.parse("np.pad(np.atleast_1d({p}), ({n} - np.size({p}), 0))", p=p.code, n=length)


def _poly_sum(subtract: bool) -> Any:
    fn = np.polysub if subtract else np.polyadd

    def rule(site: CallSite) -> Out:
        a, c = site.args[0], site.args[1]
        if not site.any_batched:
            return site.render(), Val.array(1)
        _vector(site, a, f"np.{fn.__name__}'s first argument")
        _vector(site, c, f"np.{fn.__name__}'s second argument")
        ctx = site.ctx
        n = ctx.parse("max(np.shape({a})[-1], np.shape({c})[-1])", a=a.code, c=c.code)
        op = "-" if subtract else "+"
        code = ctx.parse(
            "{x} %s {y}" % op, x=_front_padded(site, a, n), y=_front_padded(site, c, n)
        )
        return code, Val.array(1, True)

    return rule


register(np.polyadd, note="coefficient vectors batched in any mix")(_poly_sum(False))
register(np.polysub, note="coefficient vectors batched in any mix")(_poly_sum(True))


@register(np.polymul, note="a full convolution of the coefficients")
def polymul_rule(site: CallSite) -> Out:
    a, c = site.args[0], site.args[1]
    if not site.any_batched:
        return site.render(), Val.array(1)
    _vector(site, a, "np.polymul's first argument")
    _vector(site, c, "np.polymul's second argument")
    full = _full(site, a, c, site.ctx.parse("{v}[..., ::-1]", v=c.code))
    return full, Val.array(1, True)


@register(np.polyder, note="m unbatched")
def polyder_rule(site: CallSite) -> Out:
    b = site.bind(np.polyder)
    p = b.get("p")
    assert p is not None
    m_arg = b.get("m")
    if m_arg is not None and m_arg.batched:
        raise site.unsupported("a batched m in np.polyder")
    if not p.batched:
        return b.render(), Val.array(1)
    _vector(site, p, "np.polyder's coefficients")
    m = b.value("m", 1)
    if not isinstance(m, int) or m < 0:
        raise site.unsupported("np.polyder with m that is not a non-negative int")
    ctx = site.ctx
    code = p.code
    for _ in range(m):  # each derivative: drop the constant, scale by the powers
        code = ctx.parse("{p}[:, :-1] * np.arange({p}.shape[1] - 1, 0, -1)", p=code)
    return code, Val.array(1, True)


@register(np.polyfit, note="y batched with x unbatched: one least-squares fit for all")
def polyfit_rule(site: CallSite) -> Out:
    b = site.bind(np.polyfit)
    x, y = b.get("x"), b.get("y")
    assert x is not None and y is not None
    if not site.any_batched:
        return b.render(), Val.array(None if y.rank is None else y.rank)
    others = [a for a in [*site.args, *site.kwargs.values()] if a is not x and a is not y]
    if x.batched or any(a.batched for a in others):
        raise no_rule(site, "np.polyfit with batched x, deg or weights", "")
    if b.value("full", False) or b.value("cov", False):
        raise no_rule(site, "np.polyfit(..., full=True or cov=True) under vmap", "")
    if y.rank != 1:
        raise no_rule(site, "np.polyfit with several columns per example under vmap", "")
    b.set("y", site.ctx.parse("{y}.T", y=y.code))
    return site.ctx.parse("{f}.T", f=b.render()), Val.array(1, True)


# ------------------------------------------------------------- membership
@register(np.isin, note="test elements batched or not")
def isin_rule(site: CallSite) -> Out:
    b = site.bind(np.isin)
    el, test = b.get("element"), b.get("test_elements")
    assert el is not None and test is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not el and a is not test):
        raise site.unsupported("a batched option to np.isin")
    if not test.batched:
        return b.render(), Val.array(el.rank, el.batched, "b")
    if el.rank is None:
        raise site.unsupported("cannot infer the rank of np.isin's element")
    ctx = site.ctx
    rows = ctx.expand(ctx.parse("{t}.reshape({t}.shape[0], -1)", t=test.code), el.rank)
    found = ctx.parse("np.any(np.asarray({e})[..., None] == {t}, axis=-1)", e=el.code, t=rows)
    if b.value("invert", False):
        found = ctx.parse("~{f}", f=found)
    return found, Val.array(el.rank, True, "b")


@register(np.unravel_index, note="shape unbatched")
def unravel_index_rule(site: CallSite) -> Out:
    b = site.bind(np.unravel_index)
    idx, shape = b.get("indices"), b.get("shape")
    assert idx is not None and shape is not None
    if shape.batched or (b.get("order") is not None and b.get("order").batched):  # type: ignore[union-attr]
        raise site.unsupported("a batched shape in np.unravel_index")
    n = len(shape.static) if isinstance(shape.static, (tuple, list)) else None
    if n is None and shape.val.children:
        n = len(shape.val.children)
    val = Val.array(idx.rank, idx.batched, "i")
    if n is None:
        if idx.batched:
            raise site.unsupported("cannot infer the length of np.unravel_index's shape")
        return b.render(), Val("tree", container=tuple)
    return b.render(), Val.tree(tuple, [(i, val) for i in range(n)])


@register(np.ravel_multi_index, note="a literal tuple of index arrays; dims unbatched")
def ravel_multi_index_rule(site: CallSite) -> Out:
    from .elementwise import align

    b = site.bind(np.ravel_multi_index)
    multi = b.get("multi_index")
    assert multi is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not multi):
        raise site.unsupported("a batched dims/mode/order in np.ravel_multi_index")
    if not multi.batched:
        return b.render(), Val.array(None, dtype="i")
    code = multi.code
    if not isinstance(code, (cst.Tuple, cst.List)) or multi.val.kind != "tree":
        raise site.unsupported(
            "np.ravel_multi_index of a batched value that is not a literal tuple"
        )
    parts = [Arg(e.value, v) for e, (_, v) in zip(code.elements, multi.val.children)]
    codes, val = align(site.ctx, parts)
    b.set("multi_index", cst.Tuple([cst.Element(c) for c in codes]))
    return b.render(), Val.array(val.rank, True, "i")


def _bits(fn: Any) -> Any:
    base = axis_rule(fn, True, lambda r, axis, b: 1 if axis is None else r)

    def rule(site: CallSite) -> Out:
        code, val = base(site)
        return code, Val.array(val.rank, val.batched, "u")

    return rule


register(np.packbits, note="axis counted per example; None flattens")(_bits(np.packbits))
register(np.unpackbits, note="axis counted per example; None flattens")(_bits(np.unpackbits))


@register(np.polyint, note="m and a scalar k unbatched")
def polyint_rule(site: CallSite) -> Out:
    b = site.bind(np.polyint)
    p = b.get("p")
    assert p is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not p):
        raise site.unsupported("a batched m or k in np.polyint")
    if not p.batched:
        return b.render(), Val.array(1)
    _vector(site, p, "np.polyint's coefficients")
    m, k = b.value("m", 1), b.value("k", None)
    if not isinstance(m, int) or m < 0:
        raise site.unsupported("np.polyint with m that is not a non-negative int")
    if k is None:
        k = 0
    if not isinstance(k, (int, float, complex)):
        raise no_rule(site, "np.polyint with a sequence of constants under vmap", "")
    ctx = site.ctx
    code = p.code
    for _ in range(m):  # divide by the new powers, append the constant
        code = ctx.parse(
            "np.concatenate([{p} / np.arange({p}.shape[1], 0, -1), "
            "np.full(({p}.shape[0], 1), %r)], axis=1)" % k,
            p=code,
        )
    return code, Val.array(1, True)


@register(np.lexsort, note="keys a literal tuple of 1-D keys or a (k, N) array")
def lexsort_rule(site: CallSite) -> Out:
    b = site.bind(np.lexsort)
    keys = b.get("keys")
    assert keys is not None
    axis_arg = b.get("axis")
    if axis_arg is not None and (axis_arg.batched or b.value("axis") not in (-1, None)):
        if site.any_batched:
            raise no_rule(site, "np.lexsort with an axis under vmap", "")
    if not site.any_batched:
        return b.render(), Val.array(1, dtype="i")
    ctx = site.ctx
    if isinstance(keys.code, (cst.Tuple, cst.List)) and keys.val.kind == "tree":
        parts = [Arg(e.value, v) for e, (_, v) in zip(keys.code.elements, keys.val.children)]
        if any(p.rank != 1 for p in parts):
            raise no_rule(site, "np.lexsort of keys that are not 1-D under vmap", "")
        first = next(p for p in parts if p.batched)
        codes = [
            (
                p.code
                if p.batched
                else ctx.parse("np.broadcast_to({k}, {f}.shape)", k=p.code, f=first.code)
            )
            for p in parts
        ]
        b.set("keys", cst.Tuple([cst.Element(c) for c in codes]))
        return b.render(), Val.array(1, True, "i")
    if keys.rank != 2:
        raise no_rule(site, "np.lexsort of keys that are not (k, N) under vmap", "")
    b.set("keys", ctx.parse("np.swapaxes({k}, 0, 1)", k=keys.code))
    return b.render(), Val.array(1, True, "i")
