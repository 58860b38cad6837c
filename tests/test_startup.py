"""Start-up (issue 16): a disk-cache hit in a fresh process loads no rewrite machinery.

The rewrite needs libcst and black, whose imports cost ~350 ms; a process whose
generated code is already on disk must not pay them. The time itself is measured
by the benchmark suite (``python -m benchmarks``), not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

USER_MODULE = """
import numpy as np


def scaled_norm(x, w):
    # a comment inside the block, and a helper called from it
    return helper(x) * w


def helper(x):
    return np.sqrt(np.sum(x * x))
"""

RUN = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {folder!r})
import numpy as np
import astvmap
import user_module
x = np.arange(12.0).reshape(4, 3)
out = astvmap.vmap(user_module.scaled_norm, in_axes=(0, None))(x, 2.0)
heavy = sorted(m for m in ("libcst", "black", "optree") if m in sys.modules)
print(json.dumps({{"out": out.tolist(), "heavy": heavy}}))
"""


def _fresh_process(folder: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "ASTVMAP_CACHE_DIR": str(cache_dir)}
    code = RUN.format(root=str(ROOT), folder=str(folder))
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_disk_cache_hit_imports_neither_libcst_nor_black(tmp_path):
    """Nor optree: plain arrays and numbers with int/None axes need no pytree library."""
    (tmp_path / "user_module.py").write_text(USER_MODULE)
    cache_dir = tmp_path / "cache"
    want = [2.0 * float(np.sqrt((row**2).sum())) for row in np.arange(12.0).reshape(4, 3)]
    first = _fresh_process(tmp_path, cache_dir)
    assert {"black", "libcst"} <= set(first["heavy"])  # nothing cached: the rewrite ran
    second = _fresh_process(tmp_path, cache_dir)
    assert second["heavy"] == []
    np.testing.assert_allclose(first["out"], want, rtol=1e-12)
    np.testing.assert_allclose(second["out"], want, rtol=1e-12)


def test_an_edit_to_the_file_is_seen_by_the_next_process(tmp_path):
    """The source index is keyed by the file's text: an edit regenerates, never reuses."""
    (tmp_path / "user_module.py").write_text(USER_MODULE)
    cache_dir = tmp_path / "cache"
    _fresh_process(tmp_path, cache_dir)
    edited = USER_MODULE.replace("* w", "* w + 1.0")
    (tmp_path / "user_module.py").write_text(edited)
    again = _fresh_process(tmp_path, cache_dir)
    assert {"black", "libcst"} <= set(again["heavy"])
    want = [2.0 * float(np.sqrt((row**2).sum())) + 1.0 for row in np.arange(12.0).reshape(4, 3)]
    np.testing.assert_allclose(again["out"], want, rtol=1e-12)


def test_import_astvmap_loads_no_rewrite_machinery_and_no_optional_package():
    """Nor optree, which only pytree arguments need."""
    heavy = ("libcst", "black", "dask", "cupy", "scipy", "jax", "torch", "optree")
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import astvmap; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
