"""One oracle sweep over the rules: every case runs for every batched/unbatched mix of
its arguments, with the batch axis first (in_axes 0) and last (-1, where the example's
rank allows), at batch sizes 1 and 3, against the per-example loop. A case must run
through its rule: the per-example fallback (a PerformanceWarning) fails it.

Each function is built once per layout (the second batch size reuses it); the inputs
for a batch come from one vectorised draw. ``test_every_rule_is_tested`` checks that
each function in the registry has a case here or is called in another rule test.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from astvmap import PerformanceWarning, rules, vmap
from astvmap.testing import assert_same, loop


# --------------------------------------------------------------- argument kinds
class Spec:
    """One argument: how to draw it for a given leading (batch) shape."""

    def __init__(self, draw, shape, fixed=False):
        self.draw, self.shape, self.fixed = draw, tuple(shape), fixed

    @property
    def rank(self):
        return len(self.shape)

    def __call__(self, rng, lead=()):
        out = self.draw(rng, lead + self.shape)
        return out if out.ndim else out[()]


def F(*shape):
    return Spec(lambda rng, s: rng.standard_normal(s), shape)


def POS(*shape):
    return Spec(lambda rng, s: rng.uniform(0.5, 2.0, s), shape)


def I(lo, hi, *shape):  # noqa: E743 - an integer spec
    return Spec(lambda rng, s: rng.integers(lo, hi, s), shape)


def U8(*shape):
    return Spec(lambda rng, s: rng.integers(0, 256, s).astype(np.uint8), shape)


def B(*shape):
    return Spec(lambda rng, s: rng.random(s) < 0.5, shape)


def SORTED(*shape):
    return Spec(lambda rng, s: np.sort(rng.standard_normal(s), axis=-1), shape)


def SPD(n):
    def draw(rng, s):
        m = rng.standard_normal(s)
        return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)

    return Spec(draw, (n, n))


def CHOL(n):
    spd = SPD(n)
    return Spec(lambda rng, s: np.linalg.cholesky(spd.draw(rng, s)), (n, n))


def WELL(n):
    return Spec(lambda rng, s: 2 * n * np.eye(n) + rng.standard_normal(s), (n, n))


def FIXED(spec):
    """Always unbatched (an index list, a shared design matrix)."""
    return Spec(spec.draw, spec.shape, fixed=True)


def MAPPED(spec):
    """Always batched: the array an in-place function writes to. (Writing batched values
    into an unbatched array falls back to the loop: the rule cannot give the caller's
    name a batch axis.)"""
    return Spec(spec.draw, spec.shape, fixed="batched")


# ------------------------------------------------------------------ functions
def fft_(x):
    return np.fft.fft(x)


def ifft_n(x):
    return np.fft.ifft(x, n=6, axis=0)


def rfft_(x):
    return np.fft.rfft(x, norm="ortho")


def irfft_(x):
    return np.fft.irfft(x)


def hfft_(x):
    return np.fft.hfft(x)


def ihfft_(x):
    return np.fft.ihfft(x)


def fft2_(x):
    return np.fft.fft2(x)


def ifft2_(x):
    return np.fft.ifft2(x, axes=(0, 1))


def rfft2_(x):
    return np.fft.rfft2(x)


def irfft2_(x):
    return np.fft.irfft2(x)


def fftn_(x):
    return np.fft.fftn(x)


def ifftn_s(x):
    return np.fft.ifftn(x, s=(2, 3))


def rfftn_(x):
    return np.fft.rfftn(x)


def irfftn_(x):
    return np.fft.irfftn(x, axes=(0,))


def fftshift_(x):
    return np.fft.fftshift(x)


def ifftshift_(x):
    return np.fft.ifftshift(x, axes=1)


def fftfreq_(d):
    return np.fft.fftfreq(5, d)


def rfftfreq_(d):
    return np.fft.rfftfreq(6, d=d)


def convolve_full(a, v):
    return np.convolve(a, v)


def convolve_same(a, v):
    return np.convolve(a, v, "same")


def convolve_valid(a, v):
    return np.convolve(a, v, mode="valid")


def correlate_valid(a, v):
    return np.correlate(a, v)


def correlate_same(a, v):
    return np.correlate(a, v, "same")


def correlate_full(a, v):
    return np.correlate(a, v, "full")


def searchsorted_(a, v):
    return np.searchsorted(a, v)


def searchsorted_right(a, v):
    return np.searchsorted(a, v, side="right")


def digitize_(x, bins):
    return np.digitize(x, bins)


def interp_(x, xp, fp):
    return np.interp(x, xp, fp)


def interp_lr(x, xp, fp):
    return np.interp(x, xp, fp, left=-1.0, right=2.0)


def polyval_(p, x):
    return np.polyval(p, x)


def trapezoid_(y, x):
    return np.trapezoid(y, x)


def trapezoid_axis(y, x):
    return np.trapezoid(y, x, axis=0)


def trapezoid_dx(y):
    return np.trapezoid(y, dx=0.5)


def ediff1d_(x):
    return np.ediff1d(x, to_begin=[0.0], to_end=9.0)


def unwrap_(x):
    return np.unwrap(x * 4)


def polyadd_(a, b):
    return np.polyadd(a, b)


def polysub_(a, b):
    return np.polysub(a, b)


def polymul_(a, b):
    return np.polymul(a, b)


def polyder_(p):
    return np.polyder(p, 2)


def polyint_(p):
    return np.polyint(p, 2, 0.5)


def polyfit_(x, y):
    return np.polyfit(x, y, 2)


def isin_(e, t):
    return np.isin(e, t)


def isin_invert(e, t):
    return np.isin(e, t, invert=True)


def unravel_index_(i):
    return np.unravel_index(i, (3, 4))


def ravel_multi_index_(i, j):
    return np.ravel_multi_index((i, j), (3, 4))


def packbits_(x):
    return np.packbits(x, axis=-1)


def unpackbits_(x):
    return np.unpackbits(x)


def lexsort_(a, b):
    return np.lexsort((a, b))


def lexsort_array(k):
    return np.lexsort(k)


def dot_method(a, b):
    return a.dot(b)


def tensordot_(a, b):
    return np.tensordot(a, b)


def tensordot_axes(a, b):
    return np.linalg.tensordot(a, b, axes=([0], [1]))


def kron_(a, b):
    return np.kron(a, b)


def multi_dot_(a, b, c):
    return np.linalg.multi_dot([a, b, c])


def lstsq_(a, b):
    return np.linalg.lstsq(a, b, rcond=None)


def cond_(a):
    return np.linalg.cond(a)


def svdvals_(a):
    return np.linalg.svdvals(a)


def matrix_transpose_(a):
    return np.matrix_transpose(a) + np.linalg.matrix_transpose(a)


def linalg_diagonal(a):
    return np.linalg.diagonal(a, offset=1)


def linalg_trace(a):
    return np.linalg.trace(a)


def einsum_implicit(a, b):
    return np.einsum("ij,jk", a, b)


def einsum_trace(a):
    return np.einsum("ii", a)


def einsum_ellipsis(a, b):
    return np.einsum("...ij,...j->...i", a, b)


def einsum_ellipsis_implicit(a, b):
    return np.einsum("...j,j", a, b)


def linalg_matmul(a, b):
    return np.linalg.matmul(a, b)


def linalg_outer(a, b):
    return np.linalg.outer(a, b)


def matrix_norm_(a):
    return np.linalg.matrix_norm(a, ord="nuc")


def vector_norm_(a):
    return np.linalg.vector_norm(a, ord=3)


def vector_norm_axis(a):
    return np.linalg.vector_norm(a, axis=0, keepdims=True)


def linalg_cross(a, b):
    return np.linalg.cross(a, b)


def linalg_vecdot(a, b):
    return np.linalg.vecdot(a, b)


def cross_(a, b):
    return np.cross(a, b)


def cross_axis(a, b):
    return np.cross(a, b, axisa=0, axisb=0)


def norm_ord(a, o):
    return np.linalg.norm(a, ord=o)


def norm_fro(a):
    return np.linalg.norm(a, "fro") + np.linalg.norm(a, -2) + np.linalg.norm(a, np.inf)


def norm_vec(a):
    return np.linalg.norm(a, 1) + np.linalg.norm(a, -np.inf) + np.linalg.norm(a, 0)


def matvec_(a, x):
    return np.matvec(a, x)


def vecmat_(x, a):
    return np.vecmat(x, a)


def vecdot_(a, b):
    return np.vecdot(a, b)


def squeeze_(x):
    return np.squeeze(x)


def diag_vector(v):
    return np.diag(v) + np.diag(v, 0)


def diag_k(v):
    return np.diag(v, 1)


def diag_negative_k(v):
    return np.diag(v, k=-2)


def diag_matrix(m):
    return np.diag(m, -1)


def diagflat_(m):
    return np.diagflat(m, 1)


def triu_(m):
    return np.triu(m, 1)


def tril_(m):
    return np.tril(m)


def rot90_(m):
    return np.rot90(m, 3)


def broadcast_arrays_(a, b):
    return np.broadcast_arrays(a, b)


def meshgrid_(x, y):
    return np.meshgrid(x, y)


def meshgrid_sparse(x, y):
    return np.meshgrid(x, y, indexing="ij", sparse=True)


def unstack_(x):
    a, b, c = np.unstack(x, axis=1)
    return a + 2 * b + 3 * c


def rollaxis_(x):
    return np.rollaxis(x, 2, 0)


def resize_(x):
    return np.resize(x, (3, 5))


def dstack_(a, b):
    return np.dstack([a, b])


def hsplit_(x):
    return np.hsplit(x, 2)


def vsplit_(x):
    return np.vsplit(x, [1])


def dsplit_(x):
    return np.dsplit(x, 2)


def append_(x, v):
    return np.append(x, v)


def append_axis(x, v):
    return np.append(x, v, axis=1)


def delete_(x):
    return np.delete(x, [0, 2])


def delete_axis(x):
    return np.delete(x, 1, axis=1)


def insert_scalar(x, v):
    return np.insert(x, 1, v)


def insert_vector(x, v):
    return np.insert(x, 2, v)


def insert_list(x, v):
    return np.insert(x, [0, 3], v)


def partition_(x):
    return np.sort(np.partition(x, 2)[..., :2], axis=-1)


def argpartition_(x):
    return np.argpartition(x, 1, axis=0)[1]


def partition_method(x):
    y = x.copy()
    y.partition(2)
    return y[..., 2]


def argpartition_method(x):
    return x.argpartition(0)[..., 0]


def cumulative_sum_(x):
    return np.cumulative_sum(x, axis=1, include_initial=True)


def cumulative_prod_(x):
    return np.cumulative_prod(x)


def compress_(x):
    return np.compress([True, False, True], x, axis=1)


def sort_complex_(x):
    return np.sort_complex(x)


def gradient_(x):
    return np.gradient(x)


def gradient_axis(x):
    return np.gradient(x, 0.5, axis=1)


def fill_diagonal_(x, v):
    y = x.copy()
    np.fill_diagonal(y, v)
    return y


def put_along_axis_(x, i, v):
    y = x.copy()
    np.put_along_axis(y, i, v, axis=1)
    return y


def quantile_q(x, q):
    return np.quantile(x, q)


def percentile_q(x, q):
    return np.percentile(x, q, axis=0)


def nanquantile_list(x):
    return np.nanquantile(x, [0.25, 0.75], axis=-1)


def allclose_(a, b):
    return np.allclose(a, b)


def allclose_near(a):
    return np.allclose(a, a + 1e-12)


def array_equal_(a, b):
    return np.array_equal(a, b)


def array_equal_self(a):
    return np.array_equal(a, a.copy())


def array_equal_shapes(a, b):
    return np.array_equal(a, b)


def average_(x, w):
    return np.average(x, axis=0, weights=w)


def average_middle_axis(x, w):
    return np.average(x, axis=1, weights=w, keepdims=True)


def searchsorted_scalar(a):
    return np.searchsorted(a, 0.5)


def ufunc_outer_dtype(a, b):
    return np.add.outer(a, b, dtype=np.float32)


def average_same_shape(x, w):
    return np.average(x, weights=w)


def average_plain(x):
    return np.average(x, axis=1)


def cov_(x):
    return np.cov(x)


def cov_pair(x, y):
    return np.cov(x, y, bias=True)


def cov_columns(x):
    return np.cov(x, rowvar=False, ddof=0)


def corrcoef_(x):
    return np.corrcoef(x)


def corrcoef_pair(x, y):
    return np.corrcoef(x, y)


def scalar_types(x):
    return (
        np.float64(x) + np.float32(x) + np.float16(x) + np.double(x) + np.single(x),
        np.int8(x) + np.int16(x) + np.int32(x) + np.int64(x) + np.int_(x) + np.intp(x),
        np.uint8(x) + np.uint16(x) + np.uint32(x) + np.uint64(x) + np.uint(x) + np.uintp(x),
        np.complex64(x) + np.complex128(x) + np.cdouble(x) + np.csingle(x),
        np.bool_(x) & np.bool(x),
        np.longdouble(x) + np.clongdouble(x),
    )


def astype_(x):
    return np.astype(x, np.int32)


def isposinf_(x):
    return np.isposinf(x) | np.isneginf(x)


def iscomplexobj_(x):
    return np.iscomplexobj(x) + np.isrealobj(x) + x


def select_(a, b):
    return np.select([a > 0, b > 0], [a, b], default=-1.0)


def choose_(i, a, b):
    return np.choose(i, [a, b])


def vander_(x):
    return np.vander(x, 3)


def vander_increasing(x):
    return np.vander(x, increasing=True)


def dtype_queries(x):
    ok = np.can_cast(x, np.float64) and np.isdtype(x.dtype, "real floating")
    ok = ok and np.issubdtype(x.dtype, np.floating)
    wide = np.promote_types(x.dtype, np.int8) == np.result_type(x, 1)
    tiny = np.finfo(x.dtype).eps < 1e-3 and np.iinfo(np.int8).max == 127
    n = len(np.broadcast_shapes(x.shape))
    return x * (1.0 if ok else 2.0) + (3.0 if wide and tiny else 4.0) + n


def iterable_(x):
    return np.iterable(x) + np.isscalar(x) + x


def indices_from(x):
    return x[np.triu_indices_from(x, 1)] + x[np.tril_indices_from(x)].sum()


def diag_indices_from_(x):
    return x[np.diag_indices_from(x)]


def windows(x):
    w = np.bartlett(4) + np.blackman(4) + np.hamming(4) + np.hanning(4) + np.kaiser(4, 2.0)
    return x * w + np.indices((2, 2)).sum()


def elementwise_misc(x):
    return (
        np.angle(x) + np.conjugate(x) + np.iscomplex(x) + np.isreal(x),
        np.nancumprod(x),
        np.copy(x) + np.asanyarray(x) + np.ascontiguousarray(x),
    )


def math_tan(x):
    return math.tan(x) + (1.0 if callable(np.sum) else 0.0)


def isnat_(t):
    return np.isnat(t)


def row_stack_(a, b):
    return np.row_stack([a, b])


def creation_misc(x):
    i, j = np.diag_indices(3)
    k, m = np.tril_indices(3)
    p, q = np.triu_indices(3, 1)
    grid = np.geomspace(1.0, 2.0, 3) + np.logspace(0.0, 1.0, 3) + np.tri(3)
    return x[i, j] + x[k, m].sum() + x[p, q].sum() + grid


def eig_(a):
    return np.linalg.eig(a)


def eigvals_(a):
    return np.linalg.eigvals(a)


def _centre(row):
    return row - np.mean(row)


def _span(row):
    return np.max(row) - np.min(row)


def apply_along_axis_(x):
    return np.apply_along_axis(_centre, 1, x)


def apply_along_axis_scalar(x):
    return np.apply_along_axis(_span, 0, x)


def ufunc_reduce(x):
    return np.maximum.reduce(x) + np.add.reduce(x, axis=None) + np.multiply.reduce(x, axis=1)


def ufunc_reduce_keepdims(x):
    return np.add.reduce(x, axis=(0, 1), keepdims=True, initial=1.0)


def ufunc_accumulate(x):
    return np.add.accumulate(x, axis=1)


def ufunc_reduceat(x):
    return np.add.reduceat(x, [0, 2], axis=-1)


def ufunc_outer(a, b):
    return np.multiply.outer(a, b)


def ufunc_at(x, i, v):
    y = x.copy()
    np.add.at(y, i, v)
    return y


def ufunc_at_scalar(x, i):
    y = x.copy()
    np.maximum.at(y, i, 0.5)
    return y


# ---------------------------------------------------------------------- cases
CASES = [
    (fft_, [F(3, 4)]),
    (ifft_n, [F(4, 3)]),
    (rfft_, [F(5)]),
    (irfft_, [F(2, 4)]),
    (hfft_, [F(4)]),
    (ihfft_, [F(3, 5)]),
    (fft2_, [F(3, 4)]),
    (ifft2_, [F(2, 3, 4)]),
    (rfft2_, [F(3, 4)]),
    (irfft2_, [F(2, 3, 4)]),
    (fftn_, [F(2, 3, 4)]),
    (ifftn_s, [F(3, 4)]),
    (rfftn_, [F(3, 4)]),
    (irfftn_, [F(4, 3)]),
    (fftshift_, [F(3, 4)]),
    (ifftshift_, [F(3, 4)]),
    (fftfreq_, [POS()]),
    (rfftfreq_, [POS()]),
    (convolve_full, [F(5), F(3)]),
    (convolve_full, [F(2), F(4)]),
    (convolve_same, [F(5), F(3)]),
    (convolve_same, [F(2), F(5)]),
    (convolve_valid, [F(5), F(2)]),
    (convolve_valid, [F(3), F(4)]),
    (correlate_valid, [F(5), F(3)]),
    (correlate_valid, [F(2), F(4)]),
    (correlate_same, [F(5), F(2)]),
    (correlate_same, [F(2), F(5)]),
    (correlate_full, [F(4), F(3)]),
    (searchsorted_, [SORTED(5), F(2, 3)]),
    (searchsorted_right, [SORTED(4), I(-2, 3, 6)]),
    (digitize_, [F(2, 3), FIXED(SORTED(4))]),
    (interp_, [F(2, 3), SORTED(5), F(5)]),
    (interp_lr, [F(6), SORTED(4), F(4)]),
    (polyval_, [F(4), F(2, 3)]),
    (trapezoid_, [F(3, 5), SORTED(5)]),
    (trapezoid_, [F(5), SORTED(5)]),
    (trapezoid_axis, [F(5, 3), F(5, 3)]),
    (trapezoid_dx, [F(2, 5)]),
    (ediff1d_, [F(2, 3)]),
    (unwrap_, [F(3, 5)]),
    (polyadd_, [F(4), F(2)]),
    (polysub_, [F(2), F(3)]),
    (polymul_, [F(3), F(2)]),
    (polyder_, [F(4)]),
    (polyint_, [F(3)]),
    (polyfit_, [FIXED(F(6)), F(6)]),
    (isin_, [I(0, 5, 2, 3), I(0, 5, 4)]),
    (isin_invert, [I(0, 5, 3), I(0, 5, 2)]),
    (unravel_index_, [I(0, 12, 5)]),
    (ravel_multi_index_, [I(0, 3, 5), I(0, 4, 5)]),
    (packbits_, [Spec(lambda rng, s: rng.integers(0, 2, s).astype(np.uint8), (3, 9))]),
    (unpackbits_, [U8(2, 3)]),
    (lexsort_, [I(0, 3, 6), I(0, 3, 6)]),
    (lexsort_array, [I(0, 3, 2, 6)]),
    (dot_method, [F(3, 4), F(4)]),
    (dot_method, [F(4), F(4, 2)]),
    (tensordot_, [F(2, 3, 4), F(3, 4)]),
    (tensordot_axes, [F(3, 2), F(4, 3)]),
    (kron_, [F(2, 3), F(2)]),
    (kron_, [F(2), F(3, 2)]),
    (multi_dot_, [F(3), F(3, 4), F(4, 2)]),
    (lstsq_, [FIXED(F(5, 3)), F(5)]),
    (lstsq_, [FIXED(F(5, 3)), F(5, 2)]),
    (cond_, [WELL(3)]),
    (svdvals_, [F(3, 4)]),
    (matrix_transpose_, [F(2, 3, 4)]),
    (linalg_diagonal, [F(3, 4)]),
    (linalg_trace, [F(2, 3, 3)]),
    (einsum_implicit, [F(2, 3), F(3, 4)]),
    (einsum_trace, [F(3, 3)]),
    (einsum_ellipsis, [F(2, 3, 4), F(4)]),
    (einsum_ellipsis_implicit, [F(2, 4), F(4)]),
    (linalg_matmul, [F(3, 4), F(4)]),
    (linalg_outer, [F(3), F(2)]),
    (matrix_norm_, [F(3, 4)]),
    (vector_norm_, [F(3, 4)]),
    (vector_norm_axis, [F(3, 4)]),
    (linalg_cross, [F(3), F(2, 3)]),
    (linalg_vecdot, [F(2, 4), F(4)]),
    (cross_, [F(3), F(2, 3)]),
    (cross_axis, [F(3, 2), F(3, 2)]),
    (norm_fro, [F(3, 4)]),
    (norm_vec, [F(5)]),
    (norm_ord, [F(3, 3), FIXED(Spec(lambda rng, s: np.array(2), ()))]),
    (matvec_, [F(3, 4), F(4)]),
    (matvec_, [F(2, 3, 4), F(4)]),
    (vecmat_, [F(3), F(3, 4)]),
    (vecdot_, [F(2, 4), F(4)]),
    (squeeze_, [F(1, 3, 1)]),
    (diag_vector, [F(3)]),
    (diag_k, [F(3)]),
    (diag_negative_k, [I(-5, 5, 3)]),
    (diag_matrix, [F(3, 4)]),
    (diagflat_, [F(2, 2)]),
    (triu_, [F(3, 4)]),
    (triu_, [F(4)]),
    (tril_, [F(2, 3, 3)]),
    (rot90_, [F(2, 3)]),
    (rot90_, [F(2, 3, 4)]),
    (broadcast_arrays_, [F(3), F(2, 3)]),
    (meshgrid_, [F(3), F(2)]),
    (meshgrid_sparse, [F(3), F(2)]),
    (unstack_, [F(2, 3)]),
    (rollaxis_, [F(2, 3, 4)]),
    (resize_, [F(2, 3)]),
    (resize_, [F(4)]),
    (dstack_, [F(3), F(3)]),
    (dstack_, [F(2, 3), F(2, 3)]),
    (hsplit_, [F(3, 4)]),
    (vsplit_, [F(3, 4)]),
    (dsplit_, [F(2, 3, 4)]),
    (append_, [F(2, 3), F(2)]),
    (append_axis, [F(2, 3), F(2, 1)]),
    (delete_, [F(2, 3)]),
    (delete_axis, [F(2, 3)]),
    (insert_scalar, [F(4), F()]),
    (insert_vector, [F(4), F(3)]),
    (insert_list, [F(4), F(2)]),
    (partition_, [F(3, 5)]),
    (argpartition_, [F(4, 3)]),
    (partition_method, [F(2, 5)]),
    (argpartition_method, [F(2, 5)]),
    (cumulative_sum_, [F(2, 3)]),
    (cumulative_prod_, [F(4)]),
    (compress_, [F(2, 3)]),
    (sort_complex_, [F(5)]),
    (gradient_, [F(5)]),
    (gradient_, [F(3, 4)]),
    (gradient_axis, [F(3, 4)]),
    (fill_diagonal_, [MAPPED(F(3, 3)), F()]),
    (fill_diagonal_, [MAPPED(F(3, 3)), F(3)]),
    (put_along_axis_, [MAPPED(F(3, 4)), I(0, 4, 3, 2), F(3, 2)]),
    (quantile_q, [F(2, 3), FIXED(Spec(lambda rng, s: rng.uniform(0, 1, s), (2,)))]),
    (quantile_q, [FIXED(F(5)), Spec(lambda rng, s: rng.uniform(0, 1, s), (3,))]),
    (percentile_q, [F(4, 2), FIXED(Spec(lambda rng, s: rng.uniform(0, 100, s), (2, 2)))]),
    (nanquantile_list, [F(2, 5)]),
    (allclose_, [F(2, 3), F(2, 3)]),
    (allclose_near, [F(2, 3)]),
    (array_equal_, [I(0, 2, 3), I(0, 2, 3)]),
    (array_equal_self, [F(2, 3)]),
    (array_equal_shapes, [F(3), F(2)]),
    (average_, [F(4, 2), POS(4)]),
    (average_middle_axis, [F(2, 4, 3), POS(4)]),
    (average_same_shape, [F(3, 2), POS(3, 2)]),
    (searchsorted_scalar, [SORTED(5)]),
    (ufunc_outer_dtype, [F(3), F(2)]),
    (average_plain, [I(0, 9, 2, 3)]),
    (cov_, [F(3, 5)]),
    (cov_, [F(5)]),
    (cov_pair, [F(5), F(5)]),
    (cov_columns, [F(5, 3)]),
    (corrcoef_, [F(3, 5)]),
    (corrcoef_pair, [F(5), F(5)]),
    (scalar_types, [I(0, 3, 4)]),
    (scalar_types, [I(0, 3)]),
    (astype_, [F(3)]),
    (isposinf_, [Spec(lambda rng, s: np.where(rng.random(s) < 0.5, np.inf, -np.inf), (3,))]),
    (iscomplexobj_, [F(3)]),
    (select_, [F(3), F(2, 3)]),
    (choose_, [I(0, 2, 4), F(4), F()]),
    (vander_, [F(4)]),
    (vander_increasing, [I(-3, 3, 4)]),
    (dtype_queries, [F(3)]),
    (iterable_, [F(3)]),
    (iterable_, [F()]),
    (indices_from, [F(3, 4)]),
    (diag_indices_from_, [F(3, 3)]),
    (windows, [F(4)]),
    (elementwise_misc, [F(3)]),
    (math_tan, [F()]),
    (
        isnat_,
        [
            Spec(
                lambda rng, s: np.where(
                    rng.random(s) < 0.5, np.datetime64("NaT"), np.datetime64("2026-01-01")
                ),
                (3,),
            )
        ],
    ),
    (row_stack_, [F(3), F(3)]),
    (creation_misc, [F(3, 3)]),
    (eig_, [SPD(3)]),
    (eigvals_, [SPD(3)]),
    (apply_along_axis_, [F(2, 3, 4)]),
    (apply_along_axis_scalar, [F(3, 4)]),
    (ufunc_reduce, [F(3, 3)]),
    (ufunc_reduce_keepdims, [F(3, 4)]),
    (ufunc_accumulate, [F(3, 4)]),
    (ufunc_reduceat, [F(2, 4)]),
    (ufunc_outer, [F(3), F(2, 2)]),
    (ufunc_at, [MAPPED(F(4)), I(0, 4, 6), F(6)]),
    (ufunc_at, [MAPPED(F(3, 2)), I(0, 3, 4), F(4, 2)]),
    (ufunc_at_scalar, [MAPPED(F(4)), I(0, 4, 3)]),
]


# ------------------------------------------------------------- scipy, if any
try:
    import scipy.linalg
    import scipy.special
except ImportError:  # pragma: no cover - scipy is optional
    pass
else:

    def logsumexp_(x):
        return scipy.special.logsumexp(x)

    def logsumexp_weighted(x, w):
        return scipy.special.logsumexp(x, axis=1, b=w, return_sign=True)

    def softmax_(x):
        return scipy.special.softmax(x, axis=0)

    def log_softmax_(x):
        return scipy.special.log_softmax(x)

    def expm_(x):
        return scipy.linalg.expm(x * 0.2)

    def scipy_svd(x):
        return scipy.linalg.svd(x)

    def scipy_svdvals(x):
        return scipy.linalg.svd(x, compute_uv=False)

    def cho_solve_(c, b):
        return scipy.linalg.cho_solve((c, True), b)

    CASES += [
        (logsumexp_, [F(3, 4)]),
        (logsumexp_weighted, [F(3, 4), POS(3, 4)]),
        (softmax_, [F(3, 4)]),
        (log_softmax_, [F(2, 3)]),
        (expm_, [F(3, 3)]),
        (scipy_svd, [F(3, 4)]),
        (scipy_svdvals, [F(4, 3)]),
        (cho_solve_, [CHOL(3), F(3)]),
        (cho_solve_, [CHOL(3), F(3, 2)]),
    ]


# --------------------------------------------------------------------- running
def layouts(specs):
    """The in_axes to run: every non-empty mix of batched (0) and unbatched (None)
    arguments, then every argument batched along its last axis (-1) where an example
    has rank >= 1 (that layout is a transpose at the call, the same code inside)."""
    free = [i for i, s in enumerate(specs) if not s.fixed]
    always = {i for i, s in enumerate(specs) if s.fixed == "batched"}
    out = []
    for mask in itertools.product([True, False], repeat=len(free)):
        batched = always | {i for i, m in zip(free, mask) if m}
        if batched:
            out.append(tuple(0 if i in batched else None for i in range(len(specs))))
    mapped = always | set(free)
    if any(specs[i].rank >= 1 for i in mapped):
        out.append(tuple(-1 if i in mapped else None for i in range(len(specs))))
    return list(dict.fromkeys(out))


def params():
    seen: dict[str, int] = {}
    out = []
    for f, specs in CASES:
        n = seen[f.__name__] = seen.get(f.__name__, -1) + 1
        name = f.__name__ if n == 0 else f"{f.__name__}{n}"
        out.append(pytest.param(f, specs, id=name))
    return out


def _arguments(specs, in_axes, size, rng):
    args = []
    for spec, ax in zip(specs, in_axes):
        if ax is None:
            args.append(spec(rng))
        else:
            args.append(np.moveaxis(np.asarray(spec(rng, (size,))), 0, ax))
    return args


@pytest.mark.parametrize("f,specs", params())
def test_sweep(f, specs):
    rng = np.random.default_rng(0)
    for in_axes in layouts(specs):
        g = vmap(f, in_axes=in_axes)  # one specialisation per layout, for both sizes
        for size in (1, 3):
            args = _arguments(specs, in_axes, size, rng)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", PerformanceWarning)
                    got = g(*args)
                want = loop(f, tuple(args), in_axes)
                assert_same(got, want, rtol=1e-7, atol=1e-9)
            except Exception as exc:
                shapes = [np.shape(a) for a in args]
                exc.add_note(f"{f.__name__}: in_axes={in_axes} shapes={shapes}")
                raise


# -------------------------------------------------------- every rule is tested
TESTS = Path(__file__).resolve().parent


def _called_in(name: str, text: str) -> bool:
    """Whether the test sources call ``name`` (``np.linalg.inv``, ``ndarray.sum``...)."""
    if name.startswith("ndarray."):
        return f".{name.split('.', 1)[1]}(" in text
    if name.startswith("ufunc."):
        return re.search(r"np\.\w+\." + name.split(".", 1)[1] + r"\(", text) is not None
    short = name.split(".")[-1]
    if name.startswith("np."):
        dotted = name[3:]
        return re.search(r"\b(np|numpy)\.%s\(" % re.escape(dotted), text) is not None
    if name.startswith("scipy."):
        return f"{short}(" in text
    return re.search(r"\b%s\(" % re.escape(name), text) is not None


def test_every_rule_is_tested():
    text = "\n".join(p.read_text() for p in TESTS.glob("test_*.py"))
    text += "\n".join(p.read_text() for p in (TESTS / "programs").glob("*.py"))
    # NumPy, math, array, ufunc, SciPy and builtin functions; the random and collective
    # families are tested by their own tables (tests/test_randomness.py, tests/test_collectives.py).
    checked = [
        e["function"]
        for e in rules.entries()
        if not e["function"].startswith(("np.random.", "Generator.", "astvmap."))
    ]
    missing = [name for name in checked if not _called_in(name, text)]
    assert not missing, f"functions with a rule but no test calling them: {missing}"
