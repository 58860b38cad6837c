"""Abstract values: what the transformer knows about each expression.

Batching analysis and rank inference run as one abstract interpretation: every
expression is given a ``Val`` saying whether it carries the batch axis, its
per-example rank, and, for values known while transforming (modules, functions,
literals), the object itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

ARRAY = "array"  # an ndarray or NumPy scalar (batched values are always arrays)
SCALAR = "scalar"  # a Python bool/int/float/complex
TREE = "tree"  # a tuple, list, dict, NamedTuple or dataclass of values
OBJECT = "object"  # anything else: modules, functions, classes, user objects
NONE = "none"
SELECTION = "selection"  # x[mask] with a batched mask: see selections.py


class _NoValue:
    def __repr__(self) -> str:
        return "NOVALUE"


NOVALUE: Any = _NoValue()


@dataclasses.dataclass(frozen=True, eq=False)
class Val:
    """What is known statically about one value.

    ``rank`` is the per-example ``ndim`` (``None`` when unknown). ``static`` is
    the value itself when it is a transform-time constant. ``sample`` is a
    runtime object seen at transform time (an unbatched argument or global); only
    its type and rank are relied on, and they are guarded (see ``Guard``).
    ``children`` describe containers: ``(key, Val)`` pairs where the key is an
    index, a dict key or an attribute name.
    """

    kind: str
    batched: bool = False
    rank: int | None = None
    static: Any = NOVALUE
    sample: Any = NOVALUE
    children: tuple[tuple[Any, Val], ...] = ()
    container: type | None = None
    # A homogeneous sequence of unknown length (np.split's result): its element.
    element: Val | None = None
    # Where an unbatched sample came from, for guards: ("arg", name, *attrs) or
    # ("ns", owner, name, *attrs).
    origin: tuple | None = None
    # NumPy dtype kind ('b', 'i', 'u', 'f', 'c') when known. Indexing needs it: a
    # boolean index is a mask, an integer one a gather.
    dtype: str | None = None
    # A SELECTION's mask (selections.Selection); None when two selections were joined.
    selection: Any = None

    # --- constructors -------------------------------------------------------
    @staticmethod
    def array(rank: int | None, batched: bool = False, dtype: str | None = None) -> Val:
        return Val(ARRAY, batched=batched, rank=rank, dtype=dtype)

    @staticmethod
    def const(value: Any) -> Val:
        """A transform-time constant (a literal, a module, a function)."""
        if value is None:
            return Val(NONE, static=None)
        if isinstance(value, (bool, int, float, complex)):
            return Val(SCALAR, rank=0, static=value, dtype=kind_of(value))
        if isinstance(value, (tuple, list)) and all(_is_literal(v) for v in value):
            items = tuple((i, Val.const(v)) for i, v in enumerate(value))
            return Val(TREE, rank=None, static=value, children=items, container=type(value))
        if isinstance(value, str):
            return Val(OBJECT, static=value)
        return Val(OBJECT, static=value)

    @staticmethod
    def tree(container: type, children: list[tuple[Any, Val]]) -> Val:
        batched = any(v.batched for _, v in children)
        static = NOVALUE
        if container in (tuple, list) and all(v.static is not NOVALUE for _, v in children):
            static = container(v.static for _, v in children)
        return Val(
            TREE, batched=batched, children=tuple(children), container=container, static=static
        )

    @staticmethod
    def of_sample(obj: Any) -> Val:
        """The abstract value of an unbatched runtime object seen at transform time."""
        if obj is None:
            return Val(NONE, static=None)
        if isinstance(obj, (np.ndarray, np.generic)):
            return Val(ARRAY, rank=np.ndim(obj), sample=obj, dtype=obj.dtype.kind)
        if isinstance(obj, (bool, int, float, complex)):
            return Val(SCALAR, rank=0, sample=obj, dtype=kind_of(obj))
        if type(obj) in (tuple, list) and len(obj) <= 64:
            # A row of a lookup table (`_AXES[axes]`): its items' kinds, not their values.
            items = [(i, Val.of_sample(v)) for i, v in enumerate(obj)]
            return Val(TREE, children=tuple(items), container=type(obj))
        return Val(OBJECT, sample=obj)

    # --- equality ------------------------------------------------------------
    # Samples and statics can be arrays, whose == is elementwise: they are the
    # same only when they are the same object (or equal plain constants).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Val):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(Val)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.batched, self.rank, self.dtype))

    # --- queries ------------------------------------------------------------
    @property
    def is_static(self) -> bool:
        return self.static is not NOVALUE

    @property
    def is_arraylike(self) -> bool:
        return self.kind in (ARRAY, SCALAR)

    def child(self, key: Any) -> Val | None:
        for k, v in self.children:
            if k == key:
                return v
        return None

    def with_batched(self, batched: bool) -> Val:
        return dataclasses.replace(
            self, batched=batched, static=NOVALUE, sample=NOVALUE, origin=None
        )

    def describe(self) -> str:
        if self.kind == TREE:
            inner = ", ".join(f"{k}: {v.describe()}" for k, v in self.children)
            return f"{getattr(self.container, '__name__', 'tree')}({inner})"
        if self.kind in (ARRAY, SCALAR):
            where = "batched" if self.batched else "unbatched"
            return f"{where} rank {self.rank if self.rank is not None else '?'}"
        return "unbatched object"


def kind_of(value: Any) -> str | None:
    """The dtype kind NumPy gives a Python number or an array."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, complex):
        return "c"
    dtype = getattr(value, "dtype", None)
    return dtype.kind if dtype is not None else None


