"""Dtype and shape queries: the answer depends on dtypes or per-example shapes only, so
it is the same for every example and stays unbatched (np.result_type(x), np.finfo(x.dtype),
np.iterable(x), np.triu_indices_from(x), window functions of a fixed length).
"""

from __future__ import annotations

import numpy as np

from astvmap.values import NOVALUE, OBJECT, SCALAR, Val

from .registry import CallSite, Out, literal, register


@register(
    np.result_type,
    np.can_cast,
    np.promote_types,
    np.isdtype,
    np.issubdtype,
    np.finfo,
    np.iinfo,
    np.broadcast_shapes,
    note="depends on dtypes or shapes only: unbatched",
)
def dtype_query_rule(site: CallSite) -> Out:
    for a in [*site.args, *site.kwargs.values()]:
        if a.batched and site.callee in (np.finfo, np.iinfo, np.broadcast_shapes, np.isdtype):
            raise site.unsupported(
                f"np.{site.callee.__name__} of a batched array", "pass its dtype: x.dtype"
            )
    kind = {np.can_cast: SCALAR, np.isdtype: SCALAR, np.issubdtype: SCALAR}.get(site.callee)
    if kind is not None:
        return site.render(), Val(SCALAR, rank=0, dtype="b")
    if site.callee is np.broadcast_shapes:
        return site.render(), Val(OBJECT)
    return site.render(), Val(OBJECT)


@register(np.iterable, note="per example: rank > 0")
def iterable_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val(SCALAR, rank=0, dtype="b")
    if x.rank is None:
        raise site.unsupported("cannot infer the rank of the array")
    return literal(x.rank > 0), Val.const(x.rank > 0)


@register(np.isscalar, note="per example: a batched array's examples are scalars at rank 0")
def isscalar_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val(SCALAR, rank=0, dtype="b")
    if x.rank is None:
        raise site.unsupported("cannot infer the rank of the array")
    return literal(x.rank == 0), Val.const(x.rank == 0)


def _indices_from(site: CallSite) -> Out:
    """triu/tril_indices_from(arr, k) and diag_indices_from(arr): from arr's shape only."""
    fn = site.callee
    b = site.bind(fn)
    x = b.get("arr")
    assert x is not None
    if not x.batched:
        n = 2 if fn is not np.diag_indices_from else (x.rank or 2)
        return b.render(), Val.tree(tuple, [(i, Val.array(1)) for i in range(n)])
    k = b.get("k")
    if k is not None and k.batched:
        raise site.unsupported(f"a batched k in np.{fn.__name__}")
    r = x.rank
    if r is None:
        raise site.unsupported("cannot infer the rank of the array")
    ctx = site.ctx
    if fn is np.diag_indices_from:
        code = ctx.parse("np.diag_indices({x}.shape[-1], %d)" % r, x=x.code)
        return code, Val.tree(tuple, [(i, Val.array(1)) for i in range(r)])
    if r != 2:
        raise site.unsupported(f"np.{fn.__name__} of an array that is not 2-D (NumPy raises)")
    base = "np.triu_indices" if fn is np.triu_indices_from else "np.tril_indices"
    kcode = k.code if k is not None else literal(0)
    code = ctx.parse("%s({x}.shape[-2], {k}, {x}.shape[-1])" % base, x=x.code, k=kcode)
    return code, Val.tree(tuple, [(0, Val.array(1)), (1, Val.array(1))])


register(np.triu_indices_from, np.tril_indices_from, np.diag_indices_from)(_indices_from)


@register(
    np.bartlett,
    np.blackman,
    np.hamming,
    np.hanning,
    np.kaiser,
    np.indices,
    note="a fixed length/shape: unbatched (a batched one would make the shape data-dependent)",
)
def fixed_creation_rule(site: CallSite) -> Out:
    if site.any_batched:
        raise site.unsupported(
            f"np.{site.callee.__name__} with batched arguments",
            "use a length and parameters that are the same for every example",
        )
    if site.callee is np.indices:
        dims = site.args[0].static if site.args else NOVALUE
        rank = len(dims) + 1 if isinstance(dims, (tuple, list)) else None
        return site.render(), Val.array(rank)
    return site.render(), Val.array(1)
