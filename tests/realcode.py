"""``emit`` over the functions of real pure-Python NumPy code bases.

Every top-level function of the modules below is transformed with example
arguments whose ranks come from its annotations where they give one, else every
parameter without a default is a mapped rank-1 float array, and parameters with
defaults keep them (unmapped). Nothing is run: the transform either succeeds or
raises ``UnsupportedError`` naming a line. Anything else (``TransformBug``, any
other exception, a transform that does not finish) is a bug in astvmap.

    python -m tests.realcode                 # the full run, counts and bug groups
    python -m tests.realcode --minimize FILE # also minimise one reproducer per group

``tests/test_real_code.py`` runs a fixed sample of these functions in CI, and all
of them with ``ASTVMAP_REAL_CODE=all``.
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import linecache
import os
import pkgutil
import signal
import sys
import textwrap
import time
import types
import warnings
from collections.abc import Iterator
from typing import Any

from astvmap import UnsupportedError, VmapError, cache, ranks
from astvmap.emit import specialisation
from astvmap.errors import TransformBug

# Packages whose pure-Python modules are read (``walk``), and single modules.
PACKAGES = {
    "numpy": [
        "numpy.lib",
        "numpy.linalg",
        "numpy.polynomial",
        "numpy.fft",
        "numpy.ma",
        "numpy._core",
        "numpy.random",
    ],
    "scipy": [
        "scipy.stats",
        "scipy.signal",
        "scipy.interpolate",
        "scipy.optimize",
        "scipy.linalg",
        "scipy.special",
        "scipy.ndimage",
        "scipy.integrate",
        "scipy.fft",
        "scipy.cluster",
        "scipy.spatial",
        "scipy.differentiate",
        "scipy.sparse",
        "scipy.io",
        "scipy.odr",
        "scipy.datasets",
        "scipy.constants",
    ],
    "transforms3d": ["transforms3d"],
    "pytransform3d": ["pytransform3d"],
    "numpy_financial": ["numpy_financial"],
    "pymap3d": ["pymap3d"],
    "colour": ["colour"],
}
# Never read: test suites, build helpers, and modules that print or start things on import.
SKIP_PARTS = {
    "tests",
    "test",
    "testing",
    "conftest",
    "setup",
    "_build_utils",
    "benchmarks",
    "_precompute",  # scipy.special's table generators: scripts, not library code
    "derivations",  # transforms3d's symbolic (SymPy) derivations
}
SKIP_MODULES = ("numpy._core._add_newdocs", "numpy._core.overrides", "numpy._pyinstaller")
# The CI sample: cheap-to-import parts of each code base, one function in EVERY.
SAMPLE_PACKAGES = {
    "numpy": PACKAGES["numpy"],
    "scipy": ["scipy.special", "scipy.linalg", "scipy.fft"],
    "transforms3d": ["transforms3d"],
    "pytransform3d": ["pytransform3d.rotations", "pytransform3d.transformations"],
    "numpy_financial": ["numpy_financial"],
    "pymap3d": ["pymap3d"],
}
EVERY = 8
TIME_LIMIT = 60.0  # seconds for one transform; the slowest real functions take a few


# ------------------------------------------------------------------ collecting
@dataclasses.dataclass(frozen=True)
class Case:
    """One function to transform."""

    codebase: str
    module: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.module}:{self.name}"

    def function(self) -> types.FunctionType:
        return target(getattr(importlib.import_module(self.module), self.name))


def target(obj: Any) -> Any:
    """The Python function behind a name: NumPy's ``array_function_dispatch`` keeps it in
    ``_implementation``."""
    return getattr(obj, "_implementation", obj)


def modules(package: str) -> Iterator[str]:
    """The pure-Python modules of a package (or the module itself)."""
    try:
        root = importlib.import_module(package)
    except Exception:  # noqa: BLE001 - an optional part that does not import is left out
        return
    yield package
    path = getattr(root, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, package + ".", onerror=lambda name: None):
        parts = set(info.name.split("."))
        if parts & SKIP_PARTS or info.name.startswith(SKIP_MODULES):
            continue
        yield info.name


def _is_python(module: types.ModuleType) -> bool:
    return str(getattr(module, "__file__", "")).endswith(".py")


def collect(
    codebases: list[str] | None = None, packages: dict[str, list[str]] | None = None
) -> list[Case]:
    """Every top-level Python function defined in the code bases' modules, once each."""
    cases, seen = [], set()
    for codebase, roots in (packages or PACKAGES).items():
        if codebases is not None and codebase not in codebases:
            continue
        for package in roots:
            for name in modules(package):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        module = importlib.import_module(name)
                except Exception:  # noqa: BLE001 - optional dependencies missing
                    continue
                if not _is_python(module):
                    continue
                for attr, obj in sorted(vars(module).items()):
                    fn = target(obj)
                    if (
                        isinstance(fn, types.FunctionType)
                        and getattr(fn, "__module__", None) == name
                        and id(fn) not in seen
                    ):
                        seen.add(id(fn))
                        cases.append(Case(codebase, name, attr))
    return cases


