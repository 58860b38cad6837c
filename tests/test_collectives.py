"""Collectives over named batch axes (``vmap(..., axis_name=...)``) give JAX's answers.

There is no loop oracle for a collective (one example alone cannot sum over the
batch), so each test computes the reduction by hand: the per-example operands are
sliced out exactly as the loop slices its arguments, then summed, averaged, ...
across the examples of the named axis.
"""

import itertools

import numpy as np
import pytest

import astvmap
from astvmap import (
    UnsupportedError,
    all_gather,
    axis_index,
    pmax,
    pmean,
    pmin,
    psum,
    vmap,
)

from .oracle import assert_same

rng = np.random.default_rng(0)


# ------------------------------------------------------------- per-example functions
def centred(x):
    return x - pmean(x, "i")


def reductions(x):
    return psum(x, "i"), pmean(x, "i"), pmax(x, "i"), pmin(x, "i")


def weighted(x, w):
    return psum(x * w, "i") + psum(w, "i")


def unbatched_operands(x, w):
    return x + psum(w, "i"), pmean(w, "i"), pmax(w, "i"), pmin(w, "i")


def index_of(x):
    return x * 0 + axis_index("i")


def gather(x):
    return all_gather(x, "i")


def gather_axis1(x):
    return all_gather(x, "i", axis=1)


def gather_tiled(x):
    return all_gather(x, "i", tiled=True)


def gather_unbatched(x, w):
    return all_gather(w, "i"), x


def two_axes(x, y):
    return (
        psum(x * y, "i")
        + pmax(x, "j")
        - pmean(y, "i")
        + pmin(x * 2.0, "j")
        + axis_index("j") * 10.0
        + axis_index("i")
    )


def gather_outer(x):
    return all_gather(x, "j")


def shadowed(x):
    return psum(x, "i")


def other_name(x):
    return psum(x, "k")


def psum_of_bool(x):
    return psum(x > 0, "i")


def branchy(x):
    if x[0] > 0:
        y = psum(x, "i")
    else:
        y = x
    return y


def in_a_batched_loop(x):
    while x[0] < 3.0:
        x = x + pmax(x, "i")
    return x


def in_a_plain_loop(x):
    for _ in range(3):
        x = x - pmean(x, "i") * 0.5
    return x


def helper(v):
    return v - pmean(v, "i")


def calls_helper(x):
    return helper(x) * 2.0


def unbatched_helper(w):
    return psum(w, "i")


def calls_unbatched_helper(x, w):
    return x + unbatched_helper(w)


def unbatched_mean_helper(w):
    return pmean(w, "i")


def calls_unbatched_mean_helper(x, w):
    return x + unbatched_mean_helper(w)


def batch_norm(x, gamma, beta):
    mean = pmean(x, "batch")
    var = pmean((x - mean) ** 2, "batch")
    return gamma * (x - mean) / np.sqrt(var + 1e-5) + beta


# ---------------------------------------------------------------------------- one axis
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("in_axis", [0, 1, -1])
def test_reductions_over_the_named_axis(batch, in_axis):
    per_example = rng.standard_normal((batch, 4))
    X = np.moveaxis(per_example, 0, in_axis)
    got = vmap(reductions, in_axes=in_axis, axis_name="i")(X)
    sums = [per_example.sum(0), per_example.mean(0), per_example.max(0), per_example.min(0)]
    want = tuple(np.repeat(s[None], batch, axis=0) for s in sums)
    assert_same(got, want)
    assert_same(vmap(centred, in_axes=in_axis, axis_name="i")(X), per_example - sums[1])


@pytest.mark.parametrize("batch", [1, 4])
def test_unbatched_operands_follow_jax(batch):
    # psum of a value that is the same in every example is that value times the axis
    # size; its mean, maximum and minimum are itself.
    X, w = rng.standard_normal((batch, 3)), rng.standard_normal(3)
    got = vmap(unbatched_operands, in_axes=(0, None), axis_name="i")(X, w)
    rep = np.repeat(w[None], batch, axis=0)
    assert_same(got, (X + batch * w, rep, rep, rep))
    got = vmap(
        unbatched_operands, in_axes=(0, None), out_axes=(0, None, None, None), axis_name="i"
    )(X, w)
    assert_same(got, (X + batch * w, w, w, w))
    X2 = rng.standard_normal((batch, 3))
    assert_same(
        vmap(weighted, in_axes=(0, None), axis_name="i")(X2, w),
        np.repeat(((X2 * w).sum(0) + batch * w)[None], batch, axis=0),
    )


def test_psum_of_python_scalar_and_bool():
    X = rng.standard_normal((6, 2))
    assert_same(
        vmap(psum_of_bool, axis_name="i")(X),
        np.repeat((X > 0).sum(0)[None], 6, axis=0),
    )


