"""Linear algebra: ``@``/matmul, dot, inner, outer, vdot, trace, einsum and np.linalg.

A vmapped vector-matrix or matrix-vector product is one matmul in which the
unbatched operand is never broadcast (JAX's dot_general rule): ``x @ W`` with a
batched vector ``x`` is already the batched product, and ``A @ x`` becomes
``x @ A.mT``.
"""

from __future__ import annotations

import string
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import SCALAR, TREE, Val

from .registry import Arg, CallSite, Out, register
from .shape_ops import _need_rank


def _rank(site_ctx, a: Arg) -> int:
    r = a.rank if a.val.kind != SCALAR else 0
    if r is None:
        raise site_ctx.unsupported(
            "cannot infer the rank of a matmul operand",
            "make its rank visible (pass it as an argument)",
        )
    return r


def batched_matmul(ctx, a: Arg, b: Arg, op: str = "@") -> Out:
    """Per-example ``a @ b`` for the whole batch, as one matmul."""

    def mm(x: cst.BaseExpression, y: cst.BaseExpression) -> cst.BaseExpression:
        if op == "@":
            return cst.BinaryOperation(left=x, operator=cst.MatrixMultiply(), right=y)
        return ctx.parse("np.matmul({a}, {b})", a=x, b=y)

    ra, rb = _rank(ctx, a), _rank(ctx, b)
    if ra == 0 or rb == 0:
        raise ctx.unsupported("matmul of a scalar (the loop raises ValueError)")
    out_rank = max(ra, rb) - (ra == 1) - (rb == 1) if ra > 1 and rb > 1 else (ra + rb - 2)
    if ra >= 2 and rb >= 2:
        out_rank = max(ra, rb)
    if not a.batched and not b.batched:
        return mm(a.code, b.code), Val.array(out_rank)
    out = Val.array(out_rank, True)
    if a.batched and not b.batched:
        if ra == 1 and rb <= 2:
            return mm(a.code, b.code), out  # (B, n) @ (n, m): already one matmul
        if ra == 1:
            x = ctx.expand(a.code, rb - 1)  # (B, 1.., 1, n)
            return ctx.parse("{m}[..., 0, :]", m=mm(x, b.code)), out
        if rb > ra:
            return mm(ctx.expand(a.code, rb - ra), b.code), out
        return mm(a.code, b.code), out
    if b.batched and not a.batched:
        if rb == 1:
            if ra == 1:
                return mm(b.code, a.code), out  # a vector dot: symmetric
            if ra == 2:
                return mm(b.code, ctx.parse("{a}.T", a=a.code)), out  # (A @ x_i) = x_i @ A.T
            y = ctx.parse("{y}[..., None]", y=ctx.expand(b.code, ra - 2))
            return ctx.parse("{m}[..., 0]", m=mm(a.code, y)), out
        if ra > rb:
            return mm(a.code, ctx.expand(b.code, ra - rb)), out
        return mm(a.code, b.code), out
    # both batched
    if ra == 1 and rb == 1:
        return ctx.parse('np.einsum("bi,bi->b", {a}, {b})', a=a.code, b=b.code), out
    if ra == 1:
        x = ctx.expand(a.code, rb - 1)
        return ctx.parse("{m}[..., 0, :]", m=mm(x, b.code)), out
    if rb == 1:
        y = ctx.parse("{y}[..., None]", y=ctx.expand(b.code, ra - 2))
        return ctx.parse("{m}[..., 0]", m=mm(a.code, y)), out
    if ra > rb:
        return mm(a.code, ctx.expand(b.code, ra - rb)), out
    if rb > ra:
        return mm(ctx.expand(a.code, rb - ra), b.code), out
    return mm(a.code, b.code), out


def matmul_operator(ctx, node: cst.BinaryOperation, a: Arg, b: Arg) -> Out:
    if not a.batched and not b.batched:
        ra, rb = a.rank, b.rank
        rank = None
        if ra is not None and rb is not None and ra > 0 and rb > 0:
            rank = max(ra, rb) if ra >= 2 and rb >= 2 else ra + rb - 2
        return node.with_changes(left=a.code, right=b.code), Val.array(rank)
    code, val = batched_matmul(ctx, a, b)
    if isinstance(code, cst.BinaryOperation):
        code = code.with_changes(lpar=node.lpar, rpar=node.rpar)
    return code, val


