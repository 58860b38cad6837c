"""Axis-taking operations: cumsum, sort, diff, flip, roll, take, take_along_axis, repeat,
tile, pad, and the joining family (concatenate, stack, hstack, vstack, column_stack, split).

``axis=None`` means "flattened" for most of these: per example that flattens one
example, so the batched code flattens all but the batch axis first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, SCALAR, TREE, Val

from .creation import _literal_rank, _stacked
from .reductions import normalise_axes
from .registry import Arg, CallSite, Out, first_param, literal, maybe, no_rule, register
from .shape_ops import _batch_dim, _need_rank, _shift


def _flat(site: CallSite, x: Arg) -> cst.BaseExpression:
    return site.ctx.parse("{x}.reshape({b}, -1)", x=x.code, b=_batch_dim(site.ctx, x))


def _others_unbatched(site: CallSite, x: Arg, name: str) -> None:
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise site.unsupported(f"a batched argument other than the array to {name}")


def axis_rule(
    fn: Callable, default_none_flattens: bool, rank_of: Callable[[int, Any, Any], int]
) -> Callable:
    """A rule for ``fn(a, ..., axis=...)`` returning an array.

    ``rank_of(rank, axis, binding)`` is the per-example output rank.
    """

    first = first_param(fn)

    def rule(site: CallSite) -> Out:
        b = site.bind(fn)
        x = b.get(first)
        assert x is not None
        _others_unbatched(site, x, fn.__name__)
        if not x.batched:
            rank = x.rank
            return b.render(), Val.array(
                None if rank is None else maybe(lambda: rank_of(rank, b.value("axis", None), b))
            )
        r = _need_rank(site, x)
        axis = b.value("axis", None)
        if axis is None and default_none_flattens:
            if r != 1:  # a rank-1 example is already flat
                b.set(first, _flat(site, x))
            b.set("axis", literal(1))
            return b.render(), Val.array(rank_of(r, None, b), True)
        normalise_axes(site, axis, r)
        if "axis" in b or axis >= 0:
            b.set("axis", literal(_shift(axis)))
        return b.render(), Val.array(rank_of(r, axis, b), True)

    return rule


def _same(r: int, axis: Any, b: Any) -> int:
    return r


def _flattened(r: int, axis: Any, b: Any) -> int:
    return 1 if axis is None else r


for _fn in (np.cumsum, np.cumprod, np.nancumsum, np.nancumprod):
    register(_fn)(axis_rule(_fn, True, _flattened))
for _fn in (np.sort, np.argsort):
    register(_fn)(axis_rule(_fn, True, _flattened))
register(np.diff)(axis_rule(np.diff, False, _same))
register(np.repeat)(axis_rule(np.repeat, True, _flattened))


def _method(fn: Callable) -> Callable:
    base = axis_rule(fn, True, _flattened)

    def rule(site: CallSite) -> Out:
        return base(site)

    return rule


register(methods=("cumsum",))(_method(np.cumsum))
register(methods=("cumprod",))(_method(np.cumprod))
register(methods=("argsort",))(_method(np.argsort))
register(methods=("repeat",))(_method(np.repeat))


def _in_place_along_axis(site: CallSite, b: Any, x: Arg, method: str) -> Out:
    """``x.sort()`` / ``x.partition(k)``: in place along a per-example axis (default -1,
    shifted past the batch); they return None."""
    if x.batched:
        r = _need_rank(site, x)
        axis = b.value("axis", -1)
        if axis is None:
            raise site.unsupported(f"x.{method}(axis=None)")
        normalise_axes(site, axis, r)
        if "axis" in b:
            b.set("axis", literal(_shift(axis)))
    return b.render(), Val.const(None)


@register(methods=("sort",))
def sort_method(site: CallSite) -> Out:
    """``x.sort(axis=-1)`` sorts in place and returns None."""
    x = site.args[0]
    b = site.bind(np.sort)
    return _in_place_along_axis(site, b, x, "sort")


@register(np.flip)
def flip_rule(site: CallSite) -> Out:
    b = site.bind(np.flip)
    x = b.get("m")
    assert x is not None
    _others_unbatched(site, x, "flip")
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    axis = b.value("axis", None)
    axes = normalise_axes(site, axis, r)
    if axis is None:
        new = tuple(k + 1 for k in axes)
        b.set("axis", literal(new if len(new) != 1 else new[0]))
    else:
        b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(r, True)


@register(np.flipud)
def flipud_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val.array(x.rank)
    return site.ctx.parse("np.flip({x}, axis=1)", x=x.code), Val.array(x.rank, True)


@register(np.fliplr)
def fliplr_rule(site: CallSite) -> Out:
    x = site.args[0]
    if not x.batched:
        return site.render(), Val.array(x.rank)
    return site.ctx.parse("np.flip({x}, axis=2)", x=x.code), Val.array(x.rank, True)


@register(np.roll)
def roll_rule(site: CallSite) -> Out:
    b = site.bind(np.roll)
    x = b.get("a")
    assert x is not None
    _others_unbatched(site, x, "roll")
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    axis = b.value("axis", None)
    if axis is None and r == 1:
        b.set("axis", literal(1))
        return b.render(), Val.array(r, True)
    if axis is None:
        b.set("a", _flat(site, x))
        b.set("axis", literal(1))
        return site.ctx.parse("{r}.reshape({x}.shape)", r=b.render(), x=x.code), Val.array(r, True)
    normalise_axes(site, axis, r)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(r, True)


def _index_rank(idx: Arg) -> int | None:
    """The per-example rank of an index argument (an array, a scalar or a literal list)."""
    if idx.val.kind == SCALAR:
        return 0
    if idx.val.kind == TREE and idx.val.is_static:
        return np.ndim(idx.val.static)
    return idx.rank


def _batch_arange(site: CallSite, x: Arg, trailing: int) -> cst.BaseExpression:
    """``np.arange(B)`` shaped to broadcast against batched indices of rank ``trailing``."""
    arange = site.ctx.parse("np.arange({b})", b=_batch_dim(site.ctx, x))
    return site.ctx.expand(arange, trailing)


def _axis_length(site: CallSite, x: Arg, axis: int | None) -> cst.BaseExpression:
    """The per-example length of ``axis`` of batched ``x`` (None: its size)."""
    if not isinstance(x.code, cst.Name):
        raise site.unsupported(
            "np.take with mode='wrap' or 'clip' on a batched array expression with batched "
            "indices",
            "assign the array to a variable first",
        )
    if axis is None:
        site.ctx.program.modules["math"] = math  # type: ignore[attr-defined]
        return site.ctx.parse("math.prod({x}.shape[1:])", x=x.code)
    return site.ctx.parse("{x}.shape[%d]" % (axis + 1), x=x.code)


def _apply_mode(
    site: CallSite, x: Arg, idx: cst.BaseExpression, mode: Any, axis: int | None
) -> cst.BaseExpression:
    """Indices rewritten so that plain advanced indexing behaves as ``np.take(mode=...)``."""
    if mode == "raise":
        return idx
    n = _axis_length(site, x, axis)
    if mode == "wrap":
        return site.ctx.parse("np.mod({i}, {n})", i=idx, n=n)
    if mode == "clip":  # np.take's clip also maps negative indices to 0
        return site.ctx.parse("np.clip({i}, 0, {n} - 1)", i=idx, n=n)
    raise site.unsupported(f"np.take with mode={mode!r}")


def _gather_take(
    site: CallSite, x: Arg, idx: Arg, q: int, axis: int | None, mode: Any
) -> cst.BaseExpression:
    """``np.take`` with batched array and batched indices: one advanced-indexing gather.

    Per example ``take(x, i, axis=k)`` is ``x[(:,) * k, i]``; batched, the batch axis
    gets ``np.arange(B)`` broadcast against ``i``. When ``k > 0`` the two advanced
    indices are split by slices, so NumPy puts the index dims right after the batch
    axis; ``np.moveaxis`` puts them back at ``k`` (as in ``astvmap.indexing.gather``).
    """
    ctx = site.ctx
    arange = _batch_arange(site, x, q)
    i = _apply_mode(site, x, idx.code, mode, axis)
    if axis is None:
        flat = x.code if x.rank == 1 else _flat(site, x)
        return ctx.parse("{x}[{b}, {i}]", x=flat, b=arange, i=i)
    slices = "".join(":, " for _ in range(axis))
    code = ctx.parse("{x}[{b}, %s{i}]" % slices, x=x.code, b=arange, i=i)
    if axis and q:
        code = ctx.parse("np.moveaxis({x}, %r, %r)" % (_span(1, q), _span(1 + axis, q)), x=code)
    return code


def _span(start: int, n: int) -> Any:
    return start if n == 1 else tuple(range(start, start + n))


@register(np.take, methods=("take",))
def take_rule(site: CallSite) -> Out:
    """``np.take(x, i, axis)``: a batched ``i`` makes it a gather (never a loop)."""
    b = site.bind(np.take)
    x, idx = b.get("a"), b.get("indices")
    assert x is not None and idx is not None
    q = _index_rank(idx)
    axis = b.value("axis", None)
    if not x.batched and not idx.batched:
        if x.rank is None or q is None:
            return b.render(), Val.array(None)
        return b.render(), Val.array(q if axis is None else x.rank - 1 + q)
    if "out" in b:
        raise site.unsupported("np.take(..., out=...) under vmap", "assign the result instead")
    if q is None:
        raise site.unsupported("cannot infer the rank of the indices")
    mode = b.value("mode", "raise")
    if axis is None:
        if x.batched and idx.batched:
            return _gather_take(site, x, idx, q, None, mode), Val.array(q, True)
        if x.batched:
            b.set("a", _flat(site, x))
            b.set("axis", literal(1))
        return b.render(), Val.array(q, True)  # unbatched x: take(x, i) is already (B, *I)
    r = _need_rank(site, x)
    k = normalise_axes(site, axis, r)[0]
    if x.batched and idx.batched:
        return _gather_take(site, x, idx, q, k, mode), Val.array(r - 1 + q, True)
    if x.batched:
        b.set("axis", literal(_shift(axis)))
        return b.render(), Val.array(r - 1 + q, True)
    # Unbatched x, batched i: the (B, *I) index dims land at axis k; move B first.
    code = b.render()
    if k:
        code = site.ctx.parse("np.moveaxis({x}, %d, 0)" % k, x=code)
    return code, Val.array(r - 1 + q, True)


@register(np.take_along_axis)
def take_along_axis_rule(site: CallSite) -> Out:
    """``np.take_along_axis``: the unbatched operand gets a length-1 batch axis, which
    take_along_axis broadcasts against the other's batch axis (no copy, no loop)."""
    b = site.bind(np.take_along_axis)
    x, idx = b.get("arr"), b.get("indices")
    assert x is not None and idx is not None
    axis = b.value("axis", -1)
    rank = 1 if axis is None else (idx.rank if idx.rank is not None else x.rank)
    dtype = x.val.dtype
    if not x.batched and not idx.batched:
        return b.render(), Val.array(rank, dtype=dtype)
    if axis is None:
        if x.batched:
            b.set("arr", _flat(site, x))
        else:
            b.set("arr", site.ctx.parse("np.ravel({x})[None]", x=x.code))
    else:
        known = [a.rank for a in (x, idx) if a.rank is not None]
        if not known:
            raise site.unsupported("cannot infer the rank of the arrays")
        if len(set(known)) > 1:
            raise site.unsupported(
                "np.take_along_axis with indices of a different rank than the array",
                "give the indices the array's rank (use index[..., None] or np.expand_dims)",
            )
        normalise_axes(site, axis, known[0])
        if not x.batched:
            b.set("arr", site.ctx.parse("{x}[None]", x=x.code))
    if not idx.batched:
        b.set("indices", site.ctx.parse("{i}[None]", i=idx.code))
    b.set("axis", literal(1 if axis is None else _shift(axis)))
    return b.render(), Val.array(rank, True, dtype)


