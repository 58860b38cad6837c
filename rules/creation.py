"""Array creation: zeros/ones/empty/full/arange/linspace/eye/identity stay unbatched
unless an argument is batched; ``*_like`` of a batched array is batched;
``np.array([a, b, c])`` of batched values stacks them.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, NOVALUE, SCALAR, TREE, Val

from .elementwise import align
from .registry import Arg, CallSite, Out, register
from .shape_ops import _shape_elements


def _shape_rank(site: CallSite, shape: Arg | None) -> int | None:
    if shape is None:
        return None
    if shape.batched:
        raise site.unsupported(
            "an array whose shape depends on the batch",
            "make the shape the same for every example",
        )
    return _shape_elements(site, shape)[1]


def _fresh(rank: int | None, batched: bool = False) -> Val:
    return Val.array(rank, batched)


@register(np.zeros, np.ones, np.empty)
def filled_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    rank = _shape_rank(site, b.get("shape"))
    if site.any_batched:
        raise site.unsupported(f"a batched argument to {site.callee.__name__}")
    return b.render(), _fresh(rank)


@register(np.full)
def full_rule(site: CallSite) -> Out:
    b = site.bind(np.full)
    shape, fill = b.get("shape"), b.get("fill_value")
    assert shape is not None and fill is not None
    rank = _shape_rank(site, shape)
    if not fill.batched:
        return b.render(), _fresh(rank)
    if rank is None or fill.rank is None:
        raise site.unsupported("cannot infer the ranks in np.full with a batched fill value")
    dims, _ = _shape_elements(site, shape)
    fill_code = site.ctx.expand(fill.code, rank - fill.rank)
    target = cst.Tuple(
        [cst.Element(site.ctx.batch_size())]
        + [
            cst.StarredElement(d.value) if isinstance(d, cst.StarredElement) else cst.Element(d)
            for d in dims
        ]
    )
    dtype = b.get("dtype")
    code = site.ctx.parse("np.broadcast_to({f}, {t})", f=fill_code, t=target)
    if dtype is not None:
        code = site.ctx.parse("{c}.astype({d})", c=code, d=dtype.code)
    else:
        code = site.ctx.parse("{c}.copy()", c=code)
    return code, _fresh(rank, True)


@register(np.zeros_like, np.ones_like, np.empty_like)
def like_rule(site: CallSite) -> Out:
    x = site.args[0]
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
        raise site.unsupported(f"a batched argument other than the array to {site.callee.__name__}")
    if "shape" in site.kwargs and x.batched:
        raise site.unsupported("shape= with a batched prototype array")
    return site.render(), _fresh(x.rank, x.batched)


@register(np.full_like)
def full_like_rule(site: CallSite) -> Out:
    b = site.bind(np.full_like)
    x, fill = b.get("a"), b.get("fill_value")
    assert x is not None and fill is not None
    if not fill.batched:
        return b.render(), _fresh(x.rank, x.batched)
    if not x.batched:
        raise site.unsupported(
            "np.full_like of an unbatched array with a batched fill value",
            "use np.broadcast_to(fill, shape) or multiply np.ones_like(...) by the value",
        )
    codes, val = align(site.ctx, [x, fill])
    b.set("fill_value", codes[1])
    return b.render(), _fresh(x.rank, True)


@register(np.arange, np.eye, np.identity, np.logspace, np.geomspace, np.tri)
def range_like_rule(site: CallSite) -> Out:
    if site.any_batched:
        raise site.unsupported(
            f"np.{site.callee.__name__} with batched arguments makes arrays whose shape "
            "depends on the data",
            "use a bound that is the same for every example",
        )
    name = site.callee.__name__
    rank = 2 if name in ("eye", "identity", "tri") else 1
    return site.render(), _fresh(rank)


@register(np.linspace)
def linspace_rule(site: CallSite) -> Out:
    b = site.bind(np.linspace)
    start, stop = b.get("start"), b.get("stop")
    assert start is not None and stop is not None
    others = [a for a in [*site.args, *site.kwargs.values()] if a is not start and a is not stop]
    if any(a.batched for a in others):
        raise site.unsupported(
            "np.linspace with a batched num/axis", "use a fixed number of points"
        )
    if b.value("retstep", False) if "retstep" in b else False:
        raise site.unsupported("np.linspace(..., retstep=True) under vmap")
    if not site.any_batched:
        ranks = [a.rank for a in (start, stop)]
        return b.render(), _fresh(None if None in ranks else max(ranks) + 1)  # type: ignore[operator]
    codes, val = align(site.ctx, [start, stop])
    if val.rank is None:
        raise site.unsupported("cannot infer the rank of np.linspace's bounds")
    axis = b.value("axis", 0)
    if not isinstance(axis, int) or not -(val.rank + 1) <= axis <= val.rank:
        raise site.unsupported(f"axis {axis!r} is out of range in np.linspace")
    b.set("start", codes[0])
    b.set("stop", codes[1])
    b.set(
        "axis",
        (
            cst.Integer(str(axis + 1 if axis >= 0 else axis))
            if axis >= 0
            else cst.parse_expression(str(axis))
        ),
    )
    return b.render(), _fresh(val.rank + 1, True)


def _tree_depth_vals(val: Val) -> list[Val]:
    if val.kind == TREE and val.element is None:
        out = []
        for _, child in val.children:
            out.extend(_tree_depth_vals(child))
        return out
    return [val]


def _stacked(site: CallSite, arg: Arg) -> tuple[cst.BaseExpression, int]:
    """``[a, b, c]`` of batched values as one batched array, and its per-example rank."""
    code, val = arg.code, arg.val
    if val.kind == TREE and val.element is not None:
        elem = val.element
        if elem.kind == TREE and elem.element is not None and elem.batched:
            # [[...] for row in M]: each inner list stacked, then the outer one.
            name = site.ctx.program.fresh("_row")  # type: ignore[attr-defined]
            inner, rank = _stacked(site, Arg(cst.Name(name), elem))
            rows = site.ctx.parse(f"[{{inner}} for {name} in {{xs}}]", inner=inner, xs=code)
            return site.ctx.parse("np.stack({xs}, axis=1)", xs=rows), rank + 1
        if elem.kind == TREE:
            raise site.unsupported(
                "np.array of a comprehension of lists", "build each row with np.array first"
            )
        if elem.rank is None:
            raise site.unsupported("cannot infer the rank of the comprehension's elements")
        return site.ctx.parse("np.stack({xs}, axis=1)", xs=code), elem.rank + 1
    if (
        val.kind == TREE
        and not isinstance(code, (cst.List, cst.Tuple))
        and val.children
        and val.container in (list, tuple)
    ):
        kids = [v for _, v in val.children]
        if all(v.kind == ARRAY and v.batched for v in kids) and len({v.rank for v in kids}) == 1:
            rank = kids[0].rank
            if rank is not None:  # a sequence of batched arrays of one rank, as it is
                return site.ctx.parse("np.stack({xs}, axis=1)", xs=code), rank + 1
        items = _written_out(site, code, val)
        if items is not None:
            return _stacked(site, Arg(items, val))
    if val.kind == TREE and isinstance(code, (cst.List, cst.Tuple)):
        parts = []
        ranks = set()
        any_unbatched = False
        for e, (_, child) in zip(code.elements, val.children):
            if child.kind == TREE:
                c, r = (
                    _stacked(site, Arg(e.value, child))
                    if child.batched
                    else (site.ctx.parse("np.array({x})", x=e.value), _literal_rank(child))
                )
                if not child.batched:
                    any_unbatched = True
                parts.append(c)
                ranks.add(r)
                continue
            if not child.batched:
                any_unbatched = True
            ranks.add(0 if child.kind == SCALAR else child.rank)
            parts.append(e.value)
        if None in ranks or len(ranks) != 1:
            raise site.unsupported(
                "np.array of values with different or unknown per-example ranks",
                "make every element the same shape",
            )
        rank = ranks.pop()
        items = cst.List([cst.Element(p) for p in parts])
        if any_unbatched:
            # Unbatched entries are broadcast to the batch (Python numbers become arrays).
            spread = cst.Call(
                func=site.ctx.parse("np.broadcast_arrays"), args=[cst.Arg(p) for p in parts]
            )
            return site.ctx.parse("np.stack({xs}, axis=1)", xs=spread), rank + 1
        return site.ctx.parse("np.stack({xs}, axis=1)", xs=items), rank + 1
    raise site.unsupported("np.array of a batched sequence that is not a literal list")


@register(np.array, np.asarray, np.asanyarray, np.ascontiguousarray)
def array_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    obj = site.args[0] if site.args else b.get("object") or b.get("a")
    assert obj is not None
    others = [a for a in [*site.args, *site.kwargs.values()] if a is not obj]
    if any(a.batched for a in others):
        raise site.unsupported("a batched dtype or option in np.array")
    if not obj.batched:
        rank = obj.rank if obj.val.kind in (ARRAY, SCALAR) else _literal_rank(obj.val)
        return b.render(), _fresh(rank)
    if obj.val.kind in (ARRAY, SCALAR):
        if "ndmin" in b:
            raise site.unsupported("np.array(..., ndmin=) of a batched value", "use np.atleast_2d")
        return b.render(), Val.array(
            obj.rank, True, _result_kind(site, b.get("dtype"), obj.val.dtype)
        )
    code, rank = _stacked(site, obj)
    dtype = b.get("dtype")
    if dtype is not None:
        code = site.ctx.parse("{c}.astype({d}, copy=False)", c=code, d=dtype.code)
    return code, _fresh(rank, True)


def _result_kind(site: CallSite, dtype: Arg | None, kind: str | None) -> str | None:
    """The dtype kind of ``np.array(x, dtype)``: the kind of ``dtype`` when it is known
    while transforming, ``x``'s own kind when there is no ``dtype``, else unknown."""
    if dtype is None:
        return kind
    known = dtype.val.static if dtype.val.is_static else dtype.val.sample
    if known is NOVALUE:
        return None
    if known is None:
        return kind
    try:
        out = np.dtype(known).kind
    except TypeError:
        return None
    if not dtype.val.is_static and dtype.val.origin is not None:
        site.ctx.program.guard(dtype.val.origin, known)  # type: ignore[attr-defined]
    return out


