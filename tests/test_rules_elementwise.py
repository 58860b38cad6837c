"""Property tests for the elementwise rules (rules/elementwise.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case runs for every batched/unbatched combination of its arguments; hypothesis
draws the batch size (1, 2 or 5), the dims (1..4), the per-example rank of the
arguments whose rank is free, the seed, the dtypes, how an unbatched scalar is
passed (Python number, NumPy scalar, 0-d array) and where the mapped axis sits.
"""

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from astvmap import UnsupportedError, vmap

from .harness import assert_runs_per_example, pattern_params
from .oracle import check, loop

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# ----------------------------------------------------------------- harness
BATCH = st.sampled_from([1, 2, 5])  # the first (simplest) example hypothesis runs has batch 1
SEED = st.integers(0, 2**32 - 1)
DIM = st.integers(1, 4)
F = ("float64", "float32")  # float dtypes drawn per argument
INTS = ("int64", "int32")  # int dtypes drawn per argument


@dataclass(frozen=True)
class A:
    """One argument: its data kind, per-example shape and dtype.

    shape: a tuple of dim names ("k", "m", "n") and ints, or "*" for a rank drawn
    in 0..2 (the trailing dims of (k, m, n), so free-rank arguments broadcast).
    dtype: None (the kind's default), a dtype name, or a tuple to draw from.
    numpy: an unbatched 0-d value is never passed as a Python number (a method
    such as x.clip or an attribute such as y.dtype is used on it).
    """

    kind: str = "normal"
    shape: Any = "*"
    dtype: Any = None
    numpy: bool = False  # unbatched and 0-d: never a Python number (a method is called on it)