def sample(cases: list[Case], every: int) -> list[Case]:
    """A deterministic sample: the cases whose id hashes to 0 modulo ``every``."""
    return [c for c in cases if int(hashlib.sha1(c.id.encode()).hexdigest(), 16) % every == 0]


# ------------------------------------------------------------------ ranks
def example_arguments(fn: types.FunctionType) -> ranks.Arguments | None:
    """Arguments from annotations, else rank-1 float arrays for every parameter without
    a default; None when the function takes no parameter to map."""
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        text = ""
    fdef = ranks.def_node(text)
    specs, why = ranks.specs_for(fdef, vars(sys.modules.get(fn.__module__, object)), {}, {})
    signature = inspect.signature(fn)
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in specs:
            continue
        if p.default is p.empty:
            specs[p.name] = ranks.Leaf(1)
    try:
        made = ranks.arguments(signature, specs, why, 0)
    except ranks.RankError:
        return None
    return made if made.args else None


# ------------------------------------------------------------------ running
class Expired(BaseException):
    """A transform ran past TIME_LIMIT (a BaseException, so astvmap does not catch it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Expired(f"the transform did not finish in {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class Outcome:
    case: Case
    kind: str  # transformed | unsupported | no-source | no-arguments | bug | slow
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def group(self) -> str:
        """A bug's kind: its exception type and the innermost astvmap frame."""
        exc = self.error
        if isinstance(exc, TransformBug):
            cause = exc.__cause__
            return f"{type(cause).__name__} at {exc.frame.split(':')[0]} in {exc.frame.split(' in ')[-1]}"
        if exc is None:
            return self.kind
        return f"{type(exc).__name__} (not a TransformBug): {first_line(exc)[:80]}"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def transform(fn: types.FunctionType, args: ranks.Arguments, limit: float) -> None:
    """Transform ``fn`` for ``args`` (nothing is run); raises what the transform raises."""
    with warnings.catch_warnings(), time_limit(limit):
        warnings.simplefilter("ignore")
        try:
            # Made-up arguments: the library's function must not run (no probe).
            specialisation(fn, *args.args, run_example=False, **args.kwargs)
        finally:
            cache.memory_clear()


def run_case(case: Case, limit: float = TIME_LIMIT) -> Outcome:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn = case.function()
        args = example_arguments(fn)
    except Exception as exc:  # noqa: BLE001 - collected, but not callable with guessed ranks
        return Outcome(case, "no-arguments", exc)
    if args is None:
        return Outcome(case, "no-arguments")
    start = time.perf_counter()
    try:
        transform(fn, args, limit)
    except Expired as exc:
        return Outcome(case, "slow", exc, time.perf_counter() - start)
    except UnsupportedError as exc:
        return Outcome(case, "unsupported", exc, time.perf_counter() - start)
    except VmapError as exc:
        if not isinstance(exc, TransformBug) and "is not available" in str(exc):
            # Made by exec() without registering its text: astvmap says it has no source.
            return Outcome(case, "no-source", exc, time.perf_counter() - start)
        return Outcome(case, "bug", exc, time.perf_counter() - start)
    except (TypeError, ValueError) as exc:
        if _before_transform(exc):
            return Outcome(case, "no-arguments", exc)  # vmap refused the guessed arguments
        return Outcome(case, "bug", exc, time.perf_counter() - start)
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt aside, all are findings
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Outcome(case, "bug", exc, time.perf_counter() - start)
    return Outcome(case, "transformed", None, time.perf_counter() - start)