@register(np.tile)
def tile_rule(site: CallSite) -> Out:
    b = site.bind(np.tile)
    x, reps_arg = b.get("A"), b.get("reps")
    assert x is not None and reps_arg is not None
    _others_unbatched(site, x, "tile")
    reps = b.value("reps")
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    if not x.batched:
        return b.render(), Val.array(None if x.rank is None else max(x.rank, len(reps)))
    r = _need_rank(site, x)
    d = len(reps)
    code = x.code
    if d > r:
        code = site.ctx.expand(code, d - r)
    full = (1,) * (r - d) + reps if d < r else reps
    b.set("A", code)
    b.set("reps", literal((1, *full)))
    return b.render(), Val.array(max(r, d), True)


@register(np.pad)
def pad_rule(site: CallSite) -> Out:
    b = site.bind(np.pad)
    x, width = b.get("array"), b.get("pad_width")
    assert x is not None and width is not None
    _others_unbatched(site, x, "pad")
    if not x.batched:
        return b.render(), Val.array(x.rank)
    r = _need_rank(site, x)
    if width.val.is_static:
        pairs = np.broadcast_to(np.asarray(width.val.static), (r, 2)).tolist()
        b.set("pad_width", literal(tuple([(0, 0)] + [tuple(p) for p in pairs])))
    else:
        b.set(
            "pad_width",
            site.ctx.parse("[(0, 0), *np.broadcast_to({w}, (%d, 2)).tolist()]" % r, w=width.code),
        )
    # Per-axis options need an entry for the batch axis too (its width is 0).
    for option in ("constant_values", "end_values", "stat_length"):
        arg = b.get(option)
        if arg is None:
            continue
        if not arg.val.is_static:
            raise site.unsupported(f"np.pad with a non-literal {option}= under vmap")
        value = np.asarray(arg.val.static)
        if value.ndim == 2:
            b.set(
                option,
                literal(tuple([tuple(value[0].tolist())] + [tuple(v) for v in value.tolist()])),
            )
    return b.render(), Val.array(r, True)


