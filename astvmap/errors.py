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


class NoRuleError(UnsupportedError):
    """A call with batched arguments that no rule covers and whose source cannot be
    transformed. ``vmap`` answers it by running the function per example (with a
    ``PerformanceWarning``) rather than failing."""


class NeedsBatchError(UnsupportedError):
    """A random draw or collective that cannot be batched where it stands (the mode
    refuses it, or no batched value gives the batch size). Never swallowed by the
    best-effort analysis of helpers called without batched arguments: running such a
    helper unchanged would share one draw (or fail) where each example needs its own."""


class PerformanceWarning(UserWarning):
    """A call runs per example in a Python loop because no rule covers it."""
