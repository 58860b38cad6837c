"""Programs that once broke astvmap; each is checked against the loop."""

import numpy as np


def slice_keeps_rank(x):
    return x[:2] + np.ones((2, 3))


def sort_slice_mean(s):
    t = np.sort(s)
    return t[1:4].mean()


def rbf_gram(X):
    K = np.exp(-np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1))
    return K + np.eye(X.shape[0])


def det_of_slice(v):
    return np.linalg.det(v[1:])


def fill_in_loop(x):
    V = np.ones((4, 3))
    for j in range(1, 3):
        V[:, j] = x**j
    return V


def hstack_unbatched_then_matmul(pts, x):
    return np.hstack([pts, pts]) @ x


def math_module(x):
    import math

    return x * math.pi + np.log(2 * math.pi)


def accumulate_into_scalar(x, y):
    s = x.sum()
    s += y  # a NumPy scalar rebinds: s becomes an array shaped like y
    return s


def gather_plus_bias(table, token, bias):
    return table[token] + bias


def scale(k, x):
    return k * x


def assert_positive(x):
    assert x.min() > -10.0
    return x


def inplace_into_unbatched_buffer(x, y):
    z = x * 1.0
    z += y
    return z


def inplace_update_reading_itself(x):
    b = np.zeros((2, 4))
    b -= b * 0.5 + np.mean(np.einsum("ij,j->i", x, b[0]))
    return b


def masked_bool_return(x, flag):
    same = x > 0
    if np.sum(x) > 0:
        if flag:
            return same
    return np.zeros(x.shape, dtype=bool)


def view_then_batched_write(x):
    b = np.zeros((4, 3))
    v = b[::2]
    b[:, 1:] = np.zeros((4, 2)) + np.mean(x)
    return v


def view_by_swapaxes_then_batched_write(x):
    b = np.ones((2, 2))
    v = np.swapaxes(b, 0, -1)
    b[..., -2] = np.zeros((2,)) + x
    return v


def rebound_unbatched_then_break(x):
    for t in range(2):
        x = min(np.mean(t), 0.5)
        if t % 2 == 0:
            break
    return np.maximum(np.zeros(3), x)


def rebound_unbatched_then_continue(x):
    for t in range(3):
        x = np.zeros(x.shape) + t
        if t < 2:
            continue
    return x


def python_float_from_min_widened(x, n):
    if n > 0:
        x = min(np.mean(n), 0.5)  # a Python float, though np.mean gives a NumPy one
    return x


def invert_a_widened_python_bool(x, flag):
    if x.shape[0] > 3:
        flag = flag ^ (np.mean(x) > 0)
    return ~flag


def plain_continue_in_a_loop_with_batched_break(v, t):
    s = 0.0
    for i in range(4):
        if i == 1:
            continue
        if v[i] > t:
            break
        s += v[i]
    return s


def augmented_float_into_int_element_of_unknown_dtype(x, k):
    b = k.copy()
    b = np.maximum(b, np.sum(np.outer(k, k) > 0))  # an int array; its dtype is not tracked
    b[0] += np.where(x > 0.5, x, 0.25 * x)
    return b


def maybe_bound_then_assigned_in_a_batched_loop(x, flag):
    if flag:
        y = 0.0
    i = 0
    while i < x:
        y = i * 2.0
        i += 1
    return y


def maybe_bound_then_assigned_in_a_batched_if(x, flag):
    if flag:
        y = 0.0
    if x > 0:
        y = 1.0
    return y


def masked_in_place_update_seen_by_the_loop_over_it(x, i):
    x = np.maximum(x, max(np.mean(i), np.mean(x)))
    for row in x:
        v = np.mean(x, axis=(-2, -1), keepdims=True)
        if np.any(row > -0.25):
            x -= x * 0.5 + v  # in place: the rows still to come see it
    return x


def masked_in_place_float_into_int(n):
    if n.sum() > 0:
        n -= 0.5  # the loop raises: an in-place update cannot cast float to int
    return n


def write_through_a_view_into_its_base(x):
    a = np.zeros(4)
    b = a[:2]
    b[0] = x  # reaches a in the loop
    return a


class Doubler:
    def apply(self, x):
        return x * 2.0


DOUBLER = Doubler()


def calls_a_global_objects_method(x):
    return DOUBLER.apply(x) + 1.0


def helper_through_a_local_import(x):
    # transforms3d's quat2euler: `from . import quaternions as nq` in the body, then
    # nq.quat2mat(q). The guard on the helper finds its module by name, not as a free
    # name of this function (found by the wild corpus: "the specialisation ... does not
    # hold for the arguments it was made for").
    from tests.programs import regressions as reg

    return reg.sort_slice_mean(x) * 2.0


def iterate_a_vector_written_in_place(x):
    # progen (issue 11 forms): per example `t` is a scalar copy of x[k]; the batched rows
    # were views of x, which the in-place update changed before `t` was read again.
    x = x * 1.0
    for t in x:
        x -= t
        x -= t
    return x


def alias_chosen_by_an_unbatched_condition(x):
    # progen: `v` IS `b` per example; the batched code copied b along the batch to join
    # it with x, so the write into b missed v (silently wrong). Now per example.
    b = np.ones(3)
    v = b if b.shape[0] > 1 else x
    b[0] = 5.0
    return v