# ------------------------------------------------------------------- joining
def _pieces(site: CallSite, seq: Arg) -> tuple[list[Arg], cst.BaseExpression | None]:
    """The arrays being joined, when written as a list/tuple literal."""
    code = seq.code
    if isinstance(code, (cst.List, cst.Tuple)) and seq.val.kind == TREE and seq.val.children:
        values = _spread_elements(site, code.elements)
        if values is None or len(values) != len(seq.val.children):
            return [], None
        pieces = [Arg(v, child) for v, (_, child) in zip(values, seq.val.children)]
        return pieces, code.with_changes(elements=[cst.Element(v) for v in values])
    return [], None


def _spread_elements(site: CallSite, elements: Any) -> list[cst.BaseExpression] | None:
    """A literal's items with ``*[a, b]`` and ``*name`` (a list or tuple of known length
    held in a name) written out one by one; None when a starred item's length is not
    known."""
    out: list[cst.BaseExpression] = []
    for e in elements:
        if not isinstance(e, cst.StarredElement):
            out.append(e.value)
            continue
        inner = e.value
        if isinstance(inner, (cst.List, cst.Tuple)):
            more = _spread_elements(site, inner.elements)
            if more is None:
                return None
            out.extend(more)
            continue
        if not isinstance(inner, (cst.Name, cst.Attribute)):
            return None
        _, val = site.ctx.expr(inner)  # type: ignore[attr-defined]
        if val.kind != TREE or val.element is not None:
            return None
        out.extend(site.ctx.parse("{x}[%d]" % i, x=inner) for i in range(len(val.children)))
    return out


