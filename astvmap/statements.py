"""The translator's statements: the walk over a block, simple statements (imports,
``assert``, ``return``), plain ``if``/``with`` and local ``def``.

Each statement is translated in order, its generated lines marked with the user's
line (``# @astvmap:LINE``). Assignments are in ``assignments.py``, loops in
``loops.py``, the masked (batched) forms of control flow in ``control.py``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import libcst as cst
import libcst.matchers as m
import numpy as np

from . import probing, selections
from .core import _element_val, _join_envs, _LocalDef
from .syntax import (
    _mark_header,
    _marked_line,
    _strip_semicolon,
    _with_marker,
)
from .values import ARRAY, NONE, NOVALUE, OBJECT, SCALAR, TREE, Val


class Statements:
    """Mixin for ``Translator``: statements, block by block."""

    # -------------------------------------------------------------- statements
    def block(self, stmts: Any) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for stmt in stmts:
            out.extend(self.statement(stmt))
            if self.ctl.terminated:
                break  # every lane has returned: the rest is unreachable
        return _merge_errstates(out)

    def function_end(self) -> list[cst.BaseStatement]:
        """After the body: masked returns need the merged ``result`` returned."""
        if self.ctl.result_name is None or self.dry_depth:
            return []
        if self.ctl.terminated:
            if not self.ctl.result_pending:
                return []
            if not self.ctl.result_set:
                # Every lane returned None in some example's branch: none_check decides.
                return self.none_check()
            return [*self.none_check(), cst.SimpleStatementLine([cst.Return(self.result)])]
        raise self.unsupported_at(
            self.node,
            "some examples return a value and others reach the end of the function",
            "end the function with a return for the remaining examples",
        )

    def statement(self, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        if self.dry_depth and isinstance(stmt, (cst.For, cst.While)):
            return self.dry_loop_statement(stmt)
        return self.translate_statement(stmt)

    def translate_statement(self, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        self.current_stmt = stmt
        self.current = stmt
        self.checked = set()
        self.quiet_statement = False
        probing.seed_statement(self, stmt)
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
            if (self.quiet_statement or self.mask is not None) and not self.ctl.quiet:
                # `a if c else b` / `and` / `or` computed both sides for every lane; after
                # a batched early return, the statement computes the lanes that left too.
                out = self.errstate(out)
            return out
        handler = getattr(self, "stmt_" + type(stmt).__name__, None)
        if handler is None:
            raise self.unsupported_at(stmt, f"the statement {type(stmt).__name__} is not supported")
        # Inside a `try` or `with`, a failed check of a learned type could be swallowed by
        # an `except` (or a context manager): no learned types there (probing.py).
        blocks = isinstance(stmt, (cst.Try, cst.TryStar, cst.With))
        self.probe_blocked += blocks
        try:
            out = handler(stmt, marker)
        finally:
            self.probe_blocked -= blocks
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
            if isinstance(node.value, cst.Call) and self.is_warning_call(node.value):
                return self.warn(node)
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
            if self.batched_names(node):
                node = self.first_lane(node)
            elif node.exc is not None:
                _, val = self.expr(node.exc)
                if val.batched:
                    raise self.unsupported("an exception built from batched values")
            if self.mask is not None:
                # Raised if any lane gets here, as the loop raises at the first one.
                pending, self.pending = self.pending, []
                self.checks.append(self.when_any(self.mask, [*pending, node]))
                self.ctl.terminated = True
                return []
            return [node]
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            self.bind_import(node)
            return [node]
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            raise self.refuse(
                "global/nonlocal statements are not supported in a vmapped function",
                "return the value instead of writing it to an outer variable",
            )
        if isinstance(node, cst.Del):
            return [node]
        raise self.unsupported(f"the statement {type(node).__name__} is not supported")

    # ------------------------------------------- messages of raise and warnings.warn
    def batched_names(self, node: cst.CSTNode) -> set[str]:
        """The function's batched names that ``node`` reads."""
        return {n for n in _read_names(node) if n in self.env and self.env[n].batched}

    def first_lane(self, node: cst.CSTNode) -> Any:
        """``node`` (a ``raise`` or a ``warnings.warn(...)`` call, which the loop runs at
        the first example that gets here) reading that example's values: each batched
        name ``n`` becomes ``n[lane]``, the per-example expression is kept as written
        (an f-string, ``%`` formatting, a helper call). Under a batched condition
        ``lane`` is bound in self.pending to the first lane of the mask; else it is 0."""
        names = self.batched_names(node)
        for n in sorted(names):
            self.expr(cst.Name(n))  # a name bound in some lanes only is checked
            val = self.env[n]
            if val.kind not in (ARRAY, SCALAR):
                raise self.unsupported(
                    f"a message built from `{n}`, a batched value that is not an array",
                    "build the message from arrays and numbers",
                )
        if _has_scope(node):
            raise self.unsupported(
                "a lambda or comprehension in a message built from batched values",
                "compute the message's parts on lines of their own first",
            )
        if self.mask is None:
            return node.visit(_PerLane(names, cst.Integer("0")))
        lane = self.temp("lane")
        first = self.parse("np.argmax({m})", m=self.mask)
        self.pending.append(cst.Assign([cst.AssignTarget(cst.Name(lane))], first))
        return node.visit(_PerLane(names, cst.Name(lane)))

    def is_warning_call(self, call: cst.Call) -> bool:
        """Is ``call`` ``warnings.warn(...)`` (by any name)? Only a name or a chain of
        attributes of one is resolved (``y.sort()`` is a method of an array)."""
        func, chain = call.func, []
        while isinstance(func, cst.Attribute):
            chain.append(func.attr.value)
            func = func.value
        if not isinstance(func, cst.Name) or (chain and chain[0] != "warn"):
            return False
        root = self.env.get(func.value)
        if root is not None and not root.is_static:
            return False  # a local value, not a module or a function
        with self.dry():
            _, fn = self.expr(call.func)
        return fn.is_static and fn.static is warnings.warn

    def warn(self, node: cst.Expr) -> list[cst.BaseSmallStatement]:
        """``warnings.warn(...)``: issued if some example gets here, once, with the
        message of the first that does (the loop issues it per example; with the
        default filter it shows once per distinct message)."""
        call = node.value
        assert isinstance(call, cst.Call)
        if self.batched_names(call):
            new = self.first_lane(node)
        else:
            code, _ = self.expr(call)
            new = node.with_changes(value=code)
        if self.mask is None:
            return [new]
        line = self.current_stmt
        if not (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1):
            raise self.unsupported(
                "a warning under a batched condition that shares its line",
                "put it on a line of its own",
            )
        pending, self.pending = self.pending, []
        self.checks.append(self.when_any(self.mask, [*pending, new]))
        return []

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
        if (
            val.kind == NONE
            and self.mask is not None
            and not self.ctl.loops
            and not self.owner  # the vmapped function (a helper's caller may test for None)
            and (self.return_val is None or self.return_val.kind != NONE)
        ):
            # Not one of the values stacked (the first pass leaves it out of the join).
            return self.none_return()
        if val.kind == NONE and self.mask is not None and self.return_val is not None:
            if self.return_val.kind != NONE:
                raise self.unsupported(
                    "returning None in some examples only, "
                    + ("in a loop" if self.ctl.loops else "from a helper function")
                    + " (the batch cannot hold None in some lanes and arrays in others)",
                    "return an array in every example (np.full(shape, np.nan) for example), "
                    "or test the condition in the caller",
                )
        selections.check_escape(self, val, "returning a selection")
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
            self.checks.extend(self.none_check())
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
                return [*pre, *self.static_branch(node.body.body)]
            if node.orelse is None:
                return pre
            if isinstance(node.orelse, cst.If):
                return [*pre, *self.stmt_If(node.orelse, self._marker(node.orelse))]
            return [*pre, *self.static_branch(node.orelse.body.body)]
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

    def static_branch(self, stmts: Any) -> list[cst.BaseStatement]:
        """The branch a transform-time test takes. Ending in a plain ``return``, it ends
        the function: what follows is not translated (a recursion whose depth is a
        constant stops at its base case, ``if depth == 0: return x``)."""
        out = self.block(stmts)
        last = stmts[-1] if stmts else None
        if (
            self.mask is None
            and isinstance(last, cst.SimpleStatementLine)
            and isinstance(last.body[-1], cst.Return)
        ):
            self.ctl.terminated = True
        return out

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
        raises (or not) for every example alike, so its handlers run as in the loop
        (reading ``M.dtype`` or ``x.shape`` of a batched array is not batched work).

        So is one whose handlers catch only ``NameError`` or ``ImportError`` (``try: x =
        asarray(x) except NameError``): batched NumPy work does not raise them, so they
        come from the code, alike for every example, and whatever the body raises
        otherwise (``raise ValueError`` in the examples whose data is bad) is not caught,
        in the loop or in the batch. Not when the body checks a name bound in some
        examples only (an UnboundLocalError there is per example) or calls a user
        function with batched values (its own such checks).

        Any other body computing with batched values could raise in some examples only,
        and an ``except`` clause cannot be split by example: that function runs per
        example (a declared fallback, with a PerformanceWarning)."""
        self.current = node
        if self.mask is not None:
            raise self.unsupported(
                "a `try` statement under a batched condition",
                "move the `try` out of the condition",
            )
        saw, self.saw_batched = self.saw_batched, False
        name_errors = self.lane_name_errors
        before, bound_before = dict(self.env), set(self.ctl.bound)
        self.ctl.plain_depth += 1
        body = self.block(node.body.body)
        body_batched = self.saw_batched
        if body_batched and (
            self.lane_name_errors != name_errors or not self.catches_code_errors_only(node)
        ):
            raise self.unsupported(
                "a `try` whose body computes with batched values (the `except` clause "
                "cannot tell which examples raised)",
                "compute outside the `try`, or test the condition that raises instead",
            )
        if node.orelse is not None:
            # (Not guarded by the handlers: computed with batched values or not, alike.)
            body_else = self.block(node.orelse.body.body)
        self.saw_batched = saw or body_batched or self.saw_batched
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

    def catches_code_errors_only(self, node: cst.Try) -> bool:
        """Does every handler catch only exceptions that batched NumPy work does not
        raise (NameError, ImportError and their subclasses)?"""
        for handler in node.handlers:
            if handler.type is None:
                return False  # a bare `except:` catches everything
            kinds = (
                [e.value for e in handler.type.elements]
                if isinstance(handler.type, cst.Tuple)
                else [handler.type]
            )
            for kind in kinds:
                with self.dry():
                    _, val = self.expr(kind)
                cls = val.static if val.is_static else None
                if not (isinstance(cls, type) and issubclass(cls, (NameError, ImportError))):
                    return False
        return True

    def stmt_FunctionDef(self, node: cst.FunctionDef, marker: str) -> list[cst.BaseStatement]:
        # A nested def is kept as written; calling it with batched values is refused
        # at the call (it is not found through the function's namespace).
        self.env[node.name.value] = Val(OBJECT, static=_LocalDef(node))
        return [node]


def _is_errstate(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.With)
        and len(stmt.items) == 1
        and isinstance(stmt.items[0].item, cst.Call)
        and isinstance(stmt.items[0].item.func, cst.Attribute)
        and stmt.items[0].item.func.attr.value == "errstate"
        and isinstance(stmt.body, cst.IndentedBlock)
    )


def _merge_errstates(stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """Adjacent ``with np.errstate(all="ignore"):`` blocks (statements after a batched
    early return each get one) as one block, as a person would write it."""
    out: list[cst.BaseStatement] = []
    for stmt in stmts:
        if out and _is_errstate(stmt) and _is_errstate(out[-1]):
            prev = out[-1]
            assert isinstance(prev, cst.With) and isinstance(stmt, cst.With)
            if prev.items[0].item.deep_equals(stmt.items[0].item):
                body = [*prev.body.body, *stmt.body.body]
                out[-1] = prev.with_changes(body=prev.body.with_changes(body=body))
                continue
        out.append(stmt)
    return out


class _PerLane(cst.CSTTransformer):
    """Each read of a batched name ``n`` becomes ``n[lane]`` (attribute names and
    keywords are not reads)."""

    def __init__(self, names: set[str], lane: cst.BaseExpression) -> None:
        super().__init__()
        self.names, self.lane = names, lane

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if updated.value not in self.names:
            return updated
        return cst.Subscript(updated, [cst.SubscriptElement(cst.Index(self.lane))])

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _read_names(node: cst.CSTNode) -> set[str]:
    """The names ``node`` reads: not the ``name`` of ``x.name`` nor of ``name=``."""
    found: set[str] = set()

    class Reads(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

        def visit_Attribute(self, n: cst.Attribute) -> bool:
            n.value.visit(self)
            return False

        def visit_Arg(self, n: cst.Arg) -> bool:
            n.value.visit(self)
            return False

    node.visit(Reads())
    return found


def _has_scope(node: cst.CSTNode) -> bool:
    return bool(
        m.findall(
            node,
            m.Lambda() | m.ListComp() | m.SetComp() | m.DictComp() | m.GeneratorExp(),
        )
    )


def _as_batched(val: Val) -> Val:
    if val.kind == SCALAR:
        return Val.array(0, True, val.dtype)
    if val.kind == TREE and val.children:
        # Chosen per lane item by item (MaskedControl.where): every item is batched.
        children = tuple((k, _as_batched(v)) for k, v in val.children)
        return dataclasses.replace(val, batched=True, children=children, static=NOVALUE)
    return dataclasses.replace(val, batched=True)
