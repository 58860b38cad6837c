"""Property tests for the linear-algebra rules (rules/linalg.py) and for basic
indexing and item assignment (astvmap/assignments.py, astvmap/indexing.py) against the
loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case is run for every batched/unbatched combination of its array arguments; the
batch size, the dims, the seed and the position of the mapped axis are drawn.
"""

import numpy as np
import pytest
from hypothesis import given

from astvmap import UnsupportedError, vmap

from .harness import SETUP, Fixed, cases, ints, normal, run


def spd(n):
    """A well-conditioned symmetric positive definite (n, n) matrix."""

    def gen(rng, lead, d):
        k = d[n] if isinstance(n, str) else n
        m = rng.standard_normal(lead + (k, k))
        return m @ np.swapaxes(m, -1, -2) + k * np.eye(k)

    return gen


def wellcond(n):
    """A well-conditioned general (n, n) matrix: 2n I plus a unit perturbation."""

    def gen(rng, lead, d):
        k = d[n] if isinstance(n, str) else n
        return 2 * k * np.eye(k) + rng.standard_normal(lead + (k, k))

    return gen


# -------------------------------------------------------- products and dots
def mm(a, b):
    return a @ b


def np_matmul(a, b):
    return np.matmul(a, b)


def layer(x, W, b):
    return np.tanh(x @ W + b)


MATMUL_SHAPES = [
    (("n",), ("n",)),
    (("n",), ("n", "k")),
    (("m", "n"), ("n",)),
    (("m", "n"), ("n", "k")),
    ((2, "m", "n"), ("n", "k")),
    (("m", "n"), (2, "n", "k")),
    ((2, "m", "n"), (2, "n", "k")),
    ((1, "m", "n"), (2, "n", "k")),
    (("n",), (2, "n", "k")),
    ((2, "m", "n"), ("n",)),
]

MATMUL = [(f, [normal(*sa), normal(*sb)]) for f in (mm, np_matmul) for sa, sb in MATMUL_SHAPES] + [
    (layer, [normal("n"), normal("n", "k"), normal("k")]),
]


@pytest.mark.parametrize("f,gens", cases(MATMUL))
@given(setup=SETUP)
def test_matmul(f, gens, setup):
    run(setup, f, gens)


def np_dot(a, b):
    return np.dot(a, b)


def np_inner(a, b):
    return np.inner(a, b)


def np_outer(a, b):
    return np.outer(a, b)


def np_vdot(a, b):
    return np.vdot(a, b)


DOTS = (
    [
        (np_dot, [normal(*sa), normal(*sb)])
        for sa, sb in [
            ((), ("n",)),
            (("n",), ()),
            ((), ("m", "n")),
            (("n",), ("n",)),
            (("n",), ("n", "k")),
            (("m", "n"), ("n",)),
            (("m", "n"), ("n", "k")),
        ]
    ]
    + [
        (np_inner, [normal(*sa), normal(*sb)])
        for sa, sb in [
            (("n",), ("n",)),
            (("m", "n"), ("n",)),
            (("n",), ("k", "n")),
            (("m", "n"), ("k", "n")),
            ((), ("n",)),
        ]
    ]
    + [
        (np_outer, [normal(*sa), normal(*sb)])
        for sa, sb in [(("m",), ("n",)), (("m", "k"), ("n",)), (("m",), ("n", "k")), ((), ("n",))]
    ]
    + [
        (np_vdot, [normal(*sa), normal(*sb)])
        for sa, sb in [(("n",), ("n",)), (("m", "n"), ("m", "n")), (("m", "n"), ("n", "m"))]
    ]
)


@pytest.mark.parametrize("f,gens", cases(DOTS))
@given(setup=SETUP)
def test_dot_inner_outer_vdot(f, gens, setup):
    run(setup, f, gens)


# ---------------------------------------------------- trace/diagonal/einsum
def trace(x):
    return np.trace(x)


def method_trace_offset(x):
    return x.trace(offset=1)


def trace_axes(x):
    return np.trace(x, axis1=1, axis2=2)


def trace_negative_axes(x):
    return np.trace(x, axis1=-2, axis2=-1)


def diagonal(x):
    return np.diagonal(x)


def method_diagonal_offset(x):
    return x.diagonal(offset=-1)


def diagonal_positional_axes(x):
    return np.diagonal(x, 0, 0, 2)


def einsum_mv(A, x):
    return np.einsum("ij,j->i", A, x)


def einsum_dot(a, b):
    return np.einsum("i,i->", a, b)


def einsum_mm(A, B):
    return np.einsum("ij,jk->ik", A, B)


def einsum_spaces_transposed(A, B):
    return np.einsum("ij, jk -> ki", A, B)


