"""The probe (issue 13; astvmap/facts.py, astvmap/probing.py): the types of unbatched
values the source does not show are learned by running example 0 once.

Each vectorised case is checked against the loop oracle over batch sizes 1 and several
and batched/unbatched mixes, with a call counter showing that the batched call runs the
function body once (the loop would run it once per example) and that the probe runs it
at most once more, on the first call only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from astvmap import PerformanceWarning, UnsupportedError, vmap
from astvmap.errors import ProbeMismatch
from astvmap.testing import assert_same, loop

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(113)


class Calls:
    """How many times the per-example function bodies ran (a call in each of them)."""

    count = 0

    @staticmethod
    def tick() -> None:
        Calls.count += 1


def run(f, args, in_axes=0, **options):
    """vmap(f)(*args) with no per-example fallback; the body's runs counted."""
    Calls.count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        got = vmap(f, in_axes=in_axes, **options)(*args)
    return got, Calls.count


def check(f, args, in_axes=0):
    """Equal to the loop; one run of the body per batched call once warm (at most one
    more, the probe, on the first)."""
    want = loop(f, args, in_axes)
    got, first = run(f, args, in_axes)
    assert_same(got, want)
    assert first <= 2, first
    again, warm = run(f, args, in_axes)
    assert_same(again, want)
    assert warm == 1, warm


# ------------------------------------------------ an object built inside the function
class Spheroid:
    made = 0

    def __init__(self, a, b):
        self.a = a
        self.b = b

    @classmethod
    def named(cls, name):
        cls.made += 1
        a, b = _SPHEROIDS[name]
        return cls(a, b)


_SPHEROIDS = {"wgs84": (6378137.0, 6356752.31424518), "unit": (1.0, 0.5)}


def radius(lat, alt):
    Calls.tick()
    ell = Spheroid.named("wgs84")
    n = ell.a**2 / np.hypot(ell.a * np.cos(lat), ell.b * np.sin(lat))
    return (n + alt) * np.cos(lat)


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("in_axes", [(0, 0), (0, None), (None, 0)])
def test_float_attributes_of_an_object_built_inside(batch, in_axes):
    lat = RNG.uniform(-1.5, 1.5, batch) if in_axes[0] == 0 else 0.3
    alt = RNG.uniform(0, 1e3, batch) if in_axes[1] == 0 else 12.0
    check(radius, (lat, alt), in_axes)


def test_the_generated_code_checks_what_it_learned():
    text = vmap(radius).emit(np.ones(3), np.ones(3))
    assert 'lambda: ell.a, ("float",), "ell.a", "tests/test_probe.py:' in text
    assert "import astvmap.facts as _astvmap_facts" in text


# ------------------------------------- a lookup table of int tuples, indices of arrays
_AXES = {"xy": (0, 1, 0), "yz": (1, 2, 1), "zx": (2, 0, 0)}
_NEXT = [1, 2, 0, 1]


def swap_axes(v, axes="xy"):
    Calls.tick()
    try:
        i, j, flip = _AXES[axes]
    except KeyError:
        i, j, flip = axes  # a tuple of the caller's: what it holds is not known here
    k = _NEXT[i + flip]
    out = np.zeros(3)
    out[i] = v[j]
    out[j] = v[i]
    if flip:
        out[i] = -out[i]
    out[k] += v[k] * 2.0
    return out, v[k] - v[i]


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("axes", ["xy", "yz", "zx"])
def test_table_rows_index_batched_arrays_for_reading_and_writing(batch, axes):
    v = RNG.normal(size=(batch, 3))
    check(swap_axes, (v, axes), (0, None))


def test_table_rows_with_an_unbatched_array_written_by_batched_values():
    def spread(v, w):
        Calls.tick()
        i, j, flip = _AXES["yz"]
        k = _NEXT[i + flip]
        out = w.copy()  # unbatched until the write of a batched value
        out[k] = v[i] * w[j]
        return out

    check(spread, (RNG.normal(size=(4, 3)), np.arange(3.0)), (0, None))
    check(spread, (RNG.normal(size=(1, 3)), RNG.normal(size=(1, 3))), (0, 0))


# ------------------------------------------------ a helper's constant of unknown type
_GAINS = {3: 2.5, 4: np.array([1.0, 2.0, 3.0, 4.0])}


def _gain(n):
    return _GAINS[n]


def gained(x):
    Calls.tick()
    g = _gain(len(x))
    return x * g + 1.0


@pytest.mark.parametrize("batch", [1, 6])
def test_a_helper_result_of_unknown_type(batch):
    check(gained, (RNG.normal(size=(batch, 3)),))


