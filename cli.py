"""The ``astvmap`` command line: ``demo``, ``emit``, ``cache``.

Installed as ``astvmap.cli`` (through the ``astvmap/cli.py`` link) and as the
``astvmap`` console script; ``python cli.py ...`` works from a checkout too.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import importlib.util
import inspect
import json
import os
import re
import sys
import textwrap
import time
import types
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = (
    Path(__file__).resolve().parent.parent
    if Path(__file__).resolve().parent.name == "astvmap"
    else Path(__file__).resolve().parent
)
FIXTURES = REPO / "fixtures"


def load_module(path: Path) -> types.ModuleType:
    """Import a file as a module (registered in sys.modules so inspect finds its source)."""
    name = f"astvmap_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"astvmap: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fixture_files(directory: Path = FIXTURES) -> list[Path]:
    return sorted(
        p
        for p in directory.glob("*.py")
        if not p.name.endswith(".vmap.py") and not p.name.startswith("_")
    )


# ------------------------------------------------------------------ demo
def _best_time(fn: Any, *args: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def cmd_demo(args: argparse.Namespace) -> int:
    from astvmap import vmap
    from astvmap.testing import assert_same, loop

    files = fixture_files(Path(args.fixtures))
    if args.only:
        files = [f for f in files if f.stem in args.only]
    print(f"astvmap demo: {len(files)} example programs from {args.fixtures}, batch {args.batch}\n")
    print(
        f"{'program':28} {'loop (ms)':>10} {'vmap (ms)':>10} {'speed-up':>9}  {'first call (ms)':>15}  matches loop"
    )
    failures = 0
    rng = np.random.default_rng(0)
    for path in files:
        module = load_module(path)
        spec = module.VMAP
        fn = getattr(module, spec["fn"])
        in_axes, out_axes = spec.get("in_axes", 0), spec.get("out_axes", 0)
        batch_args = module.example(rng, args.batch)
        batched = vmap(fn, in_axes=in_axes, out_axes=out_axes)
        t0 = time.perf_counter()
        got = batched(*batch_args)
        first = time.perf_counter() - t0
        t_vmap = _best_time(batched, *batch_args)
        t0 = time.perf_counter()
        want = loop(fn, batch_args, in_axes, out_axes)
        t_loop = time.perf_counter() - t0
        try:
            assert_same(got, want, rtol=1e-7, atol=1e-9)
            ok = "yes"
        except AssertionError as exc:
            ok = f"NO: {str(exc).splitlines()[0]}"
            failures += 1
        print(
            f"{path.stem:28} {t_loop * 1e3:10.1f} {t_vmap * 1e3:10.2f} {t_loop / t_vmap:8.0f}x  {first * 1e3:15.1f}  {ok}"
        )
    print("\nloop: the per-example function called in a Python loop and stacked (the oracle);")
    print(
        "vmap: the generated batched code, best of 5 warm calls; first call includes the rewrite."
    )
    return 1 if failures else 0


# ------------------------------------------------------------------ emit
class EmitProblem(Exception):
    """A request ``astvmap emit`` cannot serve; the message says what to do instead."""


@dataclasses.dataclass
class EmitJob:
    """A function to emit, with what is known about how it is batched."""

    fn: Any  # the function as written (a VmappedFunction when decorated with @vmap)
    fdef: ast.FunctionDef | None  # its syntax, for annotations
    names: Container[str]  # names bound in its module (a string annotation naming one is a type)
    spec: dict[str, Any]  # the module's VMAP dict, when it names this function
    example: Any  # the module's example(rng, batch), when VMAP names this function
    helper: Callable[[str], Any]  # a name in the function's module -> the function it names
    where: str
    # Said after a transform error: what static reading left out that may explain it.
    hints: list[str] = dataclasses.field(default_factory=list)


def _parse_axes(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise EmitProblem(
            f"cannot read axes {text!r}: write them as in Python, e.g. 0,None or \"(0, {{'w': None}})\""
        ) from None


def _static_job(path: Path, name: str) -> EmitJob:
    """FILE.py:FUNC: the file is read, never imported or run (see astvmap/static.py)."""
    from astvmap import static

    if not path.is_file():
        raise EmitProblem(f"no such file: {path}")
    module = static.read(path)
    try:
        fn = module.function(name)
    except LookupError as exc:
        raise EmitProblem(str(exc)) from None
    problems = module.unbound_names(name)
    if problems:
        raise EmitProblem(
            f"{name} reads names that static emit does not bind:\n  "
            + "\n  ".join(problems)
            + "\nuse the module form (astvmap emit package.module:FUNC), which imports the file"
        )
    spec = module.namespace.get("VMAP")
    spec = spec if isinstance(spec, dict) and spec.get("fn") == name else {}
    return EmitJob(
        fn=fn,
        fdef=module.defs[name],
        names=set(module.namespace) | set(module.skipped) | set(module.raw),
        spec=spec,
        example=module.namespace.get("example") if spec else None,
        helper=module.raw.get,
        where=str(path),
        hints=[
            f"static emit did not evaluate the default(s) of {d}"
            for d in module.unevaluated_defaults(name)
        ],
    )


def _module_job(target: str, name: str) -> EmitJob:
    """package.module:FUNC: imported (its top level runs), then handled like vmap."""
    from astvmap import ranks, source
    from astvmap.api import resolve_target

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does
    module = importlib.import_module(target)
    fn = getattr(module, name, None)
    if fn is None:
        raise EmitProblem(f"{target} has no attribute {name!r}")
    user = resolve_target(fn).fn
    spec = getattr(module, "VMAP", None)
    spec = spec if isinstance(spec, dict) and spec.get("fn") == name else {}
    return EmitJob(
        fn=fn,
        fdef=ranks.def_node(source.get_source(user).text),
        names=vars(module),
        spec=spec,
        example=getattr(module, "example", None) if spec else None,
        helper=user.__globals__.get,
        where=target,
    )


def _emit_job(target_text: str) -> EmitJob:
    target, _, name = target_text.rpartition(":")
    if not target or not name:
        raise EmitProblem("give FILE.py:FUNCTION or package.module:FUNCTION")
    if target.endswith(".py") or "/" in target or os.sep in target:
        return _static_job(Path(target), name)
    return _module_job(target, name)


def _batched(job: EmitJob, args: argparse.Namespace) -> Any:
    """The vmapped function: axes from the flags, else @vmap's, else VMAP's, else 0."""
    from astvmap import vmap
    from astvmap.api import VmappedFunction

    fn, in_axes, out_axes = job.fn, job.spec.get("in_axes", 0), job.spec.get("out_axes", 0)
    # axis_name and randomness shape the generated code too: kept from VMAP or @vmap(...).
    options = {k: job.spec[k] for k in ("axis_name", "randomness") if k in job.spec}
    if isinstance(fn, VmappedFunction):
        options = {"axis_name": fn.axis_name, "randomness": fn.randomness}
        fn, in_axes, out_axes = fn.fun, fn.in_axes, fn.out_axes
    in_axes = _parse_axes(args.in_axes, in_axes)
    out_axes = _parse_axes(args.out_axes, out_axes)
    return vmap(fn, in_axes=in_axes, out_axes=out_axes, **options)


def _example_arguments(job: EmitJob, vf: Any, args: argparse.Namespace) -> Any:
    """Example arguments from the flags and annotations (or the module's example())."""
    from astvmap import ranks

    flags = {
        **ranks.parse_ranks(args.rank or []),
        **ranks.parse_shapes(args.shape or []),
        **ranks.parse_values(args.value or []),
    }
    specs, why = ranks.specs_for(job.fdef, job.names, flags, ranks.parse_dtypes(args.dtype or []))
    try:
        return ranks.arguments(
            inspect.signature(vf.fun, follow_wrapped=False), specs, why, vf.in_axes, explicit=flags
        )
    except ranks.RankError as exc:
        if flags or job.example is None:
            raise
        # The fixtures/ convention: VMAP names this function and example() makes its
        # arguments. Only example() runs, never the file's top level.
        try:
            made = tuple(job.example(np.random.default_rng(0), 2))
        except Exception as failure:
            raise ranks.RankError(
                f"{exc}\n(example() in {job.where} failed: {failure!r})"
            ) from None
        return ranks.Arguments(made, {}, [f"arguments from example() in {job.where}"])


def _original_text(fn: Any) -> str:
    """A function's def as the user wrote it, without decorators."""
    from astvmap import ranks, source

    text = source.get_source(fn).text
    node = ranks.def_node(text)
    if node is None:
        return text
    return "".join(text.splitlines(True)[node.lineno - 1 : node.end_lineno])


def _diff(job: EmitJob, vf: Any, compiled: Any, shown: str) -> str:
    """The user's functions against the generated ones, def by def in generated order."""
    from astvmap.api import resolve_target

    generated = ast.parse(compiled.source)
    defs = [n for n in generated.body if isinstance(n, ast.FunctionDef)]
    lines = compiled.source.splitlines(True)
    new = "".join(lines[defs[0].lineno - 1 :]) if defs else compiled.source
    originals = []
    for node in defs:
        user = resolve_target(vf.fun).fn if node.name == compiled.main else None
        if user is None:
            candidate = job.helper(re.sub(r"_vmap\d*$", "", node.name))
            user = candidate if isinstance(candidate, types.FunctionType) else None
        if user is not None:
            originals.append(textwrap.dedent(_original_text(user)))
    old = "\n\n".join(originals)
    label = f"{shown} (vmap, in_axes={vf.in_axes!r}, out_axes={vf.out_axes!r})"
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), shown, label))


