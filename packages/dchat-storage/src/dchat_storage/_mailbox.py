"""The relay's mailbox store: sealed envelopes held for offline recipients.

Each non-empty mailbox's entry count and summed bytes live in
``mailbox_usage`` (:class:`~dchat_storage._schema.MailboxUsageRow`), changed in
the transaction that stores or deletes the entries: every insert adds its
size, every delete (acknowledgement, TTL sweep) goes through
:func:`delete_entries`, which subtracts what it removed. So the quota check
(:meth:`MailboxRepo.total_bytes`) is one primary-key read, however full the
mailbox is.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from ._access import check_limit
from ._prepared import Prepared
from ._records import MailboxEntry
from ._schema import MailboxRow, MailboxUsageRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Connection

    from ._access import Access

__all__ = ("ENTRY_ID_PERSON", "MailboxRepo", "delete_entries", "entry_id_of")

ENTRY_ID_PERSON = b"dchat-envelope"

# Ids per DELETE, well under SQLite's bound-parameter limit.
_CHUNK = 500

# Prepared once (it runs for every envelope): stores unless the mailbox holds it.
_PUT = Prepared(
    "INSERT INTO mailbox_entries (mailbox, entry_id, envelope, size, received_at)"
    " VALUES (:mailbox, :entry_id, :envelope, :size, :received_at)"
    " ON CONFLICT DO NOTHING RETURNING seq"
)
_TOTAL = Prepared("SELECT size FROM mailbox_usage WHERE mailbox = :mailbox")
_ADD = Prepared(
    "INSERT INTO mailbox_usage (mailbox, entries, size) VALUES (:mailbox, :entries, :size)"
    " ON CONFLICT (mailbox) DO UPDATE SET entries = mailbox_usage.entries + excluded.entries,"
    " size = mailbox_usage.size + excluded.size"
)
_SUB = Prepared(
    "UPDATE mailbox_usage SET entries = entries - :entries, size = size - :size"
    " WHERE mailbox = :mailbox"
)
_DROP_EMPTY = Prepared("DELETE FROM mailbox_usage WHERE mailbox = :mailbox AND entries <= 0")
_RECOUNT = (
    "INSERT INTO mailbox_usage (mailbox, entries, size)"
    " SELECT mailbox, count(*), sum(size) FROM mailbox_entries WHERE mailbox IN ({})"
    " GROUP BY mailbox"
    " ON CONFLICT (mailbox) DO UPDATE SET entries = excluded.entries, size = excluded.size"
)
# A push fetches and an acknowledgement deletes for every batch a mailbox link carries.
_FETCH = Prepared(
    "SELECT entry_id, mailbox, envelope, received_at FROM mailbox_entries"
    " WHERE mailbox = :mailbox ORDER BY received_at, seq LIMIT :limit"
)
_ACK_ONE = Prepared(
    "DELETE FROM mailbox_entries WHERE mailbox = :mailbox AND entry_id = :entry_id RETURNING size"
)


def entry_id_of(envelope: bytes) -> bytes:
    """Return an envelope's entry id: its 32-byte BLAKE2b-256, personalized."""
    return hashlib.blake2b(envelope, digest_size=32, person=ENTRY_ID_PERSON).digest()


def delete_entries(conn: Connection, where: ColumnElement[bool]) -> int:
    """Delete the entries matching ``where`` and take them off ``mailbox_usage``.

    In ``conn``'s transaction; chunks of :data:`_CHUNK` rows, so the rows a
    sweep returns stay few in memory. Returns how many entries were deleted.
    """
    deleted = 0
    while True:
        chunk = select(MailboxRow.seq).where(where).limit(_CHUNK).scalar_subquery()
        statement = (
            delete(MailboxRow)
            .where(MailboxRow.seq.in_(chunk))
            .returning(MailboxRow.mailbox, MailboxRow.size)
        )
        removed: dict[bytes, list[int]] = {}
        for mailbox, size in conn.execute(statement):
            counts = removed.setdefault(mailbox, [0, 0])
            counts[0] += 1
            counts[1] += size
        for mailbox, (entries, size) in removed.items():
            _SUB.run(conn, {"mailbox": mailbox, "entries": entries, "size": size})
            _DROP_EMPTY.run(conn, {"mailbox": mailbox})
        done = sum(entries for entries, _ in removed.values())
        deleted += done
        if done < _CHUNK:
            return deleted


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
            if stored:
                _ADD.run(conn, {"mailbox": mailbox, "entries": 1, "size": len(envelope)})
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
        touched = list(dict.fromkeys(row["mailbox"] for row in rows))
        with self._access.write("put envelopes") as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(MailboxRow).on_conflict_do_nothing(), rows)
            for start in range(0, len(touched), _CHUNK):  # counted again from the entries
                part = touched[start : start + _CHUNK]
                names = ", ".join(f":m{i}" for i in range(len(part)))
                recount = text(_RECOUNT.format(names))
                conn.execute(recount, {f"m{i}": mailbox for i, mailbox in enumerate(part)})

    def fetch(self, mailbox: bytes, limit: int = 100) -> list[MailboxEntry]:
        """Return up to ``limit`` entries of ``mailbox``, oldest first; they stay stored.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        with self._access.read("fetch mailbox") as conn:
            rows = _FETCH.run(conn, {"mailbox": mailbox, "limit": limit}).fetchall()
        return [MailboxEntry(bytes(e), bytes(m), bytes(v), float(t)) for e, m, v, t in rows]

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int:
        """Delete acknowledged entries of ``mailbox``; ids of other mailboxes are ignored.

        Unknown ids are ignored too: an ack may be repeated after a lost reply.

        Returns:
            How many entries were deleted.
        """
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return 0
        deleted = size = 0
        with self._access.write("ack entries", savepoint=False) as conn:
            # One prepared delete per id (the unique (mailbox, entry_id) index finds
            # each): an ack carries one link batch, a few dozen ids at most.
            for entry_id in ids:
                row = _ACK_ONE.one(conn, {"mailbox": mailbox, "entry_id": entry_id})
                if row is not None:
                    deleted += 1
                    size += row[0]
            if deleted:
                _SUB.run(conn, {"mailbox": mailbox, "entries": deleted, "size": size})
                _DROP_EMPTY.run(conn, {"mailbox": mailbox})
        return deleted

    def count(self, mailbox: bytes | None = None) -> int:
        """Return the number of stored entries, in ``mailbox`` or in all mailboxes."""
        query = select(func.count()).select_from(MailboxRow)
        if mailbox is not None:
            query = query.where(MailboxRow.mailbox == mailbox)
        with self._access.read("count entries") as conn:
            return conn.execute(query).scalar_one()

    def mailbox_count(self) -> int:
        """How many mailboxes hold at least one entry (one ``mailbox_usage`` row each)."""
        query = select(func.count()).select_from(MailboxUsageRow)
        with self._access.read("count mailboxes") as conn:
            return int(conn.execute(query).scalar_one())

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
        with self._access.write("expire entries") as conn:
            return delete_entries(conn, MailboxRow.received_at < received_before)

    def total_bytes(self, mailbox: bytes) -> int:
        """Return the summed envelope size of ``mailbox``, for quota checks (one key read)."""
        with self._access.read("mailbox bytes") as conn:
            row = _TOTAL.one(conn, {"mailbox": mailbox})
        return 0 if row is None else int(row[0])
