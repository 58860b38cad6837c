"""Passes 4-5: batching analysis and rewrite.

The ``Translator`` walks one function's statements in order, as an abstract
interpreter: every expression is translated into batched code *and* given an
abstract value (``Val``: batched?, per-example rank). Analysis and rewrite are one
walk because each rule's output code and output rank are decided by the same
facts; loops are first run "dry" to a fixpoint of the abstract environment, so
the code for a loop body is generated once, from the final facts.

Invariants of the generated code (DESIGN §4): batched values carry the batch axis
first; unbatched code is left as written; mixed ranks are aligned explicitly.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import dataclasses
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any

import libcst as cst
import libcst.helpers
import libcst.matchers
import numpy as np
from libcst.metadata import MetadataWrapper, PositionProvider

import astvmap.rules as rules
from astvmap.rules import Arg, CallSite

from . import indexing
from .control import ControlState, Frame, LoopInfo, MaskedControl
from .errors import NeedsBatchError, NoRuleError, UnsupportedError
from .guards import ARGUMENT, Guard, signature
from .source import FunctionSource, get_source
from .values import ARRAY, NONE, NOVALUE, OBJECT, SCALAR, TREE, Val, join, join_all

# Modules whose functions are library code: never transformed, only matched to rules.
LIBRARY_ROOTS = {"numpy", "math", "builtins", "cmath", "operator", "functools", "scipy", "astvmap"}

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


class Program:
    """State shared by every function generated into one module."""

    def __init__(self, main: FunctionSource) -> None:
        self.main = main
        # pipeline.Options, set by transform: the rules read randomness and axis_name.
        self.options: Any = None
        self.np = "np"
        self.functions: list[cst.FunctionDef] = []
        # (code object, argument signature) -> (generated name, return value)
        self.specialisations: dict[tuple, tuple[str, Val | None]] = {}
        # generated name -> (source, owner chain from main)
        self.origins: dict[str, tuple[FunctionSource, tuple[str, ...]]] = {}
        self.guards: dict[tuple, Guard] = {}
        self.taken: set[str] = set()
        # specialisation key -> the parameters that function writes into in place
        self.writes: dict[tuple, frozenset[str]] = {}
        # Modules the generated code names: imported at the top of the emitted module.
        self.modules: dict[str, types.ModuleType] = {self.np: np}

    def snapshot(self) -> tuple:
        """What ``restore`` needs to forget the functions generated after this point."""
        return (
            len(self.functions),
            dict(self.specialisations),
            dict(self.origins),
            set(self.taken),
            dict(self.writes),
        )

    def restore(self, saved: tuple) -> None:
        count, specs, origins, taken, writes = saved
        del self.functions[count:]
        self.specialisations, self.origins, self.taken, self.writes = specs, origins, taken, writes

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            i += 1
            name = f"{base}{i}"
        self.taken.add(name)
        return name

    def guard(self, origin: tuple, obj: Any) -> None:
        if origin[0] == "ns" and NESTED in origin[1]:
            # Inside a nested vmap's adapter: its namespace is reached through the
            # vmapped function object, which is itself guarded by identity.
            return
        if isinstance(obj, types.MethodType):
            # A bound method is made anew at each access: guard the function it binds.
            origin, obj = (*origin, "__func__"), obj.__func__
        if origin not in self.guards:
            self.guards[origin] = Guard(origin, signature(obj))


class Translator(MaskedControl):
    """Translates one function (one specialisation) into batched code."""

    def __init__(
        self,
        program: Program,
        source: FunctionSource,
        params: dict[str, Val],
        name: str,
        owner: tuple[str, ...] = (),
    ) -> None:
        self.program = program
        self.source = source
        self.params = params
        self.name = name
        self.owner = owner
        self.np = program.np
        self.env: dict[str, Val] = dict(params)
        positions = MetadataWrapper(source.module, unsafe_skip_copy=True).resolve(PositionProvider)
        # The def with one-line suites (`if c: y = 1`, `def f(x): return x`) as blocks.
        self.node, self.positions = _suites_as_blocks(source.node, positions)
        self.current: cst.CSTNode = self.node
        self.pending: list[cst.BaseSmallStatement] = []
        self.return_val: Val | None = None  # the join of all return sites (pass 2)
        self.returns: list[Val] = []
        self.batch_name: str | None = None  # set when the code needs the batch size
        self.local_names = set(_walk_names(self.node))
        self.weak: set[str] = set()  # batched names that stand for Python scalars
        self.dry_depth = 0
        self.comp_depth = 0  # inside a comprehension: no statements can be hoisted out
        self.ctl = ControlState(bound=set(params))  # masks of batched control flow
        self.checks: list[cst.BaseStatement] = []  # run-time checks before a statement
        self.checked: set[str] = set()
        self.quiet_statement = False  # the statement computes operands the loop skips
        # Arrays written in place (items, `+=`), and those of them that got their batch
        # axis by the write: a caller must see both (a helper writes into its argument).
        self.written: set[str] = set()
        self.saw_batched = False  # some expression since this was reset is batched (stmt_Try)
        self.loop_memo: dict[tuple, dict[str, Val]] = {}
        self.info_memo: dict[tuple, LoopInfo] = {}
        self.stmt_memo: dict[tuple, tuple] = {}
        self.grown: set[str] = set()
        # name -> arrays it is, in some examples only (chosen by a batched condition): the
        # batched code holds a copy there, so a write through either name is refused.
        self.aliases: dict[str, set[str]] = {}
        for node in _walk_names(self.node):
            program.taken.add(node)

    # ------------------------------------------------------------------ driver
    def translate(self) -> tuple[cst.FunctionDef, Val]:
        node = self.node
        if node.asynchronous is not None:
            raise self.unsupported_at(node, "async functions cannot be vectorised")
        # Pass 1 finds what every return site returns; pass 2 emits code knowing the join.
        with self.dry():
            self.block(node.body.body)
        if self.returns:
            joined = self.returns[0]
            for val in self.returns[1:]:
                joined = join(joined, val)
        else:
            joined = Val(NONE, static=None)
        self.return_val = joined
        self.env = dict(self.params)
        self.weak = set()
        self.ctl = ControlState(bound=set(self.params))
        body = self.block(node.body.body)
        body += self.function_end()
        body = self.top_inits() + body
        if self.batch_name is not None:
            first = self.first_batched_param()
            body.insert(
                0,
                _line(cst.parse_statement(f"{self.batch_name} = {first}.shape[0]").body[0]),
            )
        body = _keep_docstring_first(body)
        fdef = node.with_changes(
            name=cst.Name(self.name),
            params=_strip_defaults(node.params),
            body=node.body.with_changes(body=body),
            returns=None,
            decorators=(),
        )
        return fdef, joined

    def first_batched_param(self) -> str:
        for name, val in self.params.items():
            path = _first_batched_path(val)
            if path is not None:
                return name + path
        raise AssertionError("batch size needed in a function without batched arguments")

    @contextlib.contextmanager
    def dry(self) -> Iterator[None]:
        """Translate for the abstract values only; the code produced is discarded."""
        saved = (self.pending, self.batch_name, set(self.weak))
        control = self.saved_control()
        self.pending = []
        self.dry_depth += 1
        try:
            yield
        finally:
            self.dry_depth -= 1
            self.pending, self.batch_name, self.weak = saved[0], saved[1], saved[2]
            self.restore_control(control)

    # ------------------------------------------------------------ rule context
    def parse(self, template: str, **subs: cst.BaseExpression) -> cst.BaseExpression:
        return libcst.helpers.parse_template_expression(
            template.replace("np.", f"{self.np}."), **subs
        )

    def expand(self, code: cst.BaseExpression, count: int, after: int = 1) -> cst.BaseExpression:
        """Insert ``count`` new axes after the first ``after`` axes (the batch axis)."""
        if count <= 0:
            return code
        elems = [_slice_all() for _ in range(after)] + [
            _index(cst.Name("None")) for _ in range(count)
        ]
        return cst.Subscript(value=code, slice=elems)

    def batch_size(self) -> cst.BaseExpression:
        if self.batch_name is None:
            name = "batch_size"
            while name in self.local_names or name in self.source.fn.__globals__:
                name += "_"
            self.batch_name = name
        return cst.Name(self.batch_name)

    def broadcast(self, code: cst.BaseExpression, val: Val) -> cst.BaseExpression:
        """An unbatched value repeated along a new leading batch axis (a read-only view)."""
        if val.kind in (ARRAY, SCALAR) and val.rank == 0:
            # Whatever the scalar turns out to be (a rule may give a Python float).
            return self.parse("np.broadcast_to({x}, ({b},))", x=code, b=self.batch_size())
        if val.kind == ARRAY and val.rank is not None:
            return self.parse(
                "np.broadcast_to({x}, ({b}, *{x}.shape))", x=code, b=self.batch_size()
            )
        return self.parse(
            "np.broadcast_to({x}, ({b}, *np.shape({x})))", x=code, b=self.batch_size()
        )

    def materialise(self, code: cst.BaseExpression, val: Val) -> cst.BaseExpression:
        """An unbatched value copied along a new leading batch axis (writable)."""
        if val.kind == SCALAR or (val.kind == ARRAY and val.rank == 0):
            return self.parse("np.full({b}, {x})", x=code, b=self.batch_size())
        if val.kind == ARRAY and val.rank is not None:
            return self.parse("np.repeat({x}[None], {b}, axis=0)", x=code, b=self.batch_size())
        return self.parse(
            "np.repeat(np.asarray({x})[None], {b}, axis=0)", x=code, b=self.batch_size()
        )

    def unsupported(self, message: str, hint: str | None = None) -> UnsupportedError:
        return self.unsupported_at(self.current, message, hint)

    def no_rule(self, message: str, hint: str) -> NoRuleError:
        err = self.unsupported(message, hint)
        return NoRuleError(
            err.reason, filename=err.filename, lineno=err.lineno, source=err.source, hint=hint
        )

    def unsupported_at(
        self, node: cst.CSTNode, message: str, hint: str | None = None
    ) -> UnsupportedError:
        line = self.file_line(node)
        return UnsupportedError(
            message,
            filename=self.source.filename,
            lineno=line,
            source=self.source.line_text(line) if line else None,
            hint=hint,
        )

    def file_line(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        if pos is None:
            pos = self.positions.get(self.current_stmt) if hasattr(self, "current_stmt") else None
        if pos is None:
            return self.source.def_line
        return self.source.line_offset + pos.start.line

    # -------------------------------------------------------------- statements
    def block(self, stmts: Any) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for stmt in stmts:
            out.extend(self.statement(stmt))
            if self.ctl.terminated:
                break  # every lane has returned: the rest is unreachable
        return out

    def function_end(self) -> list[cst.BaseStatement]:
        """After the body: masked returns need the merged ``result`` returned."""
        if self.ctl.result_name is None or self.dry_depth:
            return []
        if self.ctl.terminated:
            if not self.ctl.result_pending:
                return []
            return [cst.SimpleStatementLine([cst.Return(self.result)])]
        raise self.unsupported_at(
            self.node,
            "some examples return a value and others reach the end of the function",
            "end the function with a return for the remaining examples",
        )

    def statement(self, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        if self.dry_depth and isinstance(stmt, (cst.For, cst.While)) and not _has_return(stmt):
            return self.dry_loop_statement(stmt)
        return self.translate_statement(stmt)

    # The control state a loop statement leaves behind, replayed by a memo hit.
    _REPLAYED = (
        "bound",
        "partial",
        "loop_born",
        "temps",
        "terminated",
        "result_set",
        "alive_all",
        "placeholder",
        "init_at_top",
        "result_pending",
    )

    def dry_loop_statement(self, stmt: cst.For | cst.While) -> list[cst.BaseStatement]:
        """A loop met again in a dry run from the same state leaves the same state.

        The loops around it reach it on every pass of their own fixpoints and dry runs;
        replaying its effect keeps translation time linear in the depth of nesting
        (re-translating it made it grow about 5x per level). Loops holding a `return`
        are not replayed: a return changes the enclosing loops and frames."""
        key = (id(stmt), self.analysis_state())
        hit = self.stmt_memo.get(key)
        if hit is not None:
            env, weak, fields, added = hit
            self.env, self.weak = dict(env), set(weak)
            for name, value in fields.items():
                setattr(self.ctl, name, copy.copy(value))
            for frame, names in zip(self.ctl.frames, added):
                frame.assigned |= names
            return []
        before = [set(f.assigned) for f in self.ctl.frames]
        out = self.translate_statement(stmt)
        fields = {name: copy.copy(getattr(self.ctl, name)) for name in self._REPLAYED}
        added = [f.assigned - b for f, b in zip(self.ctl.frames, before)]
        self.stmt_memo[key] = (dict(self.env), set(self.weak), fields, added)
        return out

    def translate_statement(self, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        self.current_stmt = stmt
        self.current = stmt
        self.checked = set()
        self.quiet_statement = False
        marker = self._marker(stmt)
        if isinstance(stmt, cst.SimpleStatementLine):
            out: list[cst.BaseStatement] = []
            smalls: list[cst.BaseSmallStatement] = []
            for small in stmt.body:
                self.current = small
                new = self.small_statement(small)
                smalls.extend(self.pending)
                self.pending = []
                smalls.extend(new)
            for i, small in enumerate(smalls):
                line = cst.SimpleStatementLine(body=[_strip_semicolon(small)])
                if i == 0:
                    line = line.with_changes(leading_lines=stmt.leading_lines)
                if i == len(smalls) - 1:
                    line = line.with_changes(
                        trailing_whitespace=_with_marker(stmt.trailing_whitespace, marker)
                    )
                else:
                    line = line.with_changes(
                        trailing_whitespace=_with_marker(cst.TrailingWhitespace(), marker)
                    )
                out.append(line)
            checks, self.checks = self.checks, []
            out = [*checks, *out]
            if self.quiet_statement and not self.ctl.quiet:
                # `a if c else b` / `and` / `or` computed both sides for every lane.
                out = self.errstate(out)
            return out
        handler = getattr(self, "stmt_" + type(stmt).__name__, None)
        if handler is None:
            raise self.unsupported_at(stmt, f"the statement {type(stmt).__name__} is not supported")
        out = handler(stmt, marker)
        return [_mark_header(s, marker) if type(s) is type(stmt) else s for s in out]

    def _marker(self, stmt: cst.CSTNode) -> str:
        return f"# @astvmap:{self.file_line(stmt)}"

    def emit_pending(self, marker: str) -> list[cst.BaseStatement]:
        checks, self.checks = self.checks, []
        lines = checks + [_marked_line(s, marker) for s in self.pending]
        self.pending = []
        return lines

    def small_statement(self, node: cst.BaseSmallStatement) -> list[cst.BaseSmallStatement]:
        if isinstance(node, cst.Assign):
            return self.assign(node)
        if isinstance(node, cst.AnnAssign):
            if node.value is None:
                return [node]
            return self.assign(
                cst.Assign(targets=[cst.AssignTarget(node.target)], value=node.value)
            )
        if isinstance(node, cst.AugAssign):
            return self.aug_assign(node)
        if isinstance(node, cst.Return):
            return self.return_(node)
        if isinstance(node, cst.Expr):
            if self.mask is not None and isinstance(node.value, cst.Call):
                raise self.unsupported(
                    "a call made for its side effects under a batched condition",
                    "compute the value and select it with np.where",
                )
            code, _ = self.expr(node.value)
            return [node.with_changes(value=code)]
        if isinstance(node, (cst.Break, cst.Continue)) and self.masked_here():
            return self.masked_break(node)
        if isinstance(node, (cst.Break, cst.Continue)) and self.ctl.loops:
            head = self.ctl.loops[-1].head
            if head is not None:
                # Leaving the body early skips the widening at its end (widen_at_end).
                for line in self.widen(self.env, head, self._marker(self.current_stmt)):
                    self.pending.extend(line.body)
        if isinstance(node, (cst.Pass, cst.Break, cst.Continue)):
            return [node]
        if isinstance(node, cst.Assert):
            return [self.assert_statement(node)]
        if isinstance(node, cst.Raise):
            if node.exc is not None:
                _, val = self.expr(node.exc)
                if val.batched:
                    raise self.unsupported("an exception built from batched values")
            if self.mask is not None:
                # Raised if any lane gets here, as the loop raises at the first one.
                self.checks.append(self.when_any(self.mask, [node]))
                self.ctl.terminated = True
                return []
            return [node]
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            self.bind_import(node)
            return [node]
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            raise self.unsupported(
                "global/nonlocal statements are not supported in a vmapped function",
                "return the value instead of writing it to an outer variable",
            )
        if isinstance(node, cst.Del):
            return [node]
        raise self.unsupported(f"the statement {type(node).__name__} is not supported")

    def bind_import(self, node: cst.Import | cst.ImportFrom) -> None:
        # Run in the function's module, so a relative import resolves as it does there.
        fn_globals = self.source.fn.__globals__
        tmp: dict[str, Any] = {
            k: fn_globals[k] for k in ("__name__", "__package__", "__spec__") if k in fn_globals
        }
        try:
            exec(cst.Module(body=[cst.SimpleStatementLine([node])]).code, tmp)  # noqa: S102
        except ImportError as exc:
            raise self.unsupported(
                f"this import fails while transforming ({exc})",
                "import it at module level, or install it",
            ) from None
        for key in ("__name__", "__package__", "__spec__"):
            tmp.pop(key, None)
        for k, v in tmp.items():
            if k != "__builtins__":
                self.env[k] = Val.const(v)

    # assignments ------------------------------------------------------------
    def assign(self, node: cst.Assign) -> list[cst.BaseSmallStatement]:
        code, val = self.expr(node.value)
        if self.mask is not None:
            return self.masked_assign(node, code, val)
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Subscript):
            target, code = self.setitem(node.targets[0].target, val, code)
            return [
                node.with_changes(targets=[node.targets[0].with_changes(target=target)], value=code)
            ]
        if len(node.targets) == 1 and isinstance(node.targets[0].target, (cst.Tuple, cst.List)):
            code, val = self.unpackable(code, val, len(node.targets[0].target.elements))
        targets = []
        for target in node.targets:
            targets.append(target.with_changes(target=self.bind_target(target.target, val)))
            chosen = isinstance(node.value, (cst.IfExp, cst.BooleanOperation)) and not isinstance(
                code, type(node.value)
            )
            if chosen:
                self.note_aliases(target.target, node.value)
            elif isinstance(target.target, cst.Name):
                self.aliases.pop(target.target.value, None)
        return [node.with_changes(targets=targets, value=code)]

    def masked_assign(
        self, node: cst.Assign, code: cst.BaseExpression, val: Val
    ) -> list[cst.BaseSmallStatement]:
        """An assignment that only some lanes execute (see control.py)."""
        if len(node.targets) != 1:
            raise self.unsupported("chained assignment under a batched condition")
        target = node.targets[0].target
        if isinstance(target, cst.Name):
            new, new_val = self.masked_name(target.value, code, val)
            self.env[target.value] = new_val
            self.weak.discard(target.value)
            if new is not code:
                self.note_aliases(target, node.value)
            return [node.with_changes(value=new)]
        if isinstance(target, cst.Subscript):
            with self.dry():
                _, region = self.expr(target)
            new_target, code = self.setitem(target, val, code)
            rank = region.rank
            kept = (new_target, Val(ARRAY, batched=True, rank=rank))
            new, _ = self.where(self.mask, (code, dataclasses.replace(val, rank=rank)), kept)
            return [
                node.with_changes(
                    targets=[node.targets[0].with_changes(target=new_target)], value=new
                )
            ]
        if (
            isinstance(target, (cst.Tuple, cst.List))
            and isinstance(code, (cst.Tuple, cst.List))
            and len(target.elements) == len(code.elements)
            and all(isinstance(e.value, cst.Name) for e in target.elements)
        ):
            # a, b = b, a + b: every right-hand side is computed before any binding.
            pairs = [
                (e.value.value, c.value, _element_val(val, i))
                for i, (e, c) in enumerate(zip(target.elements, code.elements))
            ]
            merged = [self.masked_name(name, c, v) for name, c, v in pairs]
            for (name, _, _), (_, v) in zip(pairs, merged):
                self.env[name] = v
                self.weak.discard(name)
            value = code.with_changes(
                elements=[e.with_changes(value=m) for e, (m, _) in zip(code.elements, merged)]
            )
            return [node.with_changes(value=value)]
        raise self.unsupported(
            "this assignment under a batched condition",
            "assign names or items one at a time",
        )

    def unpackable(
        self, code: cst.BaseExpression, val: Val, n: int
    ) -> tuple[cst.BaseExpression, Val]:
        """Unpacking a batched array iterates its first per-example axis."""
        if val.kind == ARRAY and val.batched:
            if not val.rank:
                raise self.unsupported("cannot unpack a batched scalar")
            elem = Val.array(val.rank - 1, True)
            return self.parse("np.moveaxis({x}, 1, 0)", x=code), Val(
                TREE, batched=True, children=tuple((i, elem) for i in range(n)), container=tuple
            )
        return code, val

    def bind_target(
        self, target: cst.BaseAssignTargetExpression, val: Val
    ) -> cst.BaseAssignTargetExpression:
        if isinstance(target, cst.Name):
            self.env[target.value] = val
            self.weak.discard(target.value)
            self.unmasked_bind(target.value)
            self.ctl.bound.add(target.value)
            return target
        if isinstance(target, (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in target.elements):
                if val.batched:
                    raise self.unsupported("starred unpacking of batched values")
                for e in target.elements:
                    self._bind_unknown(e.value)
                return target
            elems = []
            for i, elem in enumerate(target.elements):
                elems.append(
                    elem.with_changes(value=self.bind_target(elem.value, _element_val(val, i)))
                )
            return target.with_changes(elements=elems)
        if isinstance(target, cst.Subscript):
            raise self.unsupported(
                "item assignment inside an unpacking target", "assign the item on its own line"
            )
        if isinstance(target, cst.Attribute):
            obj_code, _ = self.expr(target.value)
            if val.batched:
                raise self.unsupported(
                    "assigning a batched value to an attribute would leak it out of the function",
                    "return the value instead",
                )
            return target.with_changes(value=obj_code)
        raise self.unsupported(f"cannot assign to {type(target).__name__}")

    def _bind_unknown(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.env[target.value] = Val(OBJECT)

    def setitem(
        self, target: cst.Subscript, val: Val, code: cst.BaseExpression
    ) -> tuple[cst.Subscript, cst.BaseExpression]:
        """``buf[index] = value``; a batched index makes it a scatter."""
        buf_code, buf = self.expr(target.value)
        if buf.kind == TREE:
            self.set_container_item(target, buf, val)
            return target.with_changes(value=buf_code), code
        elems = indexing.classify(self, target, buf)
        index_batched = any(e.batched for e in elems)
        if isinstance(target.value, cst.Name):
            self.note_write(target.value.value)
        if not buf.batched and not val.batched and not index_batched and self.mask is None:
            return target.with_changes(value=buf_code, slice=[e.element for e in elems]), code
        if not buf.batched:
            # The buffer becomes batched: a private writable copy per example.
            name = self.grow_buffer(target.value, buf_code, buf)
            code = self.before_growing(name, code)
            elems = self.index_before_growing(name, elems)
            self.pending.append(
                cst.Assign([cst.AssignTarget(cst.Name(name))], self.materialise(buf_code, buf))
            )
            buf = buf.with_batched(True)
            self.env[name] = buf
            buf_code = cst.Name(name)
        new_target, region_rank = indexing.scatter_target(self, target, buf_code, buf, elems)
        if val.batched:
            if region_rank is None or val.rank is None:
                raise self.unsupported("cannot infer the rank of the assigned region")
            if val.rank > region_rank:
                raise self.unsupported("the assigned value has more axes than the region")
            code = self.expand(code, region_rank - val.rank)
        return new_target, code

    def note_write(self, name: str) -> None:
        """``name`` is written in place; refused where it is another name in some examples."""
        self.written.add(name)
        for alias, roots in self.aliases.items():
            if name == alias or name in roots:
                other = sorted(roots)[0] if name == alias else alias
                raise self.unsupported(
                    f"`{alias}` is `{sorted(roots)[0]}` in some examples only (chosen by a "
                    f"batched condition), and `{name}` is written in place here: `{other}` "
                    "would not see the write in those examples",
                    f"make `{alias}` a copy (`.copy()`), or write through one name only",
                )

    def note_aliases(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """``target`` is bound to ``value`` through a batched choice (a copy per lane)."""
        if not isinstance(target, cst.Name):
            return
        roots = _select_roots(value) & (self.local_names - {target.value})
        if roots:
            self.aliases[target.value] = roots
        else:
            self.aliases.pop(target.value, None)

    def grow_buffer(self, node: cst.BaseExpression, code: cst.BaseExpression, buf: Val) -> str:
        """Check that the unbatched array ``node`` may get its batch axis by a write into
        it (the caller then emits the copy): its name, or a refusal saying why not."""
        if not isinstance(node, cst.Name) or buf.sample is not NOVALUE:
            raise self.unsupported(
                "writing a batched value into an array that comes from outside the function",
                "copy it first (buf = buf.copy()) or build a new array",
            )
        name = node.value
        view = _view_of(self.node, name, set(self.params))
        if view is not None:
            raise self.unsupported(
                f"`{view}` and `{name}` may share memory (one is a view of the other), "
                f"and `{name}` needs a copy with a batch axis here: `{view}` would not "
                "see this write",
                "make the view a copy (`... .copy()`) or write through one name only",
            )
        self.grown.add(name)
        return name

    def set_container_item(self, target: cst.Subscript, buf: Val, val: Val) -> None:
        """``d[key] = value`` into a tuple/list/dict: the container's abstract value follows.

        Under a batched condition the item becomes ``np.where(mask, value, old)`` (the
        caller writes that code), so it is batched from here on. An item whose key is not
        known while transforming may be any item: allowed only when every item already
        has the value's abstract value, so that nothing known about the container changes.
        """
        key = self.static_key(target)
        name = target.value.value if isinstance(target.value, cst.Name) else None
        if key is NOVALUE or name is None or self.env.get(name) is not buf:
            same = all(_val_key(v) == _val_key(val) for _, v in buf.children)
            if buf.element is not None:
                same = _val_key(buf.element) == _val_key(val)
            if self.mask is None and same:
                return
            if buf.batched or val.batched or self.mask is not None:
                raise self.unsupported(
                    "item assignment into a container holding batched values, at a key that "
                    "is not known while transforming",
                    "use a literal key, or build a new container",
                )
            if name is not None:
                self.env[name] = Val(OBJECT)  # nothing is known of its items any more
            return
        old = buf.child(key)
        if self.mask is not None:
            if old is None:
                raise self.unsupported("adding an item to a container under a batched condition")
            if not (old.is_arraylike and val.is_arraylike):
                raise self.unsupported("replacing a container item under a batched condition")
            val = join(old, val).with_batched(True)
        kids = [(k, val if k == key else v) for k, v in buf.children]
        if old is None:
            if buf.container is not dict:
                raise self.unsupported("assigning past the end of a list")
            kids.append((key, val))
        self.env[name] = dataclasses.replace(Val.tree(buf.container or tuple, kids), origin=None)

    def static_key(self, target: cst.Subscript) -> Any:
        """The key of ``c[key]`` when it is known while transforming (else NOVALUE)."""
        if len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
            return NOVALUE
        with self.dry():
            _, kval = self.expr(target.slice[0].slice.value)
        return kval.static if kval.is_static else NOVALUE

    def aug_assign(self, node: cst.AugAssign) -> list[cst.BaseSmallStatement]:
        op = type(node.operator)
        binop = cst.BinaryOperation(left=node.target, operator=_BINOP_FOR_AUG[op](), right=node.value)  # type: ignore[arg-type]
        if self.mask is not None:
            self.grow_before_masked_update(node.target)
            in_place = self.masked_in_place(node, binop)
            if in_place is not None:
                return in_place
            # Under a mask the update is a masked rebinding (or masked item write).
            return self.assign(cst.Assign([cst.AssignTarget(node.target)], binop))
        if isinstance(node.target, cst.Name):
            name = node.target.value
            before = self.env.get(name)
            code, val = self.expr(binop)
            assert isinstance(code, cst.BinaryOperation)
            in_place = (
                before is not None
                and name not in self.weak
                and before.kind != SCALAR
                and before.rank != 0
            )
            # Per example a rank-0 value is a NumPy scalar: `+=` rebinds it, as for
            # Python numbers; arrays of higher rank are updated in place.
            if in_place:
                self.note_write(name)
            if in_place and (before.batched or not val.batched):
                self.env[name] = (
                    dataclasses.replace(val, kind=before.kind) if before.kind == ARRAY else val
                )
                return [node.with_changes(value=code.right, target=code.left)]
            if in_place and before.kind == ARRAY:
                # An unbatched array updated in place by a batched value: give the
                # buffer its batch axis first, so the update keeps its dtype (and fails
                # on an unsafe cast) as the loop's in-place update does.
                self.grow_buffer(node.target, node.target, before)
                self.env[name] = dataclasses.replace(before, batched=True)
                value = self.before_growing(name, code.right)
                grown = cst.Assign(
                    [cst.AssignTarget(cst.Name(name))],
                    self.parse("{x}.copy()", x=self.broadcast(cst.Name(name), before)),
                )
                return [grown, node.with_changes(value=value, target=code.left)]
            # A Python scalar, or a rank-0 value growing a batch axis: rebind.
            self.env[name] = val
            return [cst.Assign([cst.AssignTarget(cst.Name(name))], code)]
        if isinstance(node.target, cst.Subscript):
            with self.dry():
                _, region = self.expr(node.target)
                _, rhs0 = self.expr(node.value)
            order = "biufc"
            widening = region.dtype is None or (
                region.dtype in ("b", "i", "u", "f")
                and rhs0.dtype != region.dtype
                and (rhs0.dtype is None or order.index(rhs0.dtype) > order.index(region.dtype))
            )
            if region.rank == 0 and region.kind in (ARRAY, SCALAR) and widening:
                # Per example `b[1]` is a NumPy scalar: `b[1] += v` computes
                # `b[1] + v` and assigns it (an unsafe cast included), not in place;
                # only a value of a wider kind (or dtypes not known) makes the difference.
                return self.assign(cst.Assign([cst.AssignTarget(node.target)], binop))
            with self.dry():
                _, buf = self.expr(node.target.value)
                elems = indexing.classify(self, node.target, buf)
                _, rhs = self.expr(node.value)
            if buf.batched or rhs.batched or any(e.batched for e in elems):
                # Each example owns its row (np.arange(B)), so repeated indices within
                # an example behave as in the loop (buffered, like buf[i] = buf[i] + v).
                rhs_code, rhs = self.expr(node.value)
                target, rhs_code = self.setitem(node.target, rhs, rhs_code)
                return [node.with_changes(target=target, value=rhs_code)]
            buf_code, buf = self.expr(node.target.value)
            elems = indexing.classify(self, node.target, buf)
            rhs_code, _ = self.expr(node.value)
            target = node.target.with_changes(value=buf_code, slice=[e.element for e in elems])
            return [node.with_changes(target=target, value=rhs_code)]
        code, val = self.expr(node.value)
        if val.batched:
            raise self.unsupported("augmented assignment of a batched value to an attribute")
        return [node.with_changes(value=code)]

    def before_growing(self, name: str, code: cst.BaseExpression) -> cst.BaseExpression:
        """``code``, computed into a temporary first where it reads ``name``, which
        is about to be rebound to a copy with a batch axis."""
        if name not in set(_walk_names(code)):
            return code
        tmp = self.temp("value")
        self.pending.append(cst.Assign([cst.AssignTarget(cst.Name(tmp))], code))
        return cst.Name(tmp)

    def index_before_growing(self, name: str, elems: list[indexing.Elem]) -> list[indexing.Elem]:
        """Index elements that read ``name`` (``buf[buf[1].astype(int)] = x``) read the
        buffer as it was before it got its batch axis, as the loop's index does."""
        if not any(name in set(_walk_names(e.element)) for e in elems):
            return elems
        before = self.temp(f"{name}_before")
        self.pending.append(cst.Assign([cst.AssignTarget(cst.Name(before))], cst.Name(name)))
        return [dataclasses.replace(e, element=_rename(e.element, name, before)) for e in elems]

    def grow_before_masked_update(self, target: cst.BaseExpression) -> None:
        """``buf += v`` under a batched condition updates ``buf`` in place, in some lanes:
        an unbatched array gets its batch axis first (in every lane, whichever run the
        update), so the update stays in place and reaches a caller that passed it."""
        if not isinstance(target, cst.Name):
            return
        name = target.value
        before = self.env.get(name)
        if (
            before is None
            or before.kind != ARRAY
            or before.batched
            or before.rank in (None, 0)
            or name in self.weak
            or name not in self.ctl.bound
        ):
            return
        self.grow_buffer(target, target, before)
        grown = cst.Assign([cst.AssignTarget(target)], self.materialise(target, before))
        self.checks.append(_marked_line(grown, self._marker(self.current_stmt)))
        self.env[name] = before.with_batched(True)

    def masked_in_place(
        self, node: cst.AugAssign, binop: cst.BinaryOperation
    ) -> list[cst.BaseSmallStatement] | None:
        """``x -= v`` on a batched array under a mask: updated in place in the
        masked lanes (``np.copyto``), as the loop updates it in place. Other names
        bound to the same array (a ``for`` over it, a view) see the update;
        ``same_kind`` casting raises where the loop's in-place update would."""
        if not isinstance(node.target, cst.Name):
            return None
        name = node.target.value
        before = self.env.get(name)
        if (
            before is None
            or before.kind != ARRAY
            or not before.batched
            or before.rank in (None, 0)
            or name in self.weak
            or name not in self.ctl.bound
        ):
            return None
        mask = self.mask
        assert mask is not None
        self.note_write(name)
        code, _ = self.expr(binop)
        call = self.parse(
            'np.copyto({x}, {v}, where={m}, casting="same_kind")',
            x=cst.Name(name),
            v=code,
            m=self.expand(mask, before.rank),
        )
        line = self.current_stmt
        if not (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1):
            return [cst.Expr(call)]
        # Only if some lane updates: the cast check does not look at the mask.
        self.checks.append(self.when_any(mask, [*self.pending, cst.Expr(call)]))
        self.pending = []
        return []

    def when_any(self, mask: cst.BaseExpression, body: list[cst.BaseSmallStatement]) -> cst.If:
        """``if np.any(mask): body``, its lines mapped to the current statement."""
        marker = self._marker(self.current_stmt)
        return cst.If(
            test=self.parse("np.any({m})", m=mask),
            body=cst.IndentedBlock([_marked_line(s, marker) for s in body]),
        )

    def assert_statement(self, node: cst.Assert) -> cst.BaseSmallStatement:
        code, val = self.expr(node.test)
        if self.mask is not None:
            # Only the lanes that reach the assert are checked.
            code = self.parse("np.all(~{m} | ({c}))", m=self.mask, c=self.truth(code, val))
            return node.with_changes(test=code)
        if val.batched:
            # The loop fails if any example fails; so does the batch.
            return node.with_changes(test=self.parse("np.all({c})", c=code))
        return node.with_changes(test=code)

    def return_(self, node: cst.Return) -> list[cst.BaseSmallStatement]:
        if node.value is None:
            if self.mask is not None:
                raise self.unsupported("a bare `return` under a batched condition")
            self.returns.append(Val(NONE, static=None))
            return [node]
        code, val = self.expr(node.value)
        # A return that only some lanes take makes the result differ per lane.
        self.returns.append(val if self.mask is None else _as_batched(val))
        raw = (code, val)
        if self.return_val is not None and not self.dry_depth:
            code = self.conform(code, val, self.return_val)
            val = self.return_val
        if self.mask is None:
            return [node.with_changes(value=code)]
        if len(self.ctl.frames) == 1 and self.ctl.frames[0].kind == "func":
            # Every lane still running returns here.
            self.ctl.terminated = True
            self.ctl.result_pending = False
            return [node.with_changes(value=self.final_return(code, val))]
        for loop in self.ctl.loops:
            loop.masked_return = True
        sequence = (
            self.return_val is not None
            and self.return_val.kind == TREE
            and self.return_val.container in (tuple, list)
            and self.return_val.element is None
            # In a loop or under a plain `if`, `result` starts as a placeholder
            # scalar that a tuple cannot be merged into.
            and not (self.ctl.placeholder or self.ctl.init_at_top or self.ctl.plain_depth)
        )
        if (
            self.return_val is not None
            and self.return_val.kind not in (ARRAY, SCALAR)
            and not sequence
        ):
            raise self.unsupported(
                "returning a tuple or container under a batched condition",
                "return arrays, or stack the values into one array",
            )
        return self.masked_return(code, val, raw)

    def conform(self, code: cst.BaseExpression, val: Val, target: Val) -> cst.BaseExpression:
        """Make ``code`` (with value ``val``) batched wherever ``target`` is."""
        if not target.batched or val.batched == target.batched and val.kind != TREE:
            return code
        if val.kind == TREE and target.kind == TREE and isinstance(code, (cst.Tuple, cst.List)):
            elems = [
                e.with_changes(
                    value=self.conform(e.value, _element_val(val, i), _element_val(target, i))
                )
                for i, e in enumerate(code.elements)
            ]
            return code.with_changes(elements=elems)
        if val.kind == TREE:
            if val.batched == target.batched:
                return code
            raise self.unsupported("returns differ in which parts are batched")
        if not val.batched:
            return self.materialise(code, val)
        return code

    # compound statements -----------------------------------------------------
    def stmt_If(self, node: cst.If, marker: str) -> list[cst.BaseStatement]:
        self.current = node
        test_code, test = self.expr(node.test)
        pre = self.emit_pending(marker)
        if test.batched:
            return [*pre, *self.masked_if(node, test_code, test)]
        if test.is_static and not isinstance(test.static, np.ndarray):
            # Known while transforming (x.ndim == 2, a flag): only the taken branch exists.
            if test.static:
                return [*pre, *self.block(node.body.body)]
            if node.orelse is None:
                return pre
            if isinstance(node.orelse, cst.If):
                return [*pre, *self.stmt_If(node.orelse, self._marker(node.orelse))]
            return [*pre, *self.block(node.orelse.body.body)]
        before = dict(self.env)
        bound_before = set(self.ctl.bound)
        self.ctl.plain_depth += 1
        body = self.block(node.body.body)
        then_done, self.ctl.terminated = self.ctl.terminated, False
        bound_then, self.ctl.bound = self.ctl.bound, set(bound_before)
        env_then = self.env
        self.env = dict(before)
        if node.orelse is not None:
            if isinstance(node.orelse, cst.If):
                orelse_stmts = self.stmt_If(node.orelse, self._marker(node.orelse))
                else_block: list[cst.BaseStatement] | cst.If = orelse_stmts
            else:
                else_block = self.block(node.orelse.body.body)
        else:
            else_block = []
        env_else = self.env
        self.ctl.plain_depth -= 1
        self.ctl.bound = bound_then & self.ctl.bound  # only one branch runs
        self.ctl.terminated = then_done and self.ctl.terminated and node.orelse is not None
        merged = _join_envs(env_then, env_else)
        body += self.widen(env_then, merged, marker)
        if isinstance(else_block, list):
            else_block += self.widen(env_else, merged, marker)
        self.env = merged
        new = node.with_changes(test=test_code, body=node.body.with_changes(body=body))
        if node.orelse is None:
            if else_block:
                new = new.with_changes(orelse=cst.Else(body=cst.IndentedBlock(else_block)))
        elif isinstance(node.orelse, cst.If):
            if len(else_block) == 1 and isinstance(else_block[0], cst.If):
                new = new.with_changes(orelse=else_block[0])
            else:
                new = new.with_changes(orelse=cst.Else(body=cst.IndentedBlock(else_block)))
        else:
            new = new.with_changes(
                orelse=node.orelse.with_changes(body=node.orelse.body.with_changes(body=else_block))
            )
        return [*pre, new]

    def widen(
        self, env: dict[str, Val], merged: dict[str, Val], marker: str
    ) -> list[cst.BaseStatement]:
        """Statements that make names batched where the merged environment says so."""
        out: list[cst.BaseStatement] = []
        for name in _widened_names(env, merged):
            val = env[name]
            stmt = cst.Assign(
                [cst.AssignTarget(cst.Name(name))], self.materialise(cst.Name(name), val)
            )
            out.append(_marked_line(stmt, marker))
            if val.kind == SCALAR:
                self.weak.add(name)
        return out

    def loop_fixpoint(self, run_body: Any, loop: cst.CSTNode) -> dict[str, Val]:
        """The environment at the loop head, joined over all iterations.

        Memoised on the loop, the body's kind and the state it starts from: an inner
        loop is reached again on every pass over the loops around it, and without the
        memo translation time grew about 5x per level of nesting."""
        key = (id(loop), run_body.__code__, self.analysis_state())
        if key in self.loop_memo:
            return dict(self.loop_memo[key])
        head = self.fixpoint(run_body, loop)
        self.loop_memo[key] = dict(head)
        return head

    def analysis_state(self) -> tuple:
        """What translating a statement in a dry run depends on, as a hashable key."""
        ctl = self.ctl
        return (
            tuple(self.env.items()),
            # Mask names are left out: a dry run's effect on values does not depend on
            # which variable holds a mask.
            tuple((f.kind, f.entry, f.maybe) for f in ctl.frames),
            frozenset(ctl.bound),
            frozenset(ctl.partial),
            frozenset(ctl.loop_born),
            frozenset(self.weak),
            (ctl.result_set, ctl.alive_all, ctl.plain_depth, len(ctl.loops), self.mask is None),
        )

    def fixpoint(self, run_body: Any, loop: cst.CSTNode) -> dict[str, Val]:
        head = dict(self.env)
        for _ in range(20):
            self.env = dict(head)
            with self.dry():
                run_body()
            self.check_ranks_settle(head, self.env, loop)
            new_head = _join_envs(head, self.env)
            if new_head == head:
                return head
            head = new_head
        raise self.unsupported("the batching of this loop's variables does not settle")

    def check_ranks_settle(
        self, head: dict[str, Val], after: dict[str, Val], loop: cst.CSTNode
    ) -> None:
        """A name whose per-example rank changes across an iteration has no one layout."""
        for name, before in head.items():
            now = after.get(name)
            if (
                now is not None
                and before.is_arraylike
                and now.is_arraylike
                and (before.batched or now.batched)
                and None not in (before.rank, now.rank)
                and before.rank != now.rank
            ):
                raise self.unsupported_at(
                    loop,
                    f"`{name}` changes per-example rank inside this loop "
                    f"({before.rank} on entry, {now.rank} after an iteration)",
                    f"give `{name}` its final shape before the loop (e.g. np.zeros(...))",
                )

    def stmt_For(self, node: cst.For, marker: str) -> list[cst.BaseStatement]:
        self.current = node
        if node.asynchronous is not None:
            raise self.unsupported_at(node, "async for is not supported")
        bound = self.batched_range_bound(node)
        if bound is not None:
            return self.for_batched_range(node, bound, marker)
        iter_code, it = self.expr(node.iter)
        pre = self.emit_pending(marker)
        if it.batched and it.kind != TREE:
            if it.kind == ARRAY and it.rank:
                iter_code = self.parse("np.moveaxis({x}, 1, 0)", x=iter_code)
                elem = Val.array(it.rank - 1, True)
            else:
                raise self.unsupported_at(
                    node,
                    "a `for` loop over a batched value of unknown structure",
                    "loop over range(len(...)) of an array instead",
                )
        else:
            elem = _iter_element(it)
        if self.mask is not None:
            self.check_loop_target(node)

        def run_body(info: LoopInfo | None = None) -> None:
            self.bind_target(node.target, elem)
            self.loop_block(node.body.body, info)

        info = self.loop_info(run_body, node)
        if info.masked_break or info.masked_continue:
            if set(_walk_names(node.iter)) & set(_walk_names(node.body)):
                # Evaluated once, before the loop, from the values as they were: the
                # loop may give the names it reads a batch axis before its header.
                name = self.temp("iterable")
                pre.append(_line(cst.Assign([cst.AssignTarget(cst.Name(name))], iter_code)))
                iter_code = cst.Name(name)

            def header(loop: cst.For, body: list[cst.BaseStatement], _: str) -> cst.BaseStatement:
                return loop.with_changes(iter=iter_code, body=loop.body.with_changes(body=body))

            out = self.masked_loop(
                node,
                info,
                marker,
                lambda: self.bind_target(node.target, elem),
                header,
                compactable=not it.batched,
                target=node.target.value if isinstance(node.target, cst.Name) else None,
            )
            return [*pre, *out]
        pre += self.prepare_loop_returns(info)
        entry = dict(self.env)
        head = self.loop_fixpoint(run_body, node)
        self.env = dict(entry)
        widened = self.widen(entry, head, marker)
        if widened and set(_walk_names(node.iter)) & set(_widened_names(entry, head)):
            # The iterable is evaluated once, before the loop: from the values as
            # they were, not from the copies with a batch axis made for the loop.
            name = self.temp("iterable")
            pre.append(_line(cst.Assign([cst.AssignTarget(cst.Name(name))], iter_code)))
            iter_code = cst.Name(name)
        pre += widened
        self.env = dict(head)
        self.bind_target(node.target, elem)
        body = self.loop_block(node.body.body, head=head, before=frozenset(entry))
        body += self.widen_at_end(node, head, marker)
        self.ctl.terminated = False  # the loop may run zero times
        self.env = _join_envs(head, self.env)
        orelse = node.orelse
        if orelse is not None:
            orelse = orelse.with_changes(
                body=orelse.body.with_changes(body=self.block(orelse.body.body))
            )
            self.ctl.terminated = False
        return [
            *pre,
            node.with_changes(
                iter=iter_code, body=node.body.with_changes(body=body), orelse=orelse
            ),
        ]

    def widen_at_end(
        self, node: cst.For | cst.While, head: dict[str, Val], marker: str
    ) -> list[cst.BaseStatement]:
        """A name the loop head has batched but the body rebinds unbatched gets its
        batch axis back before the next iteration reads it (a break or continue
        does the same before it leaves: see small_statement)."""
        return self.widen(self.env, head, marker)

    def check_loop_target(self, node: cst.For) -> None:
        """A plain loop under a batched branch rebinds its target in every lane."""
        entry = self.ctl.frames[-1].entry
        for name in _target_names(node.target):
            if name in entry:
                raise self.unsupported_at(
                    node,
                    f"the loop variable `{name}` reuses a name bound before the batched branch",
                    "give the loop variable a new name",
                )

    def mark_loop_target(self, node: cst.For, keep: str | None = None) -> None:
        """After a loop whose lanes stop at different times, its target differs per
        lane: unreadable, except ``keep``, which holds each lane's last value."""
        for name in _target_names(node.target):
            if name != keep:
                self.ctl.loop_born[name] = self.file_line(node)

    def batched_range_bound(self, node: cst.For) -> tuple[cst.BaseExpression, Val] | None:
        """``n`` in ``for i in range(n)`` when ``n`` is batched."""
        call = node.iter
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name)):
            return None
        if call.func.value != "range" or call.func.value in self.env:
            return None
        with self.dry():
            vals = [self.expr(a.value)[1] for a in call.args]
        if not any(v.batched for v in vals):
            return None
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            raise self.unsupported_at(
                node,
                "range() with a batched start or step",
                "loop over range(stop) and offset the index",
            )
        if not isinstance(node.target, cst.Name):
            raise self.unsupported_at(node, "unpacking the index of a batched range")
        code, val = self.expr(call.args[0].value)
        if val.rank != 0 or val.dtype not in ("i", "u", None):
            raise self.unsupported_at(node, "range() of a batched value that is not an integer")
        return code, val

    def for_batched_range(
        self, node: cst.For, bound: tuple[cst.BaseExpression, Val], marker: str
    ) -> list[cst.BaseStatement]:
        """``for i in range(n)``, batched ``n``: loop to the largest, mask the rest."""
        n_code, n_val = bound
        pre = self.emit_pending(marker)
        target = node.target
        assert isinstance(target, cst.Name)
        if self.mask is not None:
            self.check_loop_target(node)
        if not isinstance(n_code, cst.Name):
            # Evaluated once, as range() evaluates its argument once.
            name = self.temp("stop")
            pre.append(_line(cst.Assign([cst.AssignTarget(cst.Name(name))], n_code)))
            self.env[name] = n_val
            self.ctl.bound.add(name)
            n_code = cst.Name(name)

        def bind() -> None:
            self.bind_target(target, Val(SCALAR, rank=0, dtype="i"))

        def run_body(info: LoopInfo) -> None:
            bind()
            self.loop_block(node.body.body, info)

        info = self.loop_info(run_body, node)

        def header(loop: cst.For, body: list[cst.BaseStatement], _: str) -> cst.BaseStatement:
            stop = self.parse("range(np.max({n}, initial=0))", n=n_code)
            return loop.with_changes(iter=stop, body=loop.body.with_changes(body=body))

        out = self.masked_loop(
            node,
            info,
            marker,
            bind,
            header,
            bound=lambda: self.parse("{i} < {n}", i=target, n=n_code),
            target=target.value,
        )
        return [*pre, *out]

    def stmt_While(self, node: cst.While, marker: str) -> list[cst.BaseStatement]:
        self.current = node

        def run_body(info: LoopInfo) -> None:
            _, test = self.expr(node.test)
            info.batched_test |= test.batched
            self.loop_block(node.body.body, info)

        info = self.loop_info(run_body, node)
        if info.batched_test or info.masked_break or info.masked_continue or info.masked_return:
            # Lanes leave at different times; masking can make the test batched too.

            def test() -> cst.BaseExpression:
                self.current = node  # errors about the condition name the `while` line
                code, val = self.expr(node.test)
                test.batched = val.batched  # type: ignore[attr-defined]
                if val.batched:
                    return self.truth(code, val)
                return code if val.dtype == "b" else self.parse("bool({c})", c=code)

            def header(
                loop: cst.While, body: list[cst.BaseStatement], active: str
            ) -> cst.BaseStatement:
                return loop.with_changes(
                    test=self.parse("np.any({a})", a=cst.Name(active)),
                    body=loop.body.with_changes(body=body),
                )

            return self.masked_loop(node, info, marker, lambda: None, header, test=test)
        pre = self.prepare_loop_returns(info)
        entry = dict(self.env)

        def plain_body() -> None:
            self.expr(node.test)
            self.loop_block(node.body.body)

        head = self.loop_fixpoint(plain_body, node)
        self.env = dict(entry)
        pre += self.widen(entry, head, marker)
        self.env = dict(head)
        test_code, _ = self.expr(node.test)
        if self.pending:
            raise self.unsupported_at(node, "this `while` condition needs temporaries")
        body = self.loop_block(node.body.body, head=head, before=frozenset(entry))
        body += self.widen_at_end(node, head, marker)
        self.ctl.terminated = False  # the loop may run zero times
        self.env = _join_envs(head, self.env)
        return [*pre, node.with_changes(test=test_code, body=node.body.with_changes(body=body))]

    def stmt_With(self, node: cst.With, marker: str) -> list[cst.BaseStatement]:
        items = []
        for item in node.items:
            code, val = self.expr(item.item)
            if val.batched:
                raise self.unsupported_at(node, "a `with` over a batched value")
            if item.asname is not None:
                self._bind_unknown(item.asname.name)
            items.append(item.with_changes(item=code))
        pre = self.emit_pending(marker)
        body = self.block(node.body.body)
        return [*pre, node.with_changes(items=items, body=node.body.with_changes(body=body))]

    def stmt_Try(self, node: cst.Try, marker: str) -> list[cst.BaseStatement]:
        """A ``try`` whose body computes nothing from batched values is plain Python: it
        raises (or not) for every example alike, so its handlers run as in the loop. One
        whose body computes with batched values could raise in some examples only, and
        an ``except`` clause cannot be split by example: that function runs per example
        (a declared fallback, with a PerformanceWarning)."""
        self.current = node
        if self.mask is not None:
            raise self.no_rule(
                "a `try` statement under a batched condition",
                "move the `try` out of the condition",
            )
        saw, self.saw_batched = self.saw_batched, False
        before, bound_before = dict(self.env), set(self.ctl.bound)
        self.ctl.plain_depth += 1
        body = self.block(node.body.body)
        if node.orelse is not None:
            body_else = self.block(node.orelse.body.body)
        if self.saw_batched:
            raise self.no_rule(
                "a `try` whose body computes with batched values (the `except` clause "
                "cannot tell which examples raised)",
                "compute outside the `try`, or test the condition that raises instead",
            )
        self.saw_batched = saw
        envs, bounds = [self.env], [self.ctl.bound]
        handlers = []
        for handler in node.handlers:
            # The body may have stopped anywhere: a handler starts from what any prefix of
            # it could have bound (the join of the environments before and after).
            self.env, self.ctl.bound = _join_envs(before, envs[0]), set(bound_before)
            if handler.name is not None:
                self.bind_target(handler.name.name, Val(OBJECT))
            handlers.append(
                handler.with_changes(
                    body=handler.body.with_changes(body=self.block(handler.body.body))
                )
            )
            envs.append(self.env)
            bounds.append(self.ctl.bound)
        self.ctl.plain_depth -= 1
        merged = envs[0]
        for env in envs[1:]:
            merged = _join_envs(merged, env)
        self.ctl.bound = set.intersection(*bounds)
        self.ctl.terminated = False
        for env, handler_or_body in zip(envs, [None, *range(len(handlers))]):
            widened = self.widen(env, merged, marker)
            if not widened:
                continue
            if handler_or_body is None:
                raise self.unsupported_at(
                    node, "a name the `except` clause makes batched, bound in the `try` body"
                )
            h = handlers[handler_or_body]
            handlers[handler_or_body] = h.with_changes(
                body=h.body.with_changes(body=[*h.body.body, *widened])
            )
        self.env = merged
        new = node.with_changes(body=node.body.with_changes(body=body), handlers=handlers)
        if node.orelse is not None:
            new = new.with_changes(
                orelse=node.orelse.with_changes(body=node.orelse.body.with_changes(body=body_else))
            )
        if node.finalbody is not None:
            final = self.block(node.finalbody.body.body)
            new = new.with_changes(
                finalbody=node.finalbody.with_changes(
                    body=node.finalbody.body.with_changes(body=final)
                )
            )
        return [new]

    def stmt_FunctionDef(self, node: cst.FunctionDef, marker: str) -> list[cst.BaseStatement]:
        # A nested def is kept as written; calling it with batched values is refused
        # at the call (it is not found through the function's namespace).
        self.env[node.name.value] = Val(OBJECT, static=_LocalDef(node))
        return [node]

    # ------------------------------------------------------------- expressions
    def expr(self, node: cst.BaseExpression) -> tuple[cst.BaseExpression, Val]:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.unsupported(f"the expression {type(node).__name__} is not supported")
        code, val = method(node)
        if val.batched:
            self.saw_batched = True
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
        elems, kids = [], []
        for i, e in enumerate(node.elements):
            if isinstance(e, cst.StarredElement):
                code, val = self.expr(e.value)
                if val.batched:
                    raise self.unsupported("starred batched values in a literal")
                elems.append(e.with_changes(value=code))
                if kids is not None and val.kind == TREE and val.children and val.element is None:
                    kids.extend((len(kids), v) for _, v in val.children)  # (2, *x.shape)
                else:
                    kids = None  # unknown length
                continue
            code, val = self.expr(e.value)
            elems.append(e.with_changes(value=code))
            if kids is not None:
                kids.append((i, val))
        container = tuple if isinstance(node, cst.Tuple) else list
        if kids is None:
            return node.with_changes(elements=elems), Val(TREE, container=container)
        return node.with_changes(elements=elems), Val.tree(container, kids)

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
        base_code, base = self.expr(node.value)
        return self.attribute(node, base_code, base)

    def attribute(
        self, node: cst.Attribute, base_code: cst.BaseExpression, base: Val
    ) -> tuple[cst.BaseExpression, Val]:
        attr = node.attr.value
        new = node.with_changes(value=base_code)
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
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            if base.batched:
                raise self.unsupported("slicing a batched container")
            if any(self.expr(part)[1].batched for part in _slice_parts(node)):
                # `np.r_[[a], [b]]`, `obj[x:y]`: an object's __getitem__ would get the
                # batch as one example.
                raise self.no_rule(
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
                raise self.no_rule(
                    f"indexing `{_code(node.value).strip()}` (an object astvmap has no rule "
                    "for) with a batched value",
                    "use np.concatenate / np.stack, or index arrays",
                )
            raise self.unsupported("indexing a container with a batched index")
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
        left_code, left = self.expr(node.left)
        right_code, right = self.expr(node.right)
        if isinstance(node.operator, cst.MatrixMultiply):
            return rules.linalg.matmul_operator(
                self, node, Arg(left_code, left), Arg(right_code, right)
            )
        if left.kind == TREE or right.kind == TREE or left.kind == OBJECT or right.kind == OBJECT:
            if left.batched or right.batched:
                if left.kind == TREE or right.kind == TREE:
                    raise self.unsupported(
                        "an operator on a tuple or list holding batched values",
                        "build an array with np.array([...]) first",
                    )
                # An object of unknown type next to a batched array could be a number
                # or a list that broadcasts: its rank is unknown, so refuse.
                raise self.unsupported(
                    "an operator between a batched array and an object of unknown type",
                    "convert the object first (float(...), int(...) or np.asarray(...))",
                )
            return node.with_changes(left=left_code, right=right_code), _opaque_result(left, right)
        (lc, rc), val = rules.elementwise.align_binary(
            self, Arg(left_code, left), Arg(right_code, right), BINARY_UFUNCS[type(node.operator)]
        )
        return node.with_changes(left=lc, right=rc), val

    def expr_UnaryOperation(self, node: cst.UnaryOperation) -> tuple[cst.BaseExpression, Val]:
        code, val = self.expr(node.expression)
        if isinstance(node.operator, cst.Not):
            if val.batched:
                if val.rank not in (0, None):
                    raise self.unsupported(
                        "`not` of a batched array (its truth value is ambiguous)"
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
        left_code, left = self.expr(node.left)
        operands = [(left_code, left)]
        for target in node.comparisons:
            operands.append(self.expr(target.comparator))
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
            raise self.unsupported(
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
            if it.batched:
                raise self.unsupported("a comprehension over a batched value is not supported yet")
            self.bind_target(comp.target, _iter_element(it))
            ifs = []
            for cond in comp.ifs:
                c, v = self.expr(cond.test)
                if v.batched:
                    raise self.unsupported("a comprehension filtered by a batched condition")
                ifs.append(cond.with_changes(test=c))
            fors.append((comp, iter_code, ifs))
            comp = comp.inner_for_in
        self.comp_depth += 1
        try:
            elt_code, elt = self.expr(node.elt)
        finally:
            self.comp_depth -= 1
        self.env = saved
        # Rebuild the chain of `for` clauses innermost first.
        inner = None
        for comp, iter_code, ifs in reversed(fors):
            inner = comp.with_changes(iter=iter_code, ifs=ifs, inner_for_in=inner)
        return node.with_changes(elt=elt_code, for_in=inner), Val(
            TREE, batched=elt.batched, container=list, element=elt
        )

    expr_GeneratorExp = expr_ListComp

    def expr_Call(self, node: cst.Call) -> tuple[cst.BaseExpression, Val]:
        return self.call(node)

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
            raise self.no_rule(
                "a function defined inside the vmapped function reads batched values "
                f"({', '.join(batched)})",
                "define the helper at module level and pass those values as arguments; "
                "it is then transformed too",
            )

    # calls ---------------------------------------------------------------------
    def call_args(self, node: cst.Call) -> tuple[list[Arg], dict[str, Arg]]:
        """The call's arguments; ``*`` and ``**`` of containers whose items are known are
        spread into them. Raises ``_Opaque`` for a star argument of unknown length, and
        refuses when such a call would be handed a batched value."""
        args: list[Arg] = []
        kwargs: dict[str, Arg] = {}
        opaque = False
        for a in node.args:
            code, val = self.expr(a.value)
            if a.star == "*":
                if val.kind == TREE and val.element is None and val.container in (tuple, list):
                    for i, (_, child) in enumerate(val.children):
                        args.append(Arg(self.parse("{x}[%d]" % i, x=code), child))
                    continue
                opaque = True
            elif a.star == "**":
                if val.kind == TREE and val.container is dict:
                    for key, child in val.children:
                        kwargs[key] = Arg(self.parse("{x}[%s]" % repr(key), x=code), child)
                    continue
                opaque = True
            elif a.keyword is not None:
                kwargs[a.keyword.value] = Arg(code, val)
            else:
                args.append(Arg(code, val))
            if opaque and val.batched:
                raise self.unsupported(
                    "a call whose * or ** arguments cannot be enumerated, given batched values"
                )
        if opaque:
            if any(a.batched for a in (*args, *kwargs.values())):
                raise self.unsupported(
                    "a call whose * or ** arguments cannot be enumerated, given batched values"
                )
            raise _Opaque()
        return args, kwargs

    def call(self, node: cst.Call) -> tuple[cst.BaseExpression, Val]:
        func = node.func
        self.current = node
        receiver = None
        if isinstance(func, cst.Attribute):
            recv_code, recv = self.expr(func.value)
            if recv.kind in (ARRAY, SCALAR) and (recv.batched or not recv.is_static):
                return self.method_call(node, func.attr.value, Arg(recv_code, recv))
            func_code, callee = self.attribute(func, recv_code, recv)
            receiver = Arg(recv_code, recv)
        else:
            func_code, callee = self.expr(func)
        try:
            args, kwargs = self.call_args(node)
        except _Opaque:
            return self.opaque_call(node, func_code)
        self.current = node
        target = callee.static if callee.is_static else callee.sample
        if not callee.is_static and callee.origin is not None and target is not NOVALUE:
            # A function (or object) passed in: the code is specialised on which one.
            self.program.guard(callee.origin, target)
        owner = self.callee_owner(callee, func_code)
        # A method of a user object, or a callable object: a user function with `self` first.
        written = args  # as the call is written (a method's `self` is not among them)
        if isinstance(target, types.MethodType) and _is_user_function(target.__func__):
            self_arg = (
                receiver if receiver is not None else Arg(func_code, Val.of_sample(target.__self__))
            )
            target, args = target.__func__, [self_arg, *args]
        elif _is_vmapped(target):
            # A vmapped function called per example: its wrapper, written out as source.
            from .nesting import adapter, example_value

            examples = tuple(example_value(_unbatch(a.val)) for a in args)
            if kwargs:
                raise self.unsupported("keyword arguments to a vmapped function called inside vmap")
            inner = adapter(target, examples)
            func_code = cst.Name(inner.__name__)
            target = inner
        elif _is_callable_object(target):
            target, args = type(target).__call__, [Arg(func_code, callee), *args]
        if target in (locals, vars) and not args and not kwargs:
            # The function's namespace as a dict: its batched names stay batched, so a
            # helper given it is transformed (never handed the batch as one example).
            names = [(k, v) for k, v in self.env.items() if k in self.ctl.bound]
            return node.with_changes(func=func_code), Val.tree(dict, names)
        batched = any(a.batched for a in args) or any(a.batched for a in kwargs.values())
        rule = rules.lookup(target)
        if rule is not None:
            site = CallSite(self, func_code, target, args, kwargs)
            return rules.with_dtype(site, rule(site))
        if not batched:
            code = _rebuild_call(node, func_code, written, kwargs)
            if _is_user_function(target):
                return code, self.unbatched_result(target, owner, args, kwargs)
            return code, _unknown_result(target)
        if isinstance(target, _LocalDef):
            raise self.unsupported(
                "calling a function defined inside the vmapped function with batched values",
                "define the helper at module level; it is then transformed too",
            )
        if _is_user_function(target):
            return self.user_call(node, func_code, target, args, kwargs, owner)
        if isinstance(target, type) and _is_struct_class(target):
            return _rebuild_call(node, func_code, args, kwargs), _struct_val(target, args, kwargs)
        name = _code(func).strip()
        raise self.no_rule(
            f"no batching rule for `{name}` ({_describe_callee(target)})",
            "use NumPy functions that astvmap knows (see the README's table), "
            "or move the call out of the vmapped function",
        )

    def opaque_call(
        self, node: cst.Call, func_code: cst.BaseExpression
    ) -> tuple[cst.BaseExpression, Val]:
        return node.with_changes(func=func_code), Val(OBJECT)

    def method_call(self, node: cst.Call, name: str, recv: Arg) -> tuple[cst.BaseExpression, Val]:
        try:
            args, kwargs = self.call_args(node)
        except _Opaque:
            if recv.batched:
                raise self.unsupported(f"method .{name}() with *args on a batched value") from None
            return node, Val(OBJECT)
        self.current = node
        rule = rules.METHODS.get(name)
        func = node.func
        assert isinstance(func, cst.Attribute)
        site = CallSite(
            self, func.with_changes(value=recv.code), name, [recv, *args], kwargs, method=name
        )
        if rule is not None:
            return rules.with_dtype(site, rule(site))
        if not site.any_batched:
            return site.render(), Val(OBJECT)
        raise self.no_rule(
            f"no batching rule for the array method .{name}()",
            "use the NumPy function form, or see the README's table of supported functions",
        )

    def grow_arguments(
        self, fn: types.FunctionType, grown: list[str], args: list[Arg], kwargs: dict[str, Arg]
    ) -> tuple[list[Arg], dict[str, Arg]]:
        """The call's arguments with the arrays passed as ``grown`` given a batch axis
        (``buf = np.broadcast_to(buf, ...).copy()`` before the call)."""
        bound = _bind_args(inspect.signature(fn, follow_wrapped=False), args, kwargs)
        replaced: dict[int, Arg] = {}
        for pname in grown:
            arg = bound[pname]
            name = self.grow_buffer(arg.code, arg.code, arg.val)
            if self.mask is not None:
                raise self.unsupported(
                    f"{fn.__name__}() writes a batched value into its argument {pname!r} "
                    "under a batched condition",
                    "call it outside the condition, or have it return the new array",
                )
            self.pending.append(
                cst.Assign([cst.AssignTarget(cst.Name(name))], self.materialise(arg.code, arg.val))
            )
            self.env[name] = arg.val.with_batched(True)
            replaced[id(arg)] = Arg(cst.Name(name), self.env[name])
        return (
            [replaced.get(id(a), a) for a in args],
            {k: replaced.get(id(a), a) for k, a in kwargs.items()},
        )

    def callee_owner(self, callee: Val, func_code: cst.BaseExpression) -> tuple[str, ...]:
        """How the generated code's guards find a callee's namespace from the main
        function: the chain of callee expressions, or, for a function reached through
        an argument of the main function, that argument (``@fn``, ``@self.helper``)."""
        origin = callee.origin
        if origin is not None and origin[0] == "arg":
            return (ARGUMENT + ".".join(str(a) for a in origin[1:]),)
        return (*self.owner, _code(func_code).strip())

    def unbatched_result(
        self,
        fn: types.FunctionType,
        owner: tuple[str, ...],
        args: list[Arg],
        kwargs: dict[str, Arg],
    ) -> Val:
        """What an unbatched call to a user function returns (its rank), found by analysing it.

        The call itself is left as written; the analysis only feeds rank inference.
        """
        try:
            params, key = self.bind_params(fn, args, kwargs)
        except UnsupportedError:
            return Val(OBJECT)
        key = ("unbatched", *key)
        if key not in self.program.specialisations:
            self.analyse_unbatched(fn, owner, params, key)
        written = self.program.writes.get(key, frozenset())
        self.check_masked_writes(fn, written)
        return self.program.specialisations[key][1] or Val(OBJECT)

    def check_masked_writes(self, fn: types.FunctionType, written: frozenset[str]) -> None:
        """A helper that writes into its arguments runs on every lane: refused under a
        batched condition, where the loop would write in some examples only."""
        if written and self.mask is not None:
            raise self.unsupported(
                f"{fn.__name__}() writes into its argument {sorted(written)[0]!r} and is called "
                "under a batched condition (the write would reach every example)",
                "call it outside the condition, or have it return the new array",
            )

    def analyse_unbatched(
        self, fn: types.FunctionType, owner: tuple[str, ...], params: dict, key: tuple
    ) -> None:
        self.program.specialisations[key] = ("", None)
        try:
            src = get_source(fn)
            if _is_adapter(fn):
                owner = (*self.owner, NESTED)
            sub = Translator(self.program, src, params, src.name, owner)
            with sub.dry():
                _, ret = sub.translate()
            self.program.writes[key] = frozenset(p for p in sub.written if p in params)
        except NeedsBatchError:
            raise  # a draw or collective that the unchanged call would get wrong
        except Exception:  # noqa: BLE001 - analysis is best effort for unbatched calls
            ret = Val(OBJECT)
        self.program.specialisations[key] = ("", _strip_samples(ret))

    def bind_params(
        self, fn: types.FunctionType, args: list[Arg], kwargs: dict[str, Arg]
    ) -> tuple[dict[str, Val], tuple]:
        """The abstract value of each parameter of ``fn`` for this call, and the key of
        the specialisation (``*args``/``**kwargs`` given nothing are empty containers)."""
        sig = inspect.signature(fn, follow_wrapped=False)
        try:
            bound = sig.bind(*[a.val for a in args], **{k: a.val for k, a in kwargs.items()})
        except TypeError as exc:
            raise self.unsupported(f"calling {fn.__name__}: {exc}") from None
        params: dict[str, Val] = {}
        for pname, p in sig.parameters.items():
            if pname in bound.arguments:
                v = bound.arguments[pname]
                if p.kind == p.VAR_POSITIONAL:
                    v = Val.tree(tuple, list(enumerate(v)))
                elif p.kind == p.VAR_KEYWORD:
                    v = Val.tree(dict, list(v.items()))
                params[pname] = v
            elif p.default is not p.empty:
                params[pname] = _namespace_val(p.default, pname)
            elif p.kind == p.VAR_POSITIONAL:
                params[pname] = Val.tree(tuple, [])
            elif p.kind == p.VAR_KEYWORD:
                params[pname] = Val.tree(dict, [])
        # The closure is part of the key: two functions made by one decorator share
        # their code, but each wrapper calls the function it closes over.
        cells = tuple(id(_cell_value(c)) for c in fn.__closure__ or ())
        key = (fn.__code__, cells, tuple(sorted((k, _val_key(v)) for k, v in params.items())))
        return params, key

    def user_call(
        self,
        node: cst.Call,
        func_code: cst.BaseExpression,
        fn: types.FunctionType,
        args: list[Arg],
        kwargs: dict[str, Arg],
        owner: tuple[str, ...],
    ) -> tuple[cst.BaseExpression, Val]:
        """A call to another user function with batched arguments: specialise it too."""
        sig = inspect.signature(fn, follow_wrapped=False)
        params, key = self.bind_params(fn, args, kwargs)
        bound = sig.bind(*args, **kwargs)
        if key not in self.program.specialisations:
            saved = self.program.snapshot()
            name = self.program.fresh(f"{fn.__name__}_vmap")
            self.program.specialisations[key] = (name, None)
            if _is_adapter(fn):
                owner = (*self.owner, NESTED)
            src = get_source(fn)
            sub = Translator(self.program, src, params, name, owner)
            fdef, ret = sub.translate()
            grown = [p for p in sub.grown if p in params]
            if grown:
                # It writes batched values into arrays the caller passed without a batch
                # axis: the caller's arrays get theirs first (the write must reach
                # them, as per example it does), and the helper is specialised again.
                self.program.restore(saved)
                args, kwargs = self.grow_arguments(fn, grown, args, kwargs)
                return self.user_call(node, func_code, fn, args, kwargs, owner)
            self.program.functions.append(fdef)
            self.program.origins[name] = (src, owner)
            self.program.specialisations[key] = (name, ret)
            self.program.writes[key] = frozenset(p for p in sub.written if p in params)
        written = self.program.writes.get(key, frozenset())
        self.check_masked_writes(fn, written)
        for pname, a in _bind_args(sig, args, kwargs).items():
            if pname in written and isinstance(a.code, cst.Name):
                self.note_write(a.code.value)
        name, ret = self.program.specialisations[key]
        if ret is None:
            raise self.unsupported(f"recursive call to {fn.__name__} with batched arguments")
        # Defaults are passed explicitly: the generated def has none.
        call_args = [cst.Arg(value=a.code) for a in args]
        call_args += [cst.Arg(value=a.code, keyword=cst.Name(k)) for k, a in kwargs.items()]
        call_args += self.default_arguments(fn, func_code, sig, bound.arguments)
        return cst.Call(func=cst.Name(name), args=call_args), ret

    def default_arguments(
        self,
        fn: types.FunctionType,
        func_code: cst.BaseExpression,
        sig: inspect.Signature,
        bound: dict[str, Any],
    ) -> list[cst.Arg]:
        """The defaults a call relies on, passed explicitly (the generated def may not
        have them): a literal as written, anything else as the very object the loop
        uses (``f.__defaults__[i]``), never re-evaluated in another scope."""
        written = {p.name.value: p.default for p in _all_params(get_source(fn).node.params)}
        positional = [
            q
            for q in sig.parameters.values()
            if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)
        ]
        with_default = [q.name for q in positional if q.default is not q.empty]
        out = []
        for pname, p in sig.parameters.items():
            if pname in bound or p.default is p.empty:
                continue
            node = written.get(pname)
            if node is not None and _is_literal(node):
                value = node
            elif p.kind == p.KEYWORD_ONLY:
                value = self.parse("{f}.__kwdefaults__[%r]" % pname, f=func_code)
            else:
                value = self.parse("{f}.__defaults__[%d]" % with_default.index(pname), f=func_code)
            out.append(cst.Arg(value=value, keyword=cst.Name(pname)))
        return out


def _bind_args(sig: inspect.Signature, args: list[Arg], kwargs: dict[str, Arg]) -> dict[str, Arg]:
    """Parameter name -> the Arg passed for it (``*args``/``**kwargs`` left out)."""
    bound = sig.bind(*args, **kwargs).arguments
    return {k: v for k, v in bound.items() if isinstance(v, Arg)}


class _Opaque(Exception):
    """A call whose arguments cannot be enumerated (``*args`` of unknown length)."""


class _LocalDef:
    """A def or lambda written inside the vmapped function, with the names it reads."""

    def __init__(self, node: cst.FunctionDef | cst.Lambda) -> None:
        params = node.params
        own = {
            p.name.value for p in (*params.params, *params.kwonly_params, *params.posonly_params)
        }
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                own.add(star.name.value)
        self.names = frozenset(_walk_names(node.body)) - own


_BINOP_FOR_AUG = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.FloorDivideAssign: cst.FloorDivide,
    cst.ModuloAssign: cst.Modulo,
    cst.PowerAssign: cst.Power,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply,
    cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr,
    cst.BitXorAssign: cst.BitXor,
    cst.LeftShiftAssign: cst.LeftShift,
    cst.RightShiftAssign: cst.RightShift,
}


# ---------------------------------------------------------------- helpers


def _namespace_val(obj: Any, name: str) -> Val:
    if isinstance(obj, (np.ndarray, np.generic)):
        return Val(ARRAY, rank=np.ndim(obj), sample=obj)
    if isinstance(obj, (bool, int, float, complex, str, type(None))):
        return Val.const(obj)
    if isinstance(obj, tuple) and all(
        isinstance(x, (bool, int, float, complex, str, type(None))) for x in obj
    ):
        return Val.const(obj)
    if isinstance(
        obj, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, np.ufunc)
    ) or callable(obj):
        return Val(OBJECT, static=obj)
    if isinstance(obj, (tuple, list, dict)):
        return Val(OBJECT, sample=obj)
    return Val(OBJECT, sample=obj)