def cmd_emit(args: argparse.Namespace) -> int:
    from astvmap.emit import specialisation
    from astvmap.errors import FallbackError, VmapError
    from astvmap.ranks import RankError

    job = None
    try:
        job = _emit_job(args.target)
        vf = _batched(job, args)
        made = _example_arguments(job, vf, args)
        compiled = specialisation(vf, *made.args, annotate=args.annotate, **made.kwargs)
    except (EmitProblem, RankError, VmapError) as exc:
        print(f"astvmap emit: {exc}", file=sys.stderr)
        if isinstance(exc, FallbackError):
            print(
                "note: vmap runs this function per example (a Python loop over the batch, "
                "with a PerformanceWarning); there is no batched code to show",
                file=sys.stderr,
            )
        if isinstance(exc, VmapError) and job is not None:
            for hint in job.hints:
                print(f"note: {hint}", file=sys.stderr)
        return 2
    for note in made.notes:
        print(f"astvmap emit: note: {note}", file=sys.stderr)
    if args.check:
        return _check(Path(args.check), compiled.source)
    out = _diff(job, vf, compiled, job.where) if args.diff else compiled.source
    if args.diff and not out:
        print(
            "astvmap emit: the generated functions read the same as the originals", file=sys.stderr
        )
    if args.output:
        Path(args.output).write_text(out)
    elif args.diff and sys.stdout.isatty():
        sys.stdout.write("\n".join(_colour(line) for line in out.split("\n")))
    else:
        sys.stdout.write(out)
    return 0


