"""Delivery receipts: signing, the Merkle batch, audits, the relay's book and the mailbox link."""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MailboxId, NodeId
from dchat_crypto import SigningKey
from dchat_network import (
    MailboxLink,
    ProbeError,
    Prober,
    ProbeTarget,
    RelayClient,
    RelayHost,
    RelayLimits,
    RelayPool,
    RelayServer,
)
from dchat_network.lowlevel import (
    AuditAnswer,
    DeliveryReceipt,
    ReceiptBook,
    RelayAudit,
    RelayAuditAnswer,
    RelayReceipt,
    RelayReceiptTaken,
    check_audit,
    decode_relay_message,
    encode_relay_message,
    merkle_path,
    merkle_root,
    probe_once,
    verify_merkle_path,
)
from dchat_testing import MemoryMailboxStore, wait_until_async

RELAY = SigningKey.generate()
RELAY_ID = bytes(NodeId.derive(RELAY.public_key.to_bytes()))
BOB = SigningKey.generate()
BOX = bytes(MailboxId.derive(BOB.public_key.to_bytes()))
IDS = [bytes([i]) * 32 for i in range(1, 6)]
WAIT = 10


def entry_id_of(envelope: bytes) -> bytes:
    """Protocol §5: an entry id is the envelope's BLAKE2b-256, personalised."""
    return hashlib.blake2b(envelope, digest_size=32, person=b"dchat-envelope").digest()


def receipt(ids: list[bytes] = IDS, key: SigningKey = BOB, relay: bytes = RELAY_ID) -> bytes:
    return DeliveryReceipt.sign(key, relay, ids).to_bytes()


# -- the receipt ------------------------------------------------------------------------


def test_a_receipt_round_trips_sorted_and_names_its_mailbox() -> None:
    signed = DeliveryReceipt.sign(BOB, RELAY_ID, [IDS[2], IDS[0], IDS[2]])
    assert signed.entry_ids == (IDS[0], IDS[2])
    assert signed.mailbox == BOX
    assert DeliveryReceipt.from_bytes(signed.to_bytes()) == signed


def test_a_tampered_receipt_is_refused() -> None:
    signed = DeliveryReceipt.sign(BOB, RELAY_ID, IDS)
    forged = DeliveryReceipt(
        signed.relay, signed.key, (*signed.entry_ids, b"\xff" * 32), signed.signature
    )
    with pytest.raises(ProbeError, match="signature"):
        DeliveryReceipt.from_bytes(forged.to_bytes())
    unsorted = DeliveryReceipt(signed.relay, signed.key, tuple(reversed(IDS)), signed.signature)
    with pytest.raises(ProbeError, match="sorted"):
        DeliveryReceipt.from_bytes(unsorted.to_bytes())


@given(st.binary(max_size=600))
def test_garbage_receipts_are_typed_errors(data: bytes) -> None:
    with pytest.raises(ProbeError):
        DeliveryReceipt.from_bytes(data)


# -- the Merkle tree --------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=40), st.data())
def test_every_leaf_has_a_path_to_the_root_and_no_other_leaf_does(
    n: int, data: st.DataObject
) -> None:
    leaves = [b"leaf-%d" % i for i in range(n)]
    root = merkle_root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = merkle_path(leaves, index)
    assert verify_merkle_path(root, leaves[index], index, n, path)
    assert not verify_merkle_path(root, b"other", index, n, path)
    assert not verify_merkle_path(root, leaves[index], index, index, path)  # out of range
    if n > 1:
        assert not verify_merkle_path(root, leaves[index], (index + 1) % n, n, path)
    assert not verify_merkle_path(root, leaves[index], index, n, [*path, root])


# -- the relay's book and the audit -----------------------------------------------------


def test_a_receipt_covers_only_entries_handed_to_its_owner_and_each_once() -> None:
    book = ReceiptBook(RELAY_ID)
    with pytest.raises(ProbeError, match="did not deliver"):
        book.take(BOX, receipt())  # nothing handed out yet
    book.handed(BOX, IDS[:3])
    book.handed(BOX, IDS[3:])  # two pushes, one receipt for both
    assert book.take(BOX, receipt()) == len(IDS)
    with pytest.raises(ProbeError, match="did not deliver"):
        book.take(BOX, receipt([IDS[0]]))  # receipted already
    carol = SigningKey.generate()
    carol_box = bytes(MailboxId.derive(carol.public_key.to_bytes()))
    book.handed(BOX, [b"\x09" * 32])
    with pytest.raises(ProbeError, match="did not deliver"):  # handed to bob, not carol
        book.take(carol_box, receipt([b"\x09" * 32], key=carol))


def test_the_handed_record_is_bounded() -> None:
    from dchat_network._receipts import HANDED_OWNERS, HANDED_PER_OWNER

    book = ReceiptBook(RELAY_ID)
    many = [i.to_bytes(32, "big") for i in range(HANDED_PER_OWNER + 10)]
    book.handed(BOX, many)
    with pytest.raises(ProbeError):
        book.take(BOX, receipt(many[:1]))  # the oldest were forgotten
    assert book.take(BOX, receipt(many[-64:])) == 64
    for owner in range(HANDED_OWNERS + 1):
        book.handed(owner.to_bytes(32, "big"), [b"\x01" * 32])
    book.handed(BOX, [b"\x02" * 32])  # BOX is the most recent again
    assert len(book._handed) == HANDED_OWNERS


