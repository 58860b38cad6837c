"""`astvmap emit`: static reading of FILE.py, ranks, --diff/--check/--annotate, and
the places a function's source can come from (IPython cells, exec'd text).

Most cases call ``cli.main`` in-process (a CLI subprocess costs about a second);
the few subprocess runs check what only a real process shows: exit codes through
the console entry point, and that FILE.py's top level never runs.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import linecache
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import cli
from astvmap import VmapError, emit, vmap
from astvmap.testing import assert_same, loop

ROOT = Path(__file__).resolve().parent.parent

# Top level that must never run: it writes a file, then raises.
RAISING = '''\
"""A module whose top level has side effects and raises."""
import numpy as np
from numpy import linalg as la

EPS = 1e-6
open(MARKER, "w").write("the top level ran")
raise RuntimeError("importing this file fails")


def unit(v: "d"):
    return v / (la.norm(v) + EPS)


def score(x: Float[np.ndarray, "n d"], w: "d", scale: float = 2.0):
    """jaxtyping-style and plain-string annotations give the ranks."""
    s = x @ unit(w)
    return scale * s.max()
'''


def run_cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "astvmap.cli", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def main(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["emit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def raising(tmp_path: Path) -> Path:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "raising.py"
    path.write_text(RAISING.replace("MARKER", repr(str(marker))))
    return path


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # headers name files relative to the working directory


# ------------------------------------------------------------ static reading
def test_emit_from_a_file_whose_top_level_raises(raising: Path):
    result = run_cli("emit", f"{raising}:score")
    assert result.returncode == 0, result.stderr
    assert not (raising.parent / "ran.txt").exists(), "the file's top level ran"
    text = result.stdout
    assert f"{raising}:14 (score)" in text  # the def's real line, read through linecache
    assert "#   x: batched rank 2" in text and "#   w: batched rank 1" in text
    assert "def unit_vmap(v):" in text  # the file's other functions are transformed too
    assert "la.norm(v, axis=1)" in text
    ast.parse(text)


def test_generated_code_from_a_static_read_matches_the_loop(raising: Path):
    """The statically built function computes what the file's function would."""
    from astvmap import static

    module = static.read(raising)
    score = module.function("score")
    X = np.random.default_rng(1).standard_normal((5, 3, 4))
    w = np.random.default_rng(2).standard_normal((5, 4))
    assert_same(vmap(score)(X, w), loop(score, (X, w), 0, 0), rtol=1e-12, atol=1e-12)


def test_names_static_emit_cannot_bind_are_reported(tmp_path: Path, capsys):
    path = tmp_path / "needs.py"
    path.write_text(
        "import numpy as np\nimport some_local_module\n"
        "TABLE = np.loadtxt('table.txt')\n"
        "def f(x: 'n'):\n    return x @ TABLE + some_local_module.bias\n"
    )
    code, out, err = main(capsys, f"{path}:f")
    assert code == 2 and out == ""
    assert f"TABLE: assigned by code at {path}:3" in err
    assert f"some_local_module: imported at {path}:2" in err
    assert "package.module:FUNC" in err  # the way out: import the module


def test_what_a_static_read_binds(tmp_path: Path):
    from astvmap import static

    path = tmp_path / "consts.py"
    path.write_text(
        "import math\nimport numpy as np\nfrom typing import NamedTuple\n"
        "TAU = 2 * math.pi\nKERNEL = np.array([1.0, 2.0, 1.0]) / 4\nN, M = 3, 4\n"
        "RNG = np.random.default_rng(0)\nLATER = 1\nif N > 2:\n    LATER = 2\n"
        "class Pair(NamedTuple):\n    a: 'n'\n    b: float = 0.5\n"
        "def h(x, w=np.random.rand(3)):\n    return x * w\n"
        "def f(x: 'n'):\n    return h(x)\n"
    )
    module = static.read(path)
    ns = module.namespace
    assert ns["TAU"] == 2 * np.pi and (ns["KERNEL"] == [0.25, 0.5, 0.25]).all()
    assert (ns["N"], ns["M"]) == (3, 4) and ns["Pair"](1).b == 0.5
    assert "RNG" not in ns and "assigned by code" in module.skipped["RNG"]
    assert "LATER" not in ns and "top-level `if`" in module.skipped["LATER"]
    assert module.unevaluated_defaults("f") == [f"h(np.random.rand(3)) at {path}:14"]


