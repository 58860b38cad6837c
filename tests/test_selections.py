"""Boolean-mask selections with a batched mask, consumed into fixed shapes (issue 14)."""

import warnings

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap

from .harness import assert_runs_per_example
from .oracle import check, loop

rng = np.random.default_rng(14)


def positive_sum(x):
    return x[x > 0].sum()


def reductions(x, m):
    s = x[m]
    return (
        s.sum(),
        np.prod(s),
        np.mean(s),
        s.var(),
        np.std(s, ddof=1),
        len(s),
        s.size,
        s.shape[0],
        np.count_nonzero(s > 0),
        np.any(s > 1),
        (s < 2).all(),
    )


def extremes(x, m):
    return x[m].max(), np.abs(x[m]).min(), np.max(x[m], initial=-5.0)


def with_initial(x, m):
    return np.max(x[m], initial=-5.0), x[m].min(initial=7.0)


def elementwise(x, y, m, c):
    return ((x[m] - c) ** 2).sum(), (x[m] * y[m]).sum(), np.exp(x[m]).mean()


def other_array(x, y):
    return y[x > 0].sum(), len(y[x > 0])


def rows(M, keep):
    return M[keep].sum(axis=0), M[keep].sum(), M[keep].mean(axis=0), M[keep].shape[0]


def int_max(x, m):
    return x[m].max(), x[m].min(), x[m].sum()


def _masks(batch, n, kind):
    if kind == "none":
        return np.zeros((batch, n), bool)
    if kind == "all":
        return np.ones((batch, n), bool)
    m = rng.random((batch, n)) < 0.5
    m[:, 0] = True  # never empty
    return m


def _no_loop(f, *args, in_axes=0):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        return check(f, *args, in_axes=in_axes)


