"""dask arrays as mapped arguments: the result is lazy, one task per chunk of the batch.

The batch axis is the chunked axis. Every other axis of a mapped argument is
rechunked to a single chunk (a block must hold whole examples: an example is
what the per-example function sees). Mapped arguments are rechunked along the
batch to the chunks of the first mapped dask argument; mapped NumPy arguments
are cut into the same chunks. Every block runs the same generated NumPy function
(one ``blockwise`` layer), and each output leaf is a dask array cut into the same
batch chunks.

To build a lazy result dask needs each output's shape and dtype, so the call
computes the first example (``x[:1]`` of each mapped argument, one small
``dask.compute``) and runs the generated code on it; unmapped dask arguments are
computed then too, since every block needs them whole. What every block needs
besides its own chunks (the generated source text, the unmapped arguments) is one
object in the graph, a single key that each task depends on: a large unmapped
array is stored and shipped to a worker once, not once per task.
"""

from __future__ import annotations

import operator
import uuid
from typing import Any

import dask
import dask.array as da
import numpy as np
import optree
from dask.highlevelgraph import HighLevelGraph

from .. import api
from ..errors import UnsupportedError
from . import kernel as K


def call(vf: api.VmappedFunction, args: tuple, kwargs: dict) -> Any:
    """``vf(*args, **kwargs)`` where some argument is a dask array: a pytree of dask arrays."""
    _refuse_whole_batch_features(vf)
    template, slots, lazy, size = _split(vf, args)
    lazy.update(_lazy_leaves(kwargs))
    if size == 0:
        raise ValueError(
            "vmap got an empty dask batch (a mapped axis of size 0); dask needs an example "
            "to learn the output shapes: skip the call for an empty batch"
        )
    chunks = _batch_chunks(slots, size)
    blocks = [_rechunk(s, chunks) for s in slots]
    # One compute for the first example and the unmapped dask arguments (shared inputs once).
    first = dask.compute(*[b[:1] for b in blocks], *lazy.values())
    rows = [np.array(r) for r in first[: len(blocks)]]  # fresh arrays: build finds them by identity
    concrete = dict(zip(lazy, first[len(blocks) :]))
    template = [_concrete(a, concrete) for a in template]
    kwargs = {k: _concrete(v, concrete) for k, v in kwargs.items()}
    kern, reason, flat, probe_args = K.build(
        vf, tuple(template), kwargs, rows, list(range(len(blocks)))
    )
    if reason is not None:
        probe = flat._loop(reason, probe_args, kwargs)  # warns, once per call, here
    else:
        probe = kern.run(rows)
    return _outputs(vf, flat, kern, probe, blocks, chunks)


def _outputs(
    vf: api.VmappedFunction,
    flat: api.VmappedFunction,
    kern: K.Kernel,
    probe: Any,
    blocks: list[da.Array],
    chunks: tuple[int, ...],
) -> Any:
    """The result pytree: a dask array per batched leaf (shape and dtype from the probe
    on the first example), the probe's value for a leaf that is not batched."""
    leaves, treedef, zero, user = K.output_leaves(probe, flat.out_axes, vf.out_axes)
    kern.expect = []
    for k, (leaf, z, u) in enumerate(zip(leaves, zero, user)):
        if z is not None:
            arr = np.asarray(leaf)
            K.check_out_axis(u, arr.ndim, k)
            kern.expect.append((k, arr.shape[1:], arr.dtype))
    batched = iter(_graph(kern, blocks, chunks, getattr(flat.fun, "__name__", "vmap")))
    result = []
    for leaf, z, u in zip(leaves, zero, user):
        if z is None:
            result.append(leaf)  # does not depend on the batch: the first example's value
            continue
        out = next(batched)
        result.append(da.moveaxis(out, 0, u) if u % out.ndim else out)
    return optree.tree_unflatten(treedef, result)


def _refuse_whole_batch_features(vf: api.VmappedFunction) -> None:
    """What needs the whole batch in one call cannot run block by block.

    A collective over the batch axis (``axis_name``) would see one block, and random
    draws (``randomness``) would repeat in every block (each task gets a copy of the
    generator): both would be silently wrong, so both are refused.
    """
    if getattr(vf, "axis_name", None) is not None:
        raise UnsupportedError(
            f"vmap(axis_name={vf.axis_name!r}) on dask arrays: a collective over the batch "
            "axis would see one chunk at a time",
            hint="compute the dask array first (np.asarray(x)), or reduce the vmapped "
            "outputs with dask (out.sum(axis=0)) instead of inside the function",
        )
    if getattr(vf, "randomness", "error") != "error":
        raise UnsupportedError(
            f"vmap(randomness={vf.randomness!r}) on dask arrays: every chunk would draw the "
            "same random numbers (each task gets a copy of the generator)",
            hint="draw the random numbers outside and pass them as a mapped dask array",
        )


# -------------------------------------------------------------- arguments
def _is_dask(x: Any) -> bool:
    return isinstance(x, da.Array)


