"""Boolean-mask selections whose length differs per example, consumed into fixed shapes.

Per example, ``x[m]`` with a mask that depends on the batch has a different length in
every example, so it cannot be one batched array. It is kept abstract instead: a
``Val`` of kind ``SELECTION`` that remembers its mask (hoisted into a temporary, so it
is computed once); its code is the unselected data. Elementwise work keeps the mask
(``(x[m] ** 2)`` is ``x ** 2`` under ``m``), and the consumers that end in a fixed
shape read the mask: ``x[m].sum()`` is ``np.where(m, x, 0).sum(axis=1)``, ``len(x[m])``
is ``np.count_nonzero(m, axis=1)``, ``x[m].max()`` fills with the dtype's lowest value
(and raises the loop's ValueError when a lane that runs it selects nothing). Anything
else (returning the selection, indexing it, mixing two masks) is refused: its length
differs per example.

Only batched masks make selections: ``x[m]`` with an unbatched mask has the same
length everywhere and stays a plain subscript (``indexing.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
import numpy as np

import astvmap.rules as rules
from astvmap.rules import Arg, CallSite

from .syntax import _marked_line
from .values import ARRAY, OBJECT, SCALAR, SELECTION, TREE, Val

LENGTH = "its length differs per example"
# The kind indexing.Elem gives a boolean mask (indexing imports this module, not back).
MASK = "mask"


@dataclasses.dataclass(frozen=True, eq=False)
class Selection:
    """What a selection value remembers: its (batched) mask and whether its data is batched."""

    mask: cst.Name  # per-example rank 1, batched: shape (B, n)
    data_batched: bool
    # np.nonzero(m)[0]: the selected positions, np.arange(n)[m]; indexing with it is x[m].
    positions: bool = False
    # x[i:i + k] under a reduction: gathered instead where it is used otherwise.
    window: bool = False


def is_selection(val: Val) -> bool:
    return val.kind == SELECTION


def contains(val: Val) -> bool:
    """Does ``val`` hold a selection (itself or in a container)?"""
    if val.kind == SELECTION:
        return True
    return val.kind == TREE and any(contains(v) for _, v in val.children)


def refuse(tr: Any, what: str) -> Exception:
    return tr.refuse(
        f"{what}: x[mask] with a mask that depends on the batch is a selection, {LENGTH}",
        "reduce it (sum, mean, max, len, ...) or use np.where(mask, x, fill) for a fixed shape",
    )


def check_escape(tr: Any, val: Val, what: str) -> None:
    """Refuse a selection that would leave the consumers that give fixed shapes."""
    if contains(val):
        raise refuse(tr, what)


def plain(val: Val) -> Val:
    """The selection's data as the array it is before selecting."""
    sel: Selection = val.selection
    return Val(ARRAY, batched=sel.data_batched, rank=val.rank, dtype=val.dtype)


def wrap(sel: Selection, data: Val) -> Val:
    return Val(SELECTION, batched=True, rank=data.rank, dtype=data.dtype, selection=sel)


# ------------------------------------------------------------------- producing
def select(
    tr: Any, node: cst.Subscript, base_code: cst.BaseExpression, base: Val, elems: list
) -> tuple[cst.BaseExpression, Val, list]:
    """``base[mask]`` (or ``base[mask, :]``) with a batched 1-D mask."""
    mask_elem = elems[0]
    rest = elems[1:]
    if mask_elem.kind != MASK or mask_elem.val.rank != 1 or any(not _full_slice(e) for e in rest):
        raise tr.refuse(
            "boolean-mask indexing other than x[mask] with a 1-D mask, where the mask "
            f"depends on the batch ({LENGTH})",
            "use np.where(mask, x, 0) (or another fill value) instead",
        )
    if base.kind not in (ARRAY, SCALAR) or not base.rank:
        raise tr.unsupported("boolean-mask indexing of an array of unknown or zero rank")
    if tr.comp_depth:
        raise refuse(tr, "a boolean-mask selection inside a comprehension")
    if hasattr(mask_elem, "bounds"):
        mask = tr.hoist("mask", _slice_mask(tr, mask_elem.bounds, base_code, base))
        return base_code, wrap(Selection(mask, base.batched), base), elems
    mask = tr.hoist("mask", mask_elem.element.slice.value)
    test = tr.parse("{x}.shape[%d] != {m}.shape[1]" % int(base.batched), x=base_code, m=mask)
    if getattr(mask_elem, "positions", False):
        # x[np.nonzero(m)[0]] is x[m] when x is as long as m; the loop also accepts a
        # longer x (and a shorter one when no position selected reaches past its end).
        message = "astvmap reads x[np.nonzero(m)[0]] as x[m]: x must be as long as m"
        runtime_check(tr, test, "ValueError", message)
    elif not _same_length(tr, mask_elem.element.slice.value, base_code):
        runtime_check(
            tr, test, "IndexError", "boolean index did not match indexed array along axis 0"
        )
    sel = Selection(mask, base.batched)
    return base_code, wrap(sel, base), elems


