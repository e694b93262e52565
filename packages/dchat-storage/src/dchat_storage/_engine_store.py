"""The messaging engine's store over a node database.

:class:`EngineStore` implements ``dchat_messaging.lowlevel.UserStore`` (the
engine's ``MessageStore`` and the contact book's ``ContactStore``; structural
protocols, this package does not import dchat-messaging) with the
repositories of one :class:`Database`: state values live sealed in the
settings table, messages in the message store (and their words in its
search index), envelopes in the outbox, contacts in the address book, and
:meth:`EngineStore.transaction` makes the engine's several calls one commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from ._database import Database
    from ._records import ContactRecord, MessageRecord, OutboxItem
    from ._settings import Encodes

__all__ = ("EngineStore",)


class EngineStore:
    """A ``dchat_messaging.lowlevel.UserStore`` backed by ``db``.

    Args:
        db: The node's open database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._now = 0.0

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic, durable commit of every call inside (this thread's)."""
        return self._db.transaction()

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Call ``undo`` if the innermost open transaction level rolls back."""
        self._db.on_rollback(undo)

    def get_state(self, key: str) -> bytes | None:
        return self._db.settings.get(key)

    def put_state(self, key: str, value: bytes) -> None:
        self._db.settings.set(key, value, self._now)

    def put_state_later(self, key: str, value: Encodes) -> None:
        self._db.settings.set_later(key, value, self._now)

    def delete_state(self, key: str) -> None:
        self._db.settings.delete(key)

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
        self._now = stored_at
        return self._db.messages.add(
            message_id, direction, peer, text, sent_at, stored_at, order=order
        )

    def enqueue(
        self, outbox_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None:
        self._now = now
        self._db.outbox.enqueue(outbox_id, relay, mailbox, envelope, now)

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        return self._db.outbox.due(now, limit)

    def oldest_queued(self) -> float | None:
        return self._db.outbox.oldest()

    def queued(self, limit: int, offset: int = 0) -> list[OutboxItem]:
        return self._db.outbox.queued(limit, offset)

    def mark_sent(self, outbox_id: bytes) -> None:
        self._db.outbox.mark_sent(outbox_id)

    def mark_failed(self, outbox_id: bytes, next_attempt_at: float) -> None:
        self._db.outbox.mark_failed(outbox_id, next_attempt_at)

    def add_contact(
        self, name: str, identity_id: str, card: bytes, added_at: float
    ) -> ContactRecord:
        return self._db.contacts.add(name, identity_id, card, added_at)

    def contact_named(self, name: str) -> ContactRecord | None:
        return self._db.contacts.get_by_name(name)

    def contact_of(self, identity_id: str) -> ContactRecord | None:
        return self._db.contacts.get_by_identity(identity_id)

    def list_contacts(self) -> list[ContactRecord]:
        return self._db.contacts.list()

    def replace_contact(self, identity_id: str, new_id: str, card: bytes) -> ContactRecord | None:
        return self._db.contacts.replace(identity_id, new_id, card)

    def list_messages(
        self, peer: str | None, limit: int, *, after: int | None = None, before: int | None = None
    ) -> list[MessageRecord]:
        return self._db.messages.list(peer, limit, after=after, before=before)

    def delete_message(self, message_id: bytes) -> bool:
        return self._db.messages.delete(message_id)

    def get_message(self, message_id: bytes) -> MessageRecord | None:
        return self._db.messages.get(message_id)

    def message_direction(self, message_id: bytes, peer: str) -> str | None:
        return self._db.messages.direction(message_id, peer)

    def search_candidates(
        self, query: str, peer: str | None, limit: int, *, before: int | None = None
    ) -> list[MessageRecord]:
        return self._db.search.candidates(query, peer_id=peer, limit=limit, before=before)

    def search_ready(self) -> bool:
        return self._db.search.ready

    def rebuild_search(self, text_of: Callable[[MessageRecord], str]) -> int:
        return self._db.search.rebuild(text_of)

    def reindex_message(self, message_id: bytes, text: str) -> bool:
        return self._db.search.reindex(message_id, text)

    def mark_read(self, message_id: bytes, read_at: float) -> bool:
        return self._db.messages.mark_read(message_id, read_at)

    def expired_messages(self, now: float, limit: int) -> list[MessageRecord]:
        return self._db.messages.expired(now, limit)

    def start_timer(self, message_id: bytes, at: float) -> bool:
        return self._db.messages.start_timer(message_id, at)

    def set_timer(self, peer: str, seconds: float | None, now: float) -> None:
        self._db.conversations.set_timer(peer, seconds, now)

    def timer_of(self, peer: str) -> float | None:
        found = self._db.conversations.get(peer)
        return None if found is None else found.disappear_after

    def remove_contact(self, identity_id: str) -> bool:
        return self._db.contacts.remove(identity_id)

    def log_event(self, kind: str, data: dict[str, object], now: float) -> None:
        self._db.events.append(kind, data, now)