def test_axis_index():
    X = rng.standard_normal((5, 2))
    assert_same(vmap(index_of, axis_name="i")(X), np.repeat(np.arange(5.0)[:, None], 2, axis=1))


@pytest.mark.parametrize("batch", [1, 3])
def test_all_gather(batch):
    X = rng.standard_normal((batch, 4))
    rep = lambda a: np.repeat(a[None], batch, axis=0)  # noqa: E731
    assert_same(vmap(gather, axis_name="i")(X), rep(X))
    assert_same(vmap(gather_axis1, axis_name="i")(X), rep(X.T))
    assert_same(vmap(gather_tiled, axis_name="i")(X), rep(X.reshape(-1)))
    w = rng.standard_normal(2)
    got = vmap(gather_unbatched, in_axes=(0, None), out_axes=(None, 0), axis_name="i")(X, w)
    assert_same(got, (np.repeat(w[None], batch, axis=0), X))


def test_all_gather_result_is_a_copy():
    def write(x):
        g = all_gather(x, "i")
        g[0] = 0.0
        return x + 0.0 * g[0]

    X = rng.standard_normal((3, 2))
    assert_same(vmap(write, axis_name="i")(X), X)


def test_collectives_in_a_helper_and_a_plain_loop():
    X = rng.standard_normal((4, 3))
    assert_same(vmap(calls_helper, axis_name="i")(X), (X - X.mean(0)) * 2.0)
    want = X.copy()
    for _ in range(3):
        want = want - want.mean(0) * 0.5
    assert_same(vmap(in_a_plain_loop, axis_name="i")(X), want)


def test_every_example_takes_part_under_a_batched_if():
    # As JAX's batched cond (a select): both branches run on the whole batch, so the
    # sum is over every example, also those that take the other branch.
    X = np.array([[1.0, 2.0], [-1.0, 5.0], [2.0, 0.5]])
    want = np.where(X[:, :1] > 0, X.sum(0), X)
    assert_same(vmap(branchy, axis_name="i")(X), want)


def test_batch_normalisation_per_example():
    X = rng.standard_normal((64, 8)) * 3 + 1
    gamma, beta = rng.standard_normal(8), rng.standard_normal(8)
    got = vmap(batch_norm, in_axes=(0, None, None), axis_name="batch")(X, gamma, beta)
    want = gamma * (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-5) + beta
    assert_same(got, want)


# ---------------------------------------------------------------------- nested axes
def _arrange(grid: np.ndarray, outer: int | None, inner: int | None) -> np.ndarray:
    """The argument whose example (a, b) is grid[a, b], mapped as (outer, inner).

    An axis that is not mapped is dropped: the value is the same along it."""
    if inner is None:
        per_outer = list(grid[:, 0])
    else:
        per_outer = [np.moveaxis(g, 0, inner) for g in grid]
    if outer is None:
        return per_outer[0]
    return np.stack(per_outer, axis=outer)


def _example(arg: np.ndarray, outer: int | None, inner: int | None, a: int, b: int) -> np.ndarray:
    """Example (a, b) of ``arg``, sliced as the loop slices it."""
    if outer is not None:
        arg = np.take(arg, a, axis=outer)
    if inner is not None:
        arg = np.take(arg, b, axis=inner)
    return arg


AXES = [(o, i) for o in (0, -1, None) for i in (0, 1, None)]
MIXES = [
    (ax, ay)
    for ax, ay in itertools.product(AXES, AXES)
    if (ax[0] is not None or ay[0] is not None) and (ax[1] is not None or ay[1] is not None)
]


@pytest.mark.parametrize("ax,ay", MIXES)
def test_nested_axes_every_in_axes_mix(ax, ay):
    Bj, Bi = 2, 3
    X = _arrange(rng.standard_normal((Bj, Bi, 4)), *ax)
    Y = _arrange(rng.standard_normal((Bj, Bi, 4)), *ay)
    f = vmap(
        vmap(two_axes, in_axes=(ax[1], ay[1]), axis_name="i"),
        in_axes=(ax[0], ay[0]),
        axis_name="j",
    )
    x = [[_example(X, *ax, a, b) for b in range(Bi)] for a in range(Bj)]
    y = [[_example(Y, *ay, a, b) for b in range(Bi)] for a in range(Bj)]
    want = np.empty((Bj, Bi, 4))
    for a, b in itertools.product(range(Bj), range(Bi)):
        want[a, b] = (
            sum(x[a][k] * y[a][k] for k in range(Bi))  # psum over i
            + np.max([x[k][b] for k in range(Bj)], axis=0)  # pmax over j
            - np.mean([y[a][k] for k in range(Bi)], axis=0)  # pmean over i
            + np.min([x[k][b] * 2.0 for k in range(Bj)], axis=0)  # pmin over j
            + a * 10.0
            + b
        )
    assert_same(f(X, Y), want)


