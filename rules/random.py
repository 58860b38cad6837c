"""Random draws: ``np.random.*`` (NumPy's global ``RandomState``) and the methods of a
``np.random.Generator`` or ``RandomState`` passed unmapped or read from the
function's globals or closure. ``vmap(randomness=...)`` (PyTorch's modes) decides:

- ``"error"`` (the default): every draw raises ``UnsupportedError`` naming the call.
- ``"different"``: one vectorised draw with the batch prepended to ``size``
  (``rng.normal(size=3)`` -> ``rng.normal(size=(batch_size, 3))``); distribution
  parameters that carry the batch are aligned to it. Every example gets its own,
  independent numbers. Example ``k``'s numbers are the ``k``-th block of the draw, so
  with one draw call per example they are the loop's numbers (see the README for
  where that holds).
- ``"same"``: the call is left as written: it draws once, and every example shares
  the draw. Parameters that differ per example are refused (NumPy's samplers cannot
  share one underlying draw across different parameters).

The rules are keyed on the class's functions (``np.random.Generator.normal``);
``rules.lookup`` maps a bound ``rng.normal`` to them. Errors are ``NeedsBatchError``:
a helper called without batched arguments is analysed on a best-effort basis, and a
draw there must not be passed over (the unchanged helper would share one draw).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
import numpy as np

from astvmap.errors import NeedsBatchError, UnsupportedError
from astvmap.values import ARRAY, NOVALUE, OBJECT, SCALAR, TREE, Val

from .registry import CATALOGUE, RULES, Arg, Binding, CallSite, Context, Out, literal

MODES = ("error", "different", "same")
_EITHER = "pass randomness='different' (independent draws per example) or randomness='same' (one draw shared by the batch)"

# Distribution -> (its parameters, in order; the result's dtype kind).
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "random": ((), "f"),
    "random_sample": ((), "f"),
    "standard_normal": ((), "f"),
    "standard_exponential": ((), "f"),
    "standard_cauchy": ((), "f"),
    "normal": (("loc", "scale"), "f"),
    "uniform": (("low", "high"), "f"),
    "integers": (("low", "high"), "i"),
    "randint": (("low", "high"), "i"),
    "exponential": (("scale",), "f"),
    "gamma": (("shape", "scale"), "f"),
    "standard_gamma": (("shape",), "f"),
    "beta": (("a", "b"), "f"),
    "binomial": (("n", "p"), "i"),
    "poisson": (("lam",), "i"),
    "lognormal": (("mean", "sigma"), "f"),
    "laplace": (("loc", "scale"), "f"),
    "logistic": (("loc", "scale"), "f"),
    "gumbel": (("loc", "scale"), "f"),
    "geometric": (("p",), "i"),
    "chisquare": (("df",), "f"),
    "standard_t": (("df",), "f"),
    "rayleigh": (("scale",), "f"),
    "weibull": (("a",), "f"),
    "pareto": (("a",), "f"),
    "power": (("a",), "f"),
    "vonmises": (("mu", "kappa"), "f"),
    "wald": (("mean", "scale"), "f"),
    "triangular": (("left", "mode", "right"), "f"),
    "negative_binomial": (("n", "p"), "i"),
    "f": (("dfnum", "dfden"), "f"),
    "hypergeometric": (("ngood", "nbad", "nsample"), "i"),
    "logseries": (("p",), "i"),
    "noncentral_chisquare": (("df", "nonc"), "f"),
    "noncentral_f": (("dfnum", "dfden", "nonc"), "f"),
    "zipf": (("a",), "i"),
}
# Draws with a trailing axis of their own (a vector per draw): parameters unbatched
# only. -> (parameters, the one that is the vector, dtype kind)
VECTOR_DRAWS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "multivariate_normal": (("mean", "cov"), "mean", "f"),
    "dirichlet": (("alpha",), "alpha", "f"),
    "multinomial": (("n", "pvals"), "pvals", "i"),
}
# Legacy functions that take the shape as positional ints: np.random.rand(3, 4).
SHAPE_ARGS = {"rand": "f", "randn": "f"}
# Calls that set or read the generator's state.
STATE = ("seed", "set_state", "get_state")
# Draws without a batched form here.
NO_BATCHED_FORM = {
    "permutation": "rng.random(n).argsort() draws a permutation of range(n)",
    "shuffle": "index with rng.random(n).argsort() instead of shuffling in place",
    "permuted": "index with rng.random(n).argsort() instead",
    "bytes": "draw integers with rng.integers instead",
    "random_integers": "use randint (or rng.integers) with endpoint=True",
    "tomaxint": "use randint (or rng.integers)",
    "multivariate_hypergeometric": "draw outside the vmapped function",
    "spawn": "spawn generators outside the vmapped function",
}


# ------------------------------------------------------------------- shared helpers
def mode_of(ctx: Context) -> str:
    options = getattr(ctx.program, "options", None)  # type: ignore[attr-defined]
    return getattr(options, "randomness", "error") if options is not None else "error"


def has_batch(ctx: Context) -> bool:
    """Whether the function being translated has a batched argument (the batch size)."""
    return any(v.batched for v in ctx.params.values())  # type: ignore[attr-defined]


def no_batch_hint(ctx: Context) -> str:
    """What to do where no batched argument gives the batch size."""
    if not getattr(ctx, "owner", ()):  # the vmapped function itself: every in_axes is None
        return "map an argument (an in_axes entry that is not None): axis_size alone is not enough"
    return "pass a batched argument to this helper, or move the call into the vmapped function"


def needs_batch(ctx: Context, message: str, hint: str | None = None) -> NeedsBatchError:
    err = ctx.unsupported(message, hint)
    assert isinstance(err, UnsupportedError)
    return NeedsBatchError(
        err.reason, filename=err.filename, lineno=err.lineno, source=err.source, hint=hint
    )


def _label(site: CallSite) -> str:
    return cst.Module([]).code_for_node(site.func).strip()


def _refuse_in_error_mode(site: CallSite) -> None:
    if mode_of(site.ctx) == "error":
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` draws random numbers, and vmap(randomness='error') "
            "refuses random draws",
            _EITHER,
        )


def _kind(b: Binding, default: str) -> str | None:
    """The dtype kind of the draw (an explicit ``dtype=`` decides)."""
    arg = b.get("dtype")
    if arg is None:
        return default
    if arg.val.static is NOVALUE:
        return None
    try:
        return np.dtype(arg.val.static).kind
    except TypeError:
        return None


def _result(rank: int, batched: bool, kind: str | None, scalar: bool) -> Val:
    if scalar and not batched:
        return Val(SCALAR, rank=0, dtype=kind)  # a Python number, as NumPy returns it
    return Val(ARRAY, batched=batched, rank=rank, dtype=kind)


def _size_rank(site: CallSite, size: Arg | None) -> int | None:
    """The per-example rank ``size`` gives (None: no size, the parameters' shape)."""
    if size is None or size.val.static is None:
        return None
    if size.batched:
        raise site.unsupported(
            f"`{_label(site)}(...)` with a size that differs per example (a ragged result)"
        )
    static = size.val.static
    if isinstance(static, (int, np.integer)) and not isinstance(static, bool):
        return 1
    if isinstance(static, tuple):
        return len(static)
    val = size.val
    if val.kind == TREE and val.children and val.element is None:
        return len(val.children)
    if val.kind in (ARRAY, SCALAR) and val.rank == 0:
        return 1
    raise site.unsupported(
        f"`{_label(site)}(...)` with a size whose length is not known when transforming",
        "pass size as an int, a tuple, or x.shape",
    )


def _batched_size(site: CallSite, size: Arg | None) -> cst.BaseExpression:
    """``size`` with the batch size in front."""
    b = site.ctx.batch_size()
    if size is None or size.val.static is None:
        return site.ctx.parse("({b},)", b=b)
    static = size.val.static
    if isinstance(static, tuple):
        return cst.Tuple([cst.Element(b), *(cst.Element(literal(int(n))) for n in static)])
    val = size.val
    if val.kind == TREE:
        return site.ctx.parse("({b}, *{s})", b=b, s=size.code)
    return site.ctx.parse("({b}, {s})", b=b, s=size.code)


# ------------------------------------------------------------------------- rules
def distribution(site: CallSite) -> Out:
    """A draw from a scalar distribution (``normal``, ``integers``, ``random``...)."""
    _refuse_in_error_mode(site)
    name = site.callee.__name__
    names, default_kind = DISTRIBUTIONS[name]
    b = site.bind(site.callee)
    out = b.get("out")
    if out is not None and out.val.static is not None:
        raise site.unsupported(f"`{_label(site)}(..., out=...)` under vmap", "assign the draw")
    params = [(p, b.get(p)) for p in names if b.get(p) is not None]
    size = b.get("size")
    rank = _size_rank(site, size)
    kind = _kind(b, default_kind)
    batched = [a for _, a in params if a.batched]
    if mode_of(site.ctx) == "same":
        _refuse_batched_parameters(site, batched)
        scalar = rank is None and all(a.val.rank == 0 for _, a in params)
        return site.render(), _result(rank or _param_rank(site, params), False, kind, scalar)
    _check_batch(site)
    if rank is None:
        rank = _param_rank(site, params)
        if batched:
            # The parameters' broadcast shape carries the batch: no size needed.
            _align(site, b, params, rank)
            return b.render(), _result(rank, True, kind, False)
        if rank:
            # Unbatched parameters of rank > 0: one of the highest rank, broadcast along
            # a new batch axis, gives the draw its shape (the others broadcast from the right).
            pname, widest = next((p, a) for p, a in params if a.val.rank == rank)
            b.set(pname, site.ctx.broadcast(widest.code, widest.val))
            return b.render(), _result(rank, True, kind, False)
    _align(site, b, params, rank)
    b.set("size", _batched_size(site, size))
    return b.render(), _result(rank, True, kind, False)


def _param_rank(site: CallSite, params: list[tuple[str, Arg]]) -> int:
    ranks = [a.val.rank if a.val.kind in (ARRAY, SCALAR) else None for _, a in params]
    if any(r is None for r in ranks):
        raise site.unsupported(
            f"`{_label(site)}(...)` with a parameter whose rank is not known when transforming",
            "pass size=, or np.asarray(...) the parameter",
        )
    return max(ranks, default=0)  # type: ignore[type-var]


def _align(site: CallSite, b: Binding, params: list[tuple[str, Arg]], rank: int) -> None:
    """Batched parameters get axes after the batch axis up to the draw's rank."""
    for pname, arg in params:
        if arg.batched and arg.val.rank is not None and arg.val.rank < rank:
            b.set(pname, site.ctx.expand(arg.code, rank - arg.val.rank))


def _refuse_batched_parameters(site: CallSite, batched: list[Arg]) -> None:
    if batched:
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` with parameters that differ per example, under "
            "randomness='same' (one shared draw cannot have different parameters)",
            "draw standard noise once and transform it per example "
            "(mu + sigma * rng.standard_normal(...)), or use randomness='different'",
        )


def _check_batch(site: CallSite) -> None:
    if not has_batch(site.ctx):
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` draws per example (randomness='different') in a function "
            "with no batched argument, so the batch size is not known here",
            no_batch_hint(site.ctx),
        )