POSITION_FUNCTIONS = {np.nonzero: "nonzero", np.flatnonzero: "flatnonzero", np.where: "where"}


def makes_positions(target: Any, args: list[Arg], kwargs: dict[str, Arg]) -> bool:
    """``np.nonzero(m)``, ``np.flatnonzero(m)``, ``np.where(m)`` of a batched 1-D mask."""
    return (
        _hashable(target) in POSITION_FUNCTIONS
        and len(args) == 1
        and not kwargs
        and args[0].batched
        and args[0].val.kind in (ARRAY, SCALAR)
        and args[0].rank == 1
        and (args[0].val.dtype == "b" or target is np.flatnonzero)
    )


def positions(tr: Any, target: Any, arg: Arg) -> tuple[cst.BaseExpression, Val]:
    """The selected positions, ``np.arange(n)[m]``: a selection of ``np.arange(n)``."""
    if tr.comp_depth:
        raise refuse(tr, "a boolean-mask selection inside a comprehension")
    code = arg.code
    if arg.val.dtype != "b":
        code = tr.parse("{x} != 0", x=code)  # flatnonzero of numbers: their nonzero places
    mask = tr.hoist("mask", code)
    sel = Selection(mask, data_batched=False, positions=True)
    data = tr.parse("np.arange({m}.shape[1])", m=mask)
    val = Val(SELECTION, batched=True, rank=1, dtype="i", selection=sel)
    if target is np.flatnonzero:
        return data, val
    return Items([cst.Element(data)]), Val.tree(tuple, [(0, val)])


def is_positions(val: Val) -> bool:
    return val.kind == SELECTION and val.selection is not None and val.selection.positions


def positions_tuple(val: Val) -> bool:
    """``np.nonzero(m)`` itself: a tuple that is indexed ([0]) or unpacked next."""
    return val.kind == TREE and len(val.children) == 1 and is_positions(val.children[0][1])


def _slice_mask(
    tr: Any, bounds: list, base_code: cst.BaseExpression, base: Val
) -> cst.BaseExpression:
    """The places ``x[lo:hi]`` keeps, with Python's negative bounds (counted from the
    end); bounds past either end need no clipping in a comparison with positions."""
    length = tr.parse("{x}.shape[%d]" % int(base.batched), x=base_code)
    tests = []
    for (code, val), op in ((b, op) for b, op in zip(bounds, (">=", "<")) if b is not None):
        if val.kind not in (ARRAY, SCALAR) or val.rank != 0 or val.dtype not in ("i", "u"):
            raise tr.unsupported(
                "a slice bound that depends on the batch and is not known to be an integer",
                "convert it with int(...) or .astype(int)",
            )
        if not (val.is_static and val.static >= 0) and val.dtype != "u":
            code = tr.parse("np.where({b} < 0, {b} + {n}, {b})", b=code, n=length)
        if val.batched:
            code = tr.expand(code, 1)
        tests.append(tr.parse("np.arange({n}) %s {b}" % op, n=length, b=code))
    return tests[0] if len(tests) == 1 else tr.parse("({a}) & ({b})", a=tests[0], b=tests[1])


def _full_slice(e: Any) -> bool:
    sl = e.element.slice
    return isinstance(sl, cst.Slice) and sl.lower is None and sl.upper is None and sl.step is None


