"""The differential tester finds the kinds of bug it exists to find.

Each case puts back, by a monkeypatch, the behaviour astvmap had before one of the
fixes for issue 11's kinds (found by an independent random-program generator, each
with a minimal program in tests/repro/kinds.py), runs the program generator
(tests/progen.py) with the forms that kind needs, derandomized, and requires it to
report a bug within a bounded number of programs. The program it found must then
pass with the fix in place: the generator found that kind, not another bug.

Kinds whose fix is inline in a larger method, with no seam to patch, are not here:
an early return in a loop under an untaken plain `if` (control.py, `alive` made at
the top) and `while True:` with a batched break carrying a vector (the loop's test
records whether it was batched).

The transform cache is off for these tests: a translation made with a fix
reverted must never be served to another test, nor a good one to these.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from astvmap import assignments, cache, calls, control, loops

from . import progen


def _keep_helper_writes_local(mp: pytest.MonkeyPatch) -> None:
    """A helper's batched write into an array its caller passed unbatched stays in the
    helper's copy: the caller's buffer never sees it (`def _bump(buf, v): buf[0] += v`)."""
    grow = assignments.Assignments.grow_buffer

    def grow_buffer(self: Any, node: Any, code: Any, buf: Any) -> str:
        name = grow(self, node, code, buf)
        self.grown.discard(name)
        return name

    mp.setattr(assignments.Assignments, "grow_buffer", grow_buffer)


def _read_index_after_growing(mp: pytest.MonkeyPatch) -> None:
    """`buf[np.argmax(buf) % n] = x`: the index and the value read `buf` after it got its
    batch axis, not as it was."""
    mp.setattr(assignments.Assignments, "before_growing", lambda self, name, code: code)
    mp.setattr(assignments.Assignments, "index_before_growing", lambda self, name, elems: elems)


def _read_iterable_after_growing(mp: pytest.MonkeyPatch) -> None:
    """`for t in range(v.shape[0])` with a batched break, `v` made batched in the body:
    the range is evaluated after `v` got its batch axis (B iterations, not n)."""
    mp.setattr(loops, "_walk_names", lambda node: iter(()))


def _forget_container_items(mp: pytest.MonkeyPatch) -> None:
    """`d["q"] = ...` under a batched condition: the dict's abstract value keeps the old,
    unbatched item."""
    mp.setattr(assignments.Assignments, "set_container_item", lambda self, t, buf, val: None)


def _widen_no_items(mp: pytest.MonkeyPatch) -> None:
    """A dict item one path of a plain `if` makes batched keeps no batch axis on the
    other path."""
    mp.setattr(loops, "_widened_items", lambda env, merged: [])


def _forget_aliases(mp: pytest.MonkeyPatch) -> None:
    """`a = buf if c else x` with a batched `c`: a copy in the batched code, yet later
    writes into `buf` are allowed (they miss `a` in the lanes where it is `buf`)."""
    mp.setattr(assignments.Assignments, "note_aliases", lambda self, target, value: None)


def _write_every_lane(mp: pytest.MonkeyPatch) -> None:
    """A helper that writes into its argument, called under a batched condition, runs
    (and writes) in every lane."""
    mp.setattr(calls.Calls, "check_masked_writes", lambda self, fn, written: None)


def _swap_frames(mp: pytest.MonkeyPatch) -> None:
    """Restoring the control state after a dry run swaps in a copy of the branch's
    frame: a name bound on every path of a batched if/else whose branch holds a loop is
    lost (UnboundLocalError in the generated code)."""
    mp.delattr(control.Frame, "__deepcopy__")


# kind -> (how its fix is reverted, the forms that draw it, programs allowed, in CI).
# Where each is found (derandomized, so the same every run until progen or `one` below
# changes, when the numbers move): helper-write-lost 42, index-reads-buffer 195,
# range-after-growing 100, dict-entry-masked 55, dict-item-widened 75, conditional-alias
# 260, both-paths-with-loop 149, helper-write-every-lane rarer (about 1 program in 300).
# CI runs the three found in seconds; ASTVMAP_PROGEN_SELFTEST=all runs every kind.
KINDS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], frozenset[str], int, bool]] = {
    "helper-write-lost": (_keep_helper_writes_local, frozenset({"helper-writes"}), 300, True),
    "index-reads-buffer": (_read_index_after_growing, frozenset({"buffer-index"}), 500, False),
    "range-after-growing": (
        _read_iterable_after_growing,
        frozenset({"buffer-loop", "control"}),
        300,
        True,
    ),
    "dict-entry-masked": (_forget_container_items, frozenset({"dict", "control"}), 300, True),
    "dict-item-widened": (_widen_no_items, frozenset({"dict", "control"}), 300, False),
    "conditional-alias": (_forget_aliases, frozenset({"alias", "control"}), 600, False),
    "helper-write-every-lane": (
        _write_every_lane,
        frozenset({"helper-writes", "control"}),
        1000,
        False,
    ),
    "both-paths-with-loop": (_swap_frames, frozenset({"both-paths", "control"}), 400, False),
}
EVERY = os.environ.get("ASTVMAP_PROGEN_SELFTEST", "") == "all"


class _Found(Exception):
    pass


def first_bug(
    forms: frozenset[str], limit: int, directory: Any, revert: Callable[[pytest.MonkeyPatch], None]
) -> tuple[tuple | None, list[str]]:
    """The first of ``limit`` derandomized programs drawn with ``forms`` that shows a bug
    with ``revert`` applied and none without it, as (signature, program, batch, seed,
    how many programs ran) or None; and the signatures of the bugs found that the fix
    does not remove (bugs of astvmap today, which the differential test reports)."""
    found: list[tuple] = []
    others: list[str] = []
    ran = [0]
    mp = pytest.MonkeyPatch()

    @settings(
        max_examples=limit,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        program=progen.programs(new=forms),
        batch=st.integers(2, 4),
        seed=st.integers(0, 99),
    )
    def one(program: progen.Program, batch: int, seed: int) -> None:
        ran[0] += 1
        try:
            progen.run(program, batch, seed, directory)
        except Exception as exc:
            sig = progen.signature(exc)
            # (the in-memory cache knows a module's functions by their code, equal for
            # the same text: it must not serve either translation to the other run)
            mp.undo()
            cache.memory_clear()
            try:
                fixed = progen.failure(program, batch, seed, directory)
            finally:
                revert(mp)
                cache.memory_clear()
            if fixed is None:
                found.append((sig, program, batch, seed, ran[0]))
                raise _Found from exc
            others.append(sig)

    revert(mp)
    cache.memory_clear()
    try:
        one()
    except _Found:
        pass
    finally:
        mp.undo()
        cache.memory_clear()
    return (found[0] if found else None), others


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setenv("ASTVMAP_CACHE", "0")
    cache.memory_clear()
    yield
    cache.memory_clear()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            k,
            marks=(
                []
                if ci or EVERY
                else [pytest.mark.skip(reason="slow: ASTVMAP_PROGEN_SELFTEST=all runs it")]
            ),
        )
        for k, (_, _, _, ci) in KINDS.items()
    ],
)
def test_the_generator_finds_a_reverted_kind(kind, tmp_path, no_cache):
    revert, forms, limit, _ = KINDS[kind]
    got, others = first_bug(forms, limit, tmp_path, revert)
    assert got is not None, (
        f"{limit} programs drawn with {sorted(forms)} found no bug with the fix for {kind} "
        f"reverted (bugs the fix does not remove: {others})"
    )