def test_nested_gather_over_the_outer_axis():
    X = rng.standard_normal((2, 3, 4))
    got = vmap(vmap(gather_outer, axis_name="i"), axis_name="j")(X)
    want = np.empty((2, 3, 2, 4))
    for a, b in itertools.product(range(2), range(3)):
        want[a, b] = X[:, b]
    assert_same(got, want)


def test_inner_name_shadows_the_outer():
    X = rng.standard_normal((2, 3, 4))
    got = vmap(vmap(shadowed, axis_name="i"), axis_name="i")(X)
    assert_same(got, np.repeat(X.sum(1, keepdims=True), 3, axis=1))


def test_vmapped_function_called_inside_a_vmapped_one():
    inner = vmap(centred, axis_name="i")

    def outer(x):
        return inner(x) + pmean(x, "j")

    X = rng.standard_normal((2, 3, 4))
    got = vmap(outer, axis_name="j")(X)
    assert_same(got, X - X.mean(1, keepdims=True) + X.mean(0))


# ------------------------------------------------------------------------------ errors
def test_a_name_no_vmap_carries_is_an_error_naming_it():
    X = rng.standard_normal((3, 2))
    with pytest.raises(NameError, match="unbound axis name: 'k'"):
        vmap(other_name, axis_name="i")(X)
    with pytest.raises(NameError, match="unbound axis name: 'k'"):
        vmap(vmap(other_name, axis_name="i"), axis_name="j")(rng.standard_normal((2, 3, 2)))
    with pytest.raises(NameError, match="unbound axis name: 'i'"):
        vmap(centred)(X)  # the vmap carries no name


@pytest.mark.parametrize(
    "call",
    [
        lambda: psum(1.0, "i"),
        lambda: pmean(1.0, "i"),
        lambda: pmax(1.0, "i"),
        lambda: pmin(1.0, "i"),
        lambda: axis_index("i"),
        lambda: all_gather(1.0, "i"),
    ],
)
def test_outside_vmap_is_a_name_error(call):
    with pytest.raises(NameError, match="unbound axis name: 'i'"):
        call()


def test_refused_where_lanes_stop_at_different_times():
    with pytest.raises(
        UnsupportedError, match="loop whose examples stop at different times"
    ) as info:
        vmap(in_a_batched_loop, axis_name="i")(np.zeros((3, 2)))
    assert "test_collectives.py" in str(info.value)


def test_a_helper_without_batched_arguments_is_refused():
    # Called without batched arguments, a helper runs as written: the collective would
    # raise NameError there, and the batch size is not known in it.
    with pytest.raises(UnsupportedError, match="has no batched argument") as info:
        vmap(calls_unbatched_helper, in_axes=(0, None), axis_name="i")(np.zeros((3, 2)), np.ones(2))
    assert 'return psum(w, "i")' in str(info.value)
    with pytest.raises(UnsupportedError, match="has no batched argument"):
        vmap(calls_unbatched_mean_helper, in_axes=(0, None), axis_name="i")(
            np.zeros((3, 2)), np.ones(2)
        )


def test_bad_axis_name():
    with pytest.raises(TypeError, match="axis_name"):
        vmap(centred, axis_name=3)


def test_the_axis_name_is_part_of_the_cache_key():
    X = rng.standard_normal((3, 2))
    assert_same(vmap(centred, axis_name="i")(X), X - X.mean(0))
    with pytest.raises(NameError):
        vmap(centred, axis_name="other")(X)
    assert_same(vmap(centred, axis_name="i")(X), X - X.mean(0))


def test_exported_from_astvmap():
    assert astvmap.psum is psum and "all_gather" in astvmap.__all__


def test_chunk_size_with_collectives_is_refused():
    # Each chunk would reduce over itself alone; refused rather than computed.
    with pytest.raises(ValueError, match="chunk_size.*axis_name"):
        vmap(centred, axis_name="i", chunk_size=2)


def test_cli_emit_keeps_the_decorators_axis_name_and_randomness(tmp_path, capsys):
    import cli

    path = tmp_path / "named.py"
    path.write_text(
        "import numpy as np\n"
        "from astvmap import vmap, pmean\n\n\n"
        '@vmap(axis_name="b")\n'
        "def centre(x):\n"
        '    return x - pmean(x, "b")\n\n\n'
        '@vmap(randomness="different")\n'
        "def noisy(x):\n"
        "    return x + np.random.normal(size=3)\n"
    )
    assert cli.main(["emit", f"{path}:centre", "--rank", "x=1"]) == 0
    assert "return x - np.mean(x, axis=0)" in capsys.readouterr().out
    assert cli.main(["emit", f"{path}:noisy", "--rank", "x=1"]) == 0
    assert "np.random.normal(size=(batch_size, 3))" in capsys.readouterr().out
