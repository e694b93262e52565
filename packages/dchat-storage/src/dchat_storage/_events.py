"""The event log's rows: appending an event, the retention horizon, pruning.

Theory of operation: the ``events`` table is an append-only log of what
changed for the user (a message stored, a request opened, ...), in commit
order. Its ``seq`` is the *cursor* a client resumes from: an event is appended
in the same transaction as the change it reports, and writes are serialized
(one writer per database, see ``_access``), so sequence order is commit order
and a reader that has seen cursor ``c`` has seen every event ``<= c`` that
still exists. The numbers never go back (SQLite ``AUTOINCREMENT``, a
PostgreSQL sequence), so a cursor is never reused for a different event.

Kinds are open-ended short names (``message``, ``request``; receipts will
add theirs); each event's data is a small JSON-able map, sealed at rest like
every private field, with its kind bound into the associated data. A
``message`` event carries no copy of the message: it points at the message
row (``message_seq``), is read joined with it, and is deleted with it (ON
DELETE CASCADE), so a disappearing message leaves nothing behind in the log.

Retention prunes the log from the front: every event up to the newest one
older than the cutoff goes (a prefix of the log, never a hole in the middle),
and the *horizon*, the highest cursor pruned so far, is kept in
``storage_meta``. A cursor below the horizon may have missed pruned events;
reading after it raises :class:`CursorExpiredError`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import delete, func, insert, select

from ._errors import CursorExpiredError, InvalidArgumentError
from ._prepared import Prepared
from ._rowcodec import SealedTable
from ._schema import EventRow, Meta

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from ._sealing import Sealer

__all__ = (
    "EVENTS",
    "MESSAGE_EVENT",
    "append_event",
    "check_cursor",
    "check_kind",
    "head_cursor",
    "prune_events",
)

EVENTS = SealedTable(EventRow, key="seq", ad=("kind",))
MESSAGE_EVENT: Final = "message"
_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_HORIZON: Final = "events_pruned_through"
_APPEND = Prepared(  # prepared once: it runs for every message stored
    "INSERT INTO events (kind, message_seq, payload, created_at)"
    " VALUES (:kind, :message_seq, :payload, :created_at) RETURNING seq"
)

# Read with every page of events a client follows.
_HORIZON_GET = Prepared("SELECT value FROM storage_meta WHERE name = :name")


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a valid event kind (lowercase name, at most 32 characters).

    Raises:
        InvalidArgumentError: It is not.
    """
    if not isinstance(kind, str) or _KIND.fullmatch(kind) is None:
        raise InvalidArgumentError(f"not an event kind: {kind!r}")
    return kind


def append_event(
    conn: Connection,
    sealer: Sealer,
    kind: str,
    data: Mapping[str, Any],
    now: float,
    *,
    message_seq: int | None = None,
) -> int:
    """Append one event inside the caller's write transaction; returns its cursor."""
    row = EVENTS.row(sealer, data, {"kind": check_kind(kind), "created_at": now})
    row["message_seq"] = message_seq
    return int(_APPEND.one(conn, row)[0])


def horizon(conn: Connection) -> int:
    """The highest cursor retention has pruned (0: nothing pruned yet)."""
    found = _HORIZON_GET.one(conn, {"name": _HORIZON})
    return 0 if found is None else int.from_bytes(bytes(found[0]), "big")


def check_cursor(conn: Connection, after: int) -> None:
    """Refuse a cursor that is negative, or behind the retained window.

    Raises:
        InvalidArgumentError: ``after`` is negative.
        CursorExpiredError: Events after ``after`` were pruned.
    """
    if after < 0:
        raise InvalidArgumentError(f"a cursor is never negative, got {after}")
    pruned = horizon(conn)
    if after < pruned:
        raise CursorExpiredError(
            f"events up to {pruned} were pruned; cursor {after} is too old: re-list and "
            "follow from the current end"
        )


def head_cursor(conn: Connection) -> int:
    """The cursor of the newest event (or the horizon when none is left; 0 at first)."""
    newest = conn.execute(select(func.max(EventRow.seq))).scalar_one_or_none()
    return max(int(newest or 0), horizon(conn))


def prune_events(conn: Connection, cutoff: float) -> int:
    """Delete the prefix of the log up to its newest event created before ``cutoff``.

    Returns:
        How many events were deleted.
    """
    last = conn.execute(
        select(func.max(EventRow.seq)).where(EventRow.created_at < cutoff)
    ).scalar_one_or_none()
    if last is None:
        return 0
    deleted = conn.execute(delete(EventRow).where(EventRow.seq <= last)).rowcount
    if last > horizon(conn):
        conn.execute(delete(Meta).where(Meta.name == _HORIZON))
        conn.execute(insert(Meta).values(name=_HORIZON, value=int(last).to_bytes(8, "big")))
    return int(deleted)
