"""Read a Python file into functions without running it (for ``astvmap emit FILE.py:FUNC``).

A reviewer must see what would run without running the file: its top level may
raise, print or write files. So the file is parsed, and only the top-level
statements whose effect is known without running them are turned into a namespace:

- imports of numpy, scipy, astvmap and the standard library. Importing these runs
  none of the user's code; a local or third-party module might, so those imports
  are left out;
- assignments of literals or of pure expressions over them (arithmetic, bound
  names, a few NumPy constructors: ``np.array([1.0, 2.0]) / 3``);
- ``def`` statements, compiled from the file's own syntax tree: annotations are
  dropped (never evaluated), defaults are evaluated as above or left unset, and
  decorators are not run (``@vmap(...)`` excepted: it is astvmap's own);
- ``class`` statements made only of fields, literals and plain methods
  (NamedTuples, dataclasses).

Everything else is skipped and remembered, so that when the function needs a
skipped name the error says where the name is bound and why it was not. The file's
text is registered in linecache under its real path, and the code objects carry
the real line numbers: the pipeline finds the source and reports ``file:line``
exactly as for an imported module.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import linecache
import operator
import symtable
import sys
import tokenize
import types
from pathlib import Path
from typing import Any

import numpy as np

# Importing these runs no user code. (antigravity and this print or open a browser.)
SAFE_MODULES = (set(sys.stdlib_module_names) - {"antigravity", "this"}) | {
    "numpy",
    "scipy",
    "astvmap",
}

# Calls a constant's definition may make: pure constructors, no I/O, no global state.
_PURE_NUMPY = (
    "array asarray zeros ones full eye identity arange linspace diag float16 float32 float64 "
    "int8 int16 int32 int64 uint8 complex64 complex128 bool_ dtype sqrt exp log deg2rad radians"
)
_PURE_BUILTINS = (float, int, complex, bool, tuple, list, dict, set, frozenset, range, abs, round)
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.MatMult: operator.matmul,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_ARRAY_ATTRS = {"T", "shape", "ndim", "size", "dtype", "real", "imag"}
_METHOD_DECORATORS = (staticmethod, classmethod, property)
_DATA = (bool, int, float, complex, str, bytes, tuple, list, dict, set, np.ndarray, np.generic)


class NotStatic(Exception):
    """An expression whose value is not known without running the file's code."""


class Unevaluated:
    """The default of a parameter whose default expression was not evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<not evaluated: {self.text}>"


def _pure_callables() -> set[int]:
    from .api import vmap

    ids = {id(getattr(np, n)) for n in _PURE_NUMPY.split()}
    return ids | {id(f) for f in _PURE_BUILTINS} | {id(vmap)}


class Evaluator:
    """Evaluates the small, side-effect-free part of Python a constant is written in."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.pure = _pure_callables()

    def __call__(self, node: ast.expr) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise NotStatic(type(node).__name__)
        return method(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.namespace:
            return self.namespace[node.id]
        if hasattr(builtins, node.id):
            return getattr(builtins, node.id)
        raise NotStatic(node.id)

    def _Attribute(self, node: ast.Attribute) -> Any:
        value = self(node.value)
        # Attributes of modules and array properties only: others may run code.
        if isinstance(value, types.ModuleType) or (
            isinstance(value, np.ndarray) and node.attr in _ARRAY_ATTRS
        ):
            try:
                return getattr(value, node.attr)
            except AttributeError:
                raise NotStatic(ast.unparse(node)) from None
        raise NotStatic(ast.unparse(node))

    def _Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self(e) for e in node.elts)

    def _List(self, node: ast.List) -> Any:
        return [self(e) for e in node.elts]

    def _Set(self, node: ast.Set) -> Any:
        return {self(e) for e in node.elts}

    def _Dict(self, node: ast.Dict) -> Any:
        if any(k is None for k in node.keys):
            raise NotStatic("**")
        return {self(k): self(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]

    def data(self, node: ast.expr) -> Any:
        """A value whose operators are NumPy's or Python's own, never the file's code."""
        value = self(node)
        if not isinstance(value, _DATA):
            raise NotStatic(ast.unparse(node))
        return value

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        if type(node.op) not in _UNARY:
            raise NotStatic(ast.unparse(node))
        return _UNARY[type(node.op)](self.data(node.operand))

    def _BinOp(self, node: ast.BinOp) -> Any:
        if type(node.op) not in _BINARY:
            raise NotStatic(ast.unparse(node))
        left, right = self.data(node.left), self.data(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int) and abs(right) > 64:
            raise NotStatic("a large power")  # 10 ** 10 ** 10 would hang
        return _BINARY[type(node.op)](left, right)

    def _Subscript(self, node: ast.Subscript) -> Any:
        return self.data(node.value)[self(node.slice)]

    def _Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else self(p) for p in parts))

    def _Call(self, node: ast.Call) -> Any:
        func = self(node.func)
        pure = id(func) in self.pure or getattr(func, "__module__", None) in ("math", "cmath")
        if not pure or any(isinstance(a, ast.Starred) for a in node.args):
            raise NotStatic(ast.unparse(node.func))
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise NotStatic("**")
            kwargs[kw.arg] = self(kw.value)
        return func(*(self(a) for a in node.args), **kwargs)


