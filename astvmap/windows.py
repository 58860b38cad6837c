"""Dynamic windows: ``x[i:i + k]`` with a batched ``i`` and a length ``k`` known while
transforming.

Per example the slice has length ``k`` wherever it lies inside the array, so the batched
result is one array of per-example shape ``(k, ...)``: a gather of the windows,
``sliding_window_view(x, k, axis=1)[np.arange(B), start]`` (a copy of ``k`` contiguous
items per lane; measured 1.5-6x faster than the equivalent fancy index
``x[np.arange(B)[:, None], start[:, None] + np.arange(k)]``). In the lanes where the
loop's slice is shorter (it runs past the end, or a negative start wraps to a place too
near the end) the loop's results differ in shape; astvmap raises a ``ValueError`` there
naming those examples, never a clipped window. Several windows in one subscript
(``img[r:r + 2, c:c + 2]``) are one gather; the other index elements apply to its result.

A window consumed at once by a reduction (``x[i:i + k].sum()``; ``Expressions.expr``'s
``lazy``) is a selection instead (``selections.py``), exact also in the lanes where the
slice is shorter: the ``k`` items from its start moved back to fit, under the mask of
those inside the loop's slice (``reduced``). Writes (``y[i:i + k] = v``, ``+=``) are a
fancy-index scatter with the same bounds rule as reads.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from . import selections
from .syntax import _code
from .values import ARRAY, SCALAR, Val

WINDOW = "window"  # indexing.Elem kind of a window slice (indexing imports this module)
SWV = "np.lib.stride_tricks.sliding_window_view"


# ------------------------------------------------------------------- recognising
def window_length(tr: Any, sl: cst.Slice) -> int | None:
    """``k`` when the slice is ``e + a : e + b`` (the same pure terms ``e``, static
    ``a``, ``b``, in any order: ``i + 1 : K + i + 1``), ``k = b - a >= 1``; ``None`` for
    any other slice."""
    if sl.step is not None or sl.lower is None or sl.upper is None:
        return None
    lo, a = _terms(tr, sl.lower, 1)
    hi, b = _terms(tr, sl.upper, 1)
    if not lo or sorted(lo) != sorted(hi):
        return None
    k = b - a
    return k if k >= 1 else None


def _terms(tr: Any, node: cst.BaseExpression, sign: int) -> tuple[list, int]:
    """``node`` as a sum: its other terms (sign, source) and its static integer part."""
    if isinstance(node, cst.BinaryOperation) and not node.lpar:
        if isinstance(node.operator, (cst.Add, cst.Subtract)):
            left, a = _terms(tr, node.left, sign)
            flip = -sign if isinstance(node.operator, cst.Subtract) else sign
            right, b = _terms(tr, node.right, flip)
            return left + right, a + b
    c = _static_int(tr, node)
    if c is not None:
        return [], sign * c
    # A term with effects (a call) matches no other, so the slice is no window.
    return [(sign, _code(node).strip() if _pure(node) else f"<{id(node)}>")], 0


def _static_int(tr: Any, node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if not isinstance(node, (cst.Name, cst.Attribute, cst.UnaryOperation)) or not _pure(node):
        return None
    # Pure, so translating it has no effect (a dry run would end this statement's memo).
    _, val = tr.expr(node)
    ok = val.is_static and isinstance(val.static, int) and not isinstance(val.static, bool)
    return int(val.static) if ok else None


def _pure(node: cst.CSTNode) -> bool:
    """No calls, walrus, lambdas or yields: evaluating it twice gives the same value."""

    class V(cst.CSTVisitor):
        ok = True

        def on_visit(self, n: cst.CSTNode) -> bool:
            if isinstance(n, (cst.Call, cst.NamedExpr, cst.Lambda, cst.Yield, cst.Await)):
                self.ok = False
            return self.ok

    v = V()
    node.visit(v)
    return v.ok


def check_start(tr: Any, val: Val) -> None:
    if val.kind not in (ARRAY, SCALAR) or val.rank != 0 or val.dtype not in ("i", "u"):
        raise tr.unsupported(
            "a slice bound that depends on the batch and is not known to be an integer",
            "convert it with int(...) or .astype(int)",
        )


# ------------------------------------------------------------------- bounds
def _lower(e: Any) -> cst.BaseExpression:
    return e.element.slice.lower


def _starts(
    tr: Any, node: cst.Subscript, data: cst.BaseExpression, batched: bool, wins: list
) -> list[cst.BaseExpression]:
    """Each window's first position (a negative start counted from the end, as in
    Python), after a check that raises in the lanes whose slice is shorter than ``k``."""
    memo = selections.statement_memo(tr)
    key = "|".join(
        [_code(data), _code(tr.mask) if tr.mask is not None else ""]
        + [f"{a}:{e.k}:{_code(_lower(e))}" for a, e in wins]
    )
    if key in memo:  # the same windows again in this statement: one check
        return memo[key]
    starts, bad = [], []
    for axis, e in wins:
        n = tr.parse("{x}.shape[%d]" % (axis + int(batched)), x=data)
        lower, k = _lower(e), e.k
        if e.val.dtype == "u":
            start = lower
            bad.append(tr.parse("{i} > {n} - %d" % k, i=lower, n=n))
        else:
            lower = tr.hoist("lower", lower)
            start = tr.hoist("start", tr.parse("np.where({i} < 0, {i} + {n}, {i})", i=lower, n=n))
            # x[-k:0] is empty although -k + n fits: the stop wraps only when negative.
            bad.append(
                tr.parse(
                    "({s} < 0) | ({s} > {n} - %d) | ({i} == -%d)" % (k, k), s=start, n=n, i=lower
                )
            )
        starts.append(start)
    short = bad[0]
    for b in bad[1:]:
        short = tr.parse("{a} | {b}", a=short, b=b)
    short = tr.hoist("short", short)
    live = selections.running(tr, short)
    text = _code(node).strip().replace("%", "%%")
    sizes = " x ".join(str(e.k) for _, e in wins)
    message = cst.SimpleString(
        repr(
            f"{text}: the slice is shorter than {sizes} in examples %s: it runs past an "
            "end of the array, so their results differ in shape from the others'"
        )
    )
    selections.runtime_check(
        tr,
        tr.parse("np.any({s})", s=live),
        "ValueError",
        tr.parse("{t} % np.flatnonzero({s}).tolist()", t=message, s=live),
    )
    if tr.mask is not None:
        # Lanes that do not run the statement may hold any start: read position 0 there.
        starts = [tr.parse("np.where({m}, {s}, 0)", m=tr.mask, s=s) for s in starts]
    memo[key] = starts
    return starts


def _windows(elems: list) -> list:
    """(axis, elem) of each window among index elements (``...`` already expanded)."""
    wins, axis = [], 0
    for e in elems:
        if e.kind == WINDOW:
            wins.append((axis, e))
        axis += e.consumes
    return wins


def _data(tr: Any, code: cst.BaseExpression) -> cst.BaseExpression:
    return code if isinstance(code, cst.Name) else tr.hoist("data", code)


def _tuple(items: list[int]) -> str:
    return str(items[0]) if len(items) == 1 else "(%s)" % ", ".join(map(str, items))


# ------------------------------------------------------------------- reading
def read(
    tr: Any, node: cst.Subscript, base_code: cst.BaseExpression, base: Val, elems: list
) -> tuple[cst.BaseExpression, Val]:
    """The gathered windows of ``base[..., i:i + k, ...]`` (``...`` already expanded;
    ``indexing.subscript`` applies the other index elements to the result)."""
    if tr.comp_depth:
        raise tr.unsupported(
            "a window x[i:i + k] with a batched start inside a comprehension (its bounds "
            "are checked before the statement)",
            "write the comprehension as a for loop",
        )
    wins = _windows(elems)
    data = _data(tr, base_code)
    starts = _starts(tr, node, data, base.batched, wins)
    return _gather(tr, data, base, wins, starts), Val.array(base.rank, True, base.dtype)


def _gather(
    tr: Any, data: cst.BaseExpression, base: Val, wins: list, starts: list
) -> cst.BaseExpression:
    """``sliding_window_view`` along the window axes, indexed by the lanes and starts;
    its window axes come last, and ``np.moveaxis`` puts them (and the batch axis) back."""
    b = int(base.batched)
    axes = [a for a, _ in wins]
    sizes = [e.k for _, e in wins]
    index: list[cst.BaseExpression] = []
    if base.batched:
        index.append(tr.parse("np.arange({x}.shape[0])", x=data))
    by_axis = dict(zip(axes, starts))
    for a in range(max(axes) + 1):
        index.append(by_axis.get(a, cst.Slice(lower=None, upper=None)))
    view = tr.parse(
        "%s({x}, %s, axis=%s)" % (SWV, _tuple(sizes), _tuple([a + b for a in axes])), x=data
    )
    elements = [
        cst.SubscriptElement(i if isinstance(i, cst.Slice) else cst.Index(i)) for i in index
    ]
    code: cst.BaseExpression = cst.Subscript(value=view, slice=elements)
    source, dest = _moves(base.rank, axes, base.batched)
    if source:
        code = tr.parse("np.moveaxis({x}, %s, %s)" % (_tuple(source), _tuple(dest)), x=code)
    return code


def _moves(rank: int, axes: list[int], batched: bool) -> tuple[list[int], list[int]]:
    """Where NumPy's advanced indexing leaves the batch and window axes, and where the
    loop has them (batch first, each window at its own axis)."""
    b = int(batched)
    positions = ([0] if batched else []) + [a + b for a in axes]
    others = [d for d in range(rank) if d not in axes]
    contiguous = positions == list(range(positions[0], positions[0] + len(positions)))
    # Adjacent advanced indices keep their place, others go first (NumPy's rule).
    before = sum(d + b < positions[0] for d in others) if contiguous else 0
    layout: list[Any] = others[:before] + ["B"] + others[before:] + [("w", a) for a in axes]
    target: list[Any] = ["B"] + [("w", d) if d in axes else d for d in range(rank)]
    if layout == target:
        return [], []
    moved = [x for x in layout if not isinstance(x, int)]
    for x in list(moved):  # the fewest axes to name: those that np.moveaxis must move
        fewer = [y for y in moved if y != x]
        if _moveaxis(layout, fewer, target) == target:
            moved = fewer
    return [layout.index(x) for x in moved], [target.index(x) for x in moved]


def _moveaxis(layout: list, moved: list, target: list) -> list:
    """The axes' order after ``np.moveaxis`` puts ``moved`` at their target places."""
    out: list[Any] = [None] * len(layout)
    for x in moved:
        out[target.index(x)] = x
    rest = iter(x for x in layout if x not in moved)
    return [x if x is not None else next(rest) for x in out]


