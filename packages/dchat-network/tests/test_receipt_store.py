"""The receipt book over a store: it survives a restart, seals durably, prunes by claims."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dchat_core import MailboxId, NodeId
from dchat_crypto import SigningKey
from dchat_network import ProbeError, RelayServer
from dchat_network.lowlevel import (
    DeliveryReceipt,
    ReceiptBook,
    ReceiptStore,
    RelayReceipt,
    check_audit,
    encode_relay_message,
)
from dchat_testing import MemoryMailboxStore

RELAY = SigningKey(b"\x01" * 32)
RELAY_ID = bytes(NodeId.derive(RELAY.public_key.to_bytes()))
BOB = SigningKey(b"\x02" * 32)
BOX = bytes(MailboxId.derive(BOB.public_key.to_bytes()))
WINDOW = 600.0

StoredBatch = tuple[bytes, float, float | None, list[bytes]]


class MemoryReceiptStore:
    """A :class:`ReceiptStore` in memory, like the database's (each call atomic)."""

    def __init__(self) -> None:
        self.pending: dict[bytes, bytes] = {}
        self.batches: dict[bytes, StoredBatch] = {}
        self.fail_saves = False

    def keep_receipt(self, digest: bytes, receipt: bytes, now: float) -> None:
        self.pending.setdefault(digest, receipt)

    def forget_receipt(self, digest: bytes) -> None:
        self.pending.pop(digest, None)

    def save_batch(self, root: bytes, receipts: Sequence[tuple[bytes, bytes]], now: float) -> None:
        if self.fail_saves:
            raise OSError("disk full")
        for digest, _ in receipts:
            self.pending.pop(digest, None)
        self.batches[root] = (root, now, None, [raw for _, raw in receipts])

    def claim_batch(self, root: bytes, now: float) -> None:
        root_, sealed, _, receipts = self.batches[root]
        self.batches[root] = (root_, sealed, now, receipts)

    def drop_batch(self, root: bytes) -> None:
        del self.batches[root]

    def load_receipts(self) -> tuple[list[bytes], list[StoredBatch]]:
        return list(self.pending.values()), list(self.batches.values())


def book(store: ReceiptStore, keep: int = 16) -> ReceiptBook:
    return ReceiptBook(RELAY_ID, store=store, audit_window=WINDOW, keep=keep)


def deliver(b: ReceiptBook, first: int, n: int, now: float = 0.0) -> None:
    ids = [bytes([first + i]) * 32 for i in range(n)]
    b.handed(BOX, ids)
    b.take(BOX, DeliveryReceipt.sign(BOB, RELAY_ID, ids).to_bytes(), now=now)


def test_a_restarted_relay_still_backs_every_leaf_of_its_claimed_batch() -> None:
    store = MemoryReceiptStore()
    before = book(store)
    deliver(before, 1, 5)
    deliver(before, 10, 3)
    batch = before.seal(100.0)
    assert batch is not None
    before.claimed(batch.root, 101.0)
    deliver(before, 20, 2)  # pending at the crash
    after = book(store)  # the restart: a new book over the same store
    for index in range(batch.count):
        answer = after.answer(batch.root, index)
        assert answer is not None
        assert check_audit(RELAY_ID, batch.root, batch.count, index, answer)
    assert after.claimed_at(batch.root) == 101.0
    assert after.pending == 1
    assert after.unclaimed() == []
    again = after.seal(200.0)  # the pending receipt survived too
    assert again is not None
    assert again.count == 2


def test_a_seal_the_store_refuses_changes_nothing() -> None:
    store = MemoryReceiptStore()
    b = book(store)
    deliver(b, 1, 4)
    store.fail_saves = True
    with pytest.raises(OSError, match="disk full"):
        b.seal(1.0)
    assert (b.pending, b.batches) == (1, {})
    store.fail_saves = False
    sealed = b.seal(2.0)
    assert sealed is not None
    assert list(store.batches) == [sealed.root]


def test_a_batch_goes_once_a_later_claim_is_past_the_audit_window() -> None:
    store = MemoryReceiptStore()
    b = book(store)
    roots = []
    for i in range(3):
        deliver(b, 10 * i + 1, 2)
        sealed = b.seal(1_000.0 * i)
        assert sealed is not None
        roots.append(sealed.root)
    b.claimed(roots[0], 10.0)
    b.claimed(roots[1], 1_010.0)
    assert list(b.batches) == roots  # the window after the second claim is not over
    b.claimed(roots[2], 1_010.0 + WINDOW)  # pruning runs on claims and seals
    assert list(b.batches) == roots[1:]
    assert list(store.batches) == roots[1:]
    assert b.answer(roots[0], 0) is None


def test_the_batch_cap_never_drops_the_newest_claimed_batch() -> None:
    store = MemoryReceiptStore()
    b = book(store, keep=2)
    deliver(b, 1, 1)
    first = b.seal(0.0)
    assert first is not None
    b.claimed(first.root, 1.0)
    for i in range(3):  # later batches whose claims failed: unclaimed
        deliver(b, 10 + i, 1)
        assert b.seal(2.0 + i) is not None
    assert len(b.batches) == 2
    assert first.root in b.batches
    assert len(store.batches) == 2


def test_a_stored_batch_that_does_not_rebuild_is_dropped_and_counted() -> None:
    store = MemoryReceiptStore()
    b = book(store)
    deliver(b, 1, 3)
    sealed = b.seal(1.0)
    assert sealed is not None
    root, at, claimed, _ = store.batches[sealed.root]
    store.batches[sealed.root] = (root, at, claimed, [b"junk"])
    store.pending[b"x" * 32] = b"not a receipt"
    after = book(store)
    assert after.answer(sealed.root, 0) is None
    assert (after.unreadable, after.pending) == (2, 0)


def test_the_relay_server_keeps_receipts_in_its_store() -> None:
    store = MemoryReceiptStore()
    server = RelayServer(MemoryMailboxStore(), lambda env: env[:32], receipts=store)
    server.node_key = RELAY
    assert server.receipts is not None
    server.receipts.handed(BOX, [b"\x07" * 32])
    raw = DeliveryReceipt.sign(BOB, RELAY_ID, [b"\x07" * 32]).to_bytes()
    reply = server.handle(BOX, encode_relay_message(RelayReceipt(1, raw)), 5.0)
    assert not reply.close
    assert list(store.pending.values()) == [raw]
    with pytest.raises(ProbeError):  # the same entries twice: refused, nothing stored
        server.receipts.take(BOX, raw, now=6.0)
    assert len(store.pending) == 1