def _before_transform(exc: BaseException) -> bool:
    """Whether vmap rejected the function or the arguments before transforming (``vmap()``
    refuses a generator function with TypeError; ``prepare`` checks the arguments)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "astvmap.pipeline":
            return False
        tb = tb.tb_next
    return True


def run_all(cases: list[Case], limit: float = TIME_LIMIT, progress: bool = False) -> list[Outcome]:
    out = []
    for k, case in enumerate(cases):
        outcome = run_case(case, limit)
        out.append(outcome)
        if progress and (k % 100 == 0 or outcome.kind in ("bug", "slow")):
            print(f"[{k}/{len(cases)}] {case.id}: {outcome.kind} {outcome.group}", flush=True)
    return out


# ------------------------------------------------------------------ minimising
def _statement_lists(tree: ast.AST) -> Iterator[tuple[list, int]]:
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if (
                isinstance(block, list)
                and block
                and isinstance(block[0], (ast.stmt, ast.excepthandler))
            ):
                for k in range(len(block)):
                    yield block, k


def minimize(case: Case, group: str, budget: float = 120.0) -> str:
    """The function's source with statements deleted while the same bug group shows.

    The candidate text is compiled into a copy of the function's module namespace and
    registered with linecache, so astvmap reads it as a user's file.
    """
    fn = case.function()
    args = example_arguments(fn)
    text = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(text)
    deadline = time.monotonic() + budget
    counter = [0]

    def shows(src: str) -> bool:
        counter[0] += 1
        filename = f"<realcode-min {case.id} {counter[0]}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        namespace = dict(fn.__globals__)
        try:
            exec(compile(src, filename, "exec"), namespace)  # noqa: S102 - the library's own code
            candidate = namespace[fn.__name__]
            if fn.__closure__:
                return False
            candidate = types.FunctionType(
                candidate.__code__, fn.__globals__, fn.__name__, candidate.__defaults__
            )
            candidate.__kwdefaults__ = fn.__kwdefaults__
            transform(candidate, args, 30.0)
        except (UnsupportedError, Expired):
            return False
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            return Outcome(case, "bug", exc).group == group
        finally:
            linecache.cache.pop(filename, None)
        return False

    if not shows(text):
        return text
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for block, k in list(_statement_lists(tree)):
            if time.monotonic() > deadline or k >= len(block):
                continue
            if isinstance(block[k], (ast.FunctionDef,)) and block is tree.body:
                continue  # the def itself
            saved = list(block)
            del block[k]
            if not block:
                block.append(ast.Pass())
            if shows(ast.unparse(tree)):
                progress = True
                break
            block[:] = saved
    return ast.unparse(tree) + "\n"


# ------------------------------------------------------------------ reporting
def report(outcomes: list[Outcome]) -> str:
    counts = collections.Counter(o.kind for o in outcomes)
    tried = len(outcomes) - counts["no-arguments"]
    lines = [
        f"functions collected: {len(outcomes)}; tried: {tried} "
        f"(not tried, no parameter to map or arguments refused: {counts['no-arguments']})",
        f"  transformed: {counts['transformed']}",
        f"  UnsupportedError: {counts['unsupported']}",
        f"  VmapError, no source (made by exec): {counts['no-source']}",
        f"  internal errors (bugs): {counts['bug']}",
        f"  slower than {TIME_LIMIT:.0f} s: {counts['slow']}",
    ]
    by_codebase: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_codebase[o.case.codebase][o.kind] += 1
    for name, c in by_codebase.items():
        lines.append(f"  {name}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items())))
    groups = bug_groups(outcomes)
    if groups:
        lines.append("bug groups (exception type, innermost astvmap frame):")
    for group, members in groups.items():
        sample_ids = ", ".join(o.case.id for o in members[:4])
        lines.append(f"  {len(members):5}  {group}   e.g. {sample_ids}")
    reasons = collections.Counter(
        o.error.reason for o in outcomes if o.kind == "unsupported" and o.error is not None
    )
    lines.append("most frequent UnsupportedError reasons:")
    for reason, n in reasons.most_common(15):
        lines.append(f"  {n:5}  {reason[:110]}")
    slow = [o for o in outcomes if o.kind == "slow"]
    if slow:
        lines.append("slow: " + ", ".join(o.case.id for o in slow))
    return "\n".join(lines)


def bug_groups(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    groups: dict[str, list[Outcome]] = collections.defaultdict(list)
    for o in outcomes:
        if o.kind == "bug":
            groups[o.group].append(o)
    return dict(sorted(groups.items(), key=lambda g: -len(g[1])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codebase", action="append", help="only these (repeatable)")
    parser.add_argument("--every", type=int, default=1, help="a deterministic 1-in-N sample")
    parser.add_argument("--sample", action="store_true", help="the CI sample's packages")
    parser.add_argument("--minimize", metavar="FILE", help="write minimised reproducers here")
    parser.add_argument("--limit", type=float, default=TIME_LIMIT)
    args = parser.parse_args(argv)
    os.environ.setdefault("ASTVMAP_CACHE", "0")
    packages = SAMPLE_PACKAGES if args.sample else None
    cases = sample(collect(args.codebase, packages), args.every)
    start = time.perf_counter()
    outcomes = run_all(cases, args.limit, progress=True)
    print(report(outcomes))
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.minimize:
        with open(args.minimize, "w") as out:
            for group, members in bug_groups(outcomes).items():
                smallest = min(members, key=lambda o: len(inspect.getsource(o.case.function())))
                small = minimize(smallest.case, group)
                made = example_arguments(smallest.case.function())
                shown = [ranks_text(a) for a in made.args]
                out.write(
                    f"### {group} ({len(members)} functions)\n\n"
                    f"e.g. {', '.join(o.case.id for o in members[:6])}\n\n"
                    f"Minimised from `{smallest.case.id}` (module globals as in that module), "
                    f"called with {', '.join(shown)} (in_axes=0):\n\n"
                    f"```python\n{small}```\n\n"
                    f"```\n{first_line(smallest.error)}\n```\n\n"
                )
                out.flush()
    return 0


def ranks_text(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"array{shape}" if shape is not None else repr(value)


if __name__ == "__main__":
    sys.exit(main())
