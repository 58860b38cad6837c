"""Functions with ``k`` nested loops on batched values, for any ``k``: what translation
time must grow linearly with (tests/test_loop_depth.py counts the work,
benchmarks/loop_depth.py times it).

Every family takes ``x`` (a batched float) and ``n`` (a batched int) and nests ``k``
loops whose examples stop at different times, so each is a masked loop:

- ``while``: ``while i < n`` at every level, a counter and a sum in the innermost;
- ``for``: ``for i in range(n)`` at every level;
- ``mixed``: ``for`` and ``while`` alternate, each level adds the next level's total
  to its own, so the names become batched one level per pass of the fixpoints;
- ``break``: plain ``range(3)`` loops, the innermost left by a batched ``break``;
- ``closure``: ``for`` loops over a batched range, the innermost calling a lambda
  written in the function that reads ``x`` through its closure.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

FAMILIES = ("while", "for", "mixed", "break", "closure")


def source(family: str, k: int) -> str:
    """The module text of ``f(x, n)`` with ``k`` nested loops of ``family``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    body = {"while": _while, "for": _for, "mixed": _mixed, "break": _break, "closure": _closure}[
        family
    ](k)
    return "import numpy as np\n\n\ndef f(x, n):\n" + "".join(f"    {line}\n" for line in body)


def build(family: str, k: int, folder: Path) -> Callable:
    """``f`` of ``source(family, k)``, written to a file in ``folder`` and imported
    (astvmap reads a function's source from its file)."""
    name = f"loop_nest_{family}_{k}"
    path = Path(folder) / f"{name}.py"
    path.write_text(source(family, k))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def _while(k: int) -> list[str]:
    lines, pad = ["s = 0.0", "c = 0"], ""
    for d in range(k):
        lines += [f"{pad}i{d} = 0", f"{pad}while i{d} < n:"]
        pad += "    "
    lines += [f"{pad}s = s + x * i{k - 1}", f"{pad}c = c + 1"]
    for d in reversed(range(k)):
        lines.append(f"{pad}i{d} += 1")
        pad = pad[:-4]
    return [*lines, "return s + c"]


def _for(k: int) -> list[str]:
    lines, pad = ["s = 0.0", "c = 0"], ""
    for d in range(k):
        lines.append(f"{pad}for i{d} in range(n):")
        pad += "    "
    lines += [f"{pad}s = s + x * i{k - 1}", f"{pad}c = c + 1"]
    return [*lines, "return s + c"]


def _mixed(k: int) -> list[str]:
    lines, pad = ["s = 0.0", *(f"t{d} = 0.0" for d in range(k))], ""
    for d in range(k):
        if d % 2 == 0:
            lines.append(f"{pad}for i{d} in range(n):")
        else:
            lines += [f"{pad}i{d} = 0", f"{pad}while i{d} < n and s < 100.0:"]
        pad += "    "
        lines.append(f"{pad}t{d} = t{d} + {f't{d + 1}' if d + 1 < k else 's'}")
    lines.append(f"{pad}s = s + x")
    for d in reversed(range(k)):
        if d % 2 == 1:
            lines.append(f"{pad}i{d} += 1")
        pad = pad[:-4]
    return [*lines, "return s + " + " + ".join(f"t{d}" for d in range(k))]


def _break(k: int) -> list[str]:
    lines, pad = ["s = 0.0"], ""
    for d in range(k):
        lines.append(f"{pad}for i{d} in range(3):")
        pad += "    "
    lines += [f"{pad}s = s + x", f"{pad}if s > n:", f"{pad}    break"]
    return [*lines, "return s"]


def _closure(k: int) -> list[str]:
    lines, pad = ["step = lambda v, i: v + x * i", "s = 0.0"], ""
    for d in range(k):
        lines.append(f"{pad}for i{d} in range(n):")
        pad += "    "
    lines.append(f"{pad}s = step(s, i{k - 1})")
    return [*lines, "return s"]
