"""Random draws under ``vmap(randomness=...)``: "error", "different", "same".

"different" makes one draw with the batch prepended to ``size``; with one draw call
per example its numbers are exactly the loop's (drawn from an identically seeded
generator), which these tests check distribution by distribution. Where the order
differs (masked control flow) the expected numbers are written out; distribution and
independence checks use fixed seeds, so nothing here is flaky.
"""

import numpy as np
import pytest

from astvmap import UnsupportedError, vmap
from astvmap.testing import loop

rng = np.random.default_rng(0)
GLOBAL_RNG = np.random.default_rng(1)


# ------------------------------------------------- one draw per example, many kinds
def d_random(x, r):
    return x + r.random(size=3)


def d_standard_normal_scalar(x, r):
    return x * r.standard_normal()


def d_normal_batched_loc(x, r):
    return r.normal(x, 2.0)


def d_normal_batched_scalar_loc_with_size(x, r):
    return r.normal(x[0], 1.0, size=(2, 2))


def d_uniform(x, r):
    return r.uniform(-1.0, 1.0, size=(2,)) + x[1]


def d_integers_like_x(x, r):
    return r.integers(0, 10, size=x.shape)


def d_exponential(x, r):
    return r.exponential(2.0, size=3)


def d_gamma_batched_shape(x, r):
    return r.gamma(np.abs(x) + 0.5)


def d_binomial(x, r):
    return r.binomial(10, 0.3, size=2)


def d_poisson_batched(x, r):
    return r.poisson(np.abs(x))


def d_standard_t(x, r):
    return r.standard_t(3.0)


def d_choice(x, r):
    return r.choice(5, size=3)


def d_choice_from_array(x, r):
    return r.choice(np.array([1.5, 2.5, 4.0]), size=2, p=np.array([0.2, 0.3, 0.5]))


def d_multivariate_normal(x, r):
    return r.multivariate_normal(np.zeros(3), np.eye(3) + 0.5) + x


def d_dirichlet(x, r):
    return r.dirichlet(np.ones(3), size=2)


def d_float32(x, r):
    return r.standard_normal(size=3, dtype=np.float32)


GENERATOR_DRAWS = [
    d_random,
    d_standard_normal_scalar,
    d_normal_batched_loc,
    d_normal_batched_scalar_loc_with_size,
    d_uniform,
    d_integers_like_x,
    d_exponential,
    d_gamma_batched_shape,
    d_binomial,
    d_poisson_batched,
    d_standard_t,
    d_choice,
    d_choice_from_array,
    d_multivariate_normal,
    d_dirichlet,
    d_float32,
]


def legacy_rand(x):
    return np.random.rand(2, 3) + x[0]


def legacy_randn_scalar(x):
    return x * np.random.randn()


def legacy_normal(x):
    return np.random.normal(x, 1.0)


def legacy_randint(x):
    return np.random.randint(0, 5, size=2)


def legacy_random_scalar(x):
    return np.random.random() + x


def legacy_sample(x):
    return np.random.sample(3)


def legacy_choice(x):
    return np.random.choice(4, size=2)


LEGACY_DRAWS = [
    legacy_rand,
    legacy_randn_scalar,
    legacy_normal,
    legacy_randint,
    legacy_random_scalar,
    legacy_sample,
    legacy_choice,
]


