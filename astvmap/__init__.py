"""astvmap: JAX's vmap for plain NumPy, by source-to-source rewriting.

from astvmap import vmap

@vmap(in_axes=(0, None, None))
def layer(x, W, b):
    return np.tanh(x @ W + b)
"""

from __future__ import annotations

from ._version import __version__
from .api import vmap
from .collectives import all_gather, axis_index, pmax, pmean, pmin, psum
from .emit import emit
from .errors import PerformanceWarning, UnsupportedError, VmapError

__all__ = [
    "vmap",
    "emit",
    "VmapError",
    "UnsupportedError",
    "PerformanceWarning",
    "psum",
    "pmean",
    "pmax",
    "pmin",
    "axis_index",
    "all_gather",
    "__version__",
]
