"""The translator's side of the probe (``facts.py`` runs it): where an unbatched value
of unknown type is read, ask for it; where a fact about it was learned, use it.

Two kinds of request are recorded while translating, both keyed by the function's code
object, the statement's first line and a *path* (a name, then attributes and constant
subscripts):

- at the start of each statement, every definitely bound local whose value is unbatched
  and of unknown type: a fact there carries forward to every later statement (this is
  how `j = _NEXT_AXIS[i + parity]` is learned even when the line that needs `j` is in a
  branch example 0 does not take);
- at each read of such a path (`ell.semimajor_axis`).

A request only costs a set entry: the probe runs (``pipeline``) only when translation
failed for want of a type (``refuse``) and some request is new. Where a fact is used, a
check goes before the statement (``facts.expect``), so the generated code is right for
every call that reaches it, whichever call's example 0 taught it the type. Statements
that share their line with another (``a = f(); b = a.x * y``, one-line suites) are
never probed: the line event comes before all of them.
"""

from __future__ import annotations

import ast
from typing import Any

import libcst as cst

from . import facts
from .errors import UnsupportedError
from .source import display_path
from .syntax import _code, _marked_line
from .values import ARRAY, NONE, NOVALUE, OBJECT, SCALAR, TREE, Val

_FACTS_MODULE = "_astvmap_facts"


def unknown(val: Val) -> bool:
    """An unbatched value whose type (or rank) the translator does not know."""
    if val.batched:
        return False
    if val.kind == OBJECT:
        return val.static is NOVALUE and val.sample is NOVALUE and val.container is None
    return val.kind in (ARRAY, SCALAR) and val.rank is None


def refuse(tr: Any, message: str, hint: str | None, operands: list[Val]) -> UnsupportedError:
    """The refusal for an operand of unknown type; marked for the probe when the unknown
    operands are all unbatched (their type is the same for every example)."""
    err = tr.unsupported(message, hint)
    suspects = [v for v in operands if v.rank is None or v.kind == OBJECT]
    err.probe = bool(suspects) and all(unknown(v) for v in suspects)  # type: ignore[attr-defined]
    return err


def val_of(summary: tuple) -> Val | None:
    """The abstract value a learned summary stands for (None: nothing useful)."""
    tag = summary[0]
    if tag in ("bool", "int", "float", "complex"):
        kind = {"bool": "b", "int": "i", "float": "f", "complex": "c"}[tag]
        return Val(SCALAR, rank=0, dtype=kind)
    if tag == "none":
        return Val(NONE, static=None)
    if tag in ("other", "conflict"):
        return None
    if tag == "ndarray":
        return Val.array(summary[1], dtype=summary[2])
    if tag == "generic":
        return Val.array(0, dtype=summary[1])
    if tag in ("tuple", "list"):
        items = [(i, val_of(s) or Val(OBJECT)) for i, s in enumerate(summary[1])]
        return Val(TREE, children=tuple(items), container=tuple if tag == "tuple" else list)
    return None


def path_of(node: cst.BaseExpression) -> tuple | None:
    """``node`` as a path the probe can read without running code, or None."""
    if isinstance(node, cst.Name):
        return (("name", node.value),)
    if isinstance(node, cst.Attribute):
        base = path_of(node.value)
        return None if base is None else (*base, ("attr", node.attr.value))
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        base = path_of(node.value)
        if base is None or not isinstance(index, cst.Index) or index.star is not None:
            return None
        try:
            key = ast.literal_eval(_code(index.value).strip())
        except (ValueError, SyntaxError):
            return None
        if isinstance(key, (int, str)) and not isinstance(key, bool):
            return (*base, ("item", key))
    return None


def _line(tr: Any, node: cst.CSTNode | None) -> int | None:
    """The line the probe reads ``node`` at: its statement's, when that statement is a
    plain one or an ``if`` (the test) on a line of its own; else None."""
    stmt = getattr(tr, "current_stmt", None)
    if tr.comp_depth or tr.probe_blocked or stmt is None or stmt not in tr.positions:
        return None
    if isinstance(stmt, cst.If):
        span = tr.positions.get(stmt.test)
    elif isinstance(stmt, cst.SimpleStatementLine):
        span = tr.positions[stmt]
    else:
        return None
    if node is not None:
        # The node must belong to the statement (an `elif` test is read after the body
        # of the branch before it, whose last statement is still the current one).
        pos = tr.positions.get(node)
        if span is None or pos is None:
            return None
        if not span.start.line <= pos.start.line <= span.end.line:
            return None
    line = tr.file_line(stmt)
    return None if line in _shared_lines(tr) else line


