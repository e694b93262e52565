"""Names a package exports but loads on first use (PEP 562), so a client stays light."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("UNUSED_BY_THE_CLIENT", "lazy_names")

# httpcore loads trio and h2 when they are installed (for async and HTTP/2 use); the
# client's HTTP is synchronous HTTP/1.1 to loopback, so it goes without (~0.4 s of CPU).
# ``LazyGroups`` lets them load again for a group that needs them (``dchat wallet``).
UNUSED_BY_THE_CLIENT = ("trio", "h2")


def lazy_names(package: str, homes: dict[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps a submodule to its names."""
    where = {name: module for module, names in homes.items() for name in names}

    def load(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # loaded once
        return value

    return load