def test_the_book_takes_the_owners_receipts_and_answers_audits() -> None:
    book = ReceiptBook(RELAY_ID)
    book.handed(BOX, IDS)
    assert book.take(BOX, receipt()) == len(IDS)
    carol = SigningKey.generate()
    carol_box = bytes(MailboxId.derive(carol.public_key.to_bytes()))
    book.handed(carol_box, [IDS[0], b"\x09" * 32])
    assert book.take(carol_box, receipt([IDS[0], b"\x09" * 32], key=carol)) == 2
    with pytest.raises(ProbeError, match="own mailbox"):
        book.take(carol_box, receipt())
    with pytest.raises(ProbeError, match="another relay"):
        book.take(BOX, receipt(relay=b"\x00" * 32))
    batch = book.seal()
    assert batch is not None
    assert book.seal() is None  # nothing pending
    assert batch.count == len(IDS) + 1  # one leaf per envelope, repeats once
    for index in range(batch.count):
        answer = book.answer(batch.root, index)
        assert answer is not None
        assert check_audit(RELAY_ID, batch.root, batch.count, index, answer)
        assert not check_audit(b"\x01" * 32, batch.root, batch.count, index, answer)
    assert book.answer(batch.root, batch.count) is None
    assert book.answer(b"\x00" * 32, 0) is None


def test_a_claim_padded_with_leaves_no_receipt_backs_fails_its_audit() -> None:
    book = ReceiptBook(RELAY_ID)
    book.handed(BOX, IDS)
    book.take(BOX, receipt())
    honest = book.seal()
    assert honest is not None
    # The relay adds a leaf of its own: an envelope id no receipt names, under a real digest.
    digest = honest.leaves[0][32:]
    padded = sorted([*honest.leaves, b"\xee" * 32 + digest])
    root = merkle_root(padded)
    index = padded.index(b"\xee" * 32 + digest)
    fake = AuditAnswer(b"\xee" * 32, honest.receipts[digest], tuple(merkle_path(padded, index)))
    assert not check_audit(RELAY_ID, root, len(padded), index, fake)
    # Signing a receipt itself does not help: the mailbox key is not the relay's to use,
    # and a receipt from a key of its own names a mailbox nobody else delivered to.
    assert not check_audit(RELAY_ID, root, len(padded), index, AuditAnswer(b"\xee" * 32, b"x", ()))


def test_the_server_keeps_receipts_for_what_it_delivered_and_answers_audits() -> None:
    server = RelayServer(MemoryMailboxStore(), lambda env: env[:32] if len(env) >= 32 else None)
    client = RelayClient()
    envelopes = [BOX + b"%d" % i for i in range(3)]
    assert not server.handle(
        b"\x00" * 32, client.put_many([(BOX, e) for e in envelopes]), 0.0
    ).close
    ids = [entry_id_of(e) for e in envelopes]
    request = encode_relay_message(RelayReceipt(3, receipt(ids)))
    plain = server.handle(BOX, request, 0.0)
    assert plain.message == RelayReceiptTaken(3, 0)  # no node key: not kept, no error
    assert not plain.close
    server.node_key = RELAY
    stored_only = server.handle(BOX, request, 0.0)  # stored, but never handed to bob
    assert "did not deliver" in getattr(stored_only.message, "message", "")
    server.handle(BOX, client.fetch(BOX, 64), 0.0)  # now pushed to its owner
    taken = server.handle(BOX, request, 0.0)
    assert taken.message == RelayReceiptTaken(3, 3)
    again = server.handle(BOX, request, 0.0)  # each entry is receipted once
    assert "did not deliver" in getattr(again.message, "message", "")
    made_up = server.handle(BOX, encode_relay_message(RelayReceipt(4, receipt(IDS))), 0.0)
    assert made_up.close
    assert "did not deliver" in getattr(made_up.message, "message", "")
    refused = server.handle(b"\x00" * 32, request, 0.0)
    assert refused.close
    assert getattr(refused.message, "code", "") == "bad_receipt"
    # Handed out and acknowledged (deleted) before the receipt still counts.
    acked = RelayServer(MemoryMailboxStore(), lambda env: env[:32], limits=RelayLimits())
    acked.node_key = RELAY
    acked.handle(b"\x00" * 32, client.put_many([(BOX, e) for e in envelopes]), 0.0)
    acked.handle(BOX, client.pull(BOX, (), limit=64, wait_ms=0), 0.5)
    acked.handle(BOX, client.ack(BOX, ids), 1.0)
    assert acked.handle(BOX, request, 2.0).message == RelayReceiptTaken(3, 3)
    assert server.receipts is not None
    batch = server.receipts.seal()
    assert batch is not None
    audit = server.handle(b"\x00" * 32, encode_relay_message(RelayAudit(4, batch.root, 2)), 0.0)
    assert isinstance(audit.message, RelayAuditAnswer)
    assert decode_relay_message(audit.data) == audit.message
    missing = server.handle(b"\x00" * 32, encode_relay_message(RelayAudit(5, b"\x01" * 32, 0)), 0.0)
    assert getattr(missing.message, "code", "") == "no_batch"


