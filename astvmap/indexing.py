"""Subscripts under vmap: basic indexing, gathers and scatters.

Per example, ``x[i]`` with a batched integer ``i`` picks a different element in
every example. Batched, that is one advanced-indexing expression: the batch axis
gets its own index ``np.arange(B)`` broadcast against the batched index arrays,
``x[np.arange(B), i]``. NumPy places the dimensions of advanced indices first
when they are not adjacent, and in place when they are; the code here works out
where the per-example result puts them and moves axes when the batched layout
differs (``np.moveaxis``), so the result always has the batch axis first and the
per-example axes in the loop's order.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import libcst as cst
import numpy as np

from . import windows
from .values import ARRAY, NONE, NOVALUE, SCALAR, SELECTION, TREE, Val
from .windows import WINDOW


class Translator(Protocol):
    """What indexing uses of the translator (``rewrite.Translator``: its families
    import this module, so the type is described here rather than imported)."""

    @property
    def mask(self) -> cst.Name | None: ...
    def expr(self, node: cst.BaseExpression) -> tuple[cst.BaseExpression, Val]: ...
    def parse(self, template: str, **subs: cst.BaseExpression) -> cst.BaseExpression: ...
    def expand(
        self, code: cst.BaseExpression, count: int, after: int = 1
    ) -> cst.BaseExpression: ...
    def batch_size(self) -> cst.BaseExpression: ...
    def unsupported(self, message: str, hint: str | None = None) -> Exception: ...
    def refuse(self, message: str, hint: str | None = None) -> Exception: ...


SLICE, NEWAXIS, ELLIPSIS, INT, ARRAY_INDEX, MASK = (
    "slice",
    "none",
    "ellipsis",
    "int",
    "array",
    "mask",
)


@dataclasses.dataclass
class Elem:
    kind: str
    element: cst.SubscriptElement  # translated
    val: Val
    rank: int = 0  # rank of the index array (INT: 0); MASK: axes it consumes

    @property
    def batched(self) -> bool:
        return self.val.batched

    @property
    def consumes(self) -> int:
        return {SLICE: 1, NEWAXIS: 0, ELLIPSIS: 0, INT: 1, ARRAY_INDEX: 1, WINDOW: 1}.get(
            self.kind, self.rank
        )


@dataclasses.dataclass
class Plan:
    """What a subscript does per example, and the batched code for it."""

    elems: list[Elem]
    rank: int | None  # per-example rank of the result
    batched: bool


def _static_kind(value: Any) -> str | None:
    try:
        return np.asarray(value).dtype.kind
    except Exception:  # noqa: BLE001
        return None


def classify(tr: Translator, node: cst.Subscript, base: Val, select: bool = False) -> list[Elem]:
    """Translate and classify each index element (``select``: a read, where a batched
    1-D boolean mask makes a selection, see selections.py)."""
    elements = list(node.slice)
    if len(elements) == 1 and isinstance(elements[0].slice, cst.Index):
        el = elements[0]
        code, v = tr.expr(el.slice.value)  # translated once, whichever way it is used
        if not (v.kind == TREE and v.container is tuple and v.children and not v.batched):
            return [
                _classify_value(
                    tr, el.with_changes(slice=el.slice.with_changes(value=code)), v, select, base
                )
            ]
        # x[idx] with idx a tuple of index arrays (np.triu_indices) is x[idx[0], idx[1]].
        elements = [
            cst.SubscriptElement(cst.Index(tr.parse("{t}[%d]" % i, t=code)))
            for i in range(len(v.children))
        ]
    out = []
    for el in elements:
        sl = el.slice
        if isinstance(sl, cst.Slice) and select and len(elements) == 1 and sl.step is None:
            bounds = [None if b is None else tr.expr(b) for b in (sl.lower, sl.upper)]
            parts = {k: b[0] for k, b in zip(("lower", "upper"), bounds) if b is not None}
            new_slice = el.with_changes(slice=sl.with_changes(**parts))
            if any(b is not None and b[1].batched for b in bounds):
                k = windows.window_length(tr, sl)
                if k is not None and not getattr(tr, "lazy_window", False):
                    # x[i:i + k] used as an array: a gather of windows of length k.
                    return [_window(tr, new_slice, bounds[0][1], k)]
                # x[:n].sum() with a batched n: a selection under np.arange(len) < n.
                elem = Elem(MASK, el, Val.array(1, True, "b"), rank=1)
                elem.bounds = bounds  # type: ignore[attr-defined]
                elem.window = k  # type: ignore[attr-defined]
                return [elem]
            return [Elem(SLICE, new_slice, Val.const(slice(None)))]
        if isinstance(sl, cst.Slice):
            parts, batched = {}, None
            for part in ("lower", "upper", "step"):
                sub = getattr(sl, part)
                if sub is not None:
                    code, v = tr.expr(sub)
                    if v.batched:
                        batched = batched or (part, v)
                    parts[part] = code
            new_slice = el.with_changes(slice=sl.with_changes(**parts))
            if batched is not None:
                k = windows.window_length(tr, sl)
                if k is None or batched[0] != "lower":
                    raise tr.refuse(
                        "a slice bound that depends on the batch (the result's shape would "
                        "differ per example), other than a window x[i:i + k] of a length k "
                        "known while transforming",
                        "slice to a fixed bound and mask with np.where",
                    )
                out.append(_window(tr, new_slice, batched[1], k))
                continue
            out.append(Elem(SLICE, new_slice, Val.const(slice(None))))
            continue
        code, v = tr.expr(sl.value)
        new = el.with_changes(slice=sl.with_changes(value=code))
        out.append(_classify_value(tr, new, v, select and not out, base))
    return out


def _window(tr: Translator, el: cst.SubscriptElement, start: Val, k: int) -> Elem:
    windows.check_start(tr, start)
    elem = Elem(WINDOW, el, start)
    elem.k = k  # type: ignore[attr-defined]
    return elem


def is_full_slice(e: Elem) -> bool:
    sl = e.element.slice
    return (
        e.kind == SLICE
        and isinstance(sl, cst.Slice)
        and sl.lower is None
        and sl.upper is None
        and sl.step is None
    )


def _classify_value(
    tr: Translator,
    el: cst.SubscriptElement,
    v: Val,
    select: bool = False,
    base: Val | None = None,
) -> Elem:
    if v.kind == SELECTION:
        from . import selections

        if not (select and selections.is_positions(v)):
            raise selections.refuse(tr, "indexing with a selection")
        # x[np.nonzero(m)[0]]: the selected positions index as the mask does.
        mask = cst.Index(v.selection.mask)
        elem = Elem(MASK, el.with_changes(slice=mask), Val.array(1, True, "b"), rank=1)
        elem.positions = True  # type: ignore[attr-defined]
        return elem
    if v.kind == NONE:
        return Elem(NEWAXIS, el, v)
    if v.static is Ellipsis:
        return Elem(ELLIPSIS, el, v)
    dtype = v.dtype
    rank = v.rank
    if v.kind == TREE:
        if v.batched:
            raise tr.unsupported(
                "indexing with a list that holds batched values",
                "build the index with np.array([...]) first",
            )
        if not v.is_static:
            raise tr.unsupported("indexing with a list whose contents are not known")
        dtype, rank = _static_kind(v.static), np.ndim(v.static)
    if v.kind == SCALAR and dtype in ("i", "u", None) and not v.batched:
        return Elem(INT, el, v)
    if v.kind not in (ARRAY, SCALAR, TREE) or rank is None:
        if v.batched:
            raise tr.unsupported("an index of unknown rank that depends on the batch")
        return Elem(ARRAY_INDEX, el, v, rank=-1)  # unknown: only usable unbatched
    if dtype == "b":
        if v.batched and select and rank == 1:
            return Elem(MASK, el, v, rank=1)  # a selection (selections.select)
        if v.batched:
            # A per-example scalar (rank 0) is a NumPy scalar in the loop, which raises
            # for a mask index (pymap3d catches that TypeError): the loop decides.
            scalar = base is not None and base.kind in (ARRAY, SCALAR) and base.rank == 0
            raise (tr.unsupported if scalar else tr.refuse)(
                "boolean-mask indexing gives a result whose shape depends on the data",
                "use np.where(mask, x, 0) (or another fill value) instead",
            )
        return Elem(MASK, el, v, rank=max(rank, 1))
    if v.batched and dtype not in ("i", "u"):
        raise tr.unsupported(
            "a batched index whose dtype is not known to be integer (a boolean index would "
            "be a mask, an integer one a gather)",
            "convert it with .astype(int) (or index with an integer argument)",
        )
    if rank == 0:
        return Elem(INT, el, v)
    return Elem(ARRAY_INDEX, el, v, rank=rank)


def expand_ellipsis(tr: Translator, elems: list[Elem], base_rank: int | None) -> list[Elem]:
    """Replace ``...`` by explicit slices (the batched index must be explicit)."""
    n_ellipsis = sum(e.kind == ELLIPSIS for e in elems)
    if n_ellipsis > 1:
        raise tr.unsupported("an index with more than one `...`")
    if base_rank is None:
        if n_ellipsis or any(e.kind == MASK for e in elems):
            raise tr.unsupported("cannot infer the rank of the indexed array")
        return elems
    consumed = sum(e.consumes for e in elems)
    if consumed > base_rank:
        raise tr.refuse(f"too many indices for a per-example array of rank {base_rank}")
    fill = [
        Elem(SLICE, cst.SubscriptElement(cst.Slice(lower=None, upper=None)), Val.const(slice(None)))
        for _ in range(base_rank - consumed)
    ]
    if not n_ellipsis:
        return elems  # trailing axes are implicit
    i = next(i for i, e in enumerate(elems) if e.kind == ELLIPSIS)
    return elems[:i] + fill + elems[i + 1 :]


def _advanced(elems: list[Elem]) -> list[int]:
    """Positions NumPy treats as advanced indices (ints count once an array is present)."""
    arrays = [
        i
        for i, e in enumerate(elems)
        if e.kind in (ARRAY_INDEX, MASK) or (e.kind == INT and e.batched)
    ]
    if not arrays:
        return []
    return [i for i, e in enumerate(elems) if e.kind in (ARRAY_INDEX, MASK, INT)]


def _static_int_index(tr: Translator, node: cst.Subscript) -> int | None:
    """``k`` in ``s[k]`` when it is one int known while transforming, else None."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    _, key = tr.expr(node.slice[0].slice.value)
    k = key.static if key.is_static else None
    return k if type(k) is int else None


