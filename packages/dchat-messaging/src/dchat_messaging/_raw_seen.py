"""Raw mailboxes over several home relays: each envelope handled once.

Theory of operation
-------------------
A raw envelope (a pairing item, a device-sync item) is queued once per home
relay of the recipient, like a message (:meth:`Outbox.enqueue_sealed` with
several relays), and the recipient drains the raw mailbox at each of its home
relays, so the same bytes usually arrive twice. :class:`RawSeen` lets the first
copy through to the mailbox's handler and counts the others as duplicates
(acknowledged to their relay, never handled), so a dead relay loses nothing
and a live one adds nothing.

Order of steps for one envelope: its digest (:func:`envelope_digest`) is
marked *in flight* in memory, then looked up among the digests stored
(:class:`SeenEnvelopes` under ``raw.seen``, the same bounded buckets as a
device's messages); a new one goes to the handler, and only once the handler
returned (the item durably processed) is the digest stored. A copy pushed by
another relay while the first is in the handler is a duplicate at once. A
crash between the handler and the store at worst handles one copy again
after the restart, which is what a single relay's re-push did before: the
handlers take a repeated item as a no-op or a typed refusal. A handler that
raises leaves the digest unstored, so the relay's re-push is handled again.

Store steps run through :attr:`RawSeen.worker` (the shell's database worker;
inline by default, for tests and simulations).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from ._seen import SeenEnvelopes, envelope_digest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._store import StateStore

__all__ = ("RAW_SEEN_KEY", "RawSeen", "Worker")

RAW_SEEN_KEY: Final = "raw.seen"
"""The state key prefix of the raw envelopes' digests."""
_T = TypeVar("_T")


class Worker(Protocol):
    """Runs a synchronous store step (in a shell: its database worker) and returns its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


async def _inline(fn: Callable[[], _T]) -> _T:
    return fn()


class RawSeen:
    """The raw envelopes handled lately, across every raw mailbox of a node.

    Args:
        store: Where the digests live.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._seen = SeenEnvelopes(store, RAW_SEEN_KEY)
        self._in_flight: set[bytes] = set()
        self.worker: Worker = _inline
        self.duplicates = 0
        """Copies recognised (the same envelope via another home relay, or a re-push)."""

    async def handle(self, envelope: bytes, handler: Callable[[bytes], Awaitable[None]]) -> bool:
        """Hand ``envelope`` to ``handler`` unless a copy was handled; True if it was new."""
        digest = envelope_digest(envelope)
        if digest in self._in_flight:
            self.duplicates += 1
            return False
        self._in_flight.add(digest)
        try:
            if await self.worker(functools.partial(self._seen.contains, digest)):
                self.duplicates += 1
                return False
            await handler(envelope)
            await self.worker(functools.partial(self._remember, digest))
            return True
        finally:
            self._in_flight.discard(digest)

    def _remember(self, digest: bytes) -> None:
        with self._store.transaction():
            self._seen.add(digest)
