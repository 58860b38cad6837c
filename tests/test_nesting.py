"""vmap of vmap: two and three batch axes, mixed in_axes/out_axes, no Python loop."""

import numpy as np
import pytest

from astvmap import vmap

from .oracle import assert_same
from .programs import nested as n

rng = np.random.default_rng(0)


def test_vmap_of_vmap_is_an_outer_product_of_dots():
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    f = vmap(vmap(n.dot, in_axes=(None, 0)), in_axes=(0, None))
    assert_same(f(X, Y), X @ Y.T)
    text = f.emit(X, Y)
    assert "for " not in text.split("import numpy as np")[1]


def test_vmap_of_vmap_same_axes():
    X = rng.standard_normal((2, 3, 4))
    W, b = rng.standard_normal((4, 5)), rng.standard_normal(5)
    f = vmap(vmap(n.affine, in_axes=(0, None, None)), in_axes=(0, None, None))
    assert_same(f(X, W, b), np.tanh(X @ W + b))


@pytest.mark.parametrize("outer_out,inner_out", [(0, 0), (1, 0), (0, 1), (-1, -1)])
def test_out_axes_combinations(outer_out, inner_out):
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    f = vmap(
        vmap(n.mul, in_axes=(None, 0), out_axes=inner_out), in_axes=(0, None), out_axes=outer_out
    )
    want = np.stack([np.stack([x * y for y in Y], axis=inner_out) for x in X], axis=outer_out)
    assert_same(f(X, Y), want)


def test_three_levels():
    A = rng.standard_normal((2, 3, 4, 5))
    f = vmap(vmap(vmap(lambda v: v.sum())))
    assert_same(f(A), A.sum(axis=-1))


def test_vmapped_function_called_inside_a_vmapped_function():
    M = rng.standard_normal((6, 4, 3))
    want = np.stack([np.sqrt((m * m).sum(axis=1)).max() for m in M])
    assert_same(vmap(n.uses_vmapped)(M), want)
