"""Repositories for the messaging engine: the message store and the outbox.

Message ids, peers and conversations are matched through blind indexes; the
id, peer, conversation and body themselves are in the sealed payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update

from ._access import check_limit
from ._errors import DuplicateError, InvalidArgumentError, NotFoundError
from ._events import MESSAGE_EVENT, append_event
from ._prepared import Prepared, integrity_errors
from ._records import EventRecord, MessageRecord, OutboxItem
from ._rowcodec import SealedTable, index_value
from ._schema import Message, OutboxRow
from ._terms import index_message

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from ._access import Access
    from ._event_tail import EventTail
    from ._sealing import Sealer

__all__ = (
    "DIRECTIONS",
    "SENT_HOLD",
    "MESSAGES",
    "MESSAGE_COLUMNS",
    "MESSAGE_NAMES",
    "OUTBOX",
    "MessageRepo",
    "OutboxRepo",
    "message_record",
)

DIRECTIONS = frozenset({"in", "out"})
SENT_HOLD = 86400.0
"""How long a sent message in a conversation with a disappearing timer waits for the
peer's read receipt (which starts its count, :meth:`MessageRepo.start_timer`) before it
disappears anyway (or its timer, if longer): a peer that never reads, or sends no read
receipts, cannot keep our copy forever."""

MESSAGES = SealedTable(
    Message,
    key="seq",
    indexes={
        "message_ix": ("message-id", "message_id"),
        "peer_ix": ("identity-id", "peer_id"),
        "conv_ix": ("conversation", "conversation_id"),
    },
    ad=("message_ix",),
)
OUTBOX = SealedTable(
    OutboxRow, key="seq", indexes={"message_ix": ("message-id", "message_id")}, ad=("message_ix",)
)
MESSAGE_COLUMNS = (
    Message.seq,
    Message.message_ix,
    Message.direction,
    Message.payload,
    Message.sent_at,
    Message.stored_at,
    Message.read_at,
    Message.expires_at,
    Message.conv_order,
)
_OUTBOX_COLUMNS = (
    OutboxRow.message_ix,
    OutboxRow.payload,
    OutboxRow.attempts,
    OutboxRow.next_attempt_at,
    OutboxRow.enqueued_at,
)


# Prepared once: they run for every message stored or queued. ``ON CONFLICT DO
# NOTHING ... RETURNING`` (SQLite and PostgreSQL alike) inserts unless the id is
# stored, and says which in the same statement.
_ADD = Prepared(
    "INSERT INTO messages (message_ix, peer_ix, conv_ix, payload, direction, sent_at,"
    " stored_at, conv_order, expires_at) VALUES (:message_ix, :peer_ix, :conv_ix, :payload,"
    " :direction, :sent_at, :stored_at, :conv_order, :expires_at)"
    " ON CONFLICT DO NOTHING RETURNING seq"
)
_TIMER = Prepared("SELECT disappear_s FROM conversations WHERE conv_ix = :conv_ix")
# Run per id a read receipt names (and per message read or deleted).
_TIMES = Prepared(
    "SELECT conv_ix, read_at, expires_at FROM messages WHERE message_ix = :message_ix"
)
_SET_READ = Prepared(
    "UPDATE messages SET read_at = :read_at, expires_at = :expires_at"
    " WHERE message_ix = :message_ix"
)
_SET_EXPIRY = Prepared(
    "UPDATE messages SET expires_at = :expires_at WHERE message_ix = :message_ix"
)
_DELETE = Prepared("DELETE FROM messages WHERE message_ix = :message_ix")
_ENQUEUE = Prepared(
    "INSERT INTO outbox (message_ix, payload, attempts, enqueued_at, next_attempt_at)"
    " VALUES (:message_ix, :payload, :attempts, :enqueued_at, :next_attempt_at)"
)
_MARK_SENT = Prepared("DELETE FROM outbox WHERE message_ix = :message_ix")
# The same columns in the statements below, which run on every message (or outbox pass).
_OUTBOX_NAMES = ("message_ix", "payload", "attempts", "next_attempt_at", "enqueued_at")
_DUE = Prepared(
    "SELECT message_ix, payload, attempts, next_attempt_at, enqueued_at FROM outbox"
    " WHERE next_attempt_at <= :now ORDER BY next_attempt_at, seq LIMIT :limit"
)
_QUEUED = Prepared(
    "SELECT message_ix, payload, attempts, next_attempt_at, enqueued_at FROM outbox"
    " ORDER BY seq LIMIT :limit OFFSET :offset"
)
MESSAGE_NAMES = (
    "seq",
    "message_ix",
    "direction",
    "payload",
    "sent_at",
    "stored_at",
    "read_at",
    "expires_at",
    "conv_order",
)
_GET = Prepared(
    "SELECT seq, message_ix, direction, payload, sent_at, stored_at, read_at, expires_at,"
    " conv_order FROM messages WHERE message_ix = :message_ix"
)
# A receipt names ids: it needs only whether each is ours and to whom, not the text.
_DIRECTION = Prepared(
    "SELECT direction FROM messages WHERE message_ix = :message_ix AND peer_ix = :peer_ix"
)
assert tuple(c.key for c in _OUTBOX_COLUMNS) == _OUTBOX_NAMES
assert tuple(c.key for c in MESSAGE_COLUMNS) == MESSAGE_NAMES


def _timer(conn: Connection, conv_ix: bytes) -> float | None:
    """The conversation's disappearing-message timer, if it has one."""
    found = _TIMER.one(conn, {"conv_ix": conv_ix})
    return None if found is None or found[0] is None else float(found[0])