@dataclasses.dataclass
class StaticModule:
    """A file read without running it: what could be bound, and what was skipped and why."""

    path: Path
    filename: str
    text: str
    tree: ast.Module
    namespace: dict[str, Any]
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    # Every top-level def, as written and as compiled (undecorated).
    defs: dict[str, ast.FunctionDef] = dataclasses.field(default_factory=dict)
    raw: dict[str, types.FunctionType] = dataclasses.field(default_factory=dict)
    unevaluated: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def evaluate(self) -> Evaluator:
        return Evaluator(self.namespace)

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    # ------------------------------------------------------------ binding
    def bind(self, name: str, value: Any) -> None:
        self.namespace[name] = value
        self.skipped.pop(name, None)

    def skip(self, names: list[str], why: str) -> None:
        for name in names:
            self.namespace.pop(name, None)
            self.skipped[name] = why

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._import(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            self._assign(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            self._def(stmt)
        elif isinstance(stmt, ast.ClassDef):
            self._class(stmt)
        else:
            kind = type(stmt).__name__.lower()
            self.skip(bound_names(stmt), f"bound inside a top-level `{kind}` at {self.where(stmt)}")

    def _import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        names = bound_names(stmt)
        if isinstance(stmt, ast.ImportFrom):
            roots = [] if stmt.level else [(stmt.module or "").split(".")[0]]
        else:
            roots = [a.name.split(".")[0] for a in stmt.names]
        if not roots or any(r not in SAFE_MODULES for r in roots):
            self.skip(
                names,
                f"imported at {self.where(stmt)}; static emit imports only numpy, scipy, "
                "astvmap and the standard library, since other modules may run code",
            )
            return
        try:
            exec(
                compile(ast.Module([stmt], []), self.filename, "exec"), self.namespace
            )  # noqa: S102
        except Exception as exc:  # an import that fails here would fail for the user too
            self.skip(names, f"its import at {self.where(stmt)} failed: {exc}")
            return
        for name in names:
            self.skipped.pop(name, None)

    def _assign(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = bound_names(stmt)
        if stmt.value is None:  # `x: int` binds nothing
            return
        simple = all(
            isinstance(t, ast.Name)
            or (isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name) for e in t.elts))
            for t in targets
        )
        try:
            if not simple:
                raise NotStatic("target")
            value = self.evaluate(stmt.value)
            for target in targets:
                if isinstance(target, ast.Name):
                    self.bind(target.id, value)
                else:
                    values = tuple(value)
                    if len(values) != len(target.elts):
                        raise NotStatic("unpacking")
                    for elt, v in zip(target.elts, values):
                        self.bind(elt.id, v)  # type: ignore[attr-defined]
        except Exception:  # NotStatic, or the expression itself raises (1 / 0)
            self.skip(
                names, f"assigned by code at {self.where(stmt)}, which static emit does not run"
            )

    def _def(self, stmt: ast.FunctionDef) -> None:
        fn = self.compile_def(stmt)
        self.defs[stmt.name] = stmt
        self.raw[stmt.name] = fn
        value: Any = fn
        for dec in reversed(stmt.decorator_list):
            try:
                decorator = self.evaluate(dec)
            except Exception:
                decorator = None
            if not _is_vmap_decorator(decorator):
                self.skip(
                    [stmt.name],
                    f"decorated with @{ast.unparse(dec)} at {self.where(dec)}, "
                    "which static emit does not run",
                )
                return
            value = decorator(value)
        self.bind(stmt.name, value)

    def compile_def(self, stmt: ast.FunctionDef, qualname: str | None = None) -> types.FunctionType:
        """The function a def statement makes, without running its decorators or annotations."""
        node = copy.deepcopy(stmt)
        node.decorator_list = []
        node.returns = None
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                arg.annotation = None
        defaults = [self._default(d, stmt) for d in args.defaults]
        kwdefaults = {
            a.arg: self._default(d, stmt) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d
        }
        args.defaults, args.kw_defaults = [], [None] * len(args.kwonlyargs)
        local: dict[str, Any] = {}
        exec(
            compile(ast.Module([node], []), self.filename, "exec"), self.namespace, local
        )  # noqa: S102
        fn = local[stmt.name]
        fn.__defaults__ = tuple(defaults) or None
        fn.__kwdefaults__ = kwdefaults or None
        if qualname:
            fn.__qualname__ = qualname
        return fn

    def _default(self, node: ast.expr, stmt: ast.FunctionDef) -> Any:
        try:
            return self.evaluate(node)
        except Exception:
            self.unevaluated.setdefault(stmt.name, []).append(ast.unparse(node))
            return Unevaluated(ast.unparse(node))

    def _class(self, stmt: ast.ClassDef) -> None:
        try:
            cls = self._build_class(stmt)
        except Exception as exc:
            self.skip(
                [stmt.name],
                f"a class at {self.where(stmt)} that static emit cannot build without "
                f"running code ({exc})",
            )
            return
        self.bind(stmt.name, cls)

    def _build_class(self, stmt: ast.ClassDef) -> type:
        if stmt.keywords:
            raise NotStatic("class keywords")
        bases = tuple(self.evaluate(b) for b in stmt.bases)
        decorators = [self.evaluate(d) for d in stmt.decorator_list]
        if any(getattr(d, "__module__", None) != "dataclasses" for d in decorators):
            raise NotStatic("a decorator other than @dataclass")
        body: dict[str, Any] = {"__module__": self.namespace["__name__"], "__qualname__": stmt.name}
        annotations: dict[str, str] = {}
        for item in stmt.body:
            self._class_item(stmt, item, body, annotations)
        body["__annotations__"] = annotations
        cls = types.new_class(stmt.name, bases, {}, lambda ns: ns.update(body))
        for decorator in reversed(decorators):
            cls = decorator(cls)
        return cls

    def _class_item(
        self, cls: ast.ClassDef, item: ast.stmt, body: dict[str, Any], annotations: dict
    ) -> None:
        if isinstance(item, ast.Pass) or (
            isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant)
        ):
            if isinstance(item, ast.Expr) and "__doc__" not in body:
                body["__doc__"] = item.value.value  # type: ignore[attr-defined]
            return
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            # Kept as text: NamedTuple and dataclass need the field, not its type.
            annotations[item.target.id] = ast.unparse(item.annotation)
            if item.value is not None:
                body[item.target.id] = self.evaluate(item.value)
            return
        if isinstance(item, ast.Assign) and all(isinstance(t, ast.Name) for t in item.targets):
            value = self.evaluate(item.value)
            body.update({t.id: value for t in item.targets})  # type: ignore[attr-defined]
            return
        if isinstance(item, ast.FunctionDef):
            decorators = [self.evaluate(d) for d in item.decorator_list]
            if not all(d in _METHOD_DECORATORS for d in decorators):
                raise NotStatic(f"a method decorator at line {item.lineno}")
            value: Any = self.compile_def(item, qualname=f"{cls.name}.{item.name}")
            for decorator in reversed(decorators):
                value = decorator(value)
            body[item.name] = value
            return
        raise NotStatic(f"a `{type(item).__name__}` statement at line {item.lineno}")

    # ------------------------------------------------------------ queries
    def function(self, name: str) -> Any:
        """The function ``name`` as the file defines it: a VmappedFunction when
        decorated with ``@vmap``, else the undecorated def."""
        if name not in self.raw:
            if name in self.skipped:
                detail = f"{name} is {self.skipped[name]}"
            elif name in self.namespace:
                detail = f"{name} is a {type(self.namespace[name]).__name__}, not a def"
            else:
                detail = f"defs: {', '.join(self.raw) or 'none'}"
            raise LookupError(
                f"{self.path} has no top-level def {name!r} ({detail}); for a callable "
                "object made by code, use the module form (astvmap emit package.module:NAME)"
            )
        value = self.namespace.get(name)
        return value if _is_vmapped(value) else self.raw[name]

    def unbound_names(self, name: str) -> list[str]:
        """Why each global the function reads (through the file's other functions) is unbound."""
        problems = []
        for needed in sorted(self._globals_read(name)):
            if needed in self.namespace or hasattr(builtins, needed):
                continue
            why = self.skipped.get(needed, f"not defined at the top level of {self.path}")
            problems.append(f"{needed}: {why}")
        return problems

    def unevaluated_defaults(self, name: str) -> list[str]:
        """The defaults left unset in the function and the file's functions it calls."""
        reached = {name} | (self._globals_read(name) & set(self.raw))
        return [
            f"{fn}({', '.join(self.unevaluated[fn])}) at {self.where(self.defs[fn])}"
            for fn in sorted(reached & set(self.unevaluated))
        ]

    def _globals_read(self, name: str) -> set[str]:
        top = symtable.symtable(self.text, self.filename, "exec")
        tables = {t.get_name(): t for t in top.get_children() if t.get_type() == "function"}
        todo, seen, names = [name], set(), set()
        while todo:
            current = todo.pop()
            if current in seen or current not in tables:
                continue
            seen.add(current)
            found = _table_globals(tables[current])
            names |= found
            todo += [n for n in found if n in self.raw]
        return names


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    found = {s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()}
    for child in table.get_children():
        found |= _table_globals(child)
    return found


