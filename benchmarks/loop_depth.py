"""Translation time against the depth of nested batched loops.

    python -m benchmarks.loop_depth                 # k = 1..6, every family
    python -m benchmarks.loop_depth --max-k 8 --family while

For each family of tests/programs/loop_nests.py and each depth k, ``astvmap.emit`` of
the function with k nested masked loops, the disk cache off (ASTVMAP_CACHE=0) and the
in-memory cache cleared before each: the seconds it took (CPU
time of this process, less sensitive than the wall clock to other load on the machine)
and the translator's work counters (astvmap.loops.COUNTS: loop statements translated,
fixpoint passes). The counters are exact and machine-independent; the seconds are not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["ASTVMAP_CACHE"] = "0"
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import astvmap  # noqa: E402
from astvmap import cache, loops  # noqa: E402
from tests.programs import loop_nests  # noqa: E402


def measure(family: str, k: int, folder: Path) -> tuple[float, dict[str, int]]:
    """CPU seconds and work counters of one emit of ``family`` at depth ``k``."""
    f = loop_nests.build(family, k, folder)
    x, n = np.arange(4.0), np.array([1, 2, 3, 2])
    cache.memory_clear()  # the same text built before would be answered from memory
    loops.COUNTS.clear()
    start = time.process_time()
    astvmap.emit(f, x, n)
    return time.process_time() - start, dict(loops.COUNTS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-k", type=int, default=6)
    parser.add_argument("--family", action="append", choices=loop_nests.FAMILIES)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        measure("for", 1, folder)  # warm-up: libcst, black and the rules load here
        print(f"{'family':8} {'k':>2} {'seconds':>8} {'loop statements':>16} {'passes':>7}")
        for family in args.family or loop_nests.FAMILIES:
            for k in range(1, args.max_k + 1):
                seconds, counts = measure(family, k, folder)
                print(
                    f"{family:8} {k:>2} {seconds:>8.2f} {counts.get('loop statements', 0):>16} "
                    f"{counts.get('fixpoint passes', 0):>7}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