def _element_val(val: Val, i: int) -> Val:
    if val.element is not None:
        return val.element
    if val.kind == TREE:
        child = val.child(i)
        if child is not None:
            return child
        if val.batched:
            raise UnsupportedError("cannot unpack this batched container")
        return Val(OBJECT)
    if val.batched:
        raise UnsupportedError("cannot unpack a batched value of unknown structure")
    if val.sample is not NOVALUE:
        try:
            return Val.of_sample(val.sample[i])
        except Exception:  # noqa: BLE001
            return Val(OBJECT)
    if val.static is not NOVALUE:
        try:
            return Val.const(val.static[i])
        except Exception:  # noqa: BLE001
            return Val(OBJECT)
    return Val(OBJECT)


def _iter_element(it: Val) -> Val:
    if it.kind == TREE:
        if it.element is not None:
            return it.element
        vals = [v for _, v in it.children]
        if len({v.batched for v in vals}) > 1:
            # The loop variable would carry the batch axis in some iterations only.
            raise UnsupportedError("iterating a container whose items are batched differently")
        return join_all(vals) if vals else Val(OBJECT)
    if it.kind == ARRAY and it.rank:
        return Val.array(it.rank - 1)
    if it.kind == OBJECT and isinstance(it.static, range):
        return Val(SCALAR, rank=0)
    return Val(SCALAR, rank=0) if it.kind == OBJECT and it.sample is NOVALUE else Val(OBJECT)