def shape_args(site: CallSite) -> Out:
    """Legacy ``np.random.rand(d0, d1, ...)`` / ``randn``: the shape as positional ints."""
    _refuse_in_error_mode(site)
    if site.kwargs or any(a.batched for a in site.args):
        raise site.unsupported(
            f"`{_label(site)}(...)` with a shape that differs per example, or keywords"
        )
    rank = len(site.args)
    kind = SHAPE_ARGS[site.callee.__name__]
    if mode_of(site.ctx) == "same":
        return site.render(), _result(rank, False, kind, rank == 0)
    _check_batch(site)
    codes = [site.ctx.batch_size(), *(a.code for a in site.args)]
    return site.render(codes, {}), _result(rank, True, kind, False)


def vector_draw(site: CallSite) -> Out:
    """``multivariate_normal``, ``dirichlet``, ``multinomial``: one vector per draw."""
    _refuse_in_error_mode(site)
    names, vector_name, kind = VECTOR_DRAWS[site.callee.__name__]
    b = site.bind(site.callee)
    params = [b.get(p) for p in names if b.get(p) is not None]
    if any(a.batched for a in params):
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` with parameters that differ per example",
            "draw with parameters that are the same for every example",
        )
    vector = b.get(vector_name)
    if vector is None or vector.val.rank != 1:
        raise site.unsupported(f"`{_label(site)}(...)` whose {vector_name} is not a known vector")
    size = b.get("size")
    rank = (_size_rank(site, size) or 0) + 1
    if mode_of(site.ctx) == "same":
        return site.render(), _result(rank, False, kind, False)
    _check_batch(site)
    b.set("size", _batched_size(site, size))
    return b.render(), _result(rank, True, kind, False)


def choice(site: CallSite) -> Out:
    """``rng.choice(a, size, replace=True, p=None)`` from an unbatched 1-D population."""
    _refuse_in_error_mode(site)
    b = site.bind(site.callee)
    a = b.get("a")
    p = b.get("p")
    if a is None or a.batched or (p is not None and p.batched):
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` from a population or with probabilities that differ per "
            "example",
            "index a per-example population with rng.integers (or rng.random) instead",
        )
    if a.val.kind not in (ARRAY, SCALAR) or a.val.rank not in (0, 1):
        raise site.unsupported(f"`{_label(site)}(...)` whose population is not an int or 1-D")
    if b.value("replace", True) is not True or b.value("axis", 0) != 0:
        raise site.unsupported(
            f"`{_label(site)}(...)` without replacement (draws of the batch would exclude "
            "each other's choices)",
            "draw rng.random(n).argsort()[:k] per example instead",
        )
    size = b.get("size")
    rank = _size_rank(site, size) or 0
    kind = "i" if a.val.rank == 0 else a.val.dtype
    if mode_of(site.ctx) == "same":
        return site.render(), _result(rank, False, kind, rank == 0)
    _check_batch(site)
    b.set("size", _batched_size(site, size))
    return b.render(), _result(rank, True, kind, False)