def _piece_rank(a: Arg) -> int | None:
    if a.val.kind == SCALAR:
        return 0
    if a.val.kind == ARRAY:
        return a.rank
    if a.val.kind == TREE and a.val.is_static:
        return np.ndim(a.val.static)
    return None


def _join(
    site: CallSite,
    seq: Arg,
    prepare: Callable[[Arg, int], cst.BaseExpression],
    prepare_unbatched: Callable[[Arg, int], cst.BaseExpression],
) -> tuple[cst.BaseExpression, list[int]]:
    """The batched list of pieces (each piece made batched and prepared)."""
    pieces, literal_code = _pieces(site, seq)
    if seq.val.kind == TREE and seq.val.element is not None:
        if not seq.val.element.batched:
            raise site.unsupported(
                "joining a mix of batched and unbatched arrays from a comprehension"
            )
        r = seq.val.element.rank
        if r is None:
            raise site.unsupported("cannot infer the rank of the joined arrays")
        if prepare is _identity:
            return seq.code, [r]
        # Each piece prepared (np.concatenate(..., axis=None) flattens every example).
        name = site.ctx.program.fresh("_piece")  # type: ignore[attr-defined]
        each = prepare(Arg(cst.Name(name), seq.val.element), r)
        code = site.ctx.parse(f"[{{p}} for {name} in {{xs}}]", p=each, xs=seq.code)
        return code, [r]
    kids = [v for _, v in seq.val.children] if seq.val.kind == TREE else []
    if (
        literal_code is None
        and prepare is _identity
        and kids
        and all(v.kind == ARRAY and v.batched for v in kids)
    ):
        ranks = {v.rank for v in kids}
        if len(ranks) == 1 and None not in ranks:
            return seq.code, [ranks.pop()] * len(kids)  # batched arrays of one rank, as is
    if literal_code is None:
        raise site.unsupported(
            "joining a sequence of arrays that is not a literal list or tuple",
            "write the pieces out: np.concatenate([a, b], ...)",
        )
    elems = []
    ranks = []
    for p in map(functools.partial(_literal_piece, site), pieces):
        r = _piece_rank(p)
        if r is None:
            raise site.unsupported("cannot infer the rank of a joined array")
        ranks.append(r)
        if p.batched:
            elems.append(prepare(p, r))
        else:
            elems.append(site.ctx.broadcast(prepare_unbatched(p, r), Val.array(None)))
    return cst.List([cst.Element(e) for e in elems]), ranks


def _literal_piece(site: CallSite, p: Arg) -> Arg:
    """A piece written as a list or tuple holding batched values (``[np.cos(t)]``) is
    the array np.array would make of it, so it joins like any batched array."""
    if p.val.kind == TREE and p.val.container in (list, tuple) and not p.val.is_static:
        if p.batched:
            code, rank = _stacked(site, p)
            return Arg(code, Val.array(rank, True))
        rank = _literal_rank(p.val)
        if rank is not None:
            return Arg(site.ctx.parse("np.asarray({x})", x=p.code), Val.array(rank))
    return p


def _identity(p: Arg, r: int) -> cst.BaseExpression:
    return p.code


@register(np.concatenate)
def concatenate_rule(site: CallSite) -> Out:
    b = site.bind(np.concatenate)
    seq = b.get("arrays")
    assert seq is not None
    if not seq.batched:
        ranks = [_piece_rank(p) for p in _pieces(site, seq)[0]]
        return b.render(), Val.array(ranks[0] if ranks and None not in ranks else None)
    axis = b.value("axis", 0)
    if axis is None:
        code, ranks = _join(
            site,
            seq,
            lambda p, r: site.ctx.parse("{x}.reshape({x}.shape[0], -1)", x=p.code),
            lambda p, r: site.ctx.parse("np.ravel({x})", x=p.code),
        )
        b.set("arrays", code)
        b.set("axis", literal(1))
        return b.render(), Val.array(1, True)
    code, ranks = _join(site, seq, _identity, _identity)
    normalise_axes(site, axis, ranks[0])
    b.set("arrays", code)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(ranks[0], True)