# -- over trio: the mailbox link receipts, the prober audits ------------------------------


@asynccontextmanager
async def relay_host() -> AsyncIterator[tuple[RelayServer, int]]:
    server = RelayServer(MemoryMailboxStore(), lambda env: env[:32] if len(env) >= 32 else None)

    async def run(call: Callable[[], object]) -> object:
        return call()

    host = RelayHost(server, run, trio.current_time)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            _, port = await nursery.start(host.serve, "127.0.0.1", 0, RELAY)
        yield server, port
        nursery.cancel_scope.cancel()


async def test_the_mailbox_link_receipts_each_batch_and_validators_audit_the_claim() -> None:
    got: list[bytes] = []

    async def handle(batch: list[tuple[bytes, bytes]]) -> None:
        got.extend(envelope for _, envelope in batch)

    async with relay_host() as (server, port), trio.open_nursery() as nursery:
        pool = RelayPool()
        envelopes = [BOX + b"%03d" % i for i in range(5)]
        with trio.fail_after(WAIT):
            await pool.put_many("127.0.0.1", port, [(BOX, e) for e in envelopes])
            link = MailboxLink("127.0.0.1", port, BOB, handle, wait=30.0)
            nursery.start_soon(link.run)
            assert server.receipts is not None
            book = server.receipts
            await wait_until_async(lambda: book.taken, timeout=WAIT, what="a receipt")
        batch = book.seal()
        assert batch is not None
        assert batch.count == len(envelopes)
        # A validator probes the relay and audits its claim (one random leaf per probe).
        honest = ProbeTarget(b"\xa1" * 32, "127.0.0.1", port, NodeId(RELAY_ID), (batch.root, 5))
        inflated = ProbeTarget(b"\xa2" * 32, "127.0.0.1", port, NodeId(RELAY_ID), (batch.root, 9))
        unknown = ProbeTarget(b"\xa3" * 32, "127.0.0.1", port, NodeId(RELAY_ID), (b"\x01" * 32, 5))
        prober = Prober(SigningKey.generate())
        with trio.fail_after(WAIT):
            for target in (honest, inflated, unknown):
                for _ in range(4):
                    await probe_once(
                        prober, target, 0, lambda: int(trio.current_time() * 1000), 5.0
                    )
        scores = {account: (score, count) for account, score, count in prober.scores(0)}
        assert scores[b"\xa1" * 32] == (10_000, 5)  # proven after two audits, counted once
        assert scores[b"\xa3" * 32] == (0, 0)  # a batch the relay cannot show
        assert scores[b"\xa2" * 32] == (0, 0)  # a count beyond its leaves: some audit missed
        link.stop()
        await pool.aclose()
        assert got == envelopes


def test_a_full_book_drops_its_oldest_receipt_and_keeps_few_batches() -> None:
    book = ReceiptBook(RELAY_ID, keep=2, max_pending=2)
    for i in range(3):
        book.handed(BOX, [bytes([i]) * 32])
        book.take(BOX, receipt([bytes([i]) * 32]))
    assert book.pending == 2
    batch = book.seal()
    assert batch is not None
    assert [leaf[:32] for leaf in batch.leaves] == [b"\x01" * 32, b"\x02" * 32]
    roots = [batch.root]
    for i in range(3, 5):
        book.handed(BOX, [bytes([i]) * 32])
        book.take(BOX, receipt([bytes([i]) * 32]))
        sealed = book.seal()
        assert sealed is not None
        roots.append(sealed.root)
    assert book.answer(roots[0], 0) is None  # dropped: only the last two are kept
    assert book.answer(roots[2], 0) is not None


def test_receipts_taken_while_another_thread_records_handed_entries_are_not_refused() -> None:
    # The relay host records handed entries in its read worker while receipts are
    # taken in its commit worker. A receipt for entries handed earlier must never
    # be refused because the other thread was updating the owner's record.
    book = ReceiptBook(RELAY_ID, max_pending=100_000)
    stop = threading.Event()

    def record() -> None:  # the same entry again and again: the record does not grow
        while not stop.is_set():
            book.handed(BOX, [b"\xee" * 32])

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    recorder = threading.Thread(target=record)
    recorder.start()
    refused = 0
    try:
        for i in range(400):
            entry = (10**9 + i).to_bytes(32, "big")
            book.handed(BOX, [entry])
            try:
                book.take(BOX, DeliveryReceipt.sign(BOB, RELAY_ID, [entry]).to_bytes())
            except ProbeError:
                refused += 1
    finally:
        stop.set()
        recorder.join(WAIT)
        sys.setswitchinterval(before)
    assert refused == 0
