"""The translator's calls: library functions through the batching rules
(``rules/``), methods, unbatched calls, nested ``vmap`` and user functions
(specialised per argument signature, recursion refused).
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import sys
import types
from typing import Any

import libcst as cst
import numpy as np

import astvmap.rules as rules
from astvmap.rules import Arg, CallSite

from . import selections, source
from .core import NESTED, _is_literal, _LocalDef, _namespace_val, _val_key
from .errors import NeedsBatchError, UnsupportedError
from .guards import ARGUMENT, MODULE
from .source import get_source
from .syntax import _code, _walk_names
from .values import ARRAY, NOVALUE, OBJECT, SCALAR, SELECTION, TREE, Val


class Calls:
    """Mixin for ``Translator``: calls and user functions."""

    def expr_Call(self, node: cst.Call) -> tuple[cst.BaseExpression, Val]:
        return self.call(node)

    # calls ---------------------------------------------------------------------
    def lazy_arguments(self, target: Any) -> bool:
        """Does ``target`` reduce its first argument (``np.sum``, ``len``), or is it a
        ufunc whose result is reduced: a window there may stay a selection."""
        known = selections._hashable(target)
        return (
            known in selections.REDUCTIONS
            or target is len
            or (self.lazy_window and isinstance(target, np.ufunc) and target.nout == 1)
        )

    def call_args(self, node: cst.Call, lazy: bool = False) -> tuple[list[Arg], dict[str, Arg]]:
        """The call's arguments; ``*`` and ``**`` of containers whose items are known are
        spread into them. Raises ``_Opaque`` for a star argument of unknown length, and
        refuses when such a call would be handed a batched value. ``lazy``: the first
        positional argument is reduced (see ``Expressions.expr``)."""
        args: list[Arg] = []
        kwargs: dict[str, Arg] = {}
        opaque = False
        for n, a in enumerate(node.args):
            first = n == 0 and a.keyword is None and not a.star
            code, val = self.expr(a.value, lazy=lazy and first)
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
            state = self.translation_state()
            lazy = func.attr.value in selections.METHODS
            recv_code, recv = self.expr(func.value, lazy=lazy)
            if recv.kind == SELECTION:
                args, kwargs = self.call_args(node)
                self.current = node
                try:
                    return selections.call(
                        self, func, None, [Arg(recv_code, recv), *args], kwargs, func.attr.value
                    )
                except UnsupportedError:
                    if not selections.lazy_windows([recv]):
                        raise
                # x[i:i + k].cumsum(), .sum(axis=1): the window gathered.
                self.restore_translation_state(state)
                recv_code, recv = self.expr(func.value)
                self.current = node
            if recv.kind in (ARRAY, SCALAR) and (recv.batched or not recv.is_static):
                return self.method_call(node, func.attr.value, Arg(recv_code, recv))
            func_code, callee = self.attribute(func, recv_code, recv)
            receiver = Arg(recv_code, recv)
        else:
            lam = self.local_lambda(node)
            if lam is not None:
                return self.inline_lambda(node, lam)
            func_code, callee = self.expr(func)
            if self.iterated_once(node):
                spread = _map_over_literals(node, callee)
                if spread is not None:
                    return self.expr(spread)
            if callee.is_static and callee.static in (list, tuple) and len(node.args) == 1:
                inner = node.args[0].value
                if isinstance(inner, cst.Call) and not node.args[0].star:
                    spread = _map_over_literals(inner, self.expr(inner.func)[1])
                    if spread is not None:  # list(map(f, [a, b])): the list it makes
                        node = node.with_changes(args=[node.args[0].with_changes(value=spread)])
        target = callee.static if callee.is_static else callee.sample
        state = self.translation_state()
        try:
            args, kwargs = self.call_args(node, lazy=self.lazy_arguments(target))
        except _Opaque:
            return self.opaque_call(node, func_code)
        self.current = node
        if not callee.is_static and callee.origin is not None and target is not NOVALUE:
            # A function (or object) passed in: the code is specialised on which one.
            self.program.guard(callee.origin, target)
        owner = self.callee_owner(callee, func_code)
        if any(selections.contains(a.val) for a in (*args, *kwargs.values())):
            try:
                return selections.call(self, func_code, target, args, kwargs)
            except UnsupportedError:
                if not selections.lazy_windows([a.val for a in (*args, *kwargs.values())]):
                    raise
            # np.sum(x[i:i + k], axis=1), np.sum(x[i:i + k], where=w): the window gathered.
            self.restore_translation_state(state)
            args, kwargs = self.call_args(node)
            self.current = node
        if selections.makes_positions(target, args, kwargs):
            return selections.positions(self, target, args[0])
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
        raise self.unsupported(
            f"no batching rule for `{name}` ({_describe_callee(target)})",
            "use NumPy functions that astvmap knows (see the README's table), "
            "or move the call out of the vmapped function",
        )

    def iterated_once(self, node: cst.Call) -> bool:
        """Is ``node`` the whole right side of an unpacking (``a, b = node``)? The map
        iterator it makes is then consumed at once, so the list written out in its place
        is read exactly as the iterator would be (a map kept in a name and read twice
        would be empty the second time; a list would not)."""
        stmt = getattr(self, "current_stmt", None)
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return False
        assign = stmt.body[0]
        return (
            isinstance(assign, cst.Assign)
            and assign.value is node
            and all(isinstance(t.target, (cst.Tuple, cst.List)) for t in assign.targets)
        )

    def local_lambda(self, call: cst.Call) -> cst.Lambda | None:
        """The lambda a call calls directly (``f(x)`` after ``f = lambda v: ...``, or
        ``(lambda v: ...)(x)``) when it reads batched values through its closure."""
        func = call.func
        if isinstance(func, cst.Lambda):
            lam = func
        elif isinstance(func, cst.Name) and func.value in self.env:
            local = self.env[func.value].static
            if not isinstance(local, _LocalDef) or not isinstance(local.node, cst.Lambda):
                return None
            lam = local.node
        else:
            return None
        names = _LocalDef(lam).names
        if any(n in self.env and self.env[n].batched for n in names):
            return lam
        with self.dry():
            batched = any(self.expr(a.value)[1].batched for a in call.args)
        return lam if batched else None

    def inline_lambda(self, node: cst.Call, lam: cst.Lambda) -> tuple[cst.BaseExpression, Val]:
        """The lambda's body translated where it is called, its parameters bound to the
        call's arguments and its free names read from this scope, as Python reads them
        when the lambda runs: ``(lambda v: <batched body>)(x)``."""
        params = lam.params
        plain = list(params.params)
        if (
            params.posonly_params
            or params.kwonly_params
            or isinstance(params.star_arg, cst.Param)
            or params.star_kwarg is not None
            or any(p.default is not None for p in plain)
            or any(a.star or a.keyword is not None for a in node.args)
            or len(node.args) != len(plain)
        ):
            raise self.unsupported(
                "calling a lambda that reads batched values with defaults, keywords or "
                "* arguments",
                "pass every argument positionally, or define the helper at module level",
            )
        args = [self.expr(a.value) for a in node.args]
        names = [p.name.value for p in plain]
        saved = (dict(self.env), set(self.weak), dict(self.ctl.partial), dict(self.ctl.loop_born))
        for name, (_, val) in zip(names, args):
            self.env[name] = val
            self.weak.discard(name)
            self.ctl.partial.pop(name, None)
            self.ctl.loop_born.pop(name, None)
        self.comp_depth += 1  # nothing of the body may be hoisted out of the lambda
        hoisted = len(self.pending)
        try:
            body, val = self.expr(lam.body)
        finally:
            self.comp_depth -= 1
            self.env, self.weak = saved[0], saved[1]
            self.ctl.partial, self.ctl.loop_born = saved[2], saved[3]
        for stmt in self.pending[hoisted:]:
            if set(names) & set(_walk_names(stmt)):
                raise self.unsupported(
                    "this expression inside a lambda needs a statement of its own",
                    "define the helper at module level",
                )
        func = lam.with_changes(body=body, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return cst.Call(func=func, args=[cst.Arg(code) for code, _ in args]), val

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
        raise self.unsupported(
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
        text = _code(func_code).strip()
        base, _, path = text.partition(".")
        module = self.env.get(base)
        if path and module is not None and isinstance(module.static, types.ModuleType):
            try:
                source.lookup(self.source.fn, base)
            except KeyError:  # bound by an import in the function's body
                return (f"{MODULE}{module.static.__name__}:{path}",)
        return (*self.owner, text)

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
            # type(self): the Translator (rewrite.py assembles it from this family and the others)
            sub = type(self)(self.program, src, params, src.name, owner)
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
        self.lane_name_errors += 1  # its unbound-name checks are its own (stmt_Try)
        sig = inspect.signature(fn, follow_wrapped=False)
        params, key = self.bind_params(fn, args, kwargs)
        bound = sig.bind(*args, **kwargs)
        if key not in self.program.specialisations:
            self.check_recursion_depth(fn)
            saved = self.program.snapshot()
            name = self.program.fresh(f"{fn.__name__}_vmap")
            self.program.specialisations[key] = (name, None)
            if _is_adapter(fn):
                owner = (*self.owner, NESTED)
            src = get_source(fn)
            sub = type(self)(self.program, src, params, name, owner)
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
            raise self.unsupported(
                f"recursive call to {fn.__name__} with batched arguments, its depth not "
                "decided by values known when transforming",
                "pass the depth as a literal or module constant and count it down "
                "(each depth is then specialised), or loop instead of recursing",
            )
        # Defaults are passed explicitly: the generated def has none.
        call_args = [cst.Arg(value=a.code) for a in args]
        call_args += [cst.Arg(value=a.code, keyword=cst.Name(k)) for k, a in kwargs.items()]
        call_args += self.default_arguments(fn, func_code, sig, bound.arguments)
        return cst.Call(func=cst.Name(name), args=call_args), ret

    def check_recursion_depth(self, fn: types.FunctionType) -> None:
        """Each depth of a recursion counted down by a constant is its own
        specialisation; a very deep one would exhaust Python's stack while transforming."""
        open_now = sum(
            1
            for k, (_, ret) in self.program.specialisations.items()
            if ret is None and k[0] is fn.__code__
        )
        if open_now >= MAX_STATIC_RECURSION:
            raise self.unsupported(
                f"recursion of {fn.__name__} deeper than {MAX_STATIC_RECURSION} levels "
                "(each level is specialised while transforming)",
                "loop instead of recursing",
            )

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