def message_record(sealer: Sealer, row: Mapping[Any, Any]) -> MessageRecord:
    """The record of a row selected with :data:`MESSAGE_COLUMNS`.

    Raises:
        StorageCorruptError: The payload does not authenticate or decode.
    """
    f = MESSAGES.fields(sealer, row)
    return MessageRecord(
        f["message_id"],
        row["direction"],
        f["peer_id"],
        f["body"],
        row["sent_at"],
        row["stored_at"],
        None if f.get("direct", True) else f["conversation_id"],
        row["read_at"],
        row["expires_at"],
        cursor=row["seq"],
    )


class MessageRepo:
    """Messages delivered to and sent by the user. Obtain it as :attr:`Database.messages`."""

    def __init__(self, access: Access, tail: EventTail) -> None:
        self._access = access
        self._tail = tail

    def add(
        self,
        message_id: bytes,
        direction: str,
        peer_id: str,
        body: str,
        sent_at: float,
        stored_at: float,
        *,
        conversation_id: str | None = None,
        order: int | None = None,
    ) -> bool:
        """Store a message unless one with the same id is already stored.

        This is what makes delivery to the application exactly-once: a
        redelivered envelope yields False and the caller does not show it again.
        A received message in a conversation with a disappearing timer starts
        its count when it is read (:meth:`mark_read`); a sent one when the
        peer's read receipt arrives (:meth:`start_timer`), and disappears
        :data:`SENT_HOLD` (or its timer, if longer) after sending if none does.

        A new message also appends a ``message`` event to the event log in the
        same transaction (here rather than in a caller, so no path that stores
        a message can forget it and no extra commit is paid for it).

        Args:
            message_id: The message's unique id.
            direction: ``"in"`` or ``"out"``.
            peer_id: Identity id of the other party.
            body: Plaintext body.
            sent_at: The sender's timestamp.
            stored_at: The local time of storing.
            conversation_id: The conversation; default: the direct one with ``peer_id``.
            order: Its place in the conversation (the Lamport clock it carries).

        Returns:
            True if stored now; False (and nothing changed) if already stored.

        Raises:
            InvalidArgumentError: ``direction`` is neither ``"in"`` nor ``"out"``.
            StorageUnavailableError: The database cannot be written.
        """
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(f"direction must be 'in' or 'out', got {direction!r}")
        fields = {
            "message_id": message_id,
            "peer_id": peer_id,
            "conversation_id": conversation_id or peer_id,
            "direct": conversation_id is None,
            "body": body,
        }
        clear = {
            "direction": direction,
            "sent_at": sent_at,
            "stored_at": stored_at,
            "conv_order": order,
        }
        row = MESSAGES.row(self._access.sealer, fields, clear)
        with self._access.write("add message", savepoint=False) as conn:
            timer = _timer(conn, row["conv_ix"]) if direction == "out" else None
            row["expires_at"] = None if timer is None else stored_at + max(timer, SENT_HOLD)
            added = _ADD.one(conn, row)
            if added is None:  # already stored
                return False
            seq = int(added[0])
            index_message(conn, self._access.sealer, seq, body)
            cursor = append_event(
                conn, self._access.sealer, MESSAGE_EVENT, {}, stored_at, message_seq=seq
            )
            record = MessageRecord(
                message_id, direction, peer_id, body, sent_at, stored_at, conversation_id,
                None, row["expires_at"], cursor=seq,
            )  # fmt: skip
            self._tail.appended(EventRecord(cursor, MESSAGE_EVENT, stored_at, {}, record))
            return True

    def mark_read(self, message_id: bytes, read_at: float) -> bool:
        """Record that the user read a message; starts its disappearing timer.

        Returns:
            True if it was unread until now; False if already read.

        Raises:
            NotFoundError: No message with that id is stored.
        """
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("mark read") as conn:
            found = _TIMES.one(conn, {"message_ix": ix})
            if found is None:
                raise NotFoundError(f"message {message_id.hex()} is not stored")
            conv_ix, read, _ = found
            if read is not None:
                return False
            self._tail.changing()
            timer = _timer(conn, bytes(conv_ix))
            expires = None if timer is None else read_at + timer
            _SET_READ.run(conn, {"message_ix": ix, "read_at": read_at, "expires_at": expires})
            return True

    def start_timer(self, message_id: bytes, at: float) -> bool:
        """Start a message's disappearing count at ``at`` (the peer read our message).

        It then expires at ``at`` plus its conversation's timer, unless it is
        due earlier already. Returns whether that changed anything (False: no
        such message, no timer, or an earlier deadline).
        """
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("start a timer") as conn:
            found = _TIMES.one(conn, {"message_ix": ix})
            timer = None if found is None else _timer(conn, bytes(found[0]))
            if found is None or timer is None:
                return False
            expires, due = at + timer, found[2]
            if due is not None and due <= expires:
                return False
            self._tail.changing()
            _SET_EXPIRY.run(conn, {"message_ix": ix, "expires_at": expires})
            return True

    def delete(self, message_id: bytes) -> bool:
        """Delete a message (and its attachment links); return whether it existed."""
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("delete message") as conn:
            self._tail.changing()
            return int(_DELETE.run(conn, {"message_ix": ix}).rowcount) > 0

    def list(
        self,
        peer_id: str | None = None,
        limit: int = 100,
        *,
        conversation_id: str | None = None,
        after: int | None = None,
        before: int | None = None,
    ) -> builtins.list[MessageRecord]:
        """Return up to ``limit`` messages, oldest first.

        Without a cursor: the last ``limit`` messages (by storage time). With
        ``after``: the first ``limit`` messages stored after the message whose
        :attr:`MessageRecord.cursor` it is; with ``before``: the last ``limit``
        stored before it (both may be given: a window). Cursors are storage
        order, so paging never skips or repeats a message, whatever the clocks did.
        With a peer or conversation, the page is shown in conversation order
        (each message's place, the Lamport clock it carried; messages stored
        before places were kept come first).

        Args:
            peer_id: Only messages with this peer (any conversation).
            limit: Maximum number of messages.
            conversation_id: Only messages of this conversation.
            after: Only messages with a cursor above this one.
            before: Only messages with a cursor below this one.

        Raises:
            InvalidArgumentError: ``limit`` is below 1, or a cursor is negative.
        """
        check_limit(limit)
        sealer = self._access.sealer
        query = select(*MESSAGE_COLUMNS)
        if peer_id is not None:
            query = query.where(Message.peer_ix == index_value(sealer, "identity-id", peer_id))
        if conversation_id is not None:
            conv_ix = index_value(sealer, "conversation", conversation_id)
            query = query.where(Message.conv_ix == conv_ix)
        for cursor in (after, before):
            if cursor is not None and cursor < 0:
                raise InvalidArgumentError(f"a cursor is never negative, got {cursor}")
        if after is not None:
            query = query.where(Message.seq > after)
        if before is not None:
            query = query.where(Message.seq < before)
        forward = after is not None and before is None
        if forward:  # the oldest after the cursor, already in order
            query = query.order_by(Message.seq)
        elif before is not None:  # the newest before the cursor, reversed below
            query = query.order_by(Message.seq.desc())
        else:  # the newest by storage time, reversed below
            query = query.order_by(Message.stored_at.desc(), Message.seq.desc())
        with self._access.read("list messages") as conn:
            rows = conn.execute(query.limit(limit)).all()
        ordered = list(rows if forward else reversed(rows))
        if peer_id is not None or conversation_id is not None:  # shown by place in the conversation
            ordered.sort(key=lambda row: row.conv_order or 0)  # stable: ties keep the page's order
        return [message_record(sealer, row._mapping) for row in ordered]

    def get(self, message_id: bytes) -> MessageRecord | None:
        """Return the message with id ``message_id``, or None."""
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.read("get message") as conn:
            row = _GET.one(conn, {"message_ix": ix})
        if row is None:
            return None
        return message_record(self._access.sealer, dict(zip(MESSAGE_NAMES, row, strict=True)))

    def direction(self, message_id: bytes, peer_id: str) -> str | None:
        """``"in"`` or ``"out"`` if a message with this id and peer is stored, else None.

        Matched by the blind indexes alone: no payload is read or unsealed (a
        receipt names many ids and needs nothing else of them).
        """
        sealer = self._access.sealer
        params = {
            "message_ix": index_value(sealer, "message-id", message_id),
            "peer_ix": index_value(sealer, "identity-id", peer_id),
        }
        with self._access.read("message direction") as conn:
            row = _DIRECTION.one(conn, params)
        return None if row is None else str(row[0])

    def expired(self, now: float, limit: int = 500) -> builtins.list[MessageRecord]:
        """Up to ``limit`` messages whose disappearing timer ran out by ``now``, soonest first.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        due = and_(Message.expires_at.is_not(None), Message.expires_at <= now)
        query = select(*MESSAGE_COLUMNS).where(due).order_by(Message.expires_at).limit(limit)
        with self._access.read("expired messages") as conn:
            rows = conn.execute(query).all()
        return [message_record(self._access.sealer, row._mapping) for row in rows]

    def count(self) -> int:
        """Return the number of stored messages."""
        with self._access.read("count messages") as conn:
            return conn.execute(select(func.count()).select_from(Message)).scalar_one()


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
        fields = {
            "message_id": message_id,
            "relay": relay,
            "mailbox": mailbox,
            "envelope": envelope,
        }
        clear = {"attempts": 0, "enqueued_at": now, "next_attempt_at": now}
        row = OUTBOX.row(self._access.sealer, fields, clear)
        with self._access.write("enqueue", savepoint=False) as conn:
            try:
                _ENQUEUE.run(conn, row)
            except integrity_errors() as exc:
                raise DuplicateError(f"message {message_id.hex()} is already queued") from exc

    def due(self, now: float, limit: int = 50) -> builtins.list[OutboxItem]:
        """Return items whose ``next_attempt_at <= now``, earliest due first.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        with self._access.read("list due outbox items") as conn:
            rows = _DUE.run(conn, {"now": now, "limit": limit}).fetchall()
        return [self._item(dict(zip(_OUTBOX_NAMES, row, strict=True))) for row in rows]

    def oldest(self) -> float | None:
        """When the oldest queued item was queued (seconds since the epoch); None if none."""
        with self._access.read("oldest outbox item") as conn:
            value = conn.execute(select(func.min(OutboxRow.enqueued_at))).scalar_one()
        return None if value is None else float(value)

    def queued(self, limit: int = 50, offset: int = 0) -> builtins.list[OutboxItem]:
        """Return ``limit`` items, due or not, in the order they were queued.

        The oldest ``offset`` are skipped (a page further down the queue).

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        with self._access.read("list queued outbox items") as conn:
            rows = _QUEUED.run(conn, {"offset": max(0, offset), "limit": limit}).fetchall()
        return [self._item(dict(zip(_OUTBOX_NAMES, row, strict=True))) for row in rows]

    def mark_sent(self, message_id: bytes) -> None:
        """Remove a delivered item.

        Raises:
            NotFoundError: No item for ``message_id`` is queued.
        """
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("mark sent", savepoint=False) as conn:
            if _MARK_SENT.run(conn, {"message_ix": ix}).rowcount == 0:
                raise NotFoundError(f"message {message_id.hex()} is not queued")

    def mark_failed(self, message_id: bytes, next_attempt_at: float) -> None:
        """Record a failed attempt and when to try again; ``attempts`` grows by one.

        Raises:
            NotFoundError: No item for ``message_id`` is queued.
        """
        ix = index_value(self._access.sealer, "message-id", message_id)
        statement = (
            update(OutboxRow)
            .where(OutboxRow.message_ix == ix)
            .values(attempts=OutboxRow.attempts + 1, next_attempt_at=next_attempt_at)
        )
        with self._access.write("mark failed") as conn:
            if conn.execute(statement).rowcount == 0:
                raise NotFoundError(f"message {message_id.hex()} is not queued")

    def count(self) -> int:
        """Return the number of queued items."""
        with self._access.read("count outbox") as conn:
            return conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()

    def _item(self, row: Mapping[Any, Any]) -> OutboxItem:
        f = OUTBOX.fields(self._access.sealer, row)
        return OutboxItem(
            f["message_id"],
            f["relay"],
            f["mailbox"],
            f["envelope"],
            row["attempts"],
            row["next_attempt_at"],
            row["enqueued_at"],
        )
