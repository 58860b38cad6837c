"""Gathers and scatters: indexing with batched integers."""

import numpy as np


def lookup(table, token):
    return table[token]


def pick(x, i):
    return x[i]


def pick_column(M, j):
    return M[:, j]


def pick_pair(M, i, j):
    return M[i, j]


def pick_rows(x, idx):
    return x[idx]


def take_along(x, i):
    return x[i, ::2]


def scatter_add_histogram(values, bins):
    counts = np.zeros(bins)
    idx = np.clip((values * bins).astype(int), 0, bins - 1)
    for k in range(values.shape[0]):
        counts[idx[k]] += 1
    return counts


def set_one(x, i, v):
    out = x.copy()
    out[i] = v
    return out


def one_hot(label, n):
    out = np.zeros(n)
    out[label] = 1.0
    return out


def mask_sum(x):
    return x[x > 0].sum()


def argmax_value(x):
    return x[np.argmax(x)]
