"""Package attributes imported on first use (PEP 562), for packages whose ``__init__`` would
otherwise import every module: a process that needs one part does not pay for the rest."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def on_first_use(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``where`` is imported from
    its module (relative to the package) when first asked for, then kept as an ordinary attribute.

    Examples
    --------
    >>> from analysis._lazy import on_first_use
    >>> get, names = on_first_use("analysis.outcomes", {"Definitions": ".definitions"})
    >>> get("Definitions").__name__, "Definitions" in names()
    ('Definitions', True)
    """

    def __getattr__(name: str):
        if name in where:
            value = getattr(import_module(where[name], package), name)
            setattr(sys.modules[package], name, value)      # once: later look-ups are plain reads
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