def _same_length(tr: Any, mask_code: cst.BaseExpression, base_code: cst.BaseExpression) -> bool:
    """Is the mask elementwise in ``base`` and scalars only (``x > 0``), so of its length?"""
    if not isinstance(base_code, cst.Name):
        return False
    seen = False

    def ok(node: cst.BaseExpression) -> bool:
        nonlocal seen
        if isinstance(node, cst.Name):
            if node.value == base_code.value:
                seen = True
                return True
            val = tr.env.get(node.value)
            return val is not None and val.kind in (ARRAY, SCALAR) and val.rank == 0
        if isinstance(node, (cst.Integer, cst.Float)):
            return True
        if isinstance(node, cst.Comparison):
            return ok(node.left) and all(ok(c.comparator) for c in node.comparisons)
        if isinstance(node, cst.BinaryOperation):
            return ok(node.left) and ok(node.right)
        if isinstance(node, cst.UnaryOperation):
            return ok(node.expression)
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            fn = getattr(np, node.func.attr.value, None)
            return (
                isinstance(node.func.value, cst.Name)
                and node.func.value.value == tr.np
                and isinstance(fn, np.ufunc)
                and all(a.keyword is None and not a.star and ok(a.value) for a in node.args)
            )
        return False

    return ok(mask_code) and seen


# ------------------------------------------------------------------- elementwise
COUNTS = {"size", "shape", "ndim", "dtype"}  # attributes read from a selection's mask


def lazy_windows(vals: list[Val]) -> bool:
    """Is one of ``vals`` a window ``x[i:i + k]`` kept as a selection (windows.py)?"""
    return any(is_selection(v) and v.selection is not None and v.selection.window for v in vals)


def combine(vals: list[Val]) -> bool:
    """Do these operands combine elementwise as selections (``_mask_of`` accepts them)?"""
    sels = [v.selection for v in vals if is_selection(v)]
    if not sels or any(s is None for s in sels) or len({s.mask.value for s in sels}) > 1:
        return False
    return all(is_selection(v) or (v.kind in (ARRAY, SCALAR) and v.rank == 0) for v in vals)


def _mask_of(tr: Any, args: list[Arg]) -> Selection:
    """The one mask the selections among ``args`` share; other operands must be scalars."""
    sels = [a.val.selection for a in args if is_selection(a.val)]
    if any(s is None for s in sels) or len({s.mask.value for s in sels}) > 1:
        raise refuse(tr, "combining selections by two different masks")
    for a in args:
        if not is_selection(a.val) and not (a.val.kind in (ARRAY, SCALAR) and a.val.rank == 0):
            raise refuse(tr, "combining a selection with an array of fixed length")
    return sels[0]


def _plain_args(args: list[Arg]) -> list[Arg]:
    return [Arg(a.code, plain(a.val)) if is_selection(a.val) else a for a in args]


def binary(tr: Any, node: cst.BinaryOperation, left: Arg, right: Arg, ufunc: Any) -> tuple:
    """``s op v`` with ``s`` a selection and ``v`` a scalar (or the same mask's selection)."""
    sel = _mask_of(tr, [left, right])
    if isinstance(node.operator, cst.MatrixMultiply):
        raise refuse(tr, "a matrix product of a selection")
    (lc, rc), val = rules.elementwise.align_binary(tr, *_plain_args([left, right]), ufunc)
    return node.with_changes(left=lc, right=rc), wrap(sel, val)


def unary(tr: Any, node: cst.UnaryOperation, code: cst.BaseExpression, val: Val) -> tuple:
    if isinstance(node.operator, cst.Not) or val.selection is None:
        raise refuse(tr, "the truth value of a selection")
    return node.with_changes(expression=code), val


def compare(tr: Any, node: cst.Comparison, operands: list[tuple]) -> tuple:
    if len(node.comparisons) != 1:
        raise refuse(tr, "a chained comparison of a selection")
    args = [Arg(c, v) for c, v in operands]
    sel = _mask_of(tr, args)
    (a, b), val = rules.elementwise.align_binary(tr, *_plain_args(args))
    code = node.with_changes(left=a, comparisons=[node.comparisons[0].with_changes(comparator=b)])
    return code, wrap(sel, dataclasses.replace(val, dtype="b"))


