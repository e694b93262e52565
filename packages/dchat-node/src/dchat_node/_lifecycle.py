"""The lifecycle task: storage's retention, expiry and collection rules on a schedule.

What a sweep deletes is :meth:`dchat_storage.Lifecycle.sweep`; which policy a
role sweeps with and when the next sweep is due is
:class:`dchat_storage.SweepSchedule`. This task runs each sweep in a worker
thread, sleeps until the next one, and logs what it deleted; a sweep that
fails (disk trouble) is logged and retried at the next tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from dchat_storage import DchatStorageError, SweepReport

if TYPE_CHECKING:
    from dchat_core import Clock
    from dchat_storage import AsyncStore, SweepSchedule

__all__ = ("LifecycleTask",)

_log = logging.getLogger("dchat.lifecycle")


class LifecycleTask:
    """Runs the sweeps ``schedule`` asks for (its counters feed ``/status``)."""

    def __init__(self, store: AsyncStore, clock: Clock, schedule: SweepSchedule) -> None:
        self._store, self._clock, self.schedule = store, clock, schedule

    async def sweep_once(self) -> SweepReport:
        """Apply the rules as of the clock's now; returns what was deleted."""
        report: SweepReport | None = None
        try:
            sweep = self._store.db.lifecycle.sweep
            report = await self._store.run(sweep, self._clock.now(), self.schedule.policy)
        except DchatStorageError as exc:
            _log.warning("lifecycle sweep failed: %s", type(exc).__name__)
        self.schedule.done(self._clock.now(), report)
        if report is not None and report.total:
            _log.info("lifecycle sweep", extra=report.counts())
        return report or SweepReport()

    async def run(self) -> None:
        """Sweep now and whenever the schedule says, forever."""
        while True:
            await self.sweep_once()
            await trio.sleep(self.schedule.wait(self._clock.now()))
