"""Retries of queued envelopes: which are due, and when a failed one is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._store import MessageStore, OutboxEntry

__all__ = ("Outbox", "RetryPolicy")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2**attempts`` capped at ``cap``, times U(0.5, 1)."""

    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempts``-th failure (counting from 0)."""
        jitter: float = rng.uniform(0.5, 1.0)
        growth = float(2 ** min(attempts, 16))
        return min(self.cap, self.base * growth) * jitter


class Outbox:
    """The durable outbox of a node: every engine's envelopes and raw ones alike.

    Args:
        store: Where items live.
        policy: Backoff of failed deliveries.
        rng: Jitter source (seeded in simulations).
    """

    def __init__(
        self,
        store: MessageStore,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()

    def enqueue(
        self, outbox_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None:
        """Queue an envelope that is not a session message (pairing, sync)."""
        self._store.enqueue(outbox_id, relay, mailbox, envelope, now)

    def due(self, now: float, limit: int = 64) -> Sequence[OutboxEntry]:
        """Items to deliver now, earliest due first."""
        return self._store.due(now, limit)

    def delivered(self, outbox_id: bytes) -> None:
        """The relay stored the envelope: forget it."""
        self._store.mark_sent(outbox_id)

    def failed(self, entry: OutboxEntry, now: float) -> float:
        """A delivery failed; returns when it is tried again."""
        retry_at = now + self._policy.delay(entry.attempts, self._rng)
        self._store.mark_failed(entry.message_id, retry_at)
        return retry_at