# ------------------------------------------------------------------- consumers
REDUCTIONS: dict[Any, str] = {
    np.sum: "sum",
    np.prod: "prod",
    np.mean: "mean",
    np.std: "std",
    np.var: "var",
    np.max: "max",
    np.amax: "max",
    np.min: "min",
    np.amin: "min",
    np.any: "any",
    np.all: "all",
    np.count_nonzero: "count_nonzero",
}
METHODS = {"sum", "prod", "mean", "std", "var", "max", "min", "any", "all"}
FILL = {"sum": "0", "prod": "1", "any": "False", "all": "True", "count_nonzero": "0"}
EXTREME = {"max": ("-np.inf", "min", "False"), "min": ("np.inf", "max", "True")}
NUMPY_NAME = {"max": "maximum", "min": "minimum"}


def call(
    tr: Any,
    func_code: cst.BaseExpression,
    target: Any,
    args: list[Arg],
    kwargs: dict[str, Arg],
    method: str | None = None,
) -> tuple[cst.BaseExpression, Val]:
    """A call given a selection: a reduction, ``len``, or an elementwise ufunc."""
    if method is not None:
        name = method if method in METHODS else None
        fn = getattr(np, method, None) if name else None
    else:
        name, fn = REDUCTIONS.get(_hashable(target)), target
    if name is not None:
        return reduce(tr, name, fn, args, kwargs, method is not None)
    if target is len and len(args) == 1 and not kwargs and is_selection(args[0].val):
        return count(tr, args[0].val), Val.array(0, True, "i")
    if isinstance(target, np.ufunc) and target.nout == 1 and not kwargs:
        sel = _mask_of(tr, args)
        site = CallSite(tr, func_code, target, _plain_args(args), {})
        code, val = rules.with_dtype(site, rules.lookup(target)(site))
        return code, wrap(sel, val)
    what = (
        f".{method}() of a selection"
        if method
        else f"passing a selection to {getattr(target, '__name__', 'a function')}()"
    )
    raise refuse(tr, what)


def _hashable(obj: Any) -> Any:
    try:
        hash(obj)
    except TypeError:
        return None
    return obj


def count(tr: Any, val: Val) -> cst.BaseExpression:
    """The number of selected rows per lane."""
    return tr.parse("np.count_nonzero({m}, axis=1)", m=val.selection.mask)


def reduce(
    tr: Any, name: str, fn: Any, args: list[Arg], kwargs: dict[str, Arg], method: bool
) -> tuple[cst.BaseExpression, Val]:
    site = CallSite(tr, cst.Name(name), fn, args, kwargs, method=name if method else None)
    b = site.bind(fn)
    x = args[0]
    if not is_selection(x.val) or x.val.selection is None:
        raise refuse(tr, f"{name}() of a mix of selections")
    if any(is_selection(a.val) or a.batched for a in [*args[1:], *kwargs.values()]):
        raise refuse(tr, f"{name}() of a selection with another batched argument")
    allowed = {"axis", "ddof"} | ({"initial"} if name in EXTREME else set())
    passed = set(b.where) - {"a"}
    if passed - allowed:
        raise refuse(tr, f"{name}() of a selection with {sorted(passed - allowed)[0]}=")
    rank = x.val.rank
    axis = b.value("axis", None)
    if axis is not None and axis not in (0, -rank):
        raise refuse(tr, f"{name}() of a selection along axis {axis!r} (not the selected axis)")
    sel: Selection = x.val.selection
    mask = tr.expand(sel.mask, rank - 1, after=2)
    axes = "1" if rank == 1 or axis is not None else repr(tuple(range(1, rank + 1)))
    out_rank = 0 if axis is None else rank - 1
    dtype = x.val.dtype
    if name in FILL:
        code = tr.parse("np.where({m}, {x}, %s)" % FILL[name], m=mask, x=x.code)
        if name == "count_nonzero":
            code = tr.parse("np.count_nonzero({x}, axis=%s)" % axes, x=code)
            return code, Val.array(out_rank, True, "i")
        code = tr.parse("{x}.%s(axis=%s)" % (name, axes), x=code)
        plain = tr.parse("{x}.%s(axis=%s)" % (name, axes), x=x.code)
        kind = "b" if name in ("any", "all") else ("i" if dtype == "b" else dtype)
        return _unless_full(tr, sel, code, plain), Val.array(out_rank, True, kind)
    if name in EXTREME:
        return _extreme(tr, name, b, x, mask, axes, out_rank)
    # mean, std, var: NumPy's own where= reductions, as the loop's empty-selection nan.
    data = x.code
    if not sel.data_batched:
        shape = "{m}.shape" if rank == 1 else "(*{m}.shape, *{x}.shape[1:])"
        data = tr.parse("np.broadcast_to({x}, %s)" % shape, x=data, m=sel.mask)
    extra = ""
    if name in ("std", "var"):
        ddof = b.value("ddof", 0)
        if not isinstance(ddof, (int, float)) or isinstance(ddof, bool):
            raise refuse(tr, f"{name}() of a selection with a ddof= that is not a number")
        extra = f", ddof={ddof!r}" if ddof else ""
    code = tr.parse("{x}.%s(axis=%s, where={m}%s)" % (name, axes, extra), x=data, m=mask)
    plain = tr.parse("{x}.%s(axis=%s%s)" % (name, axes, extra), x=data)
    kind = "c" if name == "mean" and dtype == "c" else "f"
    return _unless_full(tr, sel, code, plain), Val.array(out_rank, True, kind)


