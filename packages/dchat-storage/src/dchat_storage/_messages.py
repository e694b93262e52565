"""Repositories for the messaging engine: the message store and the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ._access import check_limit, insert_ignore
from ._errors import DuplicateError, InvalidArgumentError, NotFoundError
from ._records import MessageRecord, OutboxItem
from ._schema import Message, OutboxRow

if TYPE_CHECKING:
    import builtins

    from ._access import Access

__all__ = ("DIRECTIONS", "MessageRepo", "OutboxRepo")

DIRECTIONS = frozenset({"in", "out"})

_MESSAGE_COLUMNS = (
    Message.message_id,
    Message.direction,
    Message.peer_id,
    Message.body,
    Message.sent_at,
    Message.stored_at,
)
_OUTBOX_COLUMNS = (
    OutboxRow.message_id,
    OutboxRow.relay,
    OutboxRow.mailbox,
    OutboxRow.envelope,
    OutboxRow.attempts,
    OutboxRow.next_attempt_at,
)


class MessageRepo:
    """Messages delivered to and sent by the user. Obtain it as :attr:`Database.messages`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def add(
        self,
        message_id: bytes,
        direction: str,
        peer_id: str,
        body: str,
        sent_at: float,
        stored_at: float,
    ) -> bool:
        """Store a message unless one with the same id is already stored.

        This is what makes delivery to the application exactly-once: a
        redelivered envelope yields False and the caller does not show it again.

        Args:
            message_id: The message's unique id.
            direction: ``"in"`` or ``"out"``.
            peer_id: Identity id of the other party.
            body: Plaintext body.
            sent_at: The sender's timestamp.
            stored_at: The local time of storing.

        Returns:
            True if stored now; False (and nothing changed) if already stored.

        Raises:
            InvalidArgumentError: ``direction`` is neither ``"in"`` nor ``"out"``.
            StorageUnavailableError: The database cannot be written.
        """
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(f"direction must be 'in' or 'out', got {direction!r}")
        row = {
            "message_id": message_id,
            "direction": direction,
            "peer_id": peer_id,
            "body": body,
            "sent_at": sent_at,
            "stored_at": stored_at,
        }
        with self._access.write("add message") as conn:
            return insert_ignore(conn, Message, row)

    def list(self, peer_id: str | None = None, limit: int = 100) -> builtins.list[MessageRecord]:
        """Return the most recent messages, oldest first.

        Args:
            peer_id: Only messages exchanged with this identity; None for all.
            limit: How many of the most recently stored messages to return.

        Returns:
            Up to ``limit`` records ordered by ``stored_at`` (then storage order),
            ascending: the last ``limit`` rows of the conversation.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        query = select(*_MESSAGE_COLUMNS)
        if peer_id is not None:
            query = query.where(Message.peer_id == peer_id)
        # Newest first to let LIMIT pick the most recent, then reversed.
        query = query.order_by(Message.stored_at.desc(), Message.seq.desc()).limit(limit)
        with self._access.read("list messages") as conn:
            rows = conn.execute(query).all()
        return [MessageRecord(*row) for row in reversed(rows)]

    def get(self, message_id: bytes) -> MessageRecord | None:
        """Return the message with id ``message_id``, or None."""
        query = select(*_MESSAGE_COLUMNS).where(Message.message_id == message_id)
        with self._access.read("get message") as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else MessageRecord(*row)


class OutboxRepo:
    """Envelopes awaiting delivery, with retry times. Obtain it as :attr:`Database.outbox`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def enqueue(
        self, message_id: bytes, relay: str, mailbox: bytes, envelope: bytes, now: float
    ) -> None:
        """Queue an envelope for delivery, due immediately (at ``now``).

        Raises:
            DuplicateError: An item for ``message_id`` is already queued.
            StorageUnavailableError: The database cannot be written.
        """
        row = {
            "message_id": message_id,
            "relay": relay,
            "mailbox": mailbox,
            "envelope": envelope,
            "attempts": 0,
            "enqueued_at": now,
            "next_attempt_at": now,
        }
        with self._access.write("enqueue") as conn:
            try:
                conn.execute(insert(OutboxRow).values(row))
            except IntegrityError as exc:
                raise DuplicateError(f"message {message_id.hex()} is already queued") from exc

    def due(self, now: float, limit: int = 50) -> builtins.list[OutboxItem]:
        """Return items whose ``next_attempt_at <= now``, earliest due first.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        query = (
            select(*_OUTBOX_COLUMNS)
            .where(OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.seq)
            .limit(limit)
        )
        with self._access.read("list due outbox items") as conn:
            rows = conn.execute(query).all()
        return [OutboxItem(*row) for row in rows]

    def mark_sent(self, message_id: bytes) -> None:
        """Remove a delivered item.

        Raises:
            NotFoundError: No item for ``message_id`` is queued.
        """
        statement = delete(OutboxRow).where(OutboxRow.message_id == message_id)
        with self._access.write("mark sent") as conn:
            if conn.execute(statement).rowcount == 0:
                raise NotFoundError(f"message {message_id.hex()} is not queued")

    def mark_failed(self, message_id: bytes, next_attempt_at: float) -> None:
        """Record a failed attempt and when to try again; ``attempts`` grows by one.

        Raises:
            NotFoundError: No item for ``message_id`` is queued.
        """
        statement = (
            update(OutboxRow)
            .where(OutboxRow.message_id == message_id)
            .values(attempts=OutboxRow.attempts + 1, next_attempt_at=next_attempt_at)
        )
        with self._access.write("mark failed") as conn:
            if conn.execute(statement).rowcount == 0:
                raise NotFoundError(f"message {message_id.hex()} is not queued")

    def count(self) -> int:
        """Return the number of queued items."""
        with self._access.read("count outbox") as conn:
            return conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
