"""Per-height timelines of the engine task, for finding where a height's wall time goes.

Off unless the ``dchat.validator.trace`` logger is enabled at debug level
(``--log-level debug``): then :class:`HeightTrace` records monotonic timestamps
of the steps of each height (proposal sent or received, prevote and precommit
sent, decision, block stored) and the engine task's own costs
(time in engine calls, durable writes, inbox queueing), and logs one line per
height. A companion task measures event-loop lag (how late a 5 ms sleep wakes
up). ``time.monotonic`` is system-wide on Linux, so the ``t0`` of lines from
different validator processes on one machine can be compared.

When off, every method returns at its first line: nothing is recorded. The
bookkeeping is :class:`dchat_chain.lowlevel.HeightTimeline` (sans-IO); this
shell reads the clock, hooks the garbage collector and logs.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Final

import trio

from dchat_chain.lowlevel import HeightTimeline

__all__ = ("HeightTrace",)

_log = logging.getLogger("dchat.validator.trace")
LAG_PERIOD: Final = 0.005


class HeightTrace:
    """Collects one height's timeline; :meth:`flush` logs it and starts the next."""

    def __init__(self) -> None:
        self.enabled = _log.isEnabledFor(logging.DEBUG)
        self._timeline = HeightTimeline(time.monotonic())
        self._lag_max = 0.0
        self._gc_began = 0.0
        if self.enabled:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.monotonic()
            return
        took = time.monotonic() - self._gc_began
        self.cost(f"gc{info['generation']}", took)
        self.peak(f"gc{info['generation']}_max", took)

    def mark(self, name: str, at: float | None = None) -> None:
        """Note that step ``name`` happened (now, or ``at``); the first time per height counts."""
        if self.enabled:
            self._timeline.mark(name, time.monotonic() if at is None else at)

    def cost(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to this height's total for ``name``."""
        if self.enabled:
            self._timeline.cost(name, seconds)

    def peak(self, name: str, seconds: float) -> None:
        """Keep the largest ``seconds`` seen for ``name`` this height."""
        if self.enabled:
            self._timeline.peak(name, seconds)

    def flush(self, height: int, round_: int, txs: int) -> None:
        """Log the finished height and reset for the next one."""
        if self.enabled:
            line = self._timeline.finish(height, round_, txs, time.monotonic())
            _log.debug("%s | lag_max=%.0f", line, self._lag_max * 1000)
            self._lag_max = 0.0

    async def watch_lag(self) -> None:
        """Record how late the event loop runs a short sleep (only when enabled)."""
        if not self.enabled:
            return
        while True:
            before = time.monotonic()
            await trio.sleep(LAG_PERIOD)
            self._lag_max = max(self._lag_max, time.monotonic() - before - LAG_PERIOD)