def test_vmap_decorator_in_the_file_gives_the_axes(tmp_path: Path, capsys):
    path = tmp_path / "deco.py"
    path.write_text(
        "from astvmap import vmap\nimport numpy as np\n\n"
        "@vmap(in_axes=(0, None))\ndef f(x: 'n', W: 'n m'):\n    return x @ W\n"
    )
    code, out, err = main(capsys, f"{path}:f")
    assert code == 0, err
    assert "# in_axes=(0, None), out_axes=0" in out and "#   W: unbatched rank 2" in out
    code, out, _ = main(capsys, f"{path}:f", "--in-axes", "0,0")  # the flag wins
    assert "#   W: batched rank 2" in out


def test_module_form_imports_the_module(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "emit_mod_pkg.py").write_text(
        "import numpy as np\nLOADED = open('imported.txt', 'w').write('yes')\n"
        "def f(x: 'n'):\n    return np.sum(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, out, err = main(capsys, "emit_mod_pkg:f")
    finally:
        sys.modules.pop("emit_mod_pkg", None)
    assert code == 0, err
    assert (tmp_path / "imported.txt").exists()  # unlike FILE.py:FUNC, its top level ran
    assert "np.sum(x, axis=1)" in out


# ------------------------------------------------------------ ranks
def test_missing_ranks_are_listed_with_how_to_give_them(tmp_path: Path, capsys):
    path = tmp_path / "noranks.py"
    path.write_text(
        "import numpy as np\n"
        "def f(x, W: np.ndarray, b: Float[np.ndarray, '*batch n'], c=np.random.rand(3), d=np.ones(2)):\n"
        "    return x @ W + b + c + d\n"
    )
    code, out, err = main(capsys, f"{path}:f")
    assert code == 2 and out == ""
    assert "x: no annotation" in err
    assert "W: annotation np.ndarray gives no rank" in err
    assert "b: annotation Float[np.ndarray, '*batch n'] has a variadic shape" in err
    assert "c: no annotation (its default np.random.rand(3) is not evaluated statically)" in err
    assert "d:" not in err  # a default evaluated statically is used as is
    assert "--rank x=1,W=2" in err and "--shape" in err
    code, out, err = main(
        capsys, f"{path}:f", "--rank", "x=1,W=2", "b=1", "c=1", "--in-axes", "0,None,None,None"
    )
    assert code == 0, err
    assert "#   W: unbatched rank 2" in out and "#   d: unbatched rank 1" in out


def test_shape_dtype_value_and_pytree_ranks(tmp_path: Path, capsys):
    path = tmp_path / "tree.py"
    path.write_text(
        "import numpy as np\n"
        "def layer(x, p):\n    return np.tanh(x @ p['w'] + p['b'])\n"
        "def pick(table, idx, scale):\n    return table[idx] * scale\n"
    )
    axes = "(0, {'w': None, 'b': 0})"
    code, out, err = main(
        capsys, f"{path}:layer", "--rank", "x=1", "p={'w': 2, 'b': 1}", "--in-axes", axes
    )
    assert code == 0, err
    assert "#   p: dict(w: unbatched rank 2, b: batched rank 1)" in out
    code, out, err = main(
        capsys,
        f"{path}:pick",
        "--shape",
        "table=5,4",
        "idx=7",
        "--dtype",
        "idx=int",
        "--value",
        "scale=2.5",
        "--in-axes",
        "None,0,None",
    )
    assert code == 0, err
    assert "#   idx: batched rank 0" in out and "#   table: unbatched rank 2" in out
    assert "#   scale: unbatched rank 0" in out and "table[idx] * scale" in out


def test_bad_flags_exit_2(capsys):
    target = "fixtures/softmax.py:softmax"
    assert main(capsys, target, "--rank", "z=one")[0] == 2
    assert main(capsys, target, "--in-axes", "(0,")[0] == 2
    code, _, err = main(capsys, "fixtures/softmax.py:nothing")
    assert code == 2 and "no top-level def 'nothing'" in err


# ------------------------------------------------------------ --diff, --check, --annotate
def test_diff_shows_the_changed_lines_only(capsys):
    code, out, err = main(capsys, "fixtures/cross_entropy.py:cross_entropy", "--diff")
    assert code == 0, err
    assert out.startswith("--- fixtures/cross_entropy.py\n+++ fixtures/cross_entropy.py (vmap")
    assert "-def log_softmax(z):\n" in out and "+def log_softmax_vmap(z):\n" in out
    assert "+    return -np.sum(onehot * log_softmax_vmap(logits), axis=1)\n" in out
    assert " def cross_entropy(logits, onehot):\n" in out  # unchanged lines are context
    assert "Generated by" not in out  # the header is not part of the diff


def test_readme_shows_a_current_diff(capsys):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- emit-diff -->\n```diff\n") + len("<!-- emit-diff -->\n```diff\n")
    block = readme[start : readme.index("```\n<!-- /emit-diff -->")]
    command, _, shown = block.partition("\n")
    argv = command.removeprefix("$ astvmap emit ").split()
    code, out, _ = main(capsys, *argv)
    assert code == 0 and out == shown


def test_check_passes_and_fails(tmp_path: Path, capsys):
    golden = ROOT / "fixtures" / "softmax.vmap.py"
    saved = tmp_path / "softmax.vmap.py"
    code, out, err = main(capsys, "fixtures/softmax.py:softmax", "-o", str(saved))
    assert code == 0 and out == "" and saved.read_text() == golden.read_text()
    assert main(capsys, "fixtures/softmax.py:softmax", "--check", str(saved))[:2] == (0, "")
    saved.write_text(saved.read_text().replace("axis=1", "axis=-1", 1))
    result = run_cli("emit", "fixtures/softmax.py:softmax", "--check", str(saved))
    assert result.returncode == 1
    assert f"--- {saved}" in result.stdout
    assert "-    e = np.exp(z - np.max(z, axis=-1)[:, None])" in result.stdout
    assert "+    e = np.exp(z - np.max(z, axis=1)[:, None])" in result.stdout
    assert "out of date" in result.stderr
    assert main(capsys, "fixtures/softmax.py:softmax", "--check", str(tmp_path / "no"))[0] == 2


def test_annotate_names_each_statements_line(capsys):
    code, out, _ = main(capsys, "fixtures/kalman_step.py:kalman_step", "--annotate")
    assert code == 0
    source = (ROOT / "fixtures" / "kalman_step.py").read_text().splitlines()
    body = out[out.index("def kalman_step") :].splitlines()[1:]
    statements = [line for line in body if line.strip() and not line.strip().startswith("#")]
    assert len(statements) == 8
    for line in statements:
        code_part, _, comment = line.partition("  # line ")
        # the named line of the original starts the same statement (same target or keyword)
        assert code_part.split()[0] == source[int(comment) - 1].split()[0], line
    plain = emit_fixture("kalman_step")
    assert out != plain and "# line" not in plain  # the annotated text is its own entry


def test_python_emit_annotate_matches_cli(capsys):
    module = cli.load_module(ROOT / "fixtures" / "softmax.py")
    text = emit(module.softmax, np.zeros((2, 5)), annotate=True)
    assert "e = np.exp(z - np.max(z, axis=1)[:, None])  # line 7" in text
    assert main(capsys, "fixtures/softmax.py:softmax", "--annotate")[1] == text


# ------------------------------------------------------------ generated code stands alone
def emit_fixture(name: str) -> str:
    module = cli.load_module(ROOT / "fixtures" / f"{name}.py")
    spec = module.VMAP
    args = module.example(np.random.default_rng(0), 3)
    fn = getattr(module, spec["fn"])
    return emit(fn, *args, in_axes=spec.get("in_axes", 0), out_axes=spec.get("out_axes", 0))


@pytest.mark.parametrize(
    "name", ["softmax", "cross_entropy", "kalman_step", "gaussian_log_likelihood", "standardize"]
)
def test_emitted_module_runs_on_its_own(name: str, tmp_path: Path, capsys):
    """Paste the emitted text into a fresh file, import it, compare with the loop."""
    fixture = cli.load_module(ROOT / "fixtures" / f"{name}.py")
    spec = fixture.VMAP
    pasted = tmp_path / f"pasted_{name}.py"
    code, _, err = main(capsys, f"fixtures/{name}.py:{spec['fn']}", "-o", str(pasted))
    assert code == 0, err
    imports = [
        n
        for n in ast.walk(ast.parse(pasted.read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    roots = {a.name.split(".")[0] for n in imports for a in n.names}
    assert roots <= {"numpy"} | set(sys.stdlib_module_names), roots
    spec_ = importlib.util.spec_from_file_location(f"pasted_{name}", pasted)
    pasted_module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(pasted_module)
    batched = getattr(pasted_module, spec["fn"])
    fn = getattr(fixture, spec["fn"])
    in_axes = spec.get("in_axes", 0)
    assert spec.get("out_axes", 0) == 0 and set(np.atleast_1d(in_axes)) <= {0, None}
    args = fixture.example(np.random.default_rng(5), 4)
    call = inspect.signature(fn).bind(*args)
    call.apply_defaults()  # the generated def takes every parameter explicitly
    assert_same(batched(*call.args), loop(fn, args, in_axes, 0), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------ where source comes from
def test_exec_code_registered_in_linecache_works_with_vmap_and_emit():
    text = "import numpy as np\n\n\ndef f(x):\n    y = np.cos(x)\n    return y.sum()\n"
    filename = "<astvmap-test-cli-exec>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(text, filename, "exec"), namespace)
    X = np.random.default_rng(0).standard_normal((3, 4))
    assert_same(vmap(namespace["f"])(X), np.cos(X).sum(axis=1), rtol=1e-12, atol=0)
    out = emit(namespace["f"], X, annotate=True)
    assert f"from {filename}:4 (f)" in out and "return y.sum(axis=1)  # line 6" in out


def test_code_without_source_says_how_to_fix_it():
    namespace: dict = {}
    exec(compile("def f(x):\n    return x + 1\n", "<no-source-here>", "exec"), namespace)
    with pytest.raises(VmapError) as info:
        emit(namespace["f"], np.zeros((2, 3)))
    message = str(info.value)
    assert "'f' is not available" in message and "<no-source-here>" in message
    assert "linecache.cache[filename] = (size, None, lines, filename)" in message


def test_ipython_cell():
    pytest.importorskip("IPython")
    script = textwrap.dedent("""
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell = InteractiveShell.instance(config=config)
        cell = (
            "import numpy as np\\n"
            "from astvmap import vmap, emit\\n"
            "def f(x, w):\\n"
            "    return np.tanh(x * w).max()\\n"
            "X, w = np.arange(12.0).reshape(4, 3) / 10, np.ones(3)\\n"
            "got = vmap(f, in_axes=(0, None))(X, w)\\n"
            "text = emit(f, X, w, in_axes=(0, None))\\n"
        )
        result = shell.run_cell(cell)
        assert result.success, result.error_in_exec
        ns = shell.user_ns
        expected = [ns["f"](x, ns["w"]) for x in ns["X"]]
        assert abs(ns["got"] - expected).max() == 0, (ns["got"], expected)
        print(ns["text"])
        """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "<ipython-input-" in result.stdout  # the header names the cell
    assert "np.tanh(x * w).max(axis=1)" in result.stdout