def _split(vf: api.VmappedFunction, args: tuple) -> tuple[list, list, dict, int]:
    """The arguments with mapped leaves as Slots; the slots' arrays, batch axis first."""
    axes = api._axes_for(vf.in_axes, len(args))
    template: list[Any] = []
    slots: list[Any] = []
    lazy: dict[int, da.Array] = {}  # id -> unmapped dask leaf, computed with the first example
    sizes: list[tuple[int, int | None, int]] = []
    for i, (arg, prefix) in enumerate(zip(args, axes)):
        leaves, treedef = api._flatten(arg)
        leaf_axes = api._leaf_axes(prefix, arg, i)
        container = len(leaves) != 1 or leaves[0] is not arg
        new = []
        for j, (leaf, ax) in enumerate(zip(leaves, leaf_axes)):
            if ax is None:
                if _is_dask(leaf):
                    lazy[id(leaf)] = leaf
                new.append(leaf)
                continue
            leaf_j = j if container else None

            def where(i: int = i, j: int | None = leaf_j) -> str:
                return api._arg_name(vf, args, i, j)

            if _is_dask(leaf):
                arr = _mapped_dask(leaf, ax, where)
            else:
                arr = api._mapped_leaf(leaf, ax, where, container)
            sizes.append((i, leaf_j, arr.shape[ax]))
            moved = (
                arr if ax % arr.ndim == 0 else (da if _is_dask(arr) else np).moveaxis(arr, ax, 0)
            )
            new.append(K.Slot(len(slots)))
            slots.append(moved)
        template.append(optree.tree_unflatten(treedef, new))
    size = api._batch_size(vf, args, sizes)
    return template, slots, lazy, size


def _mapped_dask(x: da.Array, ax: int, where: Any) -> da.Array:
    """api._mapped_leaf's checks, for a dask array (which must not be computed)."""
    if x.dtype.kind == "O":
        raise TypeError(
            f"vmap in_axes maps {where()} along axis {ax}, but it is a dask array of dtype "
            "object; vmap maps arrays of numbers, booleans or strings"
        )
    if x.ndim == 0:
        raise ValueError(f"vmap was asked to map {where()} along axis {ax}, but it is a scalar")
    if not -x.ndim <= ax < x.ndim:
        raise ValueError(
            f"vmap in_axes={ax} is out of range for {where()} of shape {x.shape} (rank {x.ndim})"
        )
    if np.isnan(x.shape[ax]):
        raise ValueError(
            f"vmap maps {where()} along axis {ax}, whose chunk sizes dask does not know; "
            "call .compute_chunk_sizes() on it first"
        )
    return x


def _lazy_leaves(tree: Any) -> dict[int, da.Array]:
    """The dask leaves of an unmapped argument, by id: computed with the first example."""
    return {id(x): x for x in api._flatten(tree)[0] if _is_dask(x)}


def _concrete(tree: Any, values: dict[int, Any]) -> Any:
    """``tree`` with each unmapped dask leaf replaced by its computed value."""
    leaves, treedef = api._flatten(tree)
    if not any(id(x) in values for x in leaves):
        return tree
    return optree.tree_unflatten(treedef, [values.get(id(x), x) for x in leaves])


def _batch_chunks(slots: list[Any], size: int) -> tuple[int, ...]:
    """The chunks of the first mapped dask argument along its batch axis (else one chunk)."""
    for s in slots:
        if _is_dask(s):
            return s.chunks[0]
    return (size,)


def _rechunk(x: Any, chunks: tuple[int, ...]) -> da.Array:
    """A mapped argument cut into the batch chunks, every other axis one chunk."""
    whole = tuple((n,) for n in x.shape[1:])
    if not _is_dask(x):
        return da.from_array(x, chunks=(chunks, *whole))
    if x.chunks[0] == chunks and x.chunks[1:] == whole:
        return x
    return x.rechunk((chunks, *whole))


# ------------------------------------------------------------------ graph
def _graph(
    kern: K.Kernel, blocks: list[da.Array], chunks: tuple[int, ...], name: str
) -> list[da.Array]:
    """One task per batch chunk running ``kern``, and a dask array per batched output leaf."""
    token = uuid.uuid4().hex
    # The kernel is one key; every task refers to it (dask stores and ships it once).
    shared = dask.delayed(kern, name=f"astvmap-kernel-{token}", traverse=False)
    pairs: list[Any] = []
    for k, b in enumerate(blocks):
        pairs += [b, ("batch", *(f"s{k}d{d}" for d in range(1, b.ndim)))]
    tasks = da.blockwise(
        _run_block,
        ("batch",),
        shared,
        None,
        *pairs,
        concatenate=True,
        meta=np.empty((0,), dtype=object),
        name=f"astvmap-{name}-{token}",
    )
    keys = [k for k in dask.core.flatten(tasks.__dask_keys__())]
    outs = []
    for n, (_, shape, dtype) in enumerate(kern.expect):
        leaf_name = f"astvmap-{name}-out{n}-{token}"
        tail = (0,) * len(shape)
        layer = {(leaf_name, *key[1:], *tail): (operator.getitem, key, n) for key in keys}
        graph = HighLevelGraph.from_collections(leaf_name, layer, dependencies=[tasks])
        outs.append(
            da.Array(
                graph,
                leaf_name,
                chunks=(chunks, *((d,) for d in shape)),
                meta=np.empty((0,) * (len(shape) + 1), dtype=dtype),
            )
        )
    return outs


def _run_block(kern: K.Kernel, *blocks: np.ndarray) -> tuple:
    """One task: the kernel on one chunk of the batch; the batched output leaves."""
    result = kern.run(list(blocks))
    leaves = api._flatten(result)[0]
    n = blocks[kern.mapped[0]].shape[0]
    out = []
    for k, shape, dtype in kern.expect:
        leaf = np.asarray(leaves[k])
        # Never silently wrong: dask was promised this shape and dtype for every block.
        if leaf.shape != (n, *shape) or leaf.dtype != dtype:
            raise ValueError(
                f"vmap: output leaf {k} has shape {leaf.shape} and dtype {leaf.dtype} in a block "
                f"of {n} examples, but per-example shape {shape} and dtype {dtype} for the first "
                "example; every example must give the same output shape and dtype"
            )
        out.append(leaf)
    return tuple(out)