def _contiguous(positions: list[int]) -> bool:
    return not positions or positions[-1] - positions[0] + 1 == len(positions)


def _result_dims(e: Elem) -> int:
    return 1 if e.kind in (SLICE, NEWAXIS, WINDOW) else 0


def subscript(
    tr: Translator,
    node: cst.Subscript,
    base_code: cst.BaseExpression,
    base: Val,
    elems: list[Elem] | None = None,
) -> tuple[cst.BaseExpression, Val, list[Elem]]:
    """The batched code for ``base[index]`` and its abstract value."""
    if base.kind == SELECTION:
        from . import selections

        k = _static_int_index(tr, node)
        if k is None:
            raise selections.refuse(tr, "indexing a selection by position")
        return (*selections.item(tr, base_code, base, k), [])
    if elems is None:
        elems = classify(tr, node, base, select=True)
        if any(e.kind == MASK and e.batched for e in elems):
            from . import selections

            if getattr(elems[0], "window", None):
                # x[i:i + k] under a reduction: a selection of the k items from i.
                data, mask = windows.reduced(tr, elems[0], base_code, base)
                sel = selections.Selection(mask, True, window=True)
                return data, selections.wrap(sel, base), elems
            return selections.select(tr, node, base_code, base, elems)
    if any(e.kind == WINDOW for e in elems):
        return _window_read(tr, node, base_code, base, elems)
    index_batched = any(e.batched for e in elems)
    dtype = base.dtype
    if not base.batched and not index_batched:
        rank = _plain_rank(elems, base.rank)
        new = node.with_changes(value=base_code, slice=[e.element for e in elems])
        return new, Val.array(rank, dtype=dtype), elems
    if base.rank is None:
        raise tr.unsupported("cannot infer the rank of the indexed array")
    unknown = [e.val for e in elems if e.kind == ARRAY_INDEX and e.rank < 0]
    if unknown:
        from .probing import refuse

        raise refuse(tr, "an index array of unknown rank in a batched subscript", None, unknown)
    if not index_batched and _contiguous(_advanced(elems)):
        # A leading `:` keeps the batch axis (and adjacent advanced indices in place).
        rank = _plain_rank(elems, base.rank)
        if elems and elems[0].kind == ELLIPSIS:
            code = node.with_changes(value=base_code, slice=[e.element for e in elems])
        else:
            code = node.with_changes(
                value=base_code, slice=[_full_slice(), *[e.element for e in elems]]
            )
        return code, Val.array(rank, True, dtype), elems
    elems = expand_ellipsis(tr, elems, base.rank)
    return gather(tr, node, base_code, base, elems, _advanced(elems))


