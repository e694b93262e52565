"""The sans-IO relay server and client against the kit's in-memory mailbox store."""

from __future__ import annotations

import pytest
from hypothesis import given

from dchat_core import canonical_encode
from dchat_network import RelayClient, RelayError, RelayProtocolError, RelayServer
from dchat_network.lowlevel import (
    RelayAcked,
    RelayBatch,
    RelayStored,
    RelayStoredMany,
    decode_relay_message,
)
from dchat_testing import MemoryMailboxStore, hostile_bytes

ALICE, BOB = b"A" * 32, b"B" * 32


def envelope_for(mailbox: bytes, body: bytes) -> bytes:
    return mailbox + body  # the test's envelope format: mailbox prefix, then anything


def mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


@pytest.fixture
def server() -> RelayServer:
    return RelayServer(MemoryMailboxStore(), mailbox_of, quota=10_000)


def test_put_fetch_ack_round_trip(server: RelayServer) -> None:
    sender, owner = RelayClient(), RelayClient()
    envelope = envelope_for(BOB, b"hello")
    stored = sender.receive(server.handle(ALICE, sender.put(BOB, envelope), 1.0).data)
    assert isinstance(stored, RelayStored)
    batch = owner.receive(server.handle(BOB, owner.fetch(BOB), 2.0).data)
    assert isinstance(batch, RelayBatch)
    assert batch.items == ((stored.entry_id, envelope),)
    acked = owner.receive(server.handle(BOB, owner.ack(BOB, [stored.entry_id]), 3.0).data)
    assert acked == RelayAcked(acked.rid, 1)
    empty = owner.receive(server.handle(BOB, owner.fetch(BOB), 4.0).data)
    assert isinstance(empty, RelayBatch)
    assert empty.items == ()
    assert (server.stored, server.delivered) == (1, 1)


def test_same_envelope_twice_is_stored_once(server: RelayServer) -> None:
    client = RelayClient()
    envelope = envelope_for(BOB, b"x")
    first = server.handle(ALICE, client.put(BOB, envelope), 1.0)
    client.receive(first.data)
    second = server.handle(ALICE, client.put(BOB, envelope), 1.0)
    client.receive(second.data)
    assert server.stored == 1


@pytest.mark.parametrize("kind", ["fetch", "ack"])
def test_other_peoples_mailboxes_are_forbidden_and_close(server: RelayServer, kind: str) -> None:
    client = RelayClient()
    client.receive(server.handle(ALICE, client.put(BOB, envelope_for(BOB, b"x")), 1.0).data)
    request = client.fetch(BOB) if kind == "fetch" else client.ack(BOB, [bytes(32)])
    reply = server.handle(ALICE, request, 2.0)
    assert reply.close
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == "forbidden"
    assert server.delivered == 0


@pytest.mark.parametrize(
    ("mailbox", "envelope", "code"),
    [
        (BOB, envelope_for(ALICE, b"x"), "bad_envelope"),
        (BOB, b"short", "bad_envelope"),
        (BOB, envelope_for(BOB, bytes(20_000)), "quota"),
    ],
)
def test_refused_puts(server: RelayServer, mailbox: bytes, envelope: bytes, code: str) -> None:
    reply = server.handle(ALICE, RelayClient().put(mailbox, envelope), 1.0)
    assert reply.close
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == code
    assert server.stored == 0
    assert dict(server.refusals) == {code: 1}  # counted once, by its code (for metrics)


def test_counters_of_stored_bytes_and_of_refused_items_by_code(server: RelayServer) -> None:
    client = RelayClient()
    items = [
        (BOB, envelope_for(BOB, b"one")),
        (BOB, envelope_for(BOB, b"one")),  # a duplicate: stored once
        (BOB, envelope_for(ALICE, b"x")),
        (ALICE, envelope_for(ALICE, bytes(20_000))),
    ]
    reply = server.handle(ALICE, client.put_many(items), 1.0)
    assert not reply.close
    assert (server.stored, server.stored_bytes) == (1, 35)
    assert dict(server.refusals) == {"bad_envelope": 1, "quota": 1}
    server.handle(ALICE, client.fetch(BOB), 2.0)
    assert server.refusals["forbidden"] == 1


def test_nothing_of_a_mailbox_is_stored_behind_a_refused_item(server: RelayServer) -> None:
    """Per destination, a batch is stored in order up to its first refusal, never past it.

    The sender retries the refused item later; a later one stored now would
    overtake it (seen as messages out of order after relay restarts).
    """
    items = [
        (BOB, envelope_for(BOB, b"first")),
        (BOB, envelope_for(BOB, bytes(20_000))),  # over the quota: refused
        (ALICE, envelope_for(ALICE, b"other")),  # another mailbox: unaffected
        (BOB, envelope_for(BOB, b"third")),  # would fit, but must not pass the refused one
        (BOB, envelope_for(ALICE, b"x")),  # malformed: its own code, as before
    ]
    reply = server.handle(ALICE, RelayClient().put_many(items), 1.0)
    assert isinstance(reply.message, RelayStoredMany)
    codes = [r if isinstance(r, str) else "stored" for r in reply.message.results]
    assert codes == ["stored", "quota", "stored", "quota", "bad_envelope"]
    assert server.stored == 2
    assert dict(server.refusals) == {"quota": 2, "bad_envelope": 1}  # each item, by its code


@given(hostile_bytes(max_size=512))
def test_garbage_gets_an_error_reply_that_closes(data: bytes) -> None:
    server = RelayServer(MemoryMailboxStore(), mailbox_of)
    reply = server.handle(ALICE, data, 1.0)
    assert reply.close
    assert isinstance(decode_relay_message(reply.data), RelayError)
    assert server.stored == 0


def test_replies_that_are_not_requests_are_unexpected(server: RelayServer) -> None:
    data = canonical_encode({"t": "acked", "rid": 1, "n": 0})
    reply = server.handle(ALICE, data, 1.0)
    assert reply.close
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == "unexpected"


def test_batches_are_bounded_by_bytes() -> None:
    server = RelayServer(MemoryMailboxStore(), mailbox_of, quota=1 << 30)
    client = RelayClient()
    for i in range(20):
        envelope = envelope_for(BOB, i.to_bytes(2, "big") + bytes(90_000))
        client.receive(server.handle(ALICE, client.put(BOB, envelope), 1.0).data)
    batch = client.receive(server.handle(BOB, client.fetch(BOB), 2.0).data)
    assert isinstance(batch, RelayBatch)
    assert 0 < len(batch.items) < 20
    assert sum(len(env) for _, env in batch.items) <= 768 * 1024


def test_client_rejects_error_mismatch_and_unsolicited_replies(server: RelayServer) -> None:
    client = RelayClient()
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "acked", "rid": 1, "n": 0}))  # nothing pending
    request = client.fetch(BOB)
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "acked", "rid": 1, "n": 0}))  # wrong type
    client.fetch(BOB)
    wrong_rid = canonical_encode({"t": "batch", "rid": 999, "items": []})
    with pytest.raises(RelayProtocolError):
        client.receive(wrong_rid)
    reply = server.handle(ALICE, client.fetch(BOB), 1.0)  # forbidden
    with pytest.raises(RelayProtocolError, match="forbidden"):
        client.receive(reply.data)
    assert request  # the first request was well-formed bytes