@register(np.stack)
def stack_rule(site: CallSite) -> Out:
    b = site.bind(np.stack)
    seq = b.get("arrays")
    assert seq is not None
    if not seq.batched:
        ranks = [_piece_rank(p) for p in _pieces(site, seq)[0]]
        return b.render(), Val.array(ranks[0] + 1 if ranks and None not in ranks else None)
    axis = b.value("axis", 0)
    code, ranks = _join(site, seq, _identity, _identity)
    normalise_axes(site, axis, ranks[0] + 1)
    b.set("arrays", code)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(ranks[0] + 1, True)


def _as_concatenate(site: CallSite, code: cst.BaseExpression, axis: int, rank: int) -> Out:
    return site.ctx.parse("np.concatenate({xs}, axis=%d)" % axis, xs=code), Val.array(rank, True)


def _unbatched_join_rank(site: CallSite, seq: Arg, least: int) -> Val:
    ranks = [_piece_rank(p) for p in _pieces(site, seq)[0]]
    if not ranks or None in ranks:
        return Val.array(None)
    return Val.array(max(max(ranks), least))  # type: ignore[type-var]


@register(np.hstack)
def hstack_rule(site: CallSite) -> Out:
    seq = site.args[0]
    if not seq.batched:
        return site.render(), _unbatched_join_rank(site, seq, 1)
    pieces = _pieces(site, seq)[0]
    ranks = [_piece_rank(p) for p in pieces]
    one_d = all(r is not None and r <= 1 for r in ranks)
    code, ranks = _join(
        site,
        seq,
        lambda p, r: site.ctx.expand(p.code, 1) if r == 0 else p.code,
        lambda p, r: site.ctx.parse("np.atleast_1d({x})", x=p.code),
    )
    rank = max(max(ranks), 1)
    return _as_concatenate(site, code, 1 if one_d else 2, rank)


@register(np.vstack, np.row_stack) if hasattr(np, "row_stack") else register(np.vstack)
def vstack_rule(site: CallSite) -> Out:
    seq = site.args[0]
    if not seq.batched:
        return site.render(), _unbatched_join_rank(site, seq, 2)
    code, ranks = _join(
        site,
        seq,
        lambda p, r: site.ctx.expand(p.code, 2 - r) if r < 2 else p.code,
        lambda p, r: site.ctx.parse("np.atleast_2d({x})", x=p.code),
    )
    return _as_concatenate(site, code, 1, max(max(ranks), 2))


@register(np.column_stack)
def column_stack_rule(site: CallSite) -> Out:
    seq = site.args[0]
    if not seq.batched:
        return site.render(), Val.array(2)

    def column(p: Arg, r: int) -> cst.BaseExpression:
        if r == 0:
            return site.ctx.parse("{x}[:, None, None]", x=p.code)
        if r == 1:
            return site.ctx.parse("{x}[:, :, None]", x=p.code)
        return p.code

    def column_unbatched(p: Arg, r: int) -> cst.BaseExpression:
        return site.ctx.parse("np.column_stack([{x}])", x=p.code)

    code, ranks = _join(site, seq, column, column_unbatched)
    return _as_concatenate(site, code, 2, 2)


@register(np.split, np.array_split)
def split_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    x, sections = b.get("ary"), b.get("indices_or_sections")
    assert x is not None and sections is not None
    _others_unbatched(site, x, "split")
    count = None
    if sections.val.is_static:
        s = sections.val.static
        count = s if isinstance(s, int) else len(s) + 1
    if not x.batched:
        element = Val.array(x.rank)
    else:
        r = _need_rank(site, x)
        axis = b.value("axis", 0)
        normalise_axes(site, axis, r)
        b.set("axis", literal(_shift(axis)))
        element = Val.array(r, True)
    if count is None:
        return b.render(), Val(TREE, batched=x.batched, container=list, element=element)
    return b.render(), Val.tree(list, [(i, element) for i in range(count)])


@register(np.dstack)
def dstack_rule(site: CallSite) -> Out:
    seq = site.args[0]
    if not seq.batched:
        return site.render(), _unbatched_join_rank(site, seq, 3)

    def as_3d(p: Arg, r: int) -> cst.BaseExpression:
        # np.atleast_3d per example: () -> (1, 1, 1), (N,) -> (1, N, 1), (M, N) -> (M, N, 1).
        index = {0: "[:, None, None, None]", 1: "[:, None, :, None]", 2: "[..., None]"}
        return site.ctx.parse("{x}%s" % index[r], x=p.code) if r < 3 else p.code

    code, ranks = _join(
        site, seq, as_3d, lambda p, r: site.ctx.parse("np.atleast_3d({x})", x=p.code)
    )
    return _as_concatenate(site, code, 3, max(max(ranks), 3))


