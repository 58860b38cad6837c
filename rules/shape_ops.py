"""Shape operations and array attributes: reshape, ravel, transpose, .T, .shape, ...

Per-example shapes are what the user's code sees: ``x.shape`` of a batched ``x``
is ``x.shape[1:]``; a reshape to ``(n, m)`` becomes a reshape to ``(B, n, m)``.
"""

from __future__ import annotations

import math
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, OBJECT, SCALAR, TREE, Val

from .reductions import normalise_axes
from .registry import Arg, CallSite, Out, literal, register


def shape_val(rank: int | None) -> Val:
    if rank is None:
        return Val(TREE, container=tuple)
    return Val.tree(tuple, [(i, Val(SCALAR, rank=0)) for i in range(rank)])


def array_attribute(
    ctx: Any, node: cst.Attribute, code: cst.BaseExpression, val: Val, attr: str
) -> Out:
    """``x.<attr>`` for an array ``x``."""
    r = val.rank
    if not val.batched:
        if attr == "shape":
            return node, shape_val(r)
        if attr == "ndim":
            return node, Val.const(r) if r is not None else Val(SCALAR, rank=0)
        if attr in ("size", "itemsize", "nbytes"):
            return node, Val(SCALAR, rank=0)
        if attr in ("T", "real", "imag", "mT"):
            return node, Val.array(r)
        if attr == "dtype":
            return node, dtype_val(val)
        return node, Val(ARRAY, rank=None)
    if r is None:
        raise ctx.unsupported(f"cannot infer the rank of the array whose .{attr} is taken")
    if attr == "shape":
        return ctx.parse("{x}.shape[1:]", x=code), shape_val(r)
    if attr == "ndim":
        return ctx.parse("{x}.ndim - 1", x=code), Val.const(r)
    if attr == "size":
        ctx.program.modules["math"] = math
        return ctx.parse("math.prod({x}.shape[1:])", x=code), Val(SCALAR, rank=0)
    if attr in ("real", "imag"):
        return node, Val.array(r, True)
    if attr == "mT":
        return node, Val.array(r, True)
    if attr == "T":
        if r < 2:
            return code, Val.array(r, True)
        if r == 2:
            return ctx.parse("{x}.mT", x=code), Val.array(r, True)
        axes = (0, *range(r, 0, -1))
        return ctx.parse("{x}.transpose%s" % (axes,), x=code), Val.array(r, True)
    if attr == "dtype":
        return node, dtype_val(val)
    if attr == "flat":
        # Read through: each example's elements in C order, as a vector (unpacking,
        # iterating, x.flat[i]). Writes through .flat are refused where they are made.
        return ctx.parse("{x}.reshape({x}.shape[0], -1)", x=code), Val.array(1, True, val.dtype)
    raise ctx.unsupported(f"the attribute .{attr} of a batched array")


def dtype_val(array: Val) -> Val:
    """``x.dtype``: an unbatched object whose integer attributes are known to be ints."""
    return Val(OBJECT, container=np.dtype, dtype=array.dtype)


# Attributes of a dtype that are Python ints (``x.dtype.itemsize * n`` stays scalar).
DTYPE_INT_ATTRIBUTES = frozenset({"itemsize", "alignment", "num"})


def _is_batched_shape(code: cst.BaseExpression) -> bool:
    """Is ``code`` the ``x.shape[1:]`` that ``.shape`` of a batched ``x`` becomes?"""
    if not isinstance(code, cst.Subscript) or len(code.slice) != 1:
        return False
    value, sl = code.value, code.slice[0].slice
    return (
        isinstance(value, cst.Attribute)
        and value.attr.value == "shape"
        and isinstance(sl, cst.Slice)
        and isinstance(sl.lower, cst.Integer)
        and sl.lower.value == "1"
        and sl.upper is None
        and sl.step is None
    )


def shape_item(ctx: Any, base_code: cst.BaseExpression, key: int) -> cst.BaseExpression | None:
    """``x.shape[k]`` of a batched ``x`` reads ``x.shape[k + 1]``, not ``x.shape[1:][k]``."""
    if isinstance(key, int) and not isinstance(key, bool) and _is_batched_shape(base_code):
        shape = base_code.value  # type: ignore[attr-defined]
        return cst.Subscript(
            value=shape,
            slice=[cst.SubscriptElement(cst.Index(literal(key + 1 if key >= 0 else key)))],
        )
    return None


