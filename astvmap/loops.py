"""The translator's loops: ``for`` and ``while``, run dry to a fixpoint of the
abstract environment first, then emitted once from the final facts; ``for`` over a
batched ``range`` bound. Masked (batched) loops are in ``control.py``.
"""

from __future__ import annotations

from typing import Any

import libcst as cst
import libcst.matchers

from .assignments import _view_roots
from .control import LoopInfo
from .core import _iter_element, _join_envs
from .syntax import _line, _marked_line, _target_names, _walk_names
from .values import ARRAY, SCALAR, TREE, Val


class Loops:
    """Mixin for ``Translator``: ``for`` and ``while`` loops."""

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
        for name, key, child in _widened_items(env, merged):
            # An item of a dict or list that the other path made batched (`d["n"] = ...`
            # under a batched condition): it gets its batch axis here too.
            item = self.parse("{d}[%r]" % (key,), d=cst.Name(name))
            target = cst.AssignTarget(item)
            stmt = cst.Assign([target], self.materialise(item, child))
            out.append(_marked_line(stmt, marker))
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
                self.check_iterable_not_written(node)
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
            self.check_iterable_not_written(node)
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

    def check_iterable_not_written(self, node: cst.For) -> None:
        """Per example, ``for row in v`` iterates ``v`` itself, so it sees the loop's writes
        into ``v``; the batched loop iterates ``v`` as it was before it got its batch axis
        and would not: refused (the differential tester found it silently wrong)."""
        written: set[str] = set()
        for aug in libcst.matchers.findall(node.body, libcst.matchers.AugAssign()):
            written |= _view_roots(aug.target)
        for target in libcst.matchers.findall(node.body, libcst.matchers.AssignTarget()):
            if isinstance(target.target, cst.Subscript):
                written |= _view_roots(target.target)
        both = sorted(_view_roots(node.iter) & written)
        if both:
            raise self.unsupported_at(
                node,
                f"a `for` loop over `{both[0]}`, which the loop writes into and gives a batch "
                "axis (each example would see its own writes)",
                f"loop over range(len({both[0]})) and index it, or over a copy",
            )

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
        if (
            len(call.args) not in (1, 2, 3)
            or any(a.keyword is not None or a.star for a in call.args)
            or any(v.batched for i, v in enumerate(vals) if i != min(len(vals) - 1, 1))
        ):
            raise self.unsupported_at(
                node,
                "range() with a batched start or step",
                "loop over range(stop) and offset the index",
            )
        if not isinstance(node.target, cst.Name):
            raise self.unsupported_at(node, "unpacking the index of a batched range")
        self.range_start_step(node, vals)
        code, val = self.expr(call.args[0 if len(call.args) == 1 else 1].value)
        if val.rank != 0 or val.dtype not in ("i", "u", None):
            raise self.unsupported_at(node, "range() of a batched value that is not an integer")
        return code, val

    def range_start_step(self, node: cst.For, vals: list[Val]) -> None:
        """``range(start, n, step)`` with a batched ``n``: the step's sign says which way
        the index goes, so it must be known when transforming."""
        if len(vals) == 3:
            step = vals[2].static
            if not isinstance(step, int) or isinstance(step, bool) or step == 0:
                raise self.unsupported_at(
                    node,
                    "range() with a batched stop and a step not known when transforming",
                    "write the step as a literal or a module constant",
                )

    def range_parts(self, node: cst.For) -> tuple[cst.BaseExpression | None, int]:
        """The unbatched start (None: 0) and the step of ``range(...)`` in ``node``."""
        call = node.iter
        assert isinstance(call, cst.Call)
        if len(call.args) == 1:
            return None, 1
        start, _ = self.expr(call.args[0].value)
        if len(call.args) == 2:
            return start, 1
        _, step = self.expr(call.args[2].value)
        return start, step.static

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
        start, step = self.range_parts(node)
        pre += self.emit_pending(marker)
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
            if start is None:
                stop = self.parse("range(np.max({n}, initial=0))", n=n_code)
            else:
                # The examples' ranges share start and step: run to the farthest stop.
                far = "max" if step > 0 else "min"
                stop = self.parse(
                    f"range({{a}}, np.{far}({{n}}, initial={{a}}), {step})", a=start, n=n_code
                )
            return loop.with_changes(iter=stop, body=loop.body.with_changes(body=body))

        out = self.masked_loop(
            node,
            info,
            marker,
            bind,
            header,
            bound=lambda: self.parse("{i} < {n}" if step > 0 else "{i} > {n}", i=target, n=n_code),
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


def _widened_items(env: dict[str, Val], merged: dict[str, Val]) -> list[tuple[str, Any, Val]]:
    """(name, key, item) for the items of dicts and lists ``widen`` gives a batch axis."""
    out = []
    for name, val in env.items():
        other = merged.get(name)
        if val.kind != TREE or other is None or other.kind != TREE:
            continue
        if val.container not in (dict, list) or val.element is not None:
            continue
        for key, child in val.children:
            joined = other.child(key)
            if (
                joined is not None
                and joined.batched
                and not child.batched
                and child.kind in (ARRAY, SCALAR)
            ):
                out.append((name, key, child))
    return out


def _widened_names(env: dict[str, Val], merged: dict[str, Val]) -> list[str]:
    """The names ``widen(env, merged)`` gives a batch axis."""
    return [
        k
        for k, v in env.items()
        if k in merged and merged[k].batched and not v.batched and v.kind in (ARRAY, SCALAR)
    ]
