"""Misuse gets a clear error that names the argument (or the function), never a wrong result.

Decision for async functions (and async generators): a ``TypeError`` at ``vmap()``
time, like a non-callable. What is wrong is the kind of callable, visible on the
function object before any call: calling it returns a coroutine, not arrays, and
the loop would have nothing to stack. ``UnsupportedError`` is kept for supported
callables whose *source* holds a construct astvmap cannot batch (``global``,
``nonlocal``, ``yield`` in a helper), and names that line.
"""

from __future__ import annotations

import functools
import operator
import re

import numpy as np
import pytest

from astvmap import UnsupportedError, VmapError, vmap

from .harness import assert_runs_per_example
from .oracle import check
from .programs import misuse, names

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 2))


# --------------------------------------------------------- mapped arguments
JUNK = {
    "None": (
        None,
        TypeError,
        r"argument 0 \(x\) along axis 0, but it is not an array: got NoneType",
    ),
    "str": ("abc", TypeError, r"argument 0 \(x\) .* not an array: got str"),
    "bytes": (b"abc", TypeError, r"argument 0 \(x\) .* not an array: got bytes"),
    "object": (object(), TypeError, r"argument 0 \(x\) .* not an array: got object"),
    "object array": (
        np.array([{"a": 1}, {"b": 2}], dtype=object),
        TypeError,
        r"argument 0 \(x\) .* dtype object",
    ),
    "list of str": (["a", "b"], TypeError, r"argument 0 \(x\[0\]\) .* not an array: got str"),
    "list of numbers": ([1.0, 2.0], ValueError, r"argument 0 \(x\[0\]\) .* scalar.*np\.asarray"),
    "python scalar": (3.0, ValueError, r"argument 0 \(x\) .* scalar \(rank 0\)"),
    "numpy scalar": (np.float32(3), ValueError, r"argument 0 \(x\) .* scalar \(rank 0\)"),
}


@pytest.mark.parametrize("junk, error, message", JUNK.values(), ids=JUNK.keys())
def test_junk_for_a_mapped_argument(junk, error, message):
    with pytest.raises(error, match=message):
        vmap(misuse.total)(junk)


def test_junk_inside_a_pytree_names_the_leaf():
    bad = {"W": rng.standard_normal((3, 2, 2)), "b": "oops"}
    with pytest.raises(TypeError, match=r"argument 0 \(p\['b'\]\) along axis 0.*got str"):
        vmap(names.dict_params)(bad, X)
    params = names.Params(rng.standard_normal((3, 2, 2)), None)
    with pytest.raises(TypeError, match=r"argument 0 \(p\.b\) .*NoneType"):
        vmap(names.apply_params)(params, X)


def test_a_one_leaf_container_is_named_by_its_path():
    check(misuse.first_of, (X,))
    with pytest.raises(TypeError, match=r"argument 0 \(t\[0\]\) along axis 0.*got str"):
        vmap(misuse.first_of)(("abc",))


def test_mismatched_sizes_name_every_mapped_argument():
    message = r"inconsistent sizes.*\n  argument 0 \(x\) has size 3\n  argument 1 \(y\) has size 5"
    with pytest.raises(ValueError, match=message):
        vmap(misuse.pair_sum)(X, np.ones((5, 2)))
    with pytest.raises(
        ValueError, match=r"argument 0 \(x\) has size 2\n.*argument 1 \(y\) has size 3"
    ):
        vmap(misuse.pair_sum, in_axes=(1, 0))(X, X)
    tree = {"W": np.ones((4, 2, 2)), "b": np.ones((3, 2))}
    with pytest.raises(ValueError, match=r"\(p\['W'\]\) has size 4\n.*\(p\['b'\]\) has size 3"):
        vmap(names.dict_params, in_axes=(0, 0))(tree, X)
    with pytest.raises(ValueError, match=r"axis_size=4 but the mapped arguments have size 3"):
        vmap(misuse.total, axis_size=4)(X)


@pytest.mark.parametrize("axis", [2, -3, 7])
def test_axis_out_of_range(axis):
    with pytest.raises(
        ValueError, match=rf"in_axes={axis} is out of range for argument 0 \(x\) of shape \(3, 2\)"
    ):
        vmap(misuse.total, in_axes=axis)(X)


def test_axis_out_of_range_in_a_pytree():
    tree = {"W": np.ones((3, 2, 2)), "b": np.ones(2)}
    with pytest.raises(ValueError, match=r"in_axes=3 is out of range for argument 0 \(p\['W'\]\)"):
        vmap(names.dict_params, in_axes=({"W": 3, "b": None}, 0))(tree, X)


