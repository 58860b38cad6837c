"""Example arguments for ``astvmap emit``, built from what is known about the ranks.

The generated code depends on the arguments only through their structure: which
leaves are mapped, their per-example rank and dtype kind, and the values of
unmapped Python scalars. So ``emit`` needs no real data, only that information,
taken (per argument, first found wins) from

    --value NAME=LITERAL     an unmapped argument, passed as is
    --shape NAME=3,4         the array the batched call gets (batch axis included)
    --rank NAME=1            the per-example rank (a dict/tuple/list of ranks for a
                             pytree, ``float``/``int``/``bool`` for a Python scalar)
    annotations              ``x: "n d"``, ``x: Float[np.ndarray, "n d"]``, ``eps: float``
                             (parsed from the source, never evaluated)

with ``--dtype NAME=int`` changing the dtype kind of an argument's arrays.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import re
from collections.abc import Container
from typing import Any

import numpy as np

from .static import Unevaluated
from .values import KIND_DTYPE

KINDS = {"float": "f", "int": "i", "bool": "b", "complex": "c"}
SCALARS = {"f": 1.0, "i": 1, "b": True, "c": 1j}
# jaxtyping's dtype names, by prefix (Float32, Int8, UInt, ...).
_JAXTYPING = (
    ("Float", "f"),
    ("Inexact", "f"),
    ("Real", "f"),
    ("Num", "f"),
    ("Shaped", "f"),
    ("Complex", "c"),
    ("UInt", "i"),
    ("Int", "i"),
    ("Bool", "b"),
)
_DIM = re.compile(r"^(\.\.\.|\*\w*|#?[\w+\-*/()=]+)$")
BATCH = 2  # the example batch size; per-example dimensions are 3
HOW = (
    'give them with annotations (x: "n d" or x: Float[np.ndarray, "n d"]; eps: float), or with\n'
    "  --rank x=1,W=2        per-example ranks (eps=float for a Python scalar, "
    "p=\"{'w': 2}\" for a pytree)\n"
    "  --shape x=8,3 W=3,4   shapes of the batched call's arguments, batch axis included\n"
    "  --value n=3           an unmapped argument's value"
)


class RankError(Exception):
    """Some arguments' ranks are unknown; the message lists them and how to give them."""


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One array (or Python scalar) argument, described per example."""

    rank: int
    kind: str = "f"
    scalar: bool = False  # a Python scalar rather than an array

    def example(self, axis: Any, where: str) -> Any:
        if axis is None:
            if self.scalar:
                return SCALARS[self.kind]
            return np.zeros((3,) * self.rank, dtype=KIND_DTYPE[self.kind])
        if not isinstance(axis, int) or not -(self.rank + 1) <= axis <= self.rank:
            raise RankError(f"in_axes entry {axis!r} does not fit {where} of rank {self.rank}")
        shape = [3] * self.rank
        shape.insert(axis % (self.rank + 1), BATCH)
        return np.zeros(shape, dtype=KIND_DTYPE[self.kind])


@dataclasses.dataclass(frozen=True)
class Given:
    """An argument given as a value (--value, --shape): passed as is."""

    value: Any


# ------------------------------------------------------------------ annotations
def shape_rank(text: str) -> int | None:
    """The rank a jaxtyping-style shape string names ("n d" -> 2, "" -> 0); None when variadic."""
    tokens = text.split()
    if any(t == "..." or t.startswith("*") for t in tokens):
        return None
    return len(tokens)


def is_shape(text: str, names: Container[str]) -> bool:
    """Whether a string annotation is a shape ("n d") rather than a type written as text."""
    tokens = text.split()
    if len(tokens) == 1 and (tokens[0] in names or hasattr(builtins, tokens[0])):
        return False
    return all(_DIM.match(t) for t in tokens) and "." not in text.replace("...", "")


def from_annotation(node: ast.expr | None, names: Container[str]) -> tuple[Leaf | None, str]:
    """The argument an annotation describes, or None and why not."""
    if node is None:
        return None, "no annotation"
    text = ast.unparse(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.strip() in KINDS:
            return Leaf(0, KINDS[node.value.strip()], scalar=True), ""
        if is_shape(node.value, names):
            return _leaf(shape_rank(node.value), "f", text)
        return None, f"annotation {text} names no shape"
    name = _dotted_tail(node)
    if name in KINDS:
        return Leaf(0, KINDS[name], scalar=True), ""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
        kind = _jaxtyping_kind(_dotted_tail(node.value))
        elts = node.slice.elts
        if kind and len(elts) == 2 and isinstance(elts[1], ast.Constant):
            if isinstance(elts[1].value, str):
                return _leaf(shape_rank(elts[1].value), kind, text)
    return None, f"annotation {text} gives no rank"


def _leaf(rank: int | None, kind: str, text: str) -> tuple[Leaf | None, str]:
    if rank is None:
        return None, f"annotation {text} has a variadic shape"
    return Leaf(rank, kind), ""


def _dotted_tail(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _jaxtyping_kind(name: str | None) -> str | None:
    for prefix, kind in _JAXTYPING:
        if name and name.startswith(prefix):
            return kind
    return None


# ------------------------------------------------------------------ flags
def _keywords(text: str, flag: str) -> list[ast.keyword]:
    """``x=1,W=2`` read as Python keyword arguments, so values may hold commas."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise RankError(f"cannot read {flag} {text!r}: write NAME=VALUE[,NAME=VALUE]") from None
    assert isinstance(call, ast.Call)
    if call.args or any(k.arg is None for k in call.keywords):
        raise RankError(f"cannot read {flag} {text!r}: write NAME=VALUE[,NAME=VALUE]")
    return call.keywords


