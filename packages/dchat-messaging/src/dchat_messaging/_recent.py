"""A bounded map of what was used lately, for state the engine keeps decoded.

Write-through use only: whoever puts a value here has stored it as well, so
dropping an entry (the least recently used one past the bound, or one a
rolled-back transaction touched) costs only a decode later, never data.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ("Recent",)

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``bound`` entries; a get or put makes an entry the most recent."""

    __slots__ = ("_bound", "_items")

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._bound:
            self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)