def _unless_full(
    tr: Any, sel: Selection, masked: cst.BaseExpression, plain: cst.BaseExpression
) -> cst.BaseExpression:
    """A window's reduction: where every lane's slice is whole (the usual case) the
    plain reduction, 2-6x faster than NumPy's where= (or np.where) over the same items."""
    if not sel.window:
        return masked
    memo = statement_memo(tr)
    key = "whole|" + sel.mask.value
    if not isinstance(memo.get(key), cst.Name):
        memo[key] = tr.hoist("whole", memo.get(key) or tr.parse("np.all({m})", m=sel.mask))
    full = memo[key]
    return tr.parse("{p} if {f} else {m}", p=plain, f=full, m=masked)


def _extreme(
    tr: Any, name: str, b: Any, x: Arg, mask: cst.BaseExpression, axes: str, out_rank: int
) -> tuple[cst.BaseExpression, Val]:
    """max/min: fill the unselected places with the dtype's other extreme; an empty
    selection raises in the lanes that run it, as the loop's NumPy call does."""
    inf, info, boolean = EXTREME[name]
    dtype = x.val.dtype
    data = x.code
    if dtype == "f":
        fill = inf
    elif dtype in ("i", "u"):
        data = tr.hoist("data", data)
        fill = "np.iinfo({x}.dtype).%s" % info
    elif dtype == "b":
        fill = boolean
    else:
        raise tr.unsupported(
            f"{name}() of a boolean-mask selection whose dtype is not known ({LENGTH}, so "
            "the unselected places need a fill value of the array's dtype)",
            "convert the array with .astype(float) first",
        )
    initial = b.get("initial")
    if initial is None:
        empty = tr.parse("~np.any({m}, axis=1)", m=x.val.selection.mask)
        runtime_check(
            tr,
            tr.parse("np.any({e})", e=running(tr, empty)),
            "ValueError",
            f"zero-size array to reduction operation {NUMPY_NAME[name]} which has no identity",
        )
        extra = ""
    else:
        extra = ", initial={i}"
    subs = {"m": mask, "x": data} | ({"i": initial.code} if initial is not None else {})
    code = tr.parse(("np.where({m}, {x}, %s).%s(axis=%s%s)" % (fill, name, axes, extra)), **subs)
    return code, Val.array(out_rank, True, dtype)


