"""Small libcst helpers shared by the translator's modules: generated lines, the
``# @astvmap:LINE`` markers, names in a node, slices."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

import libcst as cst


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_names(e.value)]
    return []


# libcst's visitors rebuild every node they pass (a read-only CSTVisitor and
# ``matchers.findall`` too), which made walks for names most of the optimiser's time
# and a large part of the translator's; walking the dataclass fields is ~25x faster.
# Expressions and statements come in libcst's visiting order (source order): a node's
# fields are read in dataclass order, except that the fields listed come first, in the
# order libcst visits them. Whitespace and punctuation nodes may come in another order
# than libcst's (tests/test_startup.py compares the two orders).
_FIRST_FIELDS = {
    "Arg": "keyword value",
    "ClassDef": "decorators name type_parameters bases keywords body",
    "ExceptHandler": "type name body",
    "ExceptStarHandler": "type name body",
    "FunctionDef": "decorators name type_parameters params returns body",
    "IfExp": "body test orelse",
    "ImportFrom": "relative module names",
    "MatchCase": "pattern guard body",
    "Parameters": "posonly_params params star_arg kwonly_params star_kwarg",
    "TypeAlias": "name type_parameters value",
}
_VISIT_ORDER: dict[type, tuple[str, ...]] = {
    getattr(cst, name): tuple(fields.split())
    for name, fields in _FIRST_FIELDS.items()
    if hasattr(cst, name)
}
_fields: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    names = _fields.get(cls)
    if names is None:
        every = [f.name for f in dataclasses.fields(cls)]
        first = [n for n in _VISIT_ORDER.get(cls, ()) if n in every]
        names = _fields[cls] = (*first, *[n for n in every if n not in first])
    return names


_node_types: dict[type, bool] = {}


def _is_node(value: Any) -> bool:
    # isinstance against CSTNode, an ABC, costs ~1 us; a dict of seen types ~50 ns.
    cls = type(value)
    known = _node_types.get(cls)
    if known is None:
        known = _node_types[cls] = issubclass(cls, cst.CSTNode)
    return known


def iter_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node`` and every node under it, depth first, parents before children."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        kids: list[cst.CSTNode] = []
        for name in _child_fields(type(n)):
            value = getattr(n, name)
            if type(value) is tuple or type(value) is list:
                kids.extend(v for v in value if _is_node(v))
            elif _is_node(value):
                kids.append(value)
        stack.extend(reversed(kids))


def find(node: cst.CSTNode, kind: type) -> list[Any]:
    """The nodes of type ``kind`` under ``node`` (itself included), in libcst's order."""
    return [n for n in iter_nodes(node) if isinstance(n, kind)]


def _walk_names(node: cst.CSTNode) -> Iterator[str]:
    return iter([n.value for n in iter_nodes(node) if type(n) is cst.Name])


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
    return any(isinstance(n, cst.Return) for n in iter_nodes(node))


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


# The rules build code from a few hundred templates (``np.where({m}, {a}, {b})``);
# ``libcst.helpers.parse_template_expression`` parses the template on every use and
# then walks the result to check it, which was ~15% of a cold transform. The parsed
# template is kept (libcst trees are immutable, so one tree serves every use) and
# checked once per template and kinds of replacement.
@functools.lru_cache(maxsize=4096)
def _parsed_template(template: str, names: frozenset[str]) -> cst.BaseExpression:
    from libcst.helpers._template import mangle_template

    return cst.parse_expression(mangle_template(template, set(names)))


_checked: set[tuple] = set()


def clear_caches() -> None:
    """Forget the parsed templates (for measuring a process's first transform)."""
    _parsed_template.cache_clear()
    _checked.clear()


def template_expression(template: str, subs: dict[str, Any]) -> cst.BaseExpression:
    """``libcst.helpers.parse_template_expression(template, **subs)``, cached."""
    try:
        from libcst.helpers._template import TemplateChecker, unmangle_nodes
    except ImportError:  # a libcst without the private helpers: the public function
        import libcst.helpers

        return libcst.helpers.parse_template_expression(template, **subs)
    names = frozenset(subs)
    out = unmangle_nodes(_parsed_template(template, names), subs)
    if not isinstance(out, cst.BaseExpression):
        raise TypeError(f"template {template!r} is not an expression")
    kinds = (template, tuple(sorted((k, type(v)) for k, v in subs.items())))
    if kinds not in _checked:
        out.visit(TemplateChecker(set(names)))  # raises if a placeholder was not replaced
        _checked.add(kinds)
    return out
