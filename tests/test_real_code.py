"""``emit`` over real pure-Python NumPy code: every function transforms or is refused.

The functions of NumPy's own Python modules, SciPy's, and a few scientific libraries
(tests/realcode.py lists them) are transformed with ranks guessed from annotations
or defaults. Each must transform or raise ``UnsupportedError`` naming a line; a
``TransformBug`` (an internal error), any other exception, or a transform slower
than the time limit fails.

- default (CI): a fixed sample, one function in ``realcode.EVERY`` of the
  cheap-to-import parts (``realcode.SAMPLE_PACKAGES``), chosen by a hash of its name;
- ``ASTVMAP_REAL_CODE=all``: every function of every code base (about 5,800; a few
  minutes). ``python -m tests.realcode`` runs the same and prints the counts and
  the bug groups.

Sample cases that fail today are strict xfails with the reason: a fix makes the case
pass, which fails the xfail, and the entry is deleted with the fix.
"""

from __future__ import annotations

import os

import pytest

from astvmap import rewrite

from . import realcode

FULL = os.environ.get("ASTVMAP_REAL_CODE", "") == "all"
OK = {"transformed", "unsupported", "no-source", "no-arguments"}

_STRING = (
    "a string literal split over lines (implicit concatenation whose first piece is on its "
    "own line) reaches ast.literal_eval with its indentation: IndentationError in "
    "Translator.expr_ConcatenatedString (issue 11, item 3)"
)
_FSTRING = (
    "implicit concatenation with an f-string piece: ast.literal_eval raises ValueError "
    "(malformed node JoinedStr) in Translator.expr_ConcatenatedString"
)
_RELATIVE = (
    "a relative import inside the function (`from .x import y`): Translator.bind_import "
    "execs it in an empty namespace, KeyError('__name__' not in globals)"
)
_OWNER = (
    "a function reached through a parameter (`formatter = formatdict[key]`-like values "
    "from arguments) is specialised with guards looked up in the module globals under the "
    "parameter's name: VmapError 'internal: the specialisation ... does not hold'"
)
XFAIL = {
    "numpy.polynomial.hermite_e:herme2poly": _RELATIVE,
    "numpy._core._internal:array_ufunc_errmsg_formatter": _FSTRING,
    "numpy._core.arrayprint:_get_format_function": _OWNER,
    "pytransform3d.rotations._plot:_plot_projected_parallelograms": _RELATIVE,
    **{
        case: _STRING
        for case in [
            "scipy.linalg._basic:_solve_toeplitz",
            "scipy.linalg._basic:solveh_banded",
            "scipy.linalg._decomp_qz:ordqz",
            "scipy.linalg._matfuncs:khatri_rao",
            "scipy.linalg._matfuncs:sinm",
            "scipy.linalg._solvers:_are_validate_args",
            "scipy.linalg._solvers:_solve_continuous_are",
            "scipy.linalg._solvers:_solve_discrete_are",
            "pytransform3d.rotations._euler:euler_from_quaternion",
            "pytransform3d.rotations._euler_deprecated:intrinsic_euler_xzx_from_active_matrix",
            "pytransform3d.rotations._euler_deprecated:intrinsic_euler_zxy_from_active_matrix",
            "pytransform3d.rotations._euler_deprecated:intrinsic_euler_zxz_from_active_matrix",
            "pytransform3d.rotations._quaternion:mrp_from_quaternion",
            "pytransform3d.rotations._quaternion:q_conj",
            "pytransform3d.rotations._rotors:rotor_apply",
            "pytransform3d.rotations._slerp:matrix_power",
            "pytransform3d.rotations._slerp:matrix_slerp",
            "pytransform3d.transformations._dual_quaternion:assert_unit_dual_quaternion",
            "pytransform3d.transformations._dual_quaternion:dq_conj",
            "pytransform3d.transformations._dual_quaternion:dual_quaternion_requires_renormalization",
            "pytransform3d.transformations._dual_quaternion:dual_quaternion_sclerp",
            "pytransform3d.transformations._dual_quaternion:dual_quaternion_squared_norm",
            "pytransform3d.transformations._dual_quaternion:pq_from_dual_quaternion",
            "pytransform3d.transformations._screws:screw_matrix_from_screw_axis",
            "pytransform3d.transformations._screws:transform_from_exponential_coordinates",
            "pytransform3d.transformations._screws:transform_from_transform_log",
            "pytransform3d.transformations._transform:rotate_transform",
        ]
    },
}


def _cases() -> list:
    if FULL:
        cases = realcode.collect()
    else:
        cases = realcode.sample(realcode.collect(packages=realcode.SAMPLE_PACKAGES), realcode.EVERY)
    out = []
    for case in cases:
        marks = []
        if case.id in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[case.id]))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    # Thousands of one-off specialisations: the disk cache would only fill up.
    monkeypatch.setenv("ASTVMAP_CACHE", "0")


@pytest.mark.parametrize("case", _cases())
def test_transforms_or_refuses(case):
    outcome = realcode.run_case(case)
    assert outcome.kind in OK, f"{case.id}: {outcome.kind}: {outcome.group}\n{outcome.error}"


def test_the_sample_is_large_and_mostly_supported_or_refused():
    """The sample covers every code base it names and is not empty by accident."""
    cases = realcode.sample(realcode.collect(packages=realcode.SAMPLE_PACKAGES), realcode.EVERY)
    assert len(cases) >= 150
    assert {c.codebase for c in cases} >= {"numpy", "scipy", "transforms3d", "pytransform3d"}


# ------------------------------------------------------------ the runner itself
def _some_case() -> realcode.Case:
    return realcode.Case("numpy", "numpy.lib._function_base_impl", "sinc")


def test_a_transform_bug_is_a_bug(monkeypatch):
    def broken(self, *args, **kwargs):
        raise KeyError("broken on purpose")

    monkeypatch.setattr(rewrite.Translator, "translate", broken)
    outcome = realcode.run_case(_some_case())
    assert outcome.kind == "bug"
    assert outcome.group == "KeyError at astvmap/pipeline.py in _transform"


def test_a_slow_transform_is_reported(monkeypatch):
    def slow(self, *args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(rewrite.Translator, "translate", slow)
    assert realcode.run_case(_some_case(), limit=0.5).kind == "slow"


def test_the_example_arguments_follow_annotations_then_defaults():
    def f(x: "n d", y, eps: float = 1e-3, *rest, scale=2.0):  # noqa: F722
        return x

    made = realcode.example_arguments(f)
    # x from its annotation (rank 2), y rank 1 by default; eps and scale keep their defaults.
    assert [a.shape for a in made.args] == [(2, 3, 3), (2, 3)]
    assert made.kwargs == {}


def test_the_runner_transforms_a_known_function():
    case = realcode.Case("numpy", "numpy.lib._twodim_base_impl", "fliplr")
    assert realcode.run_case(case).kind == "transformed"