def _batch_dim(ctx: Any, x: Arg) -> cst.BaseExpression:
    if isinstance(x.code, (cst.Name, cst.Attribute)):
        return ctx.parse("{x}.shape[0]", x=x.code)
    return ctx.batch_size()


def _shape_elements(site: CallSite, shape: Arg) -> tuple[list[cst.BaseExpression], int | None]:
    """The dims of a per-example shape argument as code, and their number."""
    code = shape.code
    if isinstance(code, (cst.Tuple, cst.List)) and not any(
        isinstance(e, cst.StarredElement) for e in code.elements
    ):
        return [e.value for e in code.elements], len(code.elements)
    if shape.val.kind == SCALAR or (shape.val.kind == ARRAY and shape.val.rank == 0):
        return [code], 1
    n = len(shape.val.children) if shape.val.kind == TREE and shape.val.children else None
    if isinstance(shape.val.static, tuple):
        n = len(shape.val.static)
    return [cst.StarredElement(code)], n  # type: ignore[list-item]


def _args_with(dims: list[Any]) -> list[cst.Arg]:
    out = []
    for d in dims:
        if isinstance(d, cst.StarredElement):
            out.append(cst.Arg(value=d.value, star="*"))
        else:
            out.append(cst.Arg(value=d))
    return out


@register(np.reshape)
def reshape_rule(site: CallSite) -> Out:
    b = site.bind(np.reshape)
    x, shape = b.get("a"), b.get("shape") or b.get("newshape")
    assert x is not None and shape is not None
    if x.batched and b.value("order", "C") not in ("C", None):
        raise site.unsupported(
            "reshape with order='F' under vmap", "transpose explicitly, then reshape"
        )
    dims, n = _shape_elements(site, shape)
    if shape.batched:
        raise site.unsupported("a reshape to a shape that depends on the batch")
    if not x.batched:
        return b.render(), Val.array(n)
    new_shape = cst.Tuple(
        [cst.Element(_batch_dim(site.ctx, x))]
        + [
            cst.StarredElement(d.value) if isinstance(d, cst.StarredElement) else cst.Element(d)
            for d in dims
        ]
    )
    b.set("shape" if "shape" in b else "newshape", new_shape)
    return b.render(), Val.array(n, True)


@register(methods=("reshape",))
def reshape_method(site: CallSite) -> Out:
    x = site.args[0]
    if x.batched and "order" in site.kwargs and site.kwargs["order"].static not in ("C", None):
        raise site.unsupported(
            "reshape with order='F' under vmap", "transpose explicitly, then reshape"
        )
    rest = site.args[1:]
    if any(a.batched for a in rest):
        raise site.unsupported("a reshape to a shape that depends on the batch")
    if len(rest) == 1:
        dims, n = _shape_elements(site, rest[0])
    else:
        dims, n = [a.code for a in rest], len(rest)
        if "shape" in site.kwargs:
            dims, n = _shape_elements(site, site.kwargs["shape"])
    if not x.batched:
        return site.render(), Val.array(n)
    call = cst.Call(
        func=cst.Attribute(value=x.code, attr=cst.Name("reshape")),
        args=[cst.Arg(_batch_dim(site.ctx, x)), *_args_with(dims)]
        + [
            cst.Arg(a.code, keyword=cst.Name(k))
            for k, a in site.kwargs.items()
            if k not in ("shape",)
        ],
    )
    return call, Val.array(n, True)


@register(np.ravel, methods=("ravel", "flatten"))
def ravel_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val.array(1)
    code = site.ctx.parse("{x}.reshape({b}, -1)", x=x.code, b=_batch_dim(site.ctx, x))
    if site.method == "flatten":
        code = site.ctx.parse("{x}.copy()", x=code)
    return code, Val.array(1, True)


def _axes_literal(site: CallSite, axes: Any, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank - 1, -1, -1))
    norm = normalise_axes(site, tuple(axes), rank)
    if sorted(norm) != list(range(rank)):
        raise site.unsupported(f"axes {axes!r} are not a permutation of {rank} axes")
    return norm


