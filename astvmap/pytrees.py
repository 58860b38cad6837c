"""Pytrees as ``vmap`` sees them: optree in astvmap's namespace, with dataclasses
as containers (their fields are children, as in JAX), and the per-leaf axes an
``in_axes`` prefix gives an argument (``out_axes``, an output). Shared by ``api``
(vmap itself), ``chunking``, ``backends`` and ``testing`` (the loop oracle).

optree is imported on first use, not with astvmap (~12 ms, half of astvmap's own
import): a call whose arguments are plain arrays and numbers with int/None axes, the
common case, never needs it (``is_plain_leaf``).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

NAMESPACE = "astvmap"
# Types optree never treats as containers: a value of exactly one of these is a pytree
# of one leaf (its own treedef), whatever has been registered.
_LEAF_TYPES = frozenset({np.ndarray, int, float, complex, bool, str, type(None)})


def is_plain_leaf(x: Any) -> bool:
    """``x`` is one leaf to optree, known without importing it (arrays, numbers, None)."""
    return type(x) in _LEAF_TYPES or isinstance(x, np.generic)


def unflatten(treedef: Any, leaves: list[Any]) -> Any:
    import optree

    return optree.tree_unflatten(treedef, leaves)


_registered: set[type] = set()
# optree refuses a second registration of a class: two threads meeting a new
# dataclass at once must not both register it.
_register_lock = threading.Lock()


def _register_dataclass(cls: type) -> None:
    """Dataclasses are containers (their fields are children), as in JAX."""
    if cls in _registered:
        return
    with _register_lock:
        if cls not in _registered:
            _register_new_dataclass(cls)


def _register_new_dataclass(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]

    def flatten(obj: Any) -> tuple:
        return [getattr(obj, n) for n in names], None, names

    def unflatten(_: Any, children: Any) -> Any:
        obj = object.__new__(cls)
        for n, v in zip(names, children):
            object.__setattr__(obj, n, v)
        return obj

    import optree

    optree.register_pytree_node(cls, flatten, unflatten, namespace=NAMESPACE)
    _registered.add(cls)


def _register_dataclasses(tree: Any) -> None:
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        _register_dataclass(type(tree))
        for f in dataclasses.fields(tree):
            _register_dataclasses(getattr(tree, f.name))
    elif isinstance(tree, (tuple, list)):
        for x in tree:
            _register_dataclasses(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            _register_dataclasses(x)


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """The leaves of ``tree`` (None is a leaf, a dataclass a container) and its treedef."""
    import optree

    _register_dataclasses(tree)
    return optree.tree_flatten(tree, none_is_leaf=True, namespace=NAMESPACE)


def leaf_axes(prefix: Any, arg: Any, i: int) -> list[Any]:
    """The axis (or None) of each leaf of argument ``i``, from its ``in_axes`` entry ``prefix``."""
    import optree

    try:
        full = optree.tree_broadcast_prefix(prefix, arg, none_is_leaf=True, namespace=NAMESPACE)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"vmap in_axes[{i}]={prefix!r} is not a tree prefix of argument {i} "
            f"(of type {type(arg).__name__}): {exc}"
        ) from None
    return optree.tree_leaves(full, none_is_leaf=True, namespace=NAMESPACE)


def out_leaf_axes(spec: Any, value: Any, where: str) -> list[Any]:
    """The axis (or None) of each leaf of an output ``value``, from its ``out_axes`` ``spec``."""
    import optree

    try:
        full = optree.tree_broadcast_prefix(spec, value, none_is_leaf=True, namespace=NAMESPACE)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"vmap out_axes={spec!r} is not a tree prefix of the {where}: {exc}"
        ) from None
    return optree.tree_leaves(full, none_is_leaf=True, namespace=NAMESPACE)
