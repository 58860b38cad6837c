"""The thinnest end-to-end slice: np.tanh(x @ W + b)."""

import numpy as np

from astvmap import vmap

from .oracle import check


def layer(x, W, b):
    return np.tanh(x @ W + b)


def test_layer_matches_loop():
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((7, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    check(layer, X, W, b, in_axes=(0, None, None))


def test_layer_is_one_matmul():
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((7, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    text = vmap(layer, in_axes=(0, None, None)).emit(X, W, b)
    assert "return np.tanh(x @ W + b)" in text
    assert "for " not in text.split("def layer")[1]


def test_batch_of_one_and_out_axes():
    rng = np.random.default_rng(1)
    X, W, b = rng.standard_normal((1, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    check(layer, X, W, b, in_axes=(0, None, None))
    check(layer, X.T.copy(), W, b, in_axes=(1, None, None), out_axes=1)
