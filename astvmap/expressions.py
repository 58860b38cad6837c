"""The translator's expressions: names, literals, containers, attributes,
subscripts, operators, comparisons, ``and``/``or``, ``a if c else b`` and list
comprehensions. Each ``expr_<libcst node type>`` returns the batched code and its
abstract value; calls are in ``calls.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
import types
from typing import Any

import libcst as cst
import libcst.matchers
import numpy as np

import astvmap.rules as rules
from astvmap.rules import Arg

from . import indexing, probing, selections
from .control import Frame
from .core import _iter_element, _LocalDef, _namespace_val
from .syntax import _code, _slice_parts, _walk_names
from .values import ARRAY, NONE, NOVALUE, OBJECT, SCALAR, SELECTION, TREE, Val, join, join_all


class Expressions:
    """Mixin for ``Translator``: expressions, by libcst node type."""

    # ------------------------------------------------------------- expressions
    def expr(self, node: cst.BaseExpression, lazy: bool = False) -> tuple[cst.BaseExpression, Val]:
        """``lazy``: the caller reduces the value, so a window ``x[i:i + k]`` in it may
        stay a selection (see windows.py); any other caller gets it gathered."""
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.unsupported(f"the expression {type(node).__name__} is not supported")
        outer, self.lazy_window = self.lazy_window, lazy
        try:
            code, val = method(node)
        finally:
            self.lazy_window = outer
        if val.batched and not isinstance(node, cst.Name):
            # Reading a name computes nothing (``M.dtype`` of a batched ``M`` is not
            # batched work: its result is not batched).
            self.saw_batched = True
        elif isinstance(node, (cst.Name, cst.Attribute, cst.Subscript)) and probing.unknown(val):
            val = probing.learn(self, node, val)
        if (val.kind == TREE and not selections.positions_tuple(val)) or (
            val.kind == SELECTION and val.selection is None
        ):
            # A selection in a tuple, or chosen by a condition: its length differs.
            selections.check_escape(
                self, val, "a selection in a container or chosen by a condition"
            )
        return code, val

    def expr_Name(self, node: cst.Name) -> tuple[cst.BaseExpression, Val]:
        name = node.value
        if name in self.env:
            if name in self.ctl.partial or name in self.ctl.loop_born:
                self.check_readable(name)
            self.check_local_def(self.env[name])
            return node, self.env[name]
        if name in ("True", "False", "None"):
            return node, Val.const({"True": True, "False": False, "None": None}[name])
        try:
            obj = self.source.lookup(name)
        except KeyError:
            return node, Val(OBJECT)
        val = dataclasses.replace(_namespace_val(obj, name), origin=("ns", self.owner, name))
        self.program.guard(val.origin, obj)
        if isinstance(obj, types.ModuleType) and self.program.modules.get(name, obj) is obj:
            self.program.modules[name] = obj
        return node, val

    def expr_Integer(self, node: cst.BaseExpression) -> tuple[cst.BaseExpression, Val]:
        return node, Val.const(ast.literal_eval(_code(node)))

    expr_Float = expr_Imaginary = expr_Integer

    def expr_SimpleString(self, node: cst.SimpleString) -> tuple[cst.BaseExpression, Val]:
        return node, Val.const(node.evaluated_value)

    def expr_ConcatenatedString(
        self, node: cst.ConcatenatedString
    ) -> tuple[cst.BaseExpression, Val]:
        # Evaluated part by part: the source text of an implicit concatenation split over
        # lines is not an expression on its own (literal_eval raised IndentationError).
        vals = [self.expr(part)[1] for part in (node.left, node.right)]
        if all(isinstance(v.static, (str, bytes)) for v in vals):
            return node, Val.const(vals[0].static + vals[1].static)
        return node, Val(OBJECT)

    def expr_FormattedString(self, node: cst.FormattedString) -> tuple[cst.BaseExpression, Val]:
        for part in node.parts:
            if isinstance(part, cst.FormattedStringExpression):
                _, val = self.expr(part.expression)
                if val.batched:
                    raise self.unsupported("formatting a batched value into a string")
        return node, Val(OBJECT)

    def expr_Ellipsis(self, node: cst.Ellipsis) -> tuple[cst.BaseExpression, Val]:
        return node, Val.const(Ellipsis)

    def expr_Tuple(self, node: cst.Tuple | cst.List) -> tuple[cst.BaseExpression, Val]:
        elems: list = []
        kids: list[tuple[int, Val]] | None = []
        items: list[tuple[Val, bool]] = []  # each item's value (and if starred), any length
        plain: list[bool | None] = []  # per element: None if starred, else if it is batched
        for e in node.elements:
            if isinstance(e, cst.StarredElement):
                code, val = self.expr(e.value)
                code, spread = self.starred_items(code, val)
                elems.append(e.with_changes(value=code))
                plain.append(None)
                if kids is not None and spread.kind == TREE and spread.element is None:
                    kids.extend((len(kids), v) for _, v in spread.children)  # (2, *x.shape)
                    items.extend((v, True) for _, v in spread.children)
                else:
                    kids = None  # unknown length
                    elem = spread.element if spread.element is not None else Val(OBJECT)
                    items.append((elem, True))
                continue
            code, val = self.expr(e.value)
            elems.append(e.with_changes(value=code))
            plain.append(val.batched)
            items.append((val, False))
            if kids is not None:
                kids.append((len(kids), val))
        container = tuple if isinstance(node, cst.Tuple) else list
        if kids is not None:
            return node.with_changes(elements=elems), Val.tree(container, kids)
        if not any(v.batched for v, _ in items):
            return node.with_changes(elements=elems), Val(TREE, container=container)
        # Of unknown length with batched items ([w, *v] of a batched vector v): a
        # homogeneous sequence of batched arrays of one rank, unbatched items (not starred)
        # given the batch axis; anything else is refused.
        ranks = {0 if v.kind == SCALAR else v.rank for v, _ in items}
        if (
            len(ranks) != 1
            or None in ranks
            or any(
                v.kind not in (ARRAY, SCALAR) or (starred and not v.batched) for v, starred in items
            )
        ):
            raise self.unsupported(
                "starred batched values in a literal whose items differ in rank or batching",
                "build the array with np.concatenate",
            )
        rank = ranks.pop()
        for i, batched in enumerate(plain):
            if batched is False:  # an unbatched item written out (not starred)
                elems[i] = elems[i].with_changes(
                    value=self.broadcast(elems[i].value, Val.array(rank))
                )
        elem = join_all([v.with_batched(True) for v, _ in items])
        return node.with_changes(elements=elems), Val(
            TREE, batched=True, container=container, element=elem
        )

    def sequence_operator(self, op: cst.BaseBinaryOp, left: Val, right: Val) -> Val | None:
        """``a + b`` of two lists (or two tuples) holding batched values and ``a * n`` /
        ``n * a`` with a static int ``n``: Python joins or repeats the sequences, the same
        code does it to the batched items. None for any other operator or operands."""
        if isinstance(op, cst.Multiply):
            seq, times = (left, right) if left.kind == TREE else (right, left)
            n = times.static if times.is_static else None
            if seq.kind != TREE or type(n) is not int or seq.container not in (list, tuple):
                return None
            if seq.element is not None:
                return seq
            kids = [v for _ in range(max(n, 0)) for _, v in seq.children]
            return Val.tree(seq.container, list(enumerate(kids)))
        if not isinstance(op, cst.Add):
            return None
        if left.kind != TREE or right.kind != TREE or left.container is not right.container:
            return None
        if left.container not in (list, tuple):
            return None
        if left.element is None and right.element is None:
            kids = [v for _, v in (*left.children, *right.children)]
            return Val.tree(left.container, list(enumerate(kids)))
        items = [v for side in (left, right) for v in _sequence_items(side)]
        if items and all(v.kind == ARRAY and v.batched for v in items):
            if len({v.rank for v in items}) == 1:
                elem = join_all(items)
                return Val(TREE, batched=True, container=left.container, element=elem)
        return None

    def join_broadcast(
        self,
        op: cst.BaseBinaryOp,
        left_code: cst.BaseExpression,
        left: Val,
        right_code: cst.BaseExpression,
        right: Val,
    ) -> tuple[cst.BaseExpression, cst.BaseExpression, Val] | None:
        """``[a] + list(v)`` where the literal side holds unbatched items of the batched
        side's rank: those items get the batch axis, then the lists join as usual."""
        if not isinstance(op, cst.Add):
            return None
        codes = [left_code, right_code]
        for i, (code, val) in enumerate(((left_code, left), (right_code, right))):
            if isinstance(code, (cst.List, cst.Tuple)) and val.kind == TREE and val.children:
                if any(isinstance(e, cst.StarredElement) for e in code.elements):
                    return None
                codes[i] = code.with_changes(
                    elements=[
                        (
                            e
                            if v.batched or v.kind not in (ARRAY, SCALAR)
                            else e.with_changes(value=self.broadcast(e.value, v))
                        )
                        for e, (_, v) in zip(code.elements, val.children)
                    ]
                )
        new = [
            _given_batch(v) if isinstance(c, (cst.List, cst.Tuple)) else v
            for c, v in zip(codes, (left, right))
        ]
        if codes[0] is left_code and codes[1] is right_code:
            return None
        joined = self.sequence_operator(op, new[0], new[1])
        return None if joined is None else (codes[0], codes[1], joined)

    def index_concatenate(
        self, node: cst.Subscript, which: Any
    ) -> tuple[cst.BaseExpression, Val] | None:
        """``np.r_[a, b]`` / ``np.c_[a, b]`` holding batched values; None when none is
        (the subscript then stays as written)."""
        if not all(isinstance(e.slice, cst.Index) for e in node.slice):
            return None  # np.r_[0:3, x]: a range, left to the general path
        items = [Arg(*self.expr(e.slice.value)) for e in node.slice]
        if not any(a.batched for a in items):
            rank = rules.index_tricks.index_concatenate_rank(self, which, items)
            if rank is None:
                return None
            written = node.with_changes(
                slice=[e.with_changes(slice=cst.Index(a.code)) for e, a in zip(node.slice, items)]
            )
            return written, Val.array(rank)
        self.current = node
        return rules.index_tricks.index_concatenate(self, which, items)

    def starred_items(self, code: cst.BaseExpression, val: Val) -> tuple[cst.BaseExpression, Val]:
        """``*x`` inside a literal: the code to star and the sequence it spreads (a tree;
        one with ``element`` set when its length is unknown). A batched array spreads
        along its first per-example axis, as the loop iterates it."""
        if not val.batched or val.kind == TREE:
            if val.kind == TREE and val.element is None and not val.children and val.batched:
                raise self.unsupported("starred batched values in a literal")
            return code, val
        if val.kind != ARRAY or not val.rank:
            raise self.unsupported("starred batched values in a literal")
        elem = Val.array(val.rank - 1, True, val.dtype)
        return self.parse("np.moveaxis({x}, 1, 0)", x=code), Val(
            TREE, batched=True, container=tuple, element=elem
        )

    expr_List = expr_Tuple

    def expr_Dict(self, node: cst.Dict) -> tuple[cst.BaseExpression, Val]:
        elems, kids = [], []
        for e in node.elements:
            if not isinstance(e, cst.DictElement):
                raise self.unsupported("** in a dict literal")
            kcode, kval = self.expr(e.key)
            vcode, vval = self.expr(e.value)
            if kval.batched:
                raise self.unsupported("a batched dict key")
            kids.append((kval.static if kval.is_static else object(), vval))
            elems.append(e.with_changes(key=kcode, value=vcode))
        return node.with_changes(elements=elems), Val.tree(dict, kids)

    def expr_Attribute(self, node: cst.Attribute) -> tuple[cst.BaseExpression, Val]:
        base_code, base = self.expr(node.value, lazy=node.attr.value in selections.COUNTS)
        return self.attribute(node, base_code, base)

    def attribute(
        self, node: cst.Attribute, base_code: cst.BaseExpression, base: Val
    ) -> tuple[cst.BaseExpression, Val]:
        attr = node.attr.value
        new = node.with_changes(value=base_code)
        if base.kind == SELECTION:
            return selections.attribute(self, new, base_code, base, attr)
        if base.kind in (ARRAY, SCALAR) and (base.batched or base.static is NOVALUE):
            return rules.shape_ops.array_attribute(self, new, base_code, base, attr)
        if base.kind == TREE:
            child = base.child(attr)
            if child is not None:
                return new, child
            if base.batched:
                raise self.unsupported(f"attribute {attr!r} of a batched container")
            return new, Val(OBJECT)
        holder = base.static if base.is_static else base.sample
        if base.container is np.dtype and attr in rules.shape_ops.DTYPE_INT_ATTRIBUTES:
            return new, Val(SCALAR, rank=0, dtype="i")
        if holder is NOVALUE:
            return new, Val(OBJECT)
        try:
            obj = getattr(holder, attr)
        except AttributeError:
            return new, Val(OBJECT)
        origin = (*base.origin, attr) if base.origin is not None else None
        val = dataclasses.replace(_namespace_val(obj, attr), origin=origin)
        if origin is not None and not isinstance(holder, types.ModuleType):
            self.program.guard(origin, obj)
        return new, val

    def expr_Subscript(self, node: cst.Subscript) -> tuple[cst.BaseExpression, Val]:
        base_code, base = self.expr(node.value)
        if base.kind == TREE or (base.kind == OBJECT and not base.batched):
            return self.subscript_container(node, base_code, base)
        code, val, _ = indexing.subscript(self, node, base_code, base)
        return code, val

    def subscript_container(
        self, node: cst.Subscript, base_code: cst.BaseExpression, base: Val
    ) -> tuple[cst.BaseExpression, Val]:
        holder = base.static if base.is_static else base.sample
        if holder is np.r_ or holder is np.c_:
            joined = self.index_concatenate(node, holder)
            if joined is not None:
                return joined
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            if base.batched:
                raise self.unsupported("slicing a batched container")
            if any(self.expr(part)[1].batched for part in _slice_parts(node)):
                # `np.r_[[a], [b]]`, `obj[x:y]`: an object's __getitem__ would get the
                # batch as one example.
                raise self.unsupported(
                    f"indexing `{_code(node.value).strip()}` (an object astvmap has no rule "
                    "for) with batched values",
                    "use np.concatenate / np.stack, or index arrays",
                )
            return node.with_changes(value=base_code), Val(OBJECT)
        key_code, key = self.expr(node.slice[0].slice.value)
        new = node.with_changes(
            value=base_code,
            slice=[
                node.slice[0].with_changes(slice=node.slice[0].slice.with_changes(value=key_code))
            ],
        )
        if key.batched:
            if base.kind == OBJECT:
                raise self.unsupported(
                    f"indexing `{_code(node.value).strip()}` (an object astvmap has no rule "
                    "for) with a batched value",
                    "use np.concatenate / np.stack, or index arrays",
                )
            raise self.unsupported("indexing a container with a batched index")
        if key.is_static and selections.shape_item(base_code, key.static) is not None:
            return selections.shape_item(base_code, key.static), base.child(
                key.static % len(base.children)
            )
        if key.is_static:
            shape_item = rules.shape_ops.shape_item(self, base_code, key.static)
            if shape_item is not None:
                return shape_item, Val(SCALAR, rank=0)
        if base.kind == TREE and key.is_static:
            k = key.static
            if base.element is not None:
                return new, base.element
            if isinstance(k, int) and base.container in (tuple, list) and k < 0:
                k += len(base.children)
            child = base.child(k)
            if child is not None:
                return new, child
        if base.kind == TREE and key.is_static and isinstance(key.static, slice):
            return new, Val(TREE, batched=base.batched)
        if base.batched:
            raise self.unsupported(
                "indexing a batched container with a value known only at run time"
            )
        if base.sample is not NOVALUE and key.is_static:
            try:
                return new, Val.of_sample(base.sample[key.static])
            except Exception:  # noqa: BLE001 - the loop would raise the same at run time
                return new, Val(OBJECT)
        if base.static is not NOVALUE and key.is_static:
            try:
                return new, _namespace_val(base.static[key.static], "item")
            except Exception:  # noqa: BLE001
                return new, Val(OBJECT)
        return new, Val(OBJECT)

    def expr_BinaryOperation(self, node: cst.BinaryOperation) -> tuple[cst.BaseExpression, Val]:
        (left_code, left), (right_code, right) = self.operands(
            [node.left, node.right], gather=isinstance(node.operator, cst.MatrixMultiply)
        )
        if left.kind == SELECTION or right.kind == SELECTION:
            return selections.binary(
                self,
                node,
                Arg(left_code, left),
                Arg(right_code, right),
                BINARY_UFUNCS.get(type(node.operator)),
            )
        if isinstance(node.operator, cst.MatrixMultiply):
            return rules.linalg.matmul_operator(
                self, node, Arg(left_code, left), Arg(right_code, right)
            )
        if left.kind == TREE or right.kind == TREE or left.kind == OBJECT or right.kind == OBJECT:
            if left.batched or right.batched:
                joined = self.sequence_operator(node.operator, left, right)
                if joined is None:
                    joined = self.join_broadcast(node.operator, left_code, left, right_code, right)
                    if joined is not None:
                        left_code, right_code, joined = joined
                if joined is not None:
                    return node.with_changes(left=left_code, right=right_code), joined
                if left.kind == TREE or right.kind == TREE:
                    raise self.unsupported(
                        "an operator on a tuple or list holding batched values",
                        "build an array with np.array([...]) first",
                    )
                # An object of unknown type next to a batched array could be a number
                # or a list that broadcasts: its rank is unknown, so refuse (or probe).
                raise probing.refuse(
                    self,
                    "an operator between a batched array and an object of unknown type",
                    "convert the object first (float(...), int(...) or np.asarray(...))",
                    [left, right],
                )
            return node.with_changes(left=left_code, right=right_code), _opaque_result(left, right)
        folded = _fold_binary(node, left, right)
        if folded is not None:
            return node.with_changes(left=left_code, right=right_code), folded
        (lc, rc), val = rules.elementwise.align_binary(
            self, Arg(left_code, left), Arg(right_code, right), BINARY_UFUNCS[type(node.operator)]
        )
        return node.with_changes(left=lc, right=rc), val

    def expr_UnaryOperation(self, node: cst.UnaryOperation) -> tuple[cst.BaseExpression, Val]:
        lazy = self.lazy_window and not isinstance(node.operator, cst.Not)
        code, val = self.expr(node.expression, lazy=lazy)
        if val.kind == SELECTION:
            return selections.unary(self, node, code, val)
        if isinstance(node.operator, cst.Not):
            if val.batched:
                if val.rank not in (0, None):
                    raise self.refuse(
                        "`not` of a per-example array (its truth value is ambiguous: the loop "
                        "raises ValueError)"
                    )
                return self.parse("np.logical_not({x})", x=code), Val.array(0, True, "b")
            if val.is_static and isinstance(val.static, (bool, int, float, str, type(None))):
                return node.with_changes(expression=code), Val.const(not val.static)
            return node.with_changes(expression=code), Val(SCALAR, rank=0, dtype="b")
        if (
            val.batched
            and val.dtype in ("b", None)
            and isinstance(node.expression, cst.Name)
            and node.expression.value in self.weak
        ):
            # A Python bool given a batch axis became a NumPy bool, for which these
            # mean something else (~True is -2 but ~np.True_ is False).
            op = _code(node.operator).strip()
            raise self.unsupported(
                f"`{op}` of `{node.expression.value}`, which may hold a Python bool "
                "(an int to this operator) in some examples and a NumPy bool in others",
                "use `not` for a negation, or int(...) for arithmetic",
            )
        result = val if not val.is_static else Val(val.kind, rank=val.rank, dtype=val.dtype)
        if val.is_static and val.kind == SCALAR:
            result = Val.const(_eval_unary(node, val.static))
        return node.with_changes(expression=code), result

    def expr_Comparison(self, node: cst.Comparison) -> tuple[cst.BaseExpression, Val]:
        operands = self.operands(
            [node.left, *[c.comparator for c in node.comparisons]],
            gather=len(node.comparisons) != 1,
        )
        left_code = operands[0][0]
        if any(v.kind == SELECTION for _, v in operands):
            return selections.compare(self, node, operands)
        any_batched = any(v.batched for _, v in operands)
        decided = _decided_identity(node, [v for _, v in operands])
        if decided is not None:
            # `x is None` of a batched value: per example it is an array, never None.
            return cst.Name(str(decided)), Val.const(decided)
        if not any_batched:
            comps = [
                c.with_changes(comparator=code)
                for c, (code, _) in zip(node.comparisons, operands[1:])
            ]
            folded = _fold_comparison(node, [v for _, v in operands])
            if folded is not None:
                return node.with_changes(left=left_code, comparisons=comps), Val.const(folded)
            return node.with_changes(left=left_code, comparisons=comps), (
                Val(SCALAR, rank=0, dtype="b")
                if all(v.kind == SCALAR for _, v in operands)
                else Val.array(_max_rank([v for _, v in operands]), dtype="b")
            )
        for c in node.comparisons:
            if not isinstance(c.operator, COMPARISONS):
                raise self.unsupported(
                    f"`{_code(c.operator).strip()}` on a batched value",
                    "compare elementwise with == and np.isin",
                )
        pieces = []
        val = None
        for i, comp in enumerate(node.comparisons):
            (a, b), v = rules.elementwise.align_binary(
                self, Arg(*operands[i]), Arg(*operands[i + 1])
            )
            pieces.append(cst.Comparison(left=a, comparisons=[comp.with_changes(comparator=b)]))
            val = v if val is None else rules.elementwise.broadcast_val([val, v])
        val = dataclasses.replace(val, dtype="b")
        if len(pieces) == 1:
            return pieces[0].with_changes(lpar=node.lpar, rpar=node.rpar), val  # type: ignore[return-value]
        if val.rank != 0:
            # Per example `a < b < c` is `(a < b) and (b < c)`: on arrays of more
            # than one element it raises, so the elementwise `&` would be a guess.
            raise (self.refuse if val.rank else self.unsupported)(
                "a chained comparison of per-example arrays (Python's `and` of arrays)",
                "write (a < b) & (b < c) for the elementwise test",
            )
        # A chained comparison of scalars is the elementwise `and` of its links.
        result: cst.BaseExpression = pieces[0]
        for piece in pieces[1:]:
            result = cst.BinaryOperation(left=result, operator=cst.BitAnd(), right=piece)
        return result, val  # type: ignore[return-value]

    def expr_BooleanOperation(self, node: cst.BooleanOperation) -> tuple[cst.BaseExpression, Val]:
        left_code, left = self.expr(node.left)
        if left.is_static and bool(left.static) == isinstance(node.operator, cst.Or):
            # Decided by a value known while transforming (`w is not None and ...` with
            # w None): Python never evaluates the right operand, so neither do we.
            return node.with_changes(left=left_code), left
        if left.batched and self.can_guard(node.right):
            # Python evaluates the right operand only where the left one decides
            # nothing (`i < n and v[i] > 0`): elsewhere its index may be out of range.
            left_code = self.hoist("test", left_code)
            lanes = self.truth(left_code, left)
            if isinstance(node.operator, cst.Or):
                lanes = self.parse("~({c})", c=lanes)
            right_code, right = self.guarded(node.right, lanes)
        else:
            right_code, right = self.expr(node.right)
        if left.batched or right.batched:
            return self.batched_bool_op(node, (left_code, left), (right_code, right))
        return node.with_changes(left=left_code, right=right_code), (
            join(left, right) if left.kind == right.kind else Val(OBJECT)
        )

    def batched_bool_op(
        self,
        node: cst.BooleanOperation,
        left: tuple[cst.BaseExpression, Val],
        right: tuple[cst.BaseExpression, Val],
    ) -> tuple[cst.BaseExpression, Val]:
        """``a and b`` / ``a or b`` per lane, with Python's value semantics."""
        is_and = isinstance(node.operator, cst.And)
        self.quiet_statement = True
        if left[1].dtype == right[1].dtype == "b" and left[1].rank == right[1].rank == 0:
            op = "&" if is_and else "|"
            (lc, rc), val = rules.elementwise.align_binary(self, Arg(*left), Arg(*right))
            return self.parse("{a} %s {b}" % op, a=lc, b=rc), dataclasses.replace(val, dtype="b")
        test = self.truth(*left)
        self.quiet_statement = True
        return self.where(test, right, left) if is_and else self.where(test, left, right)

    def expr_IfExp(self, node: cst.IfExp) -> tuple[cst.BaseExpression, Val]:
        test_code, test = self.expr(node.test)
        if test.batched:
            # Both sides are computed for every lane, then chosen per lane; an index
            # in a side reads position 0 in the lanes that do not choose it.
            if self.can_guard(node.body) or self.can_guard(node.orelse):
                test_code = self.hoist("test", test_code)
            lanes = self.truth(test_code, test)
            a = self.guarded(node.body, lanes)
            b = self.guarded(node.orelse, self.parse("~({c})", c=lanes))
            self.quiet_statement = True
            return self.where(self.truth(test_code, test), a, b)
        if test.is_static:
            # Only the branch Python would evaluate is translated.
            taken = node.body if test.static else node.orelse
            code, val = self.expr(taken)
            return (
                node.with_changes(
                    test=test_code,
                    body=code if test.static else node.body,
                    orelse=node.orelse if test.static else code,
                ),
                val,
            )
        body_code, body = self.expr(node.body)
        else_code, orelse = self.expr(node.orelse)
        if body.batched != orelse.batched:
            # The unbatched side is copied along the batch: no longer the array it names,
            # so a later write into that array must not be expected to reach the result.
            self.copied_choice = True
            if not body.batched:
                body_code = self.materialise(body_code, body)
            else:
                else_code = self.materialise(else_code, orelse)
        return node.with_changes(test=test_code, body=body_code, orelse=else_code), join(
            body, orelse
        )

    def can_guard(self, node: cst.BaseExpression) -> bool:
        """Does ``node`` index (so may need guarding), where a guard can be hoisted?"""
        return not self.comp_depth and _has_subscript(node)

    def operands(
        self, nodes: list[cst.BaseExpression], gather: bool = False
    ) -> list[tuple[cst.BaseExpression, Val]]:
        """The operands of an operator. Under a reduction they are read lazily (a window
        stays a selection); where the selections do not combine elementwise
        (``x[i:i + 3] * w`` with ``w`` of length 3; ``gather``: never), they are read
        again, gathered."""
        if not self.lazy_window:
            return [self.expr(n) for n in nodes]
        state = self.translation_state()
        out = [self.expr(n, lazy=True) for n in nodes]
        if selections.lazy_windows([v for _, v in out]) and (
            gather or not selections.combine([v for _, v in out])
        ):
            self.restore_translation_state(state)
            out = [self.expr(n) for n in nodes]
        return out

    def translation_state(self) -> tuple:
        """What translating an expression adds to (hoisted temporaries, checks)."""
        return len(self.pending), len(self.checks), set(self.checked)

    def restore_translation_state(self, state: tuple) -> None:
        del self.pending[state[0] :]
        del self.checks[state[1] :]
        self.checked = state[2]

    def hoist(self, base: str, code: cst.BaseExpression) -> cst.BaseExpression:
        """``code`` computed once into a temporary (it is used more than once)."""
        if isinstance(code, cst.Name):
            return code
        name = self.temp(base)
        self.pending.append(self.small_assign(name, code))
        return cst.Name(name)

    def guarded(
        self, node: cst.BaseExpression, lanes: cst.BaseExpression
    ) -> tuple[cst.BaseExpression, Val]:
        """``node`` where only ``lanes`` use its value: its gathers read index 0 in
        the other lanes (see indexing.gather), as under a batched ``if``."""
        if not self.can_guard(node):
            return self.expr(node)
        outer = self.mask
        if outer is None and isinstance(lanes, cst.Name):
            name = lanes.value
        else:
            name = self.temp("guard")
            self.pending.append(
                self.small_assign(
                    name, lanes if outer is None else self.parse("{o} & ({c})", o=outer, c=lanes)
                )
            )
        self.ctl.frames.append(Frame("branch", name, frozenset(self.ctl.bound)))
        try:
            return self.expr(node)
        finally:
            self.ctl.frames.pop()

    def expr_ListComp(self, node: cst.ListComp) -> tuple[cst.BaseExpression, Val]:
        saved = dict(self.env)
        fors = []
        comp: cst.CompFor | None = node.for_in
        while comp is not None:
            iter_code, it = self.expr(comp.iter)
            iter_code, elem = self.comprehension_iter(iter_code, it)
            self.bind_target(comp.target, elem)
            ifs = []
            for cond in comp.ifs:
                c, v = self.expr(cond.test)
                if v.batched:
                    raise self.unsupported("a comprehension filtered by a batched condition")
                ifs.append(cond.with_changes(test=c))
            fors.append((comp, iter_code, ifs))
            comp = comp.inner_for_in
        self.comp_depth += 1
        hoisted = len(self.pending)
        try:
            elt_code, elt = self.expr(node.elt)
        finally:
            self.comp_depth -= 1
        self.check_not_hoisted(node, self.pending[hoisted:])
        self.env = saved
        # Rebuild the chain of `for` clauses innermost first.
        inner = None
        for comp, iter_code, ifs in reversed(fors):
            inner = comp.with_changes(iter=iter_code, ifs=ifs, inner_for_in=inner)
        return node.with_changes(elt=elt_code, for_in=inner), Val(
            TREE, batched=elt.batched, container=list, element=elt
        )

    expr_GeneratorExp = expr_ListComp

    def check_not_hoisted(
        self, node: cst.ListComp | cst.GeneratorExp, hoisted: list[cst.BaseSmallStatement]
    ) -> None:
        """A statement computed before the line runs once, outside the comprehension:
        it cannot read the comprehension's own variables."""
        own: set[str] = set()
        comp: cst.CompFor | None = node.for_in
        while comp is not None:
            own |= set(_walk_names(comp.target))
            comp = comp.inner_for_in
        for stmt in hoisted:
            if own & set(_walk_names(stmt)):
                raise self.unsupported(
                    "this expression inside a comprehension needs a statement of its own",
                    "write the comprehension as a for loop",
                )

    def comprehension_iter(
        self, code: cst.BaseExpression, it: Val
    ) -> tuple[cst.BaseExpression, Val]:
        """What a comprehension's ``for`` iterates, and its element. A batched array
        is iterated along its per-example first axis (axis 1): each item is then a
        batched value, so the comprehension makes a list of batched values."""
        if not it.batched or it.kind == TREE:
            return code, _iter_element(it)
        if it.kind == ARRAY and it.rank:
            return self.parse("np.moveaxis({x}, 1, 0)", x=code), Val.array(
                it.rank - 1, True, it.dtype
            )
        raise self.unsupported(
            "a comprehension over a batched value of unknown or zero rank",
            "iterate over range(len(...)) of an array instead",
        )

    def expr_Lambda(self, node: cst.Lambda) -> tuple[cst.BaseExpression, Val]:
        val = Val(OBJECT, static=_LocalDef(node))
        self.check_local_def(val)
        return node, val

    def check_local_def(self, val: Val) -> None:
        """A def or lambda written inside the function is kept as written, so it must not
        read batched values through its closure: it would compute with the whole batch
        as if it were one example. Such code runs per example instead (declared)."""
        if not isinstance(val.static, _LocalDef):
            return
        batched = sorted(n for n in val.static.names if n in self.env and self.env[n].batched)
        if batched:
            raise self.unsupported(
                "a function defined inside the vmapped function reads batched values "
                f"({', '.join(batched)})",
                "define the helper at module level and pass those values as arguments; "
                "it is then transformed too",
            )


