"""What a backend runs: the generated function with every argument fixed but the arrays.

A backend (dask, CuPy) does not go through ``VmappedFunction.__call__``, which
would turn its arrays into NumPy arrays. Instead it hands ``build`` the call's
arguments with each array it supplies replaced by a ``Slot``, plus a NumPy
stand-in for each slot (the dask backend passes the first example, the CuPy
backend an array of the right shape and dtype that holds one element). The
stand-ins are what the specialisation is made for: the generated code depends
only on ranks and dtype kinds, never on the batch size or the values.

The ``Kernel`` that comes back is then run on each block (dask) or on the device
arrays (CuPy). Mapped arguments carry their batch axis first (the backend moves
it there), so the kernel is made for ``in_axes`` and ``out_axes`` with every int
replaced by 0; the backend moves each output's batch axis to the user's out_axis.

A kernel pickles to the generated *source text* plus the functions whose
namespaces it runs in (globals and closure cells, as for the loop): a dask
worker compiles the text itself (``cache.load``) and never transforms, imports
libcst or reads astvmap's disk cache.
"""

from __future__ import annotations

import threading
import types
import weakref
from typing import Any

import numpy as np
import optree

from .. import api, cache
from ..errors import FallbackError, UnsupportedError, VmapError


class Slot:
    """Stands for the ``index``-th array the backend supplies at run time."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Slot({self.index})"

    def __reduce__(self) -> Any:
        return (Slot, (self.index,))


def fill(tree: Any, values: list[Any]) -> Any:
    """``tree`` with each Slot replaced by its value."""
    leaves, treedef = api._flatten(tree)
    if not any(isinstance(x, Slot) for x in leaves):
        return tree
    return optree.tree_unflatten(
        treedef, [values[x.index] if isinstance(x, Slot) else x for x in leaves]
    )


def _unfill(tree: Any, slots: dict[int, Slot]) -> Any:
    """``tree`` with each stand-in (found by identity) replaced by its Slot."""
    leaves, treedef = api._flatten(tree)
    if not any(id(x) in slots for x in leaves):
        return tree
    return optree.tree_unflatten(treedef, [slots.get(id(x), x) for x in leaves])


def zero_axes(spec: Any) -> Any:
    """An in_axes/out_axes spec with every int replaced by 0 (same structure)."""
    return optree.tree_map(
        lambda a: None if a is None else 0, spec, none_is_leaf=True, namespace=api.NAMESPACE
    )


_zeroed_lock = threading.Lock()


_AXES = ("in_axes", "out_axes", "axis_size")


def zeroed(vf: api.VmappedFunction) -> api.VmappedFunction:
    """``vf`` for arguments whose batch axes are already first (made once per ``vf``).

    Its other settings (public attributes: ``axis_name``, ``randomness``, ...) are
    ``vf``'s, so they shape the specialisation as they do for ``vf``; its caches
    (private attributes) are its own.
    """
    found = vf.__dict__.get("_astvmap_zeroed")
    if found is None:
        with _zeroed_lock:
            found = vf.__dict__.get("_astvmap_zeroed")
            if found is None:
                found = api.VmappedFunction(
                    vf.fun, zero_axes(vf.in_axes), zero_axes(vf.out_axes), None
                )
                for name, value in vf.__dict__.items():
                    if not name.startswith("_") and name not in _AXES:
                        found.__dict__[name] = value
                vf.__dict__["_astvmap_zeroed"] = found
    return found


def stand_in(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A NumPy array of this shape and dtype that holds one element (all strides 0)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=dtype), shape, (0,) * len(shape))


Functions = dict[str, types.FunctionType]
# generated main function -> {array module: its variant of the generated functions}
_VARIANTS: weakref.WeakKeyDictionary[types.FunctionType, dict[Any, Functions]] = (
    weakref.WeakKeyDictionary()
)
_variants_lock = threading.Lock()


class Kernel:
    """The generated function (or the per-example loop) with the arrays left as Slots.

    ``run(values)`` fills the slots and returns the output pytree with each
    batched leaf's batch axis first (``out_axes`` zeroed).
    """

    def __init__(self, **fields: Any) -> None:
        self.source: str | None = None  # the generated module (None: the per-example loop)
        self.filename = ""
        self.main = ""
        self.carriers: dict[str, types.FunctionType] = {}
        self.out: Any = None
        self.line_map: dict[int, int] = {}
        self.user_filename = ""
        self.args: tuple = ()  # generated: the bound call arguments; loop: the positional ones
        self.kwargs: dict[str, Any] = {}
        self.fun: Any = None  # loop: the per-example callable
        self.in_axes: Any = 0
        self.out_axes: Any = 0
        self.mapped: list[int] = []  # the slots that carry the batch axis (first)
        self.expect: list[tuple[int, tuple[int, ...], Any]] = []  # set by the dask backend
        self.__dict__.update(fields)
        self._lock = threading.Lock()
        self._functions: dict[str, types.FunctionType] | None = None

    # -------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        import cloudpickle  # a dependency of dask, the only backend that ships kernels

        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        # The user's function and the generated ones (for their namespaces) go by value,
        # as dask ships any function: a worker need not be able to import them.
        state["carriers"] = cloudpickle.dumps(state["carriers"])
        state["fun"] = cloudpickle.dumps(state["fun"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import pickle

        state = dict(state)
        state["carriers"] = pickle.loads(state["carriers"])  # noqa: S301 - our own kernel
        state["fun"] = pickle.loads(state["fun"])  # noqa: S301
        self.__init__(**state)

    # ----------------------------------------------------------------- run
    def functions(self, xp: Any = None) -> dict[str, types.FunctionType]:
        """The generated functions, compiled from the source text on first use.

        ``xp`` (a module standing in for NumPy, such as CuPy) gives a variant in
        which every NumPy module the generated code names is ``xp`` (or its
        submodule), made once per specialisation and array module: a kernel is
        built per call, the generated functions it wraps are not.
        """
        with self._lock:
            if self._functions is None:
                self._functions = cache.load(self.source, self.filename, self.carriers)
            if xp is None:
                return self._functions
        key = self._functions[self.main]
        with _variants_lock:
            variants = _VARIANTS.setdefault(key, {})
            if xp not in variants:
                variants[xp] = with_array_module(self._functions, xp)
            return variants[xp]

    def run(self, values: list[Any], xp: Any = None) -> Any:
        size = values[self.mapped[0]].shape[0]
        if self.source is None:
            from ..testing import loop

            args = tuple(fill(a, values) for a in self.args)
            kwargs = {k: fill(v, values) for k, v in self.kwargs.items()}
            return loop(self.fun, args, self.in_axes, self.out_axes, size=size, **kwargs)
        fn = self.functions(xp)[self.main]
        args = [fill(a, values) for a in self.args]
        kwargs = {k: fill(v, values) for k, v in self.kwargs.items()}
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            api._add_location_note(exc, self)  # type: ignore[arg-type]
            raise
        return api.finish(result, self.out, self.out_axes, size)


def with_array_module(
    functions: dict[str, types.FunctionType], xp: Any
) -> dict[str, types.FunctionType]:
    """The generated functions with every NumPy module they name replaced by ``xp``'s.

    The generated module imports the modules it names (``import numpy as np``)
    inside the factory that ``cache.load`` compiles, so in each function ``np`` is
    a closure cell; the variant gets new cells for those and for the generated
    helpers it calls, and shares every other cell (the user's closure) and the
    user's globals, so it sees what the NumPy version sees.
    """
    made: dict[str, types.FunctionType] = {}
    helper_cells: list[tuple[types.CellType, str]] = []
    by_identity = {id(f): name for name, f in functions.items()}
    for name, f in functions.items():
        cells = []
        for cell in f.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:
                cells.append(cell)
                continue
            if id(contents) in by_identity:
                new = types.CellType(None)
                helper_cells.append((new, by_identity[id(contents)]))
                cells.append(new)
            elif isinstance(contents, types.ModuleType) and _is_numpy(contents):
                cells.append(types.CellType(_counterpart(contents, xp)))
            else:
                cells.append(cell)
        g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, tuple(cells))
        g.__kwdefaults__ = f.__kwdefaults__
        g.__module__, g.__qualname__ = f.__module__, f.__qualname__
        made[name] = g
    for cell, name in helper_cells:
        cell.cell_contents = made[name]
    return made


def _is_numpy(module: types.ModuleType) -> bool:
    return module.__name__ == "numpy" or module.__name__.startswith("numpy.")


def _counterpart(module: types.ModuleType, xp: Any) -> Any:
    """``xp`` for ``numpy``, ``xp.linalg`` for ``numpy.linalg``, and so on."""
    obj = xp
    for part in module.__name__.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def build(
    vf: api.VmappedFunction,
    args: tuple,
    kwargs: dict,
    stand_ins: list[np.ndarray],
    mapped: list[int],
) -> tuple[Kernel, FallbackError | None, api.VmappedFunction, tuple]:
    """The kernel for ``vf`` called on ``args`` (batch axes first, arrays as Slots;
    ``mapped`` lists the slots that carry the batch axis, at least one).

    Returns the kernel, the reason it is the per-example loop (None when it runs
    generated code), the single-level vmapped function it comes from, and the
    arguments with the stand-ins in place of the slots.
    """
    from .. import nesting

    vf0 = zeroed(vf)
    probe_args = tuple(fill(a, stand_ins) for a in args)
    probe_kwargs = {k: fill(v, stand_ins) for k, v in kwargs.items()}
    if vf0.is_nested:
        if kwargs:
            raise UnsupportedError(
                "keyword arguments to a nested vmap", hint="pass them positionally"
            )
        flat = nesting.resolve(vf0, probe_args)
    else:
        flat = vf0
    prepared = flat.prepare(probe_args, probe_kwargs)
    reason = flat._fallbacks.get(prepared.key)
    compiled = None
    if reason is None:
        try:
            compiled = flat.specialise(prepared)
        except FallbackError as exc:
            flat._fallbacks[prepared.key] = reason = exc
    common = {"in_axes": flat.in_axes, "out_axes": flat.out_axes, "mapped": list(mapped)}
    if compiled is None:
        kernel = Kernel(fun=flat.fun, args=args, kwargs=dict(kwargs), **common)
        return kernel, reason, flat, probe_args
    slots = {id(s): Slot(i) for i, s in enumerate(stand_ins)}
    kernel = Kernel(
        source=compiled.source,
        filename=compiled.filename,
        main=compiled.main,
        carriers=dict(compiled.functions),
        out=compiled.out,
        line_map=dict(compiled.line_map),
        user_filename=compiled.user_filename,
        args=tuple(_unfill(a, slots) for a in prepared.call_args),
        kwargs={k: _unfill(v, slots) for k, v in prepared.call_kwargs.items()},
        **common,
    )
    _check_slots(kernel, len(stand_ins))
    kernel._functions = dict(compiled.functions)  # here they exist; a worker compiles the text
    return kernel, None, flat, probe_args


def _check_slots(kernel: Kernel, n: int) -> None:
    """Every array must reach the generated call: a stand-in left in its place would run
    on the stand-in's values."""
    seen = {
        leaf.index
        for tree in (*kernel.args, *kernel.kwargs.values())
        for leaf in api._flatten(tree)[0]
        if isinstance(leaf, Slot)
    }
    if seen != set(range(n)):
        raise VmapError(
            f"internal: arrays {sorted(set(range(n)) - seen)} of {n} do not reach the "
            "generated call"
        )


def output_leaves(result: Any, out0: Any, out_axes: Any) -> tuple[list, Any, list, list]:
    """The leaves of a kernel's result, its treedef, each leaf's zeroed and user out_axis."""
    leaves, treedef = api._flatten(result)
    zero = api._leaf_axes_out(out0, result, "output")
    user = api._leaf_axes_out(out_axes, result, "output")
    return leaves, treedef, zero, user


def check_out_axis(axis: int, ndim: int, k: int) -> None:
    """The user's out_axis must fit the batched output (its rank with the batch axis)."""
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"vmap out_axes={axis} is out of range for output leaf {k} "
            f"of per-example rank {ndim - 1}"
        )
