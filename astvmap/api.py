"""The public entry point: ``vmap``.

The wrapper does everything that depends on the *values* of the arguments: it
matches ``in_axes`` to the argument pytrees, checks sizes, moves each mapped axis
to the front, finds (or makes) the specialisation for these argument ranks, calls
it, and moves each output's batch axis to ``out_axes``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import linecache
import re
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from . import backends, cache, chunking
from .cache import Compiled
from .errors import FallbackError, PerformanceWarning, VmapError
from .pytrees import NAMESPACE
from .pytrees import flatten as _flatten
from .pytrees import leaf_axes as _leaf_axes
from .pytrees import out_leaf_axes as _leaf_axes_out
from .values import Val

# PyTorch's modes: refuse random draws, draw independently per example, or share one draw.
RANDOMNESS = ("error", "different", "same")
# The rewrite is not reentrant-safe across threads (libcst/black state); one at a time.
_transform_lock = threading.RLock()


def _check_axes_spec(spec: Any, what: str) -> None:
    leaves, _ = _flatten(spec)
    for leaf in leaves:
        if leaf is not None and (not isinstance(leaf, int) or isinstance(leaf, bool)):
            raise ValueError(
                f"vmap {what} must be an int, None, or a (nested) tuple/list/dict of those; "
                f"got {leaf!r} of type {type(leaf).__name__}"
            )


# ---------------------------------------------------------------- targets
@dataclasses.dataclass
class Target:
    """What ``vmap`` was given, reduced to a plain function plus bound extras."""

    fn: types.FunctionType
    prefix_args: tuple = ()  # bound before the mapped positional args (self, partial args)
    prefix_kwargs: dict = dataclasses.field(default_factory=dict)


def resolve_target(fun: Any) -> Target:
    if isinstance(fun, VmappedFunction):
        return fun.target  # nesting: see VmappedFunction.__call__ and nesting.py
    if isinstance(fun, functools.partial):
        inner = resolve_target(fun.func)
        return Target(
            inner.fn, inner.prefix_args + fun.args, {**inner.prefix_kwargs, **fun.keywords}
        )
    if isinstance(fun, types.MethodType):
        inner = resolve_target(fun.__func__)
        return Target(inner.fn, (fun.__self__, *inner.prefix_args), inner.prefix_kwargs)
    if isinstance(fun, np.ufunc):
        return Target(_ufunc_function(fun))
    if isinstance(fun, types.FunctionType):
        code = fun.__code__
        if code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
            raise TypeError(
                f"vmap cannot map the generator function {fun.__qualname__}: it yields values lazily"
            )
        if code.co_flags & inspect.CO_COROUTINE:
            raise TypeError(f"vmap cannot map the async function {fun.__qualname__}")
        return Target(fun)
    if isinstance(fun, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        raise VmapError(
            f"vmap needs Python source, and {fun!r} is a built-in without it; "
            "wrap it in a def that calls it"
        )
    if not callable(fun):
        raise TypeError(f"vmap expects a callable, got {fun!r} of type {type(fun).__name__}")
    if isinstance(fun, type):
        raise VmapError(
            f"vmap cannot map the class {fun.__qualname__} (calling it constructs an object); "
            "wrap the call in a def"
        )
    call = getattr(type(fun), "__call__", None)  # noqa: B004 - the class's own __call__
    if isinstance(call, types.FunctionType):
        return resolve_target(types.MethodType(call, fun))
    raise VmapError(
        f"vmap needs Python source, and {fun!r} (of type {type(fun).__name__}) is callable "
        "without a Python __call__; wrap it in a def that calls it"
    )


_ufunc_lock = threading.Lock()
_ufunc_functions: dict[str, types.FunctionType] = {}


def _ufunc_function(ufunc: np.ufunc) -> types.FunctionType:
    """A def that calls ``ufunc``: it has source, so the pipeline can treat it like any other."""
    name = ufunc.__name__
    with _ufunc_lock:
        if name not in _ufunc_functions:
            params = ", ".join(f"x{i}" for i in range(ufunc.nin))
            text = f"def {name}({params}):\n    return np.{name}({params})\n"
            filename = f"<astvmap ufunc np.{name}>"
            cache.register_lines(filename, text)
            namespace: dict[str, Any] = {"np": np}
            exec(compile(text, filename, "exec"), namespace)  # noqa: S102
            _ufunc_functions[name] = namespace[name]
        return _ufunc_functions[name]


# ----------------------------------------------------------------- vmap
def vmap(
    fun: Callable | None = None,
    in_axes: Any = 0,
    out_axes: Any = 0,
    *,
    axis_size: int | None = None,
    axis_name: str | None = None,
    chunk_size: int | None = None,
    randomness: str = "error",
    workers: int = 1,
) -> Any:
    """Vectorise ``fun`` (written for one example) over a leading batch axis.

    Usable as ``@vmap``, ``@vmap(in_axes=...)``, ``vmap(f, (0, None))``. See the
    README for the supported NumPy functions and Python constructs.
    """
    if axis_name is not None and not isinstance(axis_name, str):
        raise TypeError(f"vmap axis_name must be a str or None, got {axis_name!r}")
    if randomness not in RANDOMNESS:
        raise ValueError(
            f"vmap randomness must be one of {', '.join(map(repr, RANDOMNESS))}; got {randomness!r}"
        )
    if chunk_size is not None and (axis_name is not None or randomness == "same"):
        # Chunks would each reduce (or each draw) on their own: refused, not computed.
        raise ValueError(
            "vmap(chunk_size=...) cannot be combined with "
            + (
                "axis_name (collectives reduce over the whole batch, not a chunk)"
                if axis_name is not None
                else "randomness='same' (one draw is shared by the whole batch, not a chunk)"
            )
        )
    if workers != 1 and randomness != "error":
        raise ValueError(
            "vmap(workers=...) cannot be combined with randomness= (threads would draw "
            "out of order)"
        )
    threads = chunking.check_options(chunk_size, workers, axis_name)
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if not isinstance(in_axes, (int, tuple, list, type(None))) or isinstance(in_axes, bool):
        raise ValueError(
            f"vmap in_axes must be an int, None, or a tuple/list with one entry per positional "
            f"argument; got {type(in_axes).__name__}"
        )
    if axis_size is not None and (not isinstance(axis_size, int) or axis_size < 0):
        raise ValueError(f"vmap axis_size must be a non-negative int, got {axis_size!r}")

    def wrap(f: Callable) -> VmappedFunction:
        return VmappedFunction(
            f,
            in_axes,
            out_axes,
            axis_size,
            chunk_size,
            threads,
            axis_name=axis_name,
            randomness=randomness,
        )

    if fun is None:
        return wrap
    return wrap(fun)


class VmappedFunction:
    """The batched version of a per-example function."""

    # How the translator knows a callee is vmapped without importing this module
    # (it is imported by the pipeline this module runs): see calls._is_vmapped.
    __astvmap_vmapped__ = True

    def __init__(
        self,
        fun: Callable,
        in_axes: Any,
        out_axes: Any,
        axis_size: int | None,
        chunk_size: int | None = None,
        workers: int = 1,
        *,
        axis_name: str | None = None,
        randomness: str = "error",
    ) -> None:
        if not callable(fun):
            raise TypeError(f"vmap expects a callable, got {fun!r} of type {type(fun).__name__}")
        self.fun = fun
        self.target = resolve_target(fun)
        self.is_nested = isinstance(fun, VmappedFunction)
        self._nested: dict[Any, VmappedFunction] = {}
        self._fallbacks: dict[Any, FallbackError] = {}
        self.in_axes = in_axes
        self.out_axes = out_axes
        self.axis_size = axis_size
        # Both shape the generated code (random and collective rules read them).
        self.axis_name = axis_name
        self.randomness = randomness
        self.chunk_size = chunk_size  # chunking.py: pieces of the batch, threads, cache blocking
        self.workers = workers
        # Pieces of the batch would each reduce (collectives) or draw on their own.
        self.cache_blocking = (
            chunk_size is None
            and axis_name is None
            and randomness == "error"
            and chunking.blocking_enabled()
        )
        self.signature = inspect.signature(self.target.fn, follow_wrapped=False)
        self._lock = threading.Lock()
        # Fast path: argument signature -> [(compiled, trailing defaults, guard check)].
        self._entries: dict[Any, list[tuple[Compiled, tuple, Callable]]] = {}
        functools.update_wrapper(self, fun, updated=())
        self.__wrapped__ = fun

    def __repr__(self) -> str:
        return f"vmap({getattr(self.fun, '__qualname__', self.fun)!r}, in_axes={self.in_axes!r}, out_axes={self.out_axes!r})"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # @vmap on a method: bind like a function would.
        if obj is None:
            return self
        return VmappedFunction(
            types.MethodType(self.fun, obj),
            self.in_axes,
            self.out_axes,
            self.axis_size,
            self.chunk_size,
            self.workers,
            axis_name=self.axis_name,
            randomness=self.randomness,
        )

    # -------------------------------------------------------------- call
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return chunking.call(self, args, kwargs, self._call_whole)

    def _call_whole(self, *args: Any, **kwargs: Any) -> Any:
        """One call of the generated function on the whole of the batch it is given."""
        if self.is_nested:
            from .nesting import nested_call

            return nested_call(self, args, kwargs)
        fast = self._fast_map(args) if not kwargs else None
        if fast is not None:
            moved, key, size = fast
            for compiled, plan, holds in self._entries.get(key, ()):
                if holds(self._arguments(moved, plan) if compiled.guards else None):
                    return self._run(compiled, (*self.target.prefix_args, *moved, *plan), {}, size)
        if fast is None:
            # dask and CuPy arrays take their own path (astvmap/backends), NumPy ones go on.
            backend = backends.find(args, kwargs)
            if backend is not None:
                return backend(self, args, kwargs)
        prepared = self.prepare(args, kwargs)
        reason = self._fallbacks.get(prepared.key)
        if reason is not None:
            return self._loop(reason, args, kwargs)
        try:
            compiled = self.specialise(prepared)
        except FallbackError as exc:
            self._fallbacks[prepared.key] = exc
            return self._loop(exc, args, kwargs)
        if fast is not None and not self.target.prefix_kwargs:
            plan = tuple(prepared.call_args[len(self.target.prefix_args) + len(args) :])
            if not prepared.call_kwargs:
                self._remember(fast[1], compiled, plan)
        return self._run(compiled, prepared.call_args, prepared.call_kwargs, prepared.size)

    def _remember(self, key: Any, compiled: Compiled, plan: tuple) -> None:
        """Add a fast-path entry; threads racing on a first call add it once."""
        with self._lock:
            if len(self._entries) >= 64 and key not in self._entries:
                return
            known = self._entries.setdefault(key, [])
            if all(c is not compiled for c, _, _ in known):
                known.append((compiled, plan, guard_checker(compiled, self.target.fn)))

    def _loop(self, reason: FallbackError, args: tuple, kwargs: dict) -> Any:
        """The declared fallback: the per-example function in a Python loop, with a warning."""
        from .testing import loop

        if self.randomness == "same" or self.axis_name is not None:
            raise _no_loop_fallback(reason, self.randomness, self.axis_name)
        warnings.warn(
            f"astvmap: running {getattr(self.fun, '__qualname__', self.fun)} per example in a Python "
            f"loop: {reason}",
            PerformanceWarning,
            stacklevel=chunking.user_stacklevel(),
        )
        size = prepare(self, args, kwargs).size
        if size == 0:
            raise ValueError(
                "vmap's per-example fallback cannot infer output shapes for an empty batch"
            )
        return loop(self.fun, args, self.in_axes, self.out_axes, size=size, **kwargs)

    def _run(self, compiled: Compiled, args: Any, kwargs: dict, size: int) -> Any:
        try:
            result = compiled.fn(*args, **kwargs)
        except Exception as exc:
            _add_location_note(exc, compiled)
            if size == 0:
                raise _empty_batch_error(self.fun, exc) from exc
            raise
        return finish(result, compiled.out, self.out_axes, size)

    def _arguments(self, moved: tuple, plan: tuple) -> dict[str, Any]:
        values = (*self.target.prefix_args, *moved, *plan)
        return dict(zip(self.signature.parameters, values))

    def _fast_map(self, args: tuple) -> tuple[tuple, Any, int] | None:
        """The common case in a few microseconds: plain arrays, int/None axes.

        Returns None when any argument needs the general (pytree) path.
        """
        in_axes = self.in_axes
        if isinstance(in_axes, (tuple, list)):
            if len(in_axes) != len(args):
                return None
            axes = in_axes
        else:
            axes = (in_axes,) * len(args)
        moved = []
        sigs = []
        size = -1
        for arg, ax in zip(args, axes):
            if type(arg) is not np.ndarray or not (ax is None or type(ax) is int):
                return None
            if ax is None:
                moved.append(arg)
                sigs.append((arg.ndim, arg.dtype.kind))
                continue
            nd = arg.ndim
            if not -nd <= ax < nd:
                return None
            n = arg.shape[ax]
            if size != n:
                if size >= 0:
                    return None
                size = n
            moved.append(arg if ax == 0 or ax == -nd else np.moveaxis(arg, ax, 0))
            sigs.append((-nd, arg.dtype.kind))  # negative: mapped, of rank nd - 1 per example
        if size < 0:
            return None
        return tuple(moved), tuple(sigs), size

    def prepare(self, args: tuple, kwargs: dict) -> Prepared:
        return prepare(self, args, kwargs)

    def specialise(self, p: Prepared) -> Compiled:
        """The compiled specialisation for these arguments: memory, disk, or a fresh transform."""
        from . import pipeline  # the rewrite machinery (libcst, black) loads on first use

        fn = self.target.fn
        code = fn.__code__
        for compiled in cache.memory_get(code, p.key):
            if guards_hold(compiled, fn, p.arguments):
                return compiled.bound_to(fn)
        with _transform_lock:  # one transform per specialisation, even with many threads
            for compiled in cache.memory_get(code, p.key):
                if guards_hold(compiled, fn, p.arguments):
                    return compiled.bound_to(fn)
            known = self._fallbacks.get(p.key)
            if known is not None:  # another thread found no rule while this one waited
                raise known
            options = pipeline.Options(
                in_axes=repr(self.in_axes),
                out_axes=repr(self.out_axes),
                randomness=self.randomness,
                axis_name=self.axis_name,
            )
            compiled = pipeline.transform(
                self.target.fn,
                p.params,
                p.spec_lines,
                p.key,
                options,
                accept=lambda c: guards_hold(c, self.target.fn, p.arguments),
            )
            if not guards_hold(compiled, self.target.fn, p.arguments):
                raise VmapError(
                    f"internal: the specialisation of {self.target.fn.__qualname__} does not hold "
                    "for the arguments it was made for"
                )
            cache.memory_put(code, p.key, compiled)
            return compiled

    def emit(self, *args: Any, **kwargs: Any) -> str:
        """The generated module for these example arguments (as ``astvmap emit`` prints it)."""
        if self.is_nested:
            from .nesting import nested_call

            return nested_call(self, args, kwargs, emit=True)
        return self.specialise(self.prepare(args, kwargs)).source


def _no_loop_fallback(reason: FallbackError, randomness: str, axis_name: str | None) -> VmapError:
    """The per-example loop cannot stand in: it would draw per example ("same" shares one
    draw) and cannot run collectives (no batch to reduce over)."""
    from .errors import UnsupportedError

    why = "axis_name" if axis_name is not None else 'randomness="same"'
    return UnsupportedError(
        f"{reason.reason}; and with vmap({why}) the per-example loop fallback is not used",
        filename=reason.filename,
        lineno=reason.lineno,
        source=reason.source,
        hint=reason.hint,
    )


def _empty_batch_error(fun: Any, exc: Exception) -> ValueError:
    """The generated code failed on a mapped axis of size 0.

    The loop never calls the function for an empty batch, so there is no error to
    reproduce: the batched code could not work out the per-example output shape
    (a ``reshape(-1)`` of zero elements, a stack of no arrays, ...).
    """
    name = getattr(fun, "__qualname__", repr(fun))
    return ValueError(
        f"vmap of {name} got an empty batch (a mapped axis of size 0), and the batched code "
        f"cannot infer the per-example output shape without an example "
        f"({type(exc).__name__}: {exc}); skip the call for an empty batch"
    )


def guard_checker(compiled: Compiled, fn: types.FunctionType) -> Callable[[Any], bool]:
    """``guards_hold`` for one function, with global and closure lookups precomputed."""
    import builtins

    from .guards import signature

    fast = []
    slow = []
    for g in compiled.guards:
        origin = g.origin
        if (
            origin[0] == "ns"
            and not origin[1]
            and len(origin) == 3
            and g.expect[0] in ("is", "array", "value", "type")
        ):
            name = origin[2]
            code = fn.__code__
            if name in code.co_freevars and fn.__closure__:
                cell = fn.__closure__[code.co_freevars.index(name)]
                fast.append((None, cell, name, g.expect))
            else:
                fast.append((fn.__globals__, vars(builtins), name, g.expect))
        else:
            slow.append(g)
    partial = dataclasses.replace(compiled, guards=slow)

    def holds(arguments: Any) -> bool:
        for where, other, name, expect in fast:
            try:
                obj = (
                    other.cell_contents
                    if where is None
                    else (where[name] if name in where else other[name])
                )
            except (KeyError, ValueError):
                return False
            if expect[0] == "is":
                if id(obj) != expect[1]:
                    return False
            elif signature(obj) != expect:
                return False
        return not slow or guards_hold(partial, fn, arguments or {})

    return holds


def guards_hold(compiled: Compiled, fn: types.FunctionType, arguments: dict[str, Any]) -> bool:
    from .guards import describe, origin_value, signature

    for g in compiled.guards:
        try:
            obj = origin_value(g.origin, fn, arguments)
        except (KeyError, AttributeError, ValueError):
            return False
        if g.expect[0] == "is":
            if id(obj) != g.expect[1]:
                return False
        elif g.expect[0] == "named":
            if describe(obj) != g.expect[1]:
                return False
        elif signature(obj) != g.expect:
            return False
    return True


# -------------------------------------------------------------- arguments
@dataclasses.dataclass
class Prepared:
    call_args: list[Any]
    call_kwargs: dict[str, Any]
    arguments: dict[str, Any]  # parameter name -> value passed to the generated code
    params: dict[str, Val]
    key: Any
    spec_lines: list[str]
    size: int


def _axes_for(in_axes: Any, n_args: int) -> list[Any]:
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != n_args:
            raise ValueError(
                f"vmap in_axes must have one entry per positional argument: got {len(in_axes)} "
                f"entries for {n_args} positional argument(s) (in_axes={in_axes!r})"
            )
        return list(in_axes)
    return [in_axes] * n_args


def _is_arraylike(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic, bool, int, float, complex)) or hasattr(
        x, "__array__"
    )


def _arg_name(vf: VmappedFunction, args: tuple, i: int, j: int | None = None) -> str:
    """How errors name positional argument ``i`` (and its leaf ``j``): ``argument 1 (p['W'])``.

    Built only when an error is raised: the accessor walk costs more than a call.
    """
    position = len(vf.target.prefix_args) + i
    params = list(vf.signature.parameters.values())
    star = next((k for k, p in enumerate(params) if p.kind == p.VAR_POSITIONAL), None)
    if star is not None and position >= star:
        name = f"{params[star].name}[{position - star}]"
    elif position < len(params):
        name = params[position].name
    else:
        name = f"extra: {vf.target.fn.__qualname__} takes {len(params)} parameter(s)"
    if j is not None:
        accessors, _, _ = optree.tree_flatten_with_accessor(
            args[i], none_is_leaf=True, namespace=NAMESPACE
        )
        if accessors[j].path:
            name = accessors[j].codify(name)
    return f"argument {i} ({name})"


def _mapped_leaf(leaf: Any, ax: int, where: Callable[[], str], container: bool) -> np.ndarray:
    """A mapped leaf as an array, checked: an array-like of numbers, with the axis in range."""
    if not _is_arraylike(leaf):
        raise TypeError(
            f"vmap in_axes maps {where()} along axis {ax}, but it is not an array: "
            f"got {type(leaf).__name__} ({leaf!r:.60})"
        )
    arr = leaf if isinstance(leaf, np.ndarray) else np.asarray(leaf)
    if arr.dtype.kind == "O":
        # Per example the loop would see arbitrary Python objects, which the batched
        # code (plain NumPy on the whole array) does not treat as the loop would.
        raise TypeError(
            f"vmap in_axes maps {where()} along axis {ax}, but it is an array of dtype object; "
            "vmap maps arrays of numbers, booleans or strings"
        )
    if arr.ndim == 0:
        hint = (
            "; lists, tuples and dicts are containers (pytrees) whose leaves are mapped one by "
            "one, as in JAX: pass np.asarray(...) to map over an array"
            if container
            else ""
        )
        raise ValueError(
            f"vmap was asked to map {where()} along axis {ax}, but it is a scalar (rank 0){hint}"
        )
    if not -arr.ndim <= ax < arr.ndim:
        raise ValueError(
            f"vmap in_axes={ax} is out of range for {where()} of shape {arr.shape} (rank {arr.ndim})"
        )
    return arr


def prepare(vf: VmappedFunction, args: tuple, kwargs: dict) -> Prepared:
    """Check the arguments against in_axes, move mapped axes first, build the key."""
    t = vf.target
    axes = _axes_for(vf.in_axes, len(args))
    sizes: list[tuple[int, int | None, int]] = []  # (argument, leaf or None, size)
    moved_args = []
    marker_args = []  # the same trees with mapped leaves replaced by _Mapped markers
    arg_keys = []
    for i, (arg, prefix) in enumerate(zip(args, axes)):
        leaves, treedef = _flatten(arg)
        leaf_axes = _leaf_axes(prefix, arg, i)
        new_leaves = []
        markers: list[Any] = []
        sig = []
        container = len(leaves) != 1 or leaves[0] is not arg
        for j, (leaf, ax) in enumerate(zip(leaves, leaf_axes)):
            if ax is None:
                new_leaves.append(leaf)
                markers.append(leaf)
                sig.append(_leaf_sig(leaf))
                continue
            leaf_j = j if container else None
            arr = _mapped_leaf(leaf, ax, lambda i=i, j=leaf_j: _arg_name(vf, args, i, j), container)
            sizes.append((i, leaf_j, arr.shape[ax]))
            new_leaves.append(np.moveaxis(arr, ax, 0) if ax % arr.ndim else arr)
            sig.append(("mapped", arr.ndim - 1, arr.dtype.kind))
            markers.append(_Mapped(arr.ndim - 1, arr.dtype.kind))
        moved_args.append(optree.tree_unflatten(treedef, new_leaves))
        marker_args.append(optree.tree_unflatten(treedef, markers))
        arg_keys.append((treedef, tuple(sig)))
    size = _batch_size(vf, args, sizes)
    kw_keys = []
    for k, v in sorted(kwargs.items()):
        leaves, treedef = _flatten(v)
        kw_keys.append((k, treedef, tuple(_leaf_sig(x) for x in leaves)))
    full_args = (*t.prefix_args, *moved_args)
    full_kwargs = {**t.prefix_kwargs, **kwargs}
    try:
        bound = vf.signature.bind(*full_args, **full_kwargs)
    except TypeError as exc:
        raise TypeError(f"{t.fn.__qualname__}(): {exc}") from None
    bound.apply_defaults()
    prefix_keys = tuple(_leaf_sig_tree(a) for a in t.prefix_args)
    key = (
        tuple(arg_keys),
        tuple(kw_keys),
        prefix_keys,
        repr(vf.in_axes),
        repr(vf.out_axes),
        vf.randomness,
        vf.axis_name,
    )
    marked = vf.signature.bind(*t.prefix_args, *marker_args, **full_kwargs)
    marked.apply_defaults()
    params = {}
    spec = []
    for name, value in marked.arguments.items():
        params[name] = _tree_val(value, ("arg", name))
        spec.append(f"{name}: {params[name].describe()}")
    return Prepared(
        call_args=list(bound.args),
        call_kwargs=dict(bound.kwargs),
        arguments=dict(bound.arguments),
        params=params,
        key=key,
        spec_lines=spec,
        size=size,
    )


def _batch_size(vf: VmappedFunction, args: tuple, sizes: list[tuple[int, int | None, int]]) -> int:
    distinct = {s for _, _, s in sizes}
    if len(distinct) > 1:
        detail = "\n".join(f"  {_arg_name(vf, args, i, j)} has size {s}" for i, j, s in sizes)
        raise ValueError(f"vmap got inconsistent sizes for the mapped axes:\n{detail}")
    if not sizes:
        if vf.axis_size is None:
            raise ValueError(
                "vmap must have at least one non-None value in in_axes, or be given axis_size"
            )
        return vf.axis_size
    size = distinct.pop()
    if vf.axis_size is not None and vf.axis_size != size:
        raise ValueError(
            f"vmap got axis_size={vf.axis_size} but the mapped arguments have size {size}"
        )
    return size


def _leaf_sig(leaf: Any) -> tuple:
    if isinstance(leaf, (np.ndarray, np.generic)):
        return ("array", leaf.ndim, leaf.dtype.kind)
    if isinstance(leaf, (bool, np.bool_)):
        return ("value", bool(leaf))  # a flag: specialised on its value (see _tree_val)
    if isinstance(leaf, (int, float, complex)):
        return ("scalar", type(leaf).__name__)
    if isinstance(leaf, str) or leaf is None:
        return ("value", leaf)
    return ("object", type(leaf).__module__, type(leaf).__qualname__)


def _leaf_sig_tree(x: Any) -> Any:
    leaves, treedef = _flatten(x)
    return (treedef, tuple(_leaf_sig(v) for v in leaves))


@dataclasses.dataclass(frozen=True)
class _Mapped:
    """Stands for a mapped leaf (of this per-example rank) while binding parameters."""

    rank: int
    dtype: str


def _tree_val(value: Any, origin: tuple | None) -> Val:
    """The abstract value of one parameter: containers are walked, leaves typed."""
    if isinstance(value, _Mapped):
        return Val.array(value.rank, batched=True, dtype=value.dtype)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        kids = [(i, _tree_val(v, None)) for i, v in enumerate(value)]
        kids += [(f, kids[i][1]) for i, f in enumerate(value._fields)]
        return Val.tree(type(value), kids)
    if isinstance(value, (tuple, list)):
        return Val.tree(type(value), [(i, _tree_val(v, None)) for i, v in enumerate(value)])
    if isinstance(value, dict):
        return Val.tree(dict, [(k, _tree_val(v, None)) for k, v in value.items()])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kids = [
            (f.name, _tree_val(getattr(value, f.name), None)) for f in dataclasses.fields(value)
        ]
        return Val.tree(type(value), kids)
    if isinstance(value, (bool, str)):
        # A flag or a mode string is known while transforming (the key holds its value),
        # so `if flag:` keeps only the branch the loop takes for every example.
        return dataclasses.replace(Val.const(value), origin=origin)
    # Unmapped leaves: only their type and rank are relied on (the key holds them).
    return dataclasses.replace(Val.of_sample(value), origin=origin)


# ---------------------------------------------------------------- outputs
def finish(result: Any, structure: Any, out_axes: Any, size: int) -> Any:
    """Move each batched output's axis to its out_axis; broadcast unbatched ones."""
    return _finish(result, structure, out_axes, size, "output")