def item(tr: Any, code: cst.BaseExpression, val: Val, k: int) -> tuple[cst.BaseExpression, Val]:
    """``s[k]`` with a static int ``k`` of a 1-D selection: the value at the position of
    the (k+1)-th selected place (counted from the end when k < 0), found with a cumulative
    count of the mask; the loop's IndexError in a lane that runs it and selects too few."""
    sel: Selection | None = val.selection
    if sel is None or val.rank != 1:
        raise refuse(tr, "indexing a selection by position (of more than one dimension)")
    count = tr.hoist("count", tr.parse("np.count_nonzero({m}, axis=1)", m=sel.mask))
    nth = cst.Integer(str(k)) if k >= 0 else tr.parse("{c} - %d" % -k, c=count)
    short = tr.parse("({n} < 0) | ({n} >= {c})", n=nth, c=count)
    runtime_check(
        tr,
        tr.parse("np.any({s})", s=running(tr, short)),
        "IndexError",
        f"index {k} is out of bounds for axis 0 (the selection is too short)",
    )
    nth_col = cst.Integer(str(k + 1)) if k >= 0 else tr.parse("({n} + 1)[:, None]", n=nth)
    pos = tr.parse("np.argmax(np.cumsum({m}, axis=1) == {j}, axis=1)", m=sel.mask, j=nth_col)
    if sel.positions:
        return pos, Val.array(0, True, "i")
    if sel.data_batched:
        code = tr.parse("np.take_along_axis({x}, {p}[:, None], axis=1)[:, 0]", x=code, p=pos)
    else:
        code = tr.parse("{x}[{p}]", x=code, p=pos)
    return code, Val.array(0, True, val.dtype)


def attribute(
    tr: Any, node: cst.Attribute, base_code: cst.BaseExpression, base: Val, attr: str
) -> tuple[cst.BaseExpression, Val]:
    """``s.size``, ``s.shape``, ``s.ndim``, ``s.dtype`` of a selection."""
    if base.selection is None:
        raise refuse(tr, f".{attr} of a selection")
    n = count(tr, base)
    rank = base.rank
    if attr == "ndim":
        return tr.parse(repr(rank)), Val.const(rank)
    if attr == "dtype":
        return node.with_changes(value=base_code), _dtype_val()
    rest = [tr.parse("{x}.shape[%d]" % (k - rank), x=base_code) for k in range(1, rank)]
    if attr == "size":
        code = n
        for dim in rest:
            code = tr.parse("{a} * {b}", a=code, b=dim)
        return code, Val.array(0, True, "i")
    if attr == "shape":
        elements = [cst.Element(n), *[cst.Element(d) for d in rest]]
        kids = [(0, Val.array(0, True, "i"))] + [
            (k, Val(SCALAR, rank=0, dtype="i")) for k in range(1, rank)
        ]
        return Items(elements), Val.tree(tuple, kids)
    raise refuse(tr, f".{attr} of a selection")


class Items(cst.Tuple):
    """A tuple built here (a selection's ``.shape``, ``np.nonzero(m)``): ``t[k]`` picks
    the item itself rather than building the tuple to index it."""


def shape_item(code: cst.BaseExpression, key: Any) -> cst.BaseExpression | None:
    """``t[k]`` of an ``Items`` tuple: its k-th element."""
    if isinstance(code, Items) and isinstance(key, int) and -len(code.elements) <= key:
        if key < len(code.elements):
            return code.elements[key].value
    return None


def _dtype_val() -> Val:
    return Val(OBJECT, container=np.dtype)


def statement_memo(tr: Any) -> dict:
    """What this statement computed into temporaries already (windows.py: a window's
    check and gather, its "every slice whole" test), by a key of the caller's. It lives
    as long as ``tr.checked``, the statement's set of checks, which a new statement, a
    dry run and a rolled-back translation all replace (the temporaries may be gone)."""
    owner, memo = getattr(tr, "_statement_memo", (None, {}))
    if owner is not tr.checked:
        memo = {}
        tr._statement_memo = (tr.checked, memo)
    return memo


def running(tr: Any, lanes: cst.BaseExpression) -> cst.BaseExpression:
    """``lanes`` restricted to the lanes that run the current statement (under a batched
    condition, those of its mask): where a run-time check may raise as the loop would."""
    if tr.mask is None:
        return lanes
    return tr.parse("{m} & {s}", m=tr.mask, s=lanes)


