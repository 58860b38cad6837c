"""Per-example functions used by tests/test_api.py (they must live in a file)."""

import functools
from typing import NamedTuple

import numpy
import numpy as np
from numpy import sum as total

SCALE = 2.0


def np_sum(x):
    return np.sum(x)


def numpy_sum(x):
    return numpy.sum(x)


def aliased_sum(x):
    return total(x)


def uses_global(x):
    return x * SCALE


def helper(v):
    return v / np.linalg.norm(v)


def calls_helper(x, y):
    return helper(x) @ helper(y)


def helper_twice(x, W):
    return helper(x) + helper(W @ x)


pair = (lambda x: x + 1, lambda x: x * 10)  # two lambdas on one line


def branch_on_batched(x):
    if x.sum() > 0:
        return x
    return -x


def positive_part(x):
    return x[x > 0]


def branch_on_shape(x):
    if x.shape[0] > 2:
        return x[:2]
    return x


def loop_accumulate(x, n):
    acc = 0.0
    for i in range(n):
        acc = acc + x[i] * i
    return acc


def raises_inside(x):
    y = x + 1
    return y.reshape(2, 2)  # fails at run time: y has 3 elements


def decorated_source(x):
    return x * 3


def make_closure(k):
    offset = np.arange(3.0)

    def inner(x):
        return x * k + offset

    return inner


class Linear:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def __call__(self, x):
        return x @ self.W + self.b

    def apply(self, x):
        return np.tanh(self(x)) if False else np.tanh(x @ self.W + self.b)


class Params(NamedTuple):
    W: np.ndarray
    b: np.ndarray


def apply_params(p, x):
    return x @ p.W + p.b


def dict_params(p, x):
    return x @ p["W"] + p["b"]


def two_outputs(x):
    return x.sum(), x * 2


class Stats(NamedTuple):
    mean: np.ndarray
    std: np.ndarray


def stats(x):
    return Stats(x.mean(), x.std())


def constant_output(x):
    return np.ones(3), x.sum()


def with_kwargs(x, scale=1.0, *, shift=0.0):
    return x * scale + shift


def scaled(x, scale):
    return x * scale


@functools.wraps(np_sum)
def wrapper_of_np_sum(x):
    return x.max()


def generator(x):
    yield x


async def coroutine(x):
    return x


def binned(x, k):
    counts, _ = np.histogram(x, bins=3, range=(-3.0, 3.0))  # no rule: runs per example
    return counts * k