KIND_DTYPE = {"b": np.bool_, "i": np.int64, "u": np.uint64, "f": np.float64, "c": np.complex128}


def result_kind(fn: Any, kinds: list[str | None]) -> str | None:
    """The dtype kind of ``fn(*operands)`` given the operands' kinds, by asking NumPy."""
    if any(k not in KIND_DTYPE for k in kinds):
        return None
    try:
        with np.errstate(all="ignore"):
            out = fn(*[np.ones(1, dtype=KIND_DTYPE[k]) for k in kinds])  # type: ignore[index]
    except Exception:  # noqa: BLE001 - e.g. bitwise ops on floats: the loop raises too
        return None
    out = out[0] if isinstance(out, tuple) else out
    return getattr(out, "dtype", None) and out.dtype.kind


def _is_literal(v: Any) -> bool:
    return isinstance(v, (bool, int, float, complex, str, type(None))) or (
        isinstance(v, (tuple, list)) and all(_is_literal(x) for x in v)
    )


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or isinstance(a, (np.ndarray, np.generic)):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object whose == is not a plain bool
        return False


def join(a: Val, b: Val) -> Val:
    """The least upper bound of two values (at a merge point or loop head)."""
    if a == b:
        return a
    if a.kind == SELECTION or b.kind == SELECTION:
        return Val(SELECTION, batched=True)  # of no one mask: consumers refuse it
    if (
        a.kind == TREE
        and b.kind == TREE
        and [k for k, _ in a.children] == [k for k, _ in b.children]
    ):
        kids = [(k, join(va, vb)) for (k, va), (_, vb) in zip(a.children, b.children)]
        return Val.tree(a.container or tuple, kids)
    batched = a.batched or b.batched
    if a.is_arraylike and b.is_arraylike:
        rank = a.rank if a.rank == b.rank else None
        kind = ARRAY if (batched or a.kind != b.kind) else a.kind
        return Val(kind, batched=batched, rank=rank, dtype=a.dtype if a.dtype == b.dtype else None)
    if a.kind == b.kind == OBJECT and a.static is b.static and a.static is not NOVALUE:
        return a
    if a.kind == b.kind and not batched:
        return Val(a.kind)
    return Val(ARRAY if batched else OBJECT, batched=batched, rank=None)


def join_all(vals: list[Val]) -> Val:
    """The join of one or more values (the element of a heterogeneous list)."""
    out = vals[0]
    for v in vals[1:]:
        out = join(out, v)
    return out
