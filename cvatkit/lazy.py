"""Package faces whose names are imported on first use: a command, or a serverless
function, that needs one part of the kit does not load the others."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_names(package: str, exports: Mapping[str, str]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, offering each name of ``exports``
    (name -> the submodule it comes from) once it is asked for."""
    def __getattr__(name: str) -> object:
        if name in exports:
            value = getattr(import_module(f".{exports[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
