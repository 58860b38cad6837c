"""``astvmap.emit``: the generated module for an imported function, as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .api import VmappedFunction, vmap


def emit(
    fun: Callable, *example_args: Any, in_axes: Any = 0, out_axes: Any = 0, **example_kwargs: Any
) -> str:
    """The generated source for ``fun`` specialised on ``example_args``.

    The example arguments are only inspected (ranks, which leaves are mapped); the
    function is not run. ``fun`` may already be vmapped, in which case its own
    in_axes/out_axes are used.
    """
    vf = fun if isinstance(fun, VmappedFunction) else vmap(fun, in_axes=in_axes, out_axes=out_axes)
    return vf.emit(*example_args, **example_kwargs)
