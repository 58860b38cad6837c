"""Forms of real code under a batched condition (issue 13), against the loop oracle.

Each form is the minimal version of a library function that was refused or fell back
(named in its docstring): unpacking after a batched early return, a degenerate input
returning None, raise/warnings.warn messages built from batched values, an unbatched
attribute write, and ``try`` bodies whose handlers cannot be told apart per example.
Every form runs with batch sizes 1 and several, with lanes taking the branch: none,
some, all; batched/unbatched argument mixes where a function has more than one
argument; and the generated code is checked not to loop over the batch in Python.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import astvmap
from astvmap import UnsupportedError, vmap

from .harness import generated_lines_run
from .oracle import assert_same, check, loop

# ------------------------------------------------------------------ the forms


def unpack_after_return(a):
    """ahrs acc2q / SAAM / FQA: ``ax, ay, az = a / n`` after a batched early return."""
    n = np.linalg.norm(a)
    if not n > 0.5:
        return np.zeros(2)
    ax, ay, az = a / n
    return np.array([np.arctan2(ay, az), np.arctan2(-ax, np.sqrt(ay**2 + az**2))])


def unpack_in_branch(a):
    """ahrs acc2q: unpacking inside a batched ``if``, then updating the items."""
    q = np.array([1.0, 0.0, 0.0])
    if np.linalg.norm(a) > 1:
        ax, ay, az = a
        ax /= 2.0
        q = np.array([ax, ay, az])
    return q


def unpack_rebinds(a, lo):
    """Unpacking names that already hold values: the other lanes keep theirs."""
    x = a[0]
    y = a[1]
    if x > lo:
        x, y = np.sort(a)[:2]
    return x - 2 * y


def unpack_call_result(K):
    """ahrs itzhack: ``w, v = np.linalg.eigh(K)`` after a batched early return."""
    if np.isnan(K).any():
        return np.full(2, np.nan)
    w, v = np.linalg.eigh(K)
    return w * np.abs(v[0])


def unpack_into_item(a):
    """An item among the targets: each target assigned in order, under the mask."""
    out = np.zeros(2)
    y = 0.0
    if a[0] > 0:
        out[1], y = a[:2]
    return out * y


def normalise_or_none(v):
    """The degenerate-input branch: ``if norm == 0: return None``."""
    n = np.linalg.norm(v)
    if n == 0:
        return None
    return v / n


def identity_or_none(q):
    """ahrs q2euler: an array returned first, then None after a plain (unbatched) test."""
    if np.sum(q) == 0.0:
        return np.zeros(3)
    if len(q) != 3:
        return None
    return q * 2


def raise_formatted(v, scale):
    """A degenerate-input raise whose message formats batched values."""
    n = np.linalg.norm(v)
    if n < 0.5:
        raise ValueError(f"norm {n:.3f} of {v} is too small (scale {scale})")
    if n > 100:
        raise ValueError("norm %g too large" % n)
    return v * scale / n


def warn_large(v):
    """``warnings.warn`` under a batched condition, its message built from the data."""
    n = np.linalg.norm(v)
    if n > 2:
        warnings.warn("large norm %.2f" % n, RuntimeWarning, stacklevel=1)
    if n > 3:
        warnings.warn("very large", RuntimeWarning, stacklevel=1)
    return v / n


class Filter:
    """ahrs EKF().update: ``self.R = ...`` (unbatched) after a batched early return."""

    def __init__(self) -> None:
        self.noise = 0.5
        self.R = np.ones(3)
        self.n = 0

    def update(self, a):
        n = np.linalg.norm(a)
        if n == 0:
            return a
        self.R = np.full(3, self.noise)
        return a / n + self.noise

    def count(self, a):
        self.n = self.n + 1
        return a * 2

    def count_in_place(self, a):
        self.n += 1
        return a * 2

    def read_then_write(self, a):
        y = a * self.noise
        if a[0] > 0:
            self.noise = 2.0
        return y

    def write_in_branch_then_read(self, a):
        if a[0] > 0:
            self.noise = 2.0
        return a * self.noise


def try_dtype(M):
    """transforms3d taitbryan.mat2euler: ``try: np.finfo(M.dtype)`` reads no data."""
    try:
        eps = np.finfo(M.dtype).eps
    except ValueError:
        eps = 1e-16
    return M * 2 + (eps < 1)


def try_name_error(x, srange):
    """pymap3d ecef2geodetic / aer2enu: ``except NameError`` around array work, and a
    data-dependent raise in the body that the handler does not catch."""
    try:
        x = np.asarray(x)
        if (np.asarray(srange) < 0).any():
            raise ValueError("Slant range  [0, Infinity)")
    except NameError:
        if srange < 0:
            raise ValueError("Slant range  [0, Infinity)") from None
    return x * srange


def try_value_error(x):
    """``except ValueError`` around batched work: could differ per example: fallback."""
    try:
        y = np.sqrt(x) * 2
    except ValueError:
        y = x
    return y


def try_unbound_name(x):
    """A name bound in some lanes only, read in a body guarded by ``except NameError``:
    the UnboundLocalError is per example, the handler cannot tell: fallback."""
    if x > 0:
        y = x
    try:
        z = y * 2
    except NameError:
        z = 0.0
    return z


# ------------------------------------------------------------ lane samplers
def rows(rng: np.random.Generator, lanes: list[bool], take: Any, other: Any) -> np.ndarray:
    """One example per lane: ``take(rng)`` where the lane takes the branch, else ``other``."""
    return np.stack([np.asarray(take(rng) if t else other(rng), dtype=float) for t in lanes])


LANES = {
    "none": lambda b: [False] * b,
    "some": lambda b: [i % 2 == 1 for i in range(b)],
    "all": lambda b: [True] * b,
}
BATCHES = [1, 2, 5]


def lanes_of(kind: str, batch: int) -> list[bool]:
    lanes = LANES[kind](batch)
    if kind == "some" and batch == 1:
        lanes = [True]
    return lanes


def big3(rng):
    return rng.uniform(1.5, 3, 3) * rng.choice([-1, 1], 3)


def small3(rng):
    return rng.uniform(-0.2, 0.2, 3)


def spd(rng):
    m = rng.normal(size=(2, 2))
    return m @ m.T + np.eye(2)


def nan2(rng):
    m = spd(rng)
    m[0, 1] = np.nan
    return m


# (f, take-branch sampler, other sampler): the branch is the masked/degenerate one.
VALUE_FORMS = {
    "unpack_after_return": (unpack_after_return, small3, big3),
    "unpack_in_branch": (unpack_in_branch, big3, small3),
    "unpack_call_result": (unpack_call_result, nan2, spd),
    "unpack_into_item": (
        unpack_into_item,
        lambda r: r.uniform(0.5, 2, 3),
        lambda r: -r.uniform(0.5, 2, 3),
    ),
    "identity_or_none": (identity_or_none, lambda r: np.zeros(3), big3),
}


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
@pytest.mark.parametrize("name", list(VALUE_FORMS))
def test_forms_equal_the_loop(name, kind, batch):
    f, take, other = VALUE_FORMS[name]
    rng = np.random.default_rng(batch)
    check(f, rows(rng, lanes_of(kind, batch), take, other))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
def test_unpacking_names_bound_before_with_mixed_arguments(kind, batch):
    rng = np.random.default_rng(batch)
    lanes = lanes_of(kind, batch)
    a = np.stack([np.array([5.0, 1.0, 2.0]) if t else np.array([-5.0, 1.0, 2.0]) for t in lanes])
    a += rng.uniform(0, 0.1, a.shape)
    lo = np.zeros(batch)
    check(unpack_rebinds, a, lo)
    check(unpack_rebinds, a, 0.0, in_axes=(0, None))
    check(unpack_rebinds, np.array([5.0, 1.0, 2.0]), np.where(lanes, 0.0, 9.0), in_axes=(None, 0))


def test_unpacked_items_are_copies_when_the_vector_is_written_later():
    def f(a):
        a = a.copy()
        ax, ay = a
        a *= 2
        return ax + ay + a[0]

    check(f, np.random.default_rng(0).normal(size=(4, 2)))


# ------------------------------------------------------------- None returned
@pytest.mark.parametrize("batch", BATCHES)
def test_none_in_no_lane_equals_the_loop(batch):
    v = np.random.default_rng(batch).uniform(1, 2, (batch, 3))
    check(normalise_or_none, v)


@pytest.mark.parametrize(("lanes", "named"), [([0, 1, 0, 1], "[1, 3] (of 4)"), ([1], "[0] (of 1)")])
def test_none_in_some_lanes_is_a_type_error_naming_them(lanes, named):
    v = np.array([[0.0, 0.0, 0.0] if t else [1.0, 2.0, 3.0] for t in lanes])
    with pytest.raises(TypeError, match=r"returns None for examples " + re_escape(named)) as got:
        vmap(normalise_or_none)(v)
    note = "\n".join(got.value.__notes__)
    assert "test_cond_forms.py" in note and "return None" in note, note
    # The loop cannot stack them either (or, None first, silently drops the arrays).
    results = [normalise_or_none(x) for x in v]
    assert any(r is None for r in results)


def test_none_after_a_plain_test_is_a_type_error_when_taken():
    # len(q) != 3 for every example: each returns None or zeros, never stackable.
    q = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="returns None for examples"):
        vmap(identity_or_none)(q)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# ------------------------------------------------------- raise and warnings
def expect_like_loop(f, args, in_axes=0):
    """vmap raises the loop's exception with the loop's message, or equals the loop."""
    try:
        want = loop(f, args, in_axes)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            vmap(f, in_axes=in_axes)(*args)
        assert str(got.value) == str(exc)
        return exc
    assert_same(vmap(f, in_axes=in_axes)(*args), want)
    return None


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
def test_raise_with_a_formatted_batched_message(kind, batch):
    rng = np.random.default_rng(batch)
    lanes = lanes_of(kind, batch)
    v = rows(rng, lanes, small3, big3)
    raised = expect_like_loop(raise_formatted, (v, 2.0), (0, None))
    assert (raised is not None) == any(lanes)
    expect_like_loop(raise_formatted, (v, np.full(batch, 3.0)))
    expect_like_loop(raise_formatted, (v[0], np.linspace(1, 2, batch)), (None, 0))
    big = rows(rng, lanes, lambda r: big3(r) * 100, big3)
    raised = expect_like_loop(raise_formatted, (big, 2.0), (0, None))
    assert (raised is not None) == any(lanes)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
def test_warning_issued_once_if_some_lane_gets_there(kind, batch):
    rng = np.random.default_rng(batch)
    lanes = lanes_of(kind, batch)
    v = rows(rng, lanes, lambda r: np.array([2.5, 0.0, 0.0]) + r.uniform(0, 0.1), small3)
    v[~np.array(lanes)] += 0.5  # no zero norms
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = vmap(warn_large)(v)
    with warnings.catch_warnings(record=True) as want:
        warnings.simplefilter("always")
        expected = loop(warn_large, (v,))
    assert_same(out, expected)
    assert not [w for w in got if issubclass(w.category, astvmap.PerformanceWarning)]
    messages = [str(w.message) for w in got]
    if any(lanes):
        first = next(str(w.message) for w in want)
        assert messages == [first], (messages, first)  # the first example's message, once
    else:
        assert messages == [] and want == []


# --------------------------------------------------------- attribute writes
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
def test_unbatched_attribute_write_after_an_early_return(kind, batch):
    rng = np.random.default_rng(batch)
    a = rows(rng, lanes_of(kind, batch), lambda r: r.uniform(1, 2, 3), lambda r: np.zeros(3))
    mine, theirs = Filter(), Filter()
    mine.noise = theirs.noise = 0.25
    assert_same(vmap(mine.update)(a), loop(theirs.update, (a,)))
    assert_same(mine.R, theirs.R)  # written iff some example got there


@pytest.mark.parametrize(
    ("method", "line"),
    [
        ("count", "self.n = self.n + 1"),
        ("count_in_place", "self.n += 1"),
        ("read_then_write", "self.noise = 2.0"),
        ("write_in_branch_then_read", "self.noise = 2.0"),
    ],
)
def test_attribute_writes_an_example_could_see_are_refused(method, line):
    x = np.ones((3, 3))
    mine, theirs = Filter(), Filter()
    got = refused_or_per_example(
        lambda: vmap(getattr(mine, method))(x), line, "each example would see"
    )
    if got is None:
        assert (mine.n, mine.noise) == (0, 0.5)  # refused before anything ran
    else:  # run per example: the loop's result and the loop's object state
        assert_same(got, loop(getattr(theirs, method), (x,)))
        assert (mine.n, mine.noise) == (theirs.n, theirs.noise)


def refused_or_per_example(call, line: str, reason: str) -> Any:
    """``call()`` either raises UnsupportedError naming the user's ``line`` and ``reason``,
    or (where the project runs such forms per example, DESIGN §7) warns a
    PerformanceWarning naming them and returns; never a silent vectorisation."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            result = call()
        except UnsupportedError as exc:
            assert line in str(exc) and reason in str(exc) and "test_cond_forms.py" in str(exc)
            return None
    declared = [w for w in seen if issubclass(w.category, astvmap.PerformanceWarning)]
    assert declared, "neither refused nor declared"
    text = str(declared[0].message)
    assert line in text and reason in text, text
    return result


