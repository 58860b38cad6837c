"""The disk cache under faults, and first calls from many threads (issue 6).

The cache is an optimisation: whatever happens to it (corrupt or foreign entries,
concurrent writers, a read-only, missing, shared or full directory) a call still
returns the loop's result, at worst by regenerating or running from memory with
one warning. "Generations" below counts fresh rewrites (``rewrite.Program`` is
made once per transform that does not come from the disk).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from astvmap import cache, rewrite, vmap
from astvmap.testing import loop

from .oracle import check
from .programs import names

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(0)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty disk cache and an empty memory cache for one test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("ASTVMAP_CACHE_DIR", str(directory))
    cache.memory_clear()
    yield directory
    cache.memory_clear()


@pytest.fixture
def generations(monkeypatch):
    """A list that grows by one for every fresh rewrite."""
    made: list[str] = []
    base = rewrite.Program

    class Counting(base):  # type: ignore[misc, valid-type]
        def __init__(self, main, *args, **kwargs):  # noqa: ANN001
            made.append(main.name)
            super().__init__(main, *args, **kwargs)

    monkeypatch.setattr(rewrite, "Program", Counting)
    return made


def entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


def populate(directory: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """One entry for calls_helper (which also converts a helper); its file and arguments."""
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    check(names.calls_helper, X, Y)
    (path,) = entries(directory)
    cache.memory_clear()  # the next call must look at the disk
    return path, X, Y


def is_valid(path: Path) -> bool:
    key = path.name.rsplit("-", 1)[0]
    return cache._read_entry(path, key) is not None


# ------------------------------------------------------------------ entries
def test_an_intact_entry_is_reused(cache_dir, generations):
    path, X, Y = populate(cache_dir)
    assert generations == ["calls_helper"]
    check(names.calls_helper, X, Y)
    assert generations == ["calls_helper"]  # from the disk, not rewritten


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _flip_a_source_byte(raw: bytes) -> bytes:
    entry = json.loads(raw)
    source = entry["payload"]["source"]
    assert " / " in source
    entry["payload"]["source"] = source.replace(" / ", " * ", 1)  # wrong, but it would run
    return json.dumps(entry).encode()


CORRUPTIONS = {
    "truncated": _truncate,
    "empty": lambda raw: b"",
    "not utf-8": lambda raw: b"\xff\xfe\x00garbage" + raw[10:],
    "a json list": lambda raw: b"[1, 2, 3]",
    "a json string": lambda raw: b'"payload"',
    "no digest": lambda raw: json.dumps({**json.loads(raw), "digest": None}).encode(),
    "payload not a dict": lambda raw: json.dumps({**json.loads(raw), "payload": [1]}).encode(),
    "edited source": _flip_a_source_byte,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_damaged_entry_is_regenerated(cache_dir, generations, corrupt):
    path, X, Y = populate(cache_dir)
    path.write_bytes(corrupt(path.read_bytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a damaged entry is routine: no warning
        check(names.calls_helper, X, Y)
    assert generations == ["calls_helper", "calls_helper"]
    assert is_valid(path)  # replaced by a good entry


def test_an_entry_under_another_key_is_regenerated(cache_dir, generations):
    path, X, Y = populate(cache_dir)
    other = cache_dir / f"{'0' * 64}-{path.name.rsplit('-', 1)[1]}"
    path.rename(other)
    assert cache.disk_entries("0" * 64) == []  # the key inside does not match the name
    assert not other.exists()  # discarded
    check(names.calls_helper, X, Y)
    assert len(generations) == 2


def test_an_entry_from_another_version_is_regenerated(cache_dir, generations, monkeypatch):
    path, X, Y = populate(cache_dir)
    entry = json.loads(path.read_text())
    # Written by another build, with a digest that is right for that build.
    with monkeypatch.context() as m:
        m.setattr(cache, "build_id", lambda: "0.0.1+feedfacefeedface")
        path.write_text(json.dumps(cache.make_entry(entry["key"], entry["payload"])))
    assert json.loads(path.read_text())["version"] != cache.build_id()
    check(names.calls_helper, X, Y)
    assert len(generations) == 2
    assert json.loads(path.read_text())["version"] == cache.build_id()


def test_another_versions_entries_are_never_looked_up(cache_dir, generations, monkeypatch):
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with monkeypatch.context() as m:
        m.setattr(cache, "build_id", lambda: "0.0.1+feedfacefeedface")
        check(names.calls_helper, X, Y)
    cache.memory_clear()
    check(names.calls_helper, X, Y)
    assert len(generations) == 2  # the build id is part of the key
    assert len(entries(cache_dir)) == 2


def test_an_entry_that_fails_verification_is_never_run(cache_dir, generations):
    path, X, Y = populate(cache_dir)
    entry = json.loads(path.read_text())
    planted = "import builtins\nbuiltins._astvmap_planted = True\n"
    entry["payload"]["source"] = planted + entry["payload"]["source"]
    path.write_text(json.dumps(entry))  # the digest no longer matches
    try:
        check(names.calls_helper, X, Y)
        import builtins

        assert not hasattr(builtins, "_astvmap_planted")
        assert len(generations) == 2
        # Control: with a matching digest the same entry does run. Only the
        # directory's privacy keeps such entries out (see test_permissions).
        path.write_text(json.dumps(cache.make_entry(entry["key"], entry["payload"])))
        cache.memory_clear()
        check(names.calls_helper, X, Y)
        assert getattr(builtins, "_astvmap_planted", False)
        assert len(generations) == 2
    finally:
        import builtins

        if hasattr(builtins, "_astvmap_planted"):
            del builtins._astvmap_planted


# ---------------------------------------------------------------- processes
RACER = """
import json, os, sys, time
from pathlib import Path
import numpy as np
from astvmap import rewrite, vmap
from tests.programs import names