def reduced(
    tr: Any, elem: Any, base_code: cst.BaseExpression, base: Val
) -> tuple[cst.BaseExpression, cst.Name]:
    """``x[i:i + k]`` under a reduction: the ``k`` items from the slice's first place
    (clipped to the array) and the mask of those inside the loop's slice, which is
    shorter where it runs past an end; a selection of those (selections.py), exact in
    every lane, read in ``k`` places rather than ``n``."""
    (lower, val), (upper, _) = elem.bounds
    check_start(tr, val)
    if tr.comp_depth:
        raise tr.unsupported("a window x[i:i + k] under a reduction inside a comprehension")
    if base.kind not in (ARRAY, SCALAR) or not base.rank:
        raise tr.unsupported("a window x[i:i + k] of an array of unknown or zero rank")
    data = _data(tr, base_code)
    memo = selections.statement_memo(tr)
    key = "reduced|%s|%s|%d" % (_code(data), _code(lower), elem.window)
    if key not in memo:
        memo[key] = _reduced(tr, data, base, lower, upper, val, elem.window)
    return memo[key]


def _reduced(
    tr: Any,
    data: cst.BaseExpression,
    base: Val,
    lower: cst.BaseExpression,
    upper: cst.BaseExpression,
    val: Val,
    k: int,
) -> tuple[cst.BaseExpression, cst.Name]:
    b = int(base.batched)
    n = tr.parse("{x}.shape[%d]" % b, x=data)
    bounds = []
    for bound in (lower, upper):
        if val.dtype != "u":
            bound = tr.parse("np.where({i} < 0, {i} + {n}, {i})", i=bound, n=n)
        bounds.append(tr.parse("np.clip({i}, 0, {n})", i=bound, n=n))
    first, stop = tr.hoist("first", bounds[0]), tr.hoist("stop", bounds[1])
    # The k items from the first place moved back to fit (a window longer than the
    # array raises in sliding_window_view): a contiguous copy, 20x faster than the fancy
    # index x[arange(B)[:, None], np.minimum(places, n - 1)].
    fitted = tr.hoist("fitted", tr.parse("np.minimum({f}, {n} - %d)" % k, f=first, n=n))
    view = tr.parse("%s({x}, %d, axis=%d)" % (SWV, k, b), x=data)
    if base.batched:
        window = tr.parse("{v}[np.arange({x}.shape[0]), {f}]", v=view, x=data, f=fitted)
    else:
        window = tr.parse("{v}[{f}]", v=view, f=fitted)
    if base.rank > 1:  # the window axis comes last in the view
        window = tr.parse("np.moveaxis({w}, -1, 1)", w=window)
    places = tr.parse("{f}[:, None] + np.arange(%d)" % k, f=fitted)
    mask = tr.parse("({p} >= {a}[:, None]) & ({p} < {e}[:, None])", p=places, a=first, e=stop)
    # Every lane's slice whole (the usual case): a test on B numbers, not B x k. Then
    # the mask is all True, made without the four B x k temporaries of the comparison
    # (selections._unless_full then takes the plain reduction).
    whole = tr.hoist("whole", tr.parse("np.all({e} - {f} == %d)" % k, e=stop, f=first))
    every = tr.parse("np.ones(({f}.shape[0], %d), dtype=bool)" % k, f=fitted)
    inside = tr.hoist("inside", tr.parse("{a} if {w} else {m}", a=every, w=whole, m=mask))
    selections.statement_memo(tr)["whole|" + inside.value] = whole
    return tr.hoist("window", window), inside


