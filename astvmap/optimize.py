"""Peephole clean-ups of a generated function, before it is formatted.

The rewrite is local: each statement of the user's function becomes batched code
on its own. Two habits of that local view cost time that a person writing the
batched code by hand would not spend, and are undone here:

- a pure call written twice on the same operands (``abs(r)`` in an ``if`` test and
  again in the branch) is computed twice for every example, where the loop computes
  the second one only in the examples that take the branch: it is computed once into
  a temporary;
- ``alive = ~mask`` read once, by ``np.where(alive, a, b)``, is a negated temporary:
  ``np.where(mask, b, a)`` chooses the same values without it.

Both are pure rewrites of the generated code; a statement keeps the marker of the
user's line it came from, so tracebacks still name that line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libcst as cst

from .syntax import find, iter_nodes

# Calls that compute the same value from the same operands and can neither warn nor
# write: moving one of them (into or out of an ``np.errstate`` block) changes nothing.
_PURE_CALLS = frozenset(
    {"abs", "np.abs", "np.absolute", "np.fabs", "np.sign", "np.conj", "np.conjugate"}
)


def optimise(fn: cst.FunctionDef) -> cst.FunctionDef:
    fn = _drop_negated_masks(fn)
    return _share_pure_calls(fn)


# ---------------------------------------------------------------- the linear part
def _linear(body: list[cst.BaseStatement]) -> Iterator[tuple[list, int, cst.BaseStatement]]:
    """The statements that run one after the other: the function's own and those of
    its ``with`` blocks, with the list that holds each one and its position there."""
    for i, stmt in enumerate(body):
        yield body, i, stmt
        if isinstance(stmt, cst.With):
            yield from _linear(list(stmt.body.body))


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in find(node, cst.Name)}


def _written(stmt: cst.BaseStatement) -> set[str]:
    """Names a statement may rebind or write into (conservatively: every name a
    compound statement or a call other than a pure one mentions)."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return _names(stmt)
    out: set[str] = set()
    for small in stmt.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                out |= _names(target.target)
        elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
            out |= _names(small.target)
        for call in find(small, cst.Call):
            if _code(call.func) not in _PURE_CALLS and not _code(call.func).startswith("np."):
                out |= _names(call)  # a helper or a method may write into its operands
            elif _code(call.func) in ("np.copyto", "np.put", "np.place", "np.putmask"):
                out |= _names(call)
    return out


# ---------------------------------------------------------------- np.where(~m, a, b)
def _drop_negated_masks(fn: cst.FunctionDef) -> cst.FunctionDef:
    stmts = [s for _, _, s in _linear(list(fn.body.body))]
    for pos, stmt in enumerate(stmts):
        negation = _negation(stmt)
        if negation is None:
            continue
        name, mask = negation
        # Bound here and read once (the name counts twice: the target and the read).
        if sum(_is_name(n, name) for n in iter_nodes(fn)) != 2:
            continue
        where = [
            c
            for c in find(fn, cst.Call)
            if _is_np_where(c) and len(c.args) == 3 and _is_name(c.args[0].value, name)
        ]
        if len(where) != 1:
            continue
        later = stmts[pos + 1 :]
        reader = next((s for s in later if any(_is_name(n, name) for n in iter_nodes(s))), None)
        if reader is None or any(
            mask in _targets(s) or name in _targets(s) for s in later[: later.index(reader) + 1]
        ):
            continue
        return _drop_negated_masks(fn.visit(_Replace(stmt, where[0], mask)))  # type: ignore[arg-type]
    return fn


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _is_np_where(call: cst.Call) -> bool:
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and _is_name(func.value, "np")
        and func.attr.value == "where"
    )


def _negation(stmt: cst.BaseStatement) -> tuple[str, str] | None:
    """``x = ~mask`` (one name bound to the negation of one name): (x, mask)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.UnaryOperation)
        and isinstance(small.value.operator, cst.BitInvert)
        and isinstance(small.value.expression, cst.Name)
    ):
        return small.targets[0].target.value, small.value.expression.value
    return None


def _targets(stmt: cst.BaseStatement) -> set[str]:
    out: set[str] = set()
    for assign in find(stmt, cst.Assign):
        for target in assign.targets:
            out |= _names(target.target)
    return out


class _Replace(cst.CSTTransformer):
    """Remove the negation's line; ``np.where(x, a, b)`` becomes ``np.where(mask, b, a)``."""

    def __init__(self, line: cst.BaseStatement, where: cst.Call, mask: str) -> None:
        self.line, self.where, self.mask = line, where, mask

    def leave_SimpleStatementLine(self, original: Any, updated: Any) -> Any:
        return cst.RemovalSentinel.REMOVE if original is self.line else updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if original is not self.where:
            return updated
        cond, a, b = updated.args
        return updated.with_changes(
            args=[
                cond.with_changes(value=cst.Name(self.mask)),
                b.with_changes(comma=a.comma),
                a.with_changes(comma=b.comma),
            ]
        )


# ---------------------------------------------------------------- shared pure calls
def _share_pure_calls(fn: cst.FunctionDef) -> cst.FunctionDef:
    stmts = [s for _, _, s in _linear(list(fn.body.body))]
    live: dict[str, list[int]] = {}  # call text -> the statements it appears in, in order
    for pos, stmt in enumerate(stmts):
        if isinstance(stmt, cst.SimpleStatementLine):
            for call in find(stmt, cst.Call):
                if _shareable(call):
                    live.setdefault(_code(call), []).append(pos)
        if isinstance(stmt, cst.With):
            continue  # its statements follow, one by one
        written = _written(stmt)
        for key in list(live):
            if _operands(key) & written:
                # A write to an operand ends what the earlier result stands for.
                if len(live[key]) >= 2:
                    return _share_pure_calls(_hoist(fn, stmts, key, live[key]))
                del live[key]
    for key, positions in live.items():
        if len(positions) >= 2:
            return _share_pure_calls(_hoist(fn, stmts, key, positions))
    return fn


def _shareable(call: cst.Call) -> bool:
    return _code(call.func) in _PURE_CALLS and all(
        isinstance(a.value, (cst.Name, cst.Integer, cst.Float)) and a.keyword is None and not a.star
        for a in call.args
    )


def _operands(key: str) -> set[str]:
    call = cst.parse_expression(key)
    assert isinstance(call, cst.Call)
    return set().union(*[_names(a.value) for a in call.args])


def _hoist(fn: cst.FunctionDef, stmts: list, key: str, positions: list[int]) -> cst.FunctionDef:
    """``key`` computed once, into a temporary, just before its first statement."""
    taken = _names(fn)
    call = cst.parse_expression(key)
    assert isinstance(call, cst.Call)
    func = _code(call.func).rsplit(".", 1)[-1]
    name = "_".join([func, *sorted(_operands(key))])
    while name in taken:
        name += "_"
    first = stmts[positions[0]]
    uses = {id(stmts[p]) for p in positions}
    temp = first.with_changes(
        body=[cst.Assign([cst.AssignTarget(cst.Name(name))], call)], leading_lines=[]
    )

    class Share(cst.CSTTransformer):
        def __init__(self) -> None:
            self.inside = 0

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            self.inside += id(node) in uses

        def leave_SimpleStatementLine(self, original: Any, updated: Any) -> Any:
            if id(original) not in uses:
                return updated
            self.inside -= 1
            if original is first:
                return cst.FlattenSentinel([temp, updated])
            return updated

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> Any:
            if self.inside and _code(original) == key:
                return cst.Name(name)
            return updated

    return fn.visit(Share())  # type: ignore[return-value]
