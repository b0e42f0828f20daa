"""The ``cvatkit`` command line: one module per group of commands."""

from .main import EXIT_USER_ERROR, main

__all__ = ["EXIT_USER_ERROR", "main"]