def einsum_trace(A):
    return np.einsum("ii->", A)


def einsum_three(a, b, c):
    return np.einsum("i,j,k->ijk", a, b, c)


TRACES = [
    (trace, [normal("m", "m")]),
    (trace, [normal("m", "n")]),
    (trace, [normal("m", "n", "k")]),
    (method_trace_offset, [normal("m", "n")]),
    (trace_axes, [normal("k", "m", "n")]),
    (trace_negative_axes, [normal("k", "m", "n")]),
    (diagonal, [normal("m", "n")]),
    (diagonal, [normal("m", "n", "k")]),
    (method_diagonal_offset, [normal("g", "n")]),
    (diagonal_positional_axes, [normal("m", "k", "n")]),
    (einsum_mv, [normal("m", "n"), normal("n")]),
    (einsum_dot, [normal("n"), normal("n")]),
    (einsum_mm, [normal("m", "n"), normal("n", "k")]),
    (einsum_spaces_transposed, [normal("m", "n"), normal("n", "k")]),
    (einsum_trace, [normal("m", "m")]),
    (einsum_three, [normal("m"), normal("n"), normal("k")]),
]


@pytest.mark.parametrize("f,gens", cases(TRACES))
@given(setup=SETUP)
def test_trace_diagonal_einsum(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------------------ linalg
def solve(A, b):
    return np.linalg.solve(A, b)


def inv(A):
    return np.linalg.inv(A)


def inv_apply(A, x):
    return np.linalg.inv(A) @ x


def det(A):
    return np.linalg.det(A)


def slogdet(A):
    sign, logabs = np.linalg.slogdet(A)
    return sign, logabs


def slogdet_result(A):
    return np.linalg.slogdet(A)


def cholesky(A):
    return np.linalg.cholesky(A)


def pinv(A):
    return np.linalg.pinv(A)


def matrix_power3(A):
    return np.linalg.matrix_power(A, 3)


def matrix_power0(A):
    return np.linalg.matrix_power(A, 0)


def matrix_power_neg(A):
    return np.linalg.matrix_power(A, -2)


def eigvalsh(S):
    return np.linalg.eigvalsh(S)


def eigh(S):
    w, V = np.linalg.eigh(S)
    return w, V


def eigh_reconstruct(S):
    # Eigenvectors are defined up to sign; the reconstruction is not.
    w, V = np.linalg.eigh(S)
    return (V * w) @ V.T


def qr(M):
    q, r = np.linalg.qr(M)
    return q, r


def qr_complete(M):
    q, r = np.linalg.qr(M, mode="complete")
    return q @ r


def svd(M):
    u, s, vt = np.linalg.svd(M, full_matrices=False)
    return u, s, vt


def svd_reconstruct(M):
    u, s, vt = np.linalg.svd(M)
    k = s.shape[0]
    return (u[:, :k] * s) @ vt[:k]


def singular_values(M):
    return np.linalg.svd(M, compute_uv=False)


def matrix_rank(M):
    return np.linalg.matrix_rank(M)


def norm_default(x):
    return np.linalg.norm(x)


def norm_ord1(x):
    return np.linalg.norm(x, ord=1)


def norm_inf(x):
    return np.linalg.norm(x, np.inf)


def norm_axis0(x):
    return np.linalg.norm(x, axis=0)


def norm_axis_keepdims(x):
    return np.linalg.norm(x, axis=-1, keepdims=True)


def norm_spectral(x):
    return np.linalg.norm(x, ord=2)


def norm_nuclear(x):
    return np.linalg.norm(x, "nuc")


def norm_axes_tuple(x):
    return np.linalg.norm(x, axis=(0, 1))


def normalise(x, y):
    return x / np.linalg.norm(x) + y


LINALG = [
    (solve, [wellcond("n"), normal("n")]),
    (solve, [wellcond("n"), normal("n", "k")]),
    (solve, [spd("n"), normal("n", 1)]),
    (inv, [wellcond("n")]),
    (inv_apply, [spd("n"), normal("n")]),
    (det, [wellcond("n")]),
    (det, [lambda rng, lead, d: wellcond("n")(rng, lead + (2,), d)]),
    (slogdet, [wellcond("n")]),
    (slogdet_result, [wellcond("n")]),
    (cholesky, [spd("n")]),
    (pinv, [normal("m", "n")]),
    (matrix_power3, [normal("n", "n")]),
    (matrix_power0, [normal("n", "n")]),
    (matrix_power_neg, [wellcond("n")]),
    (eigvalsh, [spd("n")]),
    (eigh, [spd("n")]),
    (eigh_reconstruct, [spd("n")]),
    (qr, [normal("m", "n")]),
    (qr_complete, [normal("m", "n")]),
    (svd, [normal("m", "n")]),
    (svd_reconstruct, [normal("m", "n")]),
    (singular_values, [normal("m", "n")]),
    (norm_default, [normal("n")]),
    (norm_default, [normal("m", "n")]),
    (norm_ord1, [normal("n")]),
    (norm_ord1, [normal("m", "n")]),
    (norm_inf, [normal("m", "n")]),
    (norm_axis0, [normal("m", "n")]),
    (norm_axis_keepdims, [normal("m", "n")]),
    (norm_spectral, [normal("m", "n")]),
    (norm_spectral, [normal("n")]),
    (norm_nuclear, [normal("m", "n")]),
    (norm_axes_tuple, [normal("m", "n", "k")]),
    (matrix_rank, [normal("m", "n")]),
    (normalise, [normal("n"), normal("n")]),
]


@pytest.mark.parametrize("f,gens", cases(LINALG))
@given(setup=SETUP)
def test_linalg(f, gens, setup):
    # Inputs are well-conditioned, and a stacked LAPACK call runs the same routine
    # per matrix as the loop, so even eigh/qr/svd factors (defined only up to sign)
    # agree with the loop at the default tolerance; the *_reconstruct cases check
    # the sign-free products as well.
    run(setup, f, gens)


# ---------------------------------------------------------------- indexing
def first(x):
    return x[0]


def last(x):
    return x[-1]


def middle(x):
    return x[1:3]


def strided(x):
    return x[::2]


def reversed_(x):
    return x[::-1]


def tail_reversed(x):
    return x[-2:, ::-1]


def ellipsis_first(x):
    return x[..., 0]


def column(x):
    return x[:, 1]


def row(x):
    return x[1, :]


def element(x):
    return x[0, 1]


def chained(x):
    return x[0][1]


def ellipsis_middle(x):
    return x[0, ..., 1]


def new_axis(x):
    return x[None]


def new_axis_after_slice(x):
    return x[1:, None]


def index_array(x, idx):
    return x[idx]


def index_array_column(x, idx):
    return x[:, idx]


def index_array_pair(x, i, j):
    return x[i, j]


def index_list(x):
    return x[[0, 2, 0]]


def index_int_arg(x, i):
    return x[i]


def index_arrays_around_slice(x, i, j):
    return x[i, :, j]


def index_int_and_array_around_slice(x, i):
    return x[0, :, i]


def index_int_then_array(x, i):
    return x[:, 0, i]


def index_array_ellipsis_int(x, i):
    return x[i, ..., 0]


def index_array_after_ellipsis(x, i):
    return x[..., i]


GLOBAL_INDEX = np.array([2, 0])


def index_global_array(x):
    return x[GLOBAL_INDEX]


def slice_from_args(x, i, j):
    return x[i:j]


def negative_step_bounds(x):
    return x[3:0:-1]


def index_mix(x, y):
    return x[1:] * y[:-1]


INDEXING = [
    (first, [normal("m")]),
    (first, [normal("m", "n")]),
    (last, [normal("m", "n")]),
    (middle, [normal("g")]),
    (middle, [normal("g", "n")]),
    (strided, [normal("m")]),
    (strided, [normal("m", "n")]),
    (reversed_, [normal("m")]),
    (tail_reversed, [normal("m", "n")]),
    (ellipsis_first, [normal("m")]),
    (ellipsis_first, [normal("m", "n", "k")]),
    (column, [normal("m", "g")]),
    (row, [normal("g", "n")]),
    (element, [normal("m", "g")]),
    (chained, [normal("m", "g")]),
    (ellipsis_middle, [normal("m", "n", "g")]),
    (new_axis, [normal()]),
    (new_axis, [normal("m", "n")]),
    (new_axis_after_slice, [normal("m")]),
    (index_array, [normal("g"), Fixed(ints(-3, 3, "k"))]),
    (index_array, [normal("g", "n"), Fixed(ints(0, 3, 2, "k"))]),
    (index_array_column, [normal("m", "g"), Fixed(ints(0, 3, "k"))]),
    (index_array_pair, [normal("g", "g"), Fixed(ints(0, 3, "k")), Fixed(ints(0, 3, "k"))]),
    (index_list, [normal("g")]),
    (index_int_arg, [normal("g", "n"), Fixed(ints(-3, 3))]),
    (
        index_arrays_around_slice,
        [normal("g", "n", "g"), Fixed(ints(0, 3, "k")), Fixed(ints(0, 3, "k"))],
    ),
    (index_int_and_array_around_slice, [normal("m", "n", "g"), Fixed(ints(0, 3, "k"))]),
    (index_int_then_array, [normal("m", "n", "g"), Fixed(ints(0, 3, "k"))]),
    (index_array_ellipsis_int, [normal("g", "n", "k"), Fixed(ints(0, 3, 2))]),
    (index_array_ellipsis_int, [normal("g", "n"), Fixed(ints(0, 3, 2))]),
    (index_array_after_ellipsis, [normal("m", "g"), Fixed(ints(0, 3, "k"))]),
    (index_global_array, [normal("g", "n")]),
    (slice_from_args, [normal("g", "n"), Fixed(ints(0, 2)), Fixed(ints(1, 4))]),
    (negative_step_bounds, [normal(5, "n")]),
    (index_mix, [normal("g"), normal("g")]),
]


@pytest.mark.parametrize("f,gens", cases(INDEXING))
@given(setup=SETUP)
def test_basic_indexing(f, gens, setup):
    run(setup, f, gens)


# ---------------------------------------------- item assignment into a buffer
def set_from_slices(x):
    out = np.zeros(3)
    out[0] = x[1]
    out[1:] = x[:2]
    return out


def set_row_add_col(v, s):
    buf = np.zeros((2, 2))
    buf[0, :] = v
    buf[:, 1] += s
    return buf


def set_negative_and_step(x, s):
    buf = np.ones(5)
    buf[-1] = s
    buf[::2] = x[:3]
    return buf


def set_index_array(x, idx):
    buf = np.zeros(6)
    buf[idx] = x
    return buf


def set_ellipsis(x):
    buf = np.zeros((2, 3))
    buf[..., 0] = x
    return buf


def aug_multiply(x):
    buf = np.ones(4)
    buf[1:] *= x[:3]
    return buf


def set_in_loop(x):
    buf = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        buf[i] = x[i] * i
    return buf


def set_into_copy(x, v):
    y = x.copy()
    y[0] = v
    return y


def set_block_and_row(M, v):
    buf = np.zeros((3, 3))
    buf[1:, :2] = M
    buf[0] = v
    return buf


def set_unbatched_then_batched(x):
    buf = np.zeros(4)
    buf[0] = 1.0
    buf[2:] = x
    buf[1] = 5.0
    return buf


SETITEM = [
    (set_from_slices, [normal("g")]),
    (set_row_add_col, [normal(2), normal()]),
    (set_row_add_col, [normal(1), normal(2)]),
    (set_negative_and_step, [normal("g"), normal()]),
    (set_index_array, [normal(3), Fixed(lambda rng, lead, d: rng.permutation(6)[:3])]),
    (set_ellipsis, [normal(2)]),
    (set_ellipsis, [normal()]),
    (aug_multiply, [normal("g")]),
    (set_in_loop, [normal("m")]),
    (set_into_copy, [normal("m", "n"), normal("n")]),
    (set_into_copy, [normal("m", "n"), normal()]),
    (set_block_and_row, [normal(2, 2), normal(3)]),
    (set_unbatched_then_batched, [normal(2)]),
]


@pytest.mark.parametrize("f,gens", cases(SETITEM))
@given(setup=SETUP)
def test_setitem_into_local_buffer(f, gens, setup):
    run(setup, f, gens)


# ------------------------------------------------------------- unsupported
def boolean_mask(x):
    return x[x > 0]


def mask_argument(x, mask):
    return x[mask]


def write_into_argument(buf, x):
    buf[0] = x
    return buf


def trace_of_vector(x):
    return np.trace(x)


def diagonal_of_vector(x):
    return np.diagonal(x)


def trace_axis_out_of_range(x):
    return np.trace(x, axis1=0, axis2=5)


@pytest.mark.parametrize("f", [trace_of_vector, diagonal_of_vector, trace_axis_out_of_range])
def test_trace_and_diagonal_refuse_what_the_loop_raises_on(f):
    """Below rank 2, or with an axis out of range, the loop raises: refused, never wrapped."""
    for shape in [(3,), (3, 4), (3, 2, 2)] if f is trace_axis_out_of_range else [(3,), (3, 4)]:
        with pytest.raises(UnsupportedError, match=r"rank-\d|axis"):
            vmap(f)(np.ones(shape))


def test_boolean_mask_raises():
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 4))
        with pytest.raises(UnsupportedError):
            vmap(boolean_mask)(x)
        with pytest.raises(UnsupportedError):
            vmap(mask_argument)(x, x > 0)


def test_writing_a_batched_value_into_an_argument_raises():
    buf = np.zeros(3)
    with pytest.raises(UnsupportedError):
        vmap(write_into_argument, in_axes=(None, 0))(buf, np.arange(4.0))
    np.testing.assert_array_equal(buf, np.zeros(3))
