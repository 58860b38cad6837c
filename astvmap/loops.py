"""The translator's loops: ``for`` and ``while``, run dry to a fixpoint of the
abstract environment first, then emitted once from the final facts; ``for`` over a
batched ``range`` bound. Masked (batched) loops are in ``control.py``.
"""

from __future__ import annotations

import collections
from typing import Any

import libcst as cst
import libcst.matchers

from .assignments import _view_roots
from .control import LoopInfo
from .core import _iter_element, _join_envs
from .syntax import _has_return, _line, _marked_line, _target_names, _walk_names
from .values import ARRAY, SCALAR, TREE, Val

# Work done translating loops, for tests/test_loop_depth.py: "loop statements" counts
# every translation of a loop statement (dry or real, its body included), "fixpoint
# passes" every dry pass over a loop body. Both must grow linearly with the depth of
# nested loops (each used to grow 2-5x per level).
COUNTS: collections.Counter[str] = collections.Counter()

# Calls that read every local variable: a loop that makes them sees names it does not mention.
_ALL_LOCALS = frozenset({"locals", "vars", "eval", "exec", "dir"})


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

    # ------------------------------------------------------- dry loop statements
    # The scalar control flags a loop statement may change (a memo hit replays them).
    _FLAGS = (
        "terminated",
        "result_set",
        "alive_all",
        "placeholder",
        "init_at_top",
        "result_pending",
    )

    def dry_loop_statement(self, stmt: cst.For | cst.While) -> list[cst.BaseStatement]:
        """A loop met again in a dry run, from a state that agrees on what it reads,
        changes the state in the same way: the change is replayed, its body not run.

        The loops around it reach it on every pass of their fixpoints and of their dry
        runs as plain and as masked loops, each time from a different state, so keying
        on the whole state made translation time grow 2-5x per level of nesting. What
        a loop's translation reads is the state of the names it mentions (and whether
        it runs under a mask): keyed on that, it is run once per distinct entry state
        of its own names, and translation time grows linearly with the depth.
        Loops holding a `return` are not replayed (a return changes the loops and
        frames around them); in a function that calls locals(), vars(), dir(), eval or exec
        the key is the whole state."""
        returns = ("returns", id(stmt))
        if returns not in self.stmt_memo:
            self.stmt_memo[returns] = _has_return(stmt)
        if self.stmt_memo[returns]:
            return self.translate_statement(stmt)
        names = self.loop_names(stmt)
        key = (id(stmt), self.loop_entry_state(names))
        hit = self.stmt_memo.get(key)
        if hit is not None:
            self.replay_loop(hit)
            return []
        out, change = self.capture_loop(stmt, names)
        if change is not None:
            self.stmt_memo[key] = change
        return out

    def loop_names(self, stmt: cst.CSTNode) -> frozenset[str] | None:
        """The names ``stmt``'s translation may read: those it mentions, and those of
        every local def, lambda and class of the function (a call of one reads the names
        of its body); None where it may read any (locals(), vars(), dir(), eval, exec)."""
        key = ("names", id(stmt))
        if key not in self.stmt_memo:
            if ("closures",) not in self.stmt_memo:
                nested = libcst.matchers.findall(
                    self.node.body,
                    libcst.matchers.FunctionDef()
                    | libcst.matchers.Lambda()
                    | libcst.matchers.ClassDef(),
                )
                closures = frozenset(name for node in nested for name in _walk_names(node))
                self.stmt_memo[("closures",)] = closures
            opaque = self.local_names & _ALL_LOCALS
            names = frozenset(_walk_names(stmt)) | self.stmt_memo[("closures",)]
            self.stmt_memo[key] = None if opaque else names
        return self.stmt_memo[key]

    def loop_entry_state(self, names: frozenset[str] | None) -> tuple:
        """What a dry run of a loop mentioning ``names`` reads of the state, as a key.

        Frames outside the loop are read only through the innermost one's entry (a
        masked assignment keeps the old value of a name bound on entry), the names
        some frame may leave unbound, and whether there is a mask at all; the loops
        around it only through the names bound before all of them (maybe_bound)."""
        if names is None:
            return self.analysis_state()
        ctl = self.ctl
        loops_before = tuple(loop.before for loop in ctl.loops)
        frames = ctl.frames
        inner = None
        if frames:
            maybe = frozenset().union(*(f.maybe for f in frames)) & names
            inner = (frames[-1].kind, frames[-1].entry & names, maybe)
        before_all = frozenset(
            n for n in names if all(before is not None and n in before for before in loops_before)
        )
        aliases = frozenset(
            (k, frozenset(v)) for k, v in self.aliases.items() if k in names or v & names
        )
        return (
            tuple((k, self.env[k]) for k in sorted(names) if k in self.env),
            inner,
            before_all,
            frozenset(ctl.bound) & names,
            frozenset(ctl.partial) & names,
            frozenset(ctl.loop_born) & names,
            frozenset(self.weak) & names,
            aliases,
            (ctl.result_set, ctl.alive_all),
        )

    def capture_loop(
        self, stmt: cst.For | cst.While, names: frozenset[str] | None
    ) -> tuple[list[cst.BaseStatement], dict | None]:
        """Translate ``stmt``; also how it changed the state (None: not replayable)."""
        ctl = self.ctl
        env, weak = dict(self.env), set(self.weak)
        sets = {"bound": set(ctl.bound), "temps": set(ctl.temps)}
        maps = {"partial": dict(ctl.partial), "loop_born": dict(ctl.loop_born)}
        flags = {name: getattr(ctl, name) for name in self._FLAGS}
        aliases, written, grown = dict(self.aliases), set(self.written), set(self.grown)
        loops = [(loop, _loop_flags(loop)) for loop in ctl.loops]
        # The names the loop assigns under a mask are added to every frame around it:
        # collected apart, so that a replay adds them whatever the frames held before.
        frames = list(ctl.frames)
        held = [f.assigned for f in frames]
        for f in frames:
            f.assigned = set()
        try:
            out = self.translate_statement(stmt)
        finally:
            added = [f.assigned for f in frames]
            for f, old in zip(frames, held):
                old |= f.assigned
                f.assigned = old
        ctl = self.ctl
        change = {
            "env": _changed(env, self.env),
            "weak": _changed_set(weak, self.weak),
            "bound": _changed_set(sets["bound"], ctl.bound),
            "temps": _changed_set(sets["temps"], ctl.temps),
            "partial": _changed(maps["partial"], ctl.partial),
            "loop_born": _changed(maps["loop_born"], ctl.loop_born),
            "aliases": _changed(aliases, self.aliases),
            "written": _changed_set(written, self.written),
            "grown": _changed_set(grown, self.grown),
            "flags": {k: getattr(ctl, k) for k, v in flags.items() if getattr(ctl, k) != v},
            "assigned": added[0] if added else set(),
        }
        if any(a != change["assigned"] for a in added) or any(
            _loop_flags(loop) != was for loop, was in loops
        ):
            return out, None
        if names is not None:
            touched = set(change["assigned"])
            for part in ("env", "weak", "bound", "partial", "loop_born", "aliases"):
                touched |= _keys(change[part])
            if touched - names - ctl.temps:
                return out, None  # it changed a name it does not mention: not replayable
        return out, change

    def replay_loop(self, change: dict) -> None:
        """Apply a change recorded by capture_loop."""
        ctl = self.ctl
        self.env = _apply(self.env, change["env"])
        self.weak = _apply_set(self.weak, change["weak"])
        ctl.bound = _apply_set(ctl.bound, change["bound"])
        ctl.temps = _apply_set(ctl.temps, change["temps"])
        ctl.partial = _apply(ctl.partial, change["partial"])
        ctl.loop_born = _apply(ctl.loop_born, change["loop_born"])
        self.aliases = _apply(self.aliases, change["aliases"])
        self.written = _apply_set(self.written, change["written"])
        self.grown = _apply_set(self.grown, change["grown"])
        for name, value in change["flags"].items():
            setattr(ctl, name, value)
        for frame in ctl.frames:
            frame.assigned |= change["assigned"]

    def fixpoint(self, run_body: Any, loop: cst.CSTNode) -> dict[str, Val]:
        head = dict(self.env)
        for _ in range(20):
            COUNTS["fixpoint passes"] += 1
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
        COUNTS["loop statements"] += 1
        if node.asynchronous is not None:
            raise self.unsupported_at(node, "async for is not supported")
        bound = self.batched_range_bound(node)
        if bound is not None:
            return self.for_batched_range(node, bound, marker)
        iter_code, it = self.expr(node.iter)
        pre = self.emit_pending(marker)
        if it.batched and it.kind != TREE:
            if it.kind == ARRAY and it.rank == 1:
                # Per example the items of a vector are scalars, copies read as the loop
                # reaches them; the batched rows are views, which a write into the array
                # in the body would change after they are bound: copy each as it comes.
                iter_code = self.parse(
                    "(row.copy() for row in np.moveaxis({x}, 1, 0))", x=iter_code
                )
                elem = Val.array(0, True)
            elif it.kind == ARRAY and it.rank:
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
        COUNTS["loop statements"] += 1

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


def _loop_flags(loop: LoopInfo) -> tuple:
    return (loop.masked_break, loop.masked_continue, loop.masked_return, loop.batched_test)


def _changed(before: dict, after: dict) -> tuple[set, dict]:
    """(keys removed, keys set to a new value) from ``before`` to ``after``."""
    removed = {k for k in before if k not in after}
    changed = {k: v for k, v in after.items() if k not in before or not _same_val(before[k], v)}
    return removed, changed


def _same_val(a: Any, b: Any) -> bool:
    return a is b or type(a) is type(b) and a == b


def _keys(change: tuple[set, Any]) -> set:
    """The names a change recorded by _changed or _changed_set touches."""
    removed, changed = change
    return removed | set(changed)


def _changed_set(before: set, after: set) -> tuple[set, set]:
    """(items removed, items added) from ``before`` to ``after``."""
    return before - after, after - before


def _apply(d: dict, change: tuple[set, dict]) -> dict:
    removed, changed = change
    out = {k: v for k, v in d.items() if k not in removed}
    out.update(changed)
    return out


def _apply_set(s: set, change: tuple[set, set]) -> set:
    removed, added = change
    return (s - removed) | added