@register(np.transpose, np.permute_dims)
def transpose_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    x = b.get("a")
    assert x is not None
    axes = b.value("axes", None)
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    perm = _axes_literal(site, axes, r)
    b.set("axes", literal((0, *(k + 1 for k in perm))))
    return b.render(), Val.array(r, True)


@register(methods=("transpose",))
def transpose_method(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    rest = site.args[1:]
    if len(rest) == 1 and isinstance(rest[0].static, (tuple, list)):
        axes = rest[0].static
    elif rest:
        if any(a.static is None or not isinstance(a.static, int) for a in rest):
            raise site.unsupported("transpose axes must be literal ints")
        axes = tuple(a.static for a in rest)
    else:
        axes = None
    perm = _axes_literal(site, axes, r)
    return site.ctx.parse("{x}.transpose%s" % ((0, *(k + 1 for k in perm)),), x=x.code), Val.array(
        r, True
    )


def _need_rank(site: CallSite, x: Arg) -> int:
    if x.rank is None:
        raise site.unsupported("cannot infer the rank of this batched array")
    return x.rank


def _shift(axis: Any) -> Any:
    if isinstance(axis, tuple):
        return tuple(_shift(a) for a in axis)
    if isinstance(axis, list):
        return [_shift(a) for a in axis]
    return axis + 1 if axis >= 0 else axis


def shifting_rule(fn: Any, axis_params: tuple[str, ...], rank_change: Any = 0) -> Any:
    """Rules whose only batch-dependence is an axis argument that shifts by one."""

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        first = next(iter(b.site.args), None)
        x = first
        assert x is not None
        others = [a for a in [*site.args[1:], *site.kwargs.values()]]
        if any(a.batched for a in others):
            raise site.unsupported(f"a batched argument other than the array to {fn.__name__}")
        values = {p: b.value(p) for p in axis_params if p in b}
        rank = x.rank if rank_change == 0 or x.rank is None else x.rank + rank_change(values)
        if not x.batched:
            return b.render(), Val.array(rank)
        r = _need_rank(site, x)
        for p, v in values.items():
            if v is None:
                raise site.unsupported(
                    f"{fn.__name__} with {p}=None under vmap", f"pass {p}= explicitly"
                )
            out_rank = rank if rank is not None else r
            check_rank = out_rank if fn is np.expand_dims else r
            _check(site, v, check_rank)
            b.set(p, literal(_shift(v)))
        return b.render(), Val.array(rank, True)

    return rule


def _check(site: CallSite, axis: Any, rank: int) -> None:
    for a in axis if isinstance(axis, (tuple, list)) else (axis,):
        if not isinstance(a, int) or not -rank <= a < rank:
            raise site.unsupported(
                f"axis {a!r} is out of range for a per-example array of rank {rank}"
            )


def _count(v: Any) -> int:
    return len(v) if isinstance(v, (tuple, list)) else 1


register(np.swapaxes, methods=("swapaxes",))(shifting_rule(np.swapaxes, ("axis1", "axis2")))
register(np.moveaxis)(shifting_rule(np.moveaxis, ("source", "destination")))
register(np.expand_dims)(shifting_rule(np.expand_dims, ("axis",), lambda v: _count(v["axis"])))


@register(np.squeeze, methods=("squeeze",))
def squeeze_rule(site: CallSite) -> Out:
    b = site.bind(np.squeeze)
    x = b.get("a")
    assert x is not None
    if not x.batched:
        return b.render(), Val.array(None)
    axis = b.value("axis", None)
    if axis is None:
        # The axes of length 1 of one example: read from the batch's shape at run time
        # (the batch axis itself stays, whatever its length). The rank depends on them.
        if x.rank == 0:
            return x.code, x.val
        code = site.ctx.parse(
            "{x}.reshape({x}.shape[:1] + tuple(d for d in {x}.shape[1:] if d != 1))", x=x.code
        )
        return code, Val.array(None, True)
    r = _need_rank(site, x)
    _check(site, axis, r)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(r - _count(axis), True)


@register(np.broadcast_to)
def broadcast_to_rule(site: CallSite) -> Out:
    b = site.bind(np.broadcast_to)
    x, shape = b.get("array"), b.get("shape")
    assert x is not None and shape is not None
    dims, n = _shape_elements(site, shape)
    if shape.batched:
        raise site.unsupported("broadcast_to a shape that depends on the batch")
    if not x.batched:
        return b.render(), Val.array(n)
    if n is None:
        raise site.unsupported("cannot infer the length of the target shape")
    r = _need_rank(site, x)
    b.set("array", site.ctx.expand(x.code, n - r))
    b.set(
        "shape",
        cst.Tuple(
            [
                cst.Element(
                    site.ctx.parse("{x}.shape[0]", x=x.code)
                    if isinstance(x.code, cst.Name)
                    else site.ctx.batch_size()
                )
            ]
            + [
                cst.StarredElement(d.value) if isinstance(d, cst.StarredElement) else cst.Element(d)
                for d in dims
            ]
        ),
    )
    return b.render(), Val.array(n, True)


def _atleast(n: int) -> Any:
    def rule(site: CallSite) -> Out:
        if len(site.args) != 1:
            raise site.unsupported("np.atleast_*d with several arrays", "call it once per array")
        x = site.args[0]
        if not x.batched:
            return site.render(), Val.array(None if x.rank is None else max(x.rank, n))
        r = _need_rank(site, x)
        if r >= n:
            return x.code, x.val
        if n == 3 and r == 2:  # (M, N) -> (M, N, 1)
            return site.ctx.parse("{x}[..., None]", x=x.code), Val.array(3, True)
        if n == 3 and r == 1:  # (N,) -> (1, N, 1)
            return site.ctx.parse("{x}[:, None, :, None]", x=x.code), Val.array(3, True)
        return site.ctx.expand(x.code, n - r), Val.array(n, True)

    return rule


register(np.atleast_1d)(_atleast(1))
register(np.atleast_2d)(_atleast(2))
register(np.atleast_3d)(_atleast(3))


@register(np.copy, methods=("copy",))
def copy_rule(site: CallSite) -> Out:
    x = site.args[0]
    return site.render(), Val.array(x.rank, x.batched)


@register(np.shape)
def shape_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), shape_val(x.rank)
    return site.ctx.parse("np.shape({x})[1:]", x=x.code), shape_val(_need_rank(site, x))


