"""Lane compaction of masked loops: when few lanes still run, a masked loop goes
on with those alone (see the comment below). ``control.py`` asks
``plan_compaction`` for the statements, for each masked loop it emits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import libcst as cst

from .values import ARRAY, SCALAR, Val


class _Translator(Protocol):
    """What compaction reads of the translator (``rewrite.Translator``)."""

    np: str
    batch_name: str | None
    ctl: Any  # a control.ControlState (control imports this module)

    def temp(self, base: str) -> str: ...


# ------------------------------------------------------------------ compaction
# A masked loop does the work of its slowest lane on every lane: B x max iterations.
# When few lanes still run, the loop goes on with those alone: every batched value
# the loop reads is gathered to the running lanes (``x = x[keep]``), and what it
# writes is put back into full-width copies at each compaction and at the exit.
# Measured at B=100k (benchmarks/bench.py; vmap time / hand-written compacting
# NumPy): compacting below 50% of the rows still running gave Collatz 0.94,
# Mandelbrot 1.2; below 25%: 1.1 and 3.2 (a quarter of Mandelbrot's points never
# escape, so it never compacted); anywhere from 70% to 95%: about 0.75 and 0.8.
# Below about a thousand rows NumPy's per-call cost dominates and gathering saves
# nothing (a floor of 256 or 1024 rows measured the same; 4096 was slower).
COMPACT_BELOW = 0.8  # compact when fewer than this share of the rows still run
COMPACT_MIN_ROWS = 1024

# Calls a compacted loop body may make: they neither keep nor mutate an argument.
_SAFE_BUILTINS = frozenset(
    {
        "abs",
        "min",
        "max",
        "len",
        "range",
        "float",
        "int",
        "bool",
        "complex",
        "round",
        "divmod",
        "pow",
        "sum",
        "any",
        "all",
        "isinstance",
        "UnboundLocalError",
    }
)
_MUTATING_METHODS = frozenset(
    {
        "sort",
        "fill",
        "put",
        "resize",
        "partition",
        "itemset",
        "setfield",
        "setflags",
        "byteswap",
        "__setitem__",
        "__delitem__",
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "at",
    }
)
# NumPy functions that write into an argument, or draw numbers (draws would depend
# on how many rows run).
_NUMPY_WRITES = frozenset(
    {"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis", "at", "random"}
)


@dataclasses.dataclass
class Compaction:
    """The statements that compact a masked loop's lanes (see the section comment)."""

    before: list[cst.BaseStatement]  # ``lanes = None``
    shrink: cst.BaseStatement  # at the end of each iteration
    restore: cst.BaseStatement  # after the loop


class _Uses(cst.CSTVisitor):
    """The local names a piece of generated code reads or assigns, and whether it
    may write into an array in place or call something unknown."""

    def __init__(self, np_name: str) -> None:
        self.names: set[str] = set()
        self.assigned: set[str] = set()
        self.unsafe = False
        self.np_name = np_name

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``x.shape``: ``shape`` is not a local
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        if node.keyword is not None and node.keyword.value == "out":
            self.unsafe = True
        node.value.visit(self)
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.target(node.target)

    def target(self, node: cst.BaseExpression) -> None:
        if isinstance(node, cst.Name):
            self.assigned.add(node.value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            for el in node.elements:
                self.target(el.value)
        else:
            self.unsafe = True  # an item or attribute write: in place

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name):
            self.unsafe |= func.value not in _SAFE_BUILTINS
        elif isinstance(func, cst.Attribute):
            dotted = _dotted(func)
            if dotted is not None and dotted[0] == self.np_name:
                self.unsafe |= not _NUMPY_WRITES.isdisjoint(dotted)
            else:
                self.unsafe |= func.attr.value in _MUTATING_METHODS
        else:
            self.unsafe = True


def _dotted(node: cst.BaseExpression) -> list[str] | None:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr.value]
    return None


def _stays_bool(name: str, masks: set[str], entry: dict[str, Val], end: dict[str, Val]) -> bool:
    """A mask, or a boolean on entry and after an iteration: np.where keeps it bool."""
    if name in masks:
        return True
    return name in entry and entry[name].dtype == "b" and name in end and end[name].dtype == "b"


def _assign(targets: list[str], values: list[str]) -> str:
    return f"{', '.join(targets)} = {', '.join(values)}"


def _stmt(text: str) -> cst.BaseStatement:
    return cst.parse_statement(text)


def plan_compaction(
    tr: _Translator,
    loop: cst.BaseStatement,
    active: str,
    entry: dict[str, Val],
    end: dict[str, Val],
    end_bound: set[str],
) -> Compaction | None:
    """How to compact ``loop`` (the generated masked loop), or None where it cannot be.

    Every batched value the loop's code names is gathered, so each must be an
    array with the batch axis first, bound on every path by the end of the body;
    the body must not write into arrays in place or call unknown code (a gathered
    copy would take the write), nor name the batch size.
    """
    uses = _Uses(tr.np)
    loop.visit(uses)
    if uses.unsafe or tr.batch_name in uses.names:
        return None
    masks = set(tr.ctl.partial.values())
    gathered: list[str] = []
    for name in sorted(uses.names):
        if name in masks:
            gathered.append(name)
            continue
        val = end.get(name)
        if val is None or not val.batched:
            continue
        if val.kind not in (ARRAY, SCALAR) or name not in end_bound:
            return None
        gathered.append(name)
    if not gathered:
        return None
    # Put back: what the loop assigns and the code after it may read (a name first
    # bound in the loop cannot be read after it: check_readable).
    written = [n for n in gathered if n in uses.assigned and (n in entry or n in masks)]
    lanes, keep = tr.temp("lanes"), tr.temp("keep")
    full = {n: tr.temp(f"{n}_all") for n in gathered if n in written or n not in uses.assigned}
    np_ = tr.np

    def put_back(indent: str) -> str:
        # ``result_type``: a later iteration may widen a value's dtype (int -> float);
        # the rows put back earlier must not be cast down to the old one.
        lines = []
        for n in written:
            if not _stays_bool(n, masks, entry, end):
                widened = f"{np_}.result_type({full[n]}, {n})"
                lines.append(f"{indent}{full[n]} = {full[n]}.astype({widened}, copy=False)\n")
            lines.append(f"{indent}{full[n]}[{lanes}] = {n}\n")
        return "".join(lines)

    first = [f"{n}.copy()" if n in written else n for n in full]
    shrink = _stmt(
        f"if {active}.size >= {COMPACT_MIN_ROWS}"
        f" and {np_}.count_nonzero({active}) < {active}.size * {COMPACT_BELOW}:\n"
        f"    {keep} = {np_}.flatnonzero({active})\n"
        f"    if {lanes} is None:\n"
        f"        {_assign([lanes, *full.values()], [keep, *first])}\n"
        f"    else:\n"
        f"{put_back(' ' * 8)}"
        f"        {lanes} = {lanes}[{keep}]\n"
        f"    {_assign([*gathered, active], [f'{n}[{keep}]' for n in [*gathered, active]])}\n"
    )
    comment = cst.EmptyLine(
        comment=cst.Comment(
            "# Lanes have left: go on with the running ones alone (put back after)."
        )
    )
    shrink = shrink.with_changes(leading_lines=[comment])
    restore = _stmt(
        f"if {lanes} is not None:\n"
        f"{put_back(' ' * 4)}"
        f"    {_assign(list(full), list(full.values()))}\n"
    )
    return Compaction([_stmt(f"{lanes} = None\n")], shrink, restore)
