"""The backends stay optional: importing astvmap imports neither dask nor CuPy, and
passing their arrays without the extra installed says which extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ASTVMAP_CACHE_DIR": str(tmp_path / "c")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_importing_and_using_astvmap_imports_no_optional_library(tmp_path):
    run = _run(
        """
        import sys
        import numpy as np
        import astvmap
        from tests.test_backend_cupy import newton_sqrt
        astvmap.vmap(newton_sqrt)(np.array([4.0, 9.0]))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed", "cupy")))
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_dask_or_cupy_array_without_its_extra_names_the_extra(tmp_path):
    run = _run(
        """
        import sys
        sys.modules["dask"] = sys.modules["cupy"] = None  # not installed
        import numpy as np
        from astvmap import vmap
        from tests.test_backend_cupy import newton_sqrt

        class Array:  # looks like dask.array.Array by its type's module
            pass
        Array.__module__ = "dask.array.core"
        class ndarray:
            pass
        ndarray.__module__ = "cupy"
        for obj, extra in [(Array(), "astvmap[dask]"), (ndarray(), "astvmap[cupy]")]:
            try:
                vmap(newton_sqrt)(obj)
            except ImportError as exc:
                assert extra in str(exc), exc
                print("ok", extra)
        try:
            vmap(newton_sqrt, in_axes=(0, 0))(Array(), ndarray())
        except TypeError as exc:
            assert "both dask and cupy" in str(exc), exc
            print("ok mixed")
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["ok astvmap[dask]", "ok astvmap[cupy]", "ok mixed"]


def test_the_batch_first_variant_keeps_the_other_settings():
    import numpy as np

    from astvmap import vmap
    from astvmap.backends import kernel as K

    def f(x, y):
        return x + y

    g = vmap(f, in_axes=(1, None), out_axes=-1)
    g.randomness = "same"  # a setting vmap() may take (public attributes are settings)
    z = K.zeroed(g)
    assert (z.in_axes, z.out_axes, z.axis_size) == ((0, None), 0, None)
    assert z.randomness == "same" and z.fun is g.fun and K.zeroed(g) is z
    assert z._fallbacks is not g._fallbacks
    np.testing.assert_array_equal(z(np.ones((2, 3)), 1.0), np.full((2, 3), 2.0))
