"""The outbox's rules: which queued envelopes go now, in what batches, and retries.

Order: envelopes to one destination (a mailbox at a relay) leave in the order
they were queued. An envelope waiting to be retried holds every later one to
the same destination, so a recipient never gets a newer message before an
older one that is merely delayed; other destinations are not held up. With
several home relays each copy of an envelope is its own entry (one per relay),
so a dead relay holds back only its own copies: :meth:`Outbox.due` reads the
queue a page at a time, past a dead relay's backlog (up to :data:`MAX_PAGES`
pages), until it finds entries that can go.

Batches: due envelopes are grouped by relay, in queue order, into deposits of
at most :data:`MAX_DEPOSIT` envelopes and :data:`MAX_DEPOSIT_BYTES` bytes
(the relay protocol's ``put_many`` limits), each one request and one commit at
the relay.

Backpressure: a relay over a limit answers ``busy`` with a retry-after
(:class:`dchat_network.RelayBusyError`). :meth:`Outbox.busy` then holds that
whole relay (in memory: a restart forgets it, which at worst asks once too
early) until at least the retry-after has passed, jittered up by at most a
quarter so that many senders do not all return at once, and marks the
refused deposit's entries for retry at the same time. :meth:`Outbox.due`
skips entries for a held relay, so the order per destination is kept and
nothing is dropped: the entries stay queued. A ``delivered`` answer (the
relay saw the envelope delivered already, a re-send after a lost reply)
counts as stored.

Delivery latency: :meth:`Outbox.settle` observes, for each envelope a relay
stored, the time from its enqueue to that settle (the relay's
acknowledgement, retries included) in :attr:`Outbox.latency`, a
:class:`dchat_core.Histogram` a node's metrics endpoint reads; one
subtraction and one bucket count per envelope, no extra store access.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import Histogram, MailboxId, MessageId

from ._envelope import SealedEnvelope

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._store import MessageStore, OutboxEntry

__all__ = (
    "MAX_DEPOSIT",
    "MAX_DEPOSIT_BYTES",
    "Outbox",
    "RetryPolicy",
    "deposits",
    "relay_deposits",
)

MAX_DEPOSIT: Final = 64
"""Envelopes in one deposit (the relay protocol's ``put_many`` limit)."""
MAX_DEPOSIT_BYTES: Final = 768 * 1024
"""Envelope bytes in one deposit (the relay protocol's ``put_many`` limit)."""
_LOOKAHEAD: Final = 4
"""Queued entries read per page, per due one asked for (held ones are skipped)."""
MAX_PAGES: Final = 8
"""Pages :meth:`Outbox.due` reads at most (past a dead relay's backlog)."""


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
        self.latency = Histogram()
        """Seconds from enqueue to the relay's stored acknowledgement, per envelope."""
        self._held: dict[str, float] = {}  # relay: held until (it answered busy)
        self.busy_answers = 0
        """Deposits a relay answered ``busy`` (each held its relay for a while)."""
        self.read_to_end = False
        """Whether the last :meth:`due` saw the whole queue: if so, and each entry it
        returned is stored, nothing is due before a new send or a retry time."""

    def enqueue(
        self, outbox_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None:
        """Queue an envelope that is not a session message (pairing, sync)."""
        self._store.enqueue(outbox_id, relay, mailbox, envelope, now)

    def enqueue_sealed(
        self, relays: Sequence[str], items: Sequence[tuple[bytes, bytes]], now: float
    ) -> None:
        """Queue ``(mailbox, ciphertext)`` items as sealed envelopes at each of ``relays``.

        Each item is sealed once and queued once per relay (the same bytes,
        each copy under its own random id), like a message's copies: the
        recipient drains the mailbox at each relay and handles one copy.
        """
        with self._store.transaction():
            for mailbox, ciphertext in items:
                envelope = SealedEnvelope(MailboxId(mailbox), ciphertext).to_bytes()
                for relay in relays:
                    self._store.enqueue(bytes(MessageId.random()), relay, mailbox, envelope, now)

    def due(self, now: float, limit: int = 64) -> list[OutboxEntry]:
        """Up to ``limit`` entries to deliver now, in queue order, none overtaking a held one."""
        held: set[tuple[str, bytes]] = set()
        ready: list[OutboxEntry] = []
        busy = {relay for relay, until in self._held.items() if until > now}
        page = limit * _LOOKAHEAD
        self.read_to_end = False
        for number in range(MAX_PAGES):
            entries = self._store.queued(page, number * page)
            for entry in entries:
                destination = (entry.relay, entry.mailbox)
                if destination in held or entry.relay in busy:
                    continue
                if entry.next_attempt_at > now:
                    held.add(destination)
                    continue
                ready.append(entry)
                if len(ready) == limit:
                    return ready
            if len(entries) < page or ready:
                self.read_to_end = len(entries) < page
                break  # the queue's end, or work enough for this round
        return ready

    def busy(self, entries: Sequence[OutboxEntry], retry_after: float, now: float) -> float:
        """The relay of ``entries`` (one deposit) answered busy; returns when it is tried again.

        Holds the relay and the entries until at least ``now + retry_after``.
        """
        until = now + max(0.0, retry_after) * self._rng.uniform(1.0, 1.25)
        relay = entries[0].relay
        held = {relay: at for relay, at in self._held.items() if at > now}  # released: dropped
        held[relay] = max(held.get(relay, until), until)
        self._held = held  # one assignment: a reader beside this worker sees old or new
        self.busy_answers += 1
        with self._store.transaction():
            for entry in entries:
                self._store.mark_failed(entry.message_id, until)
        return until

    def held_for(self, now: float, longest: float) -> float:
        """Seconds until the first held relay is released, at most ``longest``.

        Reads memory only (no store), so the shell calls it in its event loop
        beside the store's worker: a trip to the worker for it, after each
        delivery round, cost as much as the answer.
        """
        held = list(self._held.values())  # one C-level copy: safe beside the worker
        return min([longest, *(until - now for until in held if until > now)])

    def oldest(self) -> float | None:
        """When the oldest queued envelope was queued (None: the outbox is empty)."""
        return self._store.oldest_queued()

    def delivered(self, outbox_id: bytes) -> None:
        """The relay stored the envelope: forget it."""
        self._store.mark_sent(outbox_id)

    def failed(self, entry: OutboxEntry, now: float) -> float:
        """A delivery failed; returns when it is tried again."""
        retry_at = now + self._policy.delay(entry.attempts, self._rng)
        self._store.mark_failed(entry.message_id, retry_at)
        return retry_at

    def settle(self, entries: Sequence[OutboxEntry], results: Sequence[object], now: float) -> int:
        """Apply a deposit's per-entry results in one transaction; returns how many were stored.

        A result that is ``bytes`` (the relay's entry id) means stored, and
        ``delivered`` (the relay saw it delivered already) as good: the entry
        is forgotten; anything else (a refusal code, an error name) means it
        failed and is retried later.
        """
        waited: list[float] = []
        with self._store.transaction():
            for entry, result in zip(entries, results, strict=True):
                if isinstance(result, bytes) or result == "delivered":
                    self._store.mark_sent(entry.message_id)
                    waited.append(now - entry.queued_at)
                else:
                    self.failed(entry, now)
        for seconds in waited:  # counted once the settling committed
            self.latency.observe(seconds)
        return len(waited)


def deposits(entries: Sequence[OutboxEntry]) -> list[list[OutboxEntry]]:
    """Group ``entries`` by relay, keeping their order, into deposits within the limits."""
    by_relay: dict[str, list[list[OutboxEntry]]] = {}
    for entry in entries:
        batches = by_relay.setdefault(entry.relay, [[]])
        batch = batches[-1]
        size = sum(len(e.envelope) for e in batch) + len(entry.envelope)
        if batch and (len(batch) == MAX_DEPOSIT or size > MAX_DEPOSIT_BYTES):
            batches.append(batch := [])
        batch.append(entry)
    return [batch for batches in by_relay.values() for batch in batches]


def relay_deposits(entries: Sequence[OutboxEntry]) -> list[list[list[OutboxEntry]]]:
    """:func:`deposits` per relay: a list of each relay's deposits, in order.

    A shell delivers the relays in parallel and each relay's deposits one after
    another, so a relay that is down or slow delays only its own queue.
    """
    by_relay: dict[str, list[list[OutboxEntry]]] = {}
    for batch in deposits(entries):
        by_relay.setdefault(batch[0].relay, []).append(batch)
    return list(by_relay.values())
