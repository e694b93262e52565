"""ReceiptRepo: a relay's delivery receipts and sealed batches, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from dchat_storage import Database


def rc(n: int) -> tuple[bytes, bytes]:
    """A (digest, receipt) pair."""
    return bytes([n]) * 32, b"receipt-%d" % n


def test_pending_receipts_and_batches_survive_a_reopen(
    db: Database, reopen: Callable[[], Database]
) -> None:
    assert db.receipts.load_receipts() == ([], [])
    for n in (1, 2, 3):
        db.receipts.keep_receipt(*rc(n), 10.0)
    db.receipts.keep_receipt(*rc(1), 11.0)  # kept once
    # The batch holds 1, 2 and 4 (4 was never kept: a rolled-back take); 3 stays pending.
    db.receipts.save_batch(b"r" * 32, [rc(1), rc(2), rc(4)], 12.0)
    again = reopen()
    pending, batches = again.receipts.load_receipts()
    assert pending == [rc(3)[1]]
    assert batches == [(b"r" * 32, 12.0, None, [rc(1)[1], rc(2)[1], rc(4)[1]])]
    again.receipts.claim_batch(b"r" * 32, 13.5)
    db.receipts.save_batch(b"s" * 32, [rc(3)], 14.0)
    pending, batches = db.receipts.load_receipts()
    assert pending == []
    assert [(root, claimed) for root, _, claimed, _ in batches] == [
        (b"r" * 32, 13.5),
        (b"s" * 32, None),
    ]


def test_forget_and_drop(db: Database) -> None:
    db.receipts.keep_receipt(*rc(1), 1.0)
    db.receipts.keep_receipt(*rc(2), 1.0)
    db.receipts.save_batch(b"r" * 32, [rc(2)], 2.0)
    db.receipts.forget_receipt(rc(1)[0])
    db.receipts.forget_receipt(rc(2)[0])  # in a batch: kept
    assert db.receipts.load_receipts() == ([], [(b"r" * 32, 2.0, None, [rc(2)[1]])])
    db.receipts.drop_batch(b"r" * 32)
    assert db.receipts.load_receipts() == ([], [])
    db.receipts.keep_receipt(*rc(2), 3.0)  # its digest is free again
    assert db.receipts.load_receipts() == ([rc(2)[1]], [])


def test_a_batch_saved_in_a_rolled_back_transaction_is_not_kept(db: Database) -> None:
    db.receipts.keep_receipt(*rc(1), 1.0)
    try:
        with db.transaction():
            db.receipts.save_batch(b"r" * 32, [rc(1)], 2.0)
            raise RuntimeError("crash before the commit")
    except RuntimeError:
        pass
    assert db.receipts.load_receipts() == ([rc(1)[1]], [])
