"""The loop oracle, as a library: what ``vmap`` promises to compute.

``loop(f, args, in_axes, out_axes)`` slices each mapped argument, calls ``f`` per
example and stacks each output leaf along its out_axis. ``assert_same`` compares
two results: same pytree structure, shapes, dtypes, and values (exact for
integers and booleans, to a tight relative tolerance for floats, since a batched
reduction may sum in a different order). The test suite and ``astvmap demo``
both use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from .pytrees import NAMESPACE, flatten, leaf_axes


def _slice(arg: Any, prefix: Any, i: int, index: int) -> Any:
    leaves, treedef = flatten(arg)
    axes = leaf_axes(prefix, arg, i)
    out = [
        leaf if ax is None else np.take(np.asarray(leaf), index, axis=ax)
        for leaf, ax in zip(leaves, axes)
    ]
    return optree.tree_unflatten(treedef, out)


def batch_size(args: tuple, in_axes: Any) -> int:
    axes = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
    for i, (arg, prefix) in enumerate(zip(args, axes)):
        leaves, _ = flatten(arg)
        for leaf, ax in zip(leaves, leaf_axes(prefix, arg, i)):
            if ax is not None:
                return np.shape(leaf)[ax]
    raise ValueError("no mapped argument")


def loop(
    f: Callable,
    args: tuple,
    in_axes: Any = 0,
    out_axes: Any = 0,
    size: int | None = None,
    **kwargs: Any,
) -> Any:
    """What vmap promises to compute, written as the obvious Python loop."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
    n = batch_size(args, in_axes) if size is None else size
    results = []
    for k in range(n):
        example = tuple(_slice(a, p, i, k) for i, (a, p) in enumerate(zip(args, axes)))
        results.append(f(*example, **kwargs))
    if n == 0:
        raise ValueError("the loop oracle is undefined for an empty batch")
    leaves0, treedef = flatten(results[0])
    per_leaf = [[flatten(r)[0][j] for r in results] for j in range(len(leaves0))]
    full = optree.tree_broadcast_prefix(
        out_axes, results[0], none_is_leaf=True, namespace=NAMESPACE
    )
    out_leaf_axes = optree.tree_leaves(full, none_is_leaf=True, namespace=NAMESPACE)
    stacked = []
    for values, ax in zip(per_leaf, out_leaf_axes):
        if ax is None:
            stacked.append(values[0])
        else:
            stacked.append(np.stack([np.asarray(v) for v in values], axis=ax))
    return optree.tree_unflatten(treedef, stacked)


def assert_same(
    got: Any, want: Any, rtol: float = 1e-9, atol: float = 1e-12, check_dtype: bool = True
) -> None:
    g_leaves, g_def = flatten(got)
    w_leaves, w_def = flatten(want)
    assert g_def == w_def, f"structure differs: {g_def} vs {w_def}"
    for g, w in zip(g_leaves, w_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"shape {g.shape} != loop's {w.shape}"
        if check_dtype:
            assert g.dtype == w.dtype, f"dtype {g.dtype} != loop's {w.dtype}"
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)
