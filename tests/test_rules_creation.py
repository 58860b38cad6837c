"""Property tests for the creation rules (rules/creation.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case is run for every batched/unbatched combination of its array arguments; the
batch size, the dims, the seed and the position of the mapped axis are drawn.
"""

import numpy as np
import pytest
from hypothesis import given

from astvmap import vmap

from .harness import SETUP, assert_runs_per_example, build, cases, ints, normal, run
from .oracle import check


# ------------------------------------------- zeros/ones/empty/full from shapes
def zeros_from_shape(x):
    return np.zeros(x.shape) + x


def ones_from_dim(x):
    return np.ones(x.shape[0]) * x.sum()


def zeros_int_dtype(x):
    return np.zeros(x.shape, dtype=np.int64) + 1


def zeros_derived_shape(x):
    return np.zeros((3, x.shape[-1])) + x[0]


def empty_then_fill(x):
    e = np.empty(x.shape)
    e[...] = 2.0 * x
    return e


def ones_only(x):
    # Does not depend on the batch: the result is repeated along it.
    return np.ones((2, 3))


def zeros_plus_unbatched(x, w):
    return np.zeros(w.shape) + w * x.sum()


def full_batched_fill(s):
    return np.full(3, s)


def full_vector_fill(v):
    return np.full((2, 3), v)


def full_shape_from_x(x, s):
    return np.full(x.shape, s) + x


def full_fill_dtype(s):
    return np.full(4, s, dtype=np.float32)


def full_int_fill(k):
    return np.full((2, 2), k)


def full_unbatched_fill(x):
    return np.full(x.shape, 7.0) - x


