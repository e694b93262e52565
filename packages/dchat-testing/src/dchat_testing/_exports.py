"""The export rules every package's surface follows, checked in one place.

A package's everyday module and its low-level one (``lowlevel`` or ``hazmat``)
each list exactly their public names in a sorted ``__all__`` tuple, no name has
two homes, and the everyday API fits one screen.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ("check_export_surfaces",)


def _public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, ModuleType)
    }


def check_export_surfaces(everyday: ModuleType, low: ModuleType, *, limit: int = 35) -> None:
    """Assert the export rules for ``everyday`` and ``low`` (an ``AssertionError`` says which)."""
    for module in (everyday, low):
        names = module.__all__
        assert isinstance(names, tuple), module.__name__
        assert set(names) == _public_names(module), module.__name__
        assert list(names) == sorted(names), module.__name__
        assert len(set(names)) == len(names), module.__name__
    assert not set(everyday.__all__) & set(low.__all__)
    assert len(everyday.__all__) <= limit, len(everyday.__all__)