@register(np.matmul)
def matmul_rule(site: CallSite) -> Out:
    if len(site.args) != 2 or site.kwargs:
        if site.any_batched:
            raise site.unsupported("np.matmul with options under vmap")
        return site.render(), Val.array(None)
    a, b = site.args
    if not site.any_batched:
        return site.render(), (
            batched_matmul(site.ctx, a, b, "fn")[1] if a.rank and b.rank else Val.array(None)
        )
    return batched_matmul(site.ctx, a, b, "fn")


@register(np.dot)
def dot_rule(site: CallSite) -> Out:
    if len(site.args) != 2 or site.kwargs:
        if site.any_batched:
            raise site.unsupported("np.dot with out= under vmap")
        return site.render(), Val.array(None)
    a, b = site.args
    if not site.any_batched:
        return site.render(), Val.array(_dot_rank(a, b))
    ra, rb = _rank(site.ctx, a), _rank(site.ctx, b)
    if ra == 0 or rb == 0:
        from .elementwise import align

        codes, val = align(site.ctx, [a, b])
        return cst.BinaryOperation(left=codes[0], operator=cst.Multiply(), right=codes[1]), val
    if ra <= 2 and rb <= 2:
        return batched_matmul(site.ctx, a, b)
    raise site.unsupported(
        "np.dot of arrays of rank > 2 under vmap",
        "use np.einsum or np.tensordot with explicit axes",
    )


def _dot_rank(a: Arg, b: Arg) -> int | None:
    if a.rank is None or b.rank is None:
        return None
    if a.rank == 0 or b.rank == 0:
        return max(a.rank, b.rank)
    return a.rank + b.rank - 2


@register(np.inner)
def inner_rule(site: CallSite) -> Out:
    a, b = site.args
    if not site.any_batched:
        return site.render(), Val.array(
            None if a.rank is None or b.rank is None else max(a.rank + b.rank - 2, 0)
        )
    ra, rb = _rank(site.ctx, a), _rank(site.ctx, b)
    if ra == 1 and rb == 1:
        return batched_matmul(site.ctx, a, b)
    if ra == 0 or rb == 0:
        return dot_rule(site)
    return _einsum_inner(site, a, b, ra, rb)


def _einsum_inner(site: CallSite, a: Arg, b: Arg, ra: int, rb: int) -> Out:
    letters = iter(string.ascii_lowercase[1:])
    la = [next(letters) for _ in range(ra - 1)]
    lb = [next(letters) for _ in range(rb - 1)]
    k = next(letters)
    return _einsum(site, [(a, "".join(la) + k), (b, "".join(lb) + k)], "".join(la + lb))


@register(np.outer)
def outer_rule(site: CallSite) -> Out:
    a, b = site.args
    if not site.any_batched:
        return site.render(), Val.array(2)
    ca = _flat_vector(site, a)
    cb = _flat_vector(site, b)
    if a.batched and b.batched:
        return site.ctx.parse("{a}[:, :, None] * {b}[:, None, :]", a=ca, b=cb), Val.array(2, True)
    if a.batched:
        return site.ctx.parse("{a}[:, :, None] * {b}", a=ca, b=cb), Val.array(2, True)
    return site.ctx.parse("{a}[:, None] * {b}[:, None, :]", a=ca, b=cb), Val.array(2, True)


def _flat_vector(site: CallSite, a: Arg) -> cst.BaseExpression:
    r = _rank(site.ctx, a)
    if not a.batched:
        return a.code if r == 1 else site.ctx.parse("np.ravel({x})", x=a.code)
    if r == 1:
        return a.code
    return site.ctx.parse("{x}.reshape({x}.shape[0], -1)", x=a.code)


@register(np.vdot)
def vdot_rule(site: CallSite) -> Out:
    a, b = site.args
    if not site.any_batched:
        return site.render(), Val.array(0)
    ca = site.ctx.parse("np.conj({x})", x=_flat_vector(site, a))
    cb = _flat_vector(site, b)
    return batched_matmul(
        site.ctx, Arg(ca, Val.array(1, a.batched)), Arg(cb, Val.array(1, b.batched))
    )