def value(rng, kind, shape, dtype):
    if kind == "normal":
        a = rng.standard_normal(shape)
    elif kind == "pos":  # strictly positive (log, sqrt, reciprocal, power bases)
        a = rng.uniform(0.1, 3.0, shape)
    elif kind == "base":  # a logarithm base, away from 1
        a = rng.uniform(1.5, 4.0, shape)
    elif kind == "unit":  # inside (-1, 1) (arcsin, arctanh)
        a = rng.uniform(-0.95, 0.95, shape)
    elif kind == "gt1":  # above 1 (arccosh)
        a = rng.uniform(1.05, 4.0, shape)
    elif kind == "nz":  # floats away from zero (divisors)
        a = rng.uniform(0.5, 3.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif kind == "half":  # many exact halves and ties (rounding, floor, comparisons)
        a = rng.integers(-8, 9, shape) / 2.0
    elif kind == "nan":  # normal with NaNs and infinities mixed in
        a = rng.standard_normal(shape)
        u = rng.random(shape)
        a = np.where(u < 0.2, np.nan, np.where(u > 0.9, np.inf * np.sign(a), a))
    elif kind == "int":
        a = rng.integers(-6, 7, shape)
    elif kind == "nzint":  # nonzero ints (integer divisors)
        a = rng.integers(1, 5, shape) * rng.choice([-1, 1], shape)
    elif kind == "natint":  # small non-negative ints (shifts, integer exponents)
        a = rng.integers(0, 4, shape)
    elif kind == "bool":
        a = rng.random(shape) < 0.5
    else:
        raise AssertionError(kind)
    return np.asarray(a if dtype is None else a.astype(dtype))


# Each distinct combination of ranks and in_axes/out_axes is its own specialisation
# (20-80 ms to make), so they are drawn together from a few configurations. Free
# ranks: all equal (0, 1 or 2), falling (2, 1, 0, ...) or rising (0, 2, 2, ...).
# Layouts: the batch axis first; last (in and out); or alternately second (where
# there is one) and last.
CONFIGS = st.sampled_from(
    [
        ("1", "first"),
        ("2", "last"),
        ("0", "first"),
        ("falling", "mixed"),
        ("rising", "first"),
        ("rising", "last"),
    ]
)


def patterns(n):
    """Every batched/unbatched combination of n arguments, at least one batched."""
    return [p for p in itertools.product([True, False], repeat=n) if any(p)]


def build(data, specs, pattern):
    """Draw everything for one example; return (args, in_axes, out_axes, float32?)."""
    batch = data.draw(BATCH, label="batch")
    d = {k: data.draw(DIM, label=k) for k in "kmn"}
    full = (d["k"], d["m"], d["n"])
    rng = np.random.default_rng(data.draw(SEED, label="seed"))
    scalars = data.draw(st.sampled_from(["python", "numpy", "0d"]), label="scalars")
    ranks, layout = data.draw(CONFIGS, label="ranks, layout")
    args, axes, f32 = [], [], False
    for i, (spec, mapped) in enumerate(zip(specs, pattern)):
        if spec.shape == "*":
            rank = {"falling": (2 - i) % 3, "rising": min(2, 2 * i)}.get(ranks, None)
            rank = int(ranks) if rank is None else rank
            shape = full[3 - rank :]
        else:
            shape = tuple(d[s] if isinstance(s, str) else s for s in spec.shape)
        dtype = spec.dtype
        if isinstance(dtype, tuple):
            dtype = data.draw(st.sampled_from(dtype), label="dtype")
        if not mapped:
            v = value(rng, spec.kind, shape, dtype)
            f32 |= v.dtype == np.float32
            if v.ndim == 0:
                how = "numpy" if spec.numpy and scalars == "python" else scalars
                v = {"python": v.item(), "numpy": v[()], "0d": v}[how]
            args.append(v)
            axes.append(None)
            continue
        a = value(rng, spec.kind, (batch,) + shape, dtype)
        f32 |= a.dtype == np.float32
        if layout == "mixed":  # alternately second (where there is one) and last
            ax = -1 if i % 2 else min(1, a.ndim - 1)
        else:
            ax = 0 if layout == "first" else -1
        args.append(np.moveaxis(a, 0, ax))
        axes.append(ax)
    out_axes = -1 if layout == "last" else 0
    return args, tuple(axes), out_axes, f32


def run(data, f, specs, pattern, **kw):
    args, in_axes, out_axes, f32 = build(data, specs, pattern)
    if f32:  # float32 arithmetic: compare to float32 precision
        kw.setdefault("rtol", 2e-6)
        kw.setdefault("atol", 1e-6)
    return check(f, *args, in_axes=in_axes, out_axes=out_axes, **kw)


def cases(table):
    """Expand [(f, [A, ...]), ...] into pytest params, one per batching pattern."""
    return pattern_params(table, lambda specs: patterns(len(specs)))


# ---------------------------------------------------------- unary ufuncs
# Ufuncs are grouped by the domain of their input; each group returns a tuple, so
# one specialisation covers the group (an output pytree compares leaf by leaf).
def un_trig(x):
    return (
        np.sin(x),
        np.cos(x),
        np.tan(x),
        np.arctan(x),
        np.sinh(x),
        np.cosh(x),
        np.tanh(x),
        np.arcsinh(x),
    )


def un_exp(x):
    return (
        np.exp(x),
        np.expm1(x),
        np.exp2(x),
        np.cbrt(x),
        np.square(x),
        np.sqrt(np.abs(x)),
        np.exp(-np.square(x)) * np.cos(3.0 * x) + np.log1p(np.abs(x)),
    )


def un_sign(x):
    return (
        np.abs(x),
        np.absolute(x),
        np.fabs(x),
        np.negative(x),
        np.positive(x),
        np.sign(x),
        np.signbit(x),
        np.spacing(x),
        np.deg2rad(x),
        np.rad2deg(x),
        np.degrees(x),
        np.radians(x),
    )


def un_multi_output(x):
    frac, exp = np.frexp(x)
    return np.modf(x), frac, exp, np.divmod(x, 0.75)


def un_special(x):
    return np.sinc(x), np.i0(x), np.real(x), np.imag(x), x.conj() + x.conjugate()


def un_log(x):
    return np.log(x), np.log2(x), np.log10(x), np.log1p(x), np.sqrt(x), np.reciprocal(x)


def un_inverse(x):
    return np.arcsin(x), np.arccos(x), np.arctanh(x)


def un_arccosh(x):
    return np.arccosh(x)


def un_round(x):
    return (
        np.floor(x),
        np.ceil(x),
        np.rint(x),
        np.trunc(x),
        np.fix(x),
        np.round(x),
        np.round(x, 2),
        np.around(x, decimals=1),
        x.round(1),
        x.round(),
    )


def un_nan(x):
    return (
        np.isfinite(x),
        np.isnan(x),
        np.isinf(x),
        np.nan_to_num(x),
        np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0),
        np.abs(x),
        np.sign(x),
        np.exp(x),
    )