def _split_along(axis: int, least: int) -> Callable:
    """hsplit/vsplit/dsplit: np.split along a fixed axis (hsplit: 0 for vectors)."""

    def rule(site: CallSite) -> Out:
        x, sections = site.args[0], site.args[1] if len(site.args) > 1 else None
        if sections is None or sections.batched or site.kwargs:
            if site.any_batched:
                raise site.unsupported("a batched number of sections")
            return site.render(), Val(TREE, container=list, element=Val.array(x.rank))
        count = None
        if sections.val.is_static:
            s = sections.val.static
            count = s if isinstance(s, int) else len(s) + 1
        if not x.batched:
            element = Val.array(x.rank)
            code = site.render()
        else:
            r = _need_rank(site, x)
            if r < least:
                raise site.unsupported(f"np.{site.callee.__name__} of a rank-{r} array")
            k = 0 if (axis == 1 and r == 1) else axis
            code = site.ctx.parse(
                "np.split({x}, {s}, axis=%d)" % (k + 1), x=x.code, s=sections.code
            )
            element = Val.array(r, True)
        if count is None:
            return code, Val(TREE, batched=x.batched, container=list, element=element)
        return code, Val.tree(list, [(i, element) for i in range(count)])

    return rule


register(np.hsplit)(_split_along(1, 1))
register(np.vsplit)(_split_along(0, 2))
register(np.dsplit)(_split_along(2, 3))


@register(np.append, note="values batched or not; axis None flattens")
def append_rule(site: CallSite) -> Out:
    b = site.bind(np.append)
    x, v = b.get("arr"), b.get("values")
    assert x is not None and v is not None
    axis_arg = b.get("axis")
    if axis_arg is not None and axis_arg.batched:
        raise site.unsupported("a batched axis in np.append")
    axis = b.value("axis", None)
    if not site.any_batched:
        return b.render(), Val.array(1 if axis is None else x.rank)
    ctx = site.ctx
    rx, rv = _piece_rank(x), _piece_rank(v)
    if rx is None or rv is None:
        raise site.unsupported("cannot infer the ranks of np.append's operands")

    def flat(a: Arg) -> cst.BaseExpression:
        if a.batched:
            return ctx.parse("{x}.reshape({x}.shape[0], -1)", x=a.code)
        return ctx.broadcast(ctx.parse("np.ravel({x})", x=a.code), Val.array(1))

    if axis is None:
        code = ctx.parse("np.concatenate([{a}, {b}], axis=1)", a=flat(x), b=flat(v))
        return code, Val.array(1, True)
    normalise_axes(site, axis, rx)
    parts = [
        a.code if a.batched else ctx.broadcast(a.code, Val.array(r)) for a, r in ((x, rx), (v, rv))
    ]
    code = ctx.parse("np.concatenate([{a}, {b}], axis=%r)" % _shift(axis), a=parts[0], b=parts[1])
    return code, Val.array(rx, True)


def _flat_or_along_axis(site: CallSite, b: Any, x: Arg, param: str) -> Out:
    """The common tail of np.delete/np.compress: ``axis=None`` works on the flattened
    example (the batch axis kept first), any other axis is shifted past the batch."""
    axis = b.value("axis", None)
    if not x.batched:
        return b.render(), Val.array(1 if axis is None else x.rank)
    r = _need_rank(site, x)
    if axis is None:
        if r != 1:
            b.set(param, _flat(site, x))
        b.set("axis", literal(1))
        return b.render(), Val.array(1, True)
    normalise_axes(site, axis, r)
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.array(r, True)


@register(np.delete, note="unbatched indices; axis None flattens")
def delete_rule(site: CallSite) -> Out:
    b = site.bind(np.delete)
    x = b.get("arr")
    assert x is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise no_rule(site, "np.delete with batched indices (the shape depends on them)", "")
    return _flat_or_along_axis(site, b, x, "arr")


@register(np.insert, note="unbatched indices; values batched or not; 1-D examples")
def insert_rule(site: CallSite) -> Out:
    """Batched, the insertion runs along axis 1 of a (B, N) array. NumPy treats a scalar
    index specially (values become one slab along the axis), so the index is always
    given as a list: ``[i] * len(values)`` inserts the values in order at ``i``."""
    b = site.bind(np.insert)
    x, obj, v = b.get("arr"), b.get("obj"), b.get("values")
    assert x is not None and obj is not None and v is not None
    if obj.batched or (b.get("axis") is not None and b.get("axis").batched):  # type: ignore[union-attr]
        raise no_rule(site, "np.insert with batched indices", "insert at fixed positions")
    axis = b.value("axis", None)
    if not site.any_batched:
        return b.render(), Val.array(1 if axis is None else x.rank)
    r, q = x.rank, _piece_rank(v)
    if r is None or q is None:
        raise site.unsupported("cannot infer the ranks of np.insert's operands")
    if not (axis is None or r == 1) or q > 1:
        raise no_rule(site, "np.insert into a multi-dimensional example under vmap", "")
    if axis is not None:
        normalise_axes(site, axis, 1)
    ctx = site.ctx
    index_rank = _index_rank(obj)
    if index_rank is None or index_rank > 1 or isinstance(obj.static, slice):
        raise no_rule(site, "np.insert with this index under vmap", "pass an int or a list")
    if index_rank == 0:
        if q == 0:
            b.set("obj", ctx.parse("[{i}]", i=obj.code))
        else:
            count = "{v}.shape[1]" if v.batched else "np.size({v})"
            b.set("obj", ctx.parse("[{i}] * %s" % count, i=obj.code, v=v.code))
    if x.batched:
        b.set("arr", x.code if r == 1 else _flat(site, x))
    else:
        b.set("arr", ctx.broadcast(ctx.parse("np.ravel({x})", x=x.code), Val.array(1)))
    if v.batched and q == 0:
        b.set("values", ctx.parse("{v}[:, None]", v=v.code))
    b.set("axis", literal(1))
    return b.render(), Val.array(1, True, x.val.dtype)


