"""The relay's mailbox store: sealed envelopes held for offline recipients."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ._access import check_limit
from ._prepared import Prepared
from ._records import MailboxEntry
from ._schema import MailboxRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._access import Access

__all__ = ("ENTRY_ID_PERSON", "MailboxRepo", "entry_id_of")

ENTRY_ID_PERSON = b"dchat-envelope"

# Ids per DELETE, well under SQLite's bound-parameter limit.
_CHUNK = 500

# Prepared once (it runs for every envelope): stores unless the mailbox holds it.
_PUT = Prepared(
    "INSERT INTO mailbox_entries (mailbox, entry_id, envelope, size, received_at)"
    " VALUES (:mailbox, :entry_id, :envelope, :size, :received_at)"
    " ON CONFLICT DO NOTHING RETURNING seq"
)
_TOTAL = Prepared("SELECT coalesce(sum(size), 0) FROM mailbox_entries WHERE mailbox = :mailbox")
_ENTRY_COLUMNS = (
    MailboxRow.entry_id,
    MailboxRow.mailbox,
    MailboxRow.envelope,
    MailboxRow.received_at,
)


def entry_id_of(envelope: bytes) -> bytes:
    """Return an envelope's entry id: its 32-byte BLAKE2b-256, personalized."""
    return hashlib.blake2b(envelope, digest_size=32, person=ENTRY_ID_PERSON).digest()


class MailboxRepo:
    """Envelopes stored by the relay role. Obtain it as :attr:`Database.mailboxes`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def put(self, mailbox: bytes, envelope: bytes, received_at: float) -> tuple[bytes, bool]:
        """Store an envelope in a mailbox; idempotent per (mailbox, envelope).

        The write is committed and fsynced before this returns, so the caller
        may acknowledge the envelope to its sender.

        Args:
            mailbox: The recipient's mailbox id.
            envelope: The sealed envelope.
            received_at: Arrival time, seconds since the Unix epoch.

        Returns:
            ``(entry_id, stored)``: ``stored`` is False if this mailbox already
            held the same envelope, in which case nothing changed.

        Raises:
            StorageUnavailableError: The database cannot be written.
        """
        entry_id = entry_id_of(envelope)
        row = {
            "mailbox": mailbox,
            "entry_id": entry_id,
            "envelope": envelope,
            "size": len(envelope),
            "received_at": received_at,
        }
        with self._access.write("put envelope", savepoint=False) as conn:
            stored = _PUT.one(conn, row) is not None
        return entry_id, stored

    def put_bulk(self, entries: Iterable[tuple[bytes, bytes, float]]) -> None:
        """Store many ``(mailbox, envelope, received_at)`` at once, in one transaction.

        The bulk path for imports and benchmarks (``benchmarks/bench_relay.py``
        fills a relay with a million envelopes through it): one multi-row
        statement per batch (SQLAlchemy's "insertmanyvalues" on PostgreSQL,
        ``executemany`` on SQLite) instead of a commit per envelope. Entries a
        mailbox already holds are skipped, as by :meth:`put`; no quota applies.
        """
        rows = [
            {
                "mailbox": mailbox,
                "entry_id": entry_id_of(envelope),
                "envelope": envelope,
                "size": len(envelope),
                "received_at": received_at,
            }
            for mailbox, envelope, received_at in entries
        ]
        if not rows:
            return
        with self._access.write("put envelopes") as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(MailboxRow).on_conflict_do_nothing(), rows)

    def fetch(self, mailbox: bytes, limit: int = 100) -> list[MailboxEntry]:
        """Return up to ``limit`` entries of ``mailbox``, oldest first; they stay stored.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        query = (
            select(*_ENTRY_COLUMNS)
            .where(MailboxRow.mailbox == mailbox)
            .order_by(MailboxRow.received_at, MailboxRow.seq)
            .limit(limit)
        )
        with self._access.read("fetch mailbox") as conn:
            rows = conn.execute(query).all()
        return [MailboxEntry(*row) for row in rows]

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int:
        """Delete acknowledged entries of ``mailbox``; ids of other mailboxes are ignored.

        Unknown ids are ignored too: an ack may be repeated after a lost reply.

        Returns:
            How many entries were deleted.
        """
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return 0
        deleted = 0
        with self._access.write("ack entries", savepoint=False) as conn:
            for start in range(0, len(ids), _CHUNK):
                statement = delete(MailboxRow).where(
                    MailboxRow.mailbox == mailbox,
                    MailboxRow.entry_id.in_(ids[start : start + _CHUNK]),
                )
                deleted += conn.execute(statement).rowcount
        return deleted

    def count(self, mailbox: bytes | None = None) -> int:
        """Return the number of stored entries, in ``mailbox`` or in all mailboxes."""
        query = select(func.count()).select_from(MailboxRow)
        if mailbox is not None:
            query = query.where(MailboxRow.mailbox == mailbox)
        with self._access.read("count entries") as conn:
            return conn.execute(query).scalar_one()

    def usage(self) -> tuple[int, int]:
        """Entries and their summed envelope bytes over all mailboxes, in one scan (metrics)."""
        query = select(func.count(), func.coalesce(func.sum(MailboxRow.size), 0))
        with self._access.read("mailbox usage") as conn:
            entries, size = conn.execute(query).one()
        return int(entries), int(size)

    def expire(self, received_before: float) -> int:
        """Delete entries received before ``received_before`` (the mailbox TTL).

        Returns:
            How many entries were deleted; 0 when run again with the same cutoff.
        """
        statement = delete(MailboxRow).where(MailboxRow.received_at < received_before)
        with self._access.write("expire entries") as conn:
            return conn.execute(statement).rowcount

    def total_bytes(self, mailbox: bytes) -> int:
        """Return the summed envelope size of ``mailbox``, for quota checks."""
        with self._access.read("sum entry sizes") as conn:
            return int(_TOTAL.one(conn, {"mailbox": mailbox})[0])
