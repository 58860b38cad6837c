"""Golden fixtures: every example program next to its generated code.

For each ``fixtures/<name>.py`` (a per-example program with a ``VMAP`` spec and an
``example(rng, batch)`` function) the generated module is checked in as
``fixtures/<name>.vmap.py``. A change to generated code shows up in review as a
diff of those files. Regenerate them with ``ASTVMAP_UPDATE_GOLDEN=1 pytest
tests/test_fixtures.py``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

from astvmap import vmap
from astvmap.testing import assert_same, loop
from cli import fixture_files, load_module

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = fixture_files(ROOT / "fixtures")
UPDATE = os.environ.get("ASTVMAP_UPDATE_GOLDEN") == "1"


def _generate(path: Path, batch: int = 3) -> tuple[str, object, dict]:
    module = load_module(path)
    spec = module.VMAP
    fn = getattr(module, spec["fn"])
    args = module.example(np.random.default_rng(0), batch)
    batched = vmap(fn, in_axes=spec.get("in_axes", 0), out_axes=spec.get("out_axes", 0))
    return batched.emit(*args), module, spec


def test_there_are_enough_fixtures():
    assert len(FIXTURES) >= 15


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_generated_code_matches_golden(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # headers name the file relative to the repository
    text, _, _ = _generate(path)
    golden = path.with_name(path.stem + ".vmap.py")
    if UPDATE or not golden.exists():
        golden.write_text(text)
    assert text == golden.read_text(), f"generated code for {path.name} changed; see {golden.name}"
    again, _, _ = _generate(path)
    assert again == text, "generating twice gave different text"
    ast.parse(text)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize("batch", [1, 4])
def test_fixture_matches_loop(path, batch):
    module = load_module(path)
    spec = module.VMAP
    fn = getattr(module, spec["fn"])
    args = module.example(np.random.default_rng(batch), batch)
    in_axes, out_axes = spec.get("in_axes", 0), spec.get("out_axes", 0)
    got = vmap(fn, in_axes=in_axes, out_axes=out_axes)(*args)
    assert_same(got, loop(fn, args, in_axes, out_axes), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_no_loop_over_the_batch_and_no_runtime_helper(path):
    """Every `for`/`while` in the generated code was already in the original."""
    text, module, spec = _generate(path)
    original = ast.parse(path.read_text())
    generated = ast.parse(text)

    def loops(tree: ast.AST) -> int:
        return sum(isinstance(n, (ast.For, ast.While, ast.comprehension)) for n in ast.walk(tree))

    assert loops(generated) <= loops(original)
    assert (
        "astvmap" not in text.split("\n", 6)[-1]
    ), "generated code calls an astvmap runtime helper"
