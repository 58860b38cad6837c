"""The wild-code corpus (issue 13): per-example functions from real open-source NumPy
libraries, vmapped exactly as published.

Each entry names a library function object, an input maker (per-example-shaped
arguments with a leading batch of ``b``) and ``in_axes``. ``classify`` vmaps it,
compares with the loop oracle and answers one of:

- ``"vectorised"``: equals the loop, no ``PerformanceWarning``;
- ``"fallback"``: equals the loop, with a ``PerformanceWarning`` (declared per-example run);
- ``"refused"``: ``UnsupportedError`` naming a ``file:line`` inside the library and quoting
  that line.

Anything else (a wrong result, another exception, a refusal that does not name the
library's line) raises ``CorpusFailure`` (or the assertion/exception itself).
``EXPECTED`` records each entry's class, so the test fails on a regression and asks for
the table to be updated on an improvement. ``"bug"`` marks an entry that fails in astvmap
today (listed in /work/wild-bugs.md); its test is a strict xfail.

``python -m tests.wild_corpus`` prints the per-library counts (the README's "Real code"
table); ``python -m tests.wild_corpus --observe`` classifies every entry and prints what
it sees.
"""

from __future__ import annotations

import linecache
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.testing import assert_same, loop

LIBRARIES = ("transforms3d", "ahrs", "numpy_financial", "pymap3d", "colour")
CLASSES = ("vectorised", "fallback", "refused")


class CorpusFailure(AssertionError):
    """vmap neither matched the loop nor refused with the library's file:line."""


@dataclass(frozen=True)
class Entry:
    library: str  # the importable top-level package
    name: str  # dotted path of the function inside the library
    make: Callable[[np.random.Generator, int], tuple]  # (rng, batch) -> args
    in_axes: Any
    expected: str  # one of CLASSES, or "bug"
    reason: str = ""  # for "bug": what goes wrong (see /work/wild-bugs.md)
    raises: type[BaseException] | None = None  # for "bug": the exception it fails with today
    # Further in_axes mixes (some arguments unbatched: the maker's example 0 is passed),
    # each with its own expected class: ((in_axes, expected), ...).
    mixes: tuple = ()
    # For a method of a library object (a filter's update step): builds the bound method;
    # called afresh for the loop and for vmap, so state set by __init__ is never shared.
    build: Callable[[], Callable] | None = None

    @property
    def id(self) -> str:
        return f"{self.library}.{self.name}"

    def function(self) -> Callable:
        if self.build is not None:
            return self.build()
        obj: Any = __import__(self.library)
        for part in self.name.split("."):
            obj = getattr(obj, part)
        return obj


# ---- input makers: per-example shapes with a leading batch ------------------------


def _unit(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    v = rng.normal(size=(b, n))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _quat(rng: np.random.Generator, b: int) -> np.ndarray:
    q = _unit(rng, b, 4)
    q[:, 0] = np.abs(q[:, 0]) + 0.1  # away from w = 0, where sign conventions flip
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _rotmat(rng: np.random.Generator, b: int) -> np.ndarray:
    # Rotation matrices from unit quaternions, by the textbook formula.
    w, x, y, z = _quat(rng, b).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        1,
    )


def _affine(rng: np.random.Generator, b: int) -> np.ndarray:
    a = np.zeros((b, 4, 4))
    a[:, :3, :3] = _rotmat(rng, b) * rng.uniform(0.5, 2.0, size=(b, 1, 3))
    a[:, :3, 3] = rng.normal(size=(b, 3))
    a[:, 3, 3] = 1.0
    return a


def _angles(rng: np.random.Generator, b: int, k: int = 3) -> tuple:
    return tuple(rng.uniform(-1.2, 1.2, size=b) for _ in range(k))


