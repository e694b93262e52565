"""Virtual time: an event queue and the trace it leaves.

Theory of operation
-------------------
Nothing in a simulation reads a real clock. Every action is a callback scheduled
at a virtual time on one :class:`EventLoop`; the loop pops them in order of
``(time, sequence number)``, so two events due at the same instant run in the
order they were scheduled. Given the same seed, the same callbacks are
scheduled in the same order, which makes a whole run reproducible.

The :class:`Trace` is the run's fingerprint: one line per notable event, folded
into a running BLAKE2b digest (so long runs need no memory for it) with the
last lines kept for failure reports.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from typing import TYPE_CHECKING, Final

from .._errors import SimulationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("EventLoop", "Timer", "Trace")

_TAIL: Final = 200


class Timer:
    """A scheduled callback; :meth:`cancel` stops it from running."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (no effect once it ran)."""
        self.cancelled = True


class EventLoop:
    """A heap of timers over virtual seconds, starting at 0."""

    def __init__(self) -> None:
        self._now = 0.0
        self._seq = 0
        self._heap: list[tuple[float, int, Timer]] = []
        self.events_run = 0

    @property
    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at virtual time ``when`` (not earlier than now)."""
        if when < self._now:
            raise SimulationError("cannot schedule an event in the past")
        timer = Timer(when, callback)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` after ``delay`` virtual seconds."""
        return self.call_at(self._now + max(0.0, delay), callback)

    def next_time(self) -> float | None:
        """When the next pending event is due, or ``None`` if none is."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Run the next event; False if there was none."""
        if self.next_time() is None:
            return False
        when, _, timer = heapq.heappop(self._heap)
        self._now = when
        self.events_run += 1
        timer.callback()
        return True

    def run_until(self, deadline: float, stop: Callable[[], bool] | None = None) -> None:
        """Run events due up to ``deadline`` (then set the time to it), or until ``stop()``."""
        while True:
            if stop is not None and stop():
                return
            when = self.next_time()
            if when is None or when > deadline:
                break
            self.step()
        self._now = max(self._now, deadline)


class Trace:
    """The run's event log, as a digest plus its most recent lines."""

    def __init__(self, keep: int = _TAIL) -> None:
        self._hash = hashlib.blake2b(digest_size=32, person=b"dchat-sim-trace")
        self._tail: deque[str] = deque(maxlen=keep)
        self.lines = 0

    def record(self, now: float, node: str, what: str) -> None:
        """Append one line: time (microsecond resolution), node, description."""
        line = f"{now:.6f} {node} {what}"
        self._hash.update(line.encode() + b"\n")
        self._tail.append(line)
        self.lines += 1

    def digest(self) -> str:
        """Hex BLAKE2b-256 of every line so far."""
        return self._hash.hexdigest()

    def tail(self) -> list[str]:
        """The most recent lines, oldest first."""
        return list(self._tail)
