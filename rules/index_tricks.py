"""``np.r_[...]`` and ``np.c_[...]`` with batched items: the index-trick objects joined
per example along their first (``np.r_``) or last (``np.c_``) axis."""

from __future__ import annotations

from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import ARRAY, TREE, Val

from .creation import _literal_rank, _stacked
from .registry import Arg, CallSite, Out


def index_concatenate(ctx: Any, which: Any, items: list[Arg]) -> Out:
    """``np.r_[a, b]`` / ``np.c_[a, b]`` with batched items, for items that are arrays
    (or lists) of rank >= 1: ``np.r_`` joins them along their first axis, ``np.c_`` makes
    vectors columns and joins along the last axis. Scalars, slices and directive strings
    (whose dtype and shape rules differ) run per example."""
    name = "np.r_" if which is np.r_ else "np.c_"
    pieces: list[tuple[cst.BaseExpression, int, bool]] = []
    for item in items:
        code, rank, batched = _index_piece(ctx, item)
        if rank is None or rank == 0:
            raise ctx.unsupported(
                f"{name}[...] of a scalar or of an item of unknown rank, with batched values",
                "use np.concatenate / np.stack",
            )
        if which is np.c_ and rank == 1:
            code = ctx.parse("{x}[:, :, None]" if batched else "{x}[:, None]", x=code)
            rank = 2
        pieces.append((code, rank, batched))
    if len({r for _, r, _ in pieces}) != 1:
        raise ctx.unsupported(f"{name}[...] of arrays of different ranks (NumPy raises)")
    rank = pieces[0][1]
    codes = [c if b else ctx.broadcast(c, Val.array(rank)) for c, _, b in pieces]
    axis = "1" if which is np.r_ else "-1"
    joined = cst.List([cst.Element(c) for c in codes])
    return ctx.parse("np.concatenate({xs}, axis=%s)" % axis, xs=joined), Val.array(rank, True)


def index_concatenate_rank(ctx: Any, which: Any, items: list[Arg]) -> int | None:
    """The rank of ``np.r_[...]``/``np.c_[...]`` of unbatched items, when every item is
    an array of one known rank >= 1 (else None: not known)."""
    ranks = set()
    for item in items:
        val = item.val
        if val.kind == TREE and val.container in (list, tuple) and not val.batched:
            rank: int | None = _literal_rank(val)
        elif val.kind == ARRAY:
            rank = val.rank
        else:
            return None
        if rank is None or rank == 0:
            return None
        ranks.add(2 if which is np.c_ and rank == 1 else rank)
    return ranks.pop() if len(ranks) == 1 else None


def _index_piece(ctx: Any, item: Arg) -> tuple[cst.BaseExpression, int | None, bool]:
    """An item of ``np.r_``/``np.c_`` as an array: its code, per-example rank, batching."""
    val = item.val
    if val.kind == TREE and val.container in (list, tuple):
        if val.batched:
            code, rank = _stacked(CallSite(ctx, cst.Name("np"), None, [], {}), item)
            return code, rank, True
        return ctx.parse("np.asarray({x})", x=item.code), _literal_rank(val), False
    if val.kind == ARRAY:
        return item.code, val.rank, val.batched
    return item.code, None, val.batched