BINARY_UFUNCS = {
    cst.Add: np.add,
    cst.Subtract: np.subtract,
    cst.Multiply: np.multiply,
    cst.Divide: np.true_divide,
    cst.FloorDivide: np.floor_divide,
    cst.Modulo: np.remainder,
    cst.Power: np.power,
    cst.BitAnd: np.bitwise_and,
    cst.BitOr: np.bitwise_or,
    cst.BitXor: np.bitwise_xor,
    cst.LeftShift: np.left_shift,
    cst.RightShift: np.right_shift,
}
COMPARISONS = (
    cst.LessThan,
    cst.LessThanEqual,
    cst.GreaterThan,
    cst.GreaterThanEqual,
    cst.Equal,
    cst.NotEqual,
)


def _max_rank(vals: list[Val]) -> int | None:
    ranks = [v.rank for v in vals if v.kind in (ARRAY, SCALAR)]
    if any(r is None for r in ranks):
        return None
    return max(ranks, default=0)


def _given_batch(seq: Val) -> Val:
    """A literal list's value once its unbatched number and array items were given the
    batch axis (each is then a batched array of its rank)."""
    kids = [
        (
            (k, Val.array(0 if v.kind == SCALAR else v.rank, True, v.dtype))
            if v.kind in (ARRAY, SCALAR)
            else (k, v)
        )
        for k, v in seq.children
    ]
    return Val.tree(seq.container or list, kids)