def state(site: CallSite) -> Out:
    """``np.random.seed``, ``set_state``, ``get_state`` inside the function."""
    if mode_of(site.ctx) == "same":
        # One draw shared by the batch after one reseed: what every example of the
        # loop draws after reseeding identically.
        return site.render(), Val(OBJECT)
    raise needs_batch(
        site.ctx,
        f"`{_label(site)}(...)` sets or reads the random state inside the vmapped function "
        "(the loop does it before each example's draws, which one batched draw cannot repeat)",
        "seed once outside the vmapped function, or use randomness='same'",
    )


def new_generator(site: CallSite) -> Out:
    """``np.random.default_rng(seed)`` / ``RandomState(seed)`` made inside the function.

    With a seed the same for every example, each example of the loop gets an identical
    generator: left as written, its draws are shared, which is what the loop computes.
    """
    seed = site.args[0] if site.args else next(iter(site.kwargs.values()), None)
    if seed is not None and seed.batched:
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}(...)` seeded per example (a generator per example)",
            "create one generator outside the vmapped function and use randomness='different'",
        )
    if (seed is None or seed.val.static is None) and mode_of(site.ctx) != "same":
        raise needs_batch(
            site.ctx,
            f"`{_label(site)}()` without a seed inside the vmapped function (the loop makes a "
            "freshly seeded generator per example)",
            "create the generator outside the vmapped function and pass it in, or read it "
            "from a global",
        )
    return site.render(), Val(OBJECT)


def no_batched_form(site: CallSite) -> Out:
    _refuse_in_error_mode(site)
    raise needs_batch(
        site.ctx,
        f"`{_label(site)}(...)` has no batched form in astvmap",
        NO_BATCHED_FORM.get(site.callee.__name__),
    )


# ---------------------------------------------------------------------- registry
def _register(owner: str, cls: type, method: str, rule: Any) -> None:
    fn = getattr(cls, method, None)
    if fn is None:
        return
    RULES[fn] = rule
    CATALOGUE.setdefault("random", []).append(f"{owner}.{method}")


def _install() -> None:
    owners = (("Generator", np.random.Generator), ("np.random", np.random.RandomState))
    for owner, cls in owners:
        for method in DISTRIBUTIONS:
            _register(owner, cls, method, distribution)
        for method in VECTOR_DRAWS:
            _register(owner, cls, method, vector_draw)
        for method in NO_BATCHED_FORM:
            if hasattr(cls, method):
                RULES[getattr(cls, method)] = no_batched_form
        _register(owner, cls, "choice", choice)
    for method in SHAPE_ARGS:
        _register("np.random", np.random.RandomState, method, shape_args)
    for method in STATE:
        RULES[getattr(np.random.RandomState, method)] = state
    for alias in ("sample", "ranf"):  # module functions that call random_sample
        RULES[getattr(np.random, alias)] = _alias_rule
        CATALOGUE["random"].append(f"np.random.{alias}")
    RULES[np.random.seed] = state
    RULES[np.random.default_rng] = new_generator
    RULES[np.random.RandomState] = new_generator


def _alias_rule(site: CallSite) -> Out:
    # np.random.sample / ranf: the same as random_sample (size only).
    renamed = dataclasses.replace(site, callee=np.random.random_sample)
    return distribution(renamed)


_install()
