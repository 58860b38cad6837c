"""Batching rules: one family per module, each mostly a table.

A rule turns one call whose arguments may carry the batch axis into code that
computes the whole batch, and says what the result is (batched? rank?). Rules are
keyed on the *runtime object* (``np.sum``, ``math.sqrt``, ``builtins.len``), so
``np.sum``, ``numpy.sum`` and ``from numpy import sum as total`` share one rule;
array methods (``x.sum(axis=0)``) are keyed on their name.

A rule receives a ``CallSite`` and returns ``(code, Val)``. Unbatched calls go
through the same rule, which must then return the call unchanged: work that does
not depend on the batch is never rewritten.
"""

from __future__ import annotations

import numpy as np

# Importing the families fills the tables.
# (KEEPS_DTYPE / INTEGER_RESULT are filled below, after the families import.)
from . import (  # noqa: E402,F401
    axis_ops,
    builtins_,
    collectives,
    creation,
    dtypes,
    elementwise,
    fft,
    index_tricks,
    linalg,
    random,
    reductions,
    scipy_,
    shape_ops,
    signal,
    ufunc_methods,
)
from .registry import (  # noqa: F401 - the public face of the rules package
    CATALOGUE,
    DTYPE_PARAMETER,
    FLOAT_RESULT,
    INTEGER_RESULT,
    KEEPS_DTYPE,
    METHODS,
    NOTES,
    RULES,
    Arg,
    CallSite,
    entries,
    lookup,
    with_dtype,
)
from .registry import table as functions_table
from .status import markdown as coverage_table


def table() -> str:
    """The README's tables: the supported functions by family, then the jax.numpy coverage."""
    return functions_table() + "\n" + coverage_table()


KEEPS_DTYPE.update(
    [
        np.reshape,
        np.ravel,
        np.transpose,
        np.swapaxes,
        np.moveaxis,
        np.expand_dims,
        np.squeeze,
        np.broadcast_to,
        np.atleast_1d,
        np.atleast_2d,
        np.atleast_3d,
        np.copy,
        np.sort,
        np.flip,
        np.flipud,
        np.fliplr,
        np.roll,
        np.take,
        np.repeat,
        np.tile,
        np.pad,
        np.diff,
        np.max,
        np.min,
        np.amax,
        np.amin,
        np.ptp,
        np.clip,
        np.diagonal,
        np.cumsum,
        np.cumprod,
        np.zeros_like,
        np.ones_like,
        np.empty_like,
        np.array,
        np.asarray,
        np.concatenate,
        np.stack,
    ]
)
FLOAT_RESULT.update([np.zeros, np.ones, np.empty])
DTYPE_PARAMETER.update([np.zeros, np.ones, np.empty, np.zeros_like, np.ones_like, np.empty_like])
INTEGER_RESULT.update(
    [
        np.argmax,
        np.argmin,
        np.argsort,
        np.nanargmax,
        np.nanargmin,
        np.count_nonzero,
        len,
        int,
        round,
        np.arange,
    ]
)
