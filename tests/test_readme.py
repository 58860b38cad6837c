"""The README stays true: its commands, and its table of supported functions."""

import ast
import re
from pathlib import Path

import numpy as np

from astvmap import rules, vmap
from cli import load_module

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_rules_table_is_current():
    start = README.index("<!-- rules-table -->\n") + len("<!-- rules-table -->\n")
    end = README.index("<!-- /rules-table -->")
    assert README[start:end] == rules.table(), "run: astvmap rules --update-readme"


def test_readme_starts_with_the_two_commands():
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("pip install -e . && astvmap demo")
    assert block[1].startswith('pip install -e ".[test]" && python -m pytest')


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in ci and 'pip install --quiet -e ".[test]"' in ci


def _seed_blocks() -> list[str]:
    """The python blocks of the seed-example section: setup, generated code, nested call."""
    start = README.index("<!-- seed-example -->")
    end = README.index("<!-- /seed-example -->")
    blocks = re.findall(r"```python\n(.*?)```", README[start:end], re.S)
    assert len(blocks) == 3, "the seed example has three python blocks"
    return blocks


def _run_blocks(tmp_path: Path, blocks: list[str]):
    # A real file, so that astvmap can read the class's source.
    path = tmp_path / "readme_seed_example.py"
    path.write_text("\n".join(blocks))
    return load_module(path)


def test_seed_example_class_layer(tmp_path):
    setup, generated, _ = _seed_blocks()
    m = _run_blocks(tmp_path, [setup])
    assert m.Y.shape == (10_000, 32)
    np.testing.assert_allclose(m.Y, np.tanh(m.X @ m.model.W + m.model.b), rtol=1e-12)
    emitted = vmap(m.model, in_axes=0).emit(m.X)
    assert generated.strip() in emitted, "the README shows the code that runs"


def test_seed_example_two_batch_axes(tmp_path):
    setup, _, nested = _seed_blocks()
    m = _run_blocks(tmp_path, [setup, nested])
    assert m.YS.shape == (8, 1_000, 32)
    np.testing.assert_allclose(m.YS, np.tanh(m.XS @ m.model.W + m.model.b), rtol=1e-12)
    code = vmap(vmap(m.model, in_axes=0), in_axes=0).emit(m.XS)
    loops = [n for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.For, ast.While))]
    assert not loops and "@" in code
