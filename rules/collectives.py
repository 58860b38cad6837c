"""Collectives over a named batch axis (``astvmap.psum`` and friends), as JAX batches them.

``vmap(f, axis_name="i")`` gives the batch axis of its generated code (axis 0) the
name ``"i"``. A collective naming ``"i"`` becomes NumPy over that axis:

- ``psum(x, "i")``: ``np.sum(x, axis=0)``; an unbatched ``x`` is the same in every
  example, so its sum is ``x * batch_size`` (JAX's answer). ``pmean``, ``pmax`` and
  ``pmin`` likewise (an unbatched operand is its own mean, maximum and minimum).
  The result is the same for every example: it is unbatched, as in JAX.
- ``axis_index("i")``: ``np.arange(batch_size)``, batched.
- ``all_gather(x, "i", axis=k, tiled=t)``: the batch itself, its axis moved to ``k``
  (``tiled``: concatenated along ``k``); unbatched.

A collective naming another axis is kept as written for the vmap that carries that
name: nested vmaps rewrite the inner generated code again, and there the call is
theirs. The kept call's operand carries this vmap's batch axis first, which is only
ever elementwise for the reductions; ``all_gather`` shifts its ``axis`` past it. If no
enclosing vmap carries the name, the kept call runs ``astvmap.collectives``'s
function, which raises ``NameError`` ("unbound axis name"), as JAX does.

All examples take part, also under a batched ``if`` (whose branches run on the whole
batch), as JAX's batched ``cond`` (a ``select``) does. Under a batched ``while`` or
``for`` (whose lanes stop at different times) a collective is refused: which rows
still run changes between iterations.
"""

from __future__ import annotations

import libcst as cst

from astvmap import collectives
from astvmap.values import ARRAY, SCALAR, Val

from .random import has_batch, needs_batch, no_batch_hint
from .registry import CATALOGUE, RULES, CallSite, Out, literal


def _register(fn: object, rule: object) -> None:
    RULES[fn] = rule  # type: ignore[assignment]
    CATALOGUE.setdefault("collectives", []).append(f"astvmap.{fn.__name__}")  # type: ignore[attr-defined]


def _axis_name(site: CallSite) -> tuple[str, bool]:
    """The axis name the call gives, and whether it is this vmap's own."""
    b = site.bind(site.callee)
    if b.get("axis_name") is None:
        raise site.unsupported(f"{site.callee.__name__}() needs an axis_name")
    name = b.value("axis_name")
    if not isinstance(name, str):
        raise site.unsupported(
            f"{site.callee.__name__}() with axis_name={name!r}: astvmap names batch axes "
            "with one string",
            "call the collective once per axis name",
        )
    options = getattr(site.ctx.program, "options", None)  # type: ignore[attr-defined]
    return name, options is not None and options.axis_name == name


def _own_axis_checks(site: CallSite, name: str) -> None:
    ctx = site.ctx
    frames = ctx.ctl.frames  # type: ignore[attr-defined]
    if any(f.kind in ("iter", "loop") for f in frames):
        raise ctx.unsupported(
            f"{site.callee.__name__}() over the batch axis {name!r} inside a loop whose "
            "examples stop at different times",
            "compute the collective before or after the loop",
        )
    if not has_batch(ctx):
        # A helper called without batched arguments runs as written (the collective
        # would raise NameError there), and the batch size is not known in it.
        raise needs_batch(
            ctx,
            f"{site.callee.__name__}() over the batch axis {name!r} needs the batch, and "
            "this function has no batched argument",
            no_batch_hint(ctx),
        )


def _operand(site: CallSite) -> tuple[cst.BaseExpression, Val]:
    x = site.bind(site.callee).get("x")
    if x is None:
        raise site.unsupported(f"{site.callee.__name__}() needs an operand")
    if x.val.kind not in (ARRAY, SCALAR) or x.val.rank is None:
        raise site.unsupported(
            f"{site.callee.__name__}() of a value that is not an array of known rank "
            "(astvmap's collectives take one array, not a pytree)",
            "call it once per array, or np.asarray(...) the operand",
        )
    return x.code, x.val


