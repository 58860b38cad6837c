"""Programs from shared/repro (random differential testing), one module each:
``f``, ``IN_AXES``, ``OUT_AXES`` and ``ARGS`` at top level."""