def _u(lo: float, hi: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, b: rng.uniform(lo, hi, size=b)


def _scalars(*ranges: tuple[float, float]) -> Callable[[np.random.Generator, int], tuple]:
    return lambda rng, b: tuple(rng.uniform(lo, hi, size=b) for lo, hi in ranges)


def _colour3(lo: float = 0.05, hi: float = 0.95) -> Callable[[np.random.Generator, int], tuple]:
    return lambda rng, b: (rng.uniform(lo, hi, size=(b, 3)),)


def _lab(rng: np.random.Generator, b: int) -> np.ndarray:
    return np.stack([rng.uniform(20, 80, b), rng.uniform(-40, 40, b), rng.uniform(-40, 40, b)], -1)


def _imu(rng: np.random.Generator, b: int, kind: str) -> np.ndarray:
    """Gyroscope (rad/s), accelerometer (m/s^2, about gravity) or magnetometer (nT)."""
    if kind == "gyr":
        return rng.normal(scale=0.3, size=(b, 3))
    if kind == "acc":
        return np.array([0.0, 0.0, 9.81]) + rng.normal(scale=0.5, size=(b, 3))
    return np.array([21000.0, 1500.0, -43000.0]) + rng.normal(scale=500.0, size=(b, 3))


def _filter(cls: str, **kw: Any) -> Callable[[], Any]:
    def build() -> Any:
        import ahrs.filters

        return getattr(ahrs.filters, cls)(**kw)

    return build


def _cashflows(rng: np.random.Generator, b: int) -> np.ndarray:
    flows = rng.uniform(20, 60, size=(b, 6))
    flows[:, 0] = -rng.uniform(100, 150, size=b)
    return flows


LAT, LON, ALT = (-70.0, 70.0), (-170.0, 170.0), (0.0, 3000.0)
EAST = (-5e4, 5e4)

T3 = "transforms3d"
AH = "ahrs"
NPF = "numpy_financial"
PM = "pymap3d"
CL = "colour"

# fmt: off
TABLE: list[Entry] = [
    # ---- transforms3d: rotations and affines ---------------------------------------
    Entry(T3, "quaternions.quat2mat", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "quaternions.mat2quat", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(T3, "quaternions.qmult", lambda r, b: (_quat(r, b), _quat(r, b)), 0, "vectorised", mixes=(((0, None), "vectorised"), ((None, 0), "vectorised"))),
    Entry(T3, "quaternions.qconjugate", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "quaternions.qnorm", lambda r, b: (r.normal(size=(b, 4)),), 0, "vectorised"),
    Entry(T3, "quaternions.qisunit", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "quaternions.qinverse", lambda r, b: (r.normal(size=(b, 4)),), 0, "vectorised"),
    Entry(T3, "quaternions.qexp", lambda r, b: (0.5 * r.normal(size=(b, 4)),), 0, "vectorised"),
    Entry(T3, "quaternions.qlog", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "quaternions.qpow", lambda r, b: (_quat(r, b), 2.5), (0, None), "vectorised"),
    Entry(T3, "quaternions.rotate_vector", lambda r, b: (r.normal(size=(b, 3)), _quat(r, b)), 0, "vectorised", mixes=(((0, None), "vectorised"), ((None, 0), "vectorised"))),
    Entry(T3, "quaternions.axangle2quat", lambda r, b: (_unit(r, b, 3), _u(-3, 3)(r, b)), 0, "vectorised"),
    Entry(T3, "quaternions.quat2axangle", lambda r, b: (_quat(r, b),), 0, "fallback"),
    Entry(T3, "quaternions.fillpositive", lambda r, b: (0.5 * _unit(r, b, 3),), 0, "fallback"),
    Entry(T3, "quaternions.nearly_equivalent", lambda r, b: (_quat(r, b), _quat(r, b)), 0, "vectorised"),
    Entry(T3, "euler.euler2mat", lambda r, b: _angles(r, b), 0, "vectorised"),
    Entry(T3, "euler.euler2quat", lambda r, b: _angles(r, b), 0, "vectorised"),
    Entry(T3, "euler.mat2euler", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(T3, "euler.quat2euler", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "euler.euler2axangle", lambda r, b: _angles(r, b), 0, "fallback"),
    Entry(T3, "euler.axangle2euler", lambda r, b: (_unit(r, b, 3), _u(-3, 3)(r, b)), 0, "vectorised"),
    Entry(T3, "taitbryan.euler2mat", lambda r, b: _angles(r, b), 0, "fallback"),
    Entry(T3, "taitbryan.euler2quat", lambda r, b: _angles(r, b), 0, "vectorised"),
    Entry(T3, "taitbryan.mat2euler", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(T3, "taitbryan.quat2euler", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(T3, "axangles.axangle2mat", lambda r, b: (_unit(r, b, 3), _u(-3, 3)(r, b)), 0, "vectorised", mixes=(((None, 0), "vectorised"),)),
    Entry(T3, "axangles.axangle2aff", lambda r, b: (_unit(r, b, 3), _u(-3, 3)(r, b)), 0, "vectorised"),
    Entry(T3, "axangles.mat2axangle", lambda r, b: (_rotmat(r, b),), 0, "fallback"),
    Entry(T3, "affines.compose", lambda r, b: (r.normal(size=(b, 3)), _rotmat(r, b), _u(0.5, 2)(r, b * 3).reshape(b, 3)), 0, "vectorised"),
    Entry(T3, "affines.decompose44", lambda r, b: (_affine(r, b),), 0, "vectorised"),
    Entry(T3, "zooms.zfdir2mat", lambda r, b: (_u(0.5, 2)(r, b), _unit(r, b, 3)), 0, "fallback"),
    Entry(T3, "reflections.rfnorm2mat", lambda r, b: (_unit(r, b, 3),), 0, "vectorised"),
    Entry(T3, "reflections.rfnorm2aff", lambda r, b: (_unit(r, b, 3),), 0, "vectorised"),
    Entry(T3, "shears.striu2mat", lambda r, b: (r.normal(size=(b, 3)),), 0, "vectorised"),
    # ---- ahrs: attitude from one IMU sample, one filter step per example ----------
    Entry(AH, "common.orientation.q2R", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.q2euler", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.q2rpy", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.q_prod", lambda r, b: (_quat(r, b), _quat(r, b)), 0, "vectorised"),
    Entry(AH, "common.orientation.q_conj", lambda r, b: (_quat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.q_norm", lambda r, b: (r.normal(size=(b, 4)),), 0, "vectorised"),
    Entry(AH, "common.orientation.q_rot", lambda r, b: (_quat(r, b), r.normal(size=(b, 3))), 0, "vectorised"),
    Entry(AH, "common.orientation.rpy2q", lambda r, b: (r.uniform(-1.2, 1.2, (b, 3)),), 0, "vectorised"),
    Entry(AH, "common.orientation.cardan2q", lambda r, b: (r.uniform(-1.2, 1.2, (b, 3)),), 0, "vectorised"),
    Entry(AH, "common.orientation.axang2quat", lambda r, b: (_unit(r, b, 3), _u(-3, 3)(r, b)), 0, "vectorised"),
    Entry(AH, "common.orientation.acc2q", lambda r, b: (_imu(r, b, "acc"),), 0, "vectorised"),
    Entry(AH, "common.orientation.am2q", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "vectorised"),
    Entry(AH, "common.orientation.am2angles", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "vectorised"),
    Entry(AH, "common.orientation.ecompass", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "vectorised"),
    Entry(AH, "common.orientation.shepperd", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.hughes", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.chiaverini", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(AH, "common.orientation.itzhack", lambda r, b: (_rotmat(r, b),), 0, "fallback"),
    Entry(AH, "common.orientation.sarabandi", lambda r, b: (_rotmat(r, b),), 0, "vectorised"),
    Entry(AH, "filters.Madgwick().updateIMU", lambda r, b: (_quat(r, b), _imu(r, b, "gyr"), _imu(r, b, "acc")), 0, "fallback", build=lambda: _filter("Madgwick")().updateIMU),
    Entry(AH, "filters.Madgwick().updateMARG", lambda r, b: (_quat(r, b), _imu(r, b, "gyr"), _imu(r, b, "acc"), _imu(r, b, "mag")), 0, "fallback", build=lambda: _filter("Madgwick")().updateMARG),
    Entry(AH, "filters.Mahony().updateIMU", lambda r, b: (_quat(r, b), _imu(r, b, "gyr"), _imu(r, b, "acc")), 0, "fallback", build=lambda: _filter("Mahony")().updateIMU),
    Entry(AH, "filters.AngularRate().update", lambda r, b: (_quat(r, b), _imu(r, b, "gyr")), 0, "fallback", build=lambda: _filter("AngularRate")().update),
    Entry(AH, "filters.EKF().update", lambda r, b: (_quat(r, b), _imu(r, b, "gyr"), _imu(r, b, "acc")), 0, "fallback", build=lambda: _filter("EKF")().update),
    Entry(AH, "filters.Tilt().estimate", lambda r, b: (_imu(r, b, "acc"),), 0, "vectorised", build=lambda: _filter("Tilt")().estimate),
    Entry(AH, "filters.TRIAD().estimate", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "fallback", build=lambda: _filter("TRIAD")().estimate),
    Entry(AH, "filters.QUEST().estimate", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "fallback", build=lambda: _filter("QUEST")().estimate),
    Entry(AH, "filters.SAAM().estimate", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "vectorised", build=lambda: _filter("SAAM")().estimate),
    Entry(AH, "filters.FQA().estimate", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "fallback", build=lambda: _filter("FQA")().estimate),
    Entry(AH, "filters.FLAE().estimate", lambda r, b: (_imu(r, b, "acc"), _imu(r, b, "mag")), 0, "fallback", build=lambda: _filter("FLAE")().estimate),
    # ---- numpy-financial: one loan / one cash-flow series per example --------------
    Entry(NPF, "fv", _scalars((0.01, 0.1), (5, 30), (-200, -50), (-1000, 0)), 0, "vectorised", mixes=(((None, None, 0, None), "vectorised"),)),
    Entry(NPF, "pv", _scalars((0.01, 0.1), (5, 30), (-200, -50), (0, 1000)), 0, "vectorised"),
    Entry(NPF, "pmt", _scalars((0.01, 0.1), (5, 30), (1000, 5000)), 0, "vectorised"),
    Entry(NPF, "nper", _scalars((0.01, 0.1), (-500, -300), (1000, 5000)), 0, "fallback"),
    Entry(NPF, "ipmt", lambda r, b: (_u(0.01, 0.1)(r, b), np.full(b, 3), _u(10, 30)(r, b), _u(1000, 5000)(r, b)), 0, "fallback"),
    Entry(NPF, "ppmt", lambda r, b: (_u(0.01, 0.1)(r, b), np.full(b, 3), _u(10, 30)(r, b), _u(1000, 5000)(r, b)), 0, "fallback"),
    Entry(NPF, "npv", lambda r, b: (_u(0.01, 0.1)(r, b), _cashflows(r, b)), 0, "vectorised", mixes=(((None, 0), "vectorised"),)),
    Entry(NPF, "irr", lambda r, b: (_cashflows(r, b),), 0, "fallback"),
    Entry(NPF, "mirr", lambda r, b: (_cashflows(r, b), _u(0.02, 0.1)(r, b), _u(0.02, 0.1)(r, b)), 0, "vectorised"),
    Entry(NPF, "rate", _scalars((10, 30), (-300, -100), (1000, 3000), (0, 10)), 0, "vectorised"),
    # ---- pymap3d: one point per example --------------------------------------------
    Entry(PM, "geodetic2ecef", _scalars(LAT, LON, ALT), 0, "vectorised"),
    Entry(PM, "ecef2geodetic", lambda r, b: tuple(np.array(_gd2ecef(r, b))), 0, "fallback"),
    Entry(PM, "geodetic2enu", _scalars(LAT, LON, ALT, LAT, LON, ALT), 0, "vectorised", mixes=(((0, 0, 0, None, None, None), "vectorised"),)),
    Entry(PM, "enu2geodetic", _scalars(EAST, EAST, (0, 1e3), LAT, LON, ALT), 0, "fallback"),
    Entry(PM, "geodetic2aer", _scalars(LAT, LON, ALT, LAT, LON, ALT), 0, "fallback"),
    Entry(PM, "aer2geodetic", _scalars((0, 360), (5, 85), (1e3, 1e5), LAT, LON, ALT), 0, "fallback"),
    Entry(PM, "enu2aer", _scalars(EAST, EAST, (1, 1e3)), 0, "fallback"),
    Entry(PM, "aer2enu", _scalars((0, 360), (-80, 80), (1, 1e5)), 0, "vectorised"),
    Entry(PM, "ecef2enu", lambda r, b: (*_gd2ecef(r, b), *_scalars(LAT, LON, ALT)(r, b)), 0, "vectorised"),
    Entry(PM, "enu2ecef", _scalars(EAST, EAST, (0, 1e3), LAT, LON, ALT), 0, "vectorised"),
    Entry(PM, "geodetic2ned", _scalars(LAT, LON, ALT, LAT, LON, ALT), 0, "vectorised"),
    Entry(PM, "enu2uvw", _scalars(EAST, EAST, (0, 1e3), LAT, LON), 0, "vectorised", mixes=(((0, 0, 0, None, None), "vectorised"),)),
    Entry(PM, "uvw2enu", _scalars(EAST, EAST, EAST, LAT, LON), 0, "vectorised"),
    Entry(PM, "geodetic2geocentric", _scalars(LAT, ALT), 0, "vectorised"),
    Entry(PM, "geodetic2isometric", _scalars(LAT), 0, "fallback"),
    Entry(PM, "geodetic2rectifying", _scalars(LAT), 0, "vectorised"),
    # ---- colour-science: one colour per example ------------------------------------
    Entry(CL, "xyY_to_XYZ", _colour3(), 0, "fallback"),
    Entry(CL, "XYZ_to_xy", _colour3(), 0, "fallback"),
    Entry(CL, "Lab_to_LCHab", lambda r, b: (_lab(r, b),), 0, "fallback"),
    Entry(CL, "RGB_to_HSV", _colour3(), 0, "fallback"),
    Entry(CL, "HSV_to_RGB", _colour3(), 0, "fallback"),
    Entry(CL, "RGB_to_CMY", _colour3(), 0, "vectorised"),
    Entry(CL, "XYZ_to_Oklab", _colour3(), 0, "fallback"),
    Entry(CL, "XYZ_to_IPT", _colour3(), 0, "fallback"),
    Entry(CL, "difference.delta_E_CIE1976", lambda r, b: (_lab(r, b), _lab(r, b)), 0, "fallback"),
    Entry(CL, "difference.delta_E_CIE2000", lambda r, b: (_lab(r, b), _lab(r, b)), 0, "fallback"),
    Entry(CL, "temperature.xy_to_CCT_McCamy1992", lambda r, b: (np.stack([_u(0.3, 0.35)(r, b), _u(0.3, 0.35)(r, b)], -1),), 0, "fallback"),
]
# fmt: on


def _gd2ecef(rng: np.random.Generator, b: int) -> tuple:
    import pymap3d

    return pymap3d.geodetic2ecef(*_scalars(LAT, LON, ALT)(rng, b))


# ---- classification ------------------------------------------------------------------


def _library_dir(library: str) -> str:
    mod = sys.modules.get(library) or __import__(library)
    return os.path.dirname(os.path.realpath(mod.__file__))


def _check_refusal(entry: Entry, err: UnsupportedError) -> str:
    """The refusal must name a file:line inside the library and quote that line."""
    lib = _library_dir(entry.library)
    if err.filename is None or err.lineno is None:
        raise CorpusFailure(f"{entry.id}: refused without a file:line: {err}") from err
    path = os.path.realpath(err.filename)
    if not path.startswith(lib + os.sep):
        raise CorpusFailure(
            f"{entry.id}: refused naming {err.filename}:{err.lineno}, not a line of "
            f"{entry.library}: {err}"
        ) from err
    line = linecache.getline(path, err.lineno).strip()
    if not line or f"{err.filename}:{err.lineno}" not in str(err) or line not in str(err):
        raise CorpusFailure(
            f"{entry.id}: refusal does not quote {err.filename}:{err.lineno} ({line!r}): {err}"
        ) from err
    return str(err)


def _unbatch(args: tuple, primary: Any, mix: tuple) -> tuple:
    """Arguments for ``mix``: those it leaves unbatched (and the primary maps) are the
    maker's example 0."""
    axes = primary if isinstance(primary, tuple) else (primary,) * len(args)
    return tuple(a[0] if m is None and ax is not None else a for a, ax, m in zip(args, axes, mix))


def _run_once(entry: Entry, b: int, mix: tuple | None = None) -> tuple[str, str]:
    args = entry.make(np.random.default_rng(b), b)
    in_axes = entry.in_axes
    if mix is not None:
        args, in_axes = _unbatch(args, entry.in_axes, mix), mix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own warnings, per example
        want = loop(entry.function(), args, in_axes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = vmap(entry.function(), in_axes=in_axes)(*args)
        except UnsupportedError as err:
            return "refused", _check_refusal(entry, err)
    assert_same(got, want, rtol=1e-7, atol=1e-9)
    perf = [w for w in caught if issubclass(w.category, PerformanceWarning)]
    if perf:
        return "fallback", str(perf[0].message)
    return "vectorised", ""


def classify(
    entry: Entry, batches: tuple[int, ...] = (1, 4), mix: tuple | None = None
) -> tuple[str, str]:
    """The entry's class, checked at each batch size (they must agree), with the
    entry's own ``in_axes`` or with the argument mix ``mix``."""
    seen = [_run_once(entry, b, mix) for b in batches]
    kinds = {k for k, _ in seen}
    if len(kinds) != 1:
        raise CorpusFailure(f"{entry.id}: the class depends on the batch size: {seen}")
    return seen[0]


def counts(table: list[Entry] = TABLE) -> dict[str, dict[str, int]]:
    """Per library, how many entries each expected class has ("bug" counts as refused
    work not done: it is reported in its own column)."""
    out: dict[str, dict[str, int]] = {}
    for e in table:
        row = out.setdefault(e.library, {c: 0 for c in (*CLASSES, "bug")})
        row[e.expected] += 1
    return out


DISPLAY = {
    "transforms3d": "transforms3d (rotations)",
    "ahrs": "ahrs (attitude estimation)",
    "numpy_financial": "numpy-financial (finance)",
    "pymap3d": "pymap3d (geodesy)",
    "colour": "colour-science (colour)",
}


def counts_table(table: list[Entry] = TABLE) -> str:
    """The README's "Real code" table, regenerated from the expected classes."""
    rows = counts(table)
    lines = [
        "| library | functions | vectorised | fallback | refused | astvmap bug |",
        "|---|---|---|---|---|---|",
    ]
    tot = {c: 0 for c in (*CLASSES, "bug")}
    for lib in LIBRARIES:
        r = rows.get(lib, {c: 0 for c in tot})
        n = sum(r.values())
        lines.append(
            f"| {DISPLAY[lib]} | {n} | {r['vectorised']} | {r['fallback']} | {r['refused']} "
            f"| {r['bug']} |"
        )
        for c in tot:
            tot[c] += r[c]
    n = sum(tot.values())
    pct = round(100 * tot["vectorised"] / n) if n else 0
    lines.append(
        f"| **all** | {n} | {tot['vectorised']} ({pct}%) | {tot['fallback']} | {tot['refused']} "
        f"| {tot['bug']} |"
    )
    return "\n".join(lines)


def _observe() -> None:
    import time

    for e in TABLE:
        t = time.perf_counter()
        for mix in (None, *(m for m, _ in e.mixes)):
            try:
                kind, msg = classify(e, mix=mix)
            except Exception as err:  # noqa: BLE001 - an observation run reports everything
                kind, msg = "BUG", f"{type(err).__name__}: {err}"
            first = msg.splitlines()[0][:150] if msg else ""
            name = e.id if mix is None else f"{e.id}{mix}"
            print(f"{name:45s} {kind:10s} {time.perf_counter() - t:5.2f}s {first}", flush=True)
            if kind in ("BUG", "refused"):
                print("      " + msg.replace("\n", "\n      ")[:600], flush=True)


if __name__ == "__main__":
    if "--observe" in sys.argv:
        _observe()
    else:
        print(counts_table())
