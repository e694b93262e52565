"""The relay's delivery receipts: pending ones and sealed batches, durable across restarts.

Theory of operation: every receipt a relay keeps is one row of
``relay_receipts`` (its SHA-256 ``digest`` is unique), pending while ``root``
is NULL. Sealing a batch is one write transaction that records the batch in
``relay_receipt_batches`` and writes every receipt of it with the batch's
root (inserting one a rolled-back transaction lost, so the stored batch always
holds exactly the receipts its root was computed over). A claim sets the
batch's ``claimed_at``; dropping a batch deletes it with its receipts. The
relay never validates receipts here; ``dchat_network.ReceiptBook`` did that,
and rebuilds its batches from :meth:`ReceiptRepo.load_receipts` at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from ._access import insert_ignore
from ._schema import ReceiptBatchRow, ReceiptRow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._access import Access

__all__ = ("ReceiptRepo", "StoredBatch")

StoredBatch = tuple[bytes, float, float | None, list[bytes]]
"""A sealed batch as stored: (root, sealed at, claimed at or None, receipts in order)."""


class ReceiptRepo:
    """A relay's delivery receipts. Obtain it as :attr:`Database.receipts`.

    A :class:`dchat_network.ReceiptStore`. Times are seconds since the Unix epoch.
    """

    def __init__(self, access: Access) -> None:
        self._access = access

    def keep_receipt(self, digest: bytes, receipt: bytes, now: float) -> None:
        """Store a pending receipt (one already stored is left as it is)."""
        row: dict[str, object] = {
            "digest": digest,
            "receipt": receipt,
            "root": None,
            "stored_at": now,
        }
        with self._access.write("keep receipt") as conn:
            insert_ignore(conn, ReceiptRow, row)

    def forget_receipt(self, digest: bytes) -> None:
        """Delete a pending receipt (one in a sealed batch is kept)."""
        with self._access.write("forget receipt") as conn:
            conn.execute(
                delete(ReceiptRow).where(ReceiptRow.digest == digest, ReceiptRow.root.is_(None))
            )

    def save_batch(self, root: bytes, receipts: Sequence[tuple[bytes, bytes]], now: float) -> None:
        """Record the sealed batch ``root`` of ``receipts`` ((digest, receipt) pairs), at once.

        Pending receipts not in it stay pending.
        """
        with self._access.write("save receipt batch") as conn:
            insert_ignore(conn, ReceiptBatchRow, {"root": root, "sealed_at": now})
            for digest, receipt in receipts:
                row = {"digest": digest, "receipt": receipt, "root": root, "stored_at": now}
                if not insert_ignore(conn, ReceiptRow, row):
                    conn.execute(
                        update(ReceiptRow).where(ReceiptRow.digest == digest).values(root=root)
                    )

    def claim_batch(self, root: bytes, now: float) -> None:
        """Note that batch ``root`` was claimed on chain at ``now``."""
        with self._access.write("claim receipt batch") as conn:
            conn.execute(
                update(ReceiptBatchRow).where(ReceiptBatchRow.root == root).values(claimed_at=now)
            )

    def drop_batch(self, root: bytes) -> None:
        """Delete batch ``root`` and its receipts."""
        with self._access.write("drop receipt batch") as conn:
            conn.execute(delete(ReceiptRow).where(ReceiptRow.root == root))
            conn.execute(delete(ReceiptBatchRow).where(ReceiptBatchRow.root == root))

    def load_receipts(self) -> tuple[list[bytes], list[StoredBatch]]:
        """The pending receipts and the sealed batches, each oldest first."""
        with self._access.read("load receipts") as conn:
            pending = conn.execute(
                select(ReceiptRow.receipt).where(ReceiptRow.root.is_(None)).order_by(ReceiptRow.seq)
            ).scalars()
            pending_list = [bytes(r) for r in pending]
            batches = conn.execute(
                select(
                    ReceiptBatchRow.root, ReceiptBatchRow.sealed_at, ReceiptBatchRow.claimed_at
                ).order_by(ReceiptBatchRow.seq)
            ).all()
            stored = []
            for root, sealed_at, claimed_at in batches:
                rows = conn.execute(
                    select(ReceiptRow.receipt)
                    .where(ReceiptRow.root == root)
                    .order_by(ReceiptRow.seq)
                ).scalars()
                stored.append((bytes(root), sealed_at, claimed_at, [bytes(r) for r in rows]))
        return pending_list, stored
