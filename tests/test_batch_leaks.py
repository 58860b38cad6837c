"""Issue 11: the batch never reaches code that is not transformed, and writes land
where the loop puts them.

Each case is a small function written the way real code is (a decorator that
forwards *args/**kwargs, locals() handed to a checker, closures, helpers that
write into their arguments). Every one must equal the loop oracle, run as a
declared per-example fallback (PerformanceWarning) that equals the loop, or be
refused with an UnsupportedError naming the user's line.
"""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.testing import assert_same, loop

from .harness import assert_runs_per_example

X = np.array([[1.0, 2.0, 3.0], [-1.0, 2.0, 0.5], [2.0, 0.0, 1.0], [0.5, -3.0, 2.0]])


def run(f, args, in_axes=0):
    """(vmap's result, whether it fell back), after checking it against the loop."""
    want = loop(f, copy.deepcopy(args), in_axes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = vmap(f, in_axes=in_axes)(*copy.deepcopy(args))
    assert_same(got, want)
    return any(issubclass(w.category, PerformanceWarning) for w in caught)


# ---------------------------------------------------------------- decorators
def as_arrays(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = list(args)
        for i, v in enumerate(args):
            args[i] = np.asarray(v)
        return fn(*args, **kwargs)

    return wrapper


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


@as_arrays
def first(vec):
    return vec[0]


@as_arrays
def normalise(v, eps=1e-12):
    return v / (np.linalg.norm(v) + eps)


@logged
def scaled(v, *, k=2.0):
    return v * k


@pytest.mark.parametrize("f", [first, normalise, scaled])
@pytest.mark.parametrize("batch", [1, 4])
def test_forwarding_decorator_vectorises(f, batch):
    assert not run(f, (X[:batch],)), "a forwarding wrapper is followed, not looped"


def test_decorated_helper_called_with_batch():
    def g(x):
        return first(x) + normalise(x).sum()

    assert not run(g, (X,))


def opaque(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*[a for a in args])  # a star argument of unknown length

    return wrapper


@opaque
def doubled(v):
    return v * 2


def test_wrapper_it_cannot_see_through_is_never_a_pass_through():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run(doubled, (X,))
        except UnsupportedError as exc:
            assert exc.lineno


def test_header_names_the_wrapped_function():
    from astvmap import emit

    text = emit(first, X)
    assert "decorator's wrapper" in text and "calls first (" in text


# ---------------------------------------------------------------- namespaces
def _check(ns, name, n):
    assert np.shape(ns[name]) == (n,)
    return ns[name] * 2


def with_locals(vector):
    y = vector + 1
    return _check(locals(), "y", 3)


def with_vars(vector):
    return _check(vars(), "vector", 3)


@pytest.mark.parametrize("f", [with_locals, with_vars])
def test_namespace_handed_to_a_helper(f):
    assert not run(f, (X,))


def test_star_star_of_a_known_dict():
    def g(x):
        opts = {"k": x[0]}
        return scaled(x, **opts)

    assert not run(g, (X,))


# ---------------------------------------------------------------- closures
def closure_lambda(x):
    g = lambda: x[0]  # noqa: E731
    return g()


def closure_def(x):
    def g():
        return x[0] * 2

    return g()


def closure_passed(x):
    return np.array(list(map(lambda t: t * x[0], [1.0, 2.0])))


@pytest.mark.parametrize("f", [closure_def, closure_passed])
def test_closure_over_batched_values_runs_per_example(f):
    assert run(f, (X,)), "declared fallback"


def test_lambda_called_where_it_is_defined_is_transformed():
    # Its body is translated at the call (issue 13): no per-example fallback.
    assert not run(closure_lambda, (X,))


def test_inner_def_over_unbatched_values_is_never_wrong():
    """Its result's rank is not known (defs written inside are not analysed yet): the
    loop's result, or a refusal naming the line, never a guess."""

    def g(x, k):
        def scale(v):
            return v * 2

        return scale(k) + x

    try:
        run(g, (X, 3.0), (0, None))
    except UnsupportedError as exc:
        assert exc.lineno


# ---------------------------------------------------------------- writes
def _bump(buf, v):
    buf[0] += v


def _acc(buf, v):
    buf += v


def _twice(buf, v):
    _acc(buf, v)
    _acc(buf, v)


def helper_write(x):
    buf = np.zeros(3)
    _bump(buf, x[1])
    return buf


def helper_in_place(x):
    buf = np.zeros(3)
    _twice(buf, x)
    return buf


@pytest.mark.parametrize("f", [helper_write, helper_in_place])
def test_helper_write_into_callers_buffer(f):
    assert not run(f, (X,))


def _set_first(buf):
    buf[0] = 7.0
    return 1.0


def helper_write_under_mask(x):
    buf = x * 1.0
    if x[0] > 0:
        _set_first(buf)
    return buf


def helper_write_for_value_under_mask(x):
    buf = np.zeros(3)
    if x[0] > 0:
        t = _set_first(buf)  # noqa: F841
    return buf


def conditional_alias(x):
    buf = x * 1.0
    v = buf if x[1] > 0 else x
    buf[0] = 100.0
    return v


def masked_alias(x):
    buf = x * 1.0
    v = x * 2.0
    if x[1] > 0:
        v = buf
    v[2] = -1.0
    return buf


def outside_in_place(x, w):
    w += x
    return w


@pytest.mark.parametrize(
    "f, args, in_axes",
    [
        (helper_write_under_mask, (X,), 0),
        (helper_write_for_value_under_mask, (X,), 0),
        (conditional_alias, (X,), 0),
        (masked_alias, (X,), 0),
    ],
    ids=["helper-write-masked", "helper-value-masked", "ternary-alias", "masked-alias"],
)
def test_writes_the_batched_code_cannot_follow_run_per_example(f, args, in_axes):
    """Each was silently wrong once: a write that reaches the examples of one lane only.
    They are not vectorised, and run per example (declared) with the loop's result."""
    assert_runs_per_example(f, args, in_axes, where="test_batch_leaks.py:")


def test_a_batched_write_into_an_unmapped_argument_is_refused():
    """The loop would accumulate every example into the one shared array."""
    with pytest.raises(UnsupportedError) as info:
        vmap(outside_in_place, in_axes=(0, None))(X.copy(), np.zeros(3))
    assert info.value.lineno and "test_batch_leaks.py" in info.value.filename


def write_into_argument(x):
    x[0] = 0.0
    return x.sum()


def masked_write_into_argument(x):
    if x[1] > 0:
        x[2] += 10.0
    return x[0]


@pytest.mark.parametrize("f", [write_into_argument, masked_write_into_argument])
@pytest.mark.parametrize("in_axes", [0, 1, -1])
def test_writes_into_a_mapped_argument_reach_the_callers_array(f, in_axes):
    """As a loop over views ``f(X[i])`` does (the README says so)."""
    data = X if in_axes == 0 else np.ascontiguousarray(X.T)
    want_arr = data.copy()
    views = np.moveaxis(want_arr, in_axes, 0)
    want = np.stack([f(views[i]) for i in range(len(views))])
    got_arr = data.copy()
    got = vmap(f, in_axes=in_axes)(got_arr)
    assert_same(got, want)
    assert_same(got_arr, want_arr)


# ---------------------------------------------------------------- functions passed in
W = np.ones(3)


def calls_param(x, fn):
    return fn(x)


def double(v):
    return 2.0 * v


def triple(v):
    return 3.0 * v


def total(v):
    return np.sum(v * W)


class Scaled:
    def __init__(self, k):
        self.k = k

    def helper(self, v):
        return np.sum(v * W) * self.k

    def __call__(self, x):
        return self.helper(x)


def uses_method(x, m):
    return m.helper(x)


def test_a_function_argument_is_not_baked_in():
    """Was silently wrong: the second call reused the code made for the first function."""
    g = vmap(calls_param, in_axes=(0, None))
    for fn in (double, triple, total, double):
        assert_same(g(X, fn), loop(calls_param, (X, fn), (0, None)))


def test_methods_of_objects_passed_in():
    g = vmap(uses_method, in_axes=(0, None))
    for k in (2.0, 3.0):
        assert_same(g(X, Scaled(k)), loop(uses_method, (X, Scaled(k)), (0, None)))
        assert_same(vmap(Scaled(k))(X), loop(Scaled(k), (X,)))


# ---------------------------------------------------------------- real-code forms
def one_line(x):
    return np.tanh(x) * 2  # noqa: E704


def one_line_suites(x):
    y = x * 0
    if x[0] > 0:
        y = x + 1  # noqa: E701
    else:
        y = x - 1  # noqa: E701
    for i in range(2):
        y = y + x[i]  # noqa: E701
    a = 1
    y = y * a  # noqa: E702
    return y


def static_and(x, amax=None):
    a = 0
    if amax is not None and a > amax:
        return x
    return x * 2.0


def validated(q):
    if q.ndim != 1 or q.shape[0] != 3:
        raise ValueError(
            "Expected a vector of shape (3,), got " "an array of shape %s" % (q.shape,)
        )
    if not isinstance(q, np.ndarray):
        raise TypeError(f"got {type(q)} " "instead")
    return q / 2


def flagged(x, use_plugin=False):
    if use_plugin:
        import a_module_that_is_not_installed  # noqa: F401
    return x


@pytest.mark.parametrize("f", [one_line, one_line_suites, static_and, validated, flagged])
def test_forms_real_code_is_written_in(f):
    assert not run(f, (X[:, :3],))


# ---------------------------------------------------------------- try, static facts
_TABLE = {"sxyz": (0, 1, 2), "rzyx": (2, 1, 0)}


def table_lookup(x, axes="sxyz"):
    try:
        first_axis = _TABLE[axes][0]
    except KeyError:
        first_axis = 1
    return x * first_axis + x


def try_pass(x):
    try:
        import scipy  # noqa: F401
    except ImportError:
        pass
    return x * 2


def try_on_batched(x):
    try:
        y = x[0] * 2
    except IndexError:
        y = x[0]
    return y


def scalar_or_vector(x):
    if np.isscalar(x):
        return x
    return x.sum()


@pytest.mark.parametrize("f", [table_lookup, try_pass, scalar_or_vector])
def test_try_and_static_facts_stay_vectorised(f):
    assert not run(f, (X,))


def test_table_lookup_with_another_mode():
    for axes in ("rzyx",):
        assert not run(table_lookup, (X, axes), (0, None))


def test_try_whose_body_computes_with_the_batch_runs_per_example():
    assert run(try_on_batched, (X,)), "declared fallback"


# ---------------------------------------------------------------- found by the wild corpus
class Estimator:
    def _p(self, h):
        return np.array([h[0], -h[1]])

    def estimate(self, a):
        H = np.eye(2)
        return self._p(H[0]) * a.sum()


def r_of_batched(a):
    H = np.r_[[a], [a]]
    return H[0]


def r_returned(a):
    return np.r_[[a], [a]]


def test_method_called_with_unbatched_arguments_keeps_them():
    """Was a crash: the rebuilt call was `self._p(self)`."""
    assert not run(Estimator().estimate, (X[:, :2],))


@pytest.mark.parametrize("f", [r_of_batched, r_returned])
def test_an_object_indexed_with_batched_values_is_never_handed_the_batch(f):
    """Was silently wrong: np.r_[[a], [a]] of a batched a was taken as unbatched."""
    assert run(f, (X[:, :2],)), "declared fallback"


def item_then_write(a, j):
    x = a[j]
    a[j] = 7.0
    return a, x


def test_a_scalar_read_before_a_write_keeps_its_value():
    """Was silently wrong: per example `a[j]` is a copy, batched `a[:, j]` is a view."""
    A = np.arange(12.0).reshape(4, 3)
    want = loop(item_then_write, (A.copy(), 1), (0, None))
    assert_same(vmap(item_then_write, in_axes=(0, None))(A.copy(), 1), want)


def iterate_while_writing(x):
    v0 = np.eye(3)
    for row in v0:
        v0[1] = v0[1] + x * row.sum()
    return v0


def test_a_loop_over_an_array_it_writes_and_batches_runs_per_example():
    """Found by the 10,000-program run (silently wrong): per example the loop sees its
    own writes into the array it iterates; the batched loop iterated the old array."""
    assert_runs_per_example(iterate_while_writing, (X[:, :3],), where="writes into")


def dict_item_in_one_branch(x0, x1):
    d = {"q": x0 * 1.0, "n": 0}
    if x1.shape[0] > 3:
        if x1[0] > 1.0:
            d["n"] = d["n"] + 1
    return d["q"] * (d["n"] + 1)


@pytest.mark.parametrize("n", [4, 3])
def test_a_dict_item_batched_on_one_path_is_widened_on_the_other(n):
    """Found by the differential run with the new forms (a crash: the plain `if` path
    that did not write the item left it without its batch axis)."""
    x1 = np.full((4, n), 2.0)
    x1[1, 0] = 0.0
    assert not run(dict_item_in_one_branch, (X, x1))