FILLED = [
    (zeros_from_shape, [normal("m", "n")]),
    (zeros_from_shape, [normal()]),
    (ones_from_dim, [normal("m", "n")]),
    (zeros_int_dtype, [normal("m", "n")]),
    (zeros_derived_shape, [normal("m", "n")]),
    (empty_then_fill, [normal("m", "n")]),
    (ones_only, [normal("m")]),
    (zeros_plus_unbatched, [normal("m"), normal("n", "k")]),
    (full_batched_fill, [normal()]),
    (full_vector_fill, [normal(3)]),
    (full_vector_fill, [normal(1)]),
    (full_shape_from_x, [normal("m", "n"), normal()]),
    (full_shape_from_x, [normal("m", "n"), normal("n")]),
    (full_fill_dtype, [normal()]),
    (full_int_fill, [ints(-5, 5)]),
    (full_unbatched_fill, [normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(FILLED))
@given(setup=SETUP)
def test_zeros_ones_empty_full(f, gens, setup):
    run(setup, f, gens)


# --------------------------------------------- arange/linspace/eye/identity
def arange_scaled(s):
    return np.arange(5) * s


def arange_from_shape(x):
    return x * np.arange(x.shape[0])


def arange_start_stop_step(x):
    return np.arange(1, 7, 2) + x


def arange_from_len(x):
    return np.arange(len(x))[::-1] * x


def linspace_scalars(a, b):
    return np.linspace(a, b, 5)


def linspace_vectors_last_axis(a, b):
    return np.linspace(a, b, 4, axis=-1)


def linspace_vectors(a, b):
    return np.linspace(a, b, 3)


def linspace_from_zero(b):
    return np.linspace(0.0, b, 3)


def linspace_no_endpoint(a, b):
    return np.linspace(a, b, 4, endpoint=False)


def eye_scaled(s):
    return np.eye(3) * s


def eye_offset_int(x):
    return np.eye(x.shape[0], k=1, dtype=int) @ x


def identity_plus_outer(x):
    return np.identity(x.shape[0]) + np.outer(x, x)


def eye_rectangular(x):
    return x @ np.eye(x.shape[-1], 3)


RANGES = [
    (arange_scaled, [normal()]),
    (arange_scaled, [ints(-3, 3)]),
    (arange_from_shape, [normal("m")]),
    (arange_from_shape, [ints(0, 9, "m", "m")]),
    (arange_start_stop_step, [normal()]),
    (arange_start_stop_step, [normal(3)]),
    (arange_from_len, [normal("m")]),
    (linspace_scalars, [normal(), normal()]),
    (linspace_vectors_last_axis, [normal("m"), normal("m")]),
    (linspace_vectors, [normal("m"), normal("m")]),
    (linspace_vectors, [normal("m", "n"), normal("n")]),
    (linspace_from_zero, [normal()]),
    (linspace_no_endpoint, [normal(), normal()]),
    (eye_scaled, [normal()]),
    (eye_offset_int, [normal("m")]),
    (eye_offset_int, [normal("m", "n")]),
    (identity_plus_outer, [normal("m")]),
    (eye_rectangular, [normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(RANGES))
@given(setup=SETUP)
def test_arange_linspace_eye_identity(f, gens, setup):
    run(setup, f, gens)


def eye_and_zeros_only(x):
    return np.eye(3) + np.zeros(3) + np.arange(3) + x


def test_creation_with_unbatched_args_is_left_as_written():
    x = np.ones((4, 3))
    text = vmap(eye_and_zeros_only).emit(x)
    assert "np.eye(3) + np.zeros(3) + np.arange(3)" in text
    check(eye_and_zeros_only, x)


# ------------------------------------------------------------------ *_like
def zeros_like(x):
    return np.zeros_like(x)


def ones_like_int(x):
    return np.ones_like(x, dtype=int)


def empty_like_filled(x):
    e = np.empty_like(x)
    e[...] = x * x
    return e


def full_like_number(x):
    return np.full_like(x, 2.5)


def full_like_batched_fill(x, s):
    return np.full_like(x, s)


def like_mix(x, y):
    return np.zeros_like(x) + np.ones_like(y)


def like_then_set(x):
    out = np.zeros_like(x)
    out[0] = x[-1]
    return out


LIKE = [
    (zeros_like, [normal("m", "n")]),
    (zeros_like, [ints(0, 5, "m")]),
    (zeros_like, [normal()]),
    (ones_like_int, [normal("m")]),
    (empty_like_filled, [normal("m", "n")]),
    (full_like_number, [normal("m")]),
    (full_like_number, [ints(0, 5, "m", "n")]),
    (like_mix, [normal("m", "n"), normal("n")]),
    (like_then_set, [normal("m", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(LIKE))
@given(setup=SETUP)
def test_like(f, gens, setup):
    run(setup, f, gens)


@given(setup=SETUP)
def test_full_like_with_batched_prototype(setup):
    # A batched fill needs a batched prototype (the unbatched one raises, see below).
    gens = [normal("m"), normal()]
    for pattern in [(True, True), (True, False)]:
        args, in_axes, out_axes = build(setup, gens, pattern)
        check(full_like_batched_fill, *args, in_axes=in_axes, out_axes=out_axes)


# ---------------------------------------------------- np.array of batched parts
def array3(a, b, c):
    return np.array([a, b, c])


def rotation(t, v):
    c, s = np.cos(t), np.sin(t)
    R = np.array([[c, -s], [s, c]])
    return R @ v


def matrix2x2(a, b, c, d):
    return np.array([[a, b], [c, d]])


def array_with_numbers(x):
    return np.array([x, 0.0, 1.0])


def array_int_and_number(i):
    return np.array([i, 1])


def diag_with_numbers(a, b):
    return np.array([[a, 0.0], [0.0, b]])


def constant_row(a, b):
    return np.array([[a, b], [0.0, 1.0]])


def array_of_vectors(v, w):
    return np.array([v, w])


def array_dtype(a, b):
    return np.array([a, b], dtype=np.float32)


def asarray_batched(x):
    return np.asarray(x) * 2.0


def array_copy_then_write(x):
    y = np.array(x)
    y[0] = 0.0
    return y


def array_tuple(a, b):
    return np.array((a, b))


def array_float32(a, b):
    return np.array([a, b])


def array_comprehension(x):
    return np.array([x[i] * i for i in range(3)])


def float32_normal(*dims):
    def gen(rng, lead, d):
        return rng.standard_normal(lead + tuple(d.get(x, x) for x in dims)).astype(np.float32)

    return gen


ARRAYS = [
    (array3, [normal(), normal(), normal()]),
    (rotation, [normal(), normal(2)]),
    (rotation, [normal(), normal(2, "n")]),
    (matrix2x2, [normal(), normal(), normal(), normal()]),
    (array_with_numbers, [normal()]),
    (array_int_and_number, [ints(-5, 5)]),
    (diag_with_numbers, [normal(), normal()]),
    (constant_row, [normal(), normal()]),
    (array_of_vectors, [normal("m"), normal("m")]),
    (array_dtype, [normal(), normal()]),
    (asarray_batched, [normal("m", "n")]),
    (array_copy_then_write, [normal("m")]),
    (array_tuple, [normal("m"), normal("m")]),
    (array_float32, [float32_normal(), float32_normal()]),
    (array_comprehension, [normal(3)]),
    (array_comprehension, [normal("g", "n")]),
]


@pytest.mark.parametrize("f,gens", cases(ARRAYS))
@given(setup=SETUP)
def test_array_of_batched_values(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------------- unsupported
def arange_batched(n):
    return np.arange(n)


def zeros_batched_shape(n):
    return np.zeros(n)


def eye_batched(n):
    return np.eye(n)


def full_like_unbatched_prototype(x, s):
    return np.full_like(x, s)


@pytest.mark.parametrize(
    "f", [arange_batched, zeros_batched_shape, eye_batched], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("batch", [1, 3])
def test_shape_from_batched_value_runs_per_example(f, batch):
    # The shape depends on the data: the loop stacks equal shapes and fails on others.
    assert_runs_per_example(f, (np.full(batch, 3),), where="test_rules_creation.py")
    if batch > 1:
        assert_runs_per_example(f, (np.arange(2, 2 + batch),), raises=ValueError)


def test_full_like_of_unbatched_with_batched_fill_runs_per_example():
    args = (np.ones(3), np.arange(4.0))
    assert_runs_per_example(full_like_unbatched_prototype, args, (None, 0))
