"""A bot's webhook deliveries, sans-IO: order per chat, retries with backoff, dead letters.

Theory of operation. The node's task reads the bot's updates from the event log
and :meth:`WebhookQueue.offer` s them in update-id order (``cursor`` is the
highest update id taken in, so a restart reads on from there). Updates wait in
one *lane* per chat (a first-in first-out list). Only a lane's head may be on
the wire, so an update for a chat is never sent before the earlier one for that
chat is acknowledged or dead-lettered; different chats go out side by side, at
most ``max_connections`` at a time. :meth:`due` hands out the heads whose time
has come (and marks them in flight); the task answers each with
:meth:`acknowledged` (a 2xx) or :meth:`failed`. A failure schedules the next
attempt after an exponential backoff with jitter (:class:`DeliveryPolicy`); after
``max_attempts`` attempts, or once the update waited ``max_age`` seconds, it
moves to the dead-letter list, which the owner lists and retries.

Delivery is at least once: an update on the wire when the node stops is sent
again after the restart (with the same ``update_id``, for the receiver to
deduplicate). Time and randomness are parameters; the state is plain JSON
(:meth:`to_json`), saved by the shell after every change.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._errors import BotApiError

if TYPE_CHECKING:
    import random

__all__ = ("DeadLetter", "Delivery", "DeliveryPolicy", "WebhookQueue")

MAX_PENDING: Final = 1000
"""Updates taken in and not yet delivered (the event log holds the rest)."""
MAX_DEAD: Final = 1000
"""Dead letters kept; the oldest go first (``dead_dropped`` counts them)."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """When to try a failed delivery again, and when to give up on it."""

    first_delay: float = 1.0
    max_delay: float = 600.0
    max_attempts: int = 20
    max_age: float = 86_400.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds before attempt ``attempts + 1``: half the doubled delay, plus up to as much.

        "Equal jitter": at least half the exponential delay (so retries do thin
        out), the rest random (so many bots' retries after one outage spread).
        """
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** min(attempts - 1, 60))
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


@dataclass
class Delivery:
    """An update waiting in its chat's lane (or on the wire)."""

    update_id: int
    chat: str
    queued_at: float
    attempts: int = 0
    next_at: float = 0.0
    in_flight: bool = False


