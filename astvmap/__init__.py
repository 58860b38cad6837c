"""astvmap: JAX's vmap for plain NumPy, by source-to-source rewriting.

from astvmap import vmap

@vmap(in_axes=(0, None, None))
def layer(x, W, b):
    return np.tanh(x @ W + b)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import vmap  # noqa: E402
from .collectives import all_gather, axis_index, pmax, pmean, pmin, psum  # noqa: E402
from .emit import emit  # noqa: E402
from .errors import PerformanceWarning, UnsupportedError, VmapError  # noqa: E402

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