# Levels of a recursion unrolled while transforming (one specialisation each).
MAX_STATIC_RECURSION = 30

# Modules whose functions are library code: never transformed, only matched to rules.
LIBRARY_ROOTS = {"numpy", "math", "builtins", "cmath", "operator", "functools", "scipy", "astvmap"}


def _bind_args(sig: inspect.Signature, args: list[Arg], kwargs: dict[str, Arg]) -> dict[str, Arg]:
    """Parameter name -> the Arg passed for it (``*args``/``**kwargs`` left out)."""
    bound = sig.bind(*args, **kwargs).arguments
    return {k: v for k, v in bound.items() if isinstance(v, Arg)}


class _Opaque(Exception):
    """A call whose arguments cannot be enumerated (``*args`` of unknown length)."""


def _map_over_literals(node: cst.Call, callee: Val) -> cst.List | None:
    """``map(f, [a, b], ...)`` over literal lists or tuples of one length, written out as
    the list ``[f(a), f(b)]`` it yields, so each call is batched by its own rule
    (``a, b = map(np.asarray, [a, b])``; the caller checks the iterator is consumed at
    once). Only when ``f`` is a name or an attribute chain: looking it up once per item
    then reads the same object as ``map`` does."""
    if not (callee.is_static and callee.static is builtins.map) or len(node.args) < 2:
        return None
    if any(a.star or a.keyword is not None for a in node.args):
        return None
    fn, *iterables = (a.value for a in node.args)
    if not _is_lookup(fn):
        return None
    rows = []
    for it in iterables:
        if not isinstance(it, (cst.List, cst.Tuple)):
            return None
        if any(not isinstance(e, cst.Element) for e in it.elements):
            return None  # a starred item: the length is not written out
        if not all(_is_lookup(e.value) or isinstance(e.value, _CONSTANTS) for e in it.elements):
            return None  # map evaluates every item before the first call; keep that order
        rows.append([e.value for e in it.elements])
    if len({len(r) for r in rows}) != 1:
        return None  # map stops at the shortest: leave it to the general path
    return cst.List(
        [cst.Element(cst.Call(func=fn, args=[cst.Arg(v) for v in items])) for items in zip(*rows)]
    )


_CONSTANTS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)


def _is_lookup(node: cst.BaseExpression) -> bool:
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


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


def _is_adapter(fn: types.FunctionType) -> bool:
    return fn.__code__.co_filename.startswith("<astvmap")


def _is_vmapped(obj: Any) -> bool:
    """An ``api.VmappedFunction`` (or subclass): its class carries the marker."""
    return getattr(type(obj), "__astvmap_vmapped__", False) is True


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


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    return [*params.posonly_params, *params.params, *params.kwonly_params]
