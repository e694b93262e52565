"""Clocks as explicit parameters.

Protocol code never reads the time itself; it is handed a :class:`Clock`. The
system clock serves production, :class:`ManualClock` serves tests and the
deterministic simulator.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from ._errors import CallerError

__all__ = ("Clock", "ManualClock", "SystemClock")


@runtime_checkable
class Clock(Protocol):
    """Source of wall-clock and monotonic time, both in seconds."""

    def now(self) -> float:
        """Seconds since the Unix epoch (may jump)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The operating system's clocks."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def monotonic(self) -> float:
        """The OS monotonic clock."""
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to.

    Args:
        start: Initial wall-clock time in seconds since the epoch.
    """

    __slots__ = ("_mono", "_wall")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 0.0

    def now(self) -> float:
        """The current simulated wall-clock time."""
        return self._wall

    def monotonic(self) -> float:
        """The current simulated monotonic time."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise CallerError("a clock cannot go backwards")
        self._wall += seconds
        self._mono += seconds