def _partition(fn: Callable) -> Callable:
    base = axis_rule(fn, True, _flattened)

    def rule(site: CallSite) -> Out:
        kth = site.bind(fn).get("kth")
        if kth is not None and kth.batched:
            raise no_rule(site, f"np.{fn.__name__} with a batched kth", "")
        return base(site)

    return rule


register(np.partition, note="kth unbatched")(_partition(np.partition))
register(np.argpartition, note="kth unbatched")(_partition(np.argpartition))


def _partition_method_signature(self, kth, axis=-1, kind="introselect", order=None):
    """The parameters of ``ndarray.partition`` (for ``CallSite.bind``)."""


@register(methods=("partition",), note="in place; kth unbatched")
def partition_method(site: CallSite) -> Out:
    x = site.args[0]
    b = site.bind(_partition_method_signature)
    kth = b.get("kth")
    if kth is not None and kth.batched:
        raise no_rule(site, "x.partition with a batched kth", "")
    return _in_place_along_axis(site, b, x, "partition")


register(methods=("argpartition",))(_method(np.argpartition))


def _cumulative(fn: Callable) -> Callable:
    def rule(site: CallSite) -> Out:
        x = site.args[0]
        if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
            raise site.unsupported(f"a batched option to np.{fn.__name__}")
        axis_arg = site.kwargs.get("axis")
        axis = None if axis_arg is None else axis_arg.static
        include = site.kwargs.get("include_initial")
        if not x.batched:
            return site.render(), Val.array(x.rank)
        r = _need_rank(site, x)
        if axis is None:
            if r != 1:
                raise site.unsupported(f"np.{fn.__name__} without axis of a rank-{r} array")
            axis = 0
        normalise_axes(site, axis, r)
        kwargs = {k: a.code for k, a in site.kwargs.items()}
        kwargs["axis"] = literal(_shift(axis))
        del include
        return site.render(None, kwargs), Val.array(r, True)

    return rule


register(np.cumulative_sum)(_cumulative(np.cumulative_sum))
register(np.cumulative_prod)(_cumulative(np.cumulative_prod))


@register(np.compress, note="an unbatched condition (a batched one makes the shape data-dependent)")
def compress_rule(site: CallSite) -> Out:
    b = site.bind(np.compress)
    cond, x = b.get("condition"), b.get("a")
    assert cond is not None and x is not None
    if cond.batched or any(
        a.batched for a in [*site.args, *site.kwargs.values()] if a is not x and a is not cond
    ):
        raise no_rule(site, "np.compress with a batched condition", "use np.where")
    return _flat_or_along_axis(site, b, x, "a")


@register(np.sort_complex)
def sort_complex_rule(site: CallSite) -> Out:
    x = site.args[0]
    return site.render(), Val.array(x.rank, x.batched, "c")


@register(np.gradient, note="spacing unbatched; axis None gives one array per axis")
def gradient_rule(site: CallSite) -> Out:
    x = site.args[0]
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
        raise no_rule(site, "np.gradient with batched spacing", "")
    axis_arg = site.kwargs.get("axis")
    axis = None if axis_arg is None else axis_arg.static
    r = x.rank
    if r is None:
        if x.batched:
            raise site.unsupported("cannot infer the rank of np.gradient's array")
        return site.render(), Val.array(None)
    axes = tuple(range(r)) if axis is None else normalise_axes(site, axis, r)
    single = len(axes) == 1
    if not x.batched:
        val = Val.array(r)
        return site.render(), (
            val if single else Val.tree(tuple, [(i, val) for i in range(len(axes))])
        )
    kwargs = {k: a.code for k, a in site.kwargs.items()}
    kwargs["axis"] = literal(tuple(k + 1 for k in axes) if not single else axes[0] + 1)
    val = Val.array(r, True)
    code = site.render(None, kwargs)
    if single:
        return code, val
    return code, Val.tree(tuple, [(i, val) for i in range(len(axes))])