def _as_batched(val: Val) -> Val:
    if val.kind == SCALAR:
        return Val.array(0, True, val.dtype)
    if val.kind == TREE and val.children:
        # Chosen per lane item by item (MaskedControl.where): every item is batched.
        children = tuple((k, _as_batched(v)) for k, v in val.children)
        return dataclasses.replace(val, batched=True, children=children, static=NOVALUE)
    return dataclasses.replace(val, batched=True)


def _widened_names(env: dict[str, Val], merged: dict[str, Val]) -> list[str]:
    """The names ``widen(env, merged)`` gives a batch axis."""
    return [
        k
        for k, v in env.items()
        if k in merged and merged[k].batched and not v.batched and v.kind in (ARRAY, SCALAR)
    ]


_VIEW_ATTRIBUTES = frozenset({"T", "mT", "real", "imag"})
# Functions and methods whose result may share memory with their first argument
# (or, as methods, with the array they are called on).
_VIEW_CALLS = frozenset(
    {
        "swapaxes",
        "transpose",
        "permute_dims",
        "matrix_transpose",
        "moveaxis",
        "rollaxis",
        "reshape",
        "ravel",
        "squeeze",
        "expand_dims",
        "diagonal",
        "broadcast_to",
        "asarray",
        "asanyarray",
        "ascontiguousarray",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "flip",
        "fliplr",
        "flipud",
        "rot90",
        "real",
        "imag",
        "view",
        "split",
        "array_split",
        "hsplit",
        "vsplit",
        "dsplit",
        "unstack",
        "broadcast_arrays",
        "as_strided",
        "sliding_window_view",
    }
)