def parse_ranks(texts: list[str]) -> dict[str, Any]:
    """``--rank x=1,W=2 eps=float p="{'w': 2}"`` -> {name: Leaf or pytree of Leaf}."""
    out = {}
    for text in texts:
        for kw in _keywords(text, "--rank"):
            out[kw.arg] = _rank_tree(kw.value, f"--rank {kw.arg}")
    return out


def _rank_tree(node: ast.expr, where: str) -> Any:
    if isinstance(node, ast.Name) and node.id in KINDS:
        return Leaf(0, KINDS[node.id], scalar=True)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body  # a quoted pytree: p="{'w': 2}"
        return _rank_tree(node, where)
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return Leaf(node.value)
    if isinstance(node, (ast.Tuple, ast.List)):
        kids = [_rank_tree(e, where) for e in node.elts]
        return tuple(kids) if isinstance(node, ast.Tuple) else kids
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return {k.value: _rank_tree(v, where) for k, v in zip(node.keys, node.values)}  # type: ignore[union-attr]
    raise RankError(
        f"{where}: {ast.unparse(node)!r} is not a rank (an int, float/int/bool/complex, "
        "or a dict/tuple/list of those)"
    )


def parse_shapes(texts: list[str]) -> dict[str, Given]:
    """``--shape x=8,3 W=3,4 s=`` -> float arrays of those shapes (``s=``: rank 0)."""
    out = {}
    for item in texts:
        name, eq, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = None
        if not eq or not name.isidentifier() or shape is None:
            raise RankError(f"cannot read --shape {item!r}: write NAME=D1,D2 (e.g. x=8,3)")
        out[name] = Given(np.zeros(shape))
    return out


def parse_dtypes(texts: list[str]) -> dict[str, str]:
    out = {}
    for text in texts:
        for kw in _keywords(text, "--dtype"):
            kind = KINDS.get(ast.unparse(kw.value).strip("'\""))
            if kind is None:
                raise RankError(f"--dtype {kw.arg}: give one of {', '.join(KINDS)}")
            out[kw.arg] = kind
    return out


def parse_values(texts: list[str]) -> dict[str, Given]:
    out = {}
    for text in texts:
        for kw in _keywords(text, "--value"):
            try:
                out[kw.arg] = Given(ast.literal_eval(kw.value))
            except ValueError:
                raise RankError(
                    f"--value {kw.arg}: {ast.unparse(kw.value)} is not a Python literal"
                ) from None
    return out


def with_kind(spec: Any, kind: str) -> Any:
    """``spec`` with every array leaf of dtype kind ``kind`` (--dtype)."""
    if isinstance(spec, Leaf):
        return dataclasses.replace(spec, kind=kind)
    if isinstance(spec, Given):
        return Given(np.asarray(spec.value).astype(KIND_DTYPE[kind]))
    if isinstance(spec, dict):
        return {k: with_kind(v, kind) for k, v in spec.items()}
    return type(spec)(with_kind(v, kind) for v in spec)


# ------------------------------------------------------------------ arguments
@dataclasses.dataclass
class Arguments:
    args: tuple
    kwargs: dict[str, Any]
    notes: list[str]


