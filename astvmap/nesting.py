"""Nested vmap: ``vmap(vmap(f))``, and calls to a vmapped function inside a vmapped one.

The inner vmap's generated code is plain NumPy with the batch axis first, so the
outer vmap can transform it like any user function. What the inner *wrapper* does
at call time (moving ``in_axes`` to the front, ``out_axes`` back, repeating
unbatched outputs) is written out as a small adapter function, with source, that
calls the inner generated function. The outer rewrite then sees only source code
and produces code with two (or more) leading batch axes; no Python loop.
"""

from __future__ import annotations

import dataclasses
import threading
import types
from typing import Any

import numpy as np

from . import cache
from .errors import UnsupportedError
from .values import ARRAY, KIND_DTYPE, NOVALUE, OBJECT, SCALAR, TREE, Val

# An ``api.VmappedFunction``, named for the annotations only: api imports this
# module, so the class is reached through the instances (``type(outer)``).
VmappedFunction = Any

_lock = threading.Lock()
_adapters: dict[Any, types.FunctionType] = {}


def example_value(val: Val) -> Any:
    """A stand-in with the rank and dtype that ``val`` describes (its values are never used)."""
    if val.sample is not NOVALUE:
        return val.sample
    if val.static is not NOVALUE and val.kind != TREE:
        return val.static
    if val.kind in (ARRAY, SCALAR):
        if val.rank is None:
            raise UnsupportedError("calling a vmapped function with an argument of unknown rank")
        if val.kind == SCALAR and not val.batched:
            return {"b": False, "i": 0, "c": 0j}.get(val.dtype or "f", 0.0)
        return np.zeros((2,) * val.rank, dtype=KIND_DTYPE.get(val.dtype or "f", np.float64))
    if val.kind == TREE and val.container in (tuple, list) and val.element is None:
        return val.container(example_value(v) for _, v in val.children)
    raise UnsupportedError("calling a vmapped function with an argument astvmap cannot describe")


def adapter(vf: VmappedFunction, examples: tuple) -> types.FunctionType:
    """A per-example function (with source) that computes ``vf(*examples)``."""
    if vf.is_nested:
        vf = resolve(vf, examples)
    in_axes = vf.in_axes if isinstance(vf.in_axes, (tuple, list)) else (vf.in_axes,) * len(examples)
    if len(in_axes) != len(examples):
        raise ValueError(
            f"vmap in_axes must have one entry per positional argument: got {len(in_axes)} "
            f"for {len(examples)}"
        )
    if any(a is not None and not isinstance(a, int) for a in in_axes):
        raise UnsupportedError(
            "a nested vmap whose in_axes are pytree prefixes",
            hint="use an int or None per argument in the inner vmap",
        )
    # No probe (facts.py) here: these examples are made-up arrays, not the caller's data.
    prepared = dataclasses.replace(vf.prepare(examples, {}), example=None)
    compiled = vf.specialise(prepared)
    # The adapter bakes in the bound arguments: they are part of its identity.
    bound_key = tuple((type(x), x) if _is_literal(x) else id(x) for x in vf.target.prefix_args)
    key = (id(compiled), tuple(in_axes), repr(vf.out_axes), len(prepared.call_args), bound_key)
    with _lock:
        if key in _adapters:
            return _adapters[key]
        fn = _build(vf, compiled, in_axes, len(examples), len(prepared.call_args))
        _adapters[key] = fn
        return fn


def _build(
    vf: VmappedFunction, compiled: Any, in_axes: tuple, n_args: int, n_call: int
) -> types.FunctionType:
    inner = compiled.fn
    trivial = (
        all(ax in (0, None) for ax in in_axes)
        and not vf.target.prefix_args
        and n_call == n_args
        and _all_batched_at_zero(compiled.out, vf.out_axes)
    )
    if trivial and any(ax == 0 for ax in in_axes):
        return inner  # the generated function already is the per-example function
    gen = f"{inner.__name__}_batched"
    params = [f"a{i}" for i in range(n_args)]
    lines = [f"def vmap_{inner.__name__}({', '.join(params)}):"]
    mapped = [p for p, ax in zip(params, in_axes) if ax is not None]
    if not mapped:
        raise UnsupportedError("a nested vmap with no mapped argument")
    for p, ax in zip(params, in_axes):
        if ax not in (None, 0):
            lines.append(f"    {p} = np.moveaxis({p}, {ax}, 0)")
    # Bound arguments (a method's self, a partial's arguments) are unmapped: literals
    # are written out, other objects become globals of the adapter.
    bound: dict[str, Any] = {}
    prefix = []
    for i, x in enumerate(vf.target.prefix_args):
        if _is_literal(x):
            prefix.append(repr(x))
        else:
            bound[f"bound_{i}"] = x
            prefix.append(f"bound_{i}")
    defaults = n_call - n_args - len(prefix)
    if defaults:
        raise UnsupportedError(
            "a nested vmap of a function that relies on default arguments",
            hint="pass every argument explicitly",
        )
    lines.append(f"    out = {gen}({', '.join([*prefix, *params])})")
    lines.append(f"    return {_finish_expr('out', compiled.out, vf.out_axes, mapped[0])}")
    text = "\n".join(lines) + "\n"
    filename = f"<astvmap nested {inner.__name__} {abs(hash(text)) % 10**8}>"
    cache.register_lines(filename, text)
    namespace: dict[str, Any] = {"np": np, gen: inner, "__name__": inner.__module__, **bound}
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102
    return namespace[f"vmap_{inner.__name__}"]


