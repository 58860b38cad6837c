"""Running one batch as several calls of the same generated function.

The generated code is batch-size agnostic, so a batch can be cut along its mapped
axes, each piece run through the same specialisation, and the outputs joined along
each out_axis. That gives three things, all with results identical to one call:

* ``chunk_size=k`` (PyTorch's meaning): at most ``k`` examples at a time, which bounds
  the memory of the batched temporaries.
* cache blocking, on by default: a large batch runs in pieces whose working set fits
  the L2 cache. Whether it pays is measured, once per argument signature: the first
  large calls alternate between pieces and one whole call, timing each, and the faster
  way is kept (matmul-bound kernels, whose BLAS calls block for themselves, usually
  keep the whole call). ``chunk_size=`` overrides it; ``ASTVMAP_BLOCKING=0`` turns it off.
* ``workers=n``: the pieces run on a thread pool. NumPy releases the GIL in ufuncs,
  matmul and most reductions, so the pieces run in parallel.

Pieces are cut from the *user's* arguments (each mapped leaf sliced along its in_axis)
and each goes through the ordinary call path, so nesting, pytrees, out_axes=None and
unbatched outputs behave exactly as in one call.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backends

if TYPE_CHECKING:
    import concurrent.futures

# An ``api.VmappedFunction``, named for the annotations only: api imports this
# module, so the class is not imported here.
VmappedFunction = Any

# Below this many examples a batch always runs in one call: per-piece dispatch costs
# ~20 us, and a small batch's temporaries fit in cache anyway.
AUTO_MIN_BATCH = 8192
# Each piece should hold about this many examples at least (dispatch amortised).
MIN_PIECE = 1024
# Threads start to pay when each has about this many bytes of mapped input to work on
# (an example's bytes as bytes_per_example counts them). Measured with the benchmark
# suite's scan (quaternion to matrix, 32 bytes an example, 2 threads on 2 shared cores):
# 0.1x at 16,384 examples (the GIL hand-offs between the threads' NumPy calls cost
# more than the work), 0.9-1.1x at 65,536, 1.45-1.6x at 262,144 (two runs).
MIN_BYTES_PER_WORKER = 1 << 20
# With workers, each thread takes about this many pieces of the batch.
PIECES_PER_WORKER = 4
# The working set of one piece, relative to the per-example bytes of the mapped
# inputs: inputs, outputs and the temporaries of a typical generated function.
WORKING_SET_FACTOR = 8
# Unmapped arrays up to this size count towards an example's working set (larger ones
# are tables read by index, or matmul operands that BLAS blocks for itself).
SMALL_UNMAPPED = 64 << 10
# Chunked must beat whole by this much to be kept (timings on a loaded machine jitter).
MARGIN = 0.9


def check_options(chunk_size: Any, workers: Any, axis_name: Any) -> int:
    """Validate ``chunk_size`` and ``workers``; the number of threads ``workers`` means."""
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ValueError(f"vmap chunk_size must be a positive int or None, got {chunk_size!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers == 0 or workers < -1:
        raise ValueError(
            f"vmap workers must be a positive int, or -1 for every core; got {workers!r}"
        )
    if axis_name is not None and (chunk_size is not None or workers != 1):
        what = "chunk_size" if chunk_size is not None else "workers"
        raise ValueError(
            f"vmap(axis_name=..., {what}=...): collectives over the named axis need the whole "
            f"batch in one call, and {what} splits it; drop one of the two"
        )
    return cores() if workers == -1 else workers


_l2_cache: list[int] = []


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def l2_bytes() -> int:
    """The per-core L2 cache size (2 MiB where it cannot be read), read once."""
    if not _l2_cache:
        _l2_cache.append(_read_l2())
    return _l2_cache[0]


def _read_l2() -> int:
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            folder = os.path.join(base, index)
            with open(os.path.join(folder, "level")) as fh:
                if fh.read().strip() != "2":
                    continue
            with open(os.path.join(folder, "size")) as fh:
                text = fh.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
            return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return 2 << 20


# ------------------------------------------------------------------ the call
class Batch:
    """The user's arguments, with where each mapped leaf's batch axis is."""

    def __init__(self, args: tuple, pieces: list[tuple[Any, list[Any], list[Any]]], size: int):
        self.args = args
        self.pieces = pieces  # per argument: (treedef or None, leaves, axes)
        self.size = size

    def bytes_per_example(self) -> int:
        """The mapped inputs of one example, plus each small unmapped array: a per-example
        value combined with one (``S - p``, ``x @ W``) is a temporary of its size."""
        mapped = unmapped = 0
        for _, leaves, axes in self.pieces:
            for leaf, ax in zip(leaves, axes):
                if ax is not None:
                    mapped += leaf.nbytes
                elif isinstance(leaf, np.ndarray) and leaf.nbytes <= SMALL_UNMAPPED:
                    unmapped += leaf.nbytes
        return max(1, mapped // max(1, self.size) + unmapped)

    def signature(self) -> tuple:
        """What the cache-blocking decision depends on: shapes and dtypes, not the batch size."""
        sig = []
        for _, leaves, axes in self.pieces:
            for leaf, ax in zip(leaves, axes):
                shape = getattr(leaf, "shape", None)
                dtype = str(getattr(leaf, "dtype", type(leaf).__name__))
                if ax is not None and shape is not None:
                    shape = shape[: ax % len(shape)] + shape[ax % len(shape) + 1 :]
                sig.append((ax is not None, shape, dtype))
        return tuple(sig)

    def slice(self, start: int, stop: int) -> tuple:
        import optree

        out = []
        for arg, (treedef, leaves, axes) in zip(self.args, self.pieces):
            cut = [
                (
                    leaf
                    if ax is None
                    else leaf[(slice(None),) * (ax % leaf.ndim) + (slice(start, stop),)]
                )
                for leaf, ax in zip(leaves, axes)
            ]
            if treedef is None:
                out.append(cut[0])
            elif all(ax is None for ax in axes):
                out.append(arg)
            else:
                out.append(optree.tree_unflatten(treedef, cut))
        return tuple(out)


def batch_of(vf: VmappedFunction, args: tuple) -> Batch | None:
    """The batch the call maps over, or None when one call must handle it (no mapped
    argument, inconsistent sizes, a bad in_axes: the whole call raises the right error)."""
    from .pytrees import flatten as _flatten
    from .pytrees import leaf_axes as _leaf_axes

    in_axes = vf.in_axes
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            return None
        axes = list(in_axes)
    else:
        axes = [in_axes] * len(args)
    pieces: list[tuple[Any, list[Any], list[Any]]] = []
    size = -1
    for arg, prefix in zip(args, axes):
        if type(arg) is np.ndarray and (prefix is None or type(prefix) is int):
            leaves, treedef, leaf_axes = [arg], None, [prefix]
        else:
            try:
                leaves, treedef = _flatten(arg)
                leaf_axes = _leaf_axes(prefix, arg, 0)
            except (ValueError, TypeError):
                return None
        for j, (leaf, ax) in enumerate(zip(leaves, leaf_axes)):
            if ax is None:
                continue
            if not isinstance(leaf, np.ndarray):
                if not hasattr(leaf, "__array__"):
                    return None
                leaf = leaves[j] = np.asarray(leaf)
            if leaf.ndim == 0 or not -leaf.ndim <= ax < leaf.ndim:
                return None
            n = leaf.shape[ax]
            if size not in (-1, n):
                return None
            size = n
        pieces.append((treedef, leaves, leaf_axes))
    if size <= 0:
        return None
    return Batch(args, pieces, size)


def join(vf: VmappedFunction, outs: list[Any]) -> Any:
    """The outputs of consecutive pieces as one output: batched leaves concatenated
    along their out_axis, unbatched (out_axes=None) leaves taken from the first piece."""
    if len(outs) == 1:
        return outs[0]
    import optree

    from .pytrees import flatten as _flatten
    from .pytrees import out_leaf_axes as _leaf_axes_out

    first_leaves, treedef = _flatten(outs[0])
    axes = _leaf_axes_out(vf.out_axes, outs[0], "output")
    rest = [_flatten(o)[0] for o in outs[1:]]
    joined = []
    for j, (leaf, ax) in enumerate(zip(first_leaves, axes)):
        if ax is None:
            joined.append(leaf)
        else:
            joined.append(np.concatenate([leaf, *[r[j] for r in rest]], axis=ax))
    return optree.tree_unflatten(treedef, joined)


def select(vf: VmappedFunction, out: Any, start: int, stop: int) -> Any:
    """Examples ``start:stop`` of an output: each batched leaf sliced along its out_axis."""
    import optree

    from .pytrees import flatten as _flatten
    from .pytrees import out_leaf_axes as _leaf_axes_out

    leaves, treedef = _flatten(out)
    axes = _leaf_axes_out(vf.out_axes, out, "output")
    kept = [
        leaf if ax is None else leaf[(slice(None),) * (ax % leaf.ndim) + (slice(start, stop),)]
        for leaf, ax in zip(leaves, axes)
    ]
    return optree.tree_unflatten(treedef, kept)


def _bounds(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, size)) for a in range(0, size, chunk)]


# One shared pool per thread count: a pool's threads outlive the call that made it.
_pools: dict[int, Any] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    import concurrent.futures  # here, not at import: it loads logging (~10 ms)

    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="astvmap"
            )
        return _pools[workers]


def piece(
    vf: VmappedFunction, batch: Batch, start: int, stop: int, kwargs: dict, whole: Callable
) -> Any:
    """One piece through ``whole``; an error says which examples the piece held, since
    example numbers in its notes count from the piece's start.

    A piece of one example runs together with a neighbour whose result is dropped:
    NumPy computes a one-row matmul with BLAS's matrix-vector routine, whose rounding
    differs from the matrix-matrix one a batch uses, and results must not depend on
    how the batch was cut.
    """
    lo, hi = start, stop
    if stop - start == 1 and batch.size > 1:
        lo, hi = (start - 1, stop) if start > 0 else (start, stop + 1)
    try:
        out = whole(*batch.slice(lo, hi), **kwargs)
        return out if (lo, hi) == (start, stop) else select(vf, out, start - lo, stop - lo)
    except Exception as exc:
        notes = getattr(exc, "__notes__", ())
        if (lo or hi != batch.size) and any("examples that reach it" in n for n in notes):
            exc.add_note(
                f"astvmap: raised in the piece of examples {lo}..{hi - 1} of the batch of "
                f"{batch.size} (chunk_size, workers or cache blocking); example numbers above "
                "count from the piece's first example"
            )
        raise


def run_pieces(
    vf: VmappedFunction,
    batch: Batch,
    bounds: list[tuple[int, int]],
    kwargs: dict,
    whole: Callable[..., Any],
    workers: int,
) -> list[Any]:
    """Each piece through ``whole``: in order on this thread, or with ``workers`` > 1 on
    this thread and ``workers - 1`` pool threads, each taking the next piece when done
    with one. A first call's transform happens once: the other threads wait for it on
    the transform lock, then find it in memory."""
    if workers <= 1 or len(bounds) < 2:
        return [piece(vf, batch, a, b, kwargs, whole) for a, b in bounds]
    results: list[Any] = [None] * len(bounds)
    errors: list[tuple[int, BaseException]] = []
    order = iter(range(len(bounds)))
    lock = threading.Lock()

    def work() -> None:
        while not errors:
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = piece(vf, batch, *bounds[i], kwargs, whole)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, on the caller's thread
                errors.append((i, exc))

    pool = _pool(workers - 1)
    helpers = [pool.submit(work) for _ in range(min(workers, len(bounds)) - 1)]
    work()
    for h in helpers:
        h.result()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]  # the first failing piece, as one call would
    return results


# ------------------------------------------------------------ the decision
class _Blocking:
    """Per argument signature: the per-example times of both ways, then the choice.

    The large calls alternate between pieces and one whole call for ``ROUNDS`` rounds,
    and the best time of each way decides: the minimum shrugs off a call slowed by
    another process (the results are identical either way; only speed is at stake).
    """

    ROUNDS = 3

    def __init__(self) -> None:
        self.chunked: list[float] = []
        self.whole: list[float] = []

    @property
    def decided(self) -> bool:
        return len(self.whole) >= self.ROUNDS

    @property
    def pays(self) -> bool:
        return min(self.chunked) < MARGIN * min(self.whole)

    @property
    def next_is_chunked(self) -> bool:
        return len(self.chunked) <= len(self.whole)


# Keyed by the user function's code object (then the axes and the argument signature),
# like the memory cache: ``vmap(f)(x)`` written inline makes a new wrapper every call,
# and must not measure afresh every time.
_decisions: weakref.WeakKeyDictionary[Any, dict[tuple, _Blocking]] = weakref.WeakKeyDictionary()
_decisions_lock = threading.Lock()


def auto_chunk(batch: Batch) -> int:
    """The cache-blocking piece size for this batch (examples per piece)."""
    per_example = batch.bytes_per_example() * WORKING_SET_FACTOR
    chunk = max(MIN_PIECE, l2_bytes() // per_example)
    return 1 << (chunk.bit_length() - 1)  # a power of two: steady piece shapes


def call(vf: VmappedFunction, args: tuple, kwargs: dict, whole: Callable[..., Any]) -> Any:
    """``vf(*args, **kwargs)``, in pieces when chunk_size, workers or cache blocking say so."""
    chunk_size, workers = vf.chunk_size, vf.workers
    if chunk_size is None and workers == 1:
        if not vf.cache_blocking:
            return whole(*args, **kwargs)
        if _small(vf.in_axes, args):
            return whole(*args, **kwargs)
    if backends.find(args, kwargs) is not None:
        return whole(*args, **kwargs)  # dask has chunks of its own; CuPy runs on the device
    batch = batch_of(vf, args)
    if batch is None:
        return whole(*args, **kwargs)
    size = batch.size
    per_example = batch.bytes_per_example()
    threads = workers if per_example * size >= 2 * MIN_BYTES_PER_WORKER else 1
    threads = min(threads, -(-per_example * size // MIN_BYTES_PER_WORKER))
    if chunk_size is not None:
        return _in_pieces(vf, batch, chunk_size, kwargs, whole, threads)
    if threads > 1:
        # A few pieces per thread, so that a thread slowed by other work does not hold up
        # the rest; not cache-sized ones: each piece's NumPy calls hand the GIL back and
        # forth, and many small pieces make those hand-offs cost more than the cache saves.
        chunk = -(-size // (PIECES_PER_WORKER * threads))
        return _in_pieces(vf, batch, chunk, kwargs, whole, threads)
    if not vf.cache_blocking or size < AUTO_MIN_BATCH:
        return whole(*args, **kwargs)
    chunk = auto_chunk(batch)
    if size < 4 * chunk:
        return whole(*args, **kwargs)
    return _blocked(vf, batch, chunk, kwargs, whole)


def _small(in_axes: Any, args: tuple) -> bool:
    """The common call, decided in about a microsecond: the first plain array mapped
    along an int axis has fewer than AUTO_MIN_BATCH examples (False when unsure)."""
    many = type(in_axes) is tuple or type(in_axes) is list
    if not args or (many and len(in_axes) != len(args)):
        return False
    i = 0
    ax = in_axes[0] if many else in_axes
    while ax is None:  # unmapped leading arguments (rare): find the first mapped one
        i += 1
        if i == len(args):
            return False
        ax = in_axes[i] if many else in_axes
    arg = args[i]
    if type(arg) is not np.ndarray or type(ax) is not int or not -arg.ndim <= ax < arg.ndim:
        return False
    return arg.shape[ax] < AUTO_MIN_BATCH


def _in_pieces(
    vf: VmappedFunction,
    batch: Batch,
    chunk: int,
    kwargs: dict,
    whole: Callable[..., Any],
    threads: int,
) -> Any:
    if chunk >= batch.size:
        return whole(*batch.args, **kwargs)
    return join(vf, run_pieces(vf, batch, _bounds(batch.size, chunk), kwargs, whole, threads))


def _blocked(
    vf: VmappedFunction, batch: Batch, chunk: int, kwargs: dict, whole: Callable[..., Any]
) -> Any:
    """Cache blocking on one thread, measured once per argument signature."""
    key = (*_wrapper_key(vf), batch.signature())
    with _decisions_lock:
        state = _decisions.setdefault(vf.target.fn.__code__, {}).setdefault(key, _Blocking())
    if state.decided:
        if state.pays:
            return _in_pieces(vf, batch, chunk, kwargs, whole, 1)
        return whole(*batch.args, **kwargs)
    size = batch.size
    if state.next_is_chunked:
        # In pieces; the first piece may transform, so time the rest.
        bounds = _bounds(size, chunk)
        outs = [piece(vf, batch, *bounds[0], kwargs, whole)]
        start = time.perf_counter()
        outs += [piece(vf, batch, a, b, kwargs, whole) for a, b in bounds[1:]]
        result = join(vf, outs)
        state.chunked.append((time.perf_counter() - start) / (size - bounds[0][1]))
        return result
    start = time.perf_counter()
    result = whole(*batch.args, **kwargs)
    state.whole.append((time.perf_counter() - start) / size)
    return result


def blocking_decision(vf: VmappedFunction) -> dict[tuple, bool | None]:
    """What cache blocking chose per argument signature (None: not yet decided); for
    the benchmark suite and tests."""
    prefix = _wrapper_key(vf)
    with _decisions_lock:
        states = dict(_decisions.get(vf.target.fn.__code__, {}))
    return {
        k[-1]: (s.pays if s.decided else None)
        for k, s in states.items()
        if k[: len(prefix)] == prefix
    }


def _wrapper_key(vf: VmappedFunction) -> tuple:
    return (repr(vf.in_axes), repr(vf.out_axes), vf.is_nested, len(vf.target.prefix_args))


def blocking_enabled() -> bool:
    """Cache blocking is on unless ``ASTVMAP_BLOCKING=0`` (read when a vmap is made)."""
    return os.environ.get("ASTVMAP_BLOCKING", "1") != "0"


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` for a warning raised by astvmap's caller of this function that
    points at the user's line, however many astvmap frames (pieces, threads) lie between."""
    import sys

    frame = sys._getframe(1)  # the frame that calls warnings.warn: stacklevel 1
    level = 1
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == _PACKAGE:
        frame = frame.f_back
        level += 1
    return level
