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
    with time_limit(5.0, "vmap"):
        check(f, *args, in_axes=in_axes, out_axes=out_axes)


def bug(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# ---------------------------------------------------------------- silently wrong
def rebind_iterated(v, s):
    for _row in v:
        v = v + s
    return v


def test_rebinding_the_iterated_array_keeps_the_iteration_count():
    run(rebind_iterated, np.ones((3, 2)), np.array([1.0, 2.0]), in_axes=(None, 0))


def loop_over_own_length(v, s):
    for _ in range(len(v)):
        v = v + s
    return v


def test_loop_bound_read_from_a_value_the_loop_makes_batched():
    run(loop_over_own_length, np.zeros(3), np.array([1.0, 2.0]), in_axes=(None, 0))


def self_sum(x):
    b = np.ones(3)
    b[0] = b.sum() + x
    return b


def test_value_that_reads_the_buffer_it_is_written_into():
    run(self_sum, np.array([1.0, 2.0]))


def zeros_of_own_shape(x):
    for t in range(2):
        x = np.zeros(x.shape) + t
    return x


def test_batched_name_rebound_unbatched_in_a_loop_keeps_its_shape():
    run(zeros_of_own_shape, np.ones((3, 3, 3)))


def masked_augassign(x):
    b = np.arange(3.0)
    if np.sum(x) > 0:
        b[1] += 10.0
    return b


def test_augmented_item_assignment_under_a_batched_if():
    run(masked_augassign, np.array([[1.0, 2.0], [-5.0, 1.0], [3.0, 0.0]]))


# ---------------------------------------------------------------- crashes and hangs
def rebind_arg_in_for(x):
    for t in range(3):
        x = np.exp(t)
    return np.ones(4) + x


def test_argument_rebound_unbatched_in_a_loop():
    run(rebind_arg_in_for, np.array([-0.75, 0.0]))


def self_dot(x):
    b = np.zeros(3)
    b[0] += np.dot(b, x)
    return b


def test_dot_with_the_buffer_it_is_written_into():
    run(self_dot, np.array([[1.25, 2.0, -1.0], [1.0, 0.5, 0.0]]))


def int_buffer_add_float(k):
    b = np.array(k)
    b[1] += 1.5
    return b


def test_augmented_assignment_of_a_float_into_an_int_element():
    run(int_buffer_add_float, np.array([[1, 2], [3, 4]]))


def while_continue(x, y):
    t = 0
    while t < 2 and np.sum(x) > 0.0:
        t = t + 1
        y = np.exp(-np.abs(y))
        if y.shape[0] > 1:
            continue
    return y


def test_continue_in_a_batched_while_terminates():
    rng = np.random.default_rng(0)
    run(while_continue, rng.standard_normal((3, 2, 2)), np.ones((2, 2)), in_axes=(0, None))


def unbound_in_loop(x):
    for t in range(2):
        if np.any(x > 0.5):
            v = x[t]  # noqa: F841 - bound on one path only, never read
    return x


def test_name_bound_only_inside_a_batched_if():
    run(unbound_in_loop, np.random.default_rng(0).standard_normal((3, 3)))


def unbound_in_nested_while(x, k):
    t = 0
    while t < 2:
        t = t + 1
        u = 0
        while u < 2 and x > 0.5:
            u = u + 1
            v = k[0]  # noqa: F841 - bound on one path only, never read
    return x


def test_name_bound_only_inside_a_batched_while():
    run(unbound_in_nested_while, np.array([1.0, 0.0, 2.0]), np.ones(2), in_axes=(0, None))


def continue_in_while(x):
    t = 0
    while t < 2:
        t = t + 1
        if np.sum(x) > 1.0:
            continue
    return x


def test_batched_continue_in_an_unbatched_while():
    run(continue_in_while, np.array([[1.0, 2.0], [0.0, 0.5], [2.0, 1.0]]))


def nested_returns(x):
    if np.any(x > 0.5):
        if x.shape[0] > 5:
            return x
        if np.sum(x) > 0.0:
            return x
    return x


def test_returns_in_nested_ifs():
    run(nested_returns, np.array([[1.0, 2.0], [0.0, 0.25], [0.75, 0.0]]))


def return_in_while(x):
    t = 0
    while t < 3:
        t = t + 1
        if np.any(x > -0.25):
            return t
    return 0


def test_early_return_inside_a_while():
    run(return_in_while, np.random.default_rng(0).standard_normal((3, 3)))


def einsum_in_else(s):
    if np.any(s > 0.0):
        pass
    else:
        b = np.ones((4,))
        b[:] = np.einsum("i,i->", b, b)
    return s


def test_einsum_on_a_buffer_made_in_a_batched_branch():
    run(einsum_in_else, np.array([1.5, -1.0, 0.5]))


def while_inplace(x):
    t = 0
    while t < 1 and not np.all(x > 1.0):
        t = t + 1
        b = np.zeros((1, 1))
        b[::2] += b
    return x


def test_strided_augmented_assignment_in_a_batched_while():
    run(while_inplace, np.random.default_rng(0).standard_normal((3, 2)))


def for_rows_continue(x, k, flag):
    for _row in x:
        b = np.ones((3,))
        b[1] += np.mean(k)
        if np.mean(x) >= 0.5:
            continue
    return flag


def test_augmented_item_assignment_in_a_loop_with_batched_continue():
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    run(for_rows_continue, x, np.ones(2), True, in_axes=(0, None, None))


def scatter_in_if(x, i):
    if not np.all(i > 1.0):
        b = np.zeros((4, 4, 4))
        b[i, ...] += np.ones_like(b) * np.mean(i)
    return x


@bug(
    "ValueError (broadcast): a branch that no lane takes still runs on the batch, so "
    "a shape error in it raises where the loop, skipping the branch, does not"
)
def test_a_branch_no_lane_takes_raises_nothing():
    x = np.random.default_rng(0).standard_normal((3, 2))
    i = np.array([[2, 3, 4], [5, 6, 7], [2, 2, 2]])  # every lane skips the branch
    run(scatter_in_if, x, i)


def scatter_unbatched_index_in_if(x, i):
    if np.any(x > 0.0):
        b = np.zeros((4, 4))
        b[i] += 1.0
    return x


def test_scatter_add_at_unbatched_indices_under_a_batched_if():
    run(scatter_unbatched_index_in_if, np.array([1.0, -1.0]), np.array([-4, 3]), in_axes=(0, None))


# ------------------------------------------------- found by progen's issue-13 forms
def both_paths_return_in_plain_if(x):
    if x.shape[0] > 1:  # plain condition
        v = x * 2.0
        if x[0] > 0:  # batched early return
            return x
    else:
        v = x * 3.0
    return v


# Was a TransformBug (KeyError in control.masked_name): a name bound on both paths of a
# plain if/else whose first path holds a batched return; it runs per example now.
def test_name_bound_on_both_paths_of_a_plain_if_with_a_batched_return():
    run(both_paths_return_in_plain_if, np.array([[1.0, 2.0], [-1.0, 0.5], [2.0, 3.0]]))


def iterate_vector_written_in_place(x):
    x = x * 1.0
    for t in x:  # per example t is a scalar copy of x[k]
        x -= t
        x -= t
    return x


# Was silently wrong: iterating a per-example vector yields copies, the batched loop
# yielded views of x[:, k], which the in-place update changed before t was read again.
def test_loop_over_a_vector_updated_in_place():
    run(iterate_vector_written_in_place, np.array([[1.0, 2.0], [-1.0, 0.5], [2.0, 3.0]]))


def static_ternary_alias(x):
    b = np.ones(3)
    v = b if b.shape[0] > 1 else x  # per example v is b
    b[0] = 5.0
    return v


# Was silently wrong: a ternary on a static condition between an unbatched array and a
# batched one copies the unbatched branch (np.repeat), so v missed the write into b (it
# runs per example now).
def test_static_ternary_keeps_the_alias():
    run(static_ternary_alias, np.array([1.0, 2.0]))