@register(np.trace, methods=("trace",))
def trace_rule(site: CallSite) -> Out:
    b = site.bind(np.trace)
    x = b.get("a")
    assert x is not None
    if not site.any_batched:
        return b.render(), Val.array(None if x.rank is None else x.rank - 2)
    r = _need_rank(site, x)
    for name in ("offset", "axis1", "axis2"):
        if name in b and b.get(name).batched:  # type: ignore[union-attr]
            raise site.unsupported(f"a batched {name} in np.trace")
    a1, a2 = _two_axes(site, b, r, "np.trace")
    b.set("axis1", cst.Integer(str(a1 + 1)))
    b.set("axis2", cst.Integer(str(a2 + 1)))
    return b.render(), Val.array(r - 2, True)


def _two_axes(site: CallSite, b: Any, r: int, what: str) -> tuple[int, int]:
    """axis1/axis2 of np.trace/np.diagonal normalised for a per-example rank ``r``.

    The loop raises for a rank below 2 and for an axis out of range; ``% r`` would
    divide by zero or silently wrap, so those are refused here with the line.
    """
    if r < 2:
        raise site.unsupported(
            f"{what} of a rank-{r} array (the loop raises ValueError: it needs 2 dimensions)"
        )
    a1, a2 = b.value("axis1", 0), b.value("axis2", 1)
    for a in (a1, a2):
        if not isinstance(a, (int, np.integer)) or not -r <= a < r:
            raise site.unsupported(
                f"{what} with axis {a!r} for a rank-{r} array (the loop raises AxisError)"
            )
    return int(a1) % r, int(a2) % r


@register(np.diagonal, methods=("diagonal",))
def diagonal_rule(site: CallSite) -> Out:
    b = site.bind(np.diagonal)
    x = b.get("a")
    assert x is not None
    if not site.any_batched:
        return b.render(), Val.array(None if x.rank is None else x.rank - 1)
    r = _need_rank(site, x)
    a1, a2 = _two_axes(site, b, r, "np.diagonal")
    b.set("axis1", cst.Integer(str(a1 + 1)))
    b.set("axis2", cst.Integer(str(a2 + 1)))
    return b.render(), Val.array(r - 1, True)


@register(np.einsum)
def einsum_rule(site: CallSite) -> Out:
    if not site.args or not isinstance(site.args[0].static, str):
        if site.any_batched:
            raise site.unsupported("np.einsum without a literal subscripts string")
        return site.render(), Val.array(None)
    spec = site.args[0].static.replace(" ", "")
    operands = site.args[1:]
    if not site.any_batched:
        out = spec.split("->")[1] if "->" in spec else None
        return site.render(), Val.array(len(out) if out is not None and "." not in out else None)
    if "->" not in spec:
        raise site.unsupported(
            "np.einsum without an explicit output ('->') under vmap", "write the output subscripts"
        )
    if "." in spec:
        raise site.unsupported("np.einsum with '...' under vmap", "name the axes explicitly")
    ins, out = spec.split("->")
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise site.unsupported("np.einsum: the number of operands does not match the subscripts")
    return _einsum(site, list(zip(operands, terms)), out, extra_kwargs=True)


def _einsum(
    site: CallSite, terms: list[tuple[Arg, str]], out: str, extra_kwargs: bool = False
) -> Out:
    used = set("".join(t for _, t in terms) + out)
    batch = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in used)
    new_terms = [(batch + t) if a.batched else t for a, t in terms]
    subscripts = ",".join(new_terms) + "->" + batch + out
    args = [cst.Arg(cst.SimpleString(repr(subscripts).replace("'", '"')))] + [
        cst.Arg(a.code) for a, _ in terms
    ]
    if extra_kwargs:
        args += [cst.Arg(a.code, keyword=cst.Name(k)) for k, a in site.kwargs.items()]
    return cst.Call(func=site.ctx.parse("np.einsum"), args=args), Val.array(len(out), True)