def _window_read(
    tr: Translator,
    node: cst.Subscript,
    base_code: cst.BaseExpression,
    base: Val,
    elems: list[Elem],
) -> tuple[cst.BaseExpression, Val, list[Elem]]:
    """``base[..., i:i + k, ...]``: the windows gathered (windows.py), then the other
    index elements applied to that, each window now a ``:``."""
    if base.rank is None:
        raise tr.unsupported("a window x[i:i + k] of an array of unknown rank")
    elems = expand_ellipsis(tr, elems, base.rank)
    code, val = windows.read(tr, node, base_code, base, elems)
    full = Elem(SLICE, _full_slice(), Val.const(slice(None)))
    rest = [full if e.kind == WINDOW else e for e in elems]
    if all(is_full_slice(e) for e in rest):
        return code, val, rest
    return subscript(tr, node, code, val, rest)


def _full_slice() -> cst.SubscriptElement:
    return cst.SubscriptElement(cst.Slice(lower=None, upper=None))


def _plain_rank(elems: list[Elem], base_rank: int | None) -> int | None:
    if base_rank is None or any(e.kind == ARRAY_INDEX and e.rank < 0 for e in elems):
        return None
    adv = _advanced(elems)
    s = (
        max((e.rank if e.kind != MASK else 1) for i, e in enumerate(elems) if i in adv)
        if adv
        else 0
    )
    consumed = sum(e.consumes for e in elems)
    if consumed > base_rank:
        return None
    # Slices and new axes give a dimension each; unindexed trailing axes stay.
    return sum(_result_dims(e) for e in elems) + (base_rank - consumed) + s


