"""Property tests for the shape rules (rules/shape_ops.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case is run for every batched/unbatched combination of its array arguments; the
batch size, the dims, the seed and the position of the mapped axis are drawn.
"""

import numpy as np
import pytest
from hypothesis import given

from .harness import SETUP, assert_runs_per_example, cases, normal, run
from .oracle import check


# ----------------------------------------------------------------- reshape
def reshape_tuple(x):
    return x.reshape((3, 4))


def reshape_varargs(x):
    return x.reshape(4, 3)


def reshape_minus_one(x):
    return x.reshape(-1, 2)


def reshape_flat(x):
    return x.reshape(-1)


def reshape_flat_tuple(x):
    return x.reshape((-1,))


def np_reshape_tuple(x):
    return np.reshape(x, (6, 2))


def np_reshape_int(x):
    return np.reshape(x, -1)


def np_reshape_kw(x):
    return np.reshape(x, shape=(2, -1))


def reshape_reversed_shape(x):
    return x.reshape(x.shape[::-1])


def np_reshape_reversed_shape(x):
    return np.reshape(x, x.shape[::-1])


def reshape_half(x):
    n = x.shape[0]
    return x.reshape(n // 2, 2)


def reshape_shape_arith(x):
    n = x.shape[1]
    return x.reshape(x.shape[0] * (n // 2), 2)


def reshape_unpacked(x):
    m, n = x.shape
    return x.reshape(n, m) * 2.0


def reshape_add_axis(x):
    return x.reshape(x.shape + (1,))


def reshape_len(x):
    return x.reshape(len(x), -1)


def reshape_size(x):
    return x.reshape(x.size)


def reshape_negative_shape_index(x):
    return x.reshape(-1, x.shape[-1])


def reshape_expression(x):
    return (2.0 * x).reshape(-1, 2)


def reshape_variable_shape(x):
    s = (3, 4)
    return x.reshape(s)


GLOBAL_SHAPE = (4, 3)


def reshape_global_shape(x):
    return np.reshape(x, GLOBAL_SHAPE)


def reshape_list(x):
    return x.reshape([2, -1])


def reshape_like(x, y):
    return x.reshape(y.shape) + y


def np_reshape_like(x, y):
    return np.reshape(x, y.shape) - y


def reshape_then_sum(x, w):
    return x.reshape(2, -1).sum(axis=0) * w


RESHAPE = [
    (reshape_tuple, [normal(2, 6)]),
    (reshape_tuple, [normal(12)]),
    (reshape_varargs, [normal(3, 2, 2)]),
    (reshape_minus_one, [normal("m", "e")]),
    (reshape_minus_one, [normal("e")]),
    (reshape_flat, [normal("m", "n", "k")]),
    (reshape_flat, [normal()]),
    (reshape_flat_tuple, [normal("m", "n")]),
    (np_reshape_tuple, [normal(3, 4)]),
    (np_reshape_int, [normal("m", "n")]),
    (np_reshape_kw, [normal("m", "e")]),
    (reshape_reversed_shape, [normal("m", "n", "k")]),
    (np_reshape_reversed_shape, [normal("m", "n")]),
    (reshape_half, [normal("e")]),
    (reshape_shape_arith, [normal("m", "e")]),
    (reshape_unpacked, [normal("m", "n")]),
    (reshape_add_axis, [normal("m", "n")]),
    (reshape_len, [normal("m", "n", "k")]),
    (reshape_size, [normal("m", "n")]),
    (reshape_negative_shape_index, [normal("m", "n", "k")]),
    (reshape_expression, [normal("m", "e")]),
    (reshape_variable_shape, [normal(12)]),
    (reshape_global_shape, [normal(2, 6)]),
    (reshape_list, [normal("e", "n")]),
    (reshape_like, [normal("m", "n"), normal("n", "m")]),
    (np_reshape_like, [normal("m", "n", "k"), normal("k", "m", "n")]),
    (reshape_then_sum, [normal(2, "n"), normal("n")]),
]


@pytest.mark.parametrize("f,gens", cases(RESHAPE))
@given(setup=SETUP)
def test_reshape(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------------ ravel/flatten
def np_ravel(x):
    return np.ravel(x)


def method_ravel(x):
    return x.ravel()


def method_flatten(x):
    return x.flatten()


def flatten_then_write(x):
    y = x.flatten()
    y[0] = 100.0
    return y


def ravel_expression(x):
    return np.ravel(x + 1.0)


def ravel_mix(x, y):
    return np.ravel(x) + y.ravel()


RAVEL = [
    (fn, [normal(*shape)])
    for fn in (np_ravel, method_ravel, method_flatten)
    for shape in [(), ("m",), ("m", "n"), ("m", "n", "k")]
] + [
    (flatten_then_write, [normal("m", "n")]),
    (ravel_expression, [normal("m", "n", "k")]),
    (ravel_mix, [normal("m", "n"), normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(RAVEL))
@given(setup=SETUP)
def test_ravel_flatten(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------------- transposes and axes
def dot_T(x):
    return x.T


def T_mix(x, y):
    return x.T - 2.0 * y.T


def T_of_expression(x):
    return (x + 1.0).T


def T_matmul(x):
    return x.T @ x


def np_transpose_default(x):
    return np.transpose(x)


def np_transpose_axes(x):
    return np.transpose(x, (1, 0, 2))


def np_transpose_axes_kw(x):
    return np.transpose(x, axes=(0, 2, 1))


def method_transpose_varargs(x):
    return x.transpose(2, 0, 1)


def method_transpose_tuple(x):
    return x.transpose((1, 2, 0))


def method_transpose_default(x):
    return x.transpose()


def method_transpose_negative(x):
    return x.transpose(-1, 0, 1)


def transpose_mix(x, y):
    return np.transpose(x, (1, 0, 2)) * y


def np_swapaxes(x):
    return np.swapaxes(x, 0, 2)


def method_swapaxes_negative(x):
    return x.swapaxes(-1, 0)


def swapaxes_2d(x):
    return x.swapaxes(0, 1)


def moveaxis_first_last(x):
    return np.moveaxis(x, 0, -1)


def moveaxis_last_first(x):
    return np.moveaxis(x, -1, 0)


def moveaxis_lists(x):
    return np.moveaxis(x, [0, 1], [2, 0])


def moveaxis_kw(x):
    return np.moveaxis(x, source=1, destination=0)


def swap_mix(x, y):
    return np.swapaxes(x, 0, 1) + np.moveaxis(y, 1, 0)


AXES = [
    (dot_T, [normal()]),
    (dot_T, [normal("m")]),
    (dot_T, [normal("m", "n")]),
    (dot_T, [normal("m", "n", "k")]),
    (T_mix, [normal("m", "n"), normal("m", "n")]),
    (T_mix, [normal("m", "n", "k"), normal("m", "n", "k")]),
    (T_of_expression, [normal("m", "n", "k")]),
    (T_of_expression, [normal("m", "n")]),
    (T_matmul, [normal("m", "n")]),
    (np_transpose_default, [normal("m", "n", "k")]),
    (np_transpose_default, [normal("m", "n")]),
    (np_transpose_axes, [normal("m", "n", "k")]),
    (np_transpose_axes_kw, [normal("m", "n", "k")]),
    (method_transpose_varargs, [normal("m", "n", "k")]),
    (method_transpose_tuple, [normal("m", "n", "k")]),
    (method_transpose_default, [normal("m", "n")]),
    (method_transpose_negative, [normal("m", "n", "k")]),
    (transpose_mix, [normal("m", "n", "k"), normal("n", "m", "k")]),
    (np_swapaxes, [normal("m", "n", "k")]),
    (method_swapaxes_negative, [normal("m", "n", "k")]),
    (swapaxes_2d, [normal("m", "n")]),
    (moveaxis_first_last, [normal("m", "n", "k")]),
    (moveaxis_last_first, [normal("m", "n")]),
    (moveaxis_lists, [normal("m", "n", "k")]),
    (moveaxis_kw, [normal("m", "n", "k")]),
    (swap_mix, [normal("m", "n"), normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(AXES))
@given(setup=SETUP)
def test_transpose_swap_move(f, gens, setup):
    run(setup, f, gens)


# -------------------------------------------------- new axes and squeezing
def expand_first(x):
    return np.expand_dims(x, 0)


def expand_last(x):
    return np.expand_dims(x, -1)


def expand_middle(x):
    return np.expand_dims(x, 1)


def expand_neg2_kw(x):
    return np.expand_dims(x, axis=-2)


def expand_tuple(x):
    return np.expand_dims(x, (0, 2))


def expand_tuple_negative(x):
    return np.expand_dims(x, (0, -1))


def expand_tuple_both_negative(x):
    return np.expand_dims(x, (-1, -3))


def expand_then_squeeze(x):
    return np.squeeze(np.expand_dims(x, 1), 1)


def squeeze_middle(x):
    return np.squeeze(x, axis=1)


def method_squeeze_positional(x):
    return x.squeeze(1)


def method_squeeze_tuple(x):
    return x.squeeze(axis=(0, 2))


def squeeze_negative(x):
    return np.squeeze(x, -1)


def squeeze_to_scalar(x):
    return np.squeeze(x, axis=0)


def none_first(x):
    return x[None]


def none_second(x):
    return x[:, None]


def none_last(x):
    return x[..., None]


def none_around(x):
    return x[None, :, None]


def outer_by_none(x, y):
    return x[:, None] * y[None, :]


def broadcast_fixed(x):
    return np.broadcast_to(x, (3, 4))


def broadcast_like(x, y):
    return np.broadcast_to(x, y.shape) + y


def broadcast_star(x):
    return np.broadcast_to(x, (2, *x.shape))


def broadcast_kw(x):
    return np.broadcast_to(x, shape=(2, 3))


def at1(x):
    return np.atleast_1d(x)


def at2(x):
    return np.atleast_2d(x)


def at3(x):
    return np.atleast_3d(x)


NEWAXES = (
    [(fn, [normal(*s)]) for fn in (expand_first, expand_last) for s in [(), ("m",), ("m", "n")]]
    + [
        (expand_middle, [normal("m")]),
        (expand_middle, [normal("m", "n")]),
        (expand_neg2_kw, [normal("m", "n")]),
        (expand_tuple, [normal("m")]),
        (expand_tuple, [normal("m", "n")]),
        (expand_tuple_negative, [normal("m", "n")]),
        (expand_tuple_both_negative, [normal("m", "n")]),
        (expand_then_squeeze, [normal("m")]),
        (squeeze_middle, [normal("m", 1, "n")]),
        (method_squeeze_positional, [normal("m", 1)]),
        (method_squeeze_tuple, [normal(1, "m", 1)]),
        (squeeze_negative, [normal("m", 1)]),
        (squeeze_to_scalar, [normal(1)]),
        (none_first, [normal()]),
        (none_first, [normal("m", "n")]),
        (none_second, [normal("m")]),
        (none_second, [normal("m", "n")]),
        (none_last, [normal("m", "n")]),
        (none_around, [normal("m")]),
        (outer_by_none, [normal("m"), normal("n")]),
        (broadcast_fixed, [normal()]),
        (broadcast_fixed, [normal(4)]),
        (broadcast_fixed, [normal(1, 4)]),
        (broadcast_fixed, [normal(3, 1)]),
        (broadcast_like, [normal("n"), normal("m", "n")]),
        (broadcast_like, [normal("m", 1), normal("m", "n")]),
        (broadcast_star, [normal("m", "n")]),
        (broadcast_kw, [normal(3)]),
    ]
    + [
        (fn, [normal(*s)])
        for fn in (at1, at2, at3)
        for s in [(), ("m",), ("m", "n"), ("m", "n", "k")]
    ]
)


@pytest.mark.parametrize("f,gens", cases(NEWAXES))
@given(setup=SETUP)
def test_new_axes_squeeze_broadcast_atleast(f, gens, setup):
    run(setup, f, gens)


# --------------------------------------- shape facts in Python arithmetic
def div_size(x):
    return x / x.size


def mul_ndim(x):
    return x * x.ndim


def div_len(x):
    return x / len(x)


def mean_by_shape(x):
    return x.sum(axis=0) / x.shape[0]


def mul_last_dim(x):
    return x * x.shape[-1]


def np_shape_index(x):
    return x / np.shape(x)[0]


def np_ndim_add(x):
    return x + np.ndim(x)


def np_size_div(x):
    return x / np.size(x)


def shape_loop_sum(x):
    total = 0
    for d in x.shape:
        total = total + d
    return x * total


def shape_if(x):
    if x.shape[0] > 2:
        return x[:2] * 1.0
    return x * 1.0


def ndim_if(x):
    if x.ndim == 2:
        return x.sum(axis=1)
    return x


def shape_as_array(x):
    return np.array(x.shape) * 2


def shape_mix(x, y):
    return x * y.shape[0] + y.size


SHAPES = [
    (div_size, [normal("m", "n")]),
    (div_size, [normal()]),
    (mul_ndim, [normal("m", "n", "k")]),
    (div_len, [normal("m", "n")]),
    (mean_by_shape, [normal("m", "n")]),
    (mul_last_dim, [normal("m", "n")]),
    (np_shape_index, [normal("m", "n")]),
    (np_ndim_add, [normal("m")]),
    (np_ndim_add, [normal("m", "n")]),
    (np_size_div, [normal("m", "n", "k")]),
    (shape_loop_sum, [normal("m", "n")]),
    (shape_if, [normal("m")]),
    (ndim_if, [normal("m", "n")]),
    (ndim_if, [normal("m")]),
    (shape_as_array, [normal("m", "n")]),
    (shape_mix, [normal("k"), normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(SHAPES))
@given(setup=SETUP)
def test_shape_arithmetic(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------- squeeze without axis (issue 15)
def squeeze_no_axis(x):
    return np.squeeze(x)


def method_squeeze_no_axis(x):
    return x.squeeze()


@pytest.mark.parametrize(
    "f,shape",
    [
        (squeeze_no_axis, (1, 3)),
        (squeeze_no_axis, (3,)),
        (squeeze_no_axis, (1, 1)),
        (method_squeeze_no_axis, (3, 1)),
    ],
)
@pytest.mark.parametrize("batch", [1, 4])
def test_squeeze_without_axis_keeps_the_batch_axis(f, shape, batch):
    """The example's unit axes go; the batch axis stays even when the batch has one."""
    x = np.random.default_rng(0).standard_normal((batch, *shape))
    check(f, x)


# ------------------------------------------------------------- unsupported
def reshape_order_f(x):
    return x.reshape(3, 2, order="F")


def np_reshape_order_f(x):
    return np.reshape(x, (3, 2), order="F")


@pytest.mark.parametrize(
    "f,shape",
    [
        (reshape_order_f, (2, 3)),
        (np_reshape_order_f, (2, 3)),
    ],
)
@pytest.mark.parametrize("batch", [1, 4])
def test_runs_per_example(f, shape, batch):
    x = np.random.default_rng(0).standard_normal((batch, *shape))
    assert_runs_per_example(f, (x,), where="test_rules_shape.py")


def order_f_unbatched(x, y):
    return x.reshape(6, order="F") * y


def np_order_f_unbatched(x, y):
    return np.reshape(x, 6, order="F") * y


@pytest.mark.parametrize("f", [order_f_unbatched, np_order_f_unbatched], ids=lambda f: f.__name__)
def test_unbatched_order_f_is_left_alone(f):
    # Only a *batched* array makes order='F' unsupported: unbatched, it runs as written
    # (rules/__init__.py: "Unbatched calls ... must then return the call unchanged").
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((4, 6))
    check(f, x, y, in_axes=(None, 0))
