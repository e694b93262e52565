"""When a node sweeps, and with which policy: the lifecycle schedule, sans-IO.

:meth:`Lifecycle.sweep` applies the rules once; a node runs it on a
schedule. :class:`SweepSchedule` decides that schedule without reading a
clock or sleeping (the caller passes ``now`` and sleeps for
:meth:`SweepSchedule.wait`): the first sweep is due at once, each later one
:data:`SWEEP_INTERVAL` seconds after the previous attempt, whether it
succeeded or failed (a sweep is idempotent, so a missed or repeated tick
changes nothing and a failed one is simply retried at the next tick). It
also counts the sweeps and the rows deleted for the node's ``/status``.

:meth:`SweepSchedule.for_role` holds the database-wide policy of each node
role: a relay keeps undelivered envelopes for 30 days (a recipient offline
longer must be re-sent to); user and validator nodes hold no mailboxes. A
user node expires disappearing messages in its messaging layer (with their
notes, files and relay blobs), so its sweep leaves them to it.
Every role gives an unsent attachment a day before collecting it, and keeps
its event log for ``event_ttl`` (30 days unless the node is configured otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._errors import InvalidArgumentError
from ._lifecycle import DAY, LifecyclePolicy

if TYPE_CHECKING:
    from ._lifecycle import SweepReport

__all__ = ("ROLES", "SWEEP_INTERVAL", "SweepSchedule")

SWEEP_INTERVAL: Final = 60.0
ROLES: Final = ("user", "relay", "validator")


@dataclass(slots=True)
class SweepSchedule:
    """The lifecycle schedule of one node.

    Attributes:
        policy: The database-wide rules each sweep applies.
        interval: Seconds between two sweeps.
        sweeps: Sweeps that succeeded.
        deleted: Rows they deleted in all.
        next_at: When the next sweep is due (``None``: at once).
    """

    policy: LifecyclePolicy
    interval: float = SWEEP_INTERVAL
    sweeps: int = 0
    deleted: int = 0
    next_at: float | None = None

    def __post_init__(self) -> None:
        if not self.interval > 0:  # also refuses NaN
            raise InvalidArgumentError("the sweep interval must be a positive number of seconds")

    @classmethod
    def for_role(
        cls, role: str, *, interval: float = SWEEP_INTERVAL, event_ttl: float | None = 30 * DAY
    ) -> SweepSchedule:
        """The schedule of a node with ``role`` (one of :data:`ROLES`).

        Args:
            role: The node's role.
            interval: Seconds between two sweeps.
            event_ttl: How long the event log keeps an event (None: forever).

        Raises:
            InvalidArgumentError: an unknown role, an interval that is not
                positive, or an event TTL that is not.
        """
        if role not in ROLES:
            raise InvalidArgumentError(f"no lifecycle policy for the role {role!r}")
        if event_ttl is not None and not event_ttl > 0:
            raise InvalidArgumentError("the event TTL must be a positive number of seconds")
        ttl = 30 * DAY if role == "relay" else None
        policy = LifecyclePolicy(
            mailbox_ttl=ttl, attachment_grace=DAY, event_ttl=event_ttl, disappearing=role != "user"
        )
        return cls(policy, interval)

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until the next sweep is due (0: at once)."""
        return 0.0 if self.next_at is None else max(0.0, self.next_at - now)

    def done(self, now: float, report: SweepReport | None) -> None:
        """A sweep attempt ended at ``now``: ``report`` if it succeeded, ``None`` if it failed."""
        self.next_at = now + self.interval
        if report is not None:
            self.sweeps += 1
            self.deleted += report.total