def un_int(x):
    return np.invert(x), np.abs(x), np.negative(x), np.square(x), np.sign(x), np.bitwise_count(x)


def un_bool(x):
    return np.logical_not(x), np.invert(x)


def u_sin(x):
    return np.sin(x)


def u_sqrt(x):
    return np.sqrt(x)


NORMAL = A("normal", "*", F)
UNARY = [
    (un_trig, [NORMAL]),
    (un_exp, [NORMAL]),
    (un_sign, [NORMAL]),
    (un_multi_output, [NORMAL]),
    (un_special, [NORMAL]),
    (un_log, [A("pos", "*", F)]),
    (un_inverse, [A("unit", "*", F)]),
    (un_arccosh, [A("gt1", "*", F)]),
    (un_round, [A("half", "*", F)]),
    (un_nan, [A("nan", "*", F)]),
    (un_int, [A("int", "*", INTS)]),
    (un_bool, [A("bool", "*")]),
    (u_sin, [NORMAL]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(UNARY))
@given(data=st.data())
def test_unary_ufunc(f, specs, pattern, data):
    run(data, f, specs, pattern)


# --------------------------------------------------------- binary ufuncs
def bin_arith(x, y):
    return (
        np.add(x, y),
        np.subtract(x, y),
        np.multiply(x, y),
        np.maximum(x, y),
        np.minimum(x, y),
        np.fmax(x, y),
        np.fmin(x, y),
        np.add(np.multiply(x, 2.0), np.sin(y)),
    )


def bin_float(x, y):
    return (
        np.arctan2(x, y),
        np.hypot(x, y),
        np.logaddexp(x, y),
        np.logaddexp2(x, y),
        np.copysign(x, y),
        np.nextafter(x, y),
        np.heaviside(x, y),
        np.isclose(x, y, atol=0.5),
    )


def bin_compare(x, y):
    return (
        np.equal(x, y),
        np.not_equal(x, y),
        np.less(x, y),
        np.less_equal(x, y),
        np.greater(x, y),
        np.greater_equal(x, y),
    )


def bin_divide(x, y):
    return (
        np.true_divide(x, y),
        np.divide(x, y),
        np.floor_divide(x, y),
        np.remainder(x, y),
        np.mod(x, y),
        np.fmod(x, y),
        np.divmod(x, y),
    )


def bin_power(x, y):
    return np.power(x, y), np.float_power(x, y)


def bin_logical(x, y):
    return (
        np.logical_and(x, y),
        np.logical_or(x, y),
        np.logical_xor(x, y),
        np.bitwise_and(x, y),
        np.bitwise_or(x, y),
        np.bitwise_xor(x, y),
    )


def bin_int_bits(x, y):
    return (
        np.bitwise_and(x, y),
        np.bitwise_or(x, y),
        np.bitwise_xor(x, y),
        np.gcd(x, y),
        np.lcm(x, y),
    )


def bin_shift(x, y):
    return np.left_shift(x, y), np.right_shift(x, y), np.power(x, y)


def bin_ldexp(x, y):
    return np.ldexp(x, y)


def bin_dtype_kw(x, y):
    return np.multiply(x, y, dtype=np.float64), np.add(x, y, dtype=np.float32)


def b_maximum(x, y):
    return np.maximum(x, y)


def b_arctan2(x, y):
    return np.arctan2(x, y)


N, P, NZ = A("normal", "*", F), A("pos", "*", F), A("nz", "*", F)
NAN, HALF = A("nan", "*", F), A("half", "*", F)
INT, NZINT, NAT = A("int", "*", INTS), A("nzint", "*", INTS), A("natint", "*", INTS)
BOOL = A("bool", "*")
BINARY = [
    (bin_arith, [N, N]),
    (bin_arith, [NAN, NAN]),
    (bin_arith, [INT, INT]),
    (bin_float, [HALF, N]),
    (bin_compare, [HALF, HALF]),
    (bin_compare, [NAN, NAN]),
    (bin_compare, [INT, INT]),
    (bin_divide, [N, NZ]),
    (bin_divide, [INT, NZINT]),
    (bin_power, [P, N]),
    (bin_logical, [BOOL, BOOL]),
    (bin_int_bits, [INT, INT]),
    (bin_shift, [INT, NAT]),
    (bin_ldexp, [N, INT]),
    (bin_dtype_kw, [INT, NZINT]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(BINARY))
@given(data=st.data())
def test_binary_ufunc(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------ Python operators
def op_arith(x, y):
    return x + y, x - y, x * y, (x - y) * (x + y) / (1.0 + y * y) - 2 * x


def op_divide(x, y):
    return x / y, x // y, x % y


def op_pow(x, y):
    return x**y


def op_compare(x, y):
    return x < y, x <= y, x > y, x >= y, x == y, x != y


def op_bits(x, y):
    return x & y, x | y, x ^ y


def op_shift(x, y):
    return x << y, x >> y


def op_add(x, y):
    return x + y


def op_sub(x, y):
    return x - y


def op_mul(x, y):
    return x * y


def op_truediv(x, y):
    return x / y


def op_aug(x, y):
    z = x * 1.0
    z += y
    z *= y
    z -= 0.5
    return z


def op_unary_float(x):
    return -x, +x, -(x * 3) + -x * 2, x**2, x**3, 2.0**x


def op_unary_int(x):
    return -x, ~x, x**2, 2**x


def op_reflected(x):
    return 1.0 - x, 3.0 / x, 7 // x, 7 % x, 2 * x, 1 + x


def op_sqrt_pow(x):
    return x**0.5


def op_invert(x):
    return ~x


def op_neg(x):
    return -x


def op_not(x):
    return not (x > 0)


def op_opaque_operand(x):
    # x.dtype.itemsize is a plain Python int the rewriter knows nothing about.
    return x * x.dtype.itemsize, x.dtype.itemsize + x


OPS = [
    (op_arith, [N, N]),
    (op_arith, [INT, INT]),
    (op_divide, [N, NZ]),
    (op_divide, [INT, NZINT]),
    (op_pow, [P, N]),
    (op_pow, [INT, NAT]),
    (op_compare, [HALF, HALF]),
    (op_compare, [BOOL, BOOL]),
    (op_bits, [INT, INT]),
    (op_bits, [BOOL, BOOL]),
    (op_shift, [INT, NAT]),
    (op_aug, [N, N]),
    (op_unary_float, [N]),
    (op_unary_int, [A("natint", "*", INTS)]),
    (op_reflected, [NZ]),
    (op_reflected, [NZINT]),
    (op_sqrt_pow, [P]),
    (op_invert, [BOOL]),
    (op_neg, [A("int", "*", ("int8", "uint8"))]),
    (op_not, [A("normal", ())]),
    (op_opaque_operand, [N]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(OPS))
@given(data=st.data())
def test_operators(f, specs, pattern, data):
    run(data, f, specs, pattern)


def aug_scalar_target(x, y):
    z = x * 1.0  # per example a NumPy scalar: `+=` rebinds it to an array
    z += y
    return z


def aug_alias(x, y):
    z = x  # per example x is an immutable NumPy scalar: `+=` rebinds z, x is unchanged
    z += y
    return x, z


def test_augmented_assignment_to_a_scalar_from_an_array():
    rng = np.random.default_rng(0)
    check(aug_scalar_target, rng.standard_normal(3), rng.standard_normal((3, 4)))


def test_augmented_assignment_does_not_write_through_an_alias():
    rng = np.random.default_rng(0)
    check(aug_alias, rng.standard_normal(3), rng.standard_normal(3))


# ------------------------------------------------------------- comparisons
def chain_lt(a, b, c):
    return a < b < c


def chain_mixed(a, b, c):
    return a < b < c, a <= b < c, a < b <= c != a, (a < b < c) * 1.0 + (a == b)


def chain_const(a, b):
    return 0.0 < a < b


HS = A("half", ())  # per-example scalars with ties: a chain only makes sense on scalars
CHAINS = [
    (chain_mixed, [HS, HS, HS]),
    (chain_const, [HS, HS]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(CHAINS))
@given(data=st.data())
def test_chained_comparison(f, specs, pattern, data):
    run(data, f, specs, pattern)


def test_chained_comparison_of_arrays_is_not_elementwise():
    # Per example `a < b < c` on arrays of more than one element is
    # `(a < b) and (b < c)`, which raises; vmap must not return the elementwise
    # `&` of the links (a result the loop never produces).
    a = np.zeros((3, 2))
    with pytest.raises(ValueError):
        loop(chain_lt, (a, a + 1, a + 2))
    with pytest.raises(UnsupportedError):
        vmap(chain_lt)(a, a + 1, a + 2)


# ------------------------------------------------------------- np.where
def where3(c, x, y):
    return np.where(c, x, y)


def where_cmp(x, y):
    return np.where(x > y, x, 0.0)


def where_scalar_branches(x):
    return np.where(x > 0, 1.0, -1.0)


def where_nested(x, y):
    return np.where(x > 0, np.where(y > 0, x * y, y), -x)


WHERE = [
    (where3, [BOOL, A("normal", "*", ("float64", "float32", "int64")), N]),
    (where_cmp, [N, N]),
    (where_scalar_branches, [N]),
    (where_nested, [N, N]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(WHERE))
@given(data=st.data())
def test_where(f, specs, pattern, data):
    run(data, f, specs, pattern)


# --------------------------------------------------------------- np.clip
def clip3(x, lo, hi):
    return np.clip(x, lo, hi)


def clip_one_sided(x, b):
    return np.clip(x, None, b), np.clip(x, b, None), np.clip(x, a_min=None, a_max=b)


def clip_kw(x, lo, hi):
    return np.clip(x, a_min=lo, a_max=hi), np.clip(x, min=lo, max=hi)


def clip_const(x):
    return np.clip(x, -0.5, 0.5), np.clip(x, 0, None), np.clip(x, None, 1)


def method_clip(x, lo, hi):
    return x.clip(lo, hi), x.clip(min=lo), x.clip(max=hi), x.clip(None, hi), x.clip(lo, None)


LO, HI = A("normal", "*", F), A("normal", "*", F)
X_CLIP = A("normal", "*", ("float64", "float32", "int64"), numpy=True)
CLIP = [
    (clip3, [X_CLIP, LO, HI]),
    (clip_one_sided, [N, HI]),
    (clip_kw, [N, LO, HI]),
    (clip_const, [X_CLIP]),
    (method_clip, [X_CLIP, LO, HI]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(CLIP))
@given(data=st.data())
def test_clip(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ---------------------------------------------------- astype and promotion
def astype_f32(x):
    return x.astype(np.float32)


def astype_int(x):
    return x.astype(int)


def astype_str(x):
    return x.astype("float32")


def astype_bool(x):
    return x.astype(bool)


def astype_kw(x):
    return x.astype(dtype=np.int32)


def astype_like(x, y):
    return x.astype(y.dtype) + y


def astype_chain(x):
    return (x * 10).astype(np.int16).astype(np.float64) / 10


ASTYPE = [
    (astype_f32, [N]),
    (astype_int, [A("half", "*", F)]),
    (astype_str, [INT]),
    (astype_bool, [A("int", "*", INTS)]),
    (astype_kw, [N]),
    (astype_like, [A("int", "*", INTS, numpy=True), A("normal", "*", F, numpy=True)]),
    (astype_chain, [N]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(ASTYPE))
@given(data=st.data())
def test_astype(f, specs, pattern, data):
    run(data, f, specs, pattern)


def promote(x, y):
    return x + y, x * y, np.maximum(x, y), x / y, x > y


PROMOTE = [
    (promote, [A("int", "*", "int64"), A("normal", "*", "float64")]),
    (promote, [A("bool", "*"), A("int", "*", "int64")]),
    (promote, [A("bool", "*"), A("normal", "*", "float32")]),
    (promote, [A("normal", "*", "float32"), A("normal", "*", "float64")]),
    (promote, [A("int", "*", "int32"), A("normal", "*", "float32")]),
    (promote, [A("natint", "*", "uint8"), A("natint", "*", "int8")]),
    (promote, [A("int", "*", "int32"), A("int", "*", "int64")]),
    (b_arctan2, [A("int", "*", "int16"), A("normal", "*", "float32")]),
    (u_sin, [A("int", "*", ("int64", "int32", "int8", "bool"))]),
    (u_sqrt, [A("natint", "*", ("int64", "int16", "uint8"))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(PROMOTE))
@given(data=st.data())
def test_dtype_promotion(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------------ mixed ranks
def scalar_times_vector(s, v):
    return s * v


def vector_plus_matrix(v, M):
    return v + M


def scalar_times_matrix(s, M):
    return s * M


def three_ranks(s, v, M):
    return s * v + M - s


def column_broadcast(c, M):
    return c[:, None] * M + M / (1.0 + c[:, None] ** 2)


def reversed_ranks(M, v, s):
    return np.maximum(M, v) * s, np.where(M > v, s, v)


MIXED = [
    (scalar_times_vector, [A("normal", ()), A("normal", ("n",))]),
    (vector_plus_matrix, [A("normal", ("n",)), A("normal", ("m", "n"))]),
    (scalar_times_matrix, [A("normal", ()), A("normal", ("m", "n"))]),
    (vector_plus_matrix, [A("normal", ("n",)), A("normal", ("k", "m", "n"))]),
    (three_ranks, [A("normal", ()), A("normal", ("n",)), A("normal", ("m", "n"))]),
    (column_broadcast, [A("normal", ("m",)), A("normal", ("m", "n"))]),
    (reversed_ranks, [A("normal", ("m", "n")), A("normal", ("n",)), A("normal", ())]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(MIXED))
@given(data=st.data())
def test_mixed_ranks(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ----------------------------------------------------------------- math.*
def m_sqrt(x):
    return math.sqrt(x)


def m_exp(x):
    return math.exp(x)


def m_sin(x):
    return math.sin(x)


def m_real_line(x):
    return (
        math.exp(x),
        math.sin(x),
        math.cos(x) + math.tanh(x),
        math.fabs(x),
        math.degrees(x),
        math.radians(x),
        math.sinh(x),
        math.cosh(x),
        math.asinh(x),
        math.expm1(x),
        math.exp2(x),
        math.cbrt(x),
        math.atan(x),
    )


def m_positive(x):
    return math.sqrt(x), math.log(x), math.log10(x), math.log2(x), math.log1p(x), math.log(x, 2)


def m_log_base(x, b):
    return math.log(x, b)


def m_inverse_trig(x):
    return math.asin(x), math.acos(x), math.atanh(x)


def m_acosh(x):
    return math.acosh(x)


def m_integer(x):
    return math.floor(x), math.ceil(x), math.trunc(x)


def m_floor_ceil(x):
    # (math.trunc of a NumPy integer raises TypeError in the loop: no __trunc__.)
    return math.floor(x), math.ceil(x)


def m_floor(x):
    return math.floor(x)


def m_ceil(x):
    return math.ceil(x)


def m_predicates(x):
    return math.isnan(x), math.isinf(x), math.isfinite(x)


def m_two(y, x):
    return math.atan2(y, x), math.hypot(x, y), math.copysign(x, y)


def m_atan2(y, x):
    return math.atan2(y, x)


def m_hypot(x, y):
    return math.hypot(x, y)


def m_pow(x, y):
    return math.pow(x, y)


def m_fmod(x, y):
    return math.fmod(x, y)


def m_gcd_lcm(a, b):
    return math.gcd(a, b), math.lcm(a, b)


def m_floor_index(x, v):
    return v * math.floor(x)


def m_mixed_with_array(s, v):
    return math.exp(s) * v + math.sqrt(abs(s))


SC = ("float64",)  # math.* of float64 values: exactly the loop (dtype included)
MATH = [
    (m_real_line, [A("normal", (), SC)]),
    (m_positive, [A("pos", (), SC)]),
    (m_inverse_trig, [A("unit", (), SC)]),
    (m_acosh, [A("gt1", (), SC)]),
    (m_integer, [A("half", (), SC)]),
    (m_floor_ceil, [A("int", (), "int64")]),
    (m_predicates, [A("nan", (), SC)]),
    (m_two, [A("normal", (), SC), A("normal", (), SC)]),
    (m_log_base, [A("pos", (), SC), A("base", (), SC)]),
    (m_pow, [A("pos", (), SC), A("normal", (), SC)]),
    (m_fmod, [A("normal", (), SC), A("nz", (), SC)]),
    (m_gcd_lcm, [A("int", (), "int64"), A("int", (), "int64")]),
    (m_floor_index, [A("half", (), SC), A("normal", ("n",), SC)]),
    (m_mixed_with_array, [A("normal", (), SC), A("normal", ("m", "n"), SC)]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(MATH))
@given(data=st.data())
def test_math(f, specs, pattern, data):
    run(data, f, specs, pattern)


MATH_F32 = [
    (m_sqrt, [A("pos", (), "float32")]),
    (m_exp, [A("normal", (), "float32")]),
    (m_sin, [A("normal", (), "float32")]),
    (m_atan2, [A("normal", (), "float32"), A("normal", (), "float32")]),
    (m_hypot, [A("normal", (), "float32"), A("normal", (), "float64")]),
    (m_log_base, [A("pos", (), "float32"), A("base", (), "float32")]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(MATH_F32))
@given(data=st.data())
def test_math_float32(f, specs, pattern, data):
    # math.* returns a Python float per example, so the loop stacks float64; the
    # batched code uses NumPy's ufunc, which keeps float32 (documented in the
    # README): compare values to float32 precision and not the dtype.
    run(data, f, specs, pattern, check_dtype=False)


# (math.trunc of a numpy.float32 raises TypeError in the loop: it has no __trunc__.)
FLOOR_F32 = [(m_floor, [A("half", (), "float32")]), (m_ceil, [A("half", (), "float32")])]


@pytest.mark.parametrize("f,specs,pattern", cases(FLOOR_F32))
@given(data=st.data())
def test_math_integer_results_of_float32(f, specs, pattern, data):
    # math.floor/trunc return a Python int whatever the input: the dtype must match.
    run(data, f, specs, pattern)


# ------------------------------------------------------------ unsupported
def if_on_batched(x):
    if x > 0:
        return x
    return -x


def ifexp_on_batched(x):
    return x if x > 0 else -x


def and_on_batched(x, y):
    return x > 0 and y > 0


def where_one_arg(x):
    return np.where(x)


def math_of_array(x):
    return math.sqrt(x)


def not_of_array(x):
    return not x


def ufunc_out_batched(x, y):
    z = np.zeros_like(x)
    np.add(x, y, out=z)
    return z


UNSUPPORTED = [
    # Per example these test the truth of a vector or take a scalar: the loop raises.
    (if_on_batched, (np.ones((3, 4)),), 0),
    (ifexp_on_batched, (np.ones((3, 4)),), 0),
    (and_on_batched, (np.ones((3, 4)), np.ones((3, 4))), 0),
    (math_of_array, (np.ones((3, 4)),), 0),
    (not_of_array, (np.ones((3, 4)),), 0),
]
# Not vectorised, but the loop runs them: the declared per-example fallback.
PER_EXAMPLE = [
    (where_one_arg, (np.ones((3, 4)),), 0),
    (ufunc_out_batched, (np.ones((3, 4)), np.ones((3, 4))), 0),
]


@pytest.mark.parametrize(
    "f,args,in_axes", [pytest.param(*c, id=c[0].__name__) for c in UNSUPPORTED]
)
def test_unsupported_raises(f, args, in_axes):
    with pytest.raises(UnsupportedError) as info:
        vmap(f, in_axes=in_axes)(*args)
    assert "test_rules_elementwise.py" in str(info.value)


@pytest.mark.parametrize(
    "f,args,in_axes", [pytest.param(*c, id=c[0].__name__) for c in PER_EXAMPLE]
)
def test_runs_per_example(f, args, in_axes):
    assert_runs_per_example(f, args, in_axes, where="test_rules_elementwise.py")
