"""Mapped arguments that are not NumPy arrays: dask arrays (lazy, one task per
chunk of the batch) and CuPy arrays (the generated code runs on the GPU).

``import astvmap`` imports neither library. An argument is recognised by the
module its type comes from, without importing anything; the backend module,
which does import the library, is loaded on the first call that passes such an
array. Without the library's extra installed that call raises an ImportError
that names the extra.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

# library (top-level package of the array type) -> the extra that installs what its backend needs
EXTRAS = {"dask": "dask", "cupy": "cupy"}


def library_of(x: Any) -> str | None:
    """``"dask"`` or ``"cupy"`` for an array of that library, else None (no import)."""
    top = type(x).__module__.partition(".")[0]
    return top if top in EXTRAS else None


def find(args: tuple, kwargs: dict) -> Callable[[Any, tuple, dict], Any] | None:
    """The call path for these arguments: None when no leaf is a dask or CuPy array."""
    found: str | None = None
    for leaf in _leaves((args, kwargs)):
        library = library_of(leaf)
        if library is None or library == found:
            continue
        if found is not None:
            raise TypeError(
                f"vmap got both {found} and {library} arrays in one call; pass one kind "
                "(a dask array whose chunks are CuPy arrays is not supported either)"
            )
        found = library
    return None if found is None else load(found).call


def _leaves(tree: Any) -> Any:
    """The leaves of ``tree`` as vmap sees them; on the path of every call that is not
    all plain arrays, so dataclasses are registered only when one is met."""
    from ..pytrees import NAMESPACE, is_plain_leaf
    from ..pytrees import flatten as _flatten

    if type(tree) is tuple and len(tree) == 2 and not tree[1]:  # (args, {}): the common call
        args = tree[0]
        if all(is_plain_leaf(a) for a in args):  # no optree import for plain arrays
            yield from args
            return
    import optree

    for leaf in optree.tree_leaves(tree, none_is_leaf=True, namespace=NAMESPACE):
        if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
            yield from _flatten(leaf)[0]  # registers it (and the dataclasses inside)
        else:
            yield leaf


def load(library: str) -> Any:
    """The backend module for ``library``, or an ImportError naming the extra to install."""
    try:
        return importlib.import_module(f"{__name__}.{library}")
    except ImportError as exc:
        extra = EXTRAS[library]
        raise ImportError(
            f"vmap got a {library} array as an argument; mapping {library} arrays needs "
            f"astvmap's optional '{extra}' dependencies: pip install 'astvmap[{extra}]' "
            f"({type(exc).__name__}: {exc})"
        ) from exc