def test_a_later_call_with_another_type_there_raises_naming_the_line():
    f = vmap(gained)
    f(np.ones((2, 3)))  # learns: g is a float
    # Same specialisation (one mapped argument of rank 1), but now g is an array.
    with pytest.raises(ProbeMismatch, match=r"test_probe\.py:\d+: `g` is an array of rank 1"):
        f(np.ones((2, 4)))


# -------------------------------------------------------- what the probe cannot learn
def unreached(x, mode):
    Calls.tick()
    if mode > 0:
        s = Spheroid.named("unit")
        return x * s.b
    return x + 1.0


def test_a_line_example_0_does_not_reach_keeps_the_refusal():
    with pytest.raises(UnsupportedError, match="could not learn this one") as info:
        vmap(unreached, in_axes=(0, None)).emit(np.ones((3, 2)), 0)
    assert "return x * s.b" in str(info.value)
    assert "object of unknown type" in str(info.value)


def test_what_one_call_learned_serves_a_call_taking_the_other_branch():
    def reached(x, mode):
        Calls.tick()
        if mode > 0:
            s = Spheroid.named("unit")
            return x * s.b
        return x + 1.0

    x = RNG.normal(size=(4, 2))
    check(reached, (x, 1), (0, None))  # example 0 reaches the line
    check(reached, (x, 0), (0, None))  # the same code, the other branch


_MIXED = [2, np.array([1.0, 2.0, 3.0])]


def two_visits(x):
    for k in range(2):
        s = _MIXED[k]
        x = x * s
    return x


def test_a_value_whose_type_differs_between_visits_keeps_the_refusal():
    with pytest.raises(UnsupportedError, match="differs between visits") as info:
        vmap(two_visits).emit(np.ones((3, 3)))
    assert "x = x * s" in str(info.value)


class Lazy:
    reads = 0

    @property
    def scale(self):
        Lazy.reads += 1
        return 2.0


def through_a_property(x):
    obj = _make_lazy()
    return x * obj.scale


def _make_lazy():
    return Lazy()


def test_a_property_is_never_read_by_the_probe():
    Lazy.reads = 0
    with pytest.raises(UnsupportedError, match="could not learn this one"):
        vmap(through_a_property).emit(np.ones((3, 2)))
    assert Lazy.reads == 1  # the function's own read on example 0, not the probe's


@pytest.mark.parametrize(
    "options", [{"randomness": "different"}, {"randomness": "same"}, {"axis_name": "batch"}]
)
def test_no_probe_with_random_draws_or_collectives(options):
    Spheroid.made = 0

    def wgs_radius(lat):
        ell = Spheroid.named("wgs84")
        return ell.a * np.cos(lat)

    with pytest.raises(UnsupportedError, match="object of unknown type") as info:
        vmap(wgs_radius, **options).emit(np.ones(3))
    assert "example 0" not in str(info.value)
    assert Spheroid.made == 0  # the function never ran


# ------------------------------------------------------------ the disk-cache hit path
USER_MODULE = """
import numpy as np


class Spheroid:
    made = 0

    def __init__(self, a, b):
        self.a, self.b = a, b

    @classmethod
    def named(cls, name):
        cls.made += 1
        return cls(6378137.0, 6356752.31424518)


def radius(lat):
    ell = Spheroid.named("wgs84")
    return ell.a**2 / np.hypot(ell.a * np.cos(lat), ell.b * np.sin(lat))
"""

RUN = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {folder!r})
import numpy as np
import astvmap
import probed_module as m
out = astvmap.vmap(m.radius)(np.linspace(0.0, 1.0, 4))
heavy = sorted(x for x in ("libcst", "black") if x in sys.modules)
print(json.dumps({{"out": out.tolist(), "heavy": heavy, "made": m.Spheroid.made}}))
"""


def test_a_disk_cache_hit_runs_no_probe_and_loads_no_rewrite_machinery(tmp_path):
    (tmp_path / "probed_module.py").write_text(USER_MODULE)
    env = {**os.environ, "ASTVMAP_CACHE_DIR": str(tmp_path / "cache")}
    code = RUN.format(root=str(ROOT), folder=str(tmp_path))

    def fresh() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = fresh(), fresh()
    assert first["made"] == 2  # the probe, then the batched call
    assert second["made"] == 1 and second["heavy"] == []
    assert second["out"] == first["out"]


def test_astvmap_emit_on_the_command_line_runs_nothing():
    from astvmap.emit import specialisation

    def wgs_height(lat):
        Calls.tick()
        ell = Spheroid.named("wgs84")
        return ell.b * np.sin(lat)

    Calls.count = 0
    with pytest.raises(UnsupportedError, match="object of unknown type"):
        specialisation(wgs_height, np.ones(3), run_example=False)
    assert Calls.count == 0
    assert "ell.b" in vmap(wgs_height).emit(np.ones(3))  # the library's emit may run it
    assert Calls.count == 1
