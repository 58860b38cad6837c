"""Discrete Fourier transforms (np.fft): every transform already maps over the axes it
is not asked to transform, so a batched input only needs its ``axis``/``axes`` moved
past the batch axis. ``axes=None`` means "every axis" (or the last ``len(s)``), which
for a batched input must be spelled out so that the batch axis is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from astvmap.values import Val

from .axis_ops import axis_rule
from .registry import CallSite, Out, literal, no_rule, register
from .shape_ops import _need_rank


def _same_rank(r: int, axis: object, b: object) -> int:
    return r


# One-axis transforms: fft(a, n=None, axis=-1, norm=None, out=None).
for _fn in (np.fft.fft, np.fft.ifft, np.fft.rfft, np.fft.irfft, np.fft.hfft, np.fft.ihfft):
    register(_fn, family="fft", note="n, axis, norm; a batched n is refused")(
        axis_rule(_fn, default_none_flattens=False, rank_of=_same_rank)
    )


def _axes_rule(fn: Callable, default_axes: tuple[int, ...] | None) -> Callable[[CallSite], Out]:
    """fft2/fftn and their inverses: ``fn(a, s=None, axes=..., norm=None, out=None)``."""

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        x = b.get("a")
        assert x is not None
        if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
            raise no_rule(site, f"a batched s= or axes= in np.fft.{fn.__name__}", "batch only a")
        if not x.batched:
            return b.render(), Val.array(x.rank)
        if "out" in b:
            raise site.unsupported(f"np.fft.{fn.__name__}(..., out=) under vmap")
        r = _need_rank(site, x)
        axes = b.value("axes", default_axes)
        s = b.value("s", None)
        if axes is None:
            axes = tuple(range(r)) if s is None else tuple(range(r - len(s), r))
        axes = tuple(axes)
        for k in axes:
            if not isinstance(k, int) or not -r <= k < r:
                raise site.unsupported(f"axis {k!r} is out of range for a rank-{r} example")
        b.set("axes", literal(tuple(k % r + 1 for k in axes)))
        return b.render(), Val.array(r, True)

    return rule


for _fn in (np.fft.fft2, np.fft.ifft2, np.fft.rfft2, np.fft.irfft2):
    register(_fn, note="s, axes, norm")(_axes_rule(_fn, (-2, -1)))
for _fn in (np.fft.fftn, np.fft.ifftn, np.fft.rfftn, np.fft.irfftn):
    register(_fn, note="s, axes, norm")(_axes_rule(_fn, None))


def _shift_rule(fn: Callable) -> Callable[[CallSite], Out]:
    """fftshift/ifftshift(x, axes=None): None shifts every (per-example) axis."""

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        x = b.get("x")
        assert x is not None
        if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
            raise no_rule(site, f"a batched axes= in np.fft.{fn.__name__}", "batch only x")
        if not x.batched:
            return b.render(), Val.array(x.rank)
        r = _need_rank(site, x)
        axes = b.value("axes", None)
        axes = tuple(range(r)) if axes is None else axes
        axes = axes if isinstance(axes, (tuple, list)) else (axes,)
        for k in axes:
            if not isinstance(k, int) or not -r <= k < r:
                raise site.unsupported(f"axis {k!r} is out of range for a rank-{r} example")
        b.set("axes", literal(tuple(k % r + 1 for k in axes)))
        return b.render(), Val.array(r, True)

    return rule


register(np.fft.fftshift)(_shift_rule(np.fft.fftshift))
register(np.fft.ifftshift)(_shift_rule(np.fft.ifftshift))


@register(np.fft.fftfreq, np.fft.rfftfreq, note="a batched d (sample spacing) scales per example")
def fftfreq_rule(site: CallSite) -> Out:
    """``fftfreq(n, d=1.0)``: n fixes the length (refused when batched); d only scales."""
    b = site.bind(site.callee)
    n, d = b.get("n"), b.get("d")
    if n is not None and n.batched:
        raise site.unsupported(
            f"np.fft.{site.callee.__name__} with a batched n (the length would depend on the data)"
        )
    if d is None or not d.batched:
        return b.render(), Val.array(1)
    if d.rank not in (0, None) or d.rank is None:
        raise site.unsupported("a batched d that is not a scalar")
    b.set("d", literal(1.0))
    return site.ctx.parse("{f} / {d}[:, None]", f=b.render(), d=d.code), Val.array(1, True)