def _is_vmapped(value: Any) -> bool:
    from .api import VmappedFunction

    return isinstance(value, VmappedFunction)


def _is_vmap_decorator(decorator: Any) -> bool:
    from .api import vmap

    return decorator is vmap or (
        getattr(decorator, "__module__", None) == "astvmap.api"
        and getattr(decorator, "__qualname__", "") == "vmap.<locals>.wrap"
    )


def bound_names(stmt: ast.stmt) -> list[str]:
    """The module-level names a statement may bind."""
    if isinstance(stmt, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in stmt.names]
    if isinstance(stmt, ast.ImportFrom):
        return [a.asname or a.name for a in stmt.names if a.name != "*"]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    names = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += bound_names(node)
    return names


def read(path: Path) -> StaticModule:
    """Parse ``path`` and bind what can be bound without running it."""
    filename = str(path.resolve())
    with tokenize.open(filename) as f:  # honours a coding cookie, as import would
        text = f.read()
    tree = ast.parse(text, filename)
    # The pipeline reads sources through linecache: pin this exact text (mtime None
    # keeps checkcache from dropping it), so lines stay right even if the file changes.
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict[str, Any] = {
        "__name__": f"astvmap_static.{path.stem}",
        "__file__": filename,
        "__builtins__": builtins,
    }
    module = StaticModule(path=path, filename=filename, text=text, tree=tree, namespace=namespace)
    for stmt in tree.body:
        module.statement(stmt)
    return module


__all__ = ["read", "StaticModule", "Unevaluated", "Evaluator", "NotStatic", "SAFE_MODULES"]
