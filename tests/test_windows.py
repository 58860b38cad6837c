"""Dynamic windows ``x[i:i + k]`` with a batched start and a static length (issue 14)."""

import re
import warnings

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap

from .harness import assert_runs_per_example
from .oracle import check, loop

rng = np.random.default_rng(41)
calls = [0]  # how often the functions below ran: once per vmapped call, once per example looped


def _no_loop(f, *args, in_axes=0):
    """The oracle check, with vmap never falling back to a per-example loop (it would
    warn): the generated code runs the function's body once for the whole batch."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        vf = vmap(f, in_axes=in_axes)
        before = calls[0]
        vf(*args)
        assert calls[0] == before + 1, "vmap ran the function per example"
        return check(f, *args, in_axes=in_axes)


def _starts(batch, n, k, kind):
    """Starts whose windows fit: at the front, at the back, negative, and some inside."""
    edges = {
        "front": np.zeros(batch, int),
        "back": np.full(batch, n - k),
        "negative": -rng.integers(k + 1, n + 1, batch),  # -n <= i < -k fits
    }
    if kind in edges:
        return edges[kind]
    return rng.integers(0, n - k + 1, batch)


def window(x, i):
    calls[0] += 1
    return x[i : i + 3]


def shifted(x, i):
    calls[0] += 1
    return x[i - 1 : i + 2] * 2.0


def rows(M, i):
    calls[0] += 1
    return M[i : i + 2, :]


def patch(img, r, c):
    calls[0] += 1
    return img[r : r + 2, c : c + 3]


def column_window(img, c):
    calls[0] += 1
    return img[:, c : c + 2]


def window_then_index(M, i):
    calls[0] += 1
    return M[i : i + 2, 1], M[..., i : i + 2]


K = 2


def static_length(x, i):
    calls[0] += 1
    return x[i : i + K] + x[i + 1 : K + i + 1]


@pytest.mark.parametrize("batch", [1, 6])
@pytest.mark.parametrize("kind", ["front", "back", "negative", "inside"])
def test_window_reads_match_the_loop(batch, kind):
    x = rng.standard_normal((batch, 8))
    i = _starts(batch, 8, 3, kind)
    _no_loop(window, x, i)
    _no_loop(window, x[0], i, in_axes=(None, 0))  # unbatched array, batched start
    _no_loop(shifted, x, np.clip(_starts(batch, 7, 3, kind), -7, 5) + 1)
    _no_loop(static_length, x, _starts(batch, 7, 2, kind))
    M = rng.standard_normal((batch, 8, 3))
    _no_loop(rows, M, _starts(batch, 8, 2, kind))
    _no_loop(rows, M[0], _starts(batch, 8, 2, kind), in_axes=(None, 0))
    _no_loop(window_then_index, rng.standard_normal((batch, 8, 8)), _starts(batch, 8, 2, kind))


@pytest.mark.parametrize("batch", [1, 5])
def test_two_dimensional_patches(batch):
    img = rng.standard_normal((batch, 6, 7))
    r, c = _starts(batch, 6, 2, "inside"), _starts(batch, 7, 3, "negative")
    _no_loop(patch, img, r, c)
    _no_loop(patch, img[0], r, c, in_axes=(None, 0, 0))
    _no_loop(patch, img, r, np.full(batch, 4), in_axes=(0, 0, 0))
    _no_loop(patch, img, r, 4, in_axes=(0, 0, None))  # one window batched, one not
    _no_loop(column_window, img, _starts(batch, 7, 2, "back"))
    _no_loop(column_window, img[0], _starts(batch, 7, 2, "inside"), in_axes=(None, 0))


def test_windows_read_with_one_gather():
    x, i = rng.standard_normal((4, 9)), np.array([0, 3, 6, -5])
    text = vmap(window).emit(x, i)
    assert "sliding_window_view(x, 3, axis=1)[" in text
    assert "np.arange(x.shape[0]), start" in text
    assert "for " not in text


@pytest.mark.parametrize(
    "i, bad",
    [
        (np.array([0, 6, 2]), [1]),  # runs past the end: the loop's slice has 2 items
        (np.array([7, 1, 9]), [0, 2]),
        (np.array([-1, 0, -2]), [0, 2]),  # a negative start wraps to near the end
        (np.array([2, -3, 0]), [1]),  # x[-3:0] is empty
        (np.array([-9, 0, 0]), [0]),  # starts before the front
    ],
)
def test_a_window_past_an_end_raises_naming_the_examples(i, bad):
    x = rng.standard_normal((3, 8))
    with pytest.raises(ValueError):
        loop(window, (x, i))  # the loop's results differ in shape
    with pytest.raises(ValueError, match=re.escape("shorter than 3 in examples %s" % bad)) as info:
        vmap(window)(x, i)
    assert "test_windows.py:" in "\n".join(info.value.__notes__)  # the user's line


def test_a_patch_past_an_end_raises():
    img = rng.standard_normal((2, 6, 7))
    with pytest.raises(ValueError, match=r"shorter than 2 x 3 in examples \[1\]"):
        vmap(patch)(img, np.array([0, 1]), np.array([0, 5]))


def reduced(x, i):
    calls[0] += 1
    s = x[i : i + 3]
    return (
        x[i : i + 3].sum(),
        np.mean(x[i : i + 3]),
        len(x[i : i + 3]),
        x[i : i + 3].size,
        (x[i : i + 3] ** 2).sum(),
        np.abs(x[i : i + 3]).max(initial=-1.0),
        s.min(),
    )


def weighted(x, i, w):
    calls[0] += 1
    return (x[i : i + 3] * w).sum(), np.dot(x[i : i + 3], w), x[i : i + 3].cumsum()


def short_sums(x, i):
    calls[0] += 1
    return x[i : i + 3].sum(), len(x[i : i + 3]), x[i : i + 3].mean()


def short_max(x, i):
    calls[0] += 1
    return np.abs(x[i : i + 3]).max(initial=0.0), x[i : i + 3].shape


@pytest.mark.parametrize("batch", [1, 6])
def test_a_reduced_window_is_exact_where_the_slice_is_shorter(batch):
    # Reduced at once, the window is a selection: the loop's shorter slices are fine.
    x = rng.standard_normal((batch, 8))
    i = np.array([0, 6, 7, -1, -9, 3])[:batch]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty slice
        _no_loop(short_sums, x, i)
        _no_loop(reduced, x, _starts(batch, 8, 3, "inside"))
    x[:, :] = np.abs(x) + 1.0
    _no_loop(short_max, x, i)


def test_a_reduced_window_reads_k_places():
    text = vmap(reduced).emit(rng.standard_normal((3, 8)), np.array([0, 1, 2]))
    assert "sliding_window_view(x, 3, axis=1)" in text
    assert "np.arange(x.shape[1])" not in text  # not a mask over the whole row


@pytest.mark.parametrize("batch", [1, 4])
def test_a_window_combined_with_a_fixed_array_is_gathered(batch):
    x, w = rng.standard_normal((batch, 8)), rng.standard_normal(3)
    _no_loop(weighted, x, _starts(batch, 8, 3, "inside"), w, in_axes=(0, 0, None))
    with pytest.raises(ValueError, match="shorter than 3"):
        vmap(weighted, in_axes=(0, 0, None))(x, np.full(batch, 7), w)


def write(y, i, v):
    calls[0] += 1
    y = y.copy()
    y[i : i + 3] = v
    return y


def add(y, i, v):
    calls[0] += 1
    y = y.copy()
    y[i : i + 3] += v
    return y


def write_patch(img, r, c):
    calls[0] += 1
    out = np.zeros_like(img)
    out[r : r + 2, c : c + 2] = img[r : r + 2, c : c + 2] * 2.0
    out[r : r + 2, :] += 1.0
    return out


def fresh(v, i):
    calls[0] += 1
    y = np.zeros(8)
    y[i : i + 3] = v
    return y


def under_condition(x, i):
    calls[0] += 1
    y = x.copy()
    if x[0] > 0:
        y[i : i + 3] = 1.0
    return y


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("f", [write, add])
def test_window_writes_match_the_loop(batch, f):
    y = rng.standard_normal((batch, 8))
    for kind in ("front", "back", "negative", "inside"):
        i = _starts(batch, 8, 3, kind)
        _no_loop(f, y, i, 7.0, in_axes=(0, 0, None))
        _no_loop(f, y, i, rng.standard_normal((batch, 3)))
        _no_loop(f, y, i, rng.standard_normal(batch))
        _no_loop(f, y[0], i, rng.standard_normal((batch, 3)), in_axes=(None, 0, 0))
    _no_loop(fresh, rng.standard_normal((batch, 3)), _starts(batch, 8, 3, "inside"))


@pytest.mark.parametrize("batch", [1, 5])
def test_patch_writes_and_writes_under_a_condition(batch):
    img = rng.standard_normal((batch, 6, 7))
    _no_loop(write_patch, img, _starts(batch, 6, 2, "inside"), _starts(batch, 7, 2, "back"))
    x = rng.standard_normal((batch, 8))
    i = _starts(batch, 8, 3, "inside")
    _no_loop(under_condition, x, i)
    # Past the end only in lanes that skip the write: the loop never slices there.
    x[:, 0] = -1.0
    _no_loop(under_condition, x, np.full(batch, 7))


def test_a_write_past_the_end_raises():
    y = rng.standard_normal((3, 8))
    with pytest.raises(ValueError, match=r"shorter than 3 in examples \[1\]"):
        vmap(write)(y, np.array([0, 6, 1]), np.ones((3, 3)))


def _bounded_by_length(x, i):
    return x[i : i + len(x)]  # the length is not a constant


def _in_comprehension(x, i):
    return [x[i + j : i + j + 2] for j in range(2)]


def _other_index(y, i):
    y = y.copy()
    y[i : i + 2, 0] = 1.0
    return y


@pytest.mark.parametrize("f", [_in_comprehension, _other_index])
def test_not_vectorised_runs_per_example(f):
    # Forms the loop runs but astvmap does not vectorise: the declared fallback (DESIGN §7).
    x = rng.standard_normal((3, 8, 2)) if f is _other_index else rng.standard_normal((3, 8))
    assert_runs_per_example(f, (x, np.array([0, 1, 2])), where="test_windows.py")


def test_a_slice_of_batched_length_is_still_refused():
    with pytest.raises(UnsupportedError, match="length differs"):
        vmap(_bounded_by_length)(rng.standard_normal((3, 8)), np.array([0, 1, 2]))


def in_a_batched_loop(x, i):
    calls[0] += 1
    tot = 0.0
    j = i
    while tot < 3.0 and j < 6:
        tot += x[j : j + 2].sum() + x[j : j + 2][0]
        j += 1
    return tot, j


def add_under_condition(x, i):
    calls[0] += 1
    y = x.copy()
    if x[1] > 0:
        y[i : i + 3] += 2.0
        z = y[i : i + 3].sum()
    else:
        z = -1.0
    return y, z


def from_argmax(x):
    calls[0] += 1
    i = np.argmax(x[:4])
    return x[i : i + 4] * 2.0, np.mean(x[i : i + 4])


@pytest.mark.parametrize("batch", [1, 6])
def test_windows_under_batched_control_flow(batch):
    x = rng.standard_normal((batch, 8))
    # Lanes leave the loop at different times; only the running lanes read and are checked.
    _no_loop(in_a_batched_loop, x, np.arange(batch) % 6)
    _no_loop(add_under_condition, x, _starts(batch, 8, 3, "inside"))
    _no_loop(from_argmax, x)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int16])
def test_starts_of_other_integer_dtypes(dtype):
    x = rng.standard_normal((4, 8))
    _no_loop(window, x, np.array([0, 5, 2, 3], dtype=dtype))
    _no_loop(short_sums, x, np.array([0, 7, 2, 6], dtype=dtype))


def test_a_reduced_window_longer_than_the_axis_raises():
    # Documented limit: the loop sums the shorter slice, astvmap's view cannot exist.
    x = rng.standard_normal((3, 2))
    loop(short_sums, (x, np.array([0, 1, 0])))
    with pytest.raises(ValueError, match="window shape cannot be larger"):
        vmap(short_sums)(x, np.array([0, 1, 0]))