@register(np.fill_diagonal, note="in place on a batch of square matrices")
def fill_diagonal_rule(site: CallSite) -> Out:
    b = site.bind(np.fill_diagonal)
    x, v = b.get("a"), b.get("val")
    assert x is not None and v is not None
    if not site.any_batched:
        return b.render(), Val.const(None)
    if not x.batched:
        raise no_rule(site, "np.fill_diagonal of an unbatched array with batched values", "")
    if _need_rank(site, x) != 2 or b.value("wrap", False):
        raise no_rule(site, "np.fill_diagonal of an example that is not a matrix", "")
    q = _piece_rank(v)
    if q is None or q > 1:
        raise no_rule(site, "np.fill_diagonal with values of rank > 1", "")
    ctx = site.ctx
    # The diagonals as a writable view (einsum's diagonal of a writable array is one); a
    # non-square matrix makes einsum raise rather than fill the wrong entries.
    view = ctx.parse('np.einsum("zii->zi", {x})', x=x.code)
    values = ctx.parse("{v}[:, None]", v=v.code) if v.batched and q == 0 else v.code
    return ctx.parse("np.copyto({d}, {v})", d=view, v=values), Val.const(None)


@register(np.put_along_axis, note="in place on a batched array")
def put_along_axis_rule(site: CallSite) -> Out:
    b = site.bind(np.put_along_axis)
    x, idx, v = b.get("arr"), b.get("indices"), b.get("values")
    assert x is not None and idx is not None and v is not None
    if not site.any_batched:
        return b.render(), Val.const(None)
    if not x.batched:
        raise no_rule(site, "np.put_along_axis into an unbatched array with batched values", "")
    r = _need_rank(site, x)
    axis = b.value("axis")
    if axis is None:
        raise no_rule(site, "np.put_along_axis with axis=None under vmap", "")
    normalise_axes(site, axis, r)
    if idx.rank != r:
        raise site.unsupported("np.put_along_axis with indices of another rank than the array")
    if not idx.batched:
        b.set("indices", site.ctx.parse("{i}[None]", i=idx.code))
    if v.batched:
        q = _piece_rank(v)
        if q is None:
            raise site.unsupported("cannot infer the rank of the values")
        b.set("values", site.ctx.expand(v.code, r - q))
    b.set("axis", literal(_shift(axis)))
    return b.render(), Val.const(None)


@register(
    np.apply_along_axis, note="a module-level function: transformed to run on all slices at once"
)
def apply_along_axis_rule(site: CallSite) -> Out:
    """``np.apply_along_axis(f, k, arr)``: every 1-D slice of every example along k is one
    row of a (rows, n) batch, and ``f`` is transformed for that batch (as a vmapped call
    would be), so no Python loop runs over the slices."""
    b = site.bind(np.apply_along_axis)
    fn, x = b.get("func1d"), b.get("arr")
    assert fn is not None and x is not None
    if not site.any_batched:
        return b.render(), Val.array(None)
    func = fn.val.static if fn.val.is_static else fn.val.sample
    user_call = getattr(site.ctx, "user_call", None)
    rest = [a for a in [*site.args, *site.kwargs.values()] if a is not fn and a is not x]
    if (
        not x.batched
        or any(a.batched for a in rest)
        or b.extra
        or site.kwargs
        or user_call is None
        or not _is_module_function(func)
    ):
        raise no_rule(
            site,
            "np.apply_along_axis under vmap needs a module-level function, a batched array "
            "and no extra arguments",
            "call the function on the slices yourself, or move the call out of the vmapped function",
        )
    r = _need_rank(site, x)
    axis = b.value("axis")
    k = normalise_axes(site, axis, r)[0]
    ctx = site.ctx
    rows = Arg(cst.Name("m_"), Val.array(1, True))
    # The translator's own path for a call to a user function (where its guards look
    # the function up again: the chain of callees, given by callee_owner).
    callee_owner = getattr(ctx, "callee_owner", None)
    owner = (callee_owner(fn.val, fn.code),) if callee_owner is not None else ()
    call, out = user_call(ctx.current, fn.code, func, [rows], {}, *owner)
    q = out.rank if out.kind in ("array", "scalar") else None
    if q is None:
        raise no_rule(site, "np.apply_along_axis of a function whose result rank is unknown", "")
    # m_: the examples with the slices last, as rows; o_: the function on every row.
    inner = ctx.parse("m_.reshape(-1, m_.shape[-1])")
    call = call.deep_replace(call.args[0].value, inner) if call.args else call
    shaped = "o_.reshape(m_.shape[:-1] + o_.shape[1:])"
    if q:
        shaped = "np.moveaxis(%s, %r, %r)" % (
            shaped,
            tuple(range(-q, 0)),
            tuple(range(1 + k, 1 + k + q)),
        )
    code = ctx.parse(
        "(lambda m_: (lambda o_: %s)({call}))(np.moveaxis({x}, %d, -1))" % (shaped, k + 1),
        call=call,
        x=x.code,
    )
    return code, Val.array(r - 1 + q, True)


def _is_module_function(obj: object) -> bool:
    import types

    return (
        isinstance(obj, types.FunctionType)
        and obj.__name__ != "<lambda>"
        and (obj.__module__ or "").split(".")[0] not in ("numpy", "scipy", "astvmap")
    )
