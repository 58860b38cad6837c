"""The README stays true: its commands, and its table of supported functions."""

from pathlib import Path

from astvmap import rules

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
