"""Oracle helpers for the tests: ``check`` runs vmap and the loop and compares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from astvmap import vmap
from astvmap.api import _flatten
from astvmap.testing import assert_same, batch_size, loop

__all__ = ["check", "loop", "assert_same", "batch_size"]


def check(
    f: Callable,
    *args: Any,
    in_axes: Any = 0,
    out_axes: Any = 0,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    check_dtype: bool = True,
    **kwargs: Any,
) -> Any:
    """Assert ``vmap(f)(*args)`` equals the loop; return the result.

    Also checks that the caller's arrays are not modified.
    """
    before = [np.array(x, copy=True) for x in _flatten(args)[0] if isinstance(x, np.ndarray)]
    got = vmap(f, in_axes=in_axes, out_axes=out_axes)(*args, **kwargs)
    after = [x for x in _flatten(args)[0] if isinstance(x, np.ndarray)]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg="vmap modified an input array")
    want = loop(f, args, in_axes, out_axes, **kwargs)
    assert_same(got, want, rtol=rtol, atol=atol, check_dtype=check_dtype)
    return got
