"""Real code, unchanged (issue 13): per-example functions published in open-source
NumPy libraries, vmapped exactly as published and checked against the loop.

The table lives in tests/wild_corpus.py. Each entry's class (vectorised / declared
fallback / refused) is recorded there: a regression fails, and so does an improvement,
whose message says which line of the table to update. A wrong result, another
exception, or a refusal that does not name the library's file:line always fails.
"""

import re
from pathlib import Path

import pytest

for _lib in ("transforms3d", "ahrs", "numpy_financial", "pymap3d", "colour"):
    # Test-only dependencies (the `test` and `wild` extras); CI installs them.
    pytest.importorskip(_lib)

from tests.wild_corpus import CLASSES, LIBRARIES, TABLE, classify, counts_table  # noqa: E402

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _params():
    """One case per entry (its own in_axes) and per further argument mix."""
    for e in TABLE:
        for mix, expected in ((None, e.expected), *e.mixes):
            marks = []
            if expected == "bug":
                # Only the known failure is expected: any other (a wrong result) fails.
                marks.append(pytest.mark.xfail(strict=True, reason=e.reason, raises=e.raises))
            name = e.id if mix is None else f"{e.id}{list(mix)}"
            yield pytest.param(e, mix, expected, id=name, marks=marks)


@pytest.mark.parametrize("entry, mix, expected", list(_params()))
def test_wild_function(entry, mix, expected):
    kind, message = classify(entry, mix=mix)
    where = entry.id if mix is None else f"{entry.id} with in_axes={mix}"
    if expected == "bug":
        pytest.fail(f"{where} no longer fails ({kind}): record its class in wild_corpus.py")
    assert kind == expected, (
        f"{where} is now {kind!r}, the table says {expected!r}: "
        + (
            "an improvement: update its entry in tests/wild_corpus.py and the README "
            "table (python -m tests.wild_corpus)"
            if CLASSES.index(kind) < CLASSES.index(expected)
            else "a regression"
        )
        + (f"\n{message}" if message else "")
    )


def test_the_corpus_is_what_issue_13_asks():
    # At least 40 distinct functions from at least 4 libraries.
    assert len({e.id for e in TABLE}) == len(TABLE), "duplicate entries"
    assert len(TABLE) >= 40
    assert {e.library for e in TABLE} == set(LIBRARIES)
    kinds = [e.expected for e in TABLE] + [k for e in TABLE for _, k in e.mixes]
    assert all(k in (*CLASSES, "bug") for k in kinds)
    bugs = [e for e in TABLE if "bug" in (e.expected, *(k for _, k in e.mixes))]
    assert all(e.reason and e.raises for e in bugs)


def test_readme_counts_are_the_tables():
    start = README.index("<!-- wild-corpus -->\n") + len("<!-- wild-corpus -->\n")
    end = README.index("<!-- /wild-corpus -->")
    assert README[start:end].strip() == counts_table(), "run: python -m tests.wild_corpus"


def test_the_optional_extras_name_the_libraries():
    # CI installs `.[test]`: the corpus must run there, not be skipped.
    toml = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    for extra in ("test", "wild"):
        block = re.search(rf"^{extra} = \[(.*?)^\]", toml, re.S | re.M)
        assert block, f"no `{extra}` extra in pyproject.toml"
        for dist in ("transforms3d", "ahrs", "numpy-financial", "pymap3d", "colour-science"):
            assert f'"{dist}>=' in block.group(1), f"{dist} missing from the `{extra}` extra"
