"""Linear algebra: ``@``/matmul, dot, inner, outer, vdot, trace, einsum and np.linalg.

A vmapped vector-matrix or matrix-vector product is one matmul in which the
unbatched operand is never broadcast (JAX's dot_general rule): ``x @ W`` with a
batched vector ``x`` is already the batched product, and ``A @ x`` becomes
``x @ A.mT``.
"""

from __future__ import annotations

import inspect
import string
from typing import Any

import libcst as cst
import numpy as np

from astvmap.values import SCALAR, TREE, Val

from .registry import Arg, CallSite, Out, literal, no_rule, register
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
        raise ctx.refuse("matmul of a scalar (the loop raises ValueError)")
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
        raise site.refuse(
            f"{what} of a rank-{r} array (the loop raises ValueError: it needs 2 dimensions)"
        )
    a1, a2 = b.value("axis1", 0), b.value("axis2", 1)
    for a in (a1, a2):
        if not isinstance(a, (int, np.integer)) or not -r <= a < r:
            raise site.refuse(
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


@register(np.einsum, note="implicit output ('ij,jk', 'ii') and '...' included")
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
    ins, _, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise site.unsupported("np.einsum: the number of operands does not match the subscripts")
    if "." in spec:
        terms, out = _expand_ellipsis(site, operands, terms, out if "->" in spec else None)
    elif "->" not in spec:
        # NumPy's implicit output: the letters used once, in alphabetical order.
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return _einsum(site, list(zip(operands, terms)), out, extra_kwargs=True)


def _expand_ellipsis(
    site: CallSite, operands: list[Arg], terms: list[str], out: str | None
) -> tuple[list[str], str]:
    """Subscripts with each ``...`` spelled out as letters (aligned from the right, as
    NumPy broadcasts them), so that the batch letter can be added in front."""
    used = set("".join(terms) + (out or ""))
    counts = []
    for a, t in zip(operands, terms):
        if "..." not in t:
            counts.append(0)
            continue
        r = _rank(site.ctx, a)
        counts.append(r - (len(t) - 3))
        if counts[-1] < 0:
            raise site.unsupported(f"einsum subscripts {t!r} have more axes than the operand")
    width = max(counts, default=0)
    free = [c for c in string.ascii_letters if c not in used]
    pool = free[:width]
    new_terms = [t.replace("...", "".join(pool[width - n :])) for t, n in zip(terms, counts)]
    if out is None:
        letters = "".join(t.replace("...", "") for t in terms)
        singles = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        return new_terms, "".join(pool) + singles
    if "..." not in out and width:
        # NumPy requires '...' in an explicit output whenever an input broadcasts.
        raise site.unsupported("np.einsum output without '...' while inputs have '...'")
    return new_terms, out.replace("...", "".join(pool))


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
    np.linalg.cond: (-2,),
    np.linalg.svdvals: (-1,),
    np.linalg.matrix_transpose: (0,),
    np.matrix_transpose: (0,),
    np.linalg.diagonal: (-1,),
    np.linalg.trace: (-2,),
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
            raise site.refuse(f"np.linalg.{fn.__name__} of a batched vector (the loop raises)")
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


# ------------------------------------------------- products beyond matmul
@register(methods=("dot",))
def dot_method(site: CallSite) -> Out:
    """``a.dot(b)``: np.dot's rule."""
    if len(site.args) != 2 or site.kwargs:
        if site.any_batched:
            raise site.unsupported("a.dot(b, out=) under vmap")
        return site.render(), Val.array(None)
    code, val = dot_rule(
        CallSite(site.ctx, site.ctx.parse("np.dot"), np.dot, site.args, site.kwargs)
    )
    if not site.any_batched:
        return site.render(), val
    return code, val


def _letters(n: int, used: set[str]) -> list[str]:
    free = [c for c in string.ascii_lowercase + string.ascii_uppercase if c not in used]
    if len(free) < n:
        raise ValueError("too many axes for einsum")
    used.update(free[:n])
    return free[:n]


@register(np.tensordot, np.linalg.tensordot, note="axes an int or a pair of literal sequences")
def tensordot_rule(site: CallSite) -> Out:
    b = site.bind(np.tensordot)
    a, c = b.get("a"), b.get("b")
    assert a is not None and c is not None
    axes = b.value("axes", 2)
    ra, rc = a.rank, c.rank
    if ra is None or rc is None:
        if site.any_batched:
            raise site.unsupported("cannot infer the ranks of np.tensordot's operands")
        return b.render(), Val.array(None)
    if isinstance(axes, int):
        ax_a, ax_c = list(range(ra - axes, ra)), list(range(axes))
    else:
        ax_a, ax_c = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_c = [ax_c] if isinstance(ax_c, int) else list(ax_c)
    ax_a = [k % ra for k in ax_a] if ra else ax_a
    ax_c = [k % rc for k in ax_c] if rc else ax_c
    out_rank = ra + rc - len(ax_a) - len(ax_c)
    if not site.any_batched:
        return b.render(), Val.array(out_rank)
    if len(ax_a) != len(ax_c) or any(not 0 <= k < ra for k in ax_a):
        raise site.unsupported(f"np.tensordot axes {axes!r} do not fit ranks {ra} and {rc}")
    used: set[str] = set()
    la, lc = _letters(ra, used), _letters(rc, used)
    for i, j in zip(ax_a, ax_c):
        lc[j] = la[i]
    out = [la[i] for i in range(ra) if i not in ax_a] + [lc[j] for j in range(rc) if j not in ax_c]
    return _einsum(site, [(a, "".join(la)), (c, "".join(lc))], "".join(out))


@register(np.kron, note="both factors batched: an outer product reshaped")
def kron_rule(site: CallSite) -> Out:
    a, c = site.args[0], site.args[1]
    if a.rank is None or c.rank is None:
        if site.any_batched:
            raise site.unsupported("cannot infer the ranks of np.kron's operands")
        return site.render(), Val.array(None)
    r = max(a.rank, c.rank)
    if not site.any_batched:
        return site.render(), Val.array(r)
    ctx = site.ctx
    # Lower-rank factors get leading unit axes per example (as np.kron pads them).
    ca = ctx.expand(a.code, r - a.rank) if a.batched else a.code
    cc = ctx.expand(c.code, r - c.rank) if c.batched else c.code
    if a.batched and c.batched:
        used: set[str] = set()
        la, lc = _letters(r, used), _letters(r, used)
        spec = "z%s,z%s->z%s" % ("".join(la), "".join(lc), "".join(x + y for x, y in zip(la, lc)))
        prod = ctx.parse('np.einsum("%s", {a}, {c})' % spec, a=ca, c=cc)
        code = ctx.parse(
            "{p}.reshape({a}.shape[0], *np.multiply({a}.shape[1:], {c}.shape[1:]))",
            p=prod,
            a=ca,
            c=cc,
        )
        return code, Val.array(r, True)
    # One batched factor: np.kron of (B, ...) with (1, ...) keeps B as the leading axis.
    if a.batched:
        code = ctx.parse("np.kron({a}, np.asarray({c})[None])", a=ca, c=cc)
    else:
        code = ctx.parse("np.kron(np.asarray({a})[None], {c})", a=ca, c=cc)
    return code, Val.array(r, True)


@register(np.linalg.multi_dot, note="a literal list of operands; chained matmuls")
def multi_dot_rule(site: CallSite) -> Out:
    from .axis_ops import _pieces

    seq = site.args[0] if site.args else site.kwargs.get("arrays")
    assert seq is not None
    pieces, code = _pieces(site, seq)
    if not site.any_batched:
        ranks = [p.rank for p in pieces]
        rank = None
        if pieces and None not in ranks:
            rank = 2 - (ranks[0] == 1) - (ranks[-1] == 1)
        return site.render(), Val.array(rank)
    if code is None or len(pieces) < 2 or "out" in site.kwargs:
        raise no_rule(site, "np.linalg.multi_dot of a non-literal list under vmap", "use @")
    acc = pieces[0]
    for p in pieces[1:]:
        c, v = batched_matmul(site.ctx, acc, p, "fn")
        acc = Arg(c, v)
    return acc.code, acc.val


@register(np.linalg.lstsq, note="a unbatched: one factorisation for the whole batch")
def lstsq_rule(site: CallSite) -> Out:
    """With ``a`` the same for every example, the examples' right-hand sides are columns
    of one right-hand side: one call solves them all (the rank and singular values are
    shared). A batched ``a`` falls back to the loop: which residuals come back depends
    on each example's rank."""
    b = site.bind(np.linalg.lstsq)
    a, rhs = b.get("a"), b.get("b")
    assert a is not None and rhs is not None
    rb = rhs.rank
    vals = [Val.array(rb), Val.array(1), Val.array(0), Val.array(1)]
    if not site.any_batched:
        return b.render(), Val.tree(tuple, list(enumerate(vals)))
    if a.batched or (b.get("rcond") is not None and b.get("rcond").batched):  # type: ignore[union-attr]
        raise no_rule(site, "np.linalg.lstsq with a batched matrix", "use np.linalg.pinv(a) @ b")
    ctx = site.ctx
    if rb == 1:  # right-hand sides (B, M) as the columns of one (M, B)
        b.set("b", ctx.parse("{x}.T", x=rhs.code))
        solution = "r[0].T"
    elif rb == 2:  # (B, M, K) as (M, B * K)
        b.set("b", ctx.parse("{x}.transpose(1, 0, 2).reshape({x}.shape[1], -1)", x=rhs.code))
        solution = "r[0].reshape(r[0].shape[0], -1, {x}.shape[2]).transpose(1, 0, 2)"
    else:
        raise site.unsupported(f"np.linalg.lstsq with a right-hand side of rank {rb}")
    # Residuals come back one per column, or none (a rank-deficient or wide matrix).
    code = ctx.parse(
        "(lambda r: (%s, r[1].reshape({x}.shape[0], -1), r[2], r[3]))({call})" % solution,
        x=rhs.code,
        call=b.render(),
    )
    vals = [Val.array(rb, True), Val.array(1, True), Val.array(0, dtype="i"), Val.array(1)]
    return code, Val.tree(tuple, list(enumerate(vals)))


register(np.linalg.matmul, family="linalg")(matmul_rule)
register(np.linalg.outer, family="linalg")(outer_rule)


@register(np.linalg.matrix_norm, note="every ord")
def matrix_norm_rule(site: CallSite) -> Out:
    x = site.args[0]
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
        raise site.unsupported("a batched ord= in np.linalg.matrix_norm")
    keep = site.kwargs.get("keepdims")
    if keep is not None and not keep.val.is_static:
        raise site.unsupported("np.linalg.matrix_norm with a non-literal keepdims")
    r = x.rank
    if x.batched and r is None:
        raise site.unsupported("cannot infer the rank of the matrix")
    out = None if r is None else (r if keep is not None and keep.static else r - 2)
    return site.render(), Val.array(out, x.batched)


@register(np.linalg.vector_norm, note="every ord; axis None, an int or a tuple")
def vector_norm_rule(site: CallSite) -> Out:
    from .reductions import normalise_axes, shifted_axis_code

    b = site.bind(np.linalg.vector_norm)
    x = b.get("x")
    assert x is not None
    if any(a.batched for a in [*site.args[1:], *site.kwargs.values()]):
        raise site.unsupported("a batched ord= or axis= in np.linalg.vector_norm")
    r = x.rank
    keep = bool(b.value("keepdims", False))
    axis = b.value("axis", None)
    if r is None:
        if x.batched:
            raise site.unsupported("cannot infer the rank of the array")
        return b.render(), Val.array(None)
    axes = normalise_axes(site, axis, r) if r else ()
    out = r if keep else r - len(axes)
    if not x.batched:
        return b.render(), Val.array(out)
    if axis is None and not keep:
        b.set("x", site.ctx.parse("{x}.reshape({x}.shape[0], -1)", x=x.code))
        b.set("axis", literal(1))
        return b.render(), Val.array(0, True)
    if axis is None:  # keepdims: every per-example axis, kept as length 1
        b.set("axis", literal(tuple(range(1, r + 1))))
    else:
        b.set("axis", shifted_axis_code(axes, axis))
    return b.render(), Val.array(out, True)


def _cross_like(fn, vector_axes: tuple[str, ...]):
    """np.cross / np.linalg.cross / np.linalg.vecdot: the operands broadcast from the
    right (so a batched operand of lower rank gets unit axes after the batch axis) and
    the vector axes are counted from the right (so they do not move)."""

    def rule(site: CallSite) -> Out:
        from .elementwise import align

        b = site.bind(fn)
        names = list(inspect.signature(fn).parameters)[:2]
        x, y = b.get(names[0]), b.get(names[1])
        assert x is not None and y is not None
        for name in vector_axes:
            arg = b.get(name)
            if arg is not None and arg.batched:
                raise site.unsupported(f"a batched {name}= in {fn.__name__}")
        ranks = [a.rank for a in (x, y)]
        if not site.any_batched:
            return b.render(), Val.array(_cross_rank(fn, b, ranks))
        if None in ranks:
            raise site.unsupported(f"cannot infer the ranks of {fn.__name__}'s operands")
        codes, val = align(site.ctx, [x, y])
        if fn is np.cross and not any(name in b for name in vector_axes):
            # Per example np.cross of 3-vectors keeps the rank (of deprecated 2-vectors it
            # drops it): np.linalg.cross is the same product and raises for 2-vectors, so
            # the rank is known and never silently wrong.
            code = site.ctx.parse("np.linalg.cross({a}, {b})", a=codes[0], b=codes[1])
            return code, Val.array(max(ranks), True)  # type: ignore[type-var]
        b.set(names[0], codes[0])
        b.set(names[1], codes[1])
        for name, own in zip(vector_axes, [*ranks, max(ranks)]):
            if name not in b:
                continue
            k = b.value(name)
            if k is None:
                continue
            rank = own if name != "axisc" else _cross_rank(fn, b, ranks)
            if not isinstance(k, int) or rank is None or not -rank <= k < rank:
                raise site.unsupported(f"{name}={k!r} is out of range")
            b.set(name, literal(k - rank if k >= 0 else k))
        return b.render(), Val.array(_cross_rank(fn, b, ranks), True)

    return rule


def _cross_rank(fn, b, ranks) -> int | None:
    if None in ranks:
        return None
    r = max(ranks)
    if fn is np.linalg.vecdot:
        return r - 1
    if fn is np.linalg.cross:
        return r
    return None  # np.cross of 2-vectors drops the axis: the rank depends on the data


register(np.linalg.cross, note="3-vectors along axis")(_cross_like(np.linalg.cross, ("axis",)))
register(np.linalg.vecdot, note="axis counted per example")(
    _cross_like(np.linalg.vecdot, ("axis",))
)
register(np.cross, note="3-vectors (2-vectors raise); with axis arguments the rank is unknown")(
    _cross_like(np.cross, ("axisa", "axisb", "axisc", "axis"))
)
