"""Coverage against jax.numpy: for every array function jax.numpy implements
(``jax_numpy_names.txt``), one status.

- ``rule``: astvmap has a batching rule for it (found in the registry, not listed here);
- ``refused``: no rule, with the reason (typically: the output's shape depends on the
  data). A batched call to it makes vmap run the function per example in a Python loop
  with a ``PerformanceWarning``, as for any call without a rule;
- ``n/a``: not an array function (a dtype, a constant, printing, file I/O, index-building
  syntax), or not in NumPy at all.

A test checks that every listed name has exactly one status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .registry import lookup

NAMES_FILE = Path(__file__).with_name("jax_numpy_names.txt")

_DATA = "the output's shape depends on the data"

REFUSED: dict[str, str] = {
    "numpy.argwhere": _DATA + " (the number of nonzero entries)",
    "numpy.nonzero": _DATA + " (the number of nonzero entries); use np.where(c, x, y)",
    "numpy.flatnonzero": _DATA + " (the number of nonzero entries)",
    "numpy.extract": _DATA + " (the number of True entries)",
    "numpy.place": "cycles its values over the True entries, whose number depends on the data",
    "numpy.put": "writes through a flat index in place; a batched flat view may be a copy",
    "numpy.trim_zeros": _DATA + " (how many zeros are trimmed)",
    "numpy.unique": _DATA + " (the number of distinct values)",
    "numpy.unique_all": _DATA + " (the number of distinct values)",
    "numpy.unique_counts": _DATA + " (the number of distinct values)",
    "numpy.unique_inverse": _DATA + " (the number of distinct values)",
    "numpy.unique_values": _DATA + " (the number of distinct values)",
    "numpy.intersect1d": _DATA + " (the size of the intersection)",
    "numpy.union1d": _DATA + " (the size of the union)",
    "numpy.setdiff1d": _DATA + " (the size of the difference)",
    "numpy.setxor1d": _DATA + " (the size of the symmetric difference)",
    "numpy.roots": _DATA + " (leading and trailing zero coefficients are dropped)",
    "numpy.polydiv": _DATA + " (the quotient drops leading zeros)",
    "numpy.poly": "builds the polynomial by a Python loop over the roots; no batched form yet",
    "numpy.bincount": _DATA + " (max(x) + 1 unless minlength bounds it); no batched form yet",
    "numpy.histogram": "no batched form yet (bin edges per example)",
    "numpy.histogram2d": "no batched form yet (bin edges per example)",
    "numpy.histogramdd": "no batched form yet (bin edges per example)",
    "numpy.histogram_bin_edges": "no batched form yet ('auto' bin counts depend on the data)",
    "numpy.block": "no batched form yet",
    "numpy.array_equiv": "returns False for shapes that do not broadcast; no batched form yet",
    "numpy.apply_over_axes": "applies a Python function repeatedly; no batched form yet",
    "numpy.piecewise": "applies functions to masked subsets; whether they are elementwise "
    "is unknown",
    "numpy.vectorize": "a Python loop by definition; call the function directly instead",
    "numpy.frompyfunc": "a Python loop by definition; call the function directly instead",
    "numpy.fromfunction": "calls a Python function on index grids; call it directly instead",
    "numpy.mask_indices": "calls a Python function to build a mask",
    "numpy.einsum_path": "plans a contraction for the operands' shapes, which gain a batch axis",
    "numpy.linalg.tensorinv": "no batched form yet",
    "numpy.linalg.tensorsolve": "no batched form yet",
}

_TYPE = "a dtype or scalar class (not callable on arrays as a cast)"
NOT_APPLICABLE: dict[str, str] = {
    **{
        f"numpy.{n}": _TYPE
        for n in (
            "character",
            "complexfloating",
            "flexible",
            "floating",
            "generic",
            "inexact",
            "integer",
            "number",
            "signedinteger",
            "unsignedinteger",
            "object_",
        )
    },
    "numpy.dtype": "the dtype class",
    "numpy.ndarray": "the array class",
    "numpy.ufunc": "the ufunc class (every ufunc and its methods have rules)",
    **{f"numpy.{n}": "a constant" for n in ("e", "pi", "inf", "nan", "euler_gamma", "newaxis")},
    **{
        f"numpy.{n}": "printing"
        for n in ("array_repr", "array_str", "get_printoptions", "set_printoptions", "printoptions")
    },
    **{
        f"numpy.{n}": "file or buffer I/O"
        for n in ("load", "save", "savez", "fromfile", "frombuffer", "fromstring", "fromiter")
    },
    "numpy.from_dlpack": "array interchange",
    **{
        f"numpy.{n}": "index-building syntax"
        for n in ("c_", "r_", "s_", "index_exp", "mgrid", "ogrid")
    },
    "numpy.ix_": "index-building for open meshes (use broadcasting)",
    "numpy.fft": "a submodule (its functions are listed as numpy.fft.*)",
    "numpy.linalg": "a submodule (its functions are listed as numpy.linalg.*)",
}

NOT_IN_NUMPY = "not in NumPy (a JAX extension or a dtype NumPy lacks)"


def names() -> list[str]:
    """The jax.numpy list: qualified names such as numpy.sum, numpy.linalg.inv."""
    lines = NAMES_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def resolve(name: str) -> Any:
    """The NumPy object a qualified name denotes, or None when NumPy lacks it."""
    obj: Any = np
    for part in name.split(".")[1:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            return None
    return obj


def status(name: str) -> tuple[str, str]:
    """``(status, note)`` for one listed name; ``("none", "")`` when it has none (a bug)."""
    if name in REFUSED:
        return "refused", REFUSED[name]
    if name in NOT_APPLICABLE:
        return "n/a", NOT_APPLICABLE[name]
    obj = resolve(name)
    if obj is None:
        return "n/a", NOT_IN_NUMPY
    if lookup(obj) is not None:
        return "rule", ""
    return "none", ""


def table() -> list[dict[str, str]]:
    return [dict(zip(("name", "status", "note"), (n, *status(n)))) for n in names()]


def counts() -> dict[str, int]:
    out: dict[str, int] = {}
    for row in table():
        out[row["status"]] = out.get(row["status"], 0) + 1
    return out


SOURCE = "jax-ml/jax@cec06d1 (2026-08-08)"


def markdown() -> str:
    """The README's coverage table: counts against the jax.numpy list, and the refusals."""
    c = counts()
    total = sum(c.values())
    lines = [
        f"Coverage of the {total} public names of jax.numpy, jax.numpy.linalg and "
        f"jax.numpy.fft ({SOURCE}; the list is `rules/jax_numpy_names.txt`):",
        "",
        "| status | count |",
        "|---|---|",
        f"| a batching rule | {c.get('rule', 0)} |",
        f"| refused (runs per example, with a reason) | {c.get('refused', 0)} |",
        f"| not an array function, or not in NumPy | {c.get('n/a', 0)} |",
        "",
        "Refused, and why:",
        "",
    ]
    for name, reason in sorted(REFUSED.items()):
        lines.append(f"- `{name.replace('numpy.', 'np.', 1)}`: {reason}")
    return "\n".join(lines) + "\n"
