"""Property tests for the reduction rules (rules/reductions.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). A
function returns a tuple of the forms of one reduction (axis None / int / negative
/ tuple, keepdims, positional axis), so one specialisation covers them; the forms
that need a per-example rank of 2 live in a second function. Hypothesis draws the
batch size (1, 2 or 5), the per-example rank (1..3, or 0 where it is legal), the
dims (1..4), the seed, the dtype and where the mapped axis sits; functions of two
arguments run for every batched/unbatched combination.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import assert_runs_per_example, pattern_params
from .oracle import check

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# ----------------------------------------------------------------- harness
BATCH = st.sampled_from([1, 2, 5])  # the first (simplest) example hypothesis runs has batch 1
SEED = st.integers(0, 2**32 - 1)
DIM = st.integers(1, 4)
F = ("float64", "float32")


@dataclass(frozen=True)
class A:
    """One argument: its data kind, per-example shape and dtype.

    shape: a tuple of dim names ("k", "m", "n") and ints, or "*" for the drawn rank
    (at least min_rank, at most max_rank), whose dims are the trailing dims of
    (k, m, n). dtype: None (the kind's default), a name, or a tuple to draw from.
    """

    kind: str = "normal"
    shape: Any = "*"
    dtype: Any = F
    min_rank: int = 1
    max_rank: int = 3


def value(rng, kind, lead, shape, dtype):
    full = lead + shape
    if kind == "normal":
        a = rng.standard_normal(full)
    elif kind == "half":  # ties (argmin/argmax, median)
        a = rng.integers(-3, 4, full) / 2.0
    elif kind == "small":  # products stay small
        a = rng.uniform(0.5, 1.5, full) * rng.choice([-1.0, 1.0], full)
    elif kind == "nan":  # NaNs (whole slices of them too) and infinities
        a = rng.standard_normal(full)
        u = rng.random(full)
        a = np.where(u < 0.3, np.nan, np.where(u > 0.92, np.inf * np.sign(a), a))
    elif kind == "somenan":  # NaNs, but never a whole slice along any axis (nanargmin)
        a = rng.standard_normal(full)
        odd = np.ones(shape, bool)
        for ax, n in enumerate(shape):
            idx = np.arange(n).reshape((n,) + (1,) * (len(shape) - ax - 1))
            odd = odd & (idx % 2 == 1)
        a = np.where(odd & (rng.random(full) < 0.7), np.nan, a)
    elif kind == "int":
        a = rng.integers(-4, 5, full)
    elif kind == "bool":
        a = rng.random(full) < 0.5
    elif kind == "sparse":  # many zeros (any/all, count_nonzero)
        a = np.where(rng.random(full) < 0.5, 0.0, rng.standard_normal(full))
    else:
        raise AssertionError(kind)
    return np.asarray(a if dtype is None else a.astype(dtype))


def patterns(n):
    """Every batched/unbatched combination of n arguments, at least one batched."""
    return [p for p in itertools.product([True, False], repeat=n) if any(p)]


# Each distinct rank and in_axes/out_axes is its own specialisation (20-80 ms to
# make), so they are drawn together from a few configurations: (rank, layout),
# where the layout puts the batch axis first, last (in and out), or second (where
# there is one; out_axes 0).
CONFIGS = st.sampled_from(
    [(1, "first"), (2, "last"), (3, "second"), (2, "first"), (1, "second"), (3, "first")]
)


def build(data, specs, pattern):
    batch = data.draw(BATCH, label="batch")
    d = {k: data.draw(DIM, label=k) for k in "kmn"}
    full = (d["k"], d["m"], d["n"])
    rng = np.random.default_rng(data.draw(SEED, label="seed"))
    rank, layout = data.draw(CONFIGS, label="rank, layout")
    args, axes, f32 = [], [], False
    for spec, mapped in zip(specs, pattern):
        if spec.shape == "*":
            r = min(max(rank, spec.min_rank), spec.max_rank)
            shape = full[3 - r :]
        else:
            shape = tuple(d[s] if isinstance(s, str) else s for s in spec.shape)
        dtype = spec.dtype
        if isinstance(dtype, tuple):
            dtype = data.draw(st.sampled_from(dtype), label="dtype")
        if not mapped:
            v = value(rng, spec.kind, (), shape, dtype)
            f32 |= v.dtype == np.float32
            args.append(v)
            axes.append(None)
            continue
        a = value(rng, spec.kind, (batch,), shape, dtype)
        f32 |= a.dtype == np.float32
        ax = {"first": 0, "last": -1, "second": min(1, a.ndim - 1)}[layout]
        args.append(np.moveaxis(a, 0, ax))
        axes.append(ax)
    return args, tuple(axes), (-1 if layout == "last" else 0), f32


def run(data, f, specs, pattern, **kw):
    args, in_axes, out_axes, f32 = build(data, specs, pattern)
    if f32:  # float32 sums in a different order: compare to float32 precision
        kw.setdefault("rtol", 1e-5)
        kw.setdefault("atol", 1e-5)
    return check(f, *args, in_axes=in_axes, out_axes=out_axes, **kw)


def cases(table):
    """Expand [(f, [A, ...]), ...] into pytest params, one per batching pattern."""
    return pattern_params(table, lambda specs: patterns(len(specs)))


# ------------------------------------------- reductions with a tuple axis
# <name>1: forms for per-example rank >= 1; <name>2: forms that need rank >= 2.
def sum1(x):
    return (
        np.sum(x),
        np.sum(x, axis=0),
        np.sum(x, axis=-1),
        np.sum(x, 0),
        np.sum(x, axis=(0,)),
        np.sum(x, keepdims=True),
        np.sum(x, axis=-1, keepdims=True),
        np.sum(x, axis=None, keepdims=False),
    )


def sum2(x):
    return (
        np.sum(x, axis=1),
        np.sum(x, axis=-2),
        np.sum(x, axis=(0, 1)),
        np.sum(x, axis=(-1, 0)),
        np.sum(x, axis=(1, 0), keepdims=True),
        np.sum(x, 1, keepdims=True),
    )


def mean1(x):
    return (
        np.mean(x),
        np.mean(x, axis=0),
        np.mean(x, axis=-1),
        np.mean(x, keepdims=True),
        np.mean(x, axis=(0,), keepdims=True),
    )


def mean2(x):
    return np.mean(x, axis=1), np.mean(x, axis=(0, -1)), np.mean(x, axis=(-2, -1), keepdims=True)


def prod1(x):
    return np.prod(x), np.prod(x, axis=0), np.prod(x, axis=-1, keepdims=True)


def prod2(x):
    return np.prod(x, axis=(0, 1)), np.prod(x, axis=-2)


def std1(x):
    return (
        np.std(x),
        np.std(x, ddof=1),
        np.std(x, axis=0),
        np.std(x, axis=-1, ddof=1),
        np.std(x, keepdims=True),
    )


def std2(x):
    return np.std(x, axis=(0, 1)), np.std(x, axis=1, ddof=1, keepdims=True)


def var1(x):
    return (
        np.var(x),
        np.var(x, ddof=1),
        np.var(x, axis=0),
        np.var(x, axis=-1, ddof=2),
        np.var(x, 0, None, None, 1),
    )


def var2(x):
    return np.var(x, axis=(-1, 0), ddof=1), np.var(x, axis=1, keepdims=True)


def min1(x):
    return np.min(x), np.min(x, axis=0), np.min(x, axis=-1, keepdims=True), np.amin(x, axis=0)


def min2(x):
    return np.min(x, axis=(0, 1)), np.amin(x, axis=-2), np.min(x, 1)


def max1(x):
    return (
        np.max(x),
        np.max(x, axis=0),
        np.max(x, axis=-1),
        np.max(x, keepdims=True),
        np.amax(x, axis=-1),
        np.max(x, axis=0, initial=0.5),
    )


def max2(x):
    return np.max(x, axis=(0, 1)), np.amax(x, axis=(1, 0), keepdims=True), np.max(x, 1)


def any1(x):
    return np.any(x), np.any(x, axis=0), np.any(x, axis=-1, keepdims=True)


def any2(x):
    return np.any(x, axis=(0, 1)), np.any(x, axis=1)


def all1(x):
    return np.all(x), np.all(x, axis=0), np.all(x, axis=-1, keepdims=True)


def all2(x):
    return np.all(x, axis=(0, -1)), np.all(x, axis=-2)


def median1(x):
    return np.median(x), np.median(x, axis=0), np.median(x, axis=-1, keepdims=True)


def median2(x):
    return np.median(x, axis=(0, 1)), np.median(x, axis=1), np.median(x, axis=(-1, 0))


def ptp1(x):
    return np.ptp(x), np.ptp(x, axis=0), np.ptp(x, axis=-1, keepdims=True)


def ptp2(x):
    return np.ptp(x, axis=(0, 1)), np.ptp(x, axis=1)


def count_nonzero1(x):
    return np.count_nonzero(x), np.count_nonzero(x, axis=0), np.count_nonzero(x, axis=-1)


def count_nonzero2(x):
    return np.count_nonzero(x, axis=(0, 1)), np.count_nonzero(x, axis=1, keepdims=True)


def nansum1(x):
    return np.nansum(x), np.nansum(x, axis=0), np.nansum(x, axis=-1, keepdims=True)


def nanprod1(x):
    return np.nanprod(x), np.nanprod(x, axis=-1)


def nanmean1(x):
    return np.nanmean(x), np.nanmean(x, axis=0), np.nanmean(x, axis=-1, keepdims=True)


def nanstd_nanvar1(x):
    return np.nanstd(x), np.nanvar(x, axis=0), np.nanstd(x, axis=-1, ddof=1), np.nanvar(x, ddof=1)


def nanmin_nanmax1(x):
    return np.nanmin(x), np.nanmax(x), np.nanmin(x, axis=0), np.nanmax(x, axis=-1, keepdims=True)


def nanmedian1(x):
    return np.nanmedian(x), np.nanmedian(x, axis=0), np.nanmedian(x, axis=-1)


def nan2(x):
    return (
        np.nansum(x, axis=(0, 1)),
        np.nanmean(x, axis=1),
        np.nanmax(x, axis=(-1, 0), keepdims=True),
        np.nanmin(x, axis=-2),
        np.nanstd(x, axis=(0, 1)),
        np.nanmedian(x, axis=(0, 1)),
    )


def nonnan_on_nan(x):
    # NaN propagation of the plain reductions.
    return np.sum(x, axis=0), np.max(x), np.min(x, axis=-1), np.mean(x), np.median(x, axis=0)


def dtype_kwargs(x):
    return (
        np.sum(x, dtype=np.float64),
        np.mean(x, axis=0, dtype=np.float64),
        np.prod(x, dtype=np.int64),
        x.sum(axis=-1, dtype=np.float32),
    )


FLOATS = A("normal")
R2 = A("normal", min_rank=2)
TUPLE_AXIS = [
    (sum1, [FLOATS]),
    (sum1, [A("int", dtype=("int64", "int32", "int8", "bool"))]),
    (sum2, [R2]),
    (mean1, [FLOATS]),
    (mean1, [A("int", dtype=("int64", "int32"))]),
    (mean2, [R2]),
    (prod1, [A("small")]),
    (prod2, [A("small", min_rank=2)]),
    (std1, [FLOATS]),
    (std2, [R2]),
    (var1, [FLOATS]),
    (var2, [R2]),
    (min1, [A("half")]),
    (min2, [A("half", min_rank=2)]),
    (max1, [A("half")]),
    (max1, [A("int", dtype=("int64", "int32"))]),
    (max2, [A("half", min_rank=2)]),
    (any1, [A("bool", dtype=None)]),
    (any1, [A("sparse")]),
    (any2, [A("bool", dtype=None, min_rank=2)]),
    (all1, [A("bool", dtype=None)]),
    (all1, [A("sparse")]),
    (all2, [A("sparse", min_rank=2)]),
    (median1, [A("half")]),
    (median2, [A("half", min_rank=2)]),
    (ptp1, [FLOATS]),
    (ptp1, [A("int", dtype="int64")]),
    (ptp2, [R2]),
    (count_nonzero1, [A("sparse")]),
    (count_nonzero2, [A("sparse", min_rank=2)]),
    (nansum1, [A("nan")]),
    (nanprod1, [A("nan")]),
    (nanmean1, [A("nan")]),
    (nanstd_nanvar1, [A("nan")]),
    (nanmin_nanmax1, [A("nan")]),
    (nanmedian1, [A("nan")]),
    (nan2, [A("nan", min_rank=2)]),
    (nonnan_on_nan, [A("nan")]),
    (dtype_kwargs, [A("int", dtype=("int64", "int32"))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(TUPLE_AXIS))
@given(data=st.data())
def test_reduction(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------ argmin/argmax (int axis)
def arg1(x):
    return (
        np.argmin(x),
        np.argmax(x),
        np.argmin(x, axis=0),
        np.argmax(x, axis=-1),
        np.argmax(x, 0),
        np.argmin(x, axis=-1, keepdims=True),
    )


def arg2(x):
    return np.argmax(x, axis=1), np.argmin(x, axis=-2), np.argmax(x, axis=1, keepdims=True)


def nanarg1(x):
    return np.nanargmin(x), np.nanargmax(x), np.nanargmin(x, axis=0), np.nanargmax(x, axis=-1)


def nanarg2(x):
    return np.nanargmax(x, axis=1), np.nanargmin(x, axis=-2)


ARG = [
    (arg1, [A("half")]),
    (arg1, [A("int", dtype=("int64", "int32", "bool"))]),
    (arg1, [A("nan")]),
    (arg2, [A("half", min_rank=2)]),
    (nanarg1, [A("somenan")]),
    (nanarg2, [A("somenan", min_rank=2)]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(ARG))
@given(data=st.data())
def test_argmin_argmax(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------------ method forms
def methods1(x):
    return (
        x.sum(),
        x.sum(axis=0),
        x.sum(0),
        x.max(),
        x.min(axis=-1),
        x.argmax(axis=-1),
        x.argmin(),
        x.mean(keepdims=True),
        x.prod(axis=-1),
        x.std(ddof=1),
        x.var(ddof=1, axis=0),
        x.std(),
    )


def methods2(x):
    return (
        x.sum(axis=(0, 1)),
        x.max(axis=(1, 0), keepdims=True),
        x.mean(axis=(0, -1)),
        x.argmax(axis=1),
        x.min(1),
        x.var(axis=-2, ddof=1),
    )


def methods_bool(x):
    return x.any(), x.all(axis=0), x.any(axis=-1, keepdims=True), x.sum(), x.mean(axis=0)


def method_chain(x):
    return (x - x.mean(axis=-1, keepdims=True)).std(axis=-1), abs(x).max() / (x.sum() + 10.0)


METHODS = [
    (methods1, [A("half")]),
    (methods1, [A("int", dtype=("int64", "int32"))]),
    (methods2, [A("half", min_rank=2)]),
    (methods_bool, [A("bool", dtype=None)]),
    (method_chain, [FLOATS]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(METHODS))
@given(data=st.data())
def test_method_forms(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------ per-example scalars (rank 0)
def scalar_reductions(x):
    return (
        np.sum(x),
        np.mean(x),
        np.max(x),
        np.min(x, keepdims=True),
        np.prod(x),
        np.median(x),
        np.any(x),
        np.std(x),
        np.count_nonzero(x),
        np.linalg.norm(x),
    )


def scalar_reductions_axis(x):
    # NumPy's ufunc reductions accept axis=0 and axis=-1 (not a tuple) for a 0-d array.
    return np.sum(x, axis=0), np.max(x, axis=-1), np.any(x, axis=-1)


def scalar_sum_axis_plus(x, y):
    return np.sum(x, axis=-1) + y


SCALARS = [
    (scalar_reductions, [A("normal", shape=())]),
    (scalar_reductions, [A("int", shape=(), dtype=("int64", "int32"))]),
    (scalar_reductions_axis, [A("normal", shape=())]),
    (scalar_sum_axis_plus, [A("normal", shape=()), A("normal", shape=())]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(SCALARS))
@given(data=st.data())
def test_scalar_reductions(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------ percentile/quantile
def quantiles1(x):
    return (
        np.percentile(x, 50),
        np.quantile(x, 0.25, axis=0),
        np.percentile(x, 90.0, axis=-1, keepdims=True),
        np.quantile(x, 0.75, method="nearest"),
        np.nanpercentile(x, 10, axis=0),
        np.nanquantile(x, 0.5),
    )


def quantiles2(x):
    return np.quantile(x, 0.5, axis=(0, 1)), np.percentile(x, 30, axis=1)


QUANTILES = [
    (quantiles1, [A("normal")]),
    (quantiles1, [A("nan")]),
    (quantiles2, [A("normal", min_rank=2)]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(QUANTILES))
@given(data=st.data())
def test_quantiles(f, specs, pattern, data):
    run(data, f, specs, pattern)


# -------------------------------------------------------- np.linalg.norm
def norm_vector(x):
    return (
        np.linalg.norm(x),
        np.linalg.norm(x, 1),
        np.linalg.norm(x, ord=np.inf),
        np.linalg.norm(x, ord=-np.inf),
        np.linalg.norm(x, ord=3),
        np.linalg.norm(x, ord=0),
        np.linalg.norm(x, keepdims=True),
        np.linalg.norm(x, axis=0),
        np.linalg.norm(x, axis=-1, ord=1),
    )


def norm_matrix(x):
    return (
        np.linalg.norm(x),
        np.linalg.norm(x, "fro"),
        np.linalg.norm(x, ord=1),
        np.linalg.norm(x, ord=np.inf),
        np.linalg.norm(x, ord=-1),
        np.linalg.norm(x, ord="nuc"),
        np.linalg.norm(x, ord=2),
        np.linalg.norm(x, keepdims=True),
        np.linalg.norm(x, ord=1, keepdims=True),
    )


def norm_matrix_axes(x):
    return (
        np.linalg.norm(x, axis=0),
        np.linalg.norm(x, axis=-1, ord=1),
        np.linalg.norm(x, axis=(0, 1)),
        np.linalg.norm(x, ord="fro", axis=(1, 0)),
        np.linalg.norm(x, ord=np.inf, axis=(-1, -2)),
        np.linalg.norm(x, axis=(0, 1), keepdims=True),
    )


def norm_rank3(x):
    return (
        np.linalg.norm(x),
        np.linalg.norm(x, axis=(1, 2), ord="fro"),
        np.linalg.norm(x, axis=-1),
        np.linalg.norm(x, axis=(0, 2), keepdims=True),
        np.linalg.norm(x, ord=1, axis=(-1, 0)),
    )


def norm_mix(x, y):
    return np.linalg.norm(x, axis=0) * y, np.linalg.norm(x - y, axis=0, keepdims=True)


NORMS = [
    (norm_vector, [A("normal", shape=("n",))]),
    (norm_vector, [A("int", shape=("n",), dtype=("int64", "int32"))]),
    (norm_matrix, [A("normal", shape=("m", "n"))]),
    (norm_matrix_axes, [A("normal", shape=("m", "n"))]),
    (norm_matrix, [A("int", shape=("m", "n"), dtype="int64")]),
    (norm_rank3, [A("normal", shape=("k", "m", "n"))]),
    (norm_mix, [A("normal", shape=("m", "n")), A("normal", shape=("n",))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(NORMS))
@given(data=st.data())
def test_norm(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------ reductions mixed with other arguments
def weighted(x, w):
    return np.sum(x * w, axis=-1), (x * w).mean(), np.max(x - w, axis=0)


def centered(x, y):
    return np.mean((x - np.mean(y, axis=0)) ** 2, axis=0), np.std(y) + x.sum(axis=-1)


def unbatched_reduced(x, y):
    # The rank of a reduction of an unbatched value decides how the batched
    # operand is aligned against it.
    return (
        np.sum(x, axis=0) + y,
        np.max(x, axis=-1, keepdims=True) * y,
        np.mean(x) - y,
        np.argmax(x, axis=0) + y,
        np.median(x, axis=(0, 1)) * y,
        np.linalg.norm(x, axis=0) + y,
    )


def reduce_stacked(a, b):
    s = np.array([a, b])
    return np.median(s, axis=0), np.max(s), np.sum(s, axis=(0, -1)), np.argmin(s, axis=0)


def reduce_unbatched_array(x):
    return np.sum(np.asarray([1.0, 2.0, 4.0])) * x, np.max(np.array((0.5, -1.0))) + np.mean(x)


def masked_sum(x, m):
    return np.sum(x, where=m), np.max(x, axis=0, where=m, initial=-10.0)


MIXED = [
    (weighted, [A("normal", shape=("m", "n")), A("normal", shape=("n",))]),
    (centered, [A("normal", shape=("m", "n")), A("normal", shape=("k", "m", "n"))]),
    (unbatched_reduced, [A("normal", shape=("m", "n")), A("normal", shape=("n",))]),
    (unbatched_reduced, [A("normal", shape=("m", "n")), A("normal", shape=())]),
    (reduce_stacked, [A("half", shape=("n",)), A("half", shape=("n",))]),
    (reduce_unbatched_array, [A("normal")]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(MIXED))
@given(data=st.data())
def test_reductions_with_other_arguments(f, specs, pattern, data):
    run(data, f, specs, pattern)


@given(data=st.data())
def test_where_mask_unbatched(data):
    run(data, masked_sum, [A("normal", ("m", "n")), A("bool", ("m", "n"), None)], (True, False))


# ------------------------------------------------------------ unsupported
def argmax_keepdims_flat(x):
    return np.argmax(x, keepdims=True)


def argmax_scalar(x):
    return np.argmax(x)


def sum_axis_out_of_range(x):
    return np.sum(x, axis=2)


def sum_axis_argument(x, axis):
    return np.sum(x, axis=axis)


def percentile_array_q(x):
    return np.percentile(x, [25, 75])


def test_percentile_with_an_array_of_q():
    """The q axis comes first per example: batched, it moves behind the batch axis."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    check(percentile_array_q, x)


def norm_rank3_ord(x):
    return np.linalg.norm(x, ord=2)


def sum_of_list(a, b):
    # The rank of a list of batched values is not inferred: an error, never a guess.
    return np.sum([a, b], axis=0)


def sum_of_literal_list_times_batched(x):
    # The reduction of an unbatched list has no known rank here (the hint says to
    # use np.asarray, which works: reduce_unbatched_array).
    return np.sum([1.0, 2.0, 4.0]) * x


def mean_axis_of_scalar(x):
    # np.mean (unlike np.sum) raises AxisError for axis=0 on a 0-d array.
    return np.mean(x, axis=0)


def batched_where_mask(x, m):
    return np.sum(x, where=m)


# Not vectorised: each runs per example (declared), giving the loop's result or the
# loop's own exception.
PER_EXAMPLE = [
    (argmax_keepdims_flat, (np.ones((3, 2, 2)),), 0, None),
    (argmax_scalar, (np.ones(3),), 0, None),
    (sum_axis_out_of_range, (np.ones((3, 2, 2)),), 0, np.exceptions.AxisError),
    (sum_axis_argument, (np.ones((3, 2, 2)), 1), (0, None), None),
    (norm_rank3_ord, (np.ones((3, 2, 2, 2)),), 0, ValueError),
    (sum_of_list, (np.ones((3, 4)), np.ones((3, 4))), 0, None),
    (sum_of_literal_list_times_batched, (np.ones((3, 4)),), 0, None),
    (mean_axis_of_scalar, (np.ones(3),), 0, np.exceptions.AxisError),
    (batched_where_mask, (np.ones((3, 4)), np.ones((3, 4), bool)), 0, None),
    (batched_where_mask, (np.ones(4), np.ones((3, 4), bool)), (None, 0), None),
]


@pytest.mark.parametrize(
    "f,args,in_axes,raises",
    [pytest.param(*c, id=f"{c[0].__name__}-{i}") for i, c in enumerate(PER_EXAMPLE)],
)
def test_runs_per_example(f, args, in_axes, raises):
    assert_runs_per_example(f, args, in_axes, where="test_rules_reductions.py", raises=raises)
