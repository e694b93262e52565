"""The envelopes a device received lately, so that a copy via another relay counts once.

Theory of operation
-------------------
With several home relays a sender deposits the same sealed envelope (the same
bytes) at each of them, and each relay pushes it. The first copy opens and
commits as usual; its digest is stored *in the same transaction*
(:meth:`SeenEnvelopes.add`), so after a crash either both the message and
the digest are there or neither is. A later copy is recognised by its digest
(:meth:`SeenEnvelopes.contains`) before any decryption and is a
:class:`~dchat_messaging.Duplicate`: counted, acknowledged to its relay like
any envelope, never shown and never an error (its message key is spent, so
the ratchet would only refuse it).

Storage: digests (16 bytes, BLAKE2b of the envelope) go to one of
:data:`BUCKETS` buckets by their first byte; a bucket is one state value
holding its newest :data:`PER_BUCKET` digests, oldest first, so one receive
rewrites one value of at most 2 KiB and about ``BUCKETS * PER_BUCKET``
(32,768) envelopes are remembered. A copy that arrives after that many later
envelopes (a relay down for a long time) falls back to the ratchet's refusal
of a spent message key: still shown once, counted as rejected. Buckets are
kept decoded in memory, write-through, dropped on rollback.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._store import StateStore

__all__ = ("BUCKETS", "PER_BUCKET", "SeenEnvelopes", "envelope_digest")

BUCKETS: Final = 256
PER_BUCKET: Final = 128
DIGEST: Final = 16


def envelope_digest(data: bytes) -> bytes:
    """The 16-byte digest an envelope is remembered by."""
    return hashlib.blake2b(data, digest_size=DIGEST, person=b"dchat-seen-env").digest()


class SeenEnvelopes:
    """A bounded, durable set of envelope digests (one device's).

    Args:
        store: Where the buckets live; call inside its transactions.
        key: Prefix of the buckets' state keys.
    """

    def __init__(self, store: StateStore, key: str) -> None:
        self._store = store
        self._key = key
        self._buckets: dict[int, list[bytes]] = {}

    def _bucket(self, number: int) -> list[bytes]:
        bucket = self._buckets.get(number)
        if bucket is None:
            raw = self._store.get_state(f"{self._key}.{number:02x}") or b""
            usable = len(raw) - len(raw) % DIGEST  # a damaged tail is forgotten, not fatal
            bucket = [raw[i : i + DIGEST] for i in range(0, usable, DIGEST)]
            self._buckets[number] = bucket
        return bucket

    def contains(self, digest: bytes) -> bool:
        """Whether an envelope with ``digest`` was received and committed."""
        return digest in self._bucket(digest[0])

    def add(self, digest: bytes) -> None:
        """Remember ``digest``; inside the transaction that commits its envelope."""
        number = digest[0]
        bucket = [*self._bucket(number), digest][-PER_BUCKET:]
        self._store.put_state(f"{self._key}.{number:02x}", b"".join(bucket))
        self._buckets[number] = bucket
        self._store.on_rollback(lambda: self._buckets.pop(number, None))
