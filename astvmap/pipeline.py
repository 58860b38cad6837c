"""The passes, in order. Read this file top to bottom to see what happens to a
function between ``@vmap`` and the first batched call.

    source    fetch the function's source, closure values and globals
    parse     libcst module of that source
    resolve   called names resolved through the function's runtime namespace
    analyse   batching analysis and rank inference (abstract interpretation)
    rewrite   each node family by its rule
    emit      module text with a header, formatted with black
    load      compiled, registered with linecache, cached in memory and on disk

``resolve``, ``analyse`` and ``rewrite`` run together in ``rewrite.Translator``
(assembled from ``core``, ``statements``, ``assignments``, ``loops``,
``expressions``, ``calls`` and ``control``): a name is resolved when the walk
reaches it, and the code for an expression is produced together with its
abstract value.
"""

from __future__ import annotations

import dataclasses
import types
import weakref
from typing import Any

from . import cache, source
from .cache import Compiled
from .errors import TransformBug, VmapError
from .guards import Guard, localise, portable, resolve_owner
from .source import display_path
from .values import NONE, TREE, Val


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything besides the function and its argument values that shapes the output."""

    in_axes: str
    out_axes: str
    annotate: bool = False
    randomness: str = "error"  # how random draws batch (rules/random.py)
    axis_name: str | None = None  # the batch axis collectives name (rules/collectives.py)


def transform(
    fn: types.FunctionType,
    params: dict[str, Val],
    spec: list[str],
    key: Any,
    options: Options,
    accept: Any = None,
    example: Any = None,
) -> Compiled:
    """Generate, compile and cache one specialisation of ``fn``.

    ``accept(compiled)`` says whether a disk entry's guards hold for the call.
    ``example()`` calls the per-example function on example 0 (for the probe, see
    ``_translate``); None where that cannot be done.

    Every failure is a ``VmapError``: ``UnsupportedError`` (with the user's line) for
    code that cannot be vectorised, and ``TransformBug`` for any other exception, which
    can only come from astvmap itself (the translator guards what it evaluates of the
    user's code). This is the one place where that is enforced; ``vmap``, ``emit`` and
    ``astvmap emit`` all transform through here.
    """
    try:
        return _transform(fn, params, spec, key, options, accept, example)
    except VmapError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised as a bug report, cause chained
        raise transform_bug(fn, exc) from exc


def transform_bug(fn: types.FunctionType, exc: BaseException) -> TransformBug:
    """``exc``, raised inside astvmap while transforming ``fn``, as a bug report that
    names the user's line being translated and the innermost astvmap frame."""
    return TransformBug(
        getattr(fn, "__qualname__", repr(fn)), _user_line(fn, exc), _astvmap_frame(exc), exc
    )


def _frames(exc: BaseException) -> list[types.FrameType]:
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _user_line(fn: types.FunctionType, exc: BaseException) -> str:
    """``file:line`` of the statement the innermost translator was at, else of the def."""
    from .rewrite import Translator

    for frame in reversed(_frames(exc)):
        tr = frame.f_locals.get("self")
        if isinstance(tr, Translator):
            try:
                return f"{tr.source.filename}:{tr.file_line(tr.current)}"
            except Exception:  # noqa: BLE001 - the report must not fail in turn
                break
    code = getattr(fn, "__code__", None)
    if code is None:
        return "<unknown>"
    return f"{code.co_filename}:{code.co_firstlineno}"


def _astvmap_frame(exc: BaseException) -> str:
    """The innermost frame of the traceback in astvmap's own modules (rules included)."""
    for frame in reversed(_frames(exc)):
        module = frame.f_globals.get("__name__", "")
        if module == "astvmap" or module.startswith("astvmap."):
            where = module.replace(".", "/") + ".py"
            return f"{where}:{frame.f_lineno} in {frame.f_code.co_name}"
    return "outside astvmap"


def _transform(
    fn: types.FunctionType,
    params: dict[str, Val],
    spec: list[str],
    key: Any,
    options: Options,
    accept: Any = None,
    example: Any = None,
) -> Compiled:
    src = source.get_source(fn)  # the raw text; parsed only if something must be generated
    shown = display_path(src.filename)
    dkey = cache.disk_key(
        [shown, fn.__qualname__, src.digest, repr(key), dataclasses.astuple(options)]
    )
    for payload in cache.disk_entries(dkey):
        hit = _from_disk(dkey, payload, src)
        if hit is not None and (accept is None or accept(hit)):
            return hit
    return _generate(src, shown, dkey, params, spec, options, example)


# Each round of the probe runs the user's function once more on example 0.
PROBE_ROUNDS = 3


def _translate(
    src: source.FunctionSource, params: dict[str, Val], options: Options, example: Any
) -> tuple[Any, Any, Any, Val]:
    """Translate; where that fails for want of the type of an unbatched value, learn the
    types asked for by running example 0 (``facts.run_probe``) and translate again.

    The facts come from one call's example 0 but the code is kept for every call of the
    specialisation (and on disk under a key that does not name them): that is sound
    because the generated code checks each learned type before relying on it
    (``facts.expect``), so code made from any call's facts is right for any call.
    """
    from .errors import UnsupportedError
    from .facts import run_probe
    from .rewrite import Program, Translator

    learned: dict[tuple, tuple] = {}
    asked: set[tuple] = set()
    for round_ in range(PROBE_ROUNDS + 1):
        program = Program(src)
        program.options = options  # the rules read randomness and axis_name from here
        program.facts = learned
        main = Translator(program, src, params, name=src.name)  # resolve + analyse + rewrite
        try:
            fdef, ret = main.translate()
            return program, main, fdef, ret
        except UnsupportedError as exc:
            if example is None or round_ == PROBE_ROUNDS or not getattr(exc, "probe", False):
                raise
            new = _unasked(program.requests, asked)
            if not new:
                if asked:
                    raise _unlearned(exc) from None
                raise
            asked |= {(c, n, p) for c, lines in new.items() for n, ps in lines.items() for p in ps}
            learned = {**learned, **run_probe(example, new)}
    raise AssertionError("unreachable")


def _unlearned(exc: Any) -> Any:
    """``exc`` (a refusal for want of a type) saying that the probe could not help."""
    note = (
        "vmap ran example 0 to learn the types of unbatched values and could not learn "
        "this one: example 0 does not reach the line, the value differs between visits, or "
        "it is not a name, attribute or constant subscript"
    )
    hint = f"{exc.hint}; {note}" if exc.hint else note
    new = type(exc)(
        exc.reason, filename=exc.filename, lineno=exc.lineno, source=exc.source, hint=hint
    )
    new.probe = True
    return new


def _unasked(requests: dict, asked: set[tuple]) -> dict:
    """The requests not probed yet, by code and line."""
    out: dict = {}
    for code, lines in requests.items():
        for line, paths in lines.items():
            fresh = {p for p in paths if (code, line, p) not in asked}
            if fresh:
                out.setdefault(code, {})[line] = fresh
    return out


def _generate(
    src: source.FunctionSource,
    shown: str,
    dkey: str,
    params: dict[str, Val],
    spec: list[str],
    options: Options,
    example: Any = None,
) -> Compiled:
    """Parse, translate, format and load: the slow path, which alone needs libcst and black."""
    from . import codegen

    fn = src.fn
    program, main, fdef, ret = _translate(src, params, options, example)
    program.functions.append(fdef)
    out = output_structure(ret, main)
    head = codegen.header(
        name=src.name if not src.is_lambda else "lambda",
        filename=shown,
        line=src.def_line,
        in_axes=options.in_axes,
        out_axes=options.out_axes,
        specialisation=spec,
        wraps=_wrapped(fn),
    )
    text = codegen.assemble(program.functions, head, program.modules)  # emit
    text, line_map = codegen.finish(text, annotate=options.annotate)
    filename = f"<astvmap {src.name} {dkey[:12]}>"
    origins = {src.name: src.fn, **{n: s.fn for n, (s, _) in program.origins.items()}}
    functions = cache.load(text, filename, origins)  # load
    compiled = Compiled(
        source=text,
        filename=filename,
        main=src.name,
        functions=functions,
        out=out,
        guards=list(program.guards.values()),
        line_map=line_map,
        user_filename=src.filename,
        origin=weakref.ref(fn),
    )
    _to_disk(dkey, compiled, program)
    return compiled


def _wrapped(fn: types.FunctionType) -> str | None:
    """``name (file:line)`` of the function a ``functools.wraps`` wrapper stands for."""
    inner = getattr(fn, "__wrapped__", None)
    code = getattr(inner, "__code__", None)
    if code is None:
        return None
    return f"{inner.__qualname__} ({display_path(code.co_filename)}:{code.co_firstlineno})"


def output_structure(val: Val, tr: Any) -> Any:
    """Which parts of the output carry the batch axis, in a JSON-able form."""
    if val.kind == TREE and val.element is None and val.children:
        return [
            "tree",
            [[k, output_structure(v, tr)] for k, v in val.children if not _alias_key(val, k)],
        ]
    if val.kind == TREE and val.element is not None:
        return ["seq", output_structure(val.element, tr)]
    if val.kind == TREE and val.batched:
        raise tr.unsupported_at(
            tr.node,
            "the function returns a container of batched values whose structure is not known",
        )
    if val.kind == NONE:
        return ["leaf", False]
    return ["leaf", bool(val.batched)]


def _alias_key(val: Val, key: Any) -> bool:
    # NamedTuples are described both by index and by field name; keep the indices.
    return (
        isinstance(key, str)
        and val.container is not dict
        and val.container is not None
        and issubclass(val.container, tuple)
    )


# -------------------------------------------------------------------- disk
def _to_disk(dkey: str, compiled: Compiled, program: Any) -> None:
    deps = {src.filename: src.digest for src, _ in program.origins.values()}
    deps[program.main.filename] = program.main.digest
    guards = [[list(_jsonable(g.origin)), list(portable(g))] for g in compiled.guards]
    payload = {
        "source": compiled.source,
        "main": compiled.main,
        "owners": {n: list(owner) for n, (_, owner) in program.origins.items()},
        "guards": guards,
        "line_map": {str(k): v for k, v in compiled.line_map.items()},
        "out": compiled.out,
        "user_filename": compiled.user_filename,
        "qualnames": {n: s.fn.__qualname__ for n, (s, _) in program.origins.items()},
        "digests": {n: s.digest for n, (s, _) in program.origins.items()},
    }
    variant = cache.disk_key(guards)[:12]
    cache.disk_put(dkey, payload, variant)


def _jsonable(origin: tuple) -> tuple:
    return tuple(list(x) if isinstance(x, tuple) else x for x in origin)


def _from_disk(dkey: str, payload: dict[str, Any], src: source.FunctionSource) -> Compiled | None:
    try:
        origins = {payload["main"]: src.fn}
        for name, owner in payload["owners"].items():
            fn = resolve_owner(src.fn, owner, {})
            if (
                not isinstance(fn, types.FunctionType)
                or fn.__qualname__ != payload["qualnames"][name]
            ):
                return None
            if source.get_source(fn).digest != payload["digests"][name]:
                return None
            origins[name] = fn
        guards = [Guard(_tupled(o), tuple(_tupled(e))) for o, e in payload["guards"]]
        guards = [localise(g, src.fn) for g in guards]
        filename = f"<astvmap {payload['main']} {dkey[:12]}>"
        functions = cache.load(payload["source"], filename, origins)
        return Compiled(
            source=payload["source"],
            filename=filename,
            main=payload["main"],
            functions=functions,
            out=payload["out"],
            guards=guards,
            line_map={int(k): v for k, v in payload["line_map"].items()},
            user_filename=payload["user_filename"],
            origin=weakref.ref(src.fn),
        )
    except Exception:  # noqa: BLE001 - any malformed entry is regenerated, never trusted
        return None


def _tupled(x: Any) -> Any:
    return tuple(_tupled(i) for i in x) if isinstance(x, list) else x