def _view_roots(expr: cst.BaseExpression) -> set[str]:
    """The names ``expr`` may be a view of (or another name for): the root of a
    chain of items, slices, view attributes (``.T``) and view-making calls."""
    while True:
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Attribute):
            if expr.attr.value not in _VIEW_ATTRIBUTES:
                return set()  # b.shape, b.dtype, np.pi: not views
            expr = expr.value
        elif isinstance(expr, cst.Call) and isinstance(expr.func, (cst.Name, cst.Attribute)):
            func = expr.func
            called = func.value if isinstance(func, cst.Name) else func.attr.value
            if called not in _VIEW_CALLS:
                return set()
            roots = _view_roots(func.value) if isinstance(func, cst.Attribute) else set()
            if expr.args:
                roots |= _view_roots(expr.args[0].value)  # np.swapaxes(b, ...)
            return roots  # b.reshape(...): the receiver
        elif isinstance(expr, cst.Name):
            return {expr.value}
        else:
            return set()


def _select_roots(expr: cst.BaseExpression) -> set[str]:
    """The names ``expr`` may be (or view), through the branches of ``a if c else b``
    and ``a or b``."""
    if isinstance(expr, cst.IfExp):
        return _select_roots(expr.body) | _select_roots(expr.orelse)
    if isinstance(expr, cst.BooleanOperation):
        return _select_roots(expr.left) | _select_roots(expr.right)
    return _view_roots(expr)


