"""Collectives over a named batch axis, as in JAX: ``psum``, ``pmean``, ``pmax``,
``pmin``, ``axis_index``, ``all_gather``.

Written in a per-example function mapped by ``vmap(f, axis_name="i")``, each one
reduces over (or gathers along, or numbers) the examples of the batch axis named
``"i"``. They are never run inside vmap: the rewrite replaces each call by NumPy on
the batch axis (``rules/collectives.py``); a call whose name belongs to an enclosing
vmap is kept for that vmap's rewrite. Called anywhere else, no vmap carries the
name, and they raise ``NameError`` as JAX does ("unbound axis name").
"""

from __future__ import annotations

from typing import Any


def _unbound(axis_name: Any, what: str) -> NameError:
    return NameError(
        f"unbound axis name: {axis_name!r}. astvmap.{what} works only inside a function "
        f"mapped by vmap(..., axis_name={axis_name!r}), and no enclosing vmap carries "
        f"that name"
    )


def psum(x: Any, axis_name: str) -> Any:
    """The sum of ``x`` over the examples of the batch axis ``axis_name``.

    An operand that is the same for every example is multiplied by the axis size.
    """
    raise _unbound(axis_name, "psum")


def pmean(x: Any, axis_name: str) -> Any:
    """The mean of ``x`` over the examples of the batch axis ``axis_name``."""
    raise _unbound(axis_name, "pmean")


def pmax(x: Any, axis_name: str) -> Any:
    """The elementwise maximum of ``x`` over the examples of the batch axis ``axis_name``."""
    raise _unbound(axis_name, "pmax")


def pmin(x: Any, axis_name: str) -> Any:
    """The elementwise minimum of ``x`` over the examples of the batch axis ``axis_name``."""
    raise _unbound(axis_name, "pmin")


def axis_index(axis_name: str) -> Any:
    """This example's position (0, 1, ...) along the batch axis ``axis_name``."""
    raise _unbound(axis_name, "axis_index")


def all_gather(x: Any, axis_name: str, *, axis: int = 0, tiled: bool = False) -> Any:
    """Every example's ``x``, stacked along a new axis ``axis`` (or, with
    ``tiled=True``, concatenated along the existing axis ``axis``)."""
    raise _unbound(axis_name, "all_gather")


__all__ = ["psum", "pmean", "pmax", "pmin", "axis_index", "all_gather"]
