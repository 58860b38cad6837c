"""Exceptions and warnings raised by astvmap."""

from __future__ import annotations


class VmapError(Exception):
    """Base class for errors raised while transforming a function."""


class UnsupportedError(VmapError):
    """A construct that astvmap cannot vectorise.

    The message names the user's ``file:line``, quotes the source text and says
    what to write instead.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        lineno: int | None = None,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = message
        self.filename = filename
        self.lineno = lineno
        self.source = source
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.filename is not None:
            parts.append(f"{self.filename}:{self.lineno}: {self.reason}")
        else:
            parts.append(self.reason)
        if self.source:
            parts.append(f"    {self.source.strip()}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class FallbackError(UnsupportedError):
    """A construct astvmap cannot vectorise but that the per-example loop runs: a call no
    rule covers, a form the translator does not rewrite. ``vmap`` answers it by running
    the function per example with a ``PerformanceWarning`` naming the line (DESIGN §7:
    correct first, fast where a rule exists); ``emit`` raises it, since no batched code
    exists to show. A plain ``UnsupportedError`` is kept for what the loop itself does
    not give a meaning to under vmap: a value whose length differs per example, a write
    of the batch into state shared by every example."""


class NeedsBatchError(UnsupportedError):
    """A random draw or collective that cannot be batched where it stands (the mode
    refuses it, or no batched value gives the batch size). Never swallowed by the
    best-effort analysis of helpers called without batched arguments: running such a
    helper unchanged would share one draw (or fail) where each example needs its own."""


class TransformBug(VmapError):
    """astvmap itself failed while transforming a function: a bug in astvmap, not in the
    user's code. The original exception is chained as ``__cause__``.

    ``where`` is the user's ``file:line`` being translated when it failed (the ``def``
    line when no statement was being translated), ``frame`` the innermost astvmap
    frame of the original traceback (``module.py:line in function``).
    """

    def __init__(self, function: str, where: str, frame: str, error: BaseException) -> None:
        self.function = function
        self.where = where
        self.frame = frame
        self.error = error
        first = (str(error).strip().splitlines() or [""])[0]
        super().__init__(
            f"{where}: internal error in astvmap while transforming {function}: "
            f"{type(error).__name__}: {first}\n"
            f"    (innermost astvmap frame: {frame})\n"
            "This is a bug in astvmap, not in your code. Please report it to the astvmap "
            "maintainers with this message, the traceback and the function's source; "
            "`python -m astvmap.cli emit FILE.py:FUNC` reproduces it without running anything. "
            "Until it is fixed, the plain per-example loop gives the result."
        )


class PerformanceWarning(UserWarning):
    """A call runs per example in a Python loop because no rule covers it."""