def _sequence_items(seq: Val) -> list[Val]:
    """The values a sequence's items can have: its element, or each of its children."""
    if seq.element is not None:
        return [seq.element]
    return [v for _, v in seq.children]


def _opaque_result(a: Val, b: Val) -> Val:
    if a.is_static and b.is_static and a.kind == TREE:
        return Val(TREE, container=a.container)
    return Val(OBJECT)


_COMPARE = {
    cst.LessThan: lambda a, b: a < b,
    cst.LessThanEqual: lambda a, b: a <= b,
    cst.GreaterThan: lambda a, b: a > b,
    cst.GreaterThanEqual: lambda a, b: a >= b,
    cst.Equal: lambda a, b: a == b,
    cst.NotEqual: lambda a, b: a != b,
    cst.Is: lambda a, b: a is b,
    cst.IsNot: lambda a, b: a is not b,
}


def _decided_identity(node: cst.Comparison, vals: list[Val]) -> bool | None:
    """``a is None`` / ``a is not None`` where ``a`` is batched (an array per example)."""
    if len(node.comparisons) != 1 or not isinstance(
        node.comparisons[0].operator, (cst.Is, cst.IsNot)
    ):
        return None
    a, b = vals
    if not (a.batched and b.kind == NONE or b.batched and a.kind == NONE):
        return None
    return isinstance(node.comparisons[0].operator, cst.IsNot)


