"""Property tests for the Python builtin rules (rules/builtins_.py) against the loop oracle.

Every per-example function lives at module level (astvmap reads its source). Each
case runs for every batched/unbatched combination of its arguments; hypothesis
draws the batch size (1, 2 or 5), the dims (1..4, or 3..4 where the function
indexes x[2]), the seed, the dtype, how an unbatched scalar is passed and where
the mapped axis sits.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from astvmap import UnsupportedError, vmap

from .harness import assert_runs_per_example, pattern_params
from .oracle import check

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# ----------------------------------------------------------------- harness
BATCH = st.sampled_from([1, 2, 5])  # the first (simplest) example hypothesis runs has batch 1
SEED = st.integers(0, 2**32 - 1)
DIMS = {"m": st.integers(1, 4), "n": st.integers(1, 4), "g": st.integers(3, 4)}
F = ("float64", "float32")
LIST_LEN = 3


@dataclass(frozen=True)
class A:
    """One argument: its data kind, per-example shape and dtype.

    shape: a tuple of dim names ("m", "n", "g": a dim of at least 3) and ints, or
    "*" for a rank drawn in 0..2. dtype: None (the kind's default), a dtype name or
    a tuple to draw from. kind "list": a list of LIST_LEN values of that shape
    (Python floats when unbatched and 0-d); each leaf is mapped when batched.
    kind "count": a Python int in 0..3. "list" and "count" are never batched.
    Arguments whose dtype is drawn from the same tuple share the drawn dtype.
    reprs: how an unbatched 0-d value may be passed (a Python number, a NumPy
    scalar, a 0-d array). Builtin max(a, b) returns whichever object wins, so with
    a float32 `a` and a Python float `b` the loop's dtype would depend on the data;
    round() of a 0-d array raises in the loop.
    """

    kind: str = "normal"
    shape: Any = ()
    dtype: Any = None
    elem: str = "normal"  # the kind of a list's items
    reprs: tuple = ("python", "numpy", "0d")  # how an unbatched 0-d value may be passed


def value(rng, kind, shape, dtype):
    if kind == "normal":
        a = rng.standard_normal(shape) * 3
    elif kind == "half":  # ties and exact halves (round, min/max ties)
        a = rng.integers(-6, 7, shape) / 2.0
    elif kind == "cents":  # values with ties at the second decimal (round(x, 2))
        a = rng.integers(-400, 401, shape) / 1000.0
    elif kind == "nan":  # NaN in some examples (min/max ordering)
        a = np.where(rng.random(shape) < 0.3, np.nan, rng.integers(-3, 4, shape) / 2.0)
    elif kind == "sparse":  # many zeros (bool())
        a = np.where(rng.random(shape) < 0.5, 0.0, rng.standard_normal(shape))
    elif kind == "int":
        a = rng.integers(-9, 10, shape)
    elif kind == "bool":
        a = rng.random(shape) < 0.5
    else:
        raise AssertionError(kind)
    return np.asarray(a if dtype is None else a.astype(dtype))


def patterns(specs):
    """Every batched/unbatched combination of the arguments, at least one batched."""
    free = [i for i, s in enumerate(specs) if s.kind not in ("count", "list")]
    out = []
    for p in itertools.product([True, False], repeat=len(free)):
        if any(p):
            full = [False] * len(specs)
            for i, b in zip(free, p):
                full[i] = b
            out.append(tuple(full))
    return out


# Each distinct rank and in_axes/out_axes is its own specialisation (20-80 ms to
# make), so they are drawn together from a few configurations: (free rank,
# layout), the layout putting the batch axis first, last (in and out), or second
# where there is one.
CONFIGS = st.sampled_from([(0, "first"), (1, "last"), (2, "second"), (1, "first"), (0, "last")])


def move(a, layout):
    ax = {"first": 0, "last": -1, "second": min(1, a.ndim - 1)}[layout]
    return np.moveaxis(a, 0, ax), ax


def build(data, specs, pattern):
    batch = data.draw(BATCH, label="batch")
    d = {k: data.draw(s, label=k) for k, s in DIMS.items()}
    rng = np.random.default_rng(data.draw(SEED, label="seed"))
    scalars = data.draw(st.sampled_from(["python", "numpy", "0d"]), label="scalars")
    rank, layout = data.draw(CONFIGS, label="rank, layout")
    args, axes, f32, dtypes = [], [], False, {}
    for spec, mapped in zip(specs, pattern):
        if spec.kind == "count":
            args.append(data.draw(st.integers(0, 3), label="count"))
            axes.append(None)
            continue
        shape = (d["m"], d["n"])[2 - rank :] if spec.shape == "*" else spec.shape
        shape = tuple(d[s] if isinstance(s, str) else s for s in shape)
        dtype = spec.dtype
        if isinstance(dtype, tuple):
            if dtype not in dtypes:
                dtypes[dtype] = data.draw(st.sampled_from(dtype), label="dtype")
            dtype = dtypes[dtype]
        f32 |= dtype == "float32"
        if spec.kind == "list":
            if mapped:
                leaves = [
                    move(value(rng, spec.elem, (batch,) + shape, dtype), layout) for _ in "abc"
                ]
                args.append([leaf for leaf, _ in leaves])
                axes.append(leaves[0][1])
            else:
                items = [value(rng, spec.elem, shape, dtype) for _ in range(LIST_LEN)]
                args.append([v.item() if v.ndim == 0 else v for v in items])
                axes.append(None)
            continue
        if not mapped:
            v = value(rng, spec.kind, shape, dtype)
            if v.ndim == 0:
                how = scalars if scalars in spec.reprs else spec.reprs[0]
                v = {"python": v.item(), "numpy": v[()], "0d": v}[how]
            args.append(v)
            axes.append(None)
            continue
        a, ax = move(value(rng, spec.kind, (batch,) + shape, dtype), layout)
        args.append(a)
        axes.append(ax)
    return args, tuple(axes), (-1 if layout == "last" else 0), f32


def run(data, f, specs, pattern, **kw):
    args, in_axes, out_axes, f32 = build(data, specs, pattern)
    if f32:
        kw.setdefault("rtol", 1e-5)
        kw.setdefault("atol", 1e-5)
    return check(f, *args, in_axes=in_axes, out_axes=out_axes, **kw)


def cases(table):
    """Expand [(f, [A, ...]), ...] into pytest params, one per batching pattern."""
    return pattern_params(table, patterns)


# -------------------------------------------------------------- len, abs
def len_of(x):
    return len(x)


def len_in_arithmetic(x):
    return x * len(x), x.sum(axis=0) / len(x), np.arange(len(x)) * x.T


def len_of_list(x, ws):
    return x * len(ws)


def abs_of(x):
    return abs(x)


def abs_of_difference(x, y):
    return abs(x - y) + abs(-2.0) * abs(y)


LEN_ABS = [
    (len_of, [A("normal", ("m",))]),
    (len_of, [A("normal", ("m", "n"))]),
    (len_in_arithmetic, [A("normal", ("m", "n"), F)]),
    (len_in_arithmetic, [A("int", ("m",))]),
    (len_of_list, [A("normal", ("n",)), A("list")]),
    (abs_of, [A("normal", "*", F)]),
    (abs_of, [A("int", "*", ("int64", "int32", "int8"))]),
    (abs_of, [A("bool", "*")]),
    (abs_of_difference, [A("normal", "*", F), A("normal", "*", F)]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(LEN_ABS))
@given(data=st.data())
def test_len_abs(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------------ min, max
def max2(a, b):
    return max(a, b)


def min2(a, b):
    return min(a, b)


def max3(a, b, c):
    return max(a, b, c)


def min3(a, b, c):
    return min(a, b, c)


def max_min_const(a):
    return max(a, 0.0), min(1.5, a), max(-1.0, a, 0.5)


def max_min_int_const(a):
    return max(a, 0), min(3, a)


def max_of_tuple(a, b, c):
    return max((a, b, c)), min([a, b, c])


def max_of_vector(x):
    return max(x), min(x)


def max_in_expression(a, b, v):
    return v * max(a, b) - min(a, b)


NP = ("numpy", "0d")
S = A("half", (), F, reprs=NP)  # per-example scalars, with ties
SN = A("nan", (), reprs=NP)  # per-example scalars, NaN in some examples
SI = A("int", (), ("int64", "int32"), reprs=NP)
MINMAX = [
    (max2, [S, S]),
    (min2, [S, S]),
    (max2, [SN, SN]),
    (min2, [SN, SN]),
    (max2, [SI, SI]),
    (max3, [S, S, S]),
    (min3, [SN, SN, SN]),
    (max3, [SI, SI, SI]),
    (max_min_const, [A("nan", ())]),
    (max_min_int_const, [A("int", (), "int64")]),
    (max_of_tuple, [SN, SN, SN]),
    (max_of_vector, [A("half", ("m",), F)]),
    (max_of_vector, [A("int", ("m",), ("int64", "int32"))]),
    (max_in_expression, [S, S, A("normal", ("n",), F)]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(MINMAX))
@given(data=st.data())
def test_min_max(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------------------------ sum
def sum_of(x):
    return sum(x)


def sum_with_start(x):
    return sum(x, 10.0)


def sum_with_start_arg(x, s):
    return sum(x, s)


def sum_generator(x, w):
    n = len(x)
    return sum(x[i] * w[i] for i in range(n))


def sum_generator_fixed(x, w):
    return sum(x[i] * w[i] for i in range(3))


def sum_list_comprehension(x):
    return sum([x[i] ** 2 for i in range(3)])


def sum_of_tuple(a, b, c):
    return sum((a, b, c)), sum([a * b, c])


def sum_of_batched_list(xs):
    return sum(xs)


SUM = [
    (sum_of, [A("normal", ("m",), F)]),
    (sum_of, [A("normal", ("m", "n"), F)]),
    (sum_of, [A("int", ("m",), ("int64", "int32", "int8"))]),
    (sum_of, [A("int", ("m", "n"), ("int64", "int32"))]),
    (sum_of, [A("bool", ("m",))]),
    (sum_with_start, [A("normal", ("m",))]),
    (sum_with_start_arg, [A("normal", ("m",)), A("normal", ())]),
    (sum_with_start_arg, [A("normal", ("m", "n")), A("normal", ())]),
    (sum_generator, [A("normal", ("m",)), A("normal", ("m",))]),
    (sum_generator, [A("normal", ("m", "n")), A("normal", ("m",))]),
    (sum_generator_fixed, [A("normal", ("g",)), A("normal", ("g",))]),
    (sum_list_comprehension, [A("normal", ("g", "n"))]),
    (sum_of_tuple, [A("normal", "*"), A("normal", "*"), A("normal", "*")]),
    (sum_of_batched_list, [A("list", ("n",))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(SUM))
@given(data=st.data())
def test_sum(f, specs, pattern, data):
    run(data, f, specs, pattern)


# --------------------------------------------------------- conversions
def to_float(x):
    return float(x)


def to_int(x):
    return int(x)


def to_bool(x):
    return bool(x)


def to_complex(x):
    return complex(x)


def conversions_in_expression(x, v):
    return float(x) * v + int(x) - bool(x)


def convert_element(v):
    return float(v[0]), int(v[-1]), bool(v[0])


CONVERT = [
    (to_float, [A("normal", (), F)]),
    (to_float, [A("int", (), ("int64", "int32"))]),
    (to_float, [A("bool", ())]),
    (to_int, [A("normal", (), F)]),
    (to_int, [A("half", ())]),
    (to_int, [A("bool", ())]),
    (to_bool, [A("sparse", (), F)]),
    (to_bool, [A("nan", ())]),
    (to_bool, [A("int", (), "int64")]),
    (to_complex, [A("normal", ())]),
    (conversions_in_expression, [A("sparse", ()), A("normal", ("n",))]),
    (convert_element, [A("sparse", ("m",))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(CONVERT))
@given(data=st.data())
def test_conversions(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ----------------------------------------------------------------- round
def round0(x):
    return round(x)


def round2(x):
    return round(x, 2)


def round_n(x, n):
    return round(x, n)


def round_in_expression(x, v):
    return v * round(x) + round(x, 1)


PY = ("python", "numpy")  # round() of a 0-d array raises TypeError (in the loop too)
ROUND = [
    (round0, [A("half", (), F)]),
    (round0, [A("int", (), "int64")]),
    (round2, [A("cents", (), F)]),
    (round_n, [A("cents", ()), A("count")]),
    (round_in_expression, [A("half", (), reprs=PY), A("normal", ("n",))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(ROUND))
@given(data=st.data())
def test_round(f, specs, pattern, data):
    run(data, f, specs, pattern)


# ------------------------------------------------- range, enumerate, zip
def range_accumulate(x):
    acc = 0.0
    for i in range(3):
        acc = acc + x[i] * i
    return acc


def range_len(x, w):
    acc = np.zeros_like(x[0])
    for i in range(len(x)):
        acc = acc + w[i] * x[i]
    return acc


def range_step(x):
    total = x[0] * 0.0
    for i in range(1, len(x), 2):
        total = total + x[i]
    return total


def range_argument(x, n):
    acc = x * 0.0 + 1.0
    for _ in range(n):
        acc = acc * x + 1.0
    return acc


def range_nested(x, y):
    out = 0.0 * y
    for i in range(2):
        for j in range(len(x)):
            out = out + (i + 1) * x[j] * y
    return out


def enumerate_list(x, ws):
    acc = 0.0 * x
    for i, w in enumerate(ws):
        acc = acc + w * x**i
    return acc


def enumerate_start(x, ws):
    acc = 0.0 * x
    for i, w in enumerate(ws, 1):
        acc = acc + i * w * x
    return acc


def zip_lists(x, ws, bs):
    for w, b in zip(ws, bs):
        x = np.tanh(w * x + b)
    return x


def for_over_list(x, ws):
    acc = x * 0.0
    for w in ws:
        acc = acc + w * x
    return acc


def zip_weights(x, ws, bs):
    # The per-example MLP idiom: a list of parameter arrays.
    for w, b in zip(ws, bs):
        x = np.tanh(w * x + b)
    return x


LOOPS = [
    (range_accumulate, [A("normal", ("g",))]),
    (range_len, [A("normal", ("m",)), A("normal", ("m",))]),
    (range_len, [A("normal", ("m", "n")), A("normal", ("m",))]),
    (range_step, [A("normal", ("g",))]),
    (range_step, [A("normal", ("g", "n"))]),
    (range_argument, [A("normal", "*"), A("count")]),
    (range_nested, [A("normal", ("m",)), A("normal", "*")]),
    (enumerate_list, [A("normal", "*"), A("list")]),
    (enumerate_start, [A("normal", "*"), A("list")]),
    (zip_lists, [A("normal", "*"), A("list"), A("list")]),
    (for_over_list, [A("normal", "*"), A("list")]),
    (for_over_list, [A("normal", ("n",)), A("list", ("n",))]),
    (zip_weights, [A("normal", ("n",)), A("list", ("n",)), A("list", ("n",))]),
]


@pytest.mark.parametrize("f,specs,pattern", cases(LOOPS))
@given(data=st.data())
def test_loops(f, specs, pattern, data):
    run(data, f, specs, pattern)


def test_accumulator_that_changes_rank():
    # `acc = 0.0` and then `acc = acc + x[i] * i` with x[i] a vector: per example
    # acc is a float on entry and a vector after one iteration, so it has no single
    # batched layout: it runs per example, and the warning names the variable.
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert_runs_per_example(range_accumulate, (x,), where="`acc` changes per-example rank")


def test_range_of_a_batched_bound_is_masked():
    check(range_of_batched, np.arange(3.0), np.arange(3))


def test_iterating_batched_values():
    # enumerate/zip over a batched array iterate its per-example first axis, and a
    # mapped list of arrays is a list of batched arrays: both are plain loops.
    rng = np.random.default_rng(1)
    v, s = rng.standard_normal((3, 4)), rng.standard_normal(3)
    check(enumerate_batched, v)
    check(zip_batched_and_list, v, [1.0, 2.0, 3.0, 4.0], in_axes=(0, None))
    check(for_over_batched_list, s, [s, s + 1])


# ------------------------------------------------------------ unsupported
def if_on_batched(x):
    if x > 0:
        return x
    return -x


def max_of_arrays(a, b):
    return max(a, b)


def max_of_matrix(x):
    return max(x)


def max_with_key(a, b):
    return max(a, b, key=abs)


def len_of_scalar(x):
    return len(x)


def sum_of_scalar(x):
    return sum(x)


def float_of_array(x):
    return float(x)


def round_of_array(x):
    return round(x)


def round_digits_of_array(x):
    # round(ndarray, 2) raises TypeError per example (ndarray has no __round__), so
    # the batched call must not return values either.
    return round(x, 2)


def round_batched_digits(x, n):
    return round(x, n)


def range_of_batched(x, n):
    acc = 0.0 * x
    for _ in range(n):
        acc = acc + x
    return acc


def enumerate_batched(x):
    acc = 0.0 * x[0]
    for i, xi in enumerate(x):
        acc = acc + i * xi
    return acc


def zip_batched_and_list(x, ws):
    acc = 0.0 * x[0]
    for xi, w in zip(x, ws):
        acc = acc + w * xi
    return acc


def for_over_batched_list(x, ws):
    acc = 0.0 * x
    for w in ws:
        acc = acc + w * x
    return acc


def print_batched(x):
    print(x)
    return x


def isinstance_batched(x):
    return isinstance(x, float)


S3, V3 = np.arange(3.0), np.ones((3, 4))
# The loop itself raises in every example: refused with the reason, nothing runs.
REFUSED = [
    (if_on_batched, (V3 - 1,), 0),  # the truth of a vector
    (max_of_arrays, (V3, V3), 0),
    (max_of_arrays, (V3, np.ones(4)), (0, None)),
    (len_of_scalar, (S3,), 0),
    (sum_of_scalar, (S3,), 0),
    (float_of_array, (V3,), 0),
    (round_of_array, (V3,), 0),
    (round_digits_of_array, (V3,), 0),
]
# Not vectorised, but the loop runs them: the declared per-example fallback.
PER_EXAMPLE = [
    (max_with_key, (S3, S3), 0, None),
    (round_batched_digits, (S3, np.arange(3)), 0, None),
    (print_batched, (S3,), 0, None),
    (max_of_matrix, (np.ones((3, 2, 2)),), 0, ValueError),  # the loop compares rows
]


@pytest.mark.parametrize(
    "f,args,in_axes",
    [pytest.param(*c, id=f"{c[0].__name__}-{i}") for i, c in enumerate(REFUSED)],
)
def test_unsupported_raises(f, args, in_axes):
    with pytest.raises(UnsupportedError) as info:
        vmap(f, in_axes=in_axes)(*args)
    assert "test_rules_builtins.py" in str(info.value)


@pytest.mark.parametrize(
    "f,args,in_axes,raises",
    [pytest.param(*c, id=f"{c[0].__name__}-{i}") for i, c in enumerate(PER_EXAMPLE)],
)
def test_runs_per_example(f, args, in_axes, raises):
    assert_runs_per_example(f, args, in_axes, where="test_rules_builtins.py", raises=raises)
