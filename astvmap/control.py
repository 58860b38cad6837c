"""Control flow on batched values: masked ``if``/``while``/``for``, ``break``,
``continue`` and early ``return`` (DESIGN §6).

Python runs one branch per example; the batch runs every branch, each statement
under a *mask* of the lanes (examples) that would execute it:

- An assignment under a mask keeps the old value in the other lanes:
  ``y = np.where(mask, new, y)``. A name first bound inside the masked region is
  assigned plainly: the other lanes hold values the loop never computes, and a
  later read that could reach them checks (``UnboundLocalError``, as the loop).
- Branches run one after the other on the whole batch; the ``else`` branch sees
  the ``then`` branch's masked writes, which only touched the other lanes.
- ``break``/``continue``/``return`` retire lanes: every mask up to the loop (or
  the function) loses them. A masked ``while`` runs while any lane is active.
- A masked ``return`` writes ``result`` in its lanes; ``alive`` holds the lanes
  still running, and the last ``return`` merges the two.

Floating-point warnings from lanes that the loop would not run are silenced with
``np.errstate(all="ignore")`` around each masked statement; values are unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import libcst as cst

from .compaction import plan_compaction
from .rules.elementwise import align
from .rules.registry import Arg, Context
from .syntax import _mark_header, _with_marker
from .values import ARRAY, NONE, OBJECT, SCALAR, TREE, Val, join


@dataclasses.dataclass
class Frame:
    """One level of masking: the variable holding the lanes that run inside it."""

    kind: str  # "branch", "iter" (one loop iteration), "loop" (the loop), "func"
    mask: str
    entry: frozenset[str]  # names bound when the region was entered
    assigned: set[str] = dataclasses.field(default_factory=set)
    plain: int = 0  # plain ifs/loops around it when entered
    # names that may or may not be bound when the region was entered (bound on
    # some paths only): a masked assignment cannot keep their old value
    maybe: frozenset[str] = frozenset()

    def __deepcopy__(self, memo: dict) -> Frame:
        # Callers hold their frame (masked_if reads what its branches assigned):
        # restoring the control state after a dry run must not swap in a copy. What a
        # dry run adds to ``assigned`` the real run adds again.
        return self


@dataclasses.dataclass
class LoopInfo:
    """What the dry run of a loop body found (decides how the loop is emitted)."""

    base: int  # len(frames) inside the body: a deeper frame means a batched branch
    masked: bool = False  # emitted with an ``active`` mask
    batched_test: bool = False  # a ``while`` whose condition is batched

    def __deepcopy__(self, memo: dict) -> LoopInfo:
        # Found-flags set inside nested dry runs must reach the loop that asked.
        return self

    masked_break: bool = False
    masked_continue: bool = False
    masked_return: bool = False
    # A plain loop's environment at its head: a plain break/continue first gives
    # names the head has batched their batch axis (as the end of the body does).
    head: dict[str, Val] | None = None
    before: frozenset[str] | None = None  # the names known before the loop (None: unknown)
    broke: str | None = None  # the variable of the lanes that left by `break` (loop `else`)


@dataclasses.dataclass
class ControlState:
    frames: list[Frame] = dataclasses.field(default_factory=list)
    loops: list[LoopInfo] = dataclasses.field(default_factory=list)
    temps: set[str] = dataclasses.field(default_factory=set)
    # name -> the mask variable of the lanes in which it is bound
    partial: dict[str, str] = dataclasses.field(default_factory=dict)
    # names first bound inside a masked loop (their line): unreadable after it
    loop_born: dict[str, int] = dataclasses.field(default_factory=dict)
    result_name: str | None = None  # the variable masked returns write
    alive_name: str | None = None  # the variable of the lanes that have not returned
    result_set: bool = False  # ``result`` holds a value
    # names bound at run time at this point (on every path), for masked assignments
    bound: set[str] = dataclasses.field(default_factory=set)
    plain_depth: int = 0  # enclosing plain (unbatched) ifs and loops
    init_at_top: bool = False  # ``alive``/``result`` must exist from the function's start
    result_pending: bool = False  # the function must end with ``return result``
    quiet: int = 0  # depth of masked statements (only the outermost gets errstate)
    alive_all: bool = True  # ``alive`` would still be all-True here
    terminated: bool = False  # every lane of the current region has left it
    placeholder: bool = False  # ``result`` may still hold its placeholder False
    # the variable of the lanes that returned None where others return arrays, and the
    # marker of the first such return (see none_return)
    none_name: str | None = None
    none_marker: str | None = None


class MaskedControl:
    """Mixin for ``Translator``: the masked forms of the control-flow statements."""

    ctl: ControlState

    # ----------------------------------------------------------------- state
    @property
    def mask(self) -> cst.Name | None:
        """The lanes that run the current statement (None: all of them)."""
        return cst.Name(self.ctl.frames[-1].mask) if self.ctl.frames else None

    def saved_control(self) -> tuple:
        return copy.deepcopy(self.ctl), list(self.checks), set(self.checked)

    def restore_control(self, saved: tuple) -> None:
        self.ctl, self.checks, self.checked = saved

    def temp(self, base: str) -> str:
        """A fresh local name that the user's function does not use."""
        name, i = base, 1
        while name in self.local_names or name in self.ctl.temps:
            i += 1
            name = f"{base}_{i}"
        self.ctl.temps.add(name)
        return name

    def small_assign(self, name: str, value: cst.BaseExpression) -> cst.Assign:
        return cst.Assign([cst.AssignTarget(cst.Name(name))], value)

    def line_assign(self, name: str, value: cst.BaseExpression) -> cst.BaseStatement:
        return cst.SimpleStatementLine([self.small_assign(name, value)])

    def truth(self, code: cst.BaseExpression, val: Val) -> cst.BaseExpression:
        """Per-lane ``bool(value)`` of a batched per-example scalar."""
        if val.kind in (ARRAY, SCALAR) and val.rank:
            raise self.refuse(
                "the truth value of a per-example array (the loop raises ValueError)",
                "reduce it first: np.any(...) or np.all(...)",
            )
        if val.kind not in (ARRAY, SCALAR) or val.rank != 0:
            raise self.unsupported(
                "the truth value of a batched value of unknown rank",
                "reduce it first: np.any(...) or np.all(...)",
            )
        if val.dtype == "b":
            return code
        return self.parse("{c} != 0", c=code)

    def where(
        self,
        mask: cst.BaseExpression,
        a: tuple[cst.BaseExpression, Val],
        b: tuple[cst.BaseExpression, Val],
    ) -> tuple[cst.BaseExpression, Val]:
        """``np.where(mask, a, b)`` with the operands' ranks lined up."""
        if _same_sequence(a[1], b[1]):
            # Tuples (``return x, 1`` in some lanes): chosen item by item.
            items = [
                self.where(mask, (_item(a[0], i), va), (_item(b[0], i), vb))
                for i, ((_, va), (_, vb)) in enumerate(zip(a[1].children, b[1].children))
            ]
            container = a[1].container
            elements = [cst.Element(code) for code, _ in items]
            code = cst.Tuple(elements) if container is tuple else cst.List(elements)
            return code, Val.tree(container, [(i, v) for i, (_, v) in enumerate(items)])
        for _code, val in (a, b):
            if val.kind not in (ARRAY, SCALAR):
                raise self.unsupported(
                    "a value that is not an array or a number, chosen by a batched condition",
                    "choose each array on its own",
                )
        args = [Arg(mask, Val.array(0, True, "b")), Arg(*a), Arg(*b)]
        codes, val = align(self, args)
        dtype = a[1].dtype if a[1].dtype == b[1].dtype else None
        code = self.parse("np.where({m}, {a}, {b})", m=codes[0], a=codes[1], b=codes[2])
        return code, Val(ARRAY, batched=True, rank=val.rank, dtype=dtype)

    # ------------------------------------------------------------ assignment
    def masked_name(
        self, name: str, code: cst.BaseExpression, val: Val
    ) -> tuple[cst.BaseExpression, Val]:
        """The value to bind ``name`` to under the current mask."""
        frame = self.ctl.frames[-1]
        for f in self.ctl.frames:
            f.assigned.add(name)
        self.ctl.bound.add(name)
        if name not in frame.entry and name not in self.ctl.partial:
            if any(name in f.maybe for f in self.ctl.frames):
                raise self.unsupported(
                    f"assigning `{name}` under a batched condition where it is bound on "
                    "some paths only (the other examples would keep a value that may "
                    "not exist)",
                    f"bind `{name}` on every path before (e.g. {name} = None is not "
                    "enough: give it a number or an array)",
                )
            return code, val  # first bound here: the other lanes never read it
        if name not in self.env:
            # Bound where this mask began but not on the path translated now (a plain
            # `if` whose other branch returned in some lanes): no value to keep.
            raise self.unsupported(
                f"assigning `{name}` under a batched condition on a path where it is not "
                "bound yet, while other examples bound it before the condition",
                f"bind `{name}` before the `if`",
            )
        if val.kind in (TREE, NONE, OBJECT) or self.env[name].kind in (TREE, NONE, OBJECT):
            raise self.unsupported(
                f"rebinding `{name}` (not an array or a number) under a batched condition",
                "assign each array on its own",
            )
        bound = self.ctl.partial.get(name)
        if bound is not None:
            # Bound in more lanes now: widen its bound-lanes mask.
            self.pending.append(
                self.small_assign(bound, self.parse("{b} | {m}", b=cst.Name(bound), m=self.mask))
            )
        return self.where(self.mask, (code, val), (cst.Name(name), self.env[name]))

    def maybe_bound(
        self, bound: frozenset[str], known: frozenset[str] | None = None
    ) -> frozenset[str]:
        """Names known here (bound on some path) but not bound on every path.

        A name first bound inside an enclosing loop is left out: its value from an
        earlier iteration is a different matter (the lanes' own, or unread)."""
        names = frozenset(self.env) if known is None else known
        return frozenset(
            n
            for n in names - bound
            if all(loop.before is not None and n in loop.before for loop in self.ctl.loops)
        )

    def unmasked_bind(self, name: str) -> None:
        """``name`` is bound in every lane."""
        self.ctl.partial.pop(name, None)
        self.ctl.loop_born.pop(name, None)

    # ------------------------------------------------------------------ reads
    def check_readable(self, name: str) -> None:
        """A read of a name bound in some lanes only: the loop would raise there."""
        if self.dry_depth:
            return
        if name in self.ctl.loop_born:
            raise self.unsupported(
                f"`{name}` is first bound inside a loop that runs a different number of "
                f"times per example (line {self.ctl.loop_born[name]}), and read after it",
                f"bind `{name}` before the loop, so each example keeps its own last value",
            )
        bound = self.ctl.partial.get(name)
        if bound is None or name in self.checked:
            return
        self.checked.add(name)
        self.lane_name_errors += 1
        live = self.mask
        test = (
            self.parse("np.any({m} & ~{b})", m=live, b=cst.Name(bound))
            if live is not None
            else self.parse("not np.all({b})", b=cst.Name(bound))
        )
        message = f"cannot access local variable '{name}' where it is not associated with a value"
        self.checks.append(
            cst.If(
                test=test,
                body=cst.IndentedBlock(
                    [
                        cst.SimpleStatementLine(
                            [
                                cst.Raise(
                                    exc=cst.Call(
                                        cst.Name("UnboundLocalError"),
                                        [cst.Arg(cst.SimpleString(repr(message)))],
                                    )
                                )
                            ]
                        )
                    ]
                ),
            )
        )

    # ---------------------------------------------------------------- retire
    def masked_here(self) -> bool:
        """Is a break/continue here under a batched branch of its loop?"""
        if not self.ctl.loops:
            return False
        info = self.ctl.loops[-1]
        # In a masked loop every break/continue goes through the masks: lanes that
        # continued earlier in the iteration must not leave with a Python break.
        return info.masked or len(self.ctl.frames) > info.base

    def retire(self, upto: str) -> list[cst.BaseSmallStatement]:
        """The current lanes leave every region up to the innermost ``upto`` frame.

        ``upto`` is "iter" (continue), "loop" (break) or "func" (return). The
        current region's own mask is left alone: nothing after the statement runs.
        """
        gone = self.mask
        assert gone is not None
        out: list[cst.BaseSmallStatement] = []
        stop = 0
        for i in range(len(self.ctl.frames) - 1, -1, -1):
            if self.ctl.frames[i].kind == upto:
                stop = i
                break
        for frame in reversed(self.ctl.frames[stop:-1]):
            if frame.kind == "func" and self.ctl.alive_all:
                out.append(self.small_assign(frame.mask, self.parse("~{m}", m=gone)))
                self.ctl.alive_all = False
                continue
            narrowed = self.parse("{a} & ~{m}", a=cst.Name(frame.mask), m=gone)
            out.append(self.small_assign(frame.mask, narrowed))
        current = self.ctl.frames[-1]
        if self.ctl.plain_depth > current.plain:
            # Inside a plain `if` of this region: the region's code after it still
            # runs, so its own mask loses the lanes too (last: ``gone`` is this mask).
            narrowed = self.parse("np.zeros_like({a})", a=cst.Name(current.mask))
            out.append(self.small_assign(current.mask, narrowed))
        self.ctl.terminated = True
        return out

    def masked_break(self, node: cst.CSTNode) -> list[cst.BaseSmallStatement]:
        info = self.ctl.loops[-1]
        if isinstance(node, cst.Break):
            info.masked_break = True
        else:
            info.masked_continue = True
        if not info.masked:
            return []  # the dry run that decides how to emit the loop
        out = []
        if isinstance(node, cst.Break) and info.broke is not None:
            gone = self.mask
            broke = cst.Name(info.broke)
            out.append(self.small_assign(info.broke, self.parse("{b} | {m}", b=broke, m=gone)))
        return out + self.retire("loop" if isinstance(node, cst.Break) else "iter")

    # ---------------------------------------------------------------- blocks
    def masked_block(self, frame: Frame, stmts: Any) -> tuple[list[cst.BaseStatement], bool]:
        """Translate ``stmts`` under ``frame``; also says whether every lane left."""
        frame.plain = self.ctl.plain_depth
        self.ctl.frames.append(frame)
        saved = self.ctl.terminated
        self.ctl.terminated = False
        try:
            out: list[cst.BaseStatement] = []
            for stmt in stmts:
                out.extend(self.statement(stmt))
                if self.ctl.terminated:
                    break  # the rest of the block is unreachable for these lanes
            return out, self.ctl.terminated
        finally:
            self.ctl.frames.pop()
            self.ctl.terminated = saved

    def errstate(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """``with np.errstate(all="ignore"):`` around masked code (see the module doc).

        Only the outermost masked statement gets one.
        """
        if self.ctl.quiet:
            return body
        item = cst.WithItem(self.parse('np.errstate(all="ignore")'))
        return [cst.With(items=[item], body=cst.IndentedBlock(body))]

    # --------------------------------------------------------------- if/else
    def masked_if(
        self, node: cst.If, test_code: cst.BaseExpression, test: Val
    ) -> list[cst.BaseStatement]:
        self.saw_batched = True  # what runs depends on the data (stmt_Try)
        cond = self.truth(test_code, test)
        outer = self.mask
        then_name = self.temp("mask")
        out = [
            self.line_assign(
                then_name, cond if outer is None else self.parse("{o} & ({c})", o=outer, c=cond)
            )
        ]
        orelse = node.orelse
        else_frame = None
        if orelse is not None:
            else_name = self.temp("mask")
            other = (
                self.parse("~{m}", m=cst.Name(then_name))
                if outer is None
                else self.parse("{o} & ~{m}", o=outer, m=cst.Name(then_name))
            )
            if outer is not None:
                # ``mask`` is outer & cond; the else lanes are the rest of outer.
                other = self.parse("{o} & ~{m}", o=outer, m=cst.Name(then_name))
            out.append(self.line_assign(else_name, other))
            else_frame = Frame("branch", else_name, frozenset())
        entry = frozenset(self.ctl.bound)
        then_frame = Frame("branch", then_name, entry, maybe=self.maybe_bound(entry))
        self.ctl.quiet += 1
        body, then_done = self.masked_block(then_frame, node.body.body)
        out += body
        else_done = False
        if orelse is not None and else_frame is not None:
            else_frame.entry = frozenset(self.ctl.bound)  # with names the then branch bound
            else_frame.maybe = then_frame.maybe - else_frame.entry
            stmts = [orelse] if isinstance(orelse, cst.If) else orelse.body.body
            body, else_done = self.masked_block(else_frame, stmts)
            out += body
        self.ctl.quiet -= 1
        self.mark_partial(entry, then_frame, else_frame)
        if then_done and else_done:
            self.ctl.terminated = True
        return self.errstate(out)

    def mark_partial(self, entry: frozenset[str], then: Frame, other: Frame | None) -> None:
        """Names bound in one branch only are bound in that branch's lanes only."""
        other_assigned = other.assigned if other is not None else set()
        for name in then.assigned - entry - other_assigned:
            self.ctl.partial.setdefault(name, then.mask)
        if other is not None:
            for name in other.assigned - entry - then.assigned:
                self.ctl.partial.setdefault(name, other.mask)

    # ---------------------------------------------------------------- return
    def masked_return(
        self,
        code: cst.BaseExpression,
        val: Val,
        raw: tuple[cst.BaseExpression, Val],
    ) -> list[cst.BaseSmallStatement]:
        """``return value`` in some lanes: store it, and retire them."""
        self.ensure_func_frame()
        out: list[cst.BaseSmallStatement] = []
        if self.ctl.plain_depth and (not self.ctl.result_set or self.ctl.alive_all):
            # Under a plain `if` the first writes might not run: create both up front.
            self.ctl.init_at_top = True
            self.ctl.result_set = True
            self.ctl.alive_all = False
        if not self.ctl.result_set:
            out.append(self.small_assign(self.result.value, code))
            self.ctl.result_set = True
        else:
            # np.where broadcasts: the value needs no batch axis of its own.
            merged, _ = self.where(self.mask, raw, (self.result, val))
            out.append(self.small_assign(self.result.value, merged))
        self.ctl.result_pending = True
        return out + self.retire("func")

    def none_return(self) -> list[cst.BaseSmallStatement]:
        """``return None`` in some lanes of a function that returns arrays elsewhere (a
        degenerate input: ``if np.linalg.norm(v) == 0: return None``). The loop cannot
        stack a None with arrays, and None for every example is not an array output
        either (a TypeError, as JAX's): the lanes are retired and remembered, and the
        function's last return raises if there are any (none_check)."""
        self.ensure_func_frame()
        if self.ctl.none_name is None:
            self.ctl.none_name = self.temp("returned_none")
            self.ctl.none_marker = self._marker(self.current_stmt)
        name = cst.Name(self.ctl.none_name)
        out: list[cst.BaseSmallStatement] = [
            self.small_assign(name.value, self.parse("{n} | {m}", n=name, m=self.mask))
        ]
        self.ctl.result_pending = True
        return out + self.retire("func")

    def none_check(self) -> list[cst.BaseStatement]:
        """Before the function's last return: an error naming the examples that returned
        None, if any did."""
        if self.ctl.none_name is None or self.dry_depth:
            return []
        assert self.ctl.none_marker is not None
        n, np_ = self.ctl.none_name, self.np
        text = (
            f"if {np_}.any({n}):\n"
            "    raise TypeError(\n"
            f'        f"the function returns None for examples {{{np_}.flatnonzero({n}).tolist()}} "\n'
            f'        f"(of {{{n}.shape[0]}}): None is not an array output, and the loop cannot "\n'
            '        "stack it with the arrays the function returns elsewhere"\n'
            "    )\n"
        )
        check = cst.parse_statement(text)
        return [_mark_all(check, self.ctl.none_marker)]

    def final_return(self, code: cst.BaseExpression, val: Val) -> cst.BaseExpression:
        """The value of a ``return`` reached by every lane still running."""
        if not self.ctl.result_set:
            return code
        alive = cst.Name(self.ctl.frames[0].mask)
        merged, _ = self.where(alive, (code, val), (self.result, val))
        return merged

    def ensure_func_frame(self) -> None:
        if not self.ctl.frames or self.ctl.frames[0].kind != "func":
            if self.ctl.alive_name is None:
                self.ctl.alive_name = self.temp("alive")
                self.ctl.result_name = self.temp("result")
            self.ctl.frames.insert(0, Frame("func", self.ctl.alive_name, frozenset(self.ctl.bound)))

    @property
    def result(self) -> cst.Name:
        assert self.ctl.result_name is not None
        return cst.Name(self.ctl.result_name)

    def top_inits(self) -> list[cst.BaseStatement]:
        """``alive`` and ``result`` at the start of the function (see masked_return), and
        the lanes that returned None (none_return)."""
        out: list[cst.BaseStatement] = []
        if self.ctl.none_name is not None:
            nothing = self.parse("np.zeros({b}, dtype=bool)", b=self.batch_size())
            out.append(self.line_assign(self.ctl.none_name, nothing))
        if not self.ctl.init_at_top:
            return out
        alive = self.parse("np.ones({b}, dtype=bool)", b=self.batch_size())
        assert self.ctl.alive_name is not None
        return [
            *out,
            self.line_assign(self.ctl.alive_name, alive),
            self.line_assign(self.result.value, cst.Name("False")),
        ]

    def prepare_loop_returns(self, info: LoopInfo) -> list[cst.BaseStatement]:
        """Before a loop whose body returns in some lanes: ``alive`` and ``result`` exist."""
        if not info.masked_return:
            return []
        out: list[cst.BaseStatement] = []
        had_frame = bool(self.ctl.frames) and self.ctl.frames[0].kind == "func"
        self.ensure_func_frame()
        if self.ctl.plain_depth and (not self.ctl.result_set or self.ctl.alive_all):
            # Under a plain `if` this code might not run, but the function's last
            # return reads both: create them at the top (as masked_return does).
            self.ctl.init_at_top = True
            self.ctl.result_set = True
            self.ctl.alive_all = False
            return []
        if not had_frame or self.ctl.alive_all:
            alive = self.parse("np.ones({b}, dtype=bool)", b=self.batch_size())
            out.append(self.line_assign(self.ctl.frames[0].mask, alive))
            self.ctl.alive_all = False
        if not self.ctl.result_set:
            # Overwritten in every lane before it is read; Python's False is the
            # weakest value np.where can mix in: it never widens a dtype (0 makes
            # booleans int).
            out.append(self.line_assign(self.result.value, cst.Name("False")))
            self.ctl.result_set = True
            self.ctl.placeholder = True
        return out

    # ----------------------------------------------------------------- loops
    def loop_info(self, run_body: Callable[[LoopInfo], None], node: Any) -> LoopInfo:
        """Dry-run a loop as a plain loop to learn whether lanes leave it at different times."""
        info = LoopInfo(base=len(self.ctl.frames), before=frozenset(self.env))
        key = (id(node), "info", self.analysis_state())
        found = self.info_memo.get(key)
        if found is not None:
            # What the dry run found, without running it again (see loop_fixpoint).
            return dataclasses.replace(found, base=info.base, before=info.before)
        saved_env = dict(self.env)
        with self.dry():
            self.fixpoint(lambda: run_body(info), node)
        self.env = saved_env
        self.info_memo[key] = dataclasses.replace(info)
        return info

    def loop_block(
        self,
        stmts: Any,
        info: LoopInfo | None = None,
        head: dict[str, Val] | None = None,
        before: frozenset[str] | None = None,
    ) -> list[cst.BaseStatement]:
        """The body of a plain loop (``info`` collects what the dry run finds;
        ``head`` is the environment at the loop head, once it is known, and
        ``before`` the names known before the loop)."""
        self.ctl.loops.append(info or LoopInfo(base=len(self.ctl.frames), head=head, before=before))
        bound = set(self.ctl.bound)  # each iteration (and the code after) starts from these
        self.ctl.plain_depth += 1
        try:
            return self.block(stmts)
        finally:
            self.ctl.loops.pop()
            self.ctl.plain_depth -= 1
            self.ctl.bound = bound

    def masked_loop(
        self,
        node: cst.While | cst.For,
        info: LoopInfo,
        marker: str,
        bind: Callable[[], None],
        header: Callable[[Any, list[cst.BaseStatement], str], cst.BaseStatement],
        test: Callable[[], cst.BaseExpression] | None = None,
        bound: Callable[[], cst.BaseExpression] | None = None,
        compactable: bool = True,
        target: str | None = None,
    ) -> list[cst.BaseStatement]:
        """A loop whose lanes stop at different iterations, run under an ``active`` mask.

        ``test()`` is a batched ``while`` condition (evaluated before each
        iteration), ``bound()`` the lanes a batched ``range`` bound lets run this
        iteration, ``bind()`` binds a ``for`` target, and ``header(loop, body, active)``
        builds the loop statement; ``compactable`` is False where the loop's header
        reads the batch (it cannot follow a compaction). Lanes leave ``active`` by break/return or when
        their condition fails or ``bound`` does; ``continue`` narrows ``running``,
        the lanes that run the rest of this iteration's body. A ``for`` ``target`` name bound before
        the loop keeps each lane's last value (``i_last``), as the loop leaves it.
        """
        if node.orelse is not None and has_statement(node.body, cst.Return):
            raise self.unsupported_at(
                node,
                "`else` on a loop whose examples stop at different times and that returns "
                "from some of them",
                "set a flag in the loop and test it after the loop instead",
            )
        self.saw_batched = True  # what runs depends on the data (stmt_Try)
        outer = self.mask
        active = self.temp("active")
        # The dry run saw a plain loop; in the masked form every `continue` and
        # `return` (even under a plain `if`) goes through the masks: go by the syntax.
        info.masked_continue |= has_statement(node.body, cst.Continue)
        info.masked_return |= has_statement(node.body, cst.Return)
        per_iteration = info.masked_continue
        running = self.temp("running") if per_iteration else active
        pre = self.prepare_loop_returns(info)
        broke = None
        if node.orelse is not None:
            broke = self.temp("broke")
            pre.append(
                self.line_assign(
                    broke, self.parse("np.zeros({b}, dtype=bool)", b=self.batch_size())
                )
            )
        last = None
        if target is not None and target in self.ctl.bound:
            before = self.env[target]
            if before.kind in (ARRAY, SCALAR) and before.rank == 0:
                last = self.temp(f"{target}_last")
                start_value = cst.Name(target)
                if not before.batched:
                    start_value = self.materialise(start_value, before)
                pre.append(self.line_assign(last, start_value))
                self.env[last] = Val.array(0, True, None)
                self.ctl.bound.add(last)
        entry = dict(self.env)
        bound_before = frozenset(self.ctl.bound)

        def body() -> tuple[list[cst.BaseStatement], Frame]:
            # Names bound before the loop; one first bound in the body is plain.
            self.ctl.bound = set(bound_before)  # each iteration starts from the loop's entry
            loop_frame = Frame(
                "loop",
                active,
                bound_before,
                plain=self.ctl.plain_depth,
                maybe=self.maybe_bound(bound_before, frozenset(entry)),
            )
            frames = [loop_frame]
            stmts: list[cst.BaseStatement] = []
            self.ctl.frames.append(loop_frame)
            try:
                bind()
                if bound is not None:
                    # The index only grows: a lane past its bound is done for good.
                    narrowed = self.parse("{a} & ({c})", a=cst.Name(active), c=bound())
                    stmts += self.emit_pending(marker)
                    stmts.append(self.line_assign(active, narrowed))
                if per_iteration:
                    stmts.append(self.line_assign(running, cst.Name(active)))
                    frames.append(Frame("iter", running, bound_before, plain=self.ctl.plain_depth))
                    self.ctl.frames.append(frames[-1])
                if last is not None:
                    value = self.parse(
                        "np.where({r}, {t}, {l})",
                        r=cst.Name(running),
                        t=cst.Name(target),
                        l=cst.Name(last),
                    )
                    stmts.append(self.line_assign(last, value))
                self.ctl.loops.append(
                    LoopInfo(
                        base=len(self.ctl.frames),
                        masked=True,
                        before=frozenset(entry),
                        broke=broke,
                    )
                )
                top = self.ctl.frames.pop()
                block, _ = self.masked_block(top, node.body.body)
                self.ctl.frames.append(top)
                self.ctl.loops.pop()
                stmts += block
                if test is not None:
                    narrowed = self.parse("{a} & ({c})", a=cst.Name(active), c=test())
                    stmts += self.emit_pending(marker)
                    stmts.append(self.line_assign(active, narrowed))
                else:
                    stmts.append(_break_unless_any(self, active))
                for frame in frames[1:]:
                    loop_frame.assigned |= frame.assigned
                return stmts, loop_frame
            finally:
                del self.ctl.frames[len(self.ctl.frames) - len(frames) :]

        self.ctl.quiet += 1
        head = self.loop_fixpoint(body, node)
        self.env = dict(entry)
        pre += self.widen(entry, head, marker)
        self.env = dict(head)
        if test is not None:
            start = test()
            if outer is not None:
                start = self.parse("{o} & ({c})", o=outer, c=start)
            elif not getattr(test, "batched", True):
                # `while True:` left by a batched break: every lane starts active.
                start = self.parse("np.full({b}, {c})", b=self.batch_size(), c=start)
        else:
            start = outer or self.parse("np.ones({b}, dtype=bool)", b=self.batch_size())
        pre += self.emit_pending(marker)
        pre.append(self.line_assign(active, start))
        stmts, frame = body()
        loop = header(node, stmts, active)
        if broke is not None:
            loop = loop.with_changes(orelse=None)  # emitted after the loop, masked
        after: list[cst.BaseStatement] = []
        if compactable and outer is None and not info.masked_return and broke is None:
            if not (has_statement(node.body, cst.Raise) or has_statement(node.body, cst.Assert)):
                # (A raise names its lane's index: it must see the full batch.)
                plan = plan_compaction(self, loop, active, entry, self.env, self.ctl.bound)
                if plan is not None:
                    loop = header(node, [*stmts, plan.shrink], active)
                    pre += plan.before
                    after.append(plan.restore)
        self.ctl.bound = set(bound_before) | frame.assigned  # plain-assigned in every lane
        self.ctl.quiet -= 1
        self.env = _join(head, self.env)
        line = self.file_line(node)
        for name in frame.assigned - set(entry):
            self.ctl.loop_born.setdefault(name, line)
        if last is not None and target is not None:
            after.append(self.line_assign(target, cst.Name(last)))
            self.env[target] = Val.array(0, True, None)
        if isinstance(node, cst.For):
            self.mark_loop_target(node, keep=target if last is not None else None)
        if broke is not None:
            after += self.masked_loop_else(node, outer, broke)
        return [*pre, *self.errstate([loop]), *after]

    def masked_loop_else(
        self, node: cst.While | cst.For, outer: cst.Name | None, broke: str
    ) -> list[cst.BaseStatement]:
        """A loop's ``else`` runs in the lanes that did not leave it by ``break``:
        a one-sided masked branch after the loop."""
        assert node.orelse is not None
        name = self.temp("mask")
        lanes = (
            self.parse("~{b}", b=cst.Name(broke))
            if outer is None
            else self.parse("{o} & ~{b}", o=outer, b=cst.Name(broke))
        )
        out: list[cst.BaseStatement] = [self.line_assign(name, lanes)]
        entry = frozenset(self.ctl.bound)
        frame = Frame("branch", name, entry, maybe=self.maybe_bound(entry))
        self.ctl.quiet += 1
        body, _ = self.masked_block(frame, node.orelse.body.body)
        self.ctl.quiet -= 1
        out += body
        self.mark_partial(entry, frame, None)
        return self.errstate(out)


def _mark_all(stmt: cst.BaseStatement, marker: str) -> cst.BaseStatement:
    """Every line of ``stmt`` maps back to the user's line ``marker`` names."""

    class Marker(cst.CSTTransformer):
        def leave_SimpleStatementLine(
            self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
        ) -> cst.SimpleStatementLine:
            ws = _with_marker(updated.trailing_whitespace, marker)
            return updated.with_changes(trailing_whitespace=ws)

        def leave_If(self, original: cst.If, updated: cst.If) -> cst.If:
            return _mark_header(updated, marker)

    return stmt.visit(Marker())


def _same_sequence(a: Val, b: Val) -> bool:
    """Two tuples (or two lists) of known, equal length."""
    return (
        a.kind == b.kind == TREE
        and a.container is b.container
        and a.container in (tuple, list)
        and a.element is None
        and b.element is None
        and len(a.children) == len(b.children) > 0
    )


def _item(code: cst.BaseExpression, i: int) -> cst.BaseExpression:
    """Item ``i`` of a tuple or list: the element itself where it is a display."""
    if isinstance(code, (cst.Tuple, cst.List)) and not any(
        isinstance(e, cst.StarredElement) for e in code.elements
    ):
        return code.elements[i].value
    return cst.Subscript(code, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])


def has_statement(body: cst.CSTNode, kind: type) -> bool:
    """Does ``body`` hold a ``kind`` statement for this loop (not in a nested loop/def)?"""
    found = False

    class Finder(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> bool:
            return kind is cst.Return

        def visit_While(self, node: cst.While) -> bool:
            return kind is cst.Return

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if isinstance(node, kind):
                found = True
            return super().on_visit(node)

    body.visit(Finder())
    return found


def _break_unless_any(tr: Context, active: str) -> cst.BaseStatement:
    """``if not np.any(active): break``: every lane has left the loop."""
    return cst.If(
        test=tr.parse("not np.any({a})", a=cst.Name(active)),
        body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Break()])]),
    )


def _join(a: dict[str, Val], b: dict[str, Val]) -> dict[str, Val]:
    out = dict(a)
    for k, v in b.items():
        out[k] = join(out[k], v) if k in out else v
    return out