@register(np.ndim)
def ndim_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val.const(x.rank) if x.rank is not None else Val(SCALAR, rank=0)
    return literal(_need_rank(site, x)), Val.const(x.rank)


@register(np.size)
def size_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched or len(site.args) > 1 or site.kwargs:
        if x.batched:
            raise site.unsupported("np.size with an axis under vmap", "use x.shape[axis]")
        return site.render(), Val(SCALAR, rank=0)
    site.ctx.program.modules["math"] = math
    return site.ctx.parse("math.prod(np.shape({x})[1:])", x=x.code), Val(SCALAR, rank=0)


@register(methods=("item",))
def item_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val(SCALAR, rank=0)
    if len(site.args) > 1:
        raise site.unsupported(".item(index) of a batched array", "index it first")
    return site.ctx.parse("{x}.reshape({b})", x=x.code, b=_batch_dim(site.ctx, x)), Val.array(
        0, True
    )


# ---------------------------------------------------- matrices from vectors
def _zero_of(ctx: Any, x: cst.BaseExpression) -> cst.BaseExpression:
    return ctx.parse("np.zeros((), {x}.dtype)", x=x)


@register(np.diag, note="a vector's diagonal matrix or a matrix's diagonal, any k")
def diag_rule(site: CallSite) -> Out:
    b = site.bind(np.diag)
    v = b.get("v")
    assert v is not None
    k_arg = b.get("k")
    if k_arg is not None and k_arg.batched:
        raise site.unsupported("a batched k in np.diag (the shape would depend on the data)")
    r = v.rank
    if not v.batched:
        return b.render(), Val.array(None if r is None else (2 if r == 1 else 1))
    r = _need_rank(site, v)
    k = b.value("k", 0)
    if not isinstance(k, int):
        raise site.unsupported("np.diag with a k that is not an int")
    if r == 2:
        return site.ctx.parse("np.diagonal({v}, %d, axis1=1, axis2=2)" % k, v=v.code), Val.array(
            1, True
        )
    if r != 1:
        raise site.unsupported("np.diag of an array that is not 1-D or 2-D (NumPy raises)")
    return _diag_matrix(site, v.code, k), Val.array(2, True)