made = []
class Counting(rewrite.Program):
    def __init__(self, main):
        made.append(main.name)
        super().__init__(main)
rewrite.Program = Counting

# Start together: every process is past its imports before any of them transforms.
barrier, n = Path(sys.argv[1]), int(sys.argv[2])
(barrier / f"ready-{os.getpid()}").touch()
deadline = time.time() + 60
while len(list(barrier.glob("ready-*"))) < n and time.time() < deadline:
    time.sleep(0.002)
X = np.arange(12.0).reshape(4, 3)
out = vmap(names.calls_helper)(X, X[::-1] + 1)
print(len(made), json.dumps(out.tolist()))
"""


def _race(n: int, barrier: Path, env: dict[str, str]) -> list[str]:
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(barrier), str(n)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Warning" not in err, err
        outputs.append(out)
    return outputs


def test_processes_populating_one_entry_at_once(cache_dir, tmp_path):
    env = {**os.environ, "ASTVMAP_CACHE_DIR": str(cache_dir)}
    X = np.arange(12.0).reshape(4, 3)
    want = loop(names.calls_helper, (X, X[::-1] + 1))
    for out in _race(3, tmp_path / "first", env):
        count, result = out.split(" ", 1)
        np.testing.assert_allclose(json.loads(result), want, rtol=1e-12)
    assert len(entries(cache_dir)) == 1
    assert not list(cache_dir.glob(".tmp-*"))  # every writer renamed or removed its file
    (late,) = _race(1, tmp_path / "second", env)
    count, result = late.split(" ", 1)
    assert count == "0"  # the entry is valid: read from the disk, not rewritten
    np.testing.assert_allclose(json.loads(result), want, rtol=1e-12)


# -------------------------------------------------------------- directories
def test_a_missing_directory_is_created_private(tmp_path, monkeypatch, generations):
    directory = tmp_path / "deep" / "er" / "cache"
    monkeypatch.setenv("ASTVMAP_CACHE_DIR", str(directory))
    cache.memory_clear()
    old = os.umask(0)  # even a permissive umask gives a private directory
    try:
        check(names.helper, rng.standard_normal((3, 2)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (path,) = entries(directory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _deny_writes(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Make ``directory`` read-only; root ignores modes, so there the write itself fails."""
    directory.chmod(0o500)
    if os.geteuid() == 0:

        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", str(directory))

        monkeypatch.setattr(cache.tempfile, "mkstemp", refuse)


