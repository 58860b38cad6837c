"""Pass 1: fetch a function's source, closure values and globals.

The source is found through the *code object* (never ``__wrapped__``), so a
``functools.wraps`` wrapper is read as itself. Lambdas are located by the
positions of their code object's instructions, so two lambdas on one line, or
a lambda spread over several lines, are told apart exactly.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import inspect
import linecache
import os
import textwrap
import types
from typing import Any

from .errors import VmapError


@dataclasses.dataclass
class FunctionSource:
    """A user function ready to be transformed."""

    fn: types.FunctionType
    filename: str
    # ``line_offset + line`` is the file line of line ``line`` (1-based) of ``text``.
    line_offset: int
    text: str
    is_lambda: bool
    _parsed: Any = None

    @property
    def module(self) -> Any:
        """``text`` parsed with libcst (on first use: a disk-cache hit never parses)."""
        if self._parsed is None:
            self._parsed = _parse(self)
        return self._parsed[0]

    @property
    def node(self) -> Any:
        """The def, decorators stripped; a lambda is turned into a def."""
        self.module  # noqa: B018
        return self._parsed[1]

    @property
    def name(self) -> str:
        return "lambda_" if self.is_lambda else self.fn.__code__.co_name

    @property
    def def_line(self) -> int:
        return self.line_offset + 1

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def lookup(self, name: str) -> Any:
        return lookup(self.fn, name)

    def line_text(self, file_line: int) -> str:
        return linecache.getline(self.filename, file_line, self.fn.__globals__).rstrip()


def lookup(fn: types.FunctionType, name: str) -> Any:
    """Resolve a free name of ``fn`` the way ``fn`` would at run time.

    Raises ``KeyError`` when the name is not bound anywhere.
    """
    code = fn.__code__
    if name in code.co_freevars and fn.__closure__ is not None:
        cell = fn.__closure__[code.co_freevars.index(name)]
        try:
            return cell.cell_contents
        except ValueError:  # an empty cell: the loop would raise NameError too
            raise KeyError(name) from None
    if name in fn.__globals__:
        return fn.__globals__[name]
    return vars(builtins)[name]


def get_source(fn: types.FunctionType) -> FunctionSource:
    """Find and parse the source of a plain Python function or lambda."""
    code = fn.__code__
    filename = code.co_filename
    if fn.__name__ == "<lambda>" or code.co_name == "<lambda>":
        return _lambda_source(fn)
    found = _known_block(fn)
    if found is None:
        try:
            lines, first = inspect.getsourcelines(code)
        except (OSError, TypeError) as exc:
            raise VmapError(_no_source_message(fn)) from exc
        _remember_block(fn, first, lines)
    else:
        lines, first = found
    text = textwrap.dedent("".join(lines))
    return FunctionSource(fn, filename, first - 1, text, is_lambda=False)


# Where a def's block lies in its file, remembered on disk. ``inspect.getsourcelines``
# costs ~15 ms the first time in a process (``inspect.getmodule`` maps every loaded
# module; ``tokenize`` compiles its regular expressions), which is most of a disk-cache
# hit. The block is a pure function of the file's lines and ``co_firstlineno``, so it is
# stored under a hash of exactly those: a file changed anywhere gets a new key, and the
# lines handed back are always inspect's own answer for this text.
def _file_lines(fn: types.FunctionType) -> list[str]:
    filename = fn.__code__.co_filename
    if not (filename.startswith("<") and filename.endswith(">")):
        linecache.checkcache(filename)  # as inspect does: a file edited on disk is re-read
    return linecache.getlines(filename, fn.__globals__)


def _block_key(fn: types.FunctionType, lines: list[str]) -> str:
    from . import cache

    code = fn.__code__
    text_hash = hashlib.sha256("".join(lines).encode()).hexdigest()
    return cache.disk_key(["block", code.co_filename, code.co_firstlineno, text_hash])


def _known_block(fn: types.FunctionType) -> tuple[list[str], int] | None:
    from . import cache

    lines = _file_lines(fn)
    if not lines:
        return None
    for payload in cache.disk_entries(_block_key(fn, lines)):
        first, count = payload.get("first"), payload.get("count")
        if isinstance(first, int) and isinstance(count, int) and 1 <= first <= len(lines):
            if 1 <= count <= len(lines) - first + 1:
                return lines[first - 1 : first - 1 + count], first
    return None


def _remember_block(fn: types.FunctionType, first: int, block: list[str]) -> None:
    """Store where inspect found the block, if our own reading of the file agrees with its."""
    from . import cache

    lines = _file_lines(fn)
    if lines and lines[first - 1 : first - 1 + len(block)] == block:
        cache.disk_put(
            _block_key(fn, lines), {"first": first, "count": len(block)}, suffix=".block"
        )


def _parse(src: FunctionSource) -> tuple[Any, Any]:
    import libcst as cst

    if src.is_lambda:
        # Parenthesised so that a lambda spread over several lines parses alone.
        expr = cst.parse_expression("(" + src.text + ")")
        assert isinstance(expr, cst.Lambda)
        body = cst.IndentedBlock(
            [cst.SimpleStatementLine([cst.Return(expr.body.with_changes(lpar=(), rpar=()))])]
        )
        fdef = cst.FunctionDef(name=cst.Name("lambda_"), params=expr.params, body=body)
        return cst.Module(body=[fdef]), fdef
    try:
        module = cst.parse_module(src.text)
    except cst.ParserSyntaxError as exc:
        raise VmapError(f"could not parse the source of {src.fn.__qualname__}: {exc}") from exc
    node = module.body[0]
    if not isinstance(node, cst.FunctionDef):
        raise VmapError(
            f"the source of {src.fn.__qualname__} at {src.filename}:{src.def_line} is not a def"
        )
    return module, node.with_changes(decorators=())


def _no_source_message(fn: Any) -> str:
    return (
        f"the source of {getattr(fn, '__qualname__', fn)!r} is not available "
        f"(file {fn.__code__.co_filename!r}). astvmap rewrites source code, so the "
        "function must come from a file, an IPython cell, or exec'd text that is "
        "registered in linecache (linecache.cache[filename] = (size, None, lines, "
        "filename))."
    )


def _lambda_source(fn: types.FunctionType) -> FunctionSource:
    code = fn.__code__
    filename = code.co_filename
    lines = linecache.getlines(filename, fn.__globals__)
    if not lines:
        raise VmapError(_no_source_message(fn))
    text = "".join(lines)
    node = _find_lambda(ast.parse(text), code)
    if node is None:
        raise VmapError(
            f"could not locate the lambda defined at {filename}:{code.co_firstlineno}; "
            "write it as a def"
        )
    segment = ast.get_source_segment(text, node)
    assert segment is not None
    # The generated def renders the lambda's body on its line 2.
    return FunctionSource(fn, filename, node.lineno - 2, segment, is_lambda=True)


def _find_lambda(tree: ast.AST, code: types.CodeType) -> ast.Lambda | None:
    """The innermost lambda whose span contains every instruction of ``code``."""
    positions = [
        (line, col, end_line, end_col)
        for line, end_line, col, end_col in code.co_positions()
        if line is not None
        and col is not None
        and end_line is not None
        and (col, end_col) != (0, 0)  # RESUME and friends carry no real position
    ]
    candidates = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Lambda) or node.lineno != code.co_firstlineno:
            continue
        start = (node.lineno, node.col_offset)
        end = (node.end_lineno, node.end_col_offset)
        if all(start <= (p[0], p[1]) and (p[2], p[3]) <= end for p in positions):
            candidates.append(node)
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset),  # type: ignore[operator]
    )


def display_path(filename: str) -> str:
    """The user's file as shown in headers: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") or filename.startswith("<") else rel