def _check(saved_path: Path, text: str) -> int:
    """Like `black --check`: 0 when the saved file is current, 1 and a diff when not."""
    try:
        saved = saved_path.read_text()
    except OSError as exc:
        print(f"astvmap emit: --check: {exc}", file=sys.stderr)
        return 2
    if saved == text:
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            saved.splitlines(True), text.splitlines(True), str(saved_path), "generated now"
        )
    )
    print(f"astvmap emit: {saved_path} is out of date", file=sys.stderr)
    return 1


def _colour(line: str) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return f"\033[32m{line}\033[0m"
    if line.startswith("-") and not line.startswith("---"):
        return f"\033[31m{line}\033[0m"
    return line


# ------------------------------------------------------------------ cache
def cmd_cache(args: argparse.Namespace) -> int:
    from astvmap import cache

    if args.action == "info":
        info = cache.info()
        if not info["enabled"]:
            print("disk cache: disabled (ASTVMAP_CACHE=0)")
        else:
            print(
                f"location: {info['location']}\nentries:  {info['entries']}\nsize:     {info['bytes']} bytes"
            )
        return 0
    removed = cache.clear()
    print(f"removed {removed} cache entries")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from astvmap import rules
    from astvmap.rules import status

    if args.update_readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        start = text.index("<!-- rules-table -->\n") + len("<!-- rules-table -->\n")
        end = text.index("<!-- /rules-table -->")
        readme.write_text(text[:start] + rules.table() + text[end:])
        return 0
    if args.markdown:
        sys.stdout.write(rules.table())
        return 0
    entries = rules.entries()
    if args.json:
        report = {
            "functions": entries,
            "count": len(entries),
            "jax_numpy": {
                "source": status.SOURCE,
                "counts": status.counts(),
                "names": status.table(),
            },
        }
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    width = max(len(e["function"]) for e in entries)
    fam = max(len(e["family"]) for e in entries)
    for e in entries:
        print(f"{e['function']:<{width}}  {e['family']:<{fam}}  {e['notes']}".rstrip())
    c = status.counts()
    print(
        f"\n{len(entries)} functions. Of the {sum(c.values())} jax.numpy names: "
        f"{c.get('rule', 0)} with a rule, {c.get('refused', 0)} refused, "
        f"{c.get('n/a', 0)} not array functions (astvmap rules --json lists them)."
    )
    return 0


