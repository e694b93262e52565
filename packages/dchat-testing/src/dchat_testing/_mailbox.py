"""An in-memory :class:`dchat_network.MailboxStore`.

It keeps the contract of the SQLite store (``dchat_storage.MailboxRepo``) and
passes the same conformance suite (:class:`MailboxStoreConformance`): entry ids
are BLAKE2b-256 of the envelope personalised ``dchat-envelope``, a repeated put
of the same envelope into one mailbox stores one copy, fetch returns the oldest
entries first (by arrival time, then insertion) and never deletes, ack deletes
only the named mailbox's entries and ignores unknown ids.

:class:`MemoryPrekeyStore` does the same for ``dchat_storage.PrekeyRepo``
(:class:`PrekeyStoreConformance`): one-time bundles are taken lowest prekey id
first, each once (a lock makes takes atomic across threads), then the
last-resort bundle, which stays.

"Durable" here means: the object outlives the simulated node that uses it. The
simulator hands the same stores to a relay after every restart.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import SimulationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("MemoryEntry", "MemoryMailboxStore", "MemoryPrekeyStore", "entry_id_of")


def entry_id_of(envelope: bytes) -> bytes:
    """The entry id of ``envelope``: BLAKE2b-256, personalised ``dchat-envelope``."""
    return hashlib.blake2b(envelope, digest_size=32, person=b"dchat-envelope").digest()


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One stored envelope."""

    entry_id: bytes
    mailbox: bytes
    envelope: bytes
    received_at: float
    seq: int


class MemoryMailboxStore:
    """Mailboxes in a dict; a :class:`dchat_network.MailboxStore`."""

    def __init__(self) -> None:
        self._boxes: dict[bytes, dict[bytes, MemoryEntry]] = {}
        self._seq = itertools.count()

    def put(self, mailbox: bytes, envelope: bytes, received_at: float) -> tuple[bytes, bool]:
        """Store ``envelope`` in ``mailbox``; ``(entry_id, created)``."""
        entry_id = entry_id_of(envelope)
        box = self._boxes.setdefault(bytes(mailbox), {})
        if entry_id in box:
            return entry_id, False
        box[entry_id] = MemoryEntry(
            entry_id, bytes(mailbox), bytes(envelope), received_at, next(self._seq)
        )
        return entry_id, True

    def fetch(self, mailbox: bytes, limit: int = 100) -> list[MemoryEntry]:
        """Up to ``limit`` entries, oldest first; they stay stored.

        Raises:
            SimulationError: ``limit`` is below 1.
        """
        if limit < 1:
            raise SimulationError("limit must be at least 1")
        entries = sorted(
            self._boxes.get(bytes(mailbox), {}).values(), key=lambda e: (e.received_at, e.seq)
        )
        return entries[:limit]

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int:
        """Delete these entries of ``mailbox``; returns how many existed."""
        box = self._boxes.get(bytes(mailbox), {})
        deleted = 0
        for entry_id in dict.fromkeys(bytes(i) for i in entry_ids):
            if box.pop(entry_id, None) is not None:
                deleted += 1
        return deleted

    def entries(self) -> list[MemoryEntry]:
        """Every stored entry of every mailbox, in the order they were stored."""
        every = (entry for box in self._boxes.values() for entry in box.values())
        return sorted(every, key=lambda entry: entry.seq)

    def total_bytes(self, mailbox: bytes) -> int:
        """Summed envelope size of ``mailbox``."""
        return sum(len(e.envelope) for e in self._boxes.get(bytes(mailbox), {}).values())

    def count(self, mailbox: bytes | None = None) -> int:
        """Entries in ``mailbox``, or in all mailboxes."""
        if mailbox is not None:
            return len(self._boxes.get(bytes(mailbox), {}))
        return sum(len(box) for box in self._boxes.values())

    def envelopes(self) -> list[bytes]:
        """Every stored envelope, in storage order (for scans by tests)."""
        return [e.envelope for box in self._boxes.values() for e in box.values()]


class MemoryPrekeyStore:
    """Prekey bundles in dicts; a :class:`dchat_network.PrekeyStore`."""

    def __init__(self) -> None:
        self._last: dict[bytes, bytes] = {}
        self._one_time: dict[bytes, dict[int, bytes]] = {}
        self._lock = threading.Lock()

    def put_prekeys(
        self,
        mailbox: bytes,
        last: bytes,
        one_time: Sequence[tuple[int, bytes]],
        replace: bool,
        now: float,
    ) -> int:
        """Store ``last`` and the one-time bundles; how many one-time bundles are held."""
        with self._lock:
            held = self._one_time.setdefault(bytes(mailbox), {})
            if replace:
                held.clear()
            for prekey_id, bundle in one_time:
                held.setdefault(prekey_id, bytes(bundle))
            self._last[bytes(mailbox)] = bytes(last)
            return len(held)

    def take_prekey(self, mailbox: bytes) -> bytes | None:
        """Remove and return the lowest one-time bundle, else the last-resort one."""
        with self._lock:
            held = self._one_time.get(bytes(mailbox))
            if held:
                return held.pop(min(held))
            return self._last.get(bytes(mailbox))

    def count_prekeys(self, mailbox: bytes) -> int:
        """One-time bundles held for ``mailbox``."""
        with self._lock:
            return len(self._one_time.get(bytes(mailbox), {}))

    def contents(self) -> tuple[dict[bytes, bytes], dict[bytes, dict[int, bytes]]]:
        """A copy of everything held: last-resort bundles, and one-time bundles by id.

        Both per mailbox (a mailbox that was ever written has a one-time map,
        possibly empty). For tests that check a refused request changed nothing.
        """
        with self._lock:
            return dict(self._last), {box: dict(held) for box, held in self._one_time.items()}