def _finish(value: Any, structure: Any, spec: Any, size: int, where: str) -> Any:
    kind = structure[0]
    if kind == "tree":
        children = dict(structure[1])
        return _map_container(value, children, spec, size, where)
    if kind == "seq":
        return type(value)(
            _finish(v, structure[1], _sub_spec(spec, i, where), size, f"{where}[{i}]")
            for i, v in enumerate(value)
        )
    batched = structure[1]
    if isinstance(spec, (tuple, list, dict)):
        leaves, treedef = _flatten(value)
        axes = _leaf_axes_out(spec, value, where)
        return optree.tree_unflatten(
            treedef, [_finish_leaf(v, batched, a, size, where) for v, a in zip(leaves, axes)]
        )
    if batched or spec is None:
        return _finish_leaf(value, batched, spec, size, where)
    leaves, treedef = _flatten(value)
    return optree.tree_unflatten(
        treedef, [_finish_leaf(v, False, spec, size, where) for v in leaves]
    )


def _sub_spec(spec: Any, key: Any, where: str) -> Any:
    if isinstance(spec, (tuple, list)):
        if not isinstance(key, int) or key >= len(spec):
            raise ValueError(f"vmap out_axes={spec!r} does not match the structure of the {where}")
        return spec[key]
    if isinstance(spec, dict):
        if key not in spec:
            raise ValueError(f"vmap out_axes={spec!r} has no entry {key!r} for the {where}")
        return spec[key]
    return spec


