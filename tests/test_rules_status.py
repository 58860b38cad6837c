"""Coverage against jax.numpy (rules/status.py) and the `astvmap rules` command."""

import json
import subprocess
import sys

from astvmap import rules
from astvmap.rules import status
from cli import main


def test_every_jax_numpy_name_has_a_status():
    rows = status.table()
    assert len(rows) == len(set(r["name"] for r in rows)) > 400
    missing = [r["name"] for r in rows if r["status"] == "none"]
    assert not missing, f"jax.numpy names without a status (add a rule or a reason): {missing}"


def test_refusals_and_non_functions_have_no_rule():
    """A name is listed as refused or not applicable only while it has no rule."""
    for name in [*status.REFUSED, *status.NOT_APPLICABLE]:
        assert name in status.names(), f"{name} is not in the jax.numpy list"
        obj = status.resolve(name)
        if name in status.REFUSED:
            assert obj is not None and rules.lookup(obj) is None, f"{name} has a rule now"


def test_the_list_names_its_source():
    head = status.NAMES_FILE.read_text().split("\n", 6)
    assert any("jax-ml/jax" in line and "commit" in line for line in head)
    assert status.names()[:3] == ["numpy.ComplexWarning", "numpy.abs", "numpy.absolute"]


def test_rules_json_lists_the_functions_and_the_coverage(capsys):
    assert main(["rules", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == len(report["functions"]) >= 450
    assert {"function", "family", "notes"} <= set(report["functions"][0])
    counts = report["jax_numpy"]["counts"]
    assert sum(counts.values()) == len(status.names())
    assert set(counts) <= {"rule", "refused", "n/a"}


def test_rules_prints_function_family_notes(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "np.convolve" in out and "signal" in out and "sliding-window" in out
    assert "jax.numpy names" in out.splitlines()[-1]


def test_importing_astvmap_does_not_import_scipy():
    code = "import sys, astvmap, astvmap.rules; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