def build(spec: Any, axis: Any, where: str) -> Any:
    """The example value for ``spec`` mapped along ``axis`` (a pytree prefix)."""
    if isinstance(spec, Given):
        return spec.value
    if isinstance(spec, Leaf):
        if isinstance(axis, (tuple, list, dict)):
            raise RankError(
                f"in_axes {axis!r} for {where} is a container, but {where} is one array"
            )
        return spec.example(axis, where)
    items = spec.items() if isinstance(spec, dict) else enumerate(spec)
    built = {k: build(v, _sub_axis(axis, k, where), f"{where}[{k!r}]") for k, v in items}
    return built if isinstance(spec, dict) else type(spec)(built.values())


def _sub_axis(axis: Any, key: Any, where: str) -> Any:
    if axis is None or isinstance(axis, int):
        return axis
    try:
        return axis[key]
    except (KeyError, IndexError, TypeError):
        raise RankError(f"in_axes {axis!r} has no entry {key!r} for {where}") from None


def arguments(
    signature: inspect.Signature,
    specs: dict[str, Any],
    why: dict[str, str],
    in_axes: Any,
    explicit: Container[str] = (),
) -> Arguments:
    """Example arguments for a function with this signature (``specs``: name -> spec).

    Positional parameters are passed positionally up to the last one that needs a
    value: one without a default, or one named by a flag (``explicit``); with a
    tuple ``in_axes``, as many as it has entries. The rest keep their defaults, as
    in a call that leaves them out, or go by keyword (unmapped) when a flag names
    them. ``why[name]`` explains a missing spec.
    """
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = [p for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if isinstance(in_axes, (tuple, list)):
        count = len(in_axes)
        if count > len(positional):
            raise RankError(
                f"in_axes has {count} entries but the function has {len(positional)} positional "
                "parameters"
            )
    else:
        needed = [i for i, p in enumerate(positional) if p.name in explicit or not _has_default(p)]
        count = max(needed, default=-1) + 1
    axes = list(in_axes) if isinstance(in_axes, (tuple, list)) else [in_axes] * count
    args, kwargs, missing = [], {}, []
    for p, axis in zip(positional[:count], axes):
        if p.name in specs:
            args.append(build(specs[p.name], axis, p.name))
        elif _has_default(p) and axis is None:
            args.append(p.default)
        else:
            missing.append(p.name)
    for p in keyword:
        if p in positional[:count]:
            continue
        if p.name in explicit or (p.name in specs and not _has_default(p)):
            kwargs[p.name] = build(specs[p.name], None, p.name)
        elif not _has_default(p):
            missing.append(p.name)
    if missing:
        raise RankError(_missing_message(missing, why, params))
    return Arguments(tuple(args), kwargs, [])


def _has_default(p: inspect.Parameter) -> bool:
    return p.default is not p.empty and not isinstance(p.default, Unevaluated)


def _missing_message(missing: list[str], why: dict[str, str], params: list) -> str:
    lines = [f"  {name}: {why.get(name, 'no annotation')}" for name in missing]
    defaults = {p.name: p.default for p in params}
    for i, name in enumerate(missing):
        if isinstance(defaults.get(name), Unevaluated):
            lines[i] += f" (its default {defaults[name].text} is not evaluated statically)"
    return (
        "the generated code depends on the ranks of the arguments, and these have none:\n"
        + "\n".join(lines)
        + "\n"
        + HOW
    )


def specs_for(
    fdef: ast.FunctionDef | ast.Lambda | None,
    names: Container[str],
    flags: dict[str, Any],
    dtypes: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Per-parameter specs from the flags, else the annotations; and why the rest have none."""
    specs: dict[str, Any] = dict(flags)
    why: dict[str, str] = {}
    if isinstance(fdef, ast.FunctionDef):
        a = fdef.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
            if arg.arg in specs:
                continue
            leaf, reason = from_annotation(arg.annotation, names)
            if leaf is not None:
                specs[arg.arg] = leaf
            else:
                why[arg.arg] = reason
    for name, kind in dtypes.items():
        if name in specs:
            specs[name] = with_kind(specs[name], kind)
    return specs, why


def def_node(text: str) -> ast.FunctionDef | None:
    """The first def in a function's source text."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)


__all__ = [
    "Arguments",
    "Given",
    "Leaf",
    "RankError",
    "arguments",
    "def_node",
    "from_annotation",
    "parse_dtypes",
    "parse_ranks",
    "parse_shapes",
    "parse_values",
    "shape_rank",
    "specs_for",
]