def _written_out(site: CallSite, code: cst.BaseExpression, val: Val) -> cst.List | None:
    """A list or tuple of known length held in a name (``a`` after ``a = [x, y]``, or a
    helper's parameter) written out item by item: ``[a[0], a[1]]``."""
    if val.element is not None or val.container not in (list, tuple) or not val.children:
        return None
    if not isinstance(code, (cst.Name, cst.Attribute)):
        return None  # an expression would be evaluated once per item
    if [k for k, _ in val.children] != list(range(len(val.children))):
        return None
    return cst.List(
        [cst.Element(site.ctx.parse("{x}[%d]" % i, x=code)) for i in range(len(val.children))]
    )


def _literal_rank(val: Val) -> int | None:
    if val.is_static:
        try:
            return np.ndim(val.static)
        except Exception:  # noqa: BLE001
            return None
    if val.kind == TREE and val.children:
        ranks = {_literal_rank(v) if v.kind == TREE else v.rank for _, v in val.children}
        if len(ranks) == 1 and None not in ranks:
            return ranks.pop() + 1  # type: ignore[operator]
    return None


@register(np.triu_indices, np.tril_indices, np.diag_indices)
def index_tuple_rule(site: CallSite) -> Out:
    if site.any_batched:
        raise site.unsupported(f"np.{site.callee.__name__} with batched arguments")
    count = 2
    if site.callee is np.diag_indices:
        ndim = site.args[1].static if len(site.args) > 1 else site.kwargs.get("ndim", None)
        count = ndim if isinstance(ndim, int) else 2
    return site.render(), Val.tree(tuple, [(i, Val.array(1)) for i in range(count)])


@register(np.vander, note="N and increasing unbatched")
def vander_rule(site: CallSite) -> Out:
    b = site.bind(np.vander)
    x = b.get("x")
    assert x is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise site.unsupported("a batched N or increasing in np.vander")
    if not x.batched:
        return b.render(), _fresh(2)
    if x.rank != 1:
        raise site.unsupported("np.vander of an array that is not 1-D (NumPy raises)")
    n = b.get("N")
    count = site.ctx.parse("{x}.shape[1]", x=x.code) if n is None or n.static is None else n.code
    powers = site.ctx.parse("np.arange({n})", n=count)
    if not b.value("increasing", False):
        powers = site.ctx.parse("{p}[::-1]", p=powers)
    # NumPy's result dtype: the points' dtype promoted with int (bool points count up).
    code = site.ctx.parse(
        "np.asarray({x}, dtype=np.promote_types({x}.dtype, int))[:, :, None] ** {p}",
        x=x.code,
        p=powers,
    )
    return code, _fresh(2, True)
