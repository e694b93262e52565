"""The messaging engine over the real node database: one commit per step, all or nothing.

Runs on SQLite and on PostgreSQL (the ``pg_empty_url`` fixture: the server in
``DCHAT_TEST_POSTGRES_URL``, as ``.ci/run`` sets, or a throwaway one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from dchat_core import MessageId
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DeviceAddress,
    DeviceKeys,
    MessageReceived,
    MessagingEngine,
    UserMessaging,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_storage import Database, EngineStore, open_database
from dchat_testing import make_card, make_identity

T0 = 1_800_000_000.0
RELAY = "127.0.0.1:7400"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database(tmp_path / "node.db", passphrase=b"correct horse")
    else:  # a fresh empty database; skipped, saying why, when no server can be had
        url = request.getfixturevalue("pg_empty_url")
        database = open_database(url, passphrase=b"horse")
    try:
        yield database
    finally:
        database.close()


def _person(name: str) -> tuple[Identity, ContactCard, DeviceKeys]:
    identity = make_identity()
    card = make_card(identity, name, relay=RELAY)
    keys = DeviceKeys(
        identity.identity_id, identity.signing_key, identity.encryption_key,
        identity.mailbox_id, card,
    )  # fmt: skip
    return identity, card, keys


def _commits(db: Database) -> list[int]:
    counter = [0]

    def count(_conn: object) -> None:
        counter[0] += 1

    event.listen(db._access._engine, "commit", count)
    return counter


def _first_contact(db: Database, *texts: str) -> tuple[MessagingEngine, DeviceAddress, list[bytes]]:
    """Bob's engine on ``db``; alice (in memory) sets up a session and writes ``texts``.

    Returns bob's engine, alice's device and alice's envelopes, not yet received.
    """
    _, bob_card, bob_keys = _person("bob")
    _, alice_card, alice_keys = _person("alice")
    bob = MessagingEngine(bob_keys, EngineStore(db), namespace="msg.bob")
    alice_store = MemoryMessageStore()
    alice = MessagingEngine(alice_keys, alice_store)
    upload = bob.prekey_upload(held=None, now=T0)
    assert upload is not None
    bob_device = DeviceAddress.primary(bob_card)
    for n, text in enumerate(texts):
        alice.send(Content.text_message(text, now_ms=n + 1), [bob_device], now=T0)
        if n == 0:
            alice.bundle_received(bob_device, upload.one_time[0][1], now=T0)
    envelopes = [entry.envelope for entry in alice_store.due(T0, 10)]
    return bob, DeviceAddress.primary(alice_card), envelopes


def test_a_send_and_a_receive_are_one_commit_each(db: Database) -> None:
    bob, alice_device, (envelope,) = _first_contact(db, "hello")

    commits = _commits(db)
    events = bob.receive(envelope, now=T0)
    assert [type(e) for e in events] == [MessageReceived]
    assert commits[0] == 1  # message + session + consumed one-time prekey together

    commits[0] = 0
    bob.send(Content.text_message("hi alice", now_ms=2), [alice_device], now=T0)
    assert commits[0] == 1  # the sent message, the session and the outbox entry
    assert db.outbox.count() == 1
    assert [m.body for m in db.messages.list(None, 10)] == ["hello", "hi alice"]


def test_a_send_that_fails_halfway_leaves_nothing_behind(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, bob_keys = _person("bob")
    store = EngineStore(db)
    bob = MessagingEngine(bob_keys, store, namespace="msg.bob")
    devices = []
    for name in ("alice", "carol"):
        _, card, keys = _person(name)
        peer = MessagingEngine(keys, MemoryMessageStore())
        upload = peer.prekey_upload(held=None, now=T0)
        assert upload is not None
        device = DeviceAddress.primary(card)
        bob.send(Content.control("x.setup", b"", now_ms=1), [device], now=T0)
        bob.bundle_received(device, upload.one_time[0][1], now=T0)
        devices.append(device)
    before = {key: store.get_state(key) for key in _session_keys(bob, devices)}
    queued = db.outbox.count()

    calls = [0]
    real = store.enqueue

    def fail_second(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError("disk full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "enqueue", fail_second)
    with pytest.raises(OSError, match="disk full"):
        bob.send(Content.text_message("to both", now_ms=3), devices, now=T0)
    assert db.outbox.count() == queued
    assert [m.body for m in db.messages.list(None, 10)] == []
    assert {key: store.get_state(key) for key in before} == before  # no ratchet step kept


def _session_keys(engine: MessagingEngine, devices: list[DeviceAddress]) -> list[str]:
    return [f"msg.bob.sess.{d.device_id.hex()}" for d in devices]


def test_a_receive_in_a_failed_group_commit_can_be_repeated(db: Database) -> None:
    # The engine keeps the session decoded in memory; the database's undo hooks
    # drop it when the enclosing transaction fails, so the ratchet has not used
    # up the message key and the redelivered envelope opens.
    bob, _, (first, second) = _first_contact(db, "first", "second")
    assert isinstance(bob.receive(first, now=T0)[0], MessageReceived)

    class Boom(Exception):
        pass

    def receive_then_fail() -> None:
        with db.transaction():  # as AsyncStore.run_grouped nests it
            assert isinstance(bob.receive(second, now=T0)[0], MessageReceived)
            raise Boom

    with pytest.raises(Boom):
        receive_then_fail()
    assert [m.body for m in db.messages.list(None, 10)] == ["first"]
    events = bob.receive(second, now=T0)
    assert [type(e) for e in events] == [MessageReceived]
    assert [m.body for m in db.messages.list(None, 10)] == ["first", "second"]


def test_conversation_state_over_the_database(db: Database) -> None:
    """What the conversation features keep: read marks, notes, events, contact removal."""
    store = EngineStore(db)
    agent = UserMessaging(store)
    _, card, _ = _person("bob")
    agent.contacts.add_card("bob", card, now=T0)
    peer = str(card.identity_id)
    with store.transaction():
        assert store.add_message(b"m" * 16, "in", peer, "hi", T0, T0)
    (listed,) = store.list_messages(peer, 10)
    assert listed.read_at is None
    [line] = agent.conversations.inbox(agent.contacts.messages(None, 10))
    assert (line["peer_name"], line["unread"]) == ("bob", 1)
    with store.transaction():
        assert agent.conversations.mark_read(peer, now=T0 + 1) == [MessageId(b"m" * 16)]
        store.log_event("receipt", {"peer": peer, "ids": ["x"], "read": True}, T0 + 1)
    assert store.get_message(b"m" * 16).read_at == T0 + 1  # type: ignore[union-attr]
    assert agent.conversations.mark_read(peer, now=T0 + 2) == []
    assert [e.kind for e in db.events.page(0)][-1] == "receipt"
    assert agent.conversations.set_settings(read_receipts=False)["read_receipts"] is False
    assert UserMessaging(store).conversations.settings() == {
        "read_receipts": False,
        "typing": False,
    }
    agent.contacts.rename("bob", "robert", now=T0)
    assert agent.contacts.remove("robert").identity_id == peer
    assert store.list_contacts() == []
    assert store.get_message(b"m" * 16) is not None  # the messages stay


class _Failed(Exception):
    """A group member that fails after its ratchet step."""


def _grouped(db: Database, *calls: object) -> list[object]:
    """Run ``calls`` as a group commit does: one transaction, a savepoint each."""
    results: list[object] = []
    with db.transaction():
        for call in calls:
            try:
                with db.transaction():
                    results.append(call())  # type: ignore[operator]
            except _Failed as exc:
                results.append(exc)
    return results


def test_a_member_rolled_back_in_its_savepoint_leaves_no_ratchet_step_behind(
    db: Database,
) -> None:
    # Session records are encoded once, at the commit; a member that stepped the
    # ratchet and was rolled back alone must not leave its step in the record
    # the commit stores, or its envelope could never be opened when it comes again.
    bob, _, (first, second, third, fourth) = _first_contact(db, "1", "2", "3", "4")
    assert isinstance(bob.receive(first, now=T0)[0], MessageReceived)

    def receive_then_fail() -> None:
        assert isinstance(bob.receive(third, now=T0)[0], MessageReceived)
        raise _Failed

    group = (
        lambda: bob.receive(second, now=T0),
        receive_then_fail,
        lambda: bob.receive(fourth, now=T0),
    )
    done = _grouped(db, *group)
    assert isinstance(done[1], _Failed)
    assert [m.body for m in db.messages.list(None, 10)] == ["1", "2", "4"]
    # What was stored, read back by an engine that holds nothing in memory.
    again = MessagingEngine(bob.keys, EngineStore(db), namespace="msg.bob")
    assert [type(e) for e in again.receive(third, now=T0)] == [MessageReceived]
    assert [m.body for m in db.messages.list(None, 10)] == ["1", "2", "4", "3"]


def test_a_member_rolled_back_in_its_savepoint_leaves_no_trace_in_the_order(
    db: Database,
) -> None:
    # The conversation's order state is also encoded at the commit: what a
    # rolled-back member saw (text 4, so text 3 would be missing) is not kept.
    bob, alice_device, (first, second, _, fourth) = _first_contact(db, "1", "2", "3", "4")
    assert isinstance(bob.receive(first, now=T0)[0], MessageReceived)
    peer = str(alice_device.identity)

    def receive_then_fail() -> None:
        assert isinstance(bob.receive(fourth, now=T0)[0], MessageReceived)
        assert bob.order.missing(peer) == 1
        raise _Failed

    _grouped(db, lambda: bob.receive(second, now=T0), receive_then_fail)
    assert bob.order.missing(peer) == 0
    again = MessagingEngine(bob.keys, EngineStore(db), namespace="msg.bob")
    assert again.order.missing(peer) == 0


def test_a_restart_after_a_commit_that_never_happened_reuses_no_message_key(
    tmp_path: Path,
) -> None:
    # The sender's ratchet state commits with the envelopes it encrypted, in the
    # same transaction: after a crash (a group that never commits, then a new
    # engine on the reopened database) no message key is used twice, and what
    # the peer got opens.
    path = tmp_path / "node.db"
    db = open_database(path, passphrase=b"correct horse")
    _, bob_card, bob_keys = _person("bob")
    _, alice_card, alice_keys = _person("alice")
    bob = MessagingEngine(bob_keys, EngineStore(db), namespace="msg.bob")
    alice_store = MemoryMessageStore()
    alice = MessagingEngine(alice_keys, alice_store)
    upload = bob.prekey_upload(held=None, now=T0)
    assert upload is not None
    bob_device, alice_device = DeviceAddress.primary(bob_card), DeviceAddress.primary(alice_card)
    alice.send(Content.text_message("hello", now_ms=1), [bob_device], now=T0)
    alice.bundle_received(bob_device, upload.one_time[0][1], now=T0)
    (envelope,) = [entry.envelope for entry in alice_store.due(T0, 10)]
    assert isinstance(bob.receive(envelope, now=T0)[0], MessageReceived)

    def send(text: str) -> object:
        return bob.send(Content.text_message(text, now_ms=2), [alice_device], now=T0)

    _grouped(db, lambda: send("a"), lambda: send("b"))

    class Crash(BaseException):
        pass

    def never_committed() -> None:
        with db.transaction():
            _grouped(db, lambda: send("c"), lambda: send("d"))
            raise Crash  # the process dies before this transaction commits

    with pytest.raises(Crash):
        never_committed()
    db.close()

    db = open_database(path, passphrase=b"correct horse")
    try:
        restarted = MessagingEngine(bob_keys, EngineStore(db), namespace="msg.bob")
        restarted.send(Content.text_message("e", now_ms=3), [alice_device], now=T0)
        envelopes = [item.envelope for item in db.outbox.due(T0, 10)]
    finally:
        db.close()
    got = [e for raw in envelopes for e in alice.receive(raw, now=T0)]
    assert [type(e) for e in got] == [MessageReceived] * 3
    assert [e.content.text for e in got if isinstance(e, MessageReceived)] == ["a", "b", "e"]
