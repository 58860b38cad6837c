"""``astvmap.emit``: the generated module for an imported function, as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .api import VmappedFunction, guards_hold, vmap
from .cache import Compiled


def emit(
    fun: Callable,
    *example_args: Any,
    in_axes: Any = 0,
    out_axes: Any = 0,
    annotate: bool = False,
    **example_kwargs: Any,
) -> str:
    """The generated source for ``fun`` specialised on ``example_args``.

    The example arguments are only inspected (ranks, which leaves are mapped); the
    function is not run, unless the translation needs the type of an unbatched value the
    source does not show: then, as under ``vmap``, it runs once on example 0 (the probe,
    ``astvmap/facts.py``). ``fun`` may already be vmapped, in which case its own
    in_axes/out_axes are used. With ``annotate=True`` each generated statement ends
    with a ``# line N`` comment naming the line of the user's file it came from.
    """
    return specialisation(
        fun, *example_args, in_axes=in_axes, out_axes=out_axes, annotate=annotate, **example_kwargs
    ).source


def specialisation(
    fun: Callable,
    *example_args: Any,
    in_axes: Any = 0,
    out_axes: Any = 0,
    annotate: bool = False,
    run_example: bool = True,
    **example_kwargs: Any,
) -> Compiled:
    """The compiled specialisation behind ``emit``: its source, line map and functions.

    ``run_example=False`` never runs the function (no probe): ``astvmap emit`` makes its
    arguments up, and promises to run nothing of the user's."""
    vf = fun if isinstance(fun, VmappedFunction) else vmap(fun, in_axes=in_axes, out_axes=out_axes)
    if vf.is_nested:
        from .errors import UnsupportedError
        from .nesting import resolve

        if example_kwargs:
            raise UnsupportedError(
                "keyword arguments to a nested vmap", hint="pass them positionally"
            )
        vf = resolve(vf, example_args)
    prepared = vf.prepare(example_args, example_kwargs)
    if not run_example:
        prepared = dataclasses.replace(prepared, example=None)
    if not annotate:
        return vf.specialise(prepared)
    # Annotated text is its own disk-cache entry (the options are part of the key) and
    # never enters the memory cache, whose entries are the plain text the calls run.
    from . import pipeline

    fn = vf.target.fn
    options = pipeline.Options(
        in_axes=repr(vf.in_axes),
        out_axes=repr(vf.out_axes),
        annotate=True,
        randomness=vf.randomness,
        axis_name=vf.axis_name,
    )
    return pipeline.transform(
        fn,
        prepared.params,
        prepared.spec_lines,
        prepared.key,
        options,
        accept=lambda c: guards_hold(c, fn, prepared.arguments),
        example=prepared.example if vf.randomness == "error" and vf.axis_name is None else None,
    )