def _equal(got, want):
    assert got.shape == np.shape(want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("f", GENERATOR_DRAWS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("batch", [1, 6])
def test_different_equals_the_loop_with_a_seeded_generator(f, batch):
    X = rng.standard_normal((batch, 3))
    got = vmap(f, in_axes=(0, None), randomness="different")(X, np.random.default_rng(7))
    want = loop(f, (X, np.random.default_rng(7)), in_axes=(0, None))
    if f is d_multivariate_normal:
        # The same normals, transformed by one matrix product for the batch: equal up
        # to the rounding of that product.
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    else:
        _equal(got, want)


@pytest.mark.parametrize("f", LEGACY_DRAWS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("batch", [1, 6])
def test_different_equals_the_loop_with_the_legacy_global_state(f, batch):
    X = rng.standard_normal((batch, 3))
    np.random.seed(11)
    got = vmap(f, randomness="different")(X)
    np.random.seed(11)
    _equal(got, loop(f, (X,)))


def global_draw(x):
    return x + GLOBAL_RNG.normal(size=3)


def make_closure(r):
    def closure_draw(x):
        return x + r.normal(size=3)

    return closure_draw


def test_generators_from_globals_and_closures():
    global GLOBAL_RNG
    X = rng.standard_normal((4, 3))
    f = vmap(global_draw, randomness="different")
    for seed in (3, 4):  # the global is read at call time, as the loop reads it
        GLOBAL_RNG = np.random.default_rng(seed)
        got = f(X)
        GLOBAL_RNG = np.random.default_rng(seed)
        _equal(got, loop(global_draw, (X,)))
    closure = make_closure(np.random.default_rng(5))
    got = vmap(closure, randomness="different")(X)
    _equal(got, loop(make_closure(np.random.default_rng(5)), (X,)))


def nested_draw(x, r):
    return x + r.normal(size=2)


def test_nested_vmaps_draw_in_the_loop_order():
    X = rng.standard_normal((2, 3, 2))
    inner = vmap(nested_draw, in_axes=(0, None), randomness="different")
    got = vmap(inner, in_axes=(0, None), randomness="different")(X, np.random.default_rng(8))
    r = np.random.default_rng(8)
    want = np.stack([np.stack([nested_draw(xb, r) for xb in xa]) for xa in X])
    _equal(got, want)


# -------------------------------------------------- distribution and independence
def two_normals(x, r):
    return r.normal(size=2) + x * 0.0


def small_integers(x, r):
    return r.integers(0, 4, dtype=np.uint8) + x * 0


def test_different_draws_are_independent_and_well_distributed():
    n = 20_000
    got = vmap(two_normals, in_axes=(0, None), randomness="different")(
        np.zeros(n), np.random.default_rng(2024)
    )
    assert got.shape == (n, 2)
    assert abs(got.mean()) < 0.03 and abs(got.std() - 1.0) < 0.03
    # Examples are independent of each other, and the two numbers of one example too.
    assert abs(np.corrcoef(got[:-1, 0], got[1:, 0])[0, 1]) < 0.03
    assert abs(np.corrcoef(got[:, 0], got[:, 1])[0, 1]) < 0.03
    assert len(np.unique(got[:, 0])) == n


def test_small_integer_dtypes_are_well_distributed():
    # integers with 8- or 16-bit (or bool) dtypes buffer their random bits, so one
    # draw of the batch is not the loop's numbers; the distribution is the same.
    n = 20_000
    got = vmap(small_integers, in_axes=(0, None), randomness="different")(
        np.zeros(n, dtype=np.int64), np.random.default_rng(5)
    )
    counts = np.bincount(got.astype(np.int64), minlength=4)
    assert counts.sum() == n and np.all(np.abs(counts - n / 4) < 4 * np.sqrt(n * 3 / 16))


# ------------------------------------------------------------------------------ same
def shared_noise(x, r):
    return x + r.normal(size=3)


def test_same_draws_once_and_shares_it():
    X = rng.standard_normal((5, 3))
    got = vmap(shared_noise, in_axes=(0, None), randomness="same")(X, np.random.default_rng(9))
    # One draw, shared: the loop's first example's draw.
    first = shared_noise(X[0], np.random.default_rng(9)) - X[0]
    np.testing.assert_array_equal(got, X + np.random.default_rng(9).normal(size=3))
    np.testing.assert_allclose(got - X, np.repeat(first[None], 5, axis=0), rtol=1e-15, atol=1e-15)


def test_same_legacy_and_shape_arguments():
    X = rng.standard_normal((4, 3))
    np.random.seed(3)
    got = vmap(legacy_rand, randomness="same")(X)
    np.random.seed(3)
    want = np.random.rand(2, 3)
    np.testing.assert_array_equal(got, want[None] + X[:, 0, None, None])


def test_same_refuses_parameters_that_differ_per_example():
    with pytest.raises(UnsupportedError, match="parameters that differ per example") as info:
        vmap(d_normal_batched_loc, in_axes=(0, None), randomness="same")(
            np.zeros((3, 2)), np.random.default_rng(0)
        )
    assert "hint: draw standard noise once" in str(info.value)


# ------------------------------------------------------------- masked control flow
def masked_draw(x, r):
    if x[0] > 0:
        y = r.normal()
    else:
        y = 0.0
    return y


def test_masked_draw_draws_for_every_lane_and_keeps_the_active_ones():
    X = np.array([[1.0], [-1.0], [2.0], [-3.0], [0.5]])
    got = vmap(masked_draw, in_axes=(0, None), randomness="different")(X, np.random.default_rng(6))
    every_lane = np.random.default_rng(6).normal(size=5)
    np.testing.assert_array_equal(got, np.where(X[:, 0] > 0, every_lane, 0.0))


# ----------------------------------------------------------------------------- error
def draw_with_unmapped_generator(x, r):
    return x + r.normal(size=3)


def helper_draw(n):
    return np.random.normal(size=n)


def calls_helper_draw(x):
    return x + helper_draw(3)


def returns_a_draw(x):
    return np.random.normal(size=3)


@pytest.mark.parametrize(
    "f,args,in_axes,call",
    [
        (global_draw, (), 0, "GLOBAL_RNG.normal"),
        (make_closure(np.random.default_rng(0)), (), 0, "r.normal"),
        (draw_with_unmapped_generator, (np.random.default_rng(0),), (0, None), "r.normal"),
        (legacy_normal, (), 0, "np.random.normal"),
        (legacy_rand, (), 0, "np.random.rand"),
        (calls_helper_draw, (), 0, "np.random.normal"),
        (returns_a_draw, (), 0, "np.random.normal"),
    ],
)
def test_error_mode_names_the_call_and_the_line(f, args, in_axes, call):
    X = rng.standard_normal((3, 3))
    for kwargs in ({}, {"randomness": "error"}):
        with pytest.raises(UnsupportedError) as info:
            vmap(f, in_axes=in_axes, **kwargs)(X, *args)
        message = str(info.value)
        assert f"`{call}(...)` draws random numbers" in message
        assert "test_randomness.py:" in message and "hint: pass randomness=" in message


def test_helper_without_batched_arguments_cannot_draw_per_example():
    X = rng.standard_normal((3, 3))
    with pytest.raises(UnsupportedError, match="batch size is not known here"):
        vmap(calls_helper_draw, randomness="different")(X)
    np.random.seed(1)
    got = vmap(calls_helper_draw, randomness="same")(X)
    np.random.seed(1)
    np.testing.assert_array_equal(got, X + np.random.normal(size=3))


def seeded_inside(x):
    g = np.random.default_rng(42)
    return g.normal(size=3)


def unseeded_inside(x):
    g = np.random.default_rng()
    return g.normal(size=3)


def reseeds(x):
    np.random.seed(0)
    return x + np.random.normal()


def permutes(x, r):
    return x[r.permutation(3)]


def test_generators_and_state_inside_the_function():
    X = rng.standard_normal((3, 3))
    # Seeded inside: every example of the loop draws the same numbers; so does the batch.
    np.testing.assert_array_equal(
        vmap(seeded_inside, randomness="different")(X), loop(seeded_inside, (X,))
    )
    with pytest.raises(UnsupportedError, match="without a seed"):
        vmap(unseeded_inside, randomness="different")(X)
    with pytest.raises(UnsupportedError, match="sets or reads the random state"):
        vmap(reseeds, randomness="different")(X)
    np.testing.assert_array_equal(vmap(reseeds, randomness="same")(X), loop(reseeds, (X,)))
    with pytest.raises(UnsupportedError, match="no batched form"):
        vmap(permutes, in_axes=(0, None), randomness="different")(X, np.random.default_rng(0))


# ------------------------------------------------------------------------ the API
def no_rule(x, w):
    return np.histogram(x, bins=2, range=(-3.0, 3.0))[0] * w + np.random.normal()


def test_same_does_not_fall_back_to_the_loop():
    X, w = rng.standard_normal((3, 4)), rng.standard_normal(2)
    with pytest.raises(UnsupportedError, match="per-example loop fallback is not used"):
        vmap(no_rule, in_axes=(0, None), randomness="same")(X, w)


def test_bad_randomness():
    with pytest.raises(ValueError, match="randomness"):
        vmap(shared_noise, randomness="sometimes")


def test_the_mode_is_part_of_the_cache_key():
    X = rng.standard_normal((4, 3))
    same = vmap(shared_noise, in_axes=(0, None), randomness="same")(X, np.random.default_rng(1))
    diff = vmap(shared_noise, in_axes=(0, None), randomness="different")(
        X, np.random.default_rng(1)
    )
    np.testing.assert_array_equal(same, X + np.random.default_rng(1).normal(size=3))
    np.testing.assert_array_equal(diff, X + np.random.default_rng(1).normal(size=(4, 3)))
    assert "batch_size" in vmap(shared_noise, in_axes=(0, None), randomness="different").emit(
        X, np.random.default_rng(1)
    )


# ------------------------------------- every distribution: one draw equals the loop's
# Parameters for each distribution of rules/random.py (one batched where it can be).
PARAMETERS = {
    "random": "",
    "random_sample": "",
    "standard_normal": "",
    "standard_exponential": "",
    "standard_cauchy": "",
    "normal": "x, 2.0, ",
    "uniform": "x, x + 1.0, ",
    "integers": "0, 10, ",
    "randint": "0, 10, ",
    "exponential": "abs(x) + 0.5, ",
    "gamma": "abs(x) + 0.5, 2.0, ",
    "standard_gamma": "abs(x) + 0.5, ",
    "beta": "abs(x) + 0.5, 3.0, ",
    "binomial": "10, 0.3, ",
    "poisson": "abs(x) + 0.5, ",
    "lognormal": "x, 0.5, ",
    "laplace": "x, 1.0, ",
    "logistic": "x, 1.0, ",
    "gumbel": "x, 1.0, ",
    "geometric": "0.3, ",
    "chisquare": "abs(x) + 1.0, ",
    "standard_t": "abs(x) + 1.0, ",
    "rayleigh": "abs(x) + 0.5, ",
    "weibull": "abs(x) + 0.5, ",
    "pareto": "abs(x) + 0.5, ",
    "power": "abs(x) + 0.5, ",
    "vonmises": "x, 2.0, ",
    "wald": "abs(x) + 0.5, 2.0, ",
    "triangular": "x - 1.0, x, x + 1.0, ",
    "negative_binomial": "3, 0.4, ",
    "f": "abs(x) + 1.0, 4.0, ",
    "hypergeometric": "5, 6, 4, ",
    "logseries": "0.5, ",
    "noncentral_chisquare": "abs(x) + 1.0, 1.0, ",
    "noncentral_f": "abs(x) + 1.0, 4.0, 1.0, ",
    "zipf": "2.0, ",
    "multinomial": "10, np.array([0.2, 0.3, 0.5]), ",
    "dirichlet": "np.ones(3), ",
}
LEGACY_ONLY = {"random_sample", "randint"}
GENERATOR_ONLY = {"integers"}


def _draw_module(tmp_path_factory, owner: str):
    from astvmap.rules.random import DISTRIBUTIONS, VECTOR_DRAWS

    from cli import load_module

    skip = GENERATOR_ONLY if owner == "legacy" else LEGACY_ONLY
    lines = ["import numpy as np\n"]
    for name, params in PARAMETERS.items():
        assert name in DISTRIBUTIONS or name in VECTOR_DRAWS
        if name in skip:
            continue
        call = f"np.random.{name}" if owner == "legacy" else f"r.{name}"
        size = "size=(2,)" if name not in VECTOR_DRAWS else "size=2"
        lines.append(f"\ndef {name}(x, r):\n    return {call}({params}{size})\n")
    path = tmp_path_factory.mktemp("draws") / f"draws_{owner}.py"
    path.write_text("".join(lines))
    return load_module(path)


@pytest.fixture(scope="module")
def generator_draws(tmp_path_factory):
    return _draw_module(tmp_path_factory, "generator")


@pytest.fixture(scope="module")
def legacy_draws(tmp_path_factory):
    return _draw_module(tmp_path_factory, "legacy")


def test_parameters_cover_every_distribution():
    from astvmap.rules.random import DISTRIBUTIONS, VECTOR_DRAWS

    assert set(PARAMETERS) == set(DISTRIBUTIONS) | set(VECTOR_DRAWS) - {"multivariate_normal"}


@pytest.mark.parametrize("name", [n for n in PARAMETERS if n not in LEGACY_ONLY])
def test_every_generator_distribution_equals_the_loop(name, generator_draws):
    f = getattr(generator_draws, name)
    X = rng.standard_normal((5, 2))
    got = vmap(f, in_axes=(0, None), randomness="different")(X, np.random.default_rng(3))
    _equal(got, loop(f, (X, np.random.default_rng(3)), in_axes=(0, None)))


@pytest.mark.parametrize("name", [n for n in PARAMETERS if n not in GENERATOR_ONLY])
def test_every_legacy_distribution_equals_the_loop(name, legacy_draws):
    f = getattr(legacy_draws, name)
    X = rng.standard_normal((5, 2))
    np.random.seed(4)
    got = vmap(f, in_axes=(0, None), randomness="different")(X, None)
    np.random.seed(4)
    _equal(got, loop(f, (X, None), in_axes=(0, None)))


def test_chunk_size_with_same_is_refused():
    # Each chunk would draw its own numbers; refused rather than computed.
    with pytest.raises(ValueError, match="chunk_size.*randomness='same'"):
        vmap(shared_noise, randomness="same", chunk_size=2)
