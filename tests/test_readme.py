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


def _section_blocks(marker: str) -> list[str]:
    start = README.index(f"<!-- {marker} -->")
    end = README.index(f"<!-- /{marker} -->")
    return re.findall(r"```python\n(.*?)```", README[start:end], re.S)


def test_keyword_example(tmp_path):
    (code,) = _section_blocks("keyword-example")
    path = tmp_path / "readme_keywords.py"
    path.write_text(code)
    m = load_module(path)
    np.testing.assert_array_equal(m.whole, m.X + np.arange(3.0))
    np.testing.assert_array_equal(m.mapped, m.X + m.offsets[:, None])


def test_collectives_example_batch_norm(tmp_path):
    setup, generated = _section_blocks("collectives-example")
    path = tmp_path / "readme_batch_norm.py"
    path.write_text(setup)
    m = load_module(path)
    want = m.gamma * (m.X - m.X.mean(0)) / np.sqrt(m.X.var(0) + 1e-5) + m.beta
    np.testing.assert_allclose(m.Y, want, rtol=1e-12, atol=1e-12)
    emitted = vmap(m.batch_norm, in_axes=(0, None, None), axis_name="batch").emit(
        m.X, m.gamma, m.beta
    )
    assert generated.strip() in emitted, "the README shows the code that runs"


def test_randomness_example_monte_carlo(tmp_path):
    setup, generated = _section_blocks("randomness-example")
    path = tmp_path / "readme_monte_carlo.py"
    path.write_text(setup)
    m = load_module(path)
    assert m.prices.shape == (9,)
    # One draw call per example: bit for bit the loop's numbers (the README says so).
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(m.prices, [m.call_price(k, rng) for k in m.strikes])
    # And a Monte-Carlo estimate of Black-Scholes' price (rate 0.02, volatility 0.2, one
    # year), to within its sampling error (fixed seed).
    from math import erf, exp, log, sqrt

    def bs(k: float) -> float:
        cdf = lambda z: 0.5 * (1 + erf(z / sqrt(2)))  # noqa: E731
        d1 = (log(100 / k) + 0.02 + 0.02) / 0.2
        return 100 * cdf(d1) - k * exp(-0.02) * cdf(d1 - 0.2)

    np.testing.assert_allclose(m.prices, [bs(k) for k in m.strikes], rtol=0.03)
    emitted = m.price.emit(m.strikes, np.random.default_rng(1))
    assert generated.strip() in emitted, "the README shows the code that runs"


def test_chunk_size_example(tmp_path):
    (code,) = _section_blocks("chunk-example")
    code = code.replace(
        "whole = vmap(spread)(A, B)", "whole = [spread(a, b) for a, b in zip(A, B)]"
    )
    path = tmp_path / "readme_chunks.py"
    path.write_text(code)
    m = load_module(path)
    np.testing.assert_allclose(m.bounded, m.whole, rtol=1e-12)