# ------------------------------------------------------------------- writing
def scatter_target(
    tr: Any, target: cst.Subscript, buf_code: cst.BaseExpression, buf: Val, elems: list
) -> tuple[cst.Subscript, int]:
    """``buf[i:i + k] = v`` (``buf`` already batched; windows and ``:`` only, ``...``
    expanded): a fancy-index write ``buf[np.arange(B)[:, None], start[:, None] +
    np.arange(k)]``, each window's positions on an axis of its own; full slices before
    a window become aranges."""
    wins = _windows(elems)
    data = _data(tr, buf_code)
    starts = _starts(tr, target, data, True, wins)
    last = max(a for a, _ in wins)
    n_adv = last + 1  # per-example axes indexed by arrays: each gets its own axis
    index = [tr.expand(tr.parse("np.arange({x}.shape[0])", x=data), n_adv)]
    by_axis = {a: s for (a, _), s in zip(wins, starts)}
    for a in range(n_adv):
        if a in by_axis:
            pos = tr.parse("{s}[:, None] + np.arange(%d)" % _length(wins, a), s=by_axis[a])
            code = _outer(tr, pos, a, n_adv, batched=True)
        else:
            pos = tr.parse("np.arange({x}.shape[%d])" % (a + 1), x=data)
            code = _outer(tr, pos, a, n_adv, batched=False)
        index.append(code)
    new = target.with_changes(
        value=buf_code, slice=[cst.SubscriptElement(cst.Index(i)) for i in index]
    )
    return new, buf.rank


def _length(wins: list, axis: int) -> int:
    return next(e.k for a, e in wins if a == axis)


def _outer(
    tr: Any, pos: cst.BaseExpression, axis: int, n: int, batched: bool
) -> cst.BaseExpression:
    """Positions along per-example ``axis`` shaped to broadcast as an outer product:
    ``(B, 1.., k, 1..)`` (``batched``) or ``(1, 1.., n, 1..)``."""
    parts = [":" if batched else "None"] + ["None"] * axis + [":"] + ["None"] * (n - axis - 1)
    if parts == [":", ":"]:
        return pos
    return tr.parse("{p}[%s]" % ", ".join(parts), p=pos)