def _shared_lines(tr: Any) -> set[int]:
    """Lines where more than one statement of this function starts."""
    shared = getattr(tr, "_probe_shared", None)
    if shared is None:
        starts: dict[int, int] = {}
        for node, pos in tr.positions.items():
            if isinstance(node, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
                line = tr.source.line_offset + pos.start.line
                starts[line] = starts.get(line, 0) + 1
        shared = {line for line, n in starts.items() if n > 1}
        tr._probe_shared = shared
    return shared


def learn(tr: Any, node: cst.BaseExpression, val: Val) -> Val:
    """``val`` (the translator's value of ``node``), or the type learned for it."""
    if not unknown(val):
        return val
    path = path_of(node)
    if path is None or "\n" in _code(node):
        return val
    line = _line(tr, node)
    if line is None:
        return val
    return _use(tr, line, path, node, val)  # type: ignore[arg-type]


def seed_statement(tr: Any, stmt: cst.BaseStatement) -> None:
    """At the start of ``stmt``: the locals of unknown type, learned or asked for."""
    if not isinstance(stmt, (cst.SimpleStatementLine, cst.If)):
        return
    line = _line(tr, None)
    if line is None:
        return
    for name, val in list(tr.env.items()):
        if name in tr.ctl.bound and unknown(val):
            # Its attributes too, as the source reads them anywhere (`ell.semimajor_axis`):
            # one run of the probe learns them all.
            _ask(tr, line, _paths_from(tr).get(name, ()))
            tr.env[name] = _use(tr, line, (("name", name),), cst.Name(name), val, exact=True)


def _use(
    tr: Any, line: int, path: tuple, node: cst.BaseExpression, val: Val, exact: bool = False
) -> Val:
    """The learned value of ``path`` read at ``line`` (checked there), else ``val`` (and
    the path is asked for). A path never seen at ``line`` (a branch example 0 does not
    take) takes what every other line of the function saw, when they all agree: the
    check before the statement makes that safe."""
    code = tr.source.fn.__code__
    summary = tr.program.facts.get((code, line, path))
    if summary is None and not exact:
        seen = {s for (c, _, p), s in tr.program.facts.items() if c is code and p == path}
        summary = seen.pop() if len(seen) == 1 else None
    learned = val_of(summary) if summary is not None else None
    if learned is None:
        _ask(tr, line, [path])
        return val
    _check(tr, node, summary)  # type: ignore[arg-type]
    return learned


def _ask(tr: Any, line: int, paths: Any) -> None:
    code = tr.source.fn.__code__
    tr.program.requests.setdefault(code, {}).setdefault(line, set()).update(paths)


def _paths_from(tr: Any) -> dict[str, set[tuple]]:
    """Root name -> the attribute and constant-subscript paths the function reads."""
    paths = getattr(tr, "_probe_paths", None)
    if paths is None:
        paths = {}
        for node in tr.positions:
            if isinstance(node, (cst.Attribute, cst.Subscript)):
                path = path_of(node)
                if path is not None and "\n" not in _code(node):
                    paths.setdefault(path[0][1], set()).add(path)
        tr._probe_paths = paths
    return paths


def _check(tr: Any, node: cst.BaseExpression, summary: tuple) -> None:
    """Before the statement: the learned type holds here (``facts.expect``)."""
    text = _code(node).strip()
    key = "probe check: " + text
    if key in tr.checked:
        return
    tr.checked.add(key)
    tr.program.modules[_FACTS_MODULE] = facts
    where = f"{display_path(tr.source.filename)}:{tr.file_line(tr.current_stmt)}"
    call = cst.parse_expression(
        f"{_FACTS_MODULE}.expect(lambda: {text}, {summary!r}, {text!r}, {where!r})"
    )
    tr.checks.append(_marked_line(cst.Expr(call), tr._marker(tr.current_stmt)))
