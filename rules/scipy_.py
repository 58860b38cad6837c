"""SciPy functions users call per example: scipy.special.logsumexp/softmax/log_softmax,
scipy.linalg.expm/svd/cho_solve. (scipy.special's ufuncs are ufuncs: they already
have the elementwise rule.)

astvmap never imports SciPy: this module names its targets as strings, and
``install`` (run by ``registry.lookup`` the first time it meets a callable from a
``scipy`` module, so SciPy is already imported by then) resolves and registers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import libcst as cst

from astvmap.values import Val

from .elementwise import align
from .reductions import normalise_axes, shifted_axis_code
from .registry import LAZY, RULES, CallSite, Out, catalogue, literal, no_rule
from .shape_ops import _need_rank

FAMILY = "scipy_"
TARGETS: dict[str, tuple[Callable[[CallSite], Out], str]] = {}


def target(name: str, note: str = "") -> Callable:
    def deco(rule: Callable[[CallSite], Out]) -> Callable[[CallSite], Out]:
        TARGETS[name] = (rule, note)
        catalogue(FAMILY, name, note)
        return rule

    return deco


def install() -> None:
    """Register the rules under the runtime objects (SciPy is imported by the caller)."""
    for name, (rule, _) in TARGETS.items():
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        RULES[obj] = rule


LAZY["scipy"] = install


def _axis_rule(fn_name: str, extra: tuple[str, ...]) -> Callable[[CallSite], Out]:
    """``f(x, axis=None, ...)`` reducing or normalising over ``axis``; None is every axis."""

    def rule(site: CallSite) -> Out:
        b = site.bind(site.callee)
        x = site.args[0] if site.args else None
        if x is None:
            raise no_rule(site, f"{fn_name} with its array passed by keyword", "")
        weights = b.get("b") if "b" in extra else None
        others = [a for a in [*site.args, *site.kwargs.values()] if a is not x and a is not weights]
        if any(a.batched for a in others):
            raise no_rule(site, f"a batched option to {fn_name}", "")
        reduces = fn_name.endswith("logsumexp")
        keep = bool(b.value("keepdims", False)) if reduces else True
        signed = bool(b.value("return_sign", False)) if reduces else False
        r = x.rank
        if not site.any_batched:
            out = None
            if r is not None:
                axes = normalise_axes(site, b.value("axis", None), r) if r else ()
                out = r if keep else r - len(axes)
            return b.render(), _result(Val.array(out), signed)
        if weights is not None and weights.val.kind != "none":
            codes, val = align(site.ctx, [x, weights])
            r = val.rank
            b.set("a", codes[0])
            b.set("b", codes[1])
        if r is None:
            raise site.unsupported(f"cannot infer the rank of {fn_name}'s array")
        axis = b.value("axis", None)
        axes = normalise_axes(site, axis, r) if r else ()
        if axis is None:
            b.set("axis", literal(tuple(range(1, r + 1)) if r else ()))
        else:
            b.set("axis", shifted_axis_code(axes, axis))
        return b.render(), _result(Val.array(r if keep else r - len(axes), True), signed)

    return rule


def _result(val: Val, signed: bool) -> Val:
    return Val.tree(tuple, [(0, val), (1, val)]) if signed else val


target("scipy.special.logsumexp", "axis, b (weights, batched or not), keepdims, return_sign")(
    _axis_rule("scipy.special.logsumexp", ("b",))
)
target("scipy.special.softmax", "axis None normalises over the whole example")(
    _axis_rule("scipy.special.softmax", ())
)
target("scipy.special.log_softmax", "axis None normalises over the whole example")(
    _axis_rule("scipy.special.log_softmax", ())
)


@target("scipy.linalg.expm", "a batch of matrices is a stack")
def expm_rule(site: CallSite) -> Out:
    x = site.args[0] if site.args else site.kwargs.get("A")
    assert x is not None
    if x.batched:
        _need_rank(site, x)
    return site.render(), Val.array(x.rank, x.batched)


def _scipy_stacks() -> bool:
    """SciPy 1.15 added stacks of matrices to scipy.linalg's decompositions and solvers."""
    import scipy

    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    return (major, minor) >= (1, 15)


@target("scipy.linalg.svd", "full_matrices, compute_uv")
def svd_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    x = b.get("a")
    assert x is not None
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not x):
        raise no_rule(site, "a batched option to scipy.linalg.svd", "")
    compute_uv = b.value("compute_uv", True)
    r = x.rank
    if r is None and x.batched:
        raise site.unsupported("cannot infer the rank of the matrix")
    vals = [Val.array(r, x.batched), Val.array(None if r is None else r - 1, x.batched)]
    val = Val.tree(tuple, [(0, vals[0]), (1, vals[1]), (2, vals[0])]) if compute_uv else vals[1]
    if not x.batched:
        return b.render(), val
    if b.value("lapack_driver", "gesdd") != "gesdd":
        raise no_rule(site, "scipy.linalg.svd with lapack_driver= under vmap", "")
    # NumPy's svd runs the same LAPACK driver (gesdd) on the whole stack at once.
    template = "tuple(np.linalg.svd({a}, full_matrices={f}, compute_uv={c}))"
    code = site.ctx.parse(
        template if compute_uv else template[6:-1],
        a=x.code,
        f=literal(b.value("full_matrices", True)),
        c=literal(compute_uv),
    )
    return code, val


@target("scipy.linalg.cho_solve", "(c, lower) and b batched in any mix")
def cho_solve_rule(site: CallSite) -> Out:
    b = site.bind(site.callee)
    cl, rhs = b.get("c_and_lower"), b.get("b")
    assert cl is not None and rhs is not None
    if not site.any_batched:
        return b.render(), Val.array(rhs.rank)
    if any(a.batched for a in [*site.args, *site.kwargs.values()] if a is not cl and a is not rhs):
        raise no_rule(site, "a batched option to scipy.linalg.cho_solve", "")
    rb = rhs.rank
    if rb not in (1, 2):
        raise site.unsupported("scipy.linalg.cho_solve with b of rank other than 1 or 2")
    ctx = site.ctx
    if not cl.batched:
        # One factor for the whole batch: the right-hand sides become columns.
        if rb == 1:
            b.set("b", ctx.parse("{x}.T", x=rhs.code))
            return ctx.parse("{s}.T", s=b.render()), Val.array(1, True)
        b.set("b", ctx.parse("{x}.transpose(1, 0, 2).reshape({x}.shape[1], -1)", x=rhs.code))
        code = ctx.parse(
            "{s}.reshape({x}.shape[1], {x}.shape[0], -1).transpose(1, 0, 2)",
            s=b.render(),
            x=rhs.code,
        )
        return code, Val.array(2, True)
    if not _scipy_stacks():
        raise no_rule(site, "scipy.linalg.cho_solve of a batched factor on SciPy < 1.15", "")
    if not isinstance(cl.code, cst.Tuple) or len(cl.code.elements) != 2:
        raise no_rule(site, "scipy.linalg.cho_solve with (c, lower) not written as a pair", "")
    c_code = cl.code.elements[0].value
    rows = (
        rhs.code
        if rhs.batched
        else ctx.parse(
            "np.broadcast_to({x}, ({c}.shape[0],) + np.shape({x}))", x=rhs.code, c=c_code
        )
    )
    if rb == 1:
        b.set("b", ctx.parse("{x}[..., None]", x=rows))
        return ctx.parse("{s}[..., 0]", s=b.render()), Val.array(1, True)
    b.set("b", rows)
    return b.render(), Val.array(2, True)