def _diag_matrix(site: CallSite, v: cst.BaseExpression, k: int) -> cst.BaseExpression:
    """A batch of np.diag(v, k): ``v`` padded to the matrix size, put on the k-th diagonal
    by a boolean mask (never a product with the identity, which turns inf into nan)."""
    ctx = site.ctx
    padded = ctx.parse("np.pad({v}, [(0, 0), (0, %d)])" % abs(k), v=v) if k else v
    size = ctx.parse("{v}.shape[1] + %d" % abs(k), v=v)
    mask = ctx.parse("np.eye({n}, k=%d, dtype=bool)" % k, n=size)
    along = "[:, :, None]" if k >= 0 else "[:, None, :]"
    return ctx.parse("np.where({m}, {p}%s, {z})" % along, m=mask, p=padded, z=_zero_of(ctx, v))


@register(np.diagflat)
def diagflat_rule(site: CallSite) -> Out:
    b = site.bind(np.diagflat)
    v = b.get("v")
    assert v is not None
    k_arg = b.get("k")
    if k_arg is not None and k_arg.batched:
        raise site.unsupported("a batched k in np.diagflat")
    if not v.batched:
        return b.render(), Val.array(2)
    _need_rank(site, v)
    flat = site.ctx.parse("{v}.reshape({v}.shape[0], -1)", v=v.code)
    return _diag_matrix(site, flat, b.value("k", 0)), Val.array(2, True)


def _triangle(fn: Any) -> Any:
    """triu/tril act on the last two axes, so a batch of matrices is already a stack;
    a vector per example is first repeated into a square (as NumPy does)."""

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        m = b.get("m")
        assert m is not None
        k_arg = b.get("k")
        if k_arg is not None and k_arg.batched:
            raise site.unsupported(f"a batched k in np.{fn.__name__}")
        r = m.rank
        if not m.batched:
            return b.render(), Val.array(None if r is None else max(r, 2))
        r = _need_rank(site, m)
        if r == 0:
            raise site.unsupported(f"np.{fn.__name__} of a scalar")
        if r == 1:
            b.set(
                "m",
                site.ctx.parse(
                    "np.broadcast_to({m}[:, None, :], {m}.shape[:1] + {m}.shape[1:] * 2)",
                    m=m.code,
                ),
            )
        return b.render(), Val.array(max(r, 2), True)

    return rule


register(np.triu)(_triangle(np.triu))
register(np.tril)(_triangle(np.tril))


@register(np.rot90, note="axes counted per example")
def rot90_rule(site: CallSite) -> Out:
    b = site.bind(np.rot90)
    m = b.get("m")
    assert m is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not m):
        raise site.unsupported("a batched k or axes in np.rot90")
    if not m.batched:
        return b.render(), Val.array(m.rank)
    r = _need_rank(site, m)
    axes = tuple(b.value("axes", (0, 1)))
    _check(site, axes, r)
    b.set("axes", literal(tuple(a % r + 1 for a in axes)))
    return b.render(), Val.array(r, True)


@register(np.broadcast_arrays, note="returns batched views, as NumPy does")
def broadcast_arrays_rule(site: CallSite) -> Out:
    from .elementwise import align

    if site.kwargs and any(a.batched for a in site.kwargs.values()):
        raise site.unsupported("a batched option to np.broadcast_arrays")
    if not site.any_batched:
        ranks = [a.rank for a in site.args]
        rank = None if None in ranks else max(ranks, default=0)  # type: ignore[type-var]
        return site.render(), Val.tree(tuple, [(i, Val.array(rank)) for i in range(len(ranks))])
    codes, val = align(site.ctx, site.args)
    code = site.render(codes)
    return code, Val.tree(tuple, [(i, Val.array(val.rank, True)) for i in range(len(codes))])