# ------------------------------------------------------------------ np.linalg
# Functions that already treat leading axes as a stack: a batched input just adds
# one more stacked axis. (name -> output ranks as offsets from the input rank)
STACKED = {
    np.linalg.inv: (0,),
    np.linalg.pinv: (0,),
    np.linalg.det: (-2,),
    np.linalg.slogdet: (-2, -2),
    np.linalg.cholesky: (0,),
    np.linalg.eigh: (-1, 0),
    np.linalg.eigvalsh: (-1,),
    np.linalg.eig: (-1, 0),
    np.linalg.eigvals: (-1,),
    np.linalg.matrix_power: (0,),
    np.linalg.matrix_rank: (-2,),
}


def _stacked_rule(fn, offsets: tuple[int, ...]):
    def rule(site: CallSite) -> Out:
        x = site.args[0]
        if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
            raise site.unsupported(f"a batched option to np.linalg.{fn.__name__}")
        r = x.rank
        if r is None:
            if x.batched:
                raise site.unsupported("cannot infer the rank of the matrix")
            return site.render(), Val.array(None)
        if x.batched and r < 2 and fn is not np.linalg.matrix_rank:
            raise site.unsupported(f"np.linalg.{fn.__name__} of a batched vector (the loop raises)")
        vals = [Val.array(r + off, x.batched) for off in offsets]
        if len(vals) == 1:
            return site.render(), vals[0]
        return site.render(), Val.tree(tuple, list(enumerate(vals)))

    return rule


for _fn, _offs in STACKED.items():
    register(_fn, family="linalg")(_stacked_rule(_fn, _offs))


@register(np.linalg.qr)
def qr_rule(site: CallSite) -> Out:
    x = site.args[0]
    mode = site.kwargs.get("mode") or (site.args[1] if len(site.args) > 1 else None)
    if mode is not None and mode.static not in ("reduced", "complete"):
        if site.any_batched:
            raise site.unsupported(
                "np.linalg.qr with mode other than 'reduced'/'complete' under vmap"
            )
    r = x.rank
    val = Val.array(r, x.batched)
    return site.render(), Val.tree(tuple, [(0, val), (1, val)])


@register(np.linalg.svd)
def svd_rule(site: CallSite) -> Out:
    b = site.bind(np.linalg.svd)
    x = b.get("a")
    assert x is not None
    r = x.rank
    if x.batched and r is None:
        raise site.unsupported("cannot infer the rank of the matrix")
    compute_uv = b.value("compute_uv", True) if "compute_uv" in b else True
    if r is None:
        return b.render(), Val(TREE) if compute_uv else Val.array(None)
    if not compute_uv:
        return b.render(), Val.array(r - 1, x.batched)
    vals = [Val.array(r, x.batched), Val.array(r - 1, x.batched), Val.array(r, x.batched)]
    return b.render(), Val.tree(tuple, list(enumerate(vals)))


@register(np.linalg.solve)
def solve_rule(site: CallSite) -> Out:
    """NumPy 2 treats a 1-D ``b`` as a vector but an (n, k) ``b`` as a matrix, so a
    batched vector right-hand side needs an explicit column axis."""
    a, b = site.args[0], site.args[1]
    if not site.any_batched:
        return site.render(), Val.array(None if b.rank is None else b.rank)
    ra, rb = _rank(site.ctx, a), _rank(site.ctx, b)
    if rb == 1 and ra == 2:
        if not a.batched:
            # One factorisation of A for the whole batch: solve A X = B^T.
            return site.ctx.parse("np.linalg.solve({a}, {b}.T).T", a=a.code, b=b.code), Val.array(
                1, True
            )
        if b.batched:
            return site.ctx.parse(
                "np.linalg.solve({a}, {b}[..., None])[..., 0]", a=a.code, b=b.code
            ), Val.array(1, True)
        return site.render(), Val.array(1, True)  # a stack of A with one vector b
    if rb == 1:
        raise site.unsupported("np.linalg.solve of a stack of matrices with a vector under vmap")
    if ra > rb and b.batched:
        b_code = site.ctx.expand(b.code, ra - rb)
        return site.ctx.parse("np.linalg.solve({a}, {b})", a=a.code, b=b_code), Val.array(ra, True)
    if rb > ra and a.batched:
        a_code = site.ctx.expand(a.code, rb - ra)
        return site.ctx.parse("np.linalg.solve({a}, {b})", a=a_code, b=b.code), Val.array(rb, True)
    return site.render(), Val.array(max(ra, rb), True)
