"""The 18 benchmark kernels: each written for one example, as a user would, plus the best
hand-vectorised NumPy for the whole batch, and the arguments for a batch.

A kernel is a ``Kernel``: ``fn`` (per example, what astvmap maps), ``hand`` (the batch,
written by a NumPy expert), ``args(rng, batch)``, ``in_axes``, and the signature that
``np.vectorize`` needs. Optional peers (jax, torch) get their own per-example versions
in peers.py where if/while must be rewritten for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    fn: Callable
    hand: Callable
    args: Callable[[np.random.Generator, int], tuple]
    in_axes: Any
    batch: int
    signature: str | None  # for np.vectorize; None: a scalar (elementwise) kernel
    excluded: frozenset = frozenset()  # positional args np.vectorize passes through as is


# ---------------------------------------------------------------- 1 MLP layer
def mlp_layer(x, W, b):
    return np.tanh(x @ W + b)


def hand_mlp_layer(X, W, b):
    return np.tanh(X @ W + b)


def args_mlp_layer(rng, B):
    return (
        rng.standard_normal((B, 64)),
        rng.standard_normal((64, 32)) / 8.0,
        rng.standard_normal(32),
    )


# ---------------------------------------------------------------- 2 softmax
def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def hand_softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def args_softmax(rng, B):
    return (rng.standard_normal((B, 100)) * 3.0,)


# ---------------------------------------------------------------- 3 layernorm
def layernorm(x, gamma, beta):
    mu = x.mean()
    var = np.mean((x - mu) ** 2)
    return gamma * (x - mu) / np.sqrt(var + 1e-5) + beta


def hand_layernorm(X, gamma, beta):
    mu = X.mean(axis=1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
    return gamma * (X - mu) / np.sqrt(var + 1e-5) + beta


def args_layernorm(rng, B):
    return (
        rng.standard_normal((B, 128)) * 2.0 + 1.0,
        1.0 + 0.1 * rng.standard_normal(128),
        0.1 * rng.standard_normal(128),
    )


# ---------------------------------------------------------------- 4 point vs set
def point_set_distances(p, S):
    return np.sqrt(((S - p) ** 2).sum(axis=1))


def hand_point_set_distances(P, S):
    d = S[None, :, :] - P[:, None, :]
    return np.sqrt((d * d).sum(axis=2))


def args_point_set_distances(rng, B):
    return rng.standard_normal((B, 3)), rng.standard_normal((64, 3))


# ---------------------------------------------------------------- 5 attention
def attention(q, K, V):
    scores = K @ q / np.sqrt(q.shape[0])
    w = np.exp(scores - scores.max())
    w = w / w.sum()
    return w @ V


def hand_attention(Q, K, V):
    scores = (K @ Q[:, :, None])[:, :, 0] / np.sqrt(Q.shape[1])
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    w = w / w.sum(axis=1, keepdims=True)
    return (w[:, None, :] @ V)[:, 0, :]


def args_attention(rng, B):
    return (
        rng.standard_normal((B, 32)),
        rng.standard_normal((B, 24, 32)),
        rng.standard_normal((B, 24, 16)),
    )


# ---------------------------------------------------------------- 6 quaternion
def quat_to_matrix(q):
    q = q / np.linalg.norm(q)
    w, x, y, z = q[0], q[1], q[2], q[3]
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def hand_quat_to_matrix(Q):
    Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    w, x, y, z = Q[:, 0], Q[:, 1], Q[:, 2], Q[:, 3]
    out = np.empty((Q.shape[0], 3, 3))
    out[:, 0, 0] = 1 - 2 * (y * y + z * z)
    out[:, 0, 1] = 2 * (x * y - w * z)
    out[:, 0, 2] = 2 * (x * z + w * y)
    out[:, 1, 0] = 2 * (x * y + w * z)
    out[:, 1, 1] = 1 - 2 * (x * x + z * z)
    out[:, 1, 2] = 2 * (y * z - w * x)
    out[:, 2, 0] = 2 * (x * z - w * y)
    out[:, 2, 1] = 2 * (y * z + w * x)
    out[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def args_quat_to_matrix(rng, B):
    return (rng.standard_normal((B, 4)),)


# ---------------------------------------------------------------- 7 Lorenz RK4
def lorenz(s, sigma, rho, beta):
    x, y, z = s[0], s[1], s[2]
    return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


def rk4_lorenz(s, params):
    sigma, rho, beta = params[0], params[1], params[2]
    dt = 0.01
    k1 = lorenz(s, sigma, rho, beta)
    k2 = lorenz(s + 0.5 * dt * k1, sigma, rho, beta)
    k3 = lorenz(s + 0.5 * dt * k2, sigma, rho, beta)
    k4 = lorenz(s + dt * k3, sigma, rho, beta)
    return s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def _hand_lorenz(S, sigma, rho, beta):
    x, y, z = S[:, 0], S[:, 1], S[:, 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=1)


def hand_rk4_lorenz(S, params):
    sigma, rho, beta = params
    dt = 0.01
    k1 = _hand_lorenz(S, sigma, rho, beta)
    k2 = _hand_lorenz(S + 0.5 * dt * k1, sigma, rho, beta)
    k3 = _hand_lorenz(S + 0.5 * dt * k2, sigma, rho, beta)
    k4 = _hand_lorenz(S + dt * k3, sigma, rho, beta)
    return S + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def args_rk4_lorenz(rng, B):
    return rng.standard_normal((B, 3)) * 5.0, np.array([10.0, 28.0, 8.0 / 3.0])


# ---------------------------------------------------------------- 8 Kalman
def kalman_step(x, P, z, F, H, Q, R):
    x = F @ x
    P = F @ P @ F.T + Q
    y = z - H @ x
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    x = x + K @ y
    P = (np.eye(4) - K @ H) @ P
    return x, P


def hand_kalman_step(X, P, Z, F, H, Q, R):
    X = X @ F.T
    P = F @ P @ F.T + Q
    Y = Z - X @ H.T
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    X = X + (K @ Y[:, :, None])[:, :, 0]
    P = (np.eye(4) - K @ H) @ P
    return X, P


def args_kalman_step(rng, B):
    dt = 0.1
    F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=float)
    A = rng.standard_normal((B, 4, 4))
    P = A @ A.transpose(0, 2, 1) + np.eye(4)
    return (
        rng.standard_normal((B, 4)),
        P,
        rng.standard_normal((B, 2)),
        F,
        H,
        0.01 * np.eye(4),
        0.5 * np.eye(2),
    )


# ---------------------------------------------------------------- 9 4x4 solve
def solve4(A, b):
    return np.linalg.solve(A, b)


def hand_solve4(A, b):
    return np.linalg.solve(A, b[:, :, None])[:, :, 0]


def args_solve4(rng, B):
    return rng.standard_normal((B, 4, 4)) + 4.0 * np.eye(4), rng.standard_normal((B, 4))


# ---------------------------------------------------------------- 10 embedding
def embed(tokens, segments, table, segment_table, positions):
    x = table[tokens] + np.take(segment_table, segments, axis=0)
    x = x + positions[: tokens.shape[0]]
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def hand_embed(tokens, segments, table, segment_table, positions):
    x = table[tokens] + segment_table[segments] + positions[: tokens.shape[1]]
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def args_embed(rng, B):
    vocab, d, seq = 100, 16, 12
    return (
        rng.integers(0, vocab, size=(B, seq)),
        rng.integers(0, 2, size=(B, seq)),
        rng.standard_normal((vocab, d)),
        rng.standard_normal((2, d)),
        rng.standard_normal((32, d)),
    )


# ---------------------------------------------------------------- 11 Huber (if)
def huber(r, delta):
    if abs(r) < delta:
        return 0.5 * r * r
    return delta * (abs(r) - 0.5 * delta)


def hand_huber(R, delta):
    a = np.abs(R)
    return np.where(a < delta, 0.5 * R * R, delta * (a - 0.5 * delta))


def args_huber(rng, B):
    return rng.standard_normal(B) * 2.0, 1.0


# ---------------------------------------------------------------- 12 Newton (while)
def newton_sqrt(a, tol):
    y = 0.5 * (a + 1.0)
    while abs(y * y - a) > tol * a:
        y = 0.5 * (y + a / y)
    return y


def hand_newton_sqrt(a, tol):
    """The best by hand: iterate only the lanes still running (compaction)."""
    y = 0.5 * (a + 1.0)
    idx = np.flatnonzero(np.abs(y * y - a) > tol * a)
    while idx.size:
        ys, az = y[idx], a[idx]
        ys = 0.5 * (ys + az / ys)
        y[idx] = ys
        idx = idx[np.abs(ys * ys - az) > tol * az]
    return y


def args_newton_sqrt(rng, B):
    return rng.uniform(1e-3, 1e3, B), 1e-12


# ---------------------------------------------------------------- 13 Mandelbrot (break)
def escape_count(c, max_iter):
    z = 0j
    count = 0
    for _ in range(max_iter):
        if abs(z) > 2.0:
            break
        z = z * z + c
        count += 1
    return count


def hand_escape_count(c, max_iter):
    z = np.zeros_like(c)
    count = np.zeros(c.shape, dtype=int)
    idx = np.arange(c.size)
    for _ in range(max_iter):
        zs = z[idx]
        keep = np.abs(zs) <= 2.0
        idx, zs = idx[keep], zs[keep]
        if not idx.size:
            break
        z[idx] = zs * zs + c[idx]
        count[idx] += 1
    return count


def args_escape_count(rng, B):
    return rng.uniform(-2.0, 0.6, B) + 1j * rng.uniform(-1.2, 1.2, B), 100


# ---------------------------------------------------------------- 14 Horner (for)
def horner(x, coeffs):
    acc = np.zeros_like(x)
    for c in coeffs:
        acc = acc * x + c
    return acc


def hand_horner(X, coeffs):
    acc = np.zeros_like(X)
    for c in coeffs:
        acc = acc * X + c
    return acc


def args_horner(rng, B):
    return rng.uniform(-1.0, 1.0, (B, 50)), rng.standard_normal(8)


# ---------------------------------------------------------------- 15 np.convolve valid
def convolve_valid(x, k):
    return np.convolve(x, k, mode="valid")


def hand_convolve_valid(X, k):
    return sliding_window_view(X, k.shape[0], axis=1) @ k[::-1]


def args_convolve_valid(rng, B):
    return rng.standard_normal((B, 64)), rng.standard_normal(5)


# ---------------------------------------------------------------- 16 masked sum (issue 14)
def positive_stats(x):
    return x[x > 0].sum(), len(x[x > 0])


def hand_positive_stats(X):
    pos = X > 0
    return np.where(pos, X, 0.0).sum(axis=1), np.count_nonzero(pos, axis=1)


def args_positive_stats(rng, B):
    return (rng.standard_normal((B, 100)),)


# ---------------------------------------------------------------- 17 window mean (issue 14)
def window_mean(x, i):
    return x[i : i + 16].mean()


def hand_window_mean(X, i):
    return sliding_window_view(X, 16, axis=1)[np.arange(X.shape[0]), i].mean(axis=1)


def args_window_mean(rng, B):
    return rng.standard_normal((B, 256)), rng.integers(0, 256 - 16 + 1, B)


# ---------------------------------------------------------------- 18 window as an array
def window_centered(x, i):
    w = x[i : i + 16]
    return w - w.mean()


def hand_window_centered(X, i):
    W = sliding_window_view(X, 16, axis=1)[np.arange(X.shape[0]), i]
    return W - W.mean(axis=1, keepdims=True)


KERNELS = [
    Kernel("mlp_layer", mlp_layer, hand_mlp_layer, args_mlp_layer, (0, None, None), 20_000,
           "(n),(n,m),(m)->(m)"),
    Kernel("softmax", softmax, hand_softmax, args_softmax, 0, 20_000, "(n)->(n)"),
    Kernel("layernorm", layernorm, hand_layernorm, args_layernorm, (0, None, None), 20_000,
           "(n),(n),(n)->(n)"),
    Kernel("point_set_dist", point_set_distances, hand_point_set_distances,
           args_point_set_distances, (0, None), 20_000, "(d),(m,d)->(m)"),
    Kernel("attention_1q", attention, hand_attention, args_attention, 0, 10_000,
           "(d),(k,d),(k,v)->(v)"),
    Kernel("quat_to_matrix", quat_to_matrix, hand_quat_to_matrix, args_quat_to_matrix, 0,
           200_000, "(q)->(r,r)"),
    Kernel("rk4_lorenz", rk4_lorenz, hand_rk4_lorenz, args_rk4_lorenz, (0, None), 100_000,
           "(d),(p)->(d)"),
    Kernel("kalman_step", kalman_step, hand_kalman_step, args_kalman_step,
           (0, 0, 0, None, None, None, None), 20_000,
           "(n),(n,n),(m),(n,n),(m,n),(n,n),(m,m)->(n),(n,n)"),
    Kernel("solve_4x4", solve4, hand_solve4, args_solve4, 0, 50_000, "(n,n),(n)->(n)"),
    Kernel("embedding", embed, hand_embed, args_embed, (0, 0, None, None, None), 20_000,
           "(s),(s),(v,d),(g,d),(p,d)->(s,d)"),
    Kernel("huber_if", huber, hand_huber, args_huber, (0, None), 200_000, None),
    Kernel("newton_while", newton_sqrt, hand_newton_sqrt, args_newton_sqrt, (0, None), 100_000,
           None),
    Kernel("mandelbrot_break", escape_count, hand_escape_count, args_escape_count, (0, None),
           20_000, None, frozenset({1})),
    Kernel("horner_for", horner, hand_horner, args_horner, (0, None), 50_000, "(n),(c)->(n)"),
    Kernel("convolve_valid", convolve_valid, hand_convolve_valid, args_convolve_valid, (0, None),
           20_000, "(n),(k)->(m)"),
    Kernel("masked_sum", positive_stats, hand_positive_stats, args_positive_stats, 0, 20_000,
           "(n)->(),()"),
    Kernel("window_mean", window_mean, hand_window_mean, args_window_mean, 0, 20_000,
           "(n),()->()"),
    Kernel("window_array", window_centered, hand_window_centered, args_window_mean, 0, 20_000,
           "(n),()->(w)"),
]  # fmt: skip
