"""Types learned by running example 0: the probe and the checks the generated code makes.

Some unbatched values have a type the source does not show: an attribute of an object
built inside the function (``ell = Ellipsoid.from_name("wgs84"); ell.semimajor_axis``),
a row of a lookup table chosen in a ``try``, the result of a library helper. When the
translator needs such a type, it records a *request* (code object, line, the path of
names, attributes and constant subscripts to read); ``run_probe`` then calls the
original per-example function once on example 0 under ``sys.settrace`` and, each time
a requested line starts, reads the requested paths in the frame and summarises what it
finds (``summarise``). A path read the same way at every visit becomes a fact; one that
is never reached, that differs between visits or whose reading raises gives none.

Why example 0 stands for every example: the translator calls a value unbatched only
when it does not depend on batched data (a value assigned under a batched condition or
computed from a batched operand is batched), so every example sees the same one. It
can still differ between *calls* (a type chosen by ``len(x)``, an object passed with
other attributes), and the generated code is reused for every call of the same
specialisation, from memory or from the disk cache: so wherever the translator relies
on a learned type, the generated code checks it first (``expect``) and raises
``ProbeMismatch`` naming the line when it does not hold. The generated code is
therefore correct for any call that reaches it, whichever call's example 0 taught it.

This module is imported by generated code (``expect``), so it must stay light: no
libcst, nothing of the rewrite machinery.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ProbeMismatch

# A path: ("name", n) then ("attr", a) / ("item", constant) steps, read left to right.
Path = tuple
Summary = tuple
# code object -> line -> the paths to read when that line starts
Requests = dict[types.CodeType, dict[int, set[Path]]]

_MAX_ITEMS = 64  # a longer tuple or list is not summarised item by item
_CONFLICT = ("conflict",)


def summarise(obj: Any) -> Summary:
    """What the generated code may rely on about ``obj``: its exact type, and for arrays
    their rank and dtype kind, for tuples and lists their length and items."""
    kind = type(obj)
    if obj is None:
        return ("none",)
    if kind in (bool, int, float, complex):
        return (kind.__name__,)
    if kind is np.ndarray:
        return ("ndarray", obj.ndim, obj.dtype.kind)
    if isinstance(obj, np.generic) and obj.dtype.kind in "biufc":
        return ("generic", obj.dtype.kind)
    if kind in (tuple, list) and len(obj) <= _MAX_ITEMS:
        return (kind.__name__, tuple(summarise(item) for item in obj))
    return ("other",)


def describe(summary: Summary) -> str:
    """``summary`` in words, for error messages."""
    tag = summary[0]
    if tag == "ndarray":
        return f"an array of rank {summary[1]} and dtype kind {summary[2]!r}"
    if tag == "generic":
        return f"a NumPy scalar of dtype kind {summary[1]!r}"
    if tag in ("tuple", "list"):
        return f"a {tag} of {len(summary[1])} items ({', '.join(describe(s) for s in summary[1])})"
    if tag == "none":
        return "None"
    if tag == "other":
        return "an object"
    return f"a Python {tag}"


def expect(read: Callable[[], Any], summary: Summary, what: str, where: str) -> None:
    """The check the generated code makes before a statement that relies on a learned
    type. ``read`` evaluates the path; when it raises (a name not bound on this path, an
    attribute of None in a branch not taken), the statement either does not read it or
    raises the same error itself, so there is nothing to check."""
    try:
        value = read()
    except Exception:  # noqa: BLE001 - see the docstring
        return
    got = summarise(value)
    if got != summary:
        raise ProbeMismatch(
            f"{where}: `{what}` is {describe(got)} in this call, but vmap generated the "
            f"code for these argument types after running example 0 of an earlier call, "
            f"where it was {describe(summary)}; make its type visible where it is made "
            "(float(...), int(...) or np.asarray(...)), so that vmap need not learn it"
        )


# ------------------------------------------------------------------------- reading
class _Unreadable(Exception):
    """A path the probe will not read: it would run code (a property) or is missing."""


def read(scopes: tuple[dict, ...], path: Path) -> Any:
    """The value of ``path`` in a frame's ``scopes`` (locals, globals, builtins), without
    running user code: plain names, instance and class attributes that are not Python
    descriptors, and items of tuples, lists and dicts."""
    _, name = path[0]
    for scope in scopes:
        if name in scope:
            obj = scope[name]
            break
    else:
        raise _Unreadable(name)
    for step, key in path[1:]:
        obj = _attribute(obj, key) if step == "attr" else _item(obj, key)
    return obj


_MISSING = object()
_C_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _attribute(obj: Any, name: str) -> Any:
    """``obj.name`` when reading it runs no Python code (a property could do anything)."""
    if isinstance(getattr(type(obj), "__getattribute__", None), types.FunctionType):
        raise _Unreadable(name)  # every attribute read runs the class's own code
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if name in vars(klass):
                value = vars(klass)[name]
                if hasattr(type(value), "__get__"):
                    raise _Unreadable(name)  # a method, property or other descriptor
                return value
        raise _Unreadable(name)
    on_type = _MISSING
    for klass in type(obj).__mro__:
        if name in vars(klass):
            on_type = vars(klass)[name]
            break
    getter = getattr(type(on_type), "__get__", None) if on_type is not _MISSING else None
    if getter is not None:
        if isinstance(on_type, _C_DESCRIPTORS) or type(on_type).__name__ == "_tuplegetter":
            return getattr(obj, name)  # __slots__ members, NamedTuple fields: C code
        if hasattr(type(on_type), "__set__") or hasattr(type(on_type), "__delete__"):
            raise _Unreadable(name)  # a data descriptor (property): it runs code
    own = getattr(obj, "__dict__", None)
    if isinstance(own, dict) and name in own:
        return own[name]
    if on_type is _MISSING or getter is not None:
        raise _Unreadable(name)  # __getattr__, or a method
    return on_type


def _item(obj: Any, key: Any) -> Any:
    if type(obj) not in (tuple, list, dict):
        raise _Unreadable(repr(key))  # another __getitem__ could run code
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError) as exc:
        raise _Unreadable(repr(key)) from exc


# ------------------------------------------------------------------------- probe
def run_probe(call: Callable[[], Any], requests: Requests) -> dict[tuple, Summary]:
    """Run ``call`` (the per-example function on example 0) once and read ``requests``.

    Returns ``{(code, line, path): summary}`` for every path reached, ``("conflict",)``
    where two visits disagreed or reading raised. Exceptions of the function are
    swallowed: the facts gathered before them stand (the generated code checks each one
    anyway), and the batched call raises them itself. Warnings and floating-point
    messages of this extra run are silenced, since the user's own call shows them.
    """
    seen: dict[tuple, Summary] = {}

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            wanted = requests[frame.f_code].get(frame.f_lineno)
            scopes = (frame.f_locals, frame.f_globals, frame.f_builtins) if wanted else ()
            for path in wanted or ():
                key = (frame.f_code, frame.f_lineno, path)
                try:
                    got = summarise(read(scopes, path))
                except Exception:  # noqa: BLE001 - unreadable here: no fact
                    got = _CONFLICT
                if seen.setdefault(key, got) != got:
                    seen[key] = _CONFLICT
        return local

    def calls(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code in requests:
            return local
        return None

    previous = sys.gettrace()  # a debugger's or coverage's: back in place afterwards
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        sys.settrace(calls)
        try:
            call()
        except Exception:  # noqa: BLE001, S110 - see the docstring
            pass
        finally:
            sys.settrace(previous)
    return seen
