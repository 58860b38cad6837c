"""The translator's core, shared by its construct families: ``Program`` (the state
of one generated module), ``Core`` (one function's translation state: its abstract
environment, the driver, the rule context, errors at the user's line) and the
``Val`` helpers several families use.
"""

from __future__ import annotations

import ast
import contextlib
import types
from collections.abc import Iterator
from typing import Any

import libcst as cst
import numpy as np
from libcst.metadata import MetadataWrapper, PositionProvider

from .control import ControlState, LoopInfo
from .errors import FallbackError, UnsupportedError
from .guards import Guard, signature
from .source import FunctionSource
from .syntax import _code, _index, _line, _slice_all, _walk_names, find, template_expression
from .values import ARRAY, NONE, NOVALUE, OBJECT, SCALAR, TREE, Val, join, join_all


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
        # Types learned by running example 0 (facts.py, probing.py): (code object, line,
        # path) -> summary; and the paths the translation asked for, by code and line.
        self.facts: dict[tuple, tuple] = {}
        self.requests: dict[types.CodeType, dict[int, set[tuple]]] = {}

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


class Core:
    """One function's translation state and the plumbing every family uses."""

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
        self.copied_choice = False  # an `a if c else b` joined by copying one side (assign)
        self.dry_depth = 0
        self.comp_depth = 0  # inside a comprehension: no statements can be hoisted out
        self.probe_blocked = 0  # inside a `try` or `with`: no learned types (probing.py)
        # The expression being translated is consumed by a reduction (or len, .size): a
        # window x[i:i + k] there stays a selection, exact where the slice is shorter.
        self.lazy_window = False
        self.ctl = ControlState(bound=set(params))  # masks of batched control flow
        self.checks: list[cst.BaseStatement] = []  # run-time checks before a statement
        self.checked: set[str] = set()
        self.quiet_statement = False  # the statement computes operands the loop skips
        # Arrays written in place (items, `+=`), and those of them that got their batch
        # axis by the write: a caller must see both (a helper writes into its argument).
        self.written: set[str] = set()
        self._written_in_place: set[str] | None = None  # assignments.written_in_place
        self.saw_batched = False  # some expression since this was reset is batched (stmt_Try)
        # raises that a NameError handler could catch in some examples only: checks of
        # names bound in some lanes, calls of user functions with batched values (stmt_Try)
        self.lane_name_errors = 0
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
            raise self._located(
                UnsupportedError, node, "async functions cannot be vectorised", None
            )
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
        return template_expression(template.replace("np.", f"{self.np}."), subs)

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

    def unsupported(self, message: str, hint: str | None = None) -> FallbackError:
        """A form astvmap does not vectorise at the current statement: vmap runs the
        function per example instead (declared, with a PerformanceWarning)."""
        return self.unsupported_at(self.current, message, hint)

    def unsupported_at(
        self, node: cst.CSTNode, message: str, hint: str | None = None
    ) -> FallbackError:
        return self._located(FallbackError, node, message, hint)

    def refuse(self, message: str, hint: str | None = None) -> UnsupportedError:
        """Code the per-example loop gives no meaning to under vmap (a length that differs
        per example, the batch written into state every example shares): refused, never
        run per example."""
        return self._located(UnsupportedError, self.current, message, hint)

    def _located(
        self, kind: type[UnsupportedError], node: cst.CSTNode, message: str, hint: str | None
    ) -> UnsupportedError:
        line = self.file_line(node)
        return kind(
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
        self.node = node


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
            raise FallbackError("cannot unpack this batched container")
        return Val(OBJECT)
    if val.batched:
        raise FallbackError("cannot unpack a batched value of unknown structure")
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
    if val.kind == ARRAY and val.rank:
        # An item along the first axis of an unbatched array of known rank.
        return Val.array(val.rank - 1, dtype=val.dtype)
    return Val(OBJECT)


def _iter_element(it: Val) -> Val:
    if it.kind == TREE:
        if it.element is not None:
            return it.element
        vals = [v for _, v in it.children]
        if len({v.batched for v in vals}) > 1:
            # The loop variable would carry the batch axis in some iterations only.
            raise FallbackError("iterating a container whose items are batched differently")
        return join_all(vals) if vals else Val(OBJECT)
    if it.kind == ARRAY and it.rank:
        return Val.array(it.rank - 1)
    if it.kind == OBJECT and isinstance(it.static, range):
        return Val(SCALAR, rank=0)
    return Val(SCALAR, rank=0) if it.kind == OBJECT and it.sample is NOVALUE else Val(OBJECT)


def _join_envs(a: dict[str, Val], b: dict[str, Val]) -> dict[str, Val]:
    out = dict(a)
    for k, v in b.items():
        out[k] = join(out[k], v) if k in out else v
    return out


NESTED = "<nested vmap>"


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


def _suites_as_blocks(node: cst.FunctionDef, positions: Any) -> tuple[cst.FunctionDef, Any]:
    """``node`` with every one-line suite written as an indented block (one statement a
    line), and the source positions carried over to the nodes that replace them."""
    if not find(node, cst.SimpleStatementSuite):
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