def _is_literal(x: Any) -> bool:
    return isinstance(x, (int, float, bool, str, type(None)))


def _all_batched_at_zero(structure: Any, out_axes: Any) -> bool:
    if structure[0] == "tree":
        return all(
            _all_batched_at_zero(
                sub, out_axes[k] if isinstance(out_axes, (tuple, list)) else out_axes
            )
            for k, sub in structure[1]
        ) and all(isinstance(k, int) for k, _ in structure[1])
    return structure[0] == "leaf" and structure[1] and out_axes == 0


def _finish_expr(expr: str, structure: Any, out_axes: Any, first: str) -> str:
    kind = structure[0]
    if kind == "tree":
        items = structure[1]
        if not all(isinstance(k, int) for k, _ in items):
            raise UnsupportedError("a nested vmap returning a dict or dataclass")
        parts = []
        for k, sub in items:
            axis = out_axes[k] if isinstance(out_axes, (tuple, list)) else out_axes
            parts.append(_finish_expr(f"{expr}[{k}]", sub, axis, first))
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if kind != "leaf" or isinstance(out_axes, (tuple, list, dict)):
        raise UnsupportedError("a nested vmap with this output structure")
    batched = structure[1]
    if out_axes is None:
        if batched:
            raise ValueError("vmap out_axes=None, but the inner output varies across the batch")
        return expr
    if not batched:
        expr = f"np.repeat(np.asarray({expr})[None], {first}.shape[0], axis=0)"
    if out_axes != 0:
        expr = f"np.moveaxis({expr}, 0, {out_axes})"
    return expr


def nested_call(outer: VmappedFunction, args: tuple, kwargs: dict, emit: bool = False) -> Any:
    """``outer(*args)`` where ``outer`` maps an already vmapped function."""
    if kwargs:
        raise UnsupportedError("keyword arguments to a nested vmap", hint="pass them positionally")
    flat = resolve(outer, args)
    return flat.emit(*args) if emit else flat(*args)


def resolve(outer: VmappedFunction, args: tuple) -> VmappedFunction:
    """The single-level vmap (of an adapter) that ``outer`` amounts to for these arguments."""
    inner = outer.fun
    axes = (
        outer.in_axes if isinstance(outer.in_axes, (tuple, list)) else (outer.in_axes,) * len(args)
    )
    if len(axes) != len(args):
        raise ValueError(
            f"vmap in_axes must have one entry per positional argument: got {len(axes)} "
            f"entries for {len(args)} positional argument(s) (in_axes={outer.in_axes!r})"
        )
    examples = []
    for i, (arg, ax) in enumerate(zip(args, axes)):
        if ax is None:
            examples.append(arg)
            continue
        if not isinstance(ax, int):
            raise UnsupportedError("a nested vmap whose outer in_axes are pytree prefixes")
        arr = np.asarray(arg)
        if not -arr.ndim <= ax < arr.ndim:
            raise ValueError(
                f"vmap in_axes={ax} is out of range for argument {i} of shape {arr.shape}"
            )
        examples.append(np.zeros(np.delete(arr.shape, ax % arr.ndim), dtype=arr.dtype))
    fn = adapter(inner, tuple(examples))
    with _lock:
        cached = outer._nested.get(fn)
        if cached is None:
            cached = type(outer)(
                fn,
                outer.in_axes,
                outer.out_axes,
                outer.axis_size,
                axis_name=outer.axis_name,
                randomness=outer.randomness,
            )
            outer._nested[fn] = cached
    return cached


__all__ = ["adapter", "example_value", "nested_call", "OBJECT"]