def test_a_read_only_directory_is_read_and_not_written(cache_dir, generations, monkeypatch):
    path, X, Y = populate(cache_dir)
    _deny_writes(monkeypatch, cache_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check(names.calls_helper, X, Y)  # a hit: nothing to write, no warning
        assert len(generations) == 1
        with pytest.warns(RuntimeWarning, match="in memory only") as record:
            check(names.calls_helper, X, Y[0], in_axes=(0, None))
            for rank in (1, 2, 3):  # new specialisations, still one warning
                check(names.helper, rng.standard_normal((3,) + (2,) * rank))
                check(names.helper, rng.standard_normal((3,) + (2,) * rank))
        assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
        assert len(generations) == 5  # one rewrite per specialisation, then from memory
    finally:
        cache_dir.chmod(0o700)
    assert entries(cache_dir) == [path]


def test_a_file_where_the_directory_should_be(tmp_path, monkeypatch, generations):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ASTVMAP_CACHE_DIR", str(blocker))
    cache.memory_clear()
    X = rng.standard_normal((3, 2))
    with pytest.warns(RuntimeWarning, match="in memory only") as record:
        check(names.helper, X)
        check(names.helper, X)
        check(names.np_sum, X)
    assert len(record) == 1
    assert len(generations) == 2
    assert blocker.read_text() == "not a directory"


def test_a_full_disk(cache_dir, generations, monkeypatch):
    def full(fh: object, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_write_all", full)
    X = rng.standard_normal((4, 3))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for f in (names.helper, names.np_sum, names.two_outputs):
            check(f, X)
            check(f, X)
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "No space left" in messages[0], messages
    assert len(generations) == 3
    assert list(cache_dir.iterdir()) == []  # no entry, and no temp file left behind


# -------------------------------------------------------------- permissions
def test_a_loose_directory_of_ours_is_tightened(cache_dir, generations):
    path, X, Y = populate(cache_dir)
    cache_dir.chmod(0o755)  # readable by others, writable by nobody else: entries kept
    with pytest.warns(RuntimeWarning, match="made it private"):
        check(names.calls_helper, X, Y)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert len(generations) == 1 and is_valid(path)


def test_a_directory_others_could_write_is_tightened_and_emptied(cache_dir, generations):
    path, X, Y = populate(cache_dir)
    cache_dir.chmod(0o777)
    with pytest.warns(RuntimeWarning, match="discarded the 1 entries"):
        check(names.calls_helper, X, Y)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert len(generations) == 2  # the old entry could have been planted: regenerated
    assert is_valid(path)


def test_a_directory_of_another_user_is_not_used(cache_dir, generations, monkeypatch):
    path, X, Y = populate(cache_dir)
    owner = cache_dir.stat().st_uid
    monkeypatch.setattr(cache, "_uid", lambda: owner + 1)
    with pytest.warns(RuntimeWarning, match="belongs to another user") as record:
        check(names.calls_helper, X, Y)
        check(names.helper, X)
    assert len(record) == 1
    assert len(generations) == 3  # its entry is not read, and nothing is written there
    assert entries(cache_dir) == [path]


def test_an_entry_file_of_another_user_is_discarded(cache_dir, generations, monkeypatch):
    path, X, Y = populate(cache_dir)
    real = os.fstat

    def foreign(fd: int) -> os.stat_result:
        st = list(real(fd))
        st[stat.ST_UID] += 1
        return os.stat_result(st)

    monkeypatch.setattr(cache.os, "fstat", foreign)
    assert cache._read_entry(path, path.name.rsplit("-", 1)[0]) is None
    monkeypatch.undo()
    assert not path.exists()


# ---------------------------------------------------------------------- cli
def _cli(*args: str, env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "astvmap.cli", "cache", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


def test_cache_info_and_clear_commands(cache_dir):
    env = {**os.environ, "ASTVMAP_CACHE_DIR": str(cache_dir)}
    assert "entries:  0" in _cli("info", env=env)
    populate(cache_dir)
    (cache_dir / ".tmp-leftover.json").write_text("{")  # a writer killed mid-write
    size = sum(p.stat().st_size for p in cache_dir.iterdir())
    info = _cli("info", env=env)
    assert f"location: {cache_dir}" in info
    assert "entries:  1\n" in info
    assert f"size:     {size} bytes" in info
    assert _cli("clear", env=env) == "removed 1 cache entries\n"
    assert list(cache_dir.iterdir()) == []
    assert "entries:  0" in _cli("info", env=env)
    disabled = _cli("info", env={**env, "ASTVMAP_CACHE": "0"})
    assert "disabled" in disabled


# ------------------------------------------------------------------ threads
def fresh_module(tmp_path: Path, text: str) -> object:
    """A module with code objects no cache has seen (source in a real file)."""
    name = f"astvmap_fresh_{len(list(tmp_path.glob('*.py')))}_{os.getpid()}_{id(tmp_path)}"
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


FRESH = """
import dataclasses
import numpy as np

@dataclasses.dataclass
class Pair:
    scale: object
    shift: object

def helper(v):
    return v / np.linalg.norm(v)

def f(x, p):
    y = helper(x) * p.scale + p.shift
    return np.tanh(y).sum(axis=-1), y
"""


def run_threads(n: int, work: object) -> list[object]:
    """``work(k)`` on ``n`` threads released at once; its results (exceptions re-raised)."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def main(k: int) -> None:
        barrier.wait()
        try:
            results[k] = work(k)  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_many_threads_first_call_one_transform(cache_dir, tmp_path, generations):
    module = fresh_module(tmp_path, FRESH)
    X = rng.standard_normal((5, 3))
    p = module.Pair(rng.standard_normal(3), 0.5)  # a pytree class the threads all meet first
    in_axes = (0, None)
    batched = vmap(module.f, in_axes=in_axes)
    results = run_threads(16, lambda k: batched(X, p))
    assert generations == ["f"]
    want = loop(module.f, (X, p), in_axes)
    for got in results:
        for g, w in zip(got, want):  # type: ignore[call-overload]
            np.testing.assert_allclose(g, w, rtol=1e-12)


def test_many_threads_and_wrappers_several_specialisations(cache_dir, tmp_path, generations):
    module = fresh_module(tmp_path, FRESH)
    shapes = [(4, 3), (4, 2, 3), (4, 2, 2, 3)]
    inputs = [rng.standard_normal(s) for s in shapes]
    p = module.Pair(2.0, rng.standard_normal(3))

    def work(k: int) -> object:
        X = inputs[k % 3]
        got = vmap(module.f, in_axes=(0, None))(X, p)  # a new wrapper on every thread
        return X, got

    results = run_threads(18, work)
    assert sorted(generations) == ["f", "f", "f"]
    for X, got in results:  # type: ignore[misc]
        want = loop(module.f, (X, p), (0, None))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)


def test_many_threads_on_a_function_without_a_rule(cache_dir, generations):
    X, k = rng.standard_normal((4, 6)), np.array([0.25, 0.5, 0.25])
    batched = vmap(names.binned, in_axes=(0, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_threads(8, lambda _: batched(X, k))
    assert generations == ["binned"]  # the attempt that found no rule is not repeated
    want = loop(names.binned, (X, k), (0, None))
    for got in results:
        np.testing.assert_allclose(got, want)


def test_the_build_fingerprint_changes_when_a_source_file_changes(tmp_path):
    """An edited astvmap (or rule) never reads entries an older one wrote: the build id
    hashes each source file's path, size and modification time (as .pyc files do)."""
    (tmp_path / "sub").mkdir()
    rule = tmp_path / "sub" / "rule.py"
    rule.write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not source")
    os.utime(rule, ns=(1_000_000_000, 1_000_000_000))
    before = cache.source_fingerprint([str(tmp_path)])
    assert cache.source_fingerprint([str(tmp_path)]) == before
    (tmp_path / "notes.txt").write_text("other text")  # not a .py file: no change
    assert cache.source_fingerprint([str(tmp_path)]) == before
    rule.write_text("x = 2\n")  # same size, new content: its time moves
    os.utime(rule, ns=(2_000_000_000, 2_000_000_000))
    edited = cache.source_fingerprint([str(tmp_path)])
    assert edited != before
    rule.write_text("x = 22\n")  # same time, another size
    os.utime(rule, ns=(2_000_000_000, 2_000_000_000))
    resized = cache.source_fingerprint([str(tmp_path)])
    assert resized not in (before, edited)
    (tmp_path / "sub" / "new.py").write_text("")  # a new module
    assert cache.source_fingerprint([str(tmp_path)]) != resized