@dataclass(frozen=True)
class DeadLetter:
    """An update the receiver did not take: after its last attempt, or refused outright."""

    update_id: int
    chat: str
    queued_at: float
    attempts: int
    dead_at: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The letter as a JSON object (what the dead-letter list shows)."""
        return {
            "update_id": self.update_id,
            "chat": self.chat,
            "queued_at": self.queued_at,
            "attempts": self.attempts,
            "dead_at": self.dead_at,
            "reason": self.reason,
        }


@dataclass
class WebhookQueue:
    """The deliveries of one bot's webhook (see the module docstring)."""

    cursor: int = 0
    """Every update id up to this one is taken in (queued, delivered or dead)."""
    max_connections: int = 40
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    capacity: int = MAX_PENDING
    lanes: dict[str, deque[Delivery]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    dead_dropped: int = 0
    delivered: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None

    # -- taking updates in -------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Updates taken in and not yet acknowledged or dead."""
        return sum(len(lane) for lane in self.lanes.values())

    def room(self) -> int:
        """How many more updates :meth:`offer` takes now."""
        return max(0, self.capacity - self.pending)

    def offer(self, update_id: int, chat: str, now: float) -> None:
        """Queue the update ``update_id`` for ``chat`` (ids only grow)."""
        if update_id <= self.cursor:
            raise BotApiError(500, "Internal Server Error: an update offered twice")
        if not self.room():
            raise BotApiError(500, "Internal Server Error: the webhook queue is full")
        self.lanes.setdefault(chat, deque()).append(Delivery(update_id, chat, now, next_at=now))
        self.cursor = update_id

    def skip_to(self, cursor: int) -> None:
        """Nothing to deliver up to ``cursor`` (other events, or updates not asked for)."""
        self.cursor = max(self.cursor, cursor)

    def drop_pending(self, cursor: int) -> None:
        """Forget every waiting update and read on after ``cursor`` (``drop_pending_updates``)."""
        self.lanes.clear()
        self.skip_to(cursor)

    def resume_offset(self) -> int:
        """The first update id not yet handled: where ``getUpdates`` goes on without a webhook."""
        waiting = [lane[0].update_id for lane in self.lanes.values() if lane]
        return min(waiting, default=self.cursor + 1)

    # -- the wire ----------------------------------------------------------------------

    def due(self, now: float) -> list[Delivery]:
        """The lane heads to send now, oldest first, marked in flight."""
        busy = sum(1 for lane in self.lanes.values() if lane and lane[0].in_flight)
        ready = sorted(
            (lane[0] for lane in self.lanes.values() if lane and not lane[0].in_flight),
            key=lambda d: d.update_id,
        )
        sends = [d for d in ready if d.next_at <= now][: max(0, self.max_connections - busy)]
        for delivery in sends:
            delivery.in_flight = True
        return sends

    def next_wake(self) -> float | None:
        """When the next waiting head may be sent (None: nothing waits on a timer).

        None too while ``max_connections`` updates are on the wire: the next
        answer, not the clock, makes room.
        """
        busy = sum(1 for lane in self.lanes.values() if lane and lane[0].in_flight)
        if busy >= self.max_connections:
            return None
        heads = [lane[0].next_at for lane in self.lanes.values() if lane and not lane[0].in_flight]
        return min(heads, default=None)

    def _head(self, update_id: int) -> deque[Delivery] | None:
        for lane in self.lanes.values():
            if lane and lane[0].update_id == update_id and lane[0].in_flight:
                return lane
        return None  # dropped or reset meanwhile: the answer is stale

    def acknowledged(self, update_id: int) -> bool:
        """The receiver answered 2xx; False if the update was no longer waiting."""
        lane = self._head(update_id)
        if lane is None:
            return False
        self._pop(lane)
        self.delivered += 1
        return True

    def failed(self, update_id: int, now: float, error: str, rng: random.Random) -> bool:
        """The attempt failed with ``error``; True if the update went to the dead letters."""
        lane = self._head(update_id)
        if lane is None:
            return False
        delivery = lane[0]
        delivery.attempts += 1
        delivery.in_flight = False
        self.last_error_date, self.last_error_message = int(now), error[:256]
        policy = self.policy
        if delivery.attempts >= policy.max_attempts or now - delivery.queued_at >= policy.max_age:
            self._bury(lane, now, error)
            return True
        delivery.next_at = now + policy.delay(delivery.attempts, rng)
        return False

    def refuse(self, update_id: int, now: float, reason: str) -> bool:
        """Dead-letter an in-flight update without sending it (too large, gone from the log)."""
        lane = self._head(update_id)
        if lane is None:
            return False
        self._bury(lane, now, reason)
        return True

    def _bury(self, lane: deque[Delivery], now: float, reason: str) -> None:
        d = self._pop(lane)
        self.dead.append(DeadLetter(d.update_id, d.chat, d.queued_at, d.attempts, now, reason))
        if len(self.dead) > MAX_DEAD:
            del self.dead[0]
            self.dead_dropped += 1

    def _pop(self, lane: deque[Delivery]) -> Delivery:
        delivery = lane.popleft()
        if not lane:
            del self.lanes[delivery.chat]
        return delivery

    # -- dead letters ------------------------------------------------------------------

    def retry_dead(self, update_ids: list[int] | None, now: float) -> list[int]:
        """Queue dead letters again (all, or those of ``update_ids``); the ids queued.

        Each goes into its chat's lane in update-id order behind whatever is on
        the wire, with its attempts reset. Retrying is not bounded by
        :attr:`capacity` (the list it comes from is).
        """
        chosen = [d for d in self.dead if update_ids is None or d.update_id in update_ids]
        self.dead = [d for d in self.dead if d not in chosen]
        for letter in chosen:
            lane = self.lanes.setdefault(letter.chat, deque())
            items = list(lane)
            start = 1 if items and items[0].in_flight else 0
            keys = [d.update_id for d in items[start:]]
            where = start + bisect.bisect(keys, letter.update_id)
            lane.insert(where, Delivery(letter.update_id, letter.chat, now, next_at=now))
        return [d.update_id for d in chosen]

    # -- saved state -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The queue as JSON values (updates on the wire are saved as waiting)."""
        return {
            "cursor": self.cursor,
            "max_connections": self.max_connections,
            "waiting": [  # [update_id, chat, queued_at, attempts, next_at], lane by lane
                [d.update_id, d.chat, d.queued_at, d.attempts, d.next_at]
                for lane in self.lanes.values()
                for d in lane
            ],
            "dead": [d.to_json() for d in self.dead],
            "dead_dropped": self.dead_dropped,
            "delivered": self.delivered,
            "last_error_date": self.last_error_date,
            "last_error_message": self.last_error_message,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any], policy: DeliveryPolicy | None = None) -> WebhookQueue:
        """Load :meth:`to_json`'s values (damaged: ``BotApiError`` 500)."""
        try:
            queue = cls(
                int(state["cursor"]),
                int(state["max_connections"]),
                policy or DeliveryPolicy(),
                dead=[DeadLetter(**d) for d in state["dead"]],  # keys checked by the dataclass
                dead_dropped=int(state["dead_dropped"]),
                delivered=int(state["delivered"]),
                last_error_date=state["last_error_date"],
                last_error_message=state["last_error_message"],
            )
            for update_id, chat, queued_at, attempts, next_at in state["waiting"]:
                delivery = Delivery(int(update_id), str(chat), queued_at, int(attempts), next_at)
                queue.lanes.setdefault(delivery.chat, deque()).append(delivery)
        except (KeyError, TypeError, ValueError) as exc:
            raise BotApiError(500, "Internal Server Error: the webhook state is damaged") from exc
        return queue