def _kept(site: CallSite, val: Val) -> Out:
    """Another vmap's axis: the call as written, for that vmap's rewrite."""
    return site.render(), Val.array(val.rank, batched=val.batched, dtype=val.dtype)


_REDUCE = {
    collectives.psum: "np.sum({x}, axis=0)",
    collectives.pmean: "np.mean({x}, axis=0)",
    collectives.pmax: "np.max({x}, axis=0)",
    collectives.pmin: "np.min({x}, axis=0)",
}


def reduction(site: CallSite) -> Out:
    name, own = _axis_name(site)
    code, val = _operand(site)
    if not own:
        return _kept(site, val)
    psum = site.callee is collectives.psum
    _own_axis_checks(site, name)
    if val.batched:
        out = site.ctx.parse(_REDUCE[site.callee], x=code)
        dtype = "f" if site.callee is collectives.pmean else val.dtype
        if psum and val.dtype == "b":
            dtype = "i"
        return out, Val.array(val.rank, dtype=dtype)
    if psum:
        # The same value in every example: the sum is the value times the axis size.
        total = site.ctx.parse("{x} * {b}", x=code, b=site.ctx.batch_size())
        dtype = "i" if val.dtype == "b" else val.dtype
        if val.kind == SCALAR:
            return total, Val(SCALAR, rank=0, dtype=dtype)
        return total, Val.array(val.rank, dtype=dtype)
    return code, val  # the same value in every example is its own mean, maximum, minimum


def axis_index(site: CallSite) -> Out:
    name, own = _axis_name(site)
    if not own:
        return site.render(), Val.array(0, dtype="i")
    _own_axis_checks(site, name)
    return site.ctx.parse("np.arange({b})", b=site.ctx.batch_size()), Val.array(
        0, batched=True, dtype="i"
    )


def all_gather(site: CallSite) -> Out:
    name, own = _axis_name(site)
    code, val = _operand(site)
    b = site.bind(site.callee)
    tiled = b.value("tiled", False)
    axis = b.value("axis", 0)
    if not isinstance(axis, int) or isinstance(axis, bool) or not isinstance(tiled, bool):
        raise site.unsupported("all_gather() needs an int axis and a bool tiled")
    rank = val.rank if tiled else val.rank + 1
    if tiled and val.rank == 0:
        raise site.unsupported("all_gather(..., tiled=True) of a scalar (there is no axis to join)")
    if not -rank <= axis < rank:
        raise site.unsupported(
            f"all_gather() axis={axis} is out of range for a result of rank {rank}"
        )
    axis %= rank
    if not own:
        if not val.batched:
            return site.render(), Val.array(rank, dtype=val.dtype)
        # The operand carries this vmap's batch axis first: the gathered axis goes after it.
        kwargs = {k: a.code for k, a in site.kwargs.items()}
        args = [a.code for a in site.args]
        if "axis" in site.kwargs or len(args) < 3:
            kwargs["axis"] = literal(axis + 1)
        else:
            args[2] = literal(axis + 1)
        return site.render(args, kwargs), Val.array(rank, batched=True, dtype=val.dtype)
    _own_axis_checks(site, name)
    batch = code if val.batched else site.ctx.materialise(code, val)  # type: ignore[attr-defined]
    if tiled:
        # Concatenating an array joins its rows: the examples, one after another.
        out = site.ctx.parse("np.concatenate({x}, axis={k})", x=batch, k=literal(axis))
    elif axis:
        out = site.ctx.parse("np.moveaxis({x}, 0, {k}).copy()", x=batch, k=literal(axis))
    else:
        # A copy: the gathered array is a value of its own (writing into it must not
        # write into the operand).
        out = site.ctx.parse("np.copy({x})", x=batch) if val.batched else batch
    return out, Val.array(rank, dtype=val.dtype)


for _fn in _REDUCE:
    _register(_fn, reduction)
_register(collectives.axis_index, axis_index)
_register(collectives.all_gather, all_gather)
