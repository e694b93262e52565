"""When a device publishes prekeys: how many one-time prekeys, how often to rotate."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("PrekeyPolicy", "PrekeyUpload")


@dataclass(frozen=True, slots=True)
class PrekeyPolicy:
    """Prekey publishing schedule.

    Attributes:
        target: One-time prekeys to hold at the relay after a top-up.
        low_water: Top up when the relay holds fewer than this.
        lifetime: Seconds a signed prekey generation is valid.
        rotate_before: Rotate this many seconds before the generation expires.
    """

    target: int = 50
    low_water: int = 20
    lifetime: float = 7 * 86400.0
    rotate_before: float = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class PrekeyUpload:
    """Wrapped bundles for the home relay's ``pk_put`` (opaque to the relay).

    Attributes:
        last_resort: The bundle without a one-time prekey, served when none is left.
        one_time: ``(one-time prekey id, bundle)`` per new one-time prekey.
        replace: Drop every bundle the relay holds first (a new generation).
    """

    last_resort: bytes
    one_time: tuple[tuple[int, bytes], ...]
    replace: bool
