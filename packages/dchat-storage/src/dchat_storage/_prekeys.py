"""The relay's prekey store: signed bundles handed out on behalf of offline owners.

Theory of operation: every bundle of a mailbox is one row of ``relay_prekeys``.
A take is one write transaction that selects the lowest one-time row and deletes
it by primary key, and returns it only if this DELETE removed the row. Within one
:class:`Database` the writer lock already serializes takes; the check is what
keeps takes exactly-once when several processes share the database: on SQLite
``BEGIN IMMEDIATE`` serializes the transactions, and on PostgreSQL (READ
COMMITTED) a concurrent DELETE of the same row waits for the first to commit and
then removes nothing, so the loser moves on to the next row. The relay never
validates bundles here; ``dchat_network.RelayServer`` did that already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from ._access import insert_ignore
from ._prepared import Prepared
from ._schema import PrekeyRow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("PrekeyRepo",)


class PrekeyRepo:
    """Prekey bundles hosted by the relay role. Obtain it as :attr:`Database.prekeys`.

    A :class:`dchat_network.PrekeyStore`.
    """

    def __init__(self, access: Access) -> None:
        self._access = access

    def put_prekeys(
        self,
        mailbox: bytes,
        last: bytes,
        one_time: Sequence[tuple[int, bytes]],
        replace: bool,
        now: float,
    ) -> int:
        """Store a mailbox's last-resort bundle and one-time bundles, in one transaction.

        Args:
            mailbox: The owner's mailbox id.
            last: The last-resort bundle; replaces the held one.
            one_time: ``(one-time prekey id, bundle)`` pairs. A held bundle with
                the same id is kept (a retried put changes nothing).
            replace: Delete every held bundle of ``mailbox`` first.
            now: Storage time, seconds since the Unix epoch.

        Returns:
            How many one-time bundles ``mailbox`` now holds.

        Raises:
            StorageUnavailableError: The database cannot be written.
        """
        with self._access.write("put prekeys") as conn:
            held = PrekeyRow.mailbox == mailbox
            if not replace:
                held = held & PrekeyRow.prekey_id.is_(None)
            conn.execute(delete(PrekeyRow).where(held))
            _insert(conn, mailbox, None, last, now)
            for prekey_id, bundle in one_time:
                _insert(conn, mailbox, prekey_id, bundle, now)
            return _count(conn, mailbox)

    def take_prekey(self, mailbox: bytes) -> bytes | None:
        """Remove and return the lowest one-time bundle, else return the last-resort one.

        The removal is committed before this returns, and no two takes (in any
        thread or process) return the same one-time bundle.

        Returns:
            A bundle, or None if ``mailbox`` holds none at all.
        """
        lowest = (
            select(PrekeyRow.seq, PrekeyRow.bundle)
            .where(PrekeyRow.mailbox == mailbox, PrekeyRow.prekey_id.is_not(None))
            .order_by(PrekeyRow.prekey_id)
            .limit(1)
        )
        last = select(PrekeyRow.bundle).where(
            PrekeyRow.mailbox == mailbox, PrekeyRow.prekey_id.is_(None)
        )
        with self._access.write("take prekey") as conn:
            while (row := conn.execute(lowest).first()) is not None:
                if conn.execute(delete(PrekeyRow).where(PrekeyRow.seq == row.seq)).rowcount == 1:
                    return bytes(row.bundle)
            found = conn.execute(last).scalar_one_or_none()
        return None if found is None else bytes(found)

    def count_prekeys(self, mailbox: bytes) -> int:
        """Return how many one-time bundles ``mailbox`` holds."""
        with self._access.read("count prekeys") as conn:
            return _count(conn, mailbox)


def _insert(
    conn: Connection, mailbox: bytes, prekey_id: int | None, bundle: bytes, now: float
) -> None:
    row: dict[str, object] = {
        "mailbox": mailbox,
        "prekey_id": prekey_id,
        "bundle": bundle,
        "stored_at": now,
    }
    insert_ignore(conn, PrekeyRow, row)


# Asked on each link of a mailbox owner (and by anyone who asks the relay).
_COUNT = Prepared(
    "SELECT count(*) FROM relay_prekeys WHERE mailbox = :mailbox AND prekey_id IS NOT NULL"
)


def _count(conn: Connection, mailbox: bytes) -> int:
    return int(_COUNT.one(conn, {"mailbox": mailbox})[0])
