"""jax.jit(jax.vmap(...)) and torch.func.vmap versions of the kernels, when installed.

Straight-line kernels are the same per-example source run on ``jax.numpy``: the
function is rebuilt on a copy of its globals with ``np`` bound to ``jnp``. The three
with data-dependent control flow are rewritten the way each library needs (``where``
for an if, ``lax.while_loop`` for a while, a masked ``fori_loop`` for a break). torch
gets its own per-example code (its API differs from NumPy's in names and arguments).
A kernel a peer cannot express is left out of its column ("-").
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np

from . import kernels as K


def _rebind(fn: Callable, **names: Any) -> Callable:
    """``fn`` with some of its global names bound to other objects."""
    g = {**fn.__globals__, **names}
    return types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)


# ---------------------------------------------------------------------- jax
def jax_kernels() -> dict[str, Callable] | None:
    """Per kernel name: a function of the NumPy batch arguments returning NumPy output."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)  # float64, as NumPy computes
    lorenz = _rebind(K.lorenz, np=jnp)
    plain = {
        "mlp_layer": K.mlp_layer,
        "softmax": K.softmax,
        "layernorm": K.layernorm,
        "point_set_dist": K.point_set_distances,
        "attention_1q": K.attention,
        "quat_to_matrix": K.quat_to_matrix,
        "kalman_step": K.kalman_step,
        "solve_4x4": K.solve4,
        "embedding": K.embed,
        "horner_for": K.horner,
        "convolve_valid": K.convolve_valid,
    }
    per_example = {name: _rebind(fn, np=jnp) for name, fn in plain.items()}
    per_example["rk4_lorenz"] = _rebind(K.rk4_lorenz, np=jnp, lorenz=lorenz)

    def huber(r, delta):
        a = jnp.abs(r)
        return jnp.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))

    def newton_sqrt(a, tol):
        def running(y):
            return jnp.abs(y * y - a) > tol * a

        return jax.lax.while_loop(running, lambda y: 0.5 * (y + a / y), 0.5 * (a + 1.0))

    def escape_count(c):
        def step(_, state):
            z, count, done = state
            done = done | (jnp.abs(z) > 2.0)
            z = jnp.where(done, z, z * z + c)
            return z, count + jnp.where(done, 0, 1), done

        _, count, _ = jax.lax.fori_loop(0, 100, step, (0j * c, 0, False))
        return count

    per_example.update(huber_if=huber, newton_while=newton_sqrt)
    out: dict[str, Callable] = {}
    for k in K.KERNELS:
        if k.name not in per_example and k.name != "mandelbrot_break":
            continue  # x[x > 0], x[i:i + k]: jax.vmap takes neither as written
        if k.name == "mandelbrot_break":
            f = jax.jit(jax.vmap(escape_count))
            out[k.name] = _jax_call(lambda c, _max_iter, f=f: f(c))
            continue
        f = jax.jit(jax.vmap(per_example[k.name], in_axes=k.in_axes))
        out[k.name] = _jax_call(f)
    return out


def _jax_call(f: Callable) -> Callable:
    def call(*args: Any) -> Any:
        out = f(*args)
        # Wait for the result (jax dispatches asynchronously) and hand back NumPy.
        if isinstance(out, tuple):
            return tuple(np.asarray(o.block_until_ready()) for o in out)
        return np.asarray(out.block_until_ready())

    return call


# -------------------------------------------------------------------- torch
def torch_kernels() -> dict[str, Callable] | None:
    try:
        import torch
        from torch.func import vmap
    except ImportError:
        return None
    torch.set_num_threads(1)

    def mlp_layer(x, W, b):
        return torch.tanh(x @ W + b)

    def softmax(z):
        e = torch.exp(z - z.max())
        return e / e.sum()

    def layernorm(x, gamma, beta):
        mu = x.mean()
        var = ((x - mu) ** 2).mean()
        return gamma * (x - mu) / torch.sqrt(var + 1e-5) + beta

    def point_set_dist(p, S):
        return torch.sqrt(((S - p) ** 2).sum(dim=1))

    def attention(q, Km, V):
        scores = Km @ q / q.shape[0] ** 0.5
        w = torch.exp(scores - scores.max())
        return (w / w.sum()) @ V

    def quat(q):
        q = q / torch.linalg.norm(q)
        w, x, y, z = q[0], q[1], q[2], q[3]
        rows = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
        return torch.stack([torch.stack(r) for r in rows])

    def lorenz(s, sigma, rho, beta):
        x, y, z = s[0], s[1], s[2]
        return torch.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    def rk4(s, params):
        sigma, rho, beta = params[0], params[1], params[2]
        dt = 0.01
        k1 = lorenz(s, sigma, rho, beta)
        k2 = lorenz(s + 0.5 * dt * k1, sigma, rho, beta)
        k3 = lorenz(s + 0.5 * dt * k2, sigma, rho, beta)
        k4 = lorenz(s + dt * k3, sigma, rho, beta)
        return s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    def kalman(x, P, z, F, H, Q, R):
        x = F @ x
        P = F @ P @ F.T + Q
        y = z - H @ x
        S = H @ P @ H.T + R
        Kg = P @ H.T @ torch.linalg.inv(S)
        x = x + Kg @ y
        P = (torch.eye(4, dtype=P.dtype) - Kg @ H) @ P
        return x, P

    def solve(A, b):
        return torch.linalg.solve(A, b)

    def embed(tokens, segments, table, segment_table, positions):
        x = table[tokens] + segment_table[segments] + positions[: tokens.shape[0]]
        return x / torch.linalg.norm(x, dim=-1, keepdim=True)

    def huber(r, delta):
        a = torch.abs(r)
        return torch.where(a < delta, 0.5 * r * r, delta * (a - 0.5 * delta))

    def horner(x, coeffs):
        acc = torch.zeros_like(x)
        for i in range(coeffs.shape[0]):
            acc = acc * x + coeffs[i]
        return acc

    def convolve(x, k):
        return x.unfold(0, k.shape[0], 1) @ k.flip(0)

    per_example = {
        "mlp_layer": mlp_layer,
        "softmax": softmax,
        "layernorm": layernorm,
        "point_set_dist": point_set_dist,
        "attention_1q": attention,
        "quat_to_matrix": quat,
        "rk4_lorenz": rk4,
        "kalman_step": kalman,
        "solve_4x4": solve,
        "embedding": embed,
        "huber_if": huber,
        "horner_for": horner,
        "convolve_valid": convolve,
        # newton_while and mandelbrot_break: torch.func.vmap has no data-dependent
        # while/break; they are left out of its column.
    }
    out: dict[str, Callable] = {}
    for k in K.KERNELS:
        if k.name not in per_example:
            continue
        f = vmap(per_example[k.name], in_dims=k.in_axes)
        out[k.name] = _torch_call(f, torch)
    return out


def _torch_call(f: Callable, torch: Any) -> Callable:
    def call(*args: Any) -> Any:
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        out = f(*targs)
        if isinstance(out, tuple):
            return tuple(o.numpy() for o in out)
        return out.numpy()

    return call
