"""Typed field access on decoded canonical maps.

Protocol decoders turn an untrusted map into a frozen dataclass with these
helpers; any missing, extra or mistyped field raises :class:`DecodeError`, so a
decoder either returns a whole, valid object or fails.
"""

from __future__ import annotations

from typing import Any

from ._errors import DecodeError

__all__ = ("Fields",)


class Fields:
    """Checked reader over one decoded map.

    Args:
        value: The decoded value that must be a map.
        what: Name of the record, used in error messages.
        allowed: Every key the record may carry; unknown keys are rejected.
    """

    __slots__ = ("_map", "_what")

    def __init__(self, value: Any, what: str, allowed: frozenset[str | int]) -> None:
        if not isinstance(value, dict):
            raise DecodeError(f"{what}: expected a map")
        extra = set(value) - allowed
        if extra:
            raise DecodeError(f"{what}: unexpected fields")
        self._map: dict[Any, Any] = value
        self._what = what

    def _get(self, key: str | int) -> Any:
        try:
            return self._map[key]
        except KeyError:
            raise DecodeError(f"{self._what}: missing field {key!r}") from None

    def has(self, key: str | int) -> bool:
        """Whether the optional field ``key`` is present."""
        return key in self._map

    def get_bytes(
        self, key: str | int, *, size: int | None = None, max_size: int = 1 << 20
    ) -> bytes:
        """A byte-string field, of exactly ``size`` bytes when given."""
        value = self._get(key)
        if not isinstance(value, bytes):
            raise DecodeError(f"{self._what}: field {key!r} must be bytes")
        if (size is not None and len(value) != size) or len(value) > max_size:
            raise DecodeError(f"{self._what}: field {key!r} has a bad length")
        return value

    def get_int(self, key: str | int, *, lo: int = 0, hi: int = 2**63 - 1) -> int:
        """An integer field within ``[lo, hi]``."""
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise DecodeError(f"{self._what}: field {key!r} must be an integer in range")
        return value

    def get_str(self, key: str | int, *, max_len: int = 4096) -> str:
        """A text field of at most ``max_len`` characters."""
        value = self._get(key)
        if not isinstance(value, str) or len(value) > max_len:
            raise DecodeError(f"{self._what}: field {key!r} must be text of bounded length")
        return value

    def get_list(self, key: str | int, *, max_len: int = 4096) -> list[Any]:
        """A list field of at most ``max_len`` items."""
        value = self._get(key)
        if not isinstance(value, list) or len(value) > max_len:
            raise DecodeError(f"{self._what}: field {key!r} must be a bounded list")
        return value

    def raw(self, key: str | int) -> Any:
        """A field of any type, for nested records decoded by another reader."""
        return self._get(key)
