"""Passes 4-5: batching analysis and rewrite.

The ``Translator`` walks one function's statements in order, as an abstract
interpreter: every expression is translated into batched code *and* given an
abstract value (``Val``: batched?, per-example rank). Analysis and rewrite are one
walk because each rule's output code and output rank are decided by the same
facts; loops are first run "dry" to a fixpoint of the abstract environment, so
the code for a loop body is generated once, from the final facts.

Invariants of the generated code (DESIGN §4): batched values carry the batch axis
first; unbatched code is left as written; mixed ranks are aligned explicitly.
"""

from __future__ import annotations

import builtins

from .assignments import Assignments
from .calls import Calls
from .control import MaskedControl
from .core import Core, Program
from .expressions import Expressions
from .guards import Guard, signature
from .loops import Loops
from .statements import Statements


class Translator(Core, Statements, Assignments, Loops, Expressions, Calls, MaskedControl):
    """Translates one function (one specialisation) into batched code.

    Statements and expressions dispatch on the libcst node's type name: a statement
    to ``stmt_<type>`` (``Statements.statement``), an expression to ``expr_<type>``
    (``Expressions.expr``), whichever family defines it:

    - ``core.py``: the state, the driver (``translate``), the rule context, errors
    - ``statements.py``: blocks, simple statements, ``return``, plain ``if``/``with``
    - ``assignments.py``: assignments, unpacking, item writes, ``+=``
    - ``loops.py``: ``for``/``while`` to a fixpoint, batched ``range``
    - ``expressions.py``: operators, comparisons, subscripts, containers, ...
    - ``calls.py``: rules, methods, nested vmap, user functions
    - ``control.py``: the masked forms of ``if``/loops/``break``/``return``
    """


__all__ = ["Program", "Translator", "Guard", "signature", "builtins"]
