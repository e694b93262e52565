"""The narrow storage interface the messaging engine needs.

dchat-storage implements it over the node database
(:class:`dchat_storage.EngineStore`); the simulator and the tests use an
in-memory one (``dchat_messaging.testing.MemoryMessageStore``). Every call is
synchronous. :meth:`MessageStore.transaction` groups calls into one atomic,
durable commit: the engine wraps each send and each received envelope in one,
so a message, its outbox entries and the session state that produced or
consumed them are committed together or not at all.

The engine assumes it is the only writer of its state keys, and keeps what it
read and wrote decoded in memory (write-through: every change is stored in the
same transaction, and :meth:`StateStore.on_rollback` drops what a failed one
left in memory). Session records, replaced on every message, are handed over
as objects (:meth:`MessageStore.put_state_later`) and encoded once, at the
commit; the engine puts a record back as it was if a level that stepped its
ratchet rolls back, so what is encoded is always the state of the calls that
committed.

Values stored with :meth:`MessageStore.put_state` hold secrets (session and
prekey state, queued plaintexts): an implementation must keep them encrypted
at rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

__all__ = ("MessageStore", "OutboxEntry", "StateStore", "StateValue")


class StateValue(Protocol):
    """A state value kept as an object until it is written."""

    def to_bytes(self) -> bytes: ...


class OutboxEntry(Protocol):
    """One queued envelope as :meth:`MessageStore.due` returns it."""

    @property
    def message_id(self) -> bytes: ...

    @property
    def relay(self) -> str: ...

    @property
    def mailbox(self) -> bytes: ...

    @property
    def envelope(self) -> bytes: ...

    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> float: ...

    @property
    def queued_at(self) -> float:
        """When it was queued (the ``now`` of its enqueue)."""
        ...


class StateStore(Protocol):
    """Durable key/value state with transactions: all the request policy needs."""

    def transaction(self) -> AbstractContextManager[object]:
        """Everything inside commits together when the block exits normally."""
        ...

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Call ``undo`` if the innermost open transaction is rolled back.

        The engine keeps decoded state beside the store (a cache); ``undo``
        forgets what a transaction put there, so the cache never holds what
        the store does not. Never called after a successful commit; outside a
        transaction, dropped.
        """
        ...

    def get_state(self, key: str) -> bytes | None: ...

    def put_state(self, key: str, value: bytes) -> None: ...

    def delete_state(self, key: str) -> None: ...


class MessageStore(StateStore, Protocol):
    """Durable state of one node's messaging: key/value state, messages, outbox."""

    def put_state_later(self, key: str, value: StateValue) -> None:
        """Set ``key`` to ``value.to_bytes()`` as it is when the transaction commits.

        Inside a transaction the value is encoded once however often it is set;
        the caller keeps ``value`` equal to what it means to store (and puts it
        back if a nested level that changed it rolls back). A read of ``key``
        sees ``value`` as it is now. Outside a transaction: written at once.
        """
        ...

    def add_message(
        self,
        message_id: bytes,
        direction: str,
        peer: str,
        text: str,
        sent_at: float,
        stored_at: float,
        *,
        order: int | None = None,
    ) -> bool:
        """Store a message unless its id is stored already; say whether it was new.

        ``order`` is its place in the conversation (the Lamport clock it
        carries); listings of a conversation sort by it.
        """
        ...

    def enqueue(
        self, outbox_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None: ...

    def due(self, now: float, limit: int) -> Sequence[OutboxEntry]: ...
    def oldest_queued(self) -> float | None:
        """When the oldest entry still queued was queued; None if there is none."""
        ...

    def queued(self, limit: int, offset: int = 0) -> Sequence[OutboxEntry]:
        """``limit`` queued entries, due or not, in the order they were queued.

        The oldest ``offset`` entries are skipped (the next page).
        """
        ...

    def mark_sent(self, outbox_id: bytes) -> None: ...

    def mark_failed(self, outbox_id: bytes, next_attempt_at: float) -> None: ...