def _map_container(value: Any, children: dict, spec: Any, size: int, where: str) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        if isinstance(spec, (tuple, list)) and len(spec) != len(value):
            raise ValueError(
                f"vmap out_axes={spec!r} does not match the {len(value)} fields of the {where}"
            )
        return type(value)(
            *[
                _finish(v, children[i], _sub_spec(spec, i, where), size, f"{where}.{f}")
                for i, (f, v) in enumerate(zip(value._fields, value))
            ]
        )
    if isinstance(value, (tuple, list)):
        if isinstance(spec, (tuple, list)) and len(spec) != len(value):
            raise ValueError(
                f"vmap out_axes={spec!r} has {len(spec)} entries but the {where} has {len(value)}"
            )
        return type(value)(
            _finish(v, children[i], _sub_spec(spec, i, where), size, f"{where}[{i}]")
            for i, v in enumerate(value)
        )
    if isinstance(value, dict):
        return {
            k: _finish(v, children[k], _sub_spec(spec, k, where), size, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(value):
        out = object.__new__(type(value))
        for f in dataclasses.fields(value):
            sub = spec if not isinstance(spec, dict) else spec.get(f.name)
            object.__setattr__(
                out,
                f.name,
                _finish(getattr(value, f.name), children[f.name], sub, size, f"{where}.{f.name}"),
            )
        return out
    raise VmapError(f"internal: expected a container for the {where}, got {type(value).__name__}")


def _as_array(value: Any) -> Any:
    """An output leaf as an array; a CuPy array stays on its device (NumPy's functions
    used below dispatch to CuPy's)."""
    return value if backends.library_of(value) == "cupy" else np.asarray(value)


def _finish_leaf(value: Any, batched: bool, axis: Any, size: int, where: str) -> Any:
    if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
        raise ValueError(f"vmap out_axes entries must be ints or None, got {axis!r}")
    if batched:
        if axis is None:
            raise ValueError(
                f"vmap out_axes=None for the {where}, but it varies across the batch; "
                "use an int out_axis for it"
            )
        arr = _as_array(value)
        if arr.ndim == 0 or arr.shape[0] != size:
            # Never silently wrong: a batched output must carry the batch axis first.
            raise VmapError(
                f"internal: the generated code returned the {where} with shape {arr.shape}, "
                f"which does not lead with the batch size {size}"
            )
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(
                f"vmap out_axes={axis} is out of range for the {where} of per-example rank {arr.ndim - 1}"
            )
        return np.moveaxis(arr, 0, axis) if axis % arr.ndim else arr
    if axis is None:
        return value
    arr = _as_array(value)
    rank = arr.ndim + 1
    if not -rank <= axis < rank:
        raise ValueError(
            f"vmap out_axes={axis} is out of range for the {where} of per-example rank {arr.ndim}"
        )
    # An output that does not depend on the batch is repeated for every example.
    stacked = np.repeat(arr[None], size, axis=0)
    return np.moveaxis(stacked, 0, axis) if axis % rank else stacked


# ---------------------------------------------------------------- tracebacks
def _add_location_note(exc: BaseException, compiled: Compiled) -> None:
    tb = exc.__traceback__
    last = None
    frame = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == compiled.filename:
            last, frame = tb.tb_lineno, tb.tb_frame
        tb = tb.tb_next
    if last is None:
        return
    user_line = compiled.line_map.get(last)
    text = linecache.getline(compiled.filename, last).strip()
    note = f"astvmap: raised by generated line {last} ({text})"
    if user_line is not None:
        original = linecache.getline(compiled.user_filename, user_line).strip()
        note += f"\n  from {compiled.user_filename}:{user_line}: {original}"
    if text.startswith("raise") and frame is not None:
        note += _lanes_reaching(compiled.filename, last, frame.f_locals)
    exc.add_note(note)


_ANY_OF_MASK = re.compile(r"\s*if \w+\.any\((\w+)\):\s*$")


def _lanes_reaching(filename: str, line: int, local: dict[str, Any]) -> str:
    """For a ``raise`` under a batched condition (``if np.any(mask): raise ...``):
    which examples reach it (outside loops, the loop raises at the first of them)."""
    lineno = line - 1
    indent = len(linecache.getline(filename, line)) - len(
        linecache.getline(filename, line).lstrip()
    )
    while lineno > 0:
        text = linecache.getline(filename, lineno)
        if text.strip() and len(text) - len(text.lstrip()) < indent:
            break
        lineno -= 1
    match = _ANY_OF_MASK.match(linecache.getline(filename, lineno))
    mask = local.get(match.group(1)) if match else None
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or not mask.any():
        return ""
    lanes = [tuple(int(i) for i in ix) if mask.ndim > 1 else int(ix[0]) for ix in np.argwhere(mask)]
    shown = ", ".join(str(lane) for lane in lanes[:5]) + (", ..." if len(lanes) > 5 else "")
    # (In a loop: the examples that reach it at the first iteration any does.)
    return f"\n  examples that reach it: {shown} ({len(lanes)} of {mask.shape[0]})"