def _fold_comparison(node: cst.Comparison, vals: list[Val]) -> bool | None:
    """A comparison of transform-time constants (x.ndim == 2), evaluated."""
    if not all(v.is_static and isinstance(v.static, (bool, int, str, type(None))) for v in vals):
        return None
    result = True
    for comp, a, b in zip(node.comparisons, vals, vals[1:]):
        op = _COMPARE.get(type(comp.operator))
        if op is None:
            return None
        try:
            result = result and bool(op(a.static, b.static))
        except TypeError:
            return None  # `1 > None`: left to run time, which raises as the loop does
    return result


def _has_subscript(node: cst.CSTNode) -> bool:
    return bool(libcst.matchers.findall(node, libcst.matchers.Subscript()))


def _eval_unary(node: cst.UnaryOperation, value: Any) -> Any:
    op = type(node.operator)
    if op is cst.Minus:
        return -value
    if op is cst.Plus:
        return +value
    if op is cst.BitInvert:
        return ~value
    return not value


PYTHON_OPERATORS = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
}


def _fold_binary(node: cst.BinaryOperation, left: Val, right: Val) -> Val | None:
    """``depth - 1`` of Python ints known while transforming stays known: a helper
    called with it is specialised on its value (recursion to a literal depth)."""
    op = PYTHON_OPERATORS.get(type(node.operator))
    if op is None or left.kind != SCALAR or right.kind != SCALAR:
        return None
    a, b = left.static, right.static
    if type(a) is not int or type(b) is not int:
        return None
    try:
        value = op(a, b)
    except ZeroDivisionError:
        return None  # raised when it runs, as in the loop
    if abs(value) > 2**62:
        return None
    return Val.const(value)
