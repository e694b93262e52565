"""Test helpers for code that drives :class:`dchat_messaging.MessagingEngine`.

:class:`MemoryMessageStore` keeps the :class:`~dchat_messaging.MessageStore`
contract (and the contact book's, ``dchat_messaging.lowlevel.UserStore``) in
memory, transactions included (a block that raises leaves everything as it
was), so unit tests and the simulator run the real engine without a database.
"Durable" means: the object outlives the engine using it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._store import StateValue

__all__ = ("MemoryContact", "MemoryMessageStore", "MemoryOutboxEntry", "StoredMessage")


@dataclass(frozen=True, slots=True)
class MemoryOutboxEntry:
    """One queued envelope."""

    message_id: bytes
    relay: str
    mailbox: bytes
    envelope: bytes
    attempts: int = 0
    due: float = 0.0
    seq: int = 0
    queued_at: float = 0.0

    @property
    def next_attempt_at(self) -> float:
        """When the entry is due (the outbox protocol's name)."""
        return self.due


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message."""

    message_id: bytes
    direction: str
    peer: str
    text: str
    sent_at: float
    stored_at: float
    seq: int = 0
    order: int | None = None
    read_at: float | None = None
    expires_at: float | None = None

    @property
    def peer_id(self) -> str:
        """The peer's identity id (as the contact book reads it)."""
        return self.peer

    @property
    def body(self) -> str:
        """The text (as the contact book reads it)."""
        return self.text

    @property
    def cursor(self) -> int:
        """Its place in storage order (as the contact book pages by)."""
        return self.seq


@dataclass(frozen=True, slots=True)
class MemoryContact:
    """One stored contact."""

    name: str
    identity_id: str
    card: bytes
    added_at: float


class MemoryMessageStore:
    """An in-memory, transactional :class:`~dchat_messaging.MessageStore`."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}
        self.later: dict[str, StateValue] = {}
        """Values set by ``put_state_later`` in the open transaction, encoded at its commit."""
        self.messages: dict[bytes, StoredMessage] = {}
        self.outbox: dict[bytes, MemoryOutboxEntry] = {}
        self.contacts: dict[str, MemoryContact] = {}  # by identity id
        self.events: list[tuple[str, dict[str, object], float]] = []
        self.timers: dict[str, float] = {}  # disappearing timers by peer
        self.indexed: dict[bytes, str] = {}
        """Texts the search index holds instead of a message's own (edits)."""
        self._seq = 0
        self.commits = 0
        self._depth = 0
        self._undos: list[list[Callable[[], object]]] = []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        saved = (
            dict(self.state),
            dict(self.messages),
            dict(self.outbox),
            dict(self.contacts),
            self._seq,
            list(self.events),
            dict(self.timers),
            dict(self.indexed),
            dict(self.later),
        )
        self._depth += 1
        self._undos.append([])
        try:
            yield
        except BaseException:
            (
                self.state,
                self.messages,
                self.outbox,
                self.contacts,
                self._seq,
                self.events,
                self.timers,
                self.indexed,
                self.later,
            ) = saved
            for undo in reversed(self._undos[-1]):
                undo()
            raise
        finally:
            self._depth -= 1
            undos = self._undos.pop()
        if self._depth == 0:
            self.state.update((k, v.to_bytes()) for k, v in self.later.items())
            self.later.clear()
            self.commits += 1
        else:  # undone too if the enclosing transaction rolls back
            self._undos[-1] += undos

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Call ``undo`` if the innermost open transaction rolls back (outside one: dropped)."""
        if self._undos:
            self._undos[-1].append(undo)

    def get_state(self, key: str) -> bytes | None:
        held = self.later.get(key)
        return self.state.get(key) if held is None else held.to_bytes()

    def put_state(self, key: str, value: bytes) -> None:
        self.later.pop(key, None)
        self.state[key] = bytes(value)

    def put_state_later(self, key: str, value: StateValue) -> None:
        if self._depth:
            self.later[key] = value  # encoded when the outermost transaction commits
        else:
            self.state[key] = value.to_bytes()

    def delete_state(self, key: str) -> None:
        self.later.pop(key, None)
        self.state.pop(key, None)

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
        if message_id in self.messages:
            return False
        self._seq += 1
        timer = self.timers.get(peer) if direction == "out" else None
        expires = None if timer is None else stored_at + max(timer, 86400.0)
        self.messages[message_id] = StoredMessage(
            message_id, direction, peer, text, sent_at, stored_at, self._seq, order, None, expires
        )
        return True

    def enqueue(
        self, outbox_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None:
        if outbox_id in self.outbox:
            raise KeyError("already queued")
        self._seq += 1
        self.outbox[outbox_id] = MemoryOutboxEntry(
            outbox_id, relay, mailbox, envelope, 0, now, self._seq, now
        )

    def due(self, now: float, limit: int) -> list[MemoryOutboxEntry]:
        ready = [e for e in self.outbox.values() if e.due <= now]
        ready.sort(key=lambda e: (e.due, e.seq))
        return ready[:limit]

    def oldest_queued(self) -> float | None:
        return min((e.queued_at for e in self.outbox.values()), default=None)

    def queued(self, limit: int, offset: int = 0) -> list[MemoryOutboxEntry]:
        return sorted(self.outbox.values(), key=lambda e: e.seq)[offset : offset + limit]

    def mark_sent(self, outbox_id: bytes) -> None:
        self.outbox.pop(outbox_id, None)

    def mark_failed(self, outbox_id: bytes, next_attempt_at: float) -> None:
        entry = self.outbox.get(outbox_id)
        if entry is not None:
            self.outbox[outbox_id] = replace(
                entry, attempts=entry.attempts + 1, due=next_attempt_at
            )

    def add_contact(
        self, name: str, identity_id: str, card: bytes, added_at: float
    ) -> MemoryContact:
        if identity_id in self.contacts or self.contact_named(name) is not None:
            raise KeyError(f"a contact named {name!r} or with identity {identity_id!r} exists")
        self.contacts[identity_id] = MemoryContact(name, identity_id, bytes(card), added_at)
        return self.contacts[identity_id]

    def contact_named(self, name: str) -> MemoryContact | None:
        return next((c for c in self.contacts.values() if c.name == name), None)

    def contact_of(self, identity_id: str) -> MemoryContact | None:
        return self.contacts.get(identity_id)

    def list_contacts(self) -> list[MemoryContact]:
        return sorted(self.contacts.values(), key=lambda c: c.name)

    def replace_contact(self, identity_id: str, new_id: str, card: bytes) -> MemoryContact | None:
        old = self.contacts.get(identity_id)
        if old is None:
            return None
        if new_id != identity_id and new_id in self.contacts:
            raise KeyError(f"a contact with identity {new_id!r} exists")
        del self.contacts[identity_id]
        self.contacts[new_id] = replace(old, identity_id=new_id, card=bytes(card))
        return self.contacts[new_id]

    def list_messages(
        self, peer: str | None, limit: int, *, after: int | None = None, before: int | None = None
    ) -> list[StoredMessage]:
        kept = [m for m in self.messages.values() if peer is None or m.peer == peer]
        kept = [m for m in kept if after is None or m.seq > after]
        kept = [m for m in kept if before is None or m.seq < before]
        if limit <= 0:
            return []
        if after is not None and before is None:
            page = sorted(kept, key=lambda m: m.seq)[:limit]
        else:
            kept.sort(key=lambda m: (m.seq,) if before is not None else (m.stored_at, m.seq))
            page = kept[-limit:]
        if peer is not None:  # a conversation is shown by each message's place in it
            page.sort(key=lambda m: m.order or 0)  # stable: ties keep the page's order
        return page

    def delete_message(self, message_id: bytes) -> bool:
        self.indexed.pop(message_id, None)
        return self.messages.pop(message_id, None) is not None

    def get_message(self, message_id: bytes) -> StoredMessage | None:
        return self.messages.get(message_id)

    def message_direction(self, message_id: bytes, peer: str) -> str | None:
        found = self.messages.get(message_id)
        return None if found is None or found.peer != peer else found.direction

    def search_candidates(
        self, query: str, peer: str | None, limit: int, *, before: int | None = None
    ) -> list[StoredMessage]:
        from dchat_storage.lowlevel import query_terms, search_terms

        terms = set(query_terms(query))
        found = [
            m
            for m in self.messages.values()
            if (peer is None or m.peer == peer)
            and (before is None or m.seq < before)
            and terms <= set(search_terms(self.indexed.get(m.message_id, m.text)))
        ]
        return sorted(found, key=lambda m: m.seq, reverse=True)[:limit]

    def search_ready(self) -> bool:
        return True

    def rebuild_search(self, text_of: Callable[[StoredMessage], str]) -> int:
        self.indexed = {mid: text_of(m) for mid, m in self.messages.items()}
        return len(self.indexed)

    def reindex_message(self, message_id: bytes, text: str) -> bool:
        if message_id not in self.messages:
            return False
        self.indexed[message_id] = text
        return True

    def mark_read(self, message_id: bytes, read_at: float) -> bool:
        found = self.messages.get(message_id)
        if found is None:
            raise KeyError(f"message {message_id.hex()} is not stored")
        if found.read_at is not None:
            return False
        timer = self.timers.get(found.peer)
        expires = None if timer is None else read_at + timer
        self.messages[message_id] = replace(found, read_at=read_at, expires_at=expires)
        return True

    def expired_messages(self, now: float, limit: int) -> list[StoredMessage]:
        due = [m for m in self.messages.values() if (m.expires_at or now + 1) <= now]
        return sorted(due, key=lambda m: (m.expires_at or 0.0, m.seq))[:limit]

    def start_timer(self, message_id: bytes, at: float) -> bool:
        found = self.messages.get(message_id)
        timer = None if found is None else self.timers.get(found.peer)
        if found is None or timer is None or (found.expires_at or at + timer + 1) <= at + timer:
            return False
        self.messages[message_id] = replace(found, expires_at=at + timer)
        return True

    def set_timer(self, peer: str, seconds: float | None, now: float) -> None:
        if seconds is None:
            self.timers.pop(peer, None)
        else:
            self.timers[peer] = seconds

    def timer_of(self, peer: str) -> float | None:
        return self.timers.get(peer)

    def remove_contact(self, identity_id: str) -> bool:
        return self.contacts.pop(identity_id, None) is not None

    def log_event(self, kind: str, data: dict[str, object], now: float) -> None:
        self.events.append((kind, data, now))