EMIT_HELP = """\
Print the generated module for one function: black-formatted, with a header naming
the source file and line, in_axes/out_axes and the ranks it is specialised on.

FILE.py:FUNC reads FILE.py without importing or running it: its top level never
runs. Only its imports of numpy, scipy and the standard library, its literal
constants, its defs (decorators other than @vmap not applied) and simple classes
are bound; a function that needs anything else is reported, with where it is bound.
package.module:FUNC imports the module (its top level runs) and then behaves like
vmap(FUNC).emit(...).

The ranks of the arguments come from --value/--shape/--rank, else from annotations
(x: "n d", x: Float[np.ndarray, "n d"], eps: float; read, never evaluated). When
none are given and the module's VMAP dict names FUNC, its example(rng, batch)
function makes them (the fixtures/ convention; only that function runs).
in_axes/out_axes come from --in-axes/--out-axes, else @vmap(...) on FUNC, else VMAP.

The header names FILE relative to the working directory: run --check from the
directory the saved file was made in. Exit status: 0 done; 1 --check found a
difference; 2 an error (message on stderr).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astvmap", description="vmap for plain NumPy, by source rewriting"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="vmap the example programs in fixtures/, check them against the loop, time them",
    )
    demo.add_argument("--fixtures", default=str(FIXTURES), help="directory of example programs")
    demo.add_argument("--batch", type=int, default=2000, help="batch size (default 2000)")
    demo.add_argument("--only", nargs="*", help="names of the programs to run")
    demo.set_defaults(run=cmd_demo)

    emit = sub.add_parser(
        "emit",
        help="print the generated batched code for FILE.py:FUNC (without running FILE.py)",
        description=EMIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emit.add_argument("target", help="FILE.py:FUNCTION (read, not run) or package.module:FUNCTION")
    emit.add_argument("--in-axes", help="as in Python: 0,None or \"(0, {'w': None})\"")
    emit.add_argument("--out-axes", help="as in Python")
    emit.add_argument(
        "--rank",
        nargs="+",
        action="extend",
        metavar="NAME=R",
        help="per-example ranks: x=1,W=2 (eps=float: a Python scalar; p=\"{'w': 2}\": a pytree)",
    )
    emit.add_argument(
        "--shape",
        nargs="+",
        action="extend",
        metavar="NAME=DIMS",
        help="shapes of the batched call's arguments, batch axis included: x=8,3 W=3,4",
    )
    emit.add_argument(
        "--dtype", nargs="+", action="extend", metavar="NAME=KIND", help="idx=int (default float)"
    )
    emit.add_argument(
        "--value",
        nargs="+",
        action="extend",
        metavar="NAME=LITERAL",
        help="an unmapped argument's value: n=3 mode=\"'same'\"",
    )
    emit.add_argument(
        "--diff", action="store_true", help="unified diff of the original and generated functions"
    )
    emit.add_argument(
        "--annotate",
        action="store_true",
        help="end each generated statement with a `# line N` comment (its line in FILE.py)",
    )
    emit.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 with a diff when FILE differs from the generated code (for CI)",
    )
    emit.add_argument("-o", "--output", help="write to this file instead of standard output")
    emit.set_defaults(run=cmd_emit)

    cache_cmd = sub.add_parser("cache", help="show or clear the on-disk cache")
    cache_cmd.add_argument("action", choices=["info", "clear"])
    cache_cmd.set_defaults(run=cmd_cache)
    rules_cmd = sub.add_parser(
        "rules", help="print the supported functions (function, family, notes) and the coverage"
    )
    rules_cmd.add_argument("--json", action="store_true", help="as JSON, for tools")
    rules_cmd.add_argument("--markdown", action="store_true", help="as the README's tables")
    rules_cmd.add_argument(
        "--update-readme", action="store_true", help="rewrite the tables in README.md"
    )
    rules_cmd.set_defaults(run=cmd_rules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