def _view_of(fn: cst.CSTNode, name: str, params: set[str]) -> str | None:
    """A name that may share memory with ``name``: bound to a view of it, or
    ``name`` bound to a view of that name (a write through one reaches the other).
    Only the function's own names count (``params`` and what it assigns), not
    modules (``np.swapaxes(a, ...)`` is rooted at ``np`` too)."""
    found: list[str] = []
    local = set(params)

    class Locals(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            local.update(_target_names(node.target))

    class Finder(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            roots = _view_roots(node.value)
            targets = [n for t in node.targets for n in _target_names(t.target)]
            if name in roots:
                found.extend(n for n in targets if n != name)  # v = b[::2]
            if name in targets:
                found.extend(r for r in roots & local if r != name)  # b = a[:2]

    fn.visit(Locals())
    fn.visit(Finder())
    return found[0] if found else None


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_names(e.value)]
    return []


def _join_envs(a: dict[str, Val], b: dict[str, Val]) -> dict[str, Val]:
    out = dict(a)
    for k, v in b.items():
        out[k] = join(out[k], v) if k in out else v
    return out


def _max_rank(vals: list[Val]) -> int | None:
    ranks = [v.rank for v in vals if v.kind in (ARRAY, SCALAR)]
    if any(r is None for r in ranks):
        return None
    return max(ranks, default=0)


def _opaque_result(a: Val, b: Val) -> Val:
    if a.is_static and b.is_static and a.kind == TREE:
        return Val(TREE, container=a.container)
    return Val(OBJECT)


def _unknown_result(target: Any) -> Val:
    if isinstance(target, type) and issubclass(target, (int, float, bool, complex)):
        return Val(SCALAR, rank=0)
    return Val(OBJECT)


def _is_user_function(obj: Any) -> bool:
    if not isinstance(obj, types.FunctionType):
        return False
    root = (obj.__module__ or "").split(".")[0]
    # The standard library is library code too (dataclasses.is_dataclass, copy.copy):
    # matched to rules, never transformed.
    return root not in LIBRARY_ROOTS and root not in sys.stdlib_module_names


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


NESTED = "<nested vmap>"


def _is_adapter(fn: types.FunctionType) -> bool:
    return fn.__code__.co_filename.startswith("<astvmap")


def _is_vmapped(obj: Any) -> bool:
    from .api import VmappedFunction

    return isinstance(obj, VmappedFunction)


def _unbatch(val: Val) -> Val:
    """The per-example description of a value (for building stand-in examples)."""
    if val.kind == TREE:
        return dataclasses.replace(
            val, batched=False, children=tuple((k, _unbatch(v)) for k, v in val.children)
        )
    return dataclasses.replace(val, batched=False)


def _is_callable_object(obj: Any) -> bool:
    if isinstance(
        obj, (types.FunctionType, types.MethodType, type, types.BuiltinFunctionType, np.ufunc)
    ):
        return False
    call = getattr(type(obj), "__call__", None)  # noqa: B004 - the class's own __call__
    return isinstance(call, types.FunctionType) and _is_user_function(call)


def _is_struct_class(cls: type) -> bool:
    return (issubclass(cls, tuple) and hasattr(cls, "_fields")) or dataclasses.is_dataclass(cls)


def _struct_val(cls: type, args: list[Arg], kwargs: dict[str, Arg]) -> Val:
    fields = (
        list(cls._fields) if hasattr(cls, "_fields") else [f.name for f in dataclasses.fields(cls)]
    )
    kids = list(zip(fields, [a.val for a in args]))
    kids += [(k, a.val) for k, a in kwargs.items()]
    if issubclass(cls, tuple):
        kids = [(i, v) for i, (_, v) in enumerate(kids)] + kids
    return Val.tree(cls, kids)


def _strip_samples(val: Val) -> Val:
    """A value returned by an unbatched call: what it is, not where it came from."""
    if val.kind == TREE:
        return dataclasses.replace(
            val,
            children=tuple((k, _strip_samples(v)) for k, v in val.children),
            origin=None,
            sample=NOVALUE,
        )
    return (
        dataclasses.replace(val, origin=None, sample=NOVALUE)
        if val.kind in (ARRAY, SCALAR)
        else Val(val.kind)
    )


def _describe_callee(obj: Any) -> str:
    if obj is None or obj is NOVALUE:
        return "not known while transforming"
    module = getattr(obj, "__module__", None)
    return f"{type(obj).__name__} from {module}" if module else type(obj).__name__


def _rebuild_call(
    node: cst.Call, func_code: cst.BaseExpression, args: list[Arg], kwargs: dict[str, Arg]
) -> cst.Call:
    new_args = []
    ai = 0
    for a in node.args:
        if a.keyword is not None:
            new_args.append(a.with_changes(value=kwargs[a.keyword.value].code))
        elif a.star:
            new_args.append(a)
        else:
            new_args.append(a.with_changes(value=args[ai].code))
            ai += 1
    return node.with_changes(func=func_code, args=new_args)


def _val_key(v: Val) -> Any:
    if v.kind == TREE:
        return (
            "tree",
            getattr(v.container, "__qualname__", None),
            tuple((k, _val_key(c)) for k, c in v.children),
        )
    if v.kind == OBJECT and v.static is not NOVALUE:
        return ("static", id(v.static))
    if v.kind == SCALAR and v.static is not NOVALUE:
        return ("const", repr(v.static))
    return (v.kind, v.batched, v.rank)


def _first_batched_path(val: Val) -> str | None:
    if val.kind in (ARRAY, SCALAR):
        return "" if val.batched else None
    if val.kind == TREE:
        for k, child in val.children:
            sub = _first_batched_path(child)
            if sub is not None:
                if isinstance(k, str) and val.container is not dict:
                    return f".{k}{sub}"
                return f"[{k!r}]{sub}"
    return None


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


def _suites_as_blocks(node: cst.FunctionDef, positions: Any) -> tuple[cst.FunctionDef, Any]:
    """``node`` with every one-line suite written as an indented block (one statement a
    line), and the source positions carried over to the nodes that replace them."""
    if not libcst.matchers.findall(node, libcst.matchers.SimpleStatementSuite()):
        return node, positions
    moved: dict[cst.CSTNode, Any] = dict(positions)

    class Blocks(cst.CSTTransformer):
        def on_leave(self, original: Any, updated: Any) -> Any:
            if isinstance(updated, cst.SimpleStatementSuite):
                lines = []
                for small, orig in zip(updated.body, original.body):
                    line = cst.SimpleStatementLine(
                        [small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
                    )
                    moved[line] = positions.get(orig)
                    lines.append(line)
                updated = cst.IndentedBlock(lines)
            if original in positions:
                moved[updated] = positions[original]
            return updated

    return node.visit(Blocks()), moved


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


def _has_subscript(node: cst.CSTNode) -> bool:
    return bool(libcst.matchers.findall(node, libcst.matchers.Subscript()))


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _eval_unary(node: cst.UnaryOperation, value: Any) -> Any:
    op = type(node.operator)
    if op is cst.Minus:
        return -value
    if op is cst.Plus:
        return +value
    if op is cst.BitInvert:
        return ~value
    return not value


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


def _strip_defaults(params: cst.Parameters) -> cst.Parameters:
    """The generated signature: literal defaults kept (for a reader calling it by hand).

    The wrapper always binds every argument from the original function's defaults,
    so no default expression is ever evaluated in another scope; a non-literal
    default (``W=np.eye(3)``) is dropped, and so is every earlier positional
    default (a default may not precede a required parameter).
    """

    def strip(p: cst.Param, keep: bool) -> cst.Param:
        if keep:
            return p.with_changes(annotation=None)
        return p.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT, annotation=None)

    positional = [*params.posonly_params, *params.params]
    keep_flags = []
    keep_rest = True
    for p in reversed(positional):
        keep_rest = keep_rest and p.default is not None and _is_literal(p.default)
        keep_flags.append(keep_rest)
    keep_flags.reverse()
    n_pos = len(params.posonly_params)
    star = params.star_arg
    if isinstance(star, cst.Param):
        star = star.with_changes(annotation=None)
    star_kw = params.star_kwarg.with_changes(annotation=None) if params.star_kwarg else None
    return params.with_changes(
        posonly_params=[strip(p, k) for p, k in zip(params.posonly_params, keep_flags[:n_pos])],
        params=[strip(p, k) for p, k in zip(params.params, keep_flags[n_pos:])],
        kwonly_params=[
            strip(p, p.default is not None and _is_literal(p.default)) for p in params.kwonly_params
        ],
        star_arg=star,
        star_kwarg=star_kw,
    )


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _is_literal(node: cst.BaseExpression) -> bool:
    try:
        ast.literal_eval(_code(node))
    except (ValueError, SyntaxError):
        return False
    return True


def _keep_docstring_first(body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    for i, stmt in enumerate(body):
        if (
            isinstance(stmt, cst.SimpleStatementLine)
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
            and i > 0
        ):
            return [stmt, *body[:i], *body[i + 1 :]]
        if i > 0:
            break
    return body


__all__ = ["Program", "Translator", "Guard", "signature", "builtins"]
