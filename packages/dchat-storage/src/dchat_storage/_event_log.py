"""The event log's repository: appending events and reading them after a cursor.

How the log works (cursors, kinds, retention) is told in ``_events.py``;
this module is its public face, :attr:`Database.events`. Reading is paged:
a client that follows the log asks for the next ``limit`` events after the
last cursor it holds, so memory stays bounded however far behind it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._access import check_limit
from ._errors import InvalidArgumentError
from ._events import EVENTS, MESSAGE_EVENT, append_event, check_cursor, head_cursor
from ._messages import MESSAGE_NAMES, message_record
from ._prepared import Prepared
from ._records import EventRecord

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Mapping

    from ._access import Access
    from ._event_tail import EventTail

__all__ = ("MAX_EVENT_PAGE", "EventLog", "EventRecord")

MAX_EVENT_PAGE: Final = 1000

# A page of events joined with their messages; a client following events reads one
# per wake-up, so it runs about once per message.
_PAGE_NAMES = ("cursor", "kind", "event_payload", "event_at", *MESSAGE_NAMES)
_PAGE = Prepared(
    "SELECT e.seq, e.kind, e.payload, e.created_at, m.seq, m.message_ix, m.direction,"
    " m.payload, m.sent_at, m.stored_at, m.read_at, m.expires_at, m.conv_order"
    " FROM events AS e LEFT OUTER JOIN messages AS m ON m.seq = e.message_seq"
    " WHERE e.seq > :after ORDER BY e.seq LIMIT :limit"
)
"""The most events one :meth:`EventLog.page` returns."""


class EventLog:
    """The event log. Obtain it as :attr:`Database.events`."""

    def __init__(self, access: Access, tail: EventTail) -> None:
        self._access = access
        self._tail = tail

    def append(self, kind: str, data: Mapping[str, Any], now: float) -> int:
        """Append an event (joining this thread's transaction, if any); returns its cursor.

        Args:
            kind: A lowercase name of at most 32 characters (``[a-z][a-z0-9_]*``).
            data: A map of JSON-able values (sealed at rest).
            now: The current time.

        Raises:
            InvalidArgumentError: ``kind`` is not a valid kind, or it is ``message``
                (message events are appended by :meth:`MessageRepo.add` only).
            EncodingError: ``data`` holds a value that cannot be encoded.
        """
        if kind == MESSAGE_EVENT:
            raise InvalidArgumentError("message events come with their message")
        with self._access.write("append event") as conn:
            cursor = append_event(conn, self._access.sealer, kind, data, now)
            self._tail.appended(EventRecord(cursor, kind, now, dict(data)))
            return cursor

    def append_after(
        self, change: Callable[[], object], kind: str, data: Mapping[str, Any], now: float
    ) -> bool:
        """Call ``change()`` and, unless it returns False, append an event: one commit.

        For a change made elsewhere (a policy that keeps its state through this
        database) whose event must exist exactly when the change does. An
        exception from ``change`` rolls both back.

        Returns:
            Whether the event was appended.

        Raises:
            InvalidArgumentError: As :meth:`append`.
        """
        with self._access.write("change and append event"):
            if change() is False:
                return False
            self.append(kind, data, now)
            return True

    def page(self, after: int, limit: int = 100) -> builtins.list[EventRecord]:
        """The first ``limit`` events after the cursor ``after``, oldest first.

        Args:
            after: The last cursor the client holds (0: from the start).
            limit: At most this many (1 to :data:`MAX_EVENT_PAGE`).

        Raises:
            InvalidArgumentError: ``limit`` is out of range, or ``after`` is negative.
            CursorExpiredError: Events after ``after`` were pruned by retention.
        """
        check_limit(limit)
        if limit > MAX_EVENT_PAGE:
            raise InvalidArgumentError(f"limit must be at most {MAX_EVENT_PAGE}, got {limit}")
        with self._access.read("read events") as conn:
            check_cursor(conn, after)
            rows = _PAGE.run(conn, {"after": after, "limit": limit}).fetchall()
        return [self._record(dict(zip(_PAGE_NAMES, row, strict=True))) for row in rows]

    def recent(self, after: int, limit: int = 100) -> builtins.list[EventRecord] | None:
        """As :meth:`page`, from memory, without a read: None when memory cannot tell.

        The newest committed events are kept in memory (``_event_tail.py``
        tells how, and why nothing is missed); a follower that is caught up
        gets the events after its cursor from there. None means: read
        :meth:`page`. The check of the cursor against retention is the
        page's; pruning empties the memory, so a cursor answered here is
        never behind the retained window.
        """
        return self._tail.after(after, limit)

    def head(self) -> int:
        """The cursor of the newest event: following from it gives only new events."""
        with self._access.read("event log head") as conn:
            return head_cursor(conn)

    def _record(self, row: Mapping[Any, Any]) -> EventRecord:
        sealer = self._access.sealer
        data = EVENTS.fields(sealer, {"kind": row["kind"], "payload": row["event_payload"]})
        message = None if row["seq"] is None else message_record(sealer, row)
        return EventRecord(row["cursor"], row["kind"], row["event_at"], data, message)
