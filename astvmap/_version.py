"""The package version, in a module of its own: ``cache`` and ``codegen`` read it
without importing the package ``__init__`` (which imports ``api``, which imports them)."""

__version__ = "0.1.0"