@pytest.mark.parametrize("batch", [1, 5])
def test_positive_sum_emits_where(batch):
    x = rng.standard_normal((batch, 7))
    _no_loop(positive_sum, x)
    text = vmap(positive_sum).emit(x)
    assert "np.where(mask, x, 0).sum(axis=1)" in text
    assert "for " not in text.split("def positive_sum")[1]


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("kind", ["some", "all"])
@pytest.mark.parametrize("x_b", [True, False])
def test_reductions_match_loop(batch, kind, x_b):
    x = rng.standard_normal((batch, 6) if x_b else (6,))
    m = _masks(batch, 6, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ddof=1 of one element
        _no_loop(reductions, x, m, in_axes=(0 if x_b else None, 0))


@pytest.mark.parametrize("batch", [1, 3])
def test_empty_selection_sum_mean_len(batch):
    x, m = rng.standard_normal((batch, 5)), _masks(batch, 5, "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of nothing is nan
        _no_loop(reductions, x, m)


@pytest.mark.parametrize("batch", [1, 4])
def test_extremes_and_empty_raise(batch):
    x, m = rng.standard_normal((batch, 6)), _masks(batch, 6, "some")
    _no_loop(extremes, x, m)
    _no_loop(with_initial, x, _masks(batch, 6, "none"))
    m[-1] = False
    with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
        loop(extremes, (x, m))
    with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
        vmap(extremes)(x, m)


def test_integer_and_bool_extremes_keep_dtype():
    x = rng.integers(-50, 50, size=(4, 6)).astype(np.int32)
    m = _masks(4, 6, "some")
    _no_loop(int_max, x, m)
    _no_loop(int_max, x > 0, m)


@pytest.mark.parametrize("batch", [1, 4])
def test_elementwise_keeps_the_mask(batch):
    x, y = rng.standard_normal((batch, 6)), rng.standard_normal((batch, 6))
    m, c = _masks(batch, 6, "some"), rng.standard_normal(batch)
    _no_loop(elementwise, x, y, m, c)
    _no_loop(elementwise, x[0], y, m, 0.5, in_axes=(None, 0, 0, None))
    _no_loop(other_array, x, y)
    _no_loop(other_array, x, y[0], in_axes=(0, None))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("M_b", [True, False])
def test_row_mask_of_a_matrix(batch, M_b):
    M = rng.standard_normal((batch, 5, 3) if M_b else (5, 3))
    keep = _masks(batch, 5, "some")
    _no_loop(rows, M, keep, in_axes=(0 if M_b else None, 0))


def test_float32_dtype_kept():
    x = rng.standard_normal((3, 6)).astype(np.float32)
    m = _masks(3, 6, "some")
    check(extremes, x, m, rtol=1e-6)
    check(reductions, x, m, rtol=1e-5)


def test_selection_does_not_alias_its_array():
    def f(x, m):
        y = x.copy()
        s = y[m]
        y += 1.0
        return s.sum() + y.sum()

    x, m = rng.standard_normal((3, 4)), _masks(3, 4, "some")
    _no_loop(f, x, m)


def test_mask_of_a_different_length_raises_like_the_loop():
    x, m = rng.standard_normal((2, 4)), _masks(2, 5, "some")
    with pytest.raises(IndexError):
        loop(reductions, (x, m))
    with pytest.raises(IndexError, match="boolean index did not match"):
        vmap(reductions)(x, m)


def _ret(x, m):
    return x[m]


def _index(x, m):
    return x[m][0]


def _two_masks(x, m):
    return (x[m] + x[~m]).sum()


def _fixed(x, m):
    return (x[m] + x).sum()


def _other_axis(x, m):
    return x[m].sum(axis=1)


def _argmax(x, m):
    return x[m].argmax()


def _reshape(x, m):
    return x[m].reshape(-1, 1).sum()


def _tuple(x, m):
    t = (x[m], 1)
    return t[1]


def _cond(x, m):
    s = x[m] if x[0] > 0 else x
    return s.sum()


def _helper(s):
    return s.sum()


def _user(x, m):
    return _helper(x[m])


@pytest.mark.parametrize(
    "f", [_ret, _index, _two_masks, _fixed, _other_axis, _argmax, _reshape, _tuple, _user]
)
def test_refused_with_the_reason(f):
    x, m = rng.standard_normal((3, 4)), _masks(3, 4, "some")
    with pytest.raises(UnsupportedError, match="length differs per example") as info:
        vmap(f)(x, m)
    assert "test_selections.py" in str(info.value)


def test_selection_chosen_by_a_batched_condition_runs_per_example():
    x, m = rng.standard_normal((3, 4)), _masks(3, 4, "some")
    assert_runs_per_example(_cond, (x, m), where="test_selections.py:")


def test_shape_of_a_row_selection():
    def f(M, keep):
        s = M[keep]
        return s.shape, s.shape[-1], s.ndim

    M, keep = rng.standard_normal((3, 5, 2)), _masks(3, 5, "some")
    _no_loop(f, M, keep)
    assert "(keep, axis=1)" in vmap(f).emit(M, keep)


def test_under_a_batched_condition_only_running_lanes_raise():
    def f(x):
        t = 0.0
        if x[0] > 0:
            t = x[x > 0.5].max()
        return t

    x = rng.standard_normal((6, 5))
    x[:, 0] = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    x[1, 1:] = -1.0  # selects nothing, but its lane does not run the max
    _no_loop(f, x)
    x[0, 1:] = -1.0  # selects only x[0, 0] = 1.0: fine
    _no_loop(f, x)
    x[2] = [0.2, 0.0, 0.0, 0.0, 0.0]  # runs the max and selects nothing: the loop raises
    with pytest.raises(ValueError):
        loop(f, (x,))
    with pytest.raises(ValueError, match="maximum which has no identity"):
        vmap(f)(x)


def test_in_loops():
    def f(x):
        tot = 0.0
        for i in range(3):
            s = x[x > i * 0.3]
            tot = tot + s.sum() + len(s)
        return tot

    _no_loop(f, rng.standard_normal((4, 5)))


# ------------------------------------------------------------------- writes
def write_scalar(x, v):
    y = x.copy()
    y[x > 0] = v
    return y


def write_selection(x, w, m):
    y = x.copy()
    y[m] = w[m]
    return y


def write_update(x, v):
    y = x.copy()
    y[x > 0] += v
    y[x < -0.5] *= 2
    return y


def write_int_buffer(x):
    y = np.zeros(x.shape[0], dtype=np.int64)
    y[x > 0] = 2.7
    y[x < 0] += 1
    return y


def write_rows(M, keep, v):
    out = M.copy()
    out[keep] = v
    return out


@pytest.mark.parametrize("batch", [1, 4])
def test_masked_writes(batch):
    x, w = rng.standard_normal((batch, 6)), rng.standard_normal((batch, 6))
    v, m = rng.standard_normal(batch), _masks(batch, 6, "some")
    _no_loop(write_scalar, x, v)
    _no_loop(write_scalar, x, 3.0, in_axes=(0, None))
    _no_loop(write_selection, x, w, m)
    _no_loop(write_selection, x, w[0], m, in_axes=(0, None, 0))
    _no_loop(write_selection, x[0], w, m, in_axes=(None, 0, 0))
    _no_loop(write_selection, x, w, _masks(batch, 6, "none"))
    _no_loop(write_update, x, v)
    _no_loop(write_update, x, 0.5, in_axes=(0, None))
    _no_loop(write_int_buffer, x)
    M = rng.standard_normal((batch, 5, 3))
    _no_loop(write_rows, M, _masks(batch, 5, "some"), v)
    _no_loop(write_rows, M[0], _masks(batch, 5, "all"), 1.0, in_axes=(None, 0, None))


def _write_under_condition(x):
    y = x.copy()
    if x[0] > 0:
        y[x > 1] = 0.0
    return y


def _write_other_mask(x, w, m):
    y = x.copy()
    y[m] = w[~m]
    return y


def _write_array(x, w):
    y = x.copy()
    y[x > 0] = w
    return y


@pytest.mark.parametrize("f", [_write_under_condition, _write_other_mask, _write_array])
def test_masked_writes_refused(f):
    x = rng.standard_normal((3, 4))
    args = {1: (x,), 2: (x, x), 3: (x, x, x > 0)}[f.__code__.co_argcount]
    with pytest.raises(UnsupportedError, match="test_selections.py"):
        vmap(f)(*args)


# ------------------------------------------------------------------- positions
def positions(x, y):
    idx = np.nonzero(x > 0)[0]
    (j,) = np.nonzero(x > 0)
    return (
        len(idx),
        idx.size,
        idx.sum(),
        x[np.where(x > 0)[0]].sum(),
        np.flatnonzero(x > 0.5).size,
        y[j].max(initial=0.0),
    )


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("kind", ["some", "none", "all"])
def test_nonzero_positions_are_the_mask(batch, kind):
    x = np.where(_masks(batch, 6, kind), 1.0, -1.0) * rng.random((batch, 6))
    y = rng.standard_normal((batch, 6))
    _no_loop(positions, x, y)
    _no_loop(positions, x, y[0], in_axes=(0, None))


def _return_positions(x):
    return np.nonzero(x > 0)


def test_positions_index_a_longer_array_is_refused_at_run_time():
    def f(x, y):
        return y[np.flatnonzero(x > 0)].sum()

    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 6))
    loop(f, (x, y))  # the loop accepts it
    with pytest.raises(ValueError, match="as long as m"):
        vmap(f)(x, y)
    with pytest.raises(UnsupportedError, match="length differs"):
        vmap(_return_positions)(x)


