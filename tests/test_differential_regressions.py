"""Bugs found by the differential tester (tests/test_differential.py), minimised.

Each is expected to fail (``xfail(strict=True)``) until astvmap is fixed; a fix
makes it pass, which fails the strict xfail: then drop the marker (or move the
case to tests/test_regressions.py). Every call runs under a time limit, so a bug
that makes the generated code loop forever fails instead of hanging the suite.
"""

import numpy as np
import pytest

from .oracle import check
from .progen import time_limit


def run(f, *args, in_axes=0, out_axes=0):
    with time_limit(10.0, "vmap"):
        check(f, *args, in_axes=in_axes, out_axes=out_axes)


def bug(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# ---------------------------------------------------------------- silently wrong
def rebind_iterated(v, s):
    for _row in v:
        v = v + s
    return v


@bug(
    "silently wrong: v becomes batched inside `for row in v`, the broadcast is hoisted "
    "above the loop, and the loop then iterates the batch axis (B times, not 3)"
)
def test_rebinding_the_iterated_array_keeps_the_iteration_count():
    run(rebind_iterated, np.ones((3, 2)), np.array([1.0, 2.0]), in_axes=(None, 0))


def masked_augassign(x):
    b = np.arange(3.0)
    if np.sum(x) > 0:
        b[1] += 10.0
    return b


@bug(
    "silently wrong: `b[1] += v` under a batched `if` reads `b[1]` (a row of the batch) "
    "instead of `b[:, 1]`: np.where(mask, b[1] + 10.0, b[:, 1])"
)
def test_augmented_item_assignment_under_a_batched_if():
    run(masked_augassign, np.array([[1.0, 2.0], [-5.0, 1.0], [3.0, 0.0]]))


# ---------------------------------------------------------------- crashes and hangs
def rebind_arg_in_for(x):
    for t in range(3):
        x = np.exp(t)
    return np.ones(4) + x


@bug(
    "IndexError: a mapped argument rebound to an unbatched value inside a `for` is "
    "still indexed as batched after it: np.ones(4) + x[:, None]"
)
def test_argument_rebound_unbatched_in_a_loop():
    run(rebind_arg_in_for, np.array([-0.75, 0.0]))


def while_continue(x, y):
    t = 0
    while t < 2 and np.sum(x) > 0.0:
        t = t + 1
        y = np.exp(-np.abs(y))
        if y.shape[0] > 1:
            continue
    return y


@bug("endless loop: `continue` in a batched `while` skips the update of the active lanes")
def test_continue_in_a_batched_while_terminates():
    rng = np.random.default_rng(0)
    run(while_continue, rng.standard_normal((3, 2, 2)), np.ones((2, 2)), in_axes=(0, None))


def unbound_in_loop(x):
    for t in range(2):
        if np.any(x > 0.5):
            v = x[t]  # noqa: F841 - bound on one path only, never read
    return x


@bug(
    "UnboundLocalError: a name first bound inside a batched `if` (in a loop) is merged "
    "with np.where against its value before the `if`, which does not exist"
)
def test_name_bound_only_inside_a_batched_if():
    run(unbound_in_loop, np.random.default_rng(0).standard_normal((3, 3)))


def return_in_while(x):
    t = 0
    while t < 3:
        t = t + 1
        if np.any(x > -0.25):
            return t
    return 0


@bug("ValueError (truth value of an array): an early `return` under a batched `if` in a `while`")
def test_early_return_inside_a_while():
    run(return_in_while, np.random.default_rng(0).standard_normal((3, 3)))


def einsum_in_else(s):
    if np.any(s > 0.0):
        pass
    else:
        b = np.ones((4,))
        b[:] = np.einsum("i,i->", b, b)
    return s


@bug("ValueError from einsum: a buffer made in a batched `else` branch is given the batch axis")
def test_einsum_on_a_buffer_made_in_a_batched_branch():
    run(einsum_in_else, np.array([1.5, -1.0, 0.5]))


def while_inplace(x):
    t = 0
    while t < 1 and not np.all(x > 1.0):
        t = t + 1
        b = np.zeros((1, 1))
        b[::2] += b
    return x


@bug("ValueError (broadcast): `b[::2] += b` on a local buffer inside a batched `while`")
def test_strided_augmented_assignment_in_a_batched_while():
    run(while_inplace, np.random.default_rng(0).standard_normal((3, 2)))


def for_rows_continue(x, k, flag):
    for _row in x:
        b = np.ones((3,))
        b[1] += np.mean(k)
        if np.mean(x) >= 0.5:
            continue
    return flag


@bug("ValueError (broadcast): `b[1] += v` in a loop with a batched `continue` reads b[1]")
def test_augmented_item_assignment_in_a_loop_with_batched_continue():
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    run(for_rows_continue, x, np.ones(2), True, in_axes=(0, None, None))


def scatter_in_if(x, i):
    if not np.all(i > 1.0):
        b = np.zeros((4, 4, 4))
        b[i, ...] += np.ones_like(b) * np.mean(i)
    return x


@bug(
    "ValueError (broadcast): a scatter-add with a batched index array under a batched "
    "`if` gathers the old values with b[i, :, :] instead of b[np.arange(B)[:, None], i]"
)
def test_scatter_add_under_a_batched_if():
    x = np.random.default_rng(0).standard_normal((3, 2))
    i = np.array([[-1, -1, 0], [-1, 0, -1], [0, 0, 0]])
    run(scatter_in_if, x, i)
