"""The lifecycle task: storage's retention, expiry and collection rules on a schedule.

Every :data:`SWEEP_INTERVAL` seconds (and once at start) the node runs
:meth:`dchat_storage.Lifecycle.sweep` in a worker thread: disappearing
messages whose timer ran out, messages past their conversation's retention,
relay mailbox entries past the TTL, and attachments no message references.
A sweep is idempotent, so a missed or repeated tick changes nothing; a sweep
that fails (disk trouble) is logged and retried at the next tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_storage import DchatStorageError, LifecyclePolicy, SweepReport

if TYPE_CHECKING:
    from dchat_core import Clock

    from ._store import AsyncStore

__all__ = ("SWEEP_INTERVAL", "LifecycleTask", "policy_for")

_log = logging.getLogger("dchat.lifecycle")
SWEEP_INTERVAL: Final = 60.0
DAY: Final = 86400.0


def policy_for(role: str) -> LifecyclePolicy:
    """The database-wide lifecycle policy of a node role.

    Relays keep undelivered envelopes for 30 days (a recipient offline longer
    must be re-sent to); user nodes hold no mailboxes, and give an unsent
    attachment a day before collecting it.
    """
    if role == "relay":
        return LifecyclePolicy(mailbox_ttl=30 * DAY, attachment_grace=DAY)
    return LifecyclePolicy(mailbox_ttl=None, attachment_grace=DAY)


class LifecycleTask:
    """Runs the sweeps; counts them for ``/status``."""

    def __init__(
        self,
        store: AsyncStore,
        clock: Clock,
        policy: LifecyclePolicy,
        *,
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self._interval = interval
        self.sweeps = 0
        self.deleted = 0

    async def sweep_once(self) -> SweepReport:
        """Apply the rules as of the clock's now; returns what was deleted."""
        lifecycle = self._store.db.lifecycle
        try:
            report = await self._store.run(lifecycle.sweep, self._clock.now(), self._policy)
        except DchatStorageError as exc:
            _log.warning("lifecycle sweep failed: %s", type(exc).__name__)
            return SweepReport()
        self.sweeps += 1
        self.deleted += report.total
        if report.total:
            _log.info(
                "lifecycle sweep",
                extra={
                    "disappeared": report.disappeared,
                    "retention": report.retention,
                    "mailbox_entries": report.mailbox_entries,
                    "attachments": report.attachments,
                    "blobs": report.blobs,
                },
            )
        return report

    async def run(self) -> None:
        """Sweep now and then every interval, forever."""
        while True:
            await self.sweep_once()
            await trio.sleep(self._interval)