# ------------------------------------------------------------------- batched slices
def prefix_suffix(x, n):
    return x[:n].sum(), x[n:].max(initial=-9.0), len(x[n:]), x[n : n + 2].sum()


def prefix_mean(x, n):
    return x[:n].mean(), x[n:].size


def row_prefix(M, n):
    return M[:n].sum(axis=0), M[n:].shape[0]


@pytest.mark.parametrize("batch", [1, 6])
def test_slices_with_batched_bounds_reduce_under_a_mask(batch):
    n = np.array([0, 2, 6, 9, -2, -8])[:batch]
    x = rng.standard_normal((batch, 6))
    _no_loop(prefix_suffix, x, n)
    _no_loop(prefix_suffix, x[0], n, in_axes=(None, 0))
    _no_loop(row_prefix, rng.standard_normal((batch, 6, 2)), n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty slice
        _no_loop(prefix_mean, x, n)


def test_a_batched_slice_that_escapes_is_refused():
    def f(x, n):
        return x[:n]

    with pytest.raises(UnsupportedError, match="length differs"):
        vmap(f)(rng.standard_normal((3, 4)), np.array([1, 2, 3]))


def test_mask_kind_is_indexings():
    from astvmap import indexing, selections

    assert selections.MASK == indexing.MASK