def runtime_check(
    tr: Any, test: cst.BaseExpression, exc: str, message: str | cst.BaseExpression
) -> None:
    """``if test: raise exc(message)`` before the statement. The statement's hoisted
    temporaries so far (the mask) move before it, since the test reads them. ``message``
    is text, or an expression (one that names the failing examples)."""
    stmt = tr.current_stmt
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) > 1:
        # The check runs before the whole line, so before what its first statements bind.
        raise tr.unsupported(
            "a boolean-mask selection or a window x[i:i + k] checked at run time, on a line "
            "of several statements",
            "put the statement on a line of its own",
        )
    key = "selection check: " + cst.Module([]).code_for_node(test)
    if key in tr.checked:  # the same test in this statement already
        return
    tr.checked.add(key)
    marker = tr._marker(tr.current_stmt)
    tr.checks.extend(_marked_line(s, marker) for s in tr.pending)
    tr.pending.clear()
    text = cst.SimpleString(repr(message)) if isinstance(message, str) else message
    raise_ = cst.Raise(exc=cst.Call(cst.Name(exc), [cst.Arg(text)]))
    tr.checks.append(cst.If(test=test, body=cst.IndentedBlock([_marked_line(raise_, marker)])))


def bind(
    tr: Any, node: cst.Assign, code: cst.BaseExpression, val: Val
) -> tuple[cst.BaseExpression, Val]:
    """``s = x[m]``: the name holds the data (a copy, as the loop's ``x[m]`` is one, so a
    later in-place change of ``x`` does not reach ``s``); refused for any other target."""
    targets = [t.target for t in node.targets]
    if positions_tuple(val) and all(
        isinstance(t, (cst.Tuple, cst.List))
        and len(t.elements) == 1
        and isinstance(t.elements[0].value, cst.Name)
        for t in targets
    ):
        return code, val  # (i,) = np.nonzero(m)
    if not all(isinstance(t, cst.Name) for t in targets) or not is_selection(val):
        raise refuse(tr, "storing a selection other than in a plain name")
    if tr.mask is not None:
        raise refuse(tr, "binding a selection under a batched condition")
    if isinstance(code, (cst.Name, cst.Attribute, cst.Subscript)):
        code = tr.parse("{x}.copy()", x=code)
    return code, val


# ------------------------------------------------------------------- writes
def mask_write(elems: list, val: Val) -> bool:
    """Is ``buf[index] = val`` a write through a batched mask (``y[m] = v``)? A selection
    written anywhere else is refused by ``write``'s caller (its length differs)."""
    return any(e.kind == MASK and e.batched for e in elems) or is_selection(val)


def write(
    tr: Any,
    target: cst.Subscript,
    buf_code: cst.BaseExpression,
    buf: Val,
    elems: list,
    val: Val,
    code: cst.BaseExpression,
) -> tuple[cst.Subscript, cst.BaseExpression]:
    """``y[m] = v`` (and ``y[m] += v``) with a batched mask, ``buf`` already batched: the
    same boolean-index write on the batch, so NumPy's casting is the loop's. The value is
    laid out as ``y[m]`` is: a scalar as it is, a batched scalar repeated per lane by the
    number of places it fills, a selection by the same mask read through it."""
    mask_elem = elems[0]
    if (
        mask_elem.kind != MASK
        or not mask_elem.batched
        or mask_elem.val.rank != 1
        or any(not _full_slice(e) for e in elems[1:])
    ):
        raise refuse(tr, "writing a selection other than through its own mask")
    if tr.mask is not None:
        raise refuse(tr, "writing through a boolean mask under a batched condition")
    mask = tr.hoist("mask", mask_elem.element.slice.value)
    rank = buf.rank
    if rank is None or rank < 1:
        raise tr.unsupported("a boolean-mask write into an array of unknown or zero rank")
    new_target = target.with_changes(value=buf_code, slice=[cst.SubscriptElement(cst.Index(mask))])
    if is_selection(val):
        if val.selection is None or val.selection.mask.value != mask.value:
            raise refuse(tr, "writing a selection through another mask")
        if not val.selection.data_batched:
            shape = "{m}.shape" if rank == 1 else "(*{m}.shape, *{x}.shape[1:])"
            code = tr.parse("np.broadcast_to({x}, %s)" % shape, x=code, m=mask)
        return new_target, tr.parse("{x}[{m}]", x=code, m=mask)
    if val.kind not in (ARRAY, SCALAR) or val.rank != 0:
        raise refuse(tr, "writing an array of fixed length into a selection")
    if val.batched:
        code = tr.parse("np.repeat({v}, np.count_nonzero({m}, axis=1))", v=code, m=mask)
        code = tr.expand(code, rank - 1, after=1)
    return new_target, code