def gather(
    tr: Translator,
    node: cst.Subscript,
    base_code: cst.BaseExpression,
    base: Val,
    elems: list[Elem],
    adv: list[int],
) -> tuple[cst.BaseExpression, Val, list[Elem]]:
    if any(elems[i].kind == MASK for i in adv):
        raise tr.unsupported(
            "a boolean mask combined with batched indices",
            "index with integer arrays (np.nonzero(mask)) instead",
        )
    s = max(elems[i].rank for i in adv)
    before = sum(_result_dims(e) for e in elems[: adv[0]])
    contiguous = _contiguous(adv)
    new_elements = []
    for i, e in enumerate(elems):
        if i in adv and e.batched:
            code = e.element.slice.value  # type: ignore[attr-defined]
            if tr.mask is not None:
                # Lanes that do not run this statement may hold any index (the loop
                # never uses it there): read position 0 for them instead of raising.
                code = tr.parse("np.where({m}, {i}, 0)", m=tr.expand(tr.mask, e.rank), i=code)
            code = tr.expand(code, s - e.rank)
            new_elements.append(e.element.with_changes(slice=cst.Index(code)))
        else:
            new_elements.append(e.element)
    rank = sum(_result_dims(e) for e in elems) + s + base.rank - sum(e.consumes for e in elems)
    if base.batched:
        batch = (
            tr.parse("{x}.shape[0]", x=base_code)
            if isinstance(base_code, cst.Name)
            else tr.batch_size()
        )
        arange = (
            tr.expand(tr.parse("np.arange({b})", b=batch), s, after=1)
            if s
            else tr.parse("np.arange({b})", b=batch)
        )
        code: cst.BaseExpression = node.with_changes(
            value=base_code, slice=[cst.SubscriptElement(cst.Index(arange)), *new_elements]
        )
        # Batched layout: (B, *S, slice dims); per example S sits after `before` dims
        # when the advanced indices are adjacent.
        if contiguous and before and s:
            code = tr.parse(
                "np.moveaxis({x}, %r, %r)" % (_axes(1, s), _axes(1 + before, s)), x=code
            )
    else:
        code = node.with_changes(value=base_code, slice=new_elements)
        # Adjacent advanced indices keep their place: the batch axis lands after `before`.
        if contiguous and before:
            code = tr.parse("np.moveaxis({x}, %d, 0)" % before, x=code)
    return code, Val.array(rank, True, base.dtype), elems


def _axes(start: int, n: int) -> Any:
    return start if n == 1 else tuple(range(start, start + n))


def scatter_target(
    tr: Translator,
    target: cst.Subscript,
    base_code: cst.BaseExpression,
    base: Val,
    elems: list[Elem],
) -> tuple[cst.Subscript, int | None]:
    """The batched assignment target ``buf[...]`` and the per-example rank of the region."""
    if any(e.kind == WINDOW for e in elems):
        if base.rank is None:
            raise tr.unsupported("a write through a window x[i:i + k] of an array of unknown rank")
        elems = expand_ellipsis(tr, elems, base.rank)
        if any(e.kind != WINDOW and not is_full_slice(e) for e in elems):
            raise tr.unsupported(
                "a write through a window x[i:i + k] beside index elements other than `:`",
                "write through the window alone (y[i:i + k] = v, or y[i:i + k, :] = v)",
            )
        return windows.scatter_target(tr, target, base_code, base, elems)
    code, region, elems = subscript(tr, target, base_code, base, elems)
    if isinstance(code, cst.Call):  # wrapped in np.moveaxis: the region's layout differs
        raise tr.unsupported(
            "assigning through advanced indices that follow a slice under vmap",
            "put the indexed axes first (np.moveaxis) before assigning",
        )
    assert isinstance(code, cst.Subscript)
    return code, region.rank


__all__ = ["subscript", "scatter_target", "NOVALUE"]