# ----------------------------------------------------------------------- try
@pytest.mark.parametrize("batch", BATCHES)
def test_try_reading_only_the_dtype_is_plain(batch):
    M = np.random.default_rng(batch).normal(size=(batch, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", astvmap.PerformanceWarning)
        check(try_dtype, M)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", list(LANES))
def test_try_catching_name_error_is_plain(kind, batch):
    rng = np.random.default_rng(batch)
    lanes = np.array(lanes_of(kind, batch))
    x = rng.normal(size=(batch, 2))
    srange = np.where(lanes, -1.0, 1.0) * rng.uniform(1, 2, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", astvmap.PerformanceWarning)
        for args, axes in [((x, srange), 0), ((x, 2.0), (0, None)), ((x[0], srange), (None, 0))]:
            raised = expect_like_loop(try_name_error, args, axes)
            negative = np.any(np.asarray(args[1]) < 0)
            assert (raised is not None) == negative


@pytest.mark.parametrize("f", [try_value_error, try_unbound_name])
def test_try_that_could_differ_per_example_runs_per_example(f):
    x = np.array([-1.0, 2.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(astvmap.PerformanceWarning, match="`try`"):
            got = vmap(f)(x)
        assert_same(got, loop(f, (x,)))


# ------------------------------------------------------- no loop over the batch
NO_LOOP = {
    "unpack_after_return": (unpack_after_return, (np.array([[1.0, 2.0, 2.0], [0.1, 0, 0]]),)),
    "unpack_in_branch": (unpack_in_branch, (np.array([[1.0, 2.0, 2.0], [0.1, 0, 0]]),)),
    "unpack_call_result": (unpack_call_result, (np.stack([np.eye(2), np.full((2, 2), np.nan)]),)),
    "identity_or_none": (identity_or_none, (np.array([[1.0, 2.0, 2.0], [0, 0, 0]]),)),
    "raise_formatted": (raise_formatted, (np.array([[1.0, 2.0, 2.0], [3, 0, 0]]), 2.0)),
    "warn_large": (warn_large, (np.array([[1.0, 2.0, 2.0], [0.1, 1, 0]]),)),
    "try_name_error": (try_name_error, (np.array([[1.0, 2.0], [3, 0]]), np.array([1.0, 2.0]))),
    "filter_update": (Filter().update, (np.array([[1.0, 2.0, 2.0], [0, 0, 0]]),)),
}


@pytest.mark.parametrize("name", list(NO_LOOP))
def test_no_python_loop_over_the_batch(name):
    f, args = NO_LOOP[name]
    axes = tuple(0 if np.ndim(a) else None for a in args)
    fn = vmap(f, in_axes=axes)
    many = tuple(np.repeat(a, 20, axis=0) if ax == 0 else a for a, ax in zip(args, axes))
    with warnings.catch_warnings():
        warnings.simplefilter("error", astvmap.PerformanceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # warn_large's own warning
        fn(*args)  # generated and loaded: only the function's own lines are counted
        one = generated_lines_run(fn, args)
        forty = generated_lines_run(fn, many)
    assert one > 0 and forty == one


def _none_for_zero(v):
    n = np.linalg.norm(v)
    if n == 0:
        return None
    return v / n


def caller_tests_for_none(v):
    """A helper's None goes back to its caller, which may test for it: refused there
    (not a TypeError at run time), as the batch cannot hold a None in some lanes."""
    u = _none_for_zero(v)
    if u is None:
        return np.zeros(3)
    return u


def test_none_from_a_helper_is_refused_at_transform_time():
    v = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    got = refused_or_per_example(
        lambda: vmap(caller_tests_for_none)(v), "return None", "returning None in some examples"
    )
    if got is not None:
        assert_same(got, loop(caller_tests_for_none, (v,)))


class _Limits:
    n = 0.5


LIMITS = _Limits()


def raise_naming_an_attribute_alike(v):
    """A batched name that is also an attribute's name in the message (``LIMITS.n``)."""
    n = np.linalg.norm(v)
    if n < LIMITS.n:
        raise ValueError(f"norm {n:.3f} below {LIMITS.n}")
    return v / n


@pytest.mark.parametrize("kind", list(LANES))
def test_raise_message_with_a_name_that_is_also_an_attribute(kind):
    rng = np.random.default_rng(3)
    v = rows(rng, lanes_of(kind, 4), small3, big3)
    raised = expect_like_loop(raise_naming_an_attribute_alike, (v,))
    assert (raised is not None) == (kind != "none")
