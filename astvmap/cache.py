"""Pass 7: compile generated code, register it with linecache, cache it.

The generated module is compiled inside a factory function (built on the AST, so
line numbers are exactly those of the text ``emit`` prints); each generated
function is then rebuilt with ``types.FunctionType`` on the globals and closure
cells of the user function it came from. So module globals stay live (a later
change to a global is seen, as in the loop) and nothing is ever written into the
user's namespace.

Two caches: in memory (weakly keyed by the user's code object, then by the
specialisation) and on disk (keyed by a hash of the source, the options and the
astvmap version; verified before use). The disk cache is an optimisation only:
any fault in it (a corrupt entry, a directory that cannot be written, a full
disk) costs a regeneration or a warning, never a wrong result or a crash.
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
import stat
import tempfile
import threading
import types
import warnings
import weakref
from pathlib import Path
from typing import Any

from ._version import __version__

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
    # Under the lock: a WeakKeyDictionary may be resized by another thread's put.
    with _lock:
        return list(_memory.get(code, {}).get(key, ()))


def memory_put(code: types.CodeType, key: Any, compiled: Compiled) -> None:
    with _lock:
        _memory.setdefault(code, {}).setdefault(key, []).append(compiled)


def memory_clear() -> None:
    with _lock:
        _memory.clear()


# -------------------------------------------------------------------- disk
# Trust model. An entry holds Python source that is compiled and run, so only
# this user may be able to write the directory: it is created 0700 and checked
# before every use (``private_dir``). The digest in each entry catches corruption
# (a torn write, a bad sector, a hand edit, an entry copied from another build);
# a hash is not a signature, so it is the directory's privacy that keeps other
# users' code out.
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
    """The version plus a fingerprint of astvmap's own source (the package and its rules).

    An edited transformer (an editable install, a patched rule) must never run code
    an older one generated, and a version number alone does not change on an edit.
    The fingerprint is each source file's path, size and modification time (in
    nanoseconds): what Python itself trusts to invalidate a module's bytecode. Any
    write to a file changes its time, so an edit is seen; reading and hashing the
    ~1 MB of source instead cost ~8 ms of every disk-cache hit's first call, stat-ing
    the ~50 files a fraction of a millisecond.
    """
    spec = importlib.util.find_spec("astvmap.rules")
    roots = [os.path.dirname(os.path.realpath(__file__))]
    if spec is not None and spec.submodule_search_locations:
        roots += [os.path.realpath(p) for p in spec.submodule_search_locations]
    return f"{__version__}+{source_fingerprint(roots)}"


def source_fingerprint(roots: list[str]) -> str:
    """A hash of the path, size and modification time of every ``.py`` file under ``roots``."""
    digest = hashlib.sha256(__version__.encode())
    for root in dict.fromkeys(roots):
        for folder, subfolders, names in os.walk(root, followlinks=True):
            subfolders.sort()
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    st = os.stat(path)
                    where = path[len(root) :]  # not os.path.relpath: ~10 us a call, 50 calls
                    line = f"{where}\0{st.st_size}\0{st.st_mtime_ns}\n"
                    digest.update(line.encode())
    return digest.hexdigest()[:16]


def disk_key(parts: Any) -> str:
    text = json.dumps([FORMAT, build_id(), parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(key: str, version: str, payload: Any) -> str:
    """The hash that binds an entry's contents to its key and to the build that wrote it."""
    text = json.dumps([FORMAT, version, key, payload], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


_warned: set[tuple[str, str]] = set()


def _warn_once(directory: Path, kind: str, message: str) -> None:
    """One warning per directory and kind of fault per process: the cache is an optimisation."""
    if (str(directory), kind) in _warned:
        return
    _warned.add((str(directory), kind))
    warnings.warn(f"astvmap: {message}", RuntimeWarning, stacklevel=4)


def _uid() -> int | None:
    """This process's user id; None where files have no POSIX owner (Windows)."""
    return os.getuid() if hasattr(os, "getuid") else None


def private_dir(create: bool) -> Path | None:
    """The cache directory if only this user can write it (creating it 0700 when asked).

    None when the cache is disabled, absent (and not to be created) or unsafe.
    A directory of ours that others can read or write is tightened to 0700 rather
    than refused: it is our cache (a loose mode comes from a umask or a copy, not
    from a wish to share generated code), and tightening keeps the cache working.
    Entries it held while others could write to it are discarded, since any of
    them could have been planted. A directory owned by another user is refused:
    we cannot tighten it and its owner could always write into it.
    """
    directory = cache_dir()
    if directory is None:
        return None
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError as exc:
        if create:
            _memory_only(directory, f"cannot create it: {exc}")
        return None
    if not stat.S_ISDIR(st.st_mode):
        _memory_only(directory, "it is not a directory")
        return None
    uid = _uid()
    if uid is None:
        return directory
    if st.st_uid != uid:
        reason = f"it belongs to another user (uid {st.st_uid}), who could make this process run their code"
        _memory_only(directory, reason)
        return None
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        return _tighten(directory, stat.S_IMODE(st.st_mode))
    return directory


def _tighten(directory: Path, mode: int) -> Path | None:
    try:
        os.chmod(directory, 0o700)
    except OSError as exc:
        reason = f"it is open to other users (mode {mode:o}) and cannot be made private: {exc}"
        _memory_only(directory, reason)
        return None
    message = f"the cache directory {directory} was open to other users (mode {mode:o}); made it private (700)"
    if mode & 0o022:
        removed = _remove_files(directory)
        message += f" and discarded the {removed} entries others could have written"
    _warn_once(directory, "tightened", message)
    return directory


def _memory_only(directory: Path, reason: str) -> None:
    """Warn, once per directory whatever the fault, that the disk cache is not used."""
    message = (
        f"not using the disk cache in {directory}: {reason}; generated code is kept in memory only"
    )
    _warn_once(directory, "memory", message)


def disk_entries(key: str) -> list[dict[str, Any]]:
    """The verified entries stored under ``key`` (one per set of guard values)."""
    directory = private_dir(create=False)
    if directory is None:
        return []
    out = []
    try:
        # listdir, not glob: no pattern to compile on a start-up's first lookup.
        paths = [directory / n for n in sorted(os.listdir(directory)) if n.startswith(key + "-")]
    except OSError:
        return []
    for path in paths:
        payload = _read_entry(path, key)
        if payload is not None:
            out.append(payload)
    return out


def _read_entry(path: Path, key: str) -> dict[str, Any] | None:
    """A verified entry, or None. An entry that fails verification is deleted, never run."""
    try:
        with open(path, "rb") as fh:
            owner = os.fstat(fh.fileno()).st_uid
            raw = fh.read()
    except OSError:
        return None
    uid = _uid()
    if uid is not None and owner != uid:
        ok = False  # not written by us, whatever its digest says
    else:
        try:
            entry = json.loads(raw)  # undecodable bytes raise UnicodeDecodeError, a ValueError
            payload = entry["payload"]
            version = entry["version"]
            ok = (
                entry["format"] == FORMAT
                and version == build_id()
                and entry["key"] == key
                and isinstance(payload, dict)
                and entry["digest"] == _digest(key, version, payload)
            )
        except (ValueError, KeyError, TypeError, RecursionError):
            ok = False
    if not ok:
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return payload


def make_entry(key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON object stored for ``payload`` under ``key`` by this build."""
    version = build_id()
    return {
        "format": FORMAT,
        "version": version,
        "key": key,
        "digest": _digest(key, version, payload),
        "payload": payload,
    }


def disk_put(key: str, payload: dict[str, Any], variant: str = "0", suffix: str = ".json") -> None:
    """Store an entry atomically; on any failure warn once and go on from memory.

    ``suffix`` tells generated code (``.json``) from the index of where a function's
    source lies in its file (``.block``, see source.py), which ``info`` does not count.
    """
    directory = private_dir(create=True)
    if directory is None:
        return
    try:
        data = json.dumps(make_entry(key, payload)).encode()
    except (TypeError, ValueError) as exc:
        _warn_once(directory, "encode", f"could not encode a cache entry ({exc}); not stored")
        return
    try:
        _write_atomic(directory / f"{key}-{variant}{suffix}", data)
    except OSError as exc:
        _memory_only(directory, f"cannot write to it: {exc}")


def _write_atomic(target: Path, data: bytes) -> None:
    """Write to a private temp file, then rename over ``target``.

    Readers see the old entry or the new one, never a mix, even with several
    processes writing the same entry: each has its own temp file and the last
    rename wins. No fsync: a torn file after a crash fails verification and is
    regenerated, which is cheaper than syncing every entry.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_all(fh: Any, data: bytes) -> None:
    fh.write(data)  # a separate function so tests can simulate a full disk here


def _remove_files(directory: Path) -> int:
    """Delete every entry, block index and leftover temp file in ``directory``; the number of entries."""
    count = 0
    for f in [*directory.glob("*.json"), *directory.glob("*.block")]:
        try:
            f.unlink()
        except OSError:
            continue
        count += f.suffix == ".json" and not f.name.startswith(".")
    return count


def info() -> dict[str, Any]:
    """Where the disk cache is, how many entries it holds and their size in bytes."""
    directory = cache_dir()
    if directory is None:
        return {"location": None, "entries": 0, "bytes": 0, "enabled": False}
    files = [*directory.glob("*.json"), *directory.glob("*.block")] if directory.is_dir() else []
    return {
        "location": str(directory),
        "entries": sum(f.suffix == ".json" and not f.name.startswith(".") for f in files),
        "bytes": sum(f.stat().st_size for f in files),
        "enabled": True,
    }


def clear() -> int:
    """Empty both caches; the number of disk entries removed."""
    memory_clear()
    directory = cache_dir()
    if directory is None or not directory.is_dir():
        return 0
    return _remove_files(directory)
