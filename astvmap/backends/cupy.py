"""CuPy arrays as mapped arguments: the generated code runs on the GPU.

The emitted source stays plain NumPy code (``np.tanh(x @ W + b)``); what ``np``
means is chosen per call from the arguments. The generated functions are rebuilt
once (per specialisation) with every NumPy module they name replaced by CuPy's
(``kernel.with_array_module``), and that variant runs on the device arrays. The
specialisation itself is made for NumPy stand-ins of the same ranks and dtypes,
so a CuPy call shares the transform with NumPy calls of the same pattern.

Unmapped NumPy arrays are copied to the device once per call. Outputs are CuPy
arrays. A function that must run per example (no batching rule for one of its
calls) runs on the host: its arrays are copied there, the per-example loop runs
on NumPy with the usual PerformanceWarning, and the results are copied back.
"""

from __future__ import annotations

import types
from typing import Any

import cupy
import numpy as np
import optree

from .. import api
from . import kernel as K


class _Namespace(types.ModuleType):
    """CuPy, standing where the generated code says ``np``.

    NumPy names CuPy lacks: ``errstate`` is NumPy's (CuPy never warns on floating
    point errors, so there is nothing to silence); scalar types and constants are
    NumPy's (they mean the same on the device); anything else is an error that
    names it, never a silent round trip through the host.
    """

    def __init__(self) -> None:
        super().__init__("cupy", "CuPy in place of NumPy for astvmap's generated code")

    def __getattr__(self, name: str) -> Any:
        found = getattr(cupy, name, _MISSING)
        if found is not _MISSING:
            return found
        if name == "errstate":
            return np.errstate
        value = getattr(np, name, _MISSING)
        if isinstance(value, (type, float, np.generic)):
            return value
        raise AttributeError(
            f"CuPy has no np.{name}, which the generated code calls: astvmap cannot run this "
            "function on CuPy arrays (pass NumPy arrays instead)"
        )


_MISSING = object()
NAMESPACE = _Namespace()


def call(vf: api.VmappedFunction, args: tuple, kwargs: dict) -> Any:
    """``vf(*args, **kwargs)`` where some argument is a CuPy array: CuPy arrays out."""
    template, values, mapped, kw = _split(vf, args, kwargs)
    stand_ins = [K.stand_in(v.shape, v.dtype) for v in values]
    kern, reason, flat, _ = K.build(vf, tuple(template), kw, stand_ins, mapped)
    if reason is not None:
        return _on_host(vf, args, kwargs)
    result = kern.run(values, xp=NAMESPACE)
    leaves, treedef, zero, user = K.output_leaves(result, flat.out_axes, vf.out_axes)
    out = []
    for k, (leaf, z, u) in enumerate(zip(leaves, zero, user)):
        if isinstance(leaf, (np.ndarray, np.generic)) and not isinstance(leaf, cupy.ndarray):
            leaf = cupy.asarray(leaf)  # an output computed from Python numbers only
        if z is not None:
            K.check_out_axis(u, leaf.ndim, k)
            if u % leaf.ndim:
                leaf = cupy.moveaxis(leaf, 0, u)
        out.append(leaf)
    return optree.tree_unflatten(treedef, out)


def _is_array(x: Any) -> bool:
    return isinstance(x, (cupy.ndarray, np.ndarray))


def _split(vf: api.VmappedFunction, args: tuple, kwargs: dict) -> tuple[list, list, list, dict]:
    """Arguments with every array leaf as a Slot; the device arrays (batch axes first)."""
    axes = api._axes_for(vf.in_axes, len(args))
    values: list[Any] = []
    mapped: list[int] = []
    sizes: list[tuple[int, int | None, int]] = []
    template = []
    for i, (arg, prefix) in enumerate(zip(args, axes)):
        leaves, treedef = api._flatten(arg)
        leaf_axes = api._leaf_axes(prefix, arg, i)
        container = len(leaves) != 1 or leaves[0] is not arg
        new = []
        for j, (leaf, ax) in enumerate(zip(leaves, leaf_axes)):
            if ax is None:
                new.append(_unmapped(leaf, values))
                continue
            leaf_j = j if container else None

            def where(i: int = i, j: int | None = leaf_j) -> str:
                return api._arg_name(vf, args, i, j)

            if isinstance(leaf, cupy.ndarray):
                arr = _mapped_device(leaf, ax, where)
            else:
                arr = cupy.asarray(api._mapped_leaf(leaf, ax, where, container))
            sizes.append((i, leaf_j, arr.shape[ax]))
            mapped.append(len(values))
            new.append(K.Slot(len(values)))
            values.append(cupy.moveaxis(arr, ax, 0) if ax % arr.ndim else arr)
        template.append(optree.tree_unflatten(treedef, new))
    api._batch_size(vf, args, sizes)
    if not mapped:
        raise ValueError(
            "vmap got CuPy arrays but maps none of them (every in_axes entry is None for them); "
            "map at least one argument"
        )
    kw = {}
    for name, value in kwargs.items():
        leaves, treedef = api._flatten(value)
        kw[name] = optree.tree_unflatten(treedef, [_unmapped(x, values) for x in leaves])
    return template, values, mapped, kw


def _unmapped(leaf: Any, values: list[Any]) -> Any:
    """An unmapped array goes to the device (once per call) and becomes a Slot."""
    if not _is_array(leaf):
        return leaf
    values.append(leaf if isinstance(leaf, cupy.ndarray) else cupy.asarray(leaf))
    return K.Slot(len(values) - 1)


def _mapped_device(x: Any, ax: int, where: Any) -> Any:
    if x.ndim == 0:
        raise ValueError(f"vmap was asked to map {where()} along axis {ax}, but it is a scalar")
    if not -x.ndim <= ax < x.ndim:
        raise ValueError(
            f"vmap in_axes={ax} is out of range for {where()} of shape {x.shape} (rank {x.ndim})"
        )
    return x


def _on_host(vf: api.VmappedFunction, args: tuple, kwargs: dict) -> Any:
    """The per-example loop, on NumPy copies; the results go back to the device."""
    to_host = _tree_map(lambda x: cupy.asnumpy(x) if isinstance(x, cupy.ndarray) else x)
    result = vf(*to_host(args), **to_host(kwargs))  # warns (PerformanceWarning)
    return _tree_map(lambda x: cupy.asarray(x) if isinstance(x, np.ndarray) else x)(result)


def _tree_map(f: Any) -> Any:
    def apply(tree: Any) -> Any:
        leaves, treedef = api._flatten(tree)
        return optree.tree_unflatten(treedef, [f(x) for x in leaves])

    return apply
