"""Pass 7: compile generated code, register it with linecache, cache it.

The generated module is compiled inside a factory function (built on the AST, so
line numbers are exactly those of the text ``emit`` prints); each generated
function is then rebuilt with ``types.FunctionType`` on the globals and closure
cells of the user function it came from. So module globals stay live (a later
change to a global is seen, as in the loop) and nothing is ever written into the
user's namespace.

Two caches: in memory (weakly keyed by the user's code object, then by the
specialisation) and on disk (keyed by a hash of the source, the options and the
astvmap version; verified before use).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import hashlib
import importlib.util
import json
import linecache
import os
import tempfile
import threading
import types
import warnings
import weakref
from pathlib import Path
from typing import Any

from . import __version__

FORMAT = 1


@dataclasses.dataclass
class Compiled:
    """One specialisation of a user function, compiled and ready to call."""

    source: str  # the module text, as ``emit`` prints it
    filename: str  # the linecache name of ``source``
    main: str  # the generated function to call
    functions: dict[str, types.FunctionType]
    out: Any  # the batched structure of the output (see api.finish)
    guards: list  # [Guard]
    line_map: dict[int, int]
    user_filename: str
    origin: Any = None  # weakref to the user function the functions were built on

    @property
    def fn(self) -> types.FunctionType:
        return self.functions[self.main]

    def bound_to(self, user_fn: types.FunctionType) -> Compiled:
        """This specialisation for another function object with the same code.

        Closures made in a loop share one conversion; each gets its own cells
        and globals here (a cheap ``FunctionType`` rebuild, no transform).
        """
        main = self.fn
        if self.origin is not None and self.origin() is user_fn:
            return self
        code = user_fn.__code__
        generated = set(self.functions)
        cells = []
        for i, var in enumerate(main.__code__.co_freevars):
            if var in code.co_freevars and var not in generated:
                cells.append(user_fn.__closure__[code.co_freevars.index(var)])  # type: ignore[index]
            else:
                cells.append(main.__closure__[i])  # type: ignore[index]
        new = types.FunctionType(
            main.__code__, user_fn.__globals__, main.__name__, None, tuple(cells)
        )
        new.__module__, new.__qualname__ = main.__module__, main.__qualname__
        return dataclasses.replace(
            self, functions={**self.functions, self.main: new}, origin=weakref.ref(user_fn)
        )


def load(
    source: str,
    filename: str,
    origins: dict[str, types.FunctionType],
) -> dict[str, types.FunctionType]:
    """Compile ``source`` and rebuild each function on its origin's namespace."""
    register_lines(filename, source)
    tree = ast.parse(source, filename)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    user_free = sorted({v for fn in origins.values() for v in fn.__code__.co_freevars} - set(names))
    factory = ast.FunctionDef(
        name="__astvmap_factory__",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=v) for v in user_free],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[
            *tree.body,
            ast.Return(
                ast.Dict(
                    keys=[ast.Constant(n) for n in names],
                    values=[ast.Name(n, ast.Load()) for n in names],
                )
            ),
        ],
        decorator_list=[],
        returns=None,
        type_params=[],
        lineno=1,
        col_offset=0,
    )
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, filename, "exec")
    namespace: dict[str, Any] = {"__builtins__": builtins}
    exec(code, namespace)  # noqa: S102 - our own generated code
    made = namespace["__astvmap_factory__"](*([None] * len(user_free)))
    rebuilt: dict[str, types.FunctionType] = {}
    for name, f in made.items():
        origin = origins[name]
        cells = []
        for i, var in enumerate(f.__code__.co_freevars):
            if var in origin.__code__.co_freevars and var not in names:
                cells.append(origin.__closure__[origin.__code__.co_freevars.index(var)])  # type: ignore[index]
            else:
                cells.append(f.__closure__[i])  # type: ignore[index]
        new = types.FunctionType(f.__code__, origin.__globals__, name, None, tuple(cells))
        new.__module__ = origin.__module__
        new.__qualname__ = name
        rebuilt[name] = new
    # Cells that hold generated helpers point at the rebuilt versions.
    by_identity = {id(made[n]): rebuilt[n] for n in made}
    for f in rebuilt.values():
        for cell in f.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            if id(contents) in by_identity:
                cell.cell_contents = by_identity[id(contents)]
    return rebuilt


