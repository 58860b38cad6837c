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


# ------------------------------------------------------------ the cold path's shortcuts
def _fixture_transforms(monkeypatch, observe) -> None:
    """Transform every fixtures/ demo afresh, with ``observe`` called on each text
    handed to black and on each libcst tree the translator walks."""
    from astvmap import cache, codegen, vmap
    from cli import fixture_files, load_module

    monkeypatch.setenv("ASTVMAP_CACHE", "0")
    real = codegen.format_code

    def watched(code: str) -> str:
        observe(code)
        return real(code)

    monkeypatch.setattr(codegen, "format_code", watched)
    try:
        for path in fixture_files(ROOT / "fixtures"):
            module = load_module(path)
            spec = module.VMAP
            cache.memory_clear()
            args = module.example(np.random.default_rng(0), 3)
            fn = getattr(module, spec["fn"])
            vmap(fn, in_axes=spec["in_axes"], out_axes=spec.get("out_axes", 0)).emit(*args)
    finally:
        monkeypatch.setattr(codegen, "format_code", real)
        cache.memory_clear()


def test_one_black_pass_gives_black_s_own_text(monkeypatch):
    """codegen.format_code skips black's second pass where it cannot change anything;
    the text must be exactly what black.format_str makes, on every demo."""
    import black

    from astvmap import codegen

    texts: list[str] = []
    _fixture_transforms(monkeypatch, texts.append)
    assert len(texts) >= 15
    mode = black.Mode(line_length=88)
    single = 0
    for text in texts:
        assert codegen.format_code(text) == black.format_str(text, mode=mode)
        single += not codegen._LINE_END_COMMA.search(black.format_str(text, mode=mode))
    assert single >= len(texts) // 2  # the shortcut is taken on most modules


def test_the_fast_walk_visits_what_libcst_visits_in_its_order(monkeypatch):
    """syntax.iter_nodes (a read-only walk that does not rebuild nodes) yields every node
    a libcst visitor visits, and the expressions and statements among them in libcst's
    order, on every demo's source and generated module."""
    import libcst as cst

    from astvmap.syntax import iter_nodes

    class Order(cst.CSTVisitor):
        def __init__(self) -> None:
            self.seen: list[cst.CSTNode] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            self.seen.append(node)
            return True

    code = (cst.BaseExpression, cst.BaseStatement, cst.BaseSmallStatement, cst.BaseSuite)
    modules: list[cst.Module] = []
    _fixture_transforms(monkeypatch, lambda text: modules.append(cst.parse_module(text)))
    for path in sorted((ROOT / "fixtures").glob("*.py")):
        modules.append(cst.parse_module(path.read_text()))
    assert len(modules) >= 30
    for module in modules:
        order = Order()
        module.visit(order)
        walked = list(iter_nodes(module))
        # Compared by id: a failing comparison of nodes would print whole trees.
        assert sorted(map(id, walked)) == sorted(map(id, order.seen))
        ours = [type(n).__name__ for n in walked if isinstance(n, code)]
        theirs = [type(n).__name__ for n in order.seen if isinstance(n, code)]
        assert ours == theirs
        assert [id(n) for n in walked if isinstance(n, code)] == [
            id(n) for n in order.seen if isinstance(n, code)
        ]
