"""Guards: facts about unbatched objects that a specialisation relies on.

A generated function relies on facts it read while transforming: the rank of a
global array, the identity of a helper function, the value of an int used as an
axis. Each such fact is a ``Guard``, checked on every call (a few dict lookups);
when one fails, the function is specialised again.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from typing import Any

import numpy as np

from . import source


@dataclasses.dataclass(frozen=True)
class Guard:
    """A fact about an unbatched object that the generated code relies on.

    ``origin`` says where the object is found at call time: ``("arg", name,
    *attrs)`` or ``("ns", owner, name, *attrs)``, where ``owner`` is the chain of
    callee expressions leading from the main function to the function in whose
    namespace ``name`` is looked up. ``expect`` is ``signature(obj)``.
    """

    origin: tuple
    expect: tuple


def signature(obj: Any) -> tuple:
    """The facts about an unbatched object the generated code depends on.

    Arrays by rank; functions, modules and classes by identity (a redefined
    helper must be transformed again); literals by value (they may be folded).
    """
    if isinstance(obj, (np.ndarray, np.generic)):
        return ("array", np.ndim(obj), obj.dtype.kind)
    if isinstance(obj, (float, complex)):
        return ("type", type(obj).__name__)
    if isinstance(obj, (bool, int, str)) or obj is None:
        return ("value", type(obj).__name__, obj)
    if isinstance(obj, tuple) and all(
        isinstance(x, (bool, int, float, complex, str, type(None))) for x in obj
    ):
        return ("value", "tuple", obj)
    if isinstance(obj, (types.MethodType, types.BuiltinMethodType)) and not isinstance(
        getattr(obj, "__self__", None), (types.ModuleType, type(None))
    ):
        # A bound method (``rng.normal``, ``model.forward``): each attribute read makes
        # a new bound object, so its identity says nothing; its class and function do.
        func = getattr(obj, "__func__", None)
        if isinstance(func, types.FunctionType):  # Python code: a redefinition counts
            return ("method", describe(type(obj.__self__)), describe(func), id(func))
        return ("method", describe(type(obj.__self__)), getattr(obj, "__name__", "?"))
    if isinstance(
        obj, (types.ModuleType, types.FunctionType, type, np.ufunc, types.BuiltinFunctionType)
    ) or callable(obj):
        return ("is", id(obj), describe(obj))
    return ("object", type(obj).__module__, type(obj).__qualname__)


def describe(obj: Any) -> str:
    """A name for a function, class or module that is the same in every process."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def portable(g: Guard) -> tuple:
    """Identity guards are saved by name; ``localise`` turns them back on load."""
    if g.expect[0] == "is":
        return ("named", g.expect[2])
    return g.expect


ARGUMENT = "@"  # an owner step rooted at an argument of the main function
MODULE = "%"  # an owner step rooted at a module by name: "%package.module:attr.attr"


def localise(g: Guard, fn: types.FunctionType) -> Guard:
    if g.expect[0] != "named" or g.origin[0] != "ns":
        return g
    if any(step.startswith(ARGUMENT) for step in g.origin[1]):
        return g  # checked by name on each call (the argument is not known here)
    obj = origin_value(g.origin, fn, {})
    if describe(obj) != g.expect[1]:
        raise ValueError("a named object changed")
    return Guard(g.origin, ("is", id(obj), g.expect[1]))


def origin_value(origin: tuple, fn: types.FunctionType, arguments: dict[str, Any]) -> Any:
    """The object a guard is about, found the way the generated code will find it."""
    if origin[0] == "arg":
        obj, attrs = arguments[origin[1]], origin[2:]
    else:
        holder = resolve_owner(fn, origin[1], arguments)
        obj, attrs = source.lookup(holder, origin[2]), origin[3:]
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


def resolve_owner(
    fn: types.FunctionType, owner: list[str] | tuple[str, ...], arguments: dict[str, Any]
) -> Any:
    """Follow a chain of callee expressions (``helper``, ``mod.helper``) from ``fn``.

    A step ``@name.attr`` starts again from the main function's argument ``name``
    (a function passed in, or a method of an object passed in)."""
    current: Any = fn
    for expr in owner:
        first, *rest = expr.split(".")
        if expr.startswith(MODULE):
            # A module the function imports in its body: not a name it can look up.
            module, _, path = expr[len(MODULE) :].partition(":")
            current = sys.modules[module]
            rest = path.split(".") if path else []
        elif first.startswith(ARGUMENT):
            current = arguments[first[len(ARGUMENT) :]]
        else:
            current = source.lookup(current, first)
        for attr in rest:
            current = getattr(current, attr)
    return current