def register_lines(filename: str, source: str) -> None:
    """Make ``source`` visible to tracebacks, ``inspect`` and ``pdb`` (kept forever)."""
    lines = [line + "\n" for line in source.split("\n")]
    linecache.cache[filename] = (len(source), None, lines, filename)


# ------------------------------------------------------------------ memory
_lock = threading.RLock()
_memory: weakref.WeakKeyDictionary[types.CodeType, dict[Any, list[Compiled]]] = (
    weakref.WeakKeyDictionary()
)


def memory_get(code: types.CodeType, key: Any) -> list[Compiled]:
    table = _memory.get(code)
    if table is None:
        return []
    return table.get(key, [])


def memory_put(code: types.CodeType, key: Any, compiled: Compiled) -> None:
    with _lock:
        _memory.setdefault(code, {}).setdefault(key, []).append(compiled)


def memory_clear() -> None:
    with _lock:
        _memory.clear()


# -------------------------------------------------------------------- disk
def cache_dir() -> Path | None:
    """The on-disk cache directory, or None when disabled (``ASTVMAP_CACHE=0``)."""
    if os.environ.get("ASTVMAP_CACHE", "1") == "0":
        return None
    override = os.environ.get("ASTVMAP_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("astvmap"))


@functools.cache
def build_id() -> str:
    """The version plus a hash of astvmap's own source (the package and its rules).

    An edited transformer (an editable install, a patched rule) must never run code
    an older one generated, and a version number alone does not change on an edit.
    Hashing ~20 files costs about a millisecond, once per process.
    """
    digest = hashlib.sha256(__version__.encode())
    spec = importlib.util.find_spec("astvmap.rules")
    roots = [Path(__file__).resolve().parent]
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p).resolve() for p in spec.submodule_search_locations]
    for root in dict.fromkeys(roots):
        for path in sorted(root.rglob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def disk_key(parts: Any) -> str:
    text = json.dumps([FORMAT, build_id(), parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_warned: set[str] = set()


def disk_entries(key: str) -> list[dict[str, Any]]:
    """The verified entries stored under ``key`` (one per set of guard values)."""
    directory = cache_dir()
    if directory is None or not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob(f"{key}-*.json")):
        payload = _read_entry(path, key)
        if payload is not None:
            out.append(payload)
    return out


def _read_entry(path: Path, key: str) -> dict[str, Any] | None:
    """A verified entry, or None. A corrupt or foreign entry is deleted, never run."""
    try:
        raw = path.read_text()
    except OSError:
        return None
    try:
        entry = json.loads(raw)
        payload = entry["payload"]
        ok = (
            entry.get("format") == FORMAT
            and entry.get("version") == build_id()
            and entry.get("key") == key
            and entry.get("digest") == _digest(payload)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return payload


def disk_put(key: str, payload: dict[str, Any], variant: str = "0") -> None:
    """Write atomically (temp file + rename); on any failure warn once and go on."""
    directory = cache_dir()
    if directory is None:
        return
    entry = {
        "format": FORMAT,
        "version": build_id(),
        "key": key,
        "digest": _digest(payload),
        "payload": payload,
    }
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(entry, fh)
            os.replace(tmp, directory / f"{key}-{variant}.json")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except (OSError, TypeError, ValueError) as exc:
        if str(directory) not in _warned:
            _warned.add(str(directory))
            warnings.warn(
                f"astvmap: could not write the disk cache in {directory} ({exc}); "
                "generated code is kept in memory only",
                RuntimeWarning,
                stacklevel=3,
            )


def info() -> dict[str, Any]:
    directory = cache_dir()
    if directory is None:
        return {"location": None, "entries": 0, "bytes": 0, "enabled": False}
    files = list(directory.glob("*.json")) if directory.exists() else []
    return {
        "location": str(directory),
        "entries": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "enabled": True,
    }


def clear() -> int:
    directory = cache_dir()
    memory_clear()
    if directory is None or not directory.exists():
        return 0
    count = 0
    for f in directory.glob("*.json"):
        try:
            f.unlink()
            count += 1
        except OSError:
            pass
    return count