@register(np.meshgrid, note="indexing='xy'/'ij', sparse, copy")
def meshgrid_rule(site: CallSite) -> Out:
    xs = site.args
    opts = {k: a for k, a in site.kwargs.items()}
    if any(a.batched for a in opts.values()):
        raise site.unsupported("a batched option to np.meshgrid")
    n = len(xs)

    def opt(name: str, default: Any) -> Any:
        a = opts.get(name)
        if a is None:
            return default
        if not a.val.is_static:
            raise site.unsupported(f"np.meshgrid with a non-literal {name}=")
        return a.static

    sparse, indexing, copy = opt("sparse", False), opt("indexing", "xy"), opt("copy", True)
    if not site.any_batched:
        return site.render(), Val.tree(tuple, [(i, Val.array(n)) for i in range(n)])
    if indexing not in ("xy", "ij"):
        raise site.unsupported(f"np.meshgrid with indexing={indexing!r}")
    ctx = site.ctx
    pieces = []
    for i, a in enumerate(xs):
        pos = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and n > 1 else i
        shape = ["1"] * n
        shape[pos] = "-1"
        if a.batched:
            _need_rank(site, a)
            pieces.append(ctx.parse("{x}.reshape({x}.shape[0], %s)" % ", ".join(shape), x=a.code))
        else:
            pieces.append(ctx.parse("np.reshape({x}, (1, %s))" % ", ".join(shape), x=a.code))
    if sparse:
        # Each output is its own input, batched or not; unbatched ones lose the unit axis.
        out, vals = [], []
        for a, p in zip(xs, pieces):
            code = p if a.batched else ctx.parse("{p}[0]", p=p)
            out.append(ctx.parse("{p}.copy()", p=code) if copy else code)
            vals.append(Val.array(n, a.batched))
        return cst.Tuple([cst.Element(c) for c in out]), Val.tree(tuple, list(enumerate(vals)))
    spread = cst.Call(func=ctx.parse("np.broadcast_arrays"), args=[cst.Arg(p) for p in pieces])
    code = ctx.parse("tuple(g.copy() for g in {s})", s=spread) if copy else spread
    return code, Val.tree(tuple, [(i, Val.array(n, True)) for i in range(n)])


@register(np.unstack, note="axis counted per example")
def unstack_rule(site: CallSite) -> Out:
    x = site.args[0]
    axis_arg = site.kwargs.get("axis")
    if axis_arg is not None and axis_arg.batched:
        raise site.unsupported("a batched axis in np.unstack")
    if not x.batched:
        return site.render(), Val(TREE, container=tuple, element=Val.array(None))
    r = _need_rank(site, x)
    axis = 0 if axis_arg is None else axis_arg.static
    _check(site, axis, r)
    code = site.ctx.parse("np.unstack({x}, axis=%d)" % (axis % r + 1), x=x.code)
    return code, Val(TREE, batched=True, container=tuple, element=Val.array(r - 1, True))


@register(np.rollaxis)
def rollaxis_rule(site: CallSite) -> Out:
    b = site.bind(np.rollaxis)
    x = b.get("a")
    assert x is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise site.unsupported("a batched axis in np.rollaxis")
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    axis, start = b.value("axis"), b.value("start", 0)
    _check(site, axis, r)
    if not isinstance(start, int) or not -r <= start <= r:
        raise site.unsupported(f"start={start!r} is out of range in np.rollaxis")
    b.set("axis", literal(axis % r + 1))
    b.set("start", literal(start + r + 1 if start < 0 else start + 1))
    return b.render(), Val.array(r, True)


@register(np.resize, note="a fixed new shape: the example's entries repeated to fill it")
def resize_rule(site: CallSite) -> Out:
    b = site.bind(np.resize)
    x, shape = b.get("a"), b.get("new_shape")
    assert x is not None and shape is not None
    if shape.batched:
        raise site.unsupported("np.resize to a shape that depends on the batch")
    dims, n = _shape_elements(site, shape)
    if not x.batched:
        return b.render(), Val.array(n)
    ctx = site.ctx
    new = cst.Tuple(
        [
            cst.StarredElement(d.value) if isinstance(d, cst.StarredElement) else cst.Element(d)
            for d in dims
        ]
    )
    flat = ctx.parse("{x}.reshape({x}.shape[0], -1)", x=x.code)
    code = ctx.parse(
        "np.take({f}, np.arange(math.prod({s})) % {f}.shape[1], axis=1).reshape(({b},) + {s})",
        f=flat,
        s=new,
        b=_batch_dim(ctx, x),
    )
    ctx.program.modules["math"] = math
    return code, Val.array(n, True)