def test_in_axes_that_do_not_fit_the_arguments():
    with pytest.raises(ValueError, match="one entry per positional argument: got 1 entries for 2"):
        vmap(misuse.pair_sum, in_axes=(0,))(X, X)
    with pytest.raises(
        ValueError, match=r"in_axes\[0\]=\{'W': 0\} is not a tree prefix of argument 0"
    ):
        vmap(names.dict_params, in_axes=({"W": 0}, 0))({"W": X, "b": X}, X)
    for bad in ("0", 1.0, True, [0, "x"]):
        with pytest.raises(ValueError, match="in_axes must be an int, None"):
            vmap(misuse.total, in_axes=bad)


# ----------------------------------------------------------------- out_axes
OUT_AXES = {
    "too many entries": ((0, 1, 0), "has 3 entries but the output has 2"),
    "too few entries": ((0,), "has 1 entries but the output has 2"),
    "dict for a tuple": ({"a": 0}, "has no entry 0 for the output"),
    "tuple for a leaf": (((0, 1), 0), r"out_axes=\(0, 1\) is not a tree prefix of the output\[0\]"),
    "out of range": (
        (0, 3),
        r"out_axes=3 is out of range for the output\[1\] of per-example rank 1",
    ),
    "None for a batched output": ((None, 0), r"out_axes=None for the output\[0\], but it varies"),
}


@pytest.mark.parametrize("out_axes, message", OUT_AXES.values(), ids=OUT_AXES.keys())
def test_out_axes_that_do_not_fit_the_output(out_axes, message):
    with pytest.raises(ValueError, match=message):
        vmap(misuse.two_outputs, out_axes=out_axes)(X)


def test_out_axes_of_the_wrong_type_fail_at_vmap_time():
    for bad in ("0", 0.5, (0, "1")):
        with pytest.raises(ValueError, match="out_axes must be an int, None"):
            vmap(misuse.two_outputs, out_axes=bad)


# ---------------------------------------------------------------- callables
@pytest.mark.parametrize("thing", [3, "total", [misuse.total], np.ones(3)], ids=repr)
def test_not_a_callable(thing):
    with pytest.raises(
        TypeError, match=rf"vmap expects a callable, got .* of type {type(thing).__name__}"
    ):
        vmap(thing)


def test_callables_without_python_source():
    with pytest.raises(VmapError, match="cannot map the class Params"):
        vmap(names.Params)
    with pytest.raises(VmapError, match="built-in without"):
        vmap(len)
    with pytest.raises(VmapError, match="without a Python __call__"):
        vmap(operator.itemgetter(0))


GENERATORS = {
    "def": misuse.generator,
    "lambda": misuse.yield_lambda,
    "async generator": misuse.async_generator,
    "partial": functools.partial(misuse.generator),
    "__call__": misuse.GeneratorCall(),
}


@pytest.mark.parametrize("fn", GENERATORS.values(), ids=GENERATORS.keys())
def test_generator_functions_fail_at_vmap_time(fn):
    with pytest.raises(TypeError, match="cannot map the generator function"):
        vmap(fn)


def test_async_functions_fail_at_vmap_time():
    with pytest.raises(TypeError, match="cannot map the async function coroutine"):
        vmap(misuse.coroutine)
    with pytest.raises(TypeError, match="async function coroutine"):
        vmap(functools.partial(misuse.coroutine))


def test_yield_in_a_helper_runs_per_example_and_is_located():
    message = assert_runs_per_example(misuse.calls_a_generator, (X,))
    assert re.search(r"misuse\.py:\d+: .*Yield.*\n +yield x", message), message


@pytest.mark.parametrize(
    "fn, statement",
    [
        (misuse.counts_calls, "global COUNT"),
        (misuse.keeps_last, "global LAST"),
        (misuse.make_running_total(), "nonlocal seen"),
    ],
    ids=["global counter", "global batched value", "nonlocal"],
)
def test_global_and_nonlocal_writes_are_unsupported(fn, statement):
    before = (misuse.COUNT, misuse.LAST)
    with pytest.raises(UnsupportedError) as info:
        vmap(fn)(X)
    message = str(info.value)
    assert re.search(r"misuse\.py:\d+: global/nonlocal", message), message
    assert statement in message and "hint:" in message
    assert (misuse.COUNT, misuse.LAST) == before  # nothing ran


# ------------------------------------------------------------------- inputs
@pytest.mark.parametrize("in_axes", [(0, 0), (0, None), (None, 0), (1, 0), (-1, None)], ids=str)
def test_inputs_are_never_modified(in_axes):
    # check() compares every input array before and after the call.
    x = rng.standard_normal((3, 5) if in_axes[0] is None else (3, 5, 4))  # 4 examples
    x = x if in_axes[0] in (None, -1) else np.moveaxis(x, -1, in_axes[0])
    w = rng.standard_normal((5,) if in_axes[1] is None else (4, 5))
    check(misuse.copies_then_writes, x, w, in_axes=in_axes)
    check(misuse.rebinds, x, w, in_axes=in_axes)
    p = {"W": rng.standard_normal((4, 4, 5)), "b": rng.standard_normal(5)}
    check(misuse.reads_only, p, rng.standard_normal((4, 4)), in_axes=({"W": 0, "b": None}, 0))
