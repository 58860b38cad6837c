"""The ``astvmap`` command line: ``demo``, ``emit``, ``cache``.

Installed as ``astvmap.cli`` (through the ``astvmap/cli.py`` link) and as the
``astvmap`` console script; ``python cli.py ...`` works from a checkout too.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import sys
import time
import types
from collections.abc import Sequence
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
def _parse_axes(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise SystemExit(
            f"astvmap: cannot read axes {text!r}: write them as in Python, e.g. 0,None or \"(0, {{'w': None}})\""
        ) from None


def _shapes(text: list[str] | None) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for item in text or []:
        name, _, dims = item.partition("=")
        out[name] = tuple(int(d) for d in dims.split(",") if d.strip()) if dims.strip() else ()
    return out


def cmd_emit(args: argparse.Namespace) -> int:
    from astvmap import vmap

    target, _, fname = args.target.rpartition(":")
    if not target or not fname:
        raise SystemExit("astvmap emit: give FILE.py:FUNCTION or package.module:FUNCTION")
    if target.endswith(".py") or "/" in target:
        module = load_module(Path(target))
    else:
        module = importlib.import_module(target)
    fn = getattr(module, fname, None)
    if fn is None:
        raise SystemExit(f"astvmap emit: {target} has no function {fname!r}")
    spec = getattr(module, "VMAP", {}) if getattr(module, "VMAP", {}).get("fn") == fname else {}
    in_axes = _parse_axes(args.in_axes, spec.get("in_axes", 0))
    out_axes = _parse_axes(args.out_axes, spec.get("out_axes", 0))
    shapes = _shapes(args.shape)
    if shapes:
        import inspect

        params = list(inspect.signature(getattr(fn, "__wrapped__", fn)).parameters)
        missing = [p for p in params if p not in shapes]
        if missing:
            raise SystemExit(
                "astvmap emit: --shape is needed for every argument; missing: "
                + ", ".join(missing)
                + " (write --shape x=3 W=3,4 b=4; a mapped argument includes its batch axis)"
            )
        example = tuple(np.zeros(shapes[p]) for p in params)
    elif hasattr(module, "example") and spec:
        example = module.example(np.random.default_rng(0), 2)
    else:
        raise SystemExit(
            "astvmap emit: the rewrite depends on the ranks of the arguments; give them with "
            "--shape NAME=DIMS for each argument (e.g. --shape x=8,3 W=3,4 b=4, batch axis "
            "included for mapped arguments)"
        )
    text = vmap(fn, in_axes=in_axes, out_axes=out_axes).emit(*example)
    if args.check:
        saved = Path(args.check).read_text()
        if saved == text:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                saved.splitlines(True), text.splitlines(True), args.check, "generated"
            )
        )
        return 1
    if args.diff:
        import inspect

        original = inspect.getsource(fn)
        main = text[text.index("def ") :]
        diff = difflib.unified_diff(
            original.splitlines(True), main.splitlines(True), "original", "generated"
        )
        out = "".join(diff)
        if sys.stdout.isatty():
            out = "\n".join(_colour(line) for line in out.split("\n"))
        sys.stdout.write(out)
        return 0
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


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

    if args.update_readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        start = text.index("<!-- rules-table -->\n") + len("<!-- rules-table -->\n")
        end = text.index("<!-- /rules-table -->")
        readme.write_text(text[:start] + rules.table() + text[end:])
        return 0
    sys.stdout.write(rules.table())
    return 0


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
        help="print the generated batched code for FILE.py:FUNC",
        description=(
            "Print the generated module for a function. FILE.py:FUNC and package.module:FUNC "
            "both import the module (its top level runs). Argument ranks come from the module's "
            "VMAP/example() convention (see fixtures/) or from --shape."
        ),
    )
    emit.add_argument("target", help="FILE.py:FUNCTION or package.module:FUNCTION")
    emit.add_argument("--in-axes", help="as in Python: 0,None or \"(0, {'w': None})\"")
    emit.add_argument("--out-axes", help="as in Python")
    emit.add_argument("--shape", nargs="*", help="example shapes, batch axis included: x=8,3 W=3,4")
    emit.add_argument(
        "--diff", action="store_true", help="unified diff of the original and generated function"
    )
    emit.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 with a diff when FILE differs from the generated code",
    )
    emit.add_argument("-o", "--output", help="write to this file")
    emit.set_defaults(run=cmd_emit)

    cache_cmd = sub.add_parser("cache", help="show or clear the on-disk cache")
    cache_cmd.add_argument("action", choices=["info", "clear"])
    cache_cmd.set_defaults(run=cmd_cache)
    rules_cmd = sub.add_parser("rules", help="print the table of supported functions (markdown)")
    rules_cmd.add_argument(
        "--update-readme", action="store_true", help="rewrite the table in README.md"
    )
    rules_cmd.set_defaults(run=cmd_rules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
