"""Per-example functions that misuse vmap, for tests/test_bad_input.py (they need a file)."""

import numpy as np

COUNT = 0
LAST = None


def total(x):
    return np.sum(x)


def pair_sum(x, y):
    return x + y


def generator(x):
    yield x * 2


async def coroutine(x):
    return x * 2


async def async_generator(x):
    yield x


yield_lambda = lambda x: (yield x)  # noqa: E731 - a generator written as a lambda


class GeneratorCall:
    def __call__(self, x):
        yield x


def _pieces(x):
    yield x
    yield x * 2


def calls_a_generator(x):
    return sum(_pieces(x))


def counts_calls(x):
    global COUNT
    COUNT = COUNT + 1
    return x * 2


def keeps_last(x):
    global LAST
    LAST = x
    return x * 2


def make_running_total():
    seen = 0.0

    def add(x):
        nonlocal seen
        seen = seen + x.sum()
        return x * seen

    return add


def two_outputs(x):
    return x.sum(), x * 2


def copies_then_writes(x, w):
    y = x.copy()
    y[0] = w[0]
    z = w.copy()
    z[-1] = x.sum()
    return y, z


def rebinds(x, w):
    x = x * 2
    w = w + x[0]
    x += 1
    return x + w.sum()


def reads_only(p, x):
    h = x @ p["W"] + p["b"]
    return np.maximum(h, 0).sum(axis=-1), h.T


def first_of(t):
    return t[0] * 2
