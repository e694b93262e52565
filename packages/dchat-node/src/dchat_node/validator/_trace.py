"""Per-height timelines of the engine task, for finding where a height's wall time goes.

Off unless the ``dchat.validator.trace`` logger is enabled at debug level
(``--log-level debug``): then :class:`dchat_chain.lowlevel.HeightTrace` records
monotonic timestamps of the steps of each height (proposal sent or received,
prevote and precommit sent, decision, block stored) and the engine task's own
costs (time in engine calls, durable writes, inbox queueing, garbage
collections), and one line per height is logged. :func:`watch_lag` measures
event-loop lag (how late a 5 ms sleep wakes up). ``time.monotonic`` is
system-wide on Linux, so the ``t0`` of lines from different validator
processes on one machine can be compared.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Final

import trio

from dchat_chain.lowlevel import HeightTrace

__all__ = ("height_trace", "watch_lag")

_log = logging.getLogger("dchat.validator.trace")
LAG_PERIOD: Final = 0.005


def height_trace() -> HeightTrace:
    """A trace on the monotonic clock, logging at debug level (inert otherwise)."""
    trace = HeightTrace(time.monotonic, _log.debug, enabled=_log.isEnabledFor(logging.DEBUG))
    if trace.enabled:
        gc.callbacks.append(trace.on_gc)
    return trace


async def watch_lag(trace: HeightTrace) -> None:
    """Record how late the event loop runs a short sleep (only when enabled)."""
    if not trace.enabled:
        return
    while True:
        before = time.monotonic()
        await trio.sleep(LAG_PERIOD)
        trace.lag(time.monotonic() - before - LAG_PERIOD)
