"""Small libcst helpers shared by the translator's modules: generated lines, the
``# @astvmap:LINE`` markers, names in a node, slices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libcst as cst
import libcst.matchers


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_names(e.value)]
    return []


def _walk_names(node: cst.CSTNode) -> Iterator[str]:
    class V(cst.CSTVisitor):
        def __init__(self) -> None:
            self.names: list[str] = []

        def visit_Name(self, n: cst.Name) -> None:
            self.names.append(n.value)

    v = V()
    node.visit(v)
    return iter(v.names)


def _rename(node: cst.CSTNode, old: str, new: str) -> Any:
    """``node`` with the variable ``old`` read as ``new`` (attribute names untouched)."""

    class Rename(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            return updated.with_changes(value=new) if updated.value == old else updated

        def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
            return updated.with_changes(attr=original.attr)

    return node.visit(Rename())


def _slice_parts(node: cst.Subscript) -> list[cst.BaseExpression]:
    """The expressions inside a subscript's brackets (indices and slice bounds)."""
    parts: list[cst.BaseExpression] = []
    for element in node.slice:
        if isinstance(element.slice, cst.Index):
            parts.append(element.slice.value)
        else:
            parts += [
                p for p in (element.slice.lower, element.slice.upper, element.slice.step) if p
            ]
    return parts


def _has_return(node: cst.CSTNode) -> bool:
    return bool(libcst.matchers.findall(node, libcst.matchers.Return()))


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _slice_all() -> cst.SubscriptElement:
    return cst.SubscriptElement(slice=cst.Slice(lower=None, upper=None))


def _index(value: cst.BaseExpression) -> cst.SubscriptElement:
    return cst.SubscriptElement(slice=cst.Index(value=value))


def _line(small: cst.BaseSmallStatement) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[small])


def _strip_semicolon(small: cst.BaseSmallStatement) -> cst.BaseSmallStatement:
    if hasattr(small, "semicolon"):
        return small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
    return small


def _marked_line(small: cst.BaseSmallStatement, marker: str) -> cst.SimpleStatementLine:
    """A line of generated code that maps back to the user's line ``marker`` names."""
    return cst.SimpleStatementLine(
        [small], trailing_whitespace=_with_marker(cst.TrailingWhitespace(), marker)
    )


def _with_marker(ws: cst.TrailingWhitespace, marker: str) -> cst.TrailingWhitespace:
    if ws.comment is not None:
        return ws.with_changes(comment=cst.Comment(ws.comment.value + "  " + marker))
    return ws.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(marker))


def _mark_header(stmt: cst.BaseStatement, marker: str) -> cst.BaseStatement:
    body = getattr(stmt, "body", None)
    if isinstance(body, cst.IndentedBlock) and not isinstance(stmt, cst.FunctionDef):
        return stmt.with_changes(body=body.with_changes(header=_with_marker(body.header, marker)))
    return stmt
