"""The messaging engine end to end over an in-memory relay."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from dchat_messaging import Content, MessageReceived, MessagingEngine, Rejected, SessionReset
from dchat_messaging.lowlevel import Duplicate
from dchat_messaging.testing import MemoryMessageStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_testing import EngineDevice as Person
    from dchat_testing import EngineNet as Net

T0 = 1000.0


def _received(events: Sequence[object]) -> list[MessageReceived]:
    return [e for e in events if isinstance(e, MessageReceived)]


def test_first_message_sets_up_a_session_and_replies_use_it(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "hello bob", now=T0)
    events = bob.fetch(now=T0 + 1)
    (got,) = _received(events)
    assert got.text == "hello bob"
    assert got.sender == alice.card.identity_id
    assert got.new
    assert got.sender_card == alice.card  # the first message carries the card
    bob.send([alice.address], "hi alice", now=T0 + 2)
    alice.fetch(now=T0 + 3)
    for i in range(5):
        alice.send([bob.address], f"m{i}", now=T0 + 4 + i)
    bob.fetch(now=T0 + 20)
    assert bob.texts() == ["hello bob", "m0", "m1", "m2", "m3", "m4"]
    assert alice.texts() == ["hi alice"]
    assert alice.texts("out") == ["hello bob", "m0", "m1", "m2", "m3", "m4"]


def test_one_time_prekey_is_consumed_once_and_later_messages_are_ratchet_only(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    held = len(net.relay.one_time[bytes(bob.address.mailbox)])
    alice.send([bob.address], "one", now=T0)
    assert len(net.relay.one_time[bytes(bob.address.mailbox)]) == held - 1
    first = net.relay.recorded[-1]
    bob.fetch(now=T0)
    bob.send([alice.address], "ack", now=T0)
    alice.fetch(now=T0)
    alice.send([bob.address], "two", now=T0)
    second = net.relay.recorded[-1]
    # The init (1120-byte X-Wing ciphertext) rides only until the peer answered.
    assert len(second) < len(first) - 1000


def test_messages_before_the_first_answer_open_in_any_order(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    for i in range(4):
        alice.send([bob.address], f"m{i}", now=T0 + i)
    events = bob.fetch(now=T0 + 10, reverse=True)
    assert sorted(m.text for m in _received(events)) == ["m0", "m1", "m2", "m3"]
    assert not [e for e in events if isinstance(e, Rejected)]


def test_redelivered_envelope_is_a_duplicate_and_not_stored_twice(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "once", now=T0)
    raw = net.relay.mail[bytes(bob.address.mailbox)][0]
    bob.fetch(now=T0)
    alice.send([bob.address], "twice?", now=T0)
    bob.fetch(now=T0)
    events = bob.engine.receive(raw, now=T0 + 5)
    assert events == [Duplicate()]  # a copy (another relay's): counted, not an error
    assert bob.texts() == ["once", "twice?"]


def test_simultaneous_first_messages_converge_on_one_session(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "from alice", now=T0)
    bob.send([alice.address], "from bob", now=T0)
    alice.fetch(now=T0 + 1)
    bob.fetch(now=T0 + 1)
    for i in range(3):
        alice.send([bob.address], f"a{i}", now=T0 + 2 + i)
        bob.send([alice.address], f"b{i}", now=T0 + 2 + i)
        alice.fetch(now=T0 + 2 + i)
        bob.fetch(now=T0 + 2 + i)
    assert bob.texts() == ["from alice", "a0", "a1", "a2"]
    assert alice.texts() == ["from bob", "b0", "b1", "b2"]


def test_sent_copies_reach_the_senders_other_devices(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    alice.send([bob.address], "seen everywhere", now=T0, copies=[laptop.address])
    laptop.fetch(now=T0)
    assert laptop.texts("out") == ["seen everywhere"]
    (row,) = laptop.store.messages.values()
    assert row.peer == str(bob.card.identity_id)


def test_fan_out_to_every_device_of_the_recipient(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    bob_phone = net.linked(bob)
    alice.send([bob.address, bob_phone.address], "to both", now=T0)
    bob.fetch(now=T0)
    bob_phone.fetch(now=T0)
    assert bob.texts() == bob_phone.texts() == ["to both"]


def test_a_device_outside_the_directory_is_refused(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    net.directory.remove(laptop.address)  # revoked
    laptop.send([bob.address], "from a revoked device", now=T0)
    events = bob.fetch(now=T0)
    assert [type(e) for e in events] == [Rejected]
    assert events[0].reason == "UnknownDeviceError"  # type: ignore[union-attr]
    assert bob.texts() == []


def test_blocked_sender_is_decrypted_then_dropped(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    bob.engine.blocked.add(alice.card.identity_id)
    alice.send([bob.address], "let me in", now=T0)
    (event,) = bob.fetch(now=T0)
    assert isinstance(event, MessageReceived)
    assert event.blocked
    assert bob.texts() == []


def test_lost_session_is_renewed_and_the_peer_sees_the_reset(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "before", now=T0)
    bob.fetch(now=T0)
    bob.send([alice.address], "ok", now=T0)
    alice.fetch(now=T0)
    # Bob loses his session state (say a restore from an old backup).
    for key in [k for k in bob.store.state if ".sess." in k]:
        del bob.store.state[key]
    bob.restart()
    alice.send([bob.address], "lost", now=T0 + 1)
    events = bob.fetch(now=T0 + 1)
    assert [type(e) for e in events] == [Rejected]  # unauthenticated: no notice here
    alice_events = alice.fetch(now=T0 + 2)
    assert any(isinstance(e, SessionReset) for e in alice_events)
    alice.send([bob.address], "after", now=T0 + 3)
    bob.fetch(now=T0 + 3)
    assert bob.texts() == ["before", "after"]


def _deliver_control(net: Net, alice: Person, bob: Person) -> None:
    """Alice sends bob a ``doc.push`` control message (setting up the session) and he fetches."""
    content = Content.control("doc.push", b"payload", now_ms=1)
    waiting = alice.engine.send(content, [bob.address], now=T0)
    for device in waiting:
        alice.engine.bundle_received(device, net.relay.take_bundle(bytes(device.mailbox)), now=T0)
    alice.flush()
    bob.fetch(now=T0)


def test_controls_wait_durably_until_done(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    _deliver_control(net, alice, bob)
    (queued,) = bob.engine.pending_controls()
    assert queued.content.kind == "doc.push"
    assert queued.content.data == b"payload"
    assert queued.sender == alice.card.identity_id
    bob.engine.control_done(queued.content.message_id)
    assert bob.engine.pending_controls() == []


def test_the_control_queue_is_known_empty_only_after_reading_it_empty(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    assert bob.engine.controls_maybe_pending  # unknown at start: a crash may have left some
    assert bob.engine.pending_controls() == []
    assert not bob.engine.controls_maybe_pending
    _deliver_control(net, alice, bob)
    assert bob.engine.controls_maybe_pending
    (queued,) = bob.engine.pending_controls()
    bob.engine.control_done(queued.content.message_id)
    assert bob.engine.controls_maybe_pending  # not read since
    assert bob.engine.pending_controls() == []
    assert not bob.engine.controls_maybe_pending
    alice.send([bob.address], "a text", now=T0 + 1)
    bob.fetch(now=T0 + 1)
    assert not bob.engine.controls_maybe_pending  # texts do not touch the queue


def test_a_control_pushed_while_the_queue_is_read_keeps_it_maybe_pending(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    queue = bob.engine._controls
    read = queue._items

    def racing_read() -> list[list[bytes]]:
        items = read()  # the read sees the queue empty...
        queue._items = read  # type: ignore[method-assign]
        queue.push(Content.control("k", b"", now_ms=1), alice.card.identity_id, b"d")  # ...then
        return items

    queue._items = racing_read  # type: ignore[method-assign]
    assert bob.engine.pending_controls() == []
    assert bob.engine.controls_maybe_pending


def test_each_send_is_one_transaction(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "setup", now=T0)
    bob.fetch(now=T0)
    before = alice.store.commits
    alice.engine.send(Content.text_message("x", now_ms=1), [bob.address], now=T0)
    assert alice.store.commits == before + 1


def test_an_unknown_linked_device_is_accepted_when_its_document_vouches(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    document = b"alice's document listing the laptop"
    net.directory.documents[document] = (alice.card.identity_id, frozenset({laptop.keys.device_id}))
    laptop.engine.keys = replace(laptop.engine.keys, document=document)
    net.directory.remove(laptop.address)  # bob has not seen alice's new document yet
    laptop.send([bob.address], "from the laptop", now=T0)
    bob.fetch(now=T0)
    assert bob.texts() == ["from the laptop"]
    assert net.directory.vouched == [(alice.card.identity_id, laptop.keys.device_id)]


def test_a_document_that_does_not_vouch_rolls_everything_back(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    laptop.engine.keys = replace(laptop.engine.keys, document=b"not a document bob accepts")
    net.directory.remove(laptop.address)
    laptop.send([bob.address], "let me in", now=T0)
    before = dict(bob.store.state)
    events = bob.fetch(now=T0)
    assert [type(e) for e in events] == [Rejected]
    assert events[0].reason == "UnknownDeviceError"  # type: ignore[union-attr]
    assert bob.store.state == before  # the one-time prekey was not consumed
    assert bob.texts() == []


def test_prekeys_are_topped_up_below_the_low_water_mark_and_rotated_before_expiry(
    net: Net,
) -> None:
    bob = net.person("bob")
    policy = bob.engine._prekey_policy
    assert bob.engine.prekey_upload(held=policy.target, now=T0) is None
    top_up = bob.engine.prekey_upload(held=policy.low_water - 1, now=T0)
    assert top_up is not None
    assert not top_up.replace
    assert len(top_up.one_time) == policy.target - policy.low_water + 1
    ids = [i for i, _ in top_up.one_time]
    assert len(set(ids)) == len(ids)
    rotation_due = T0 + policy.lifetime - policy.rotate_before
    assert bob.engine.prekey_upload(held=policy.target, now=rotation_due - 1) is None
    rotated = bob.engine.prekey_upload(held=policy.target, now=rotation_due + 1)
    assert rotated is not None
    assert rotated.replace
    assert len(rotated.one_time) == policy.target
    # The relay lost everything: publish a full set again.
    again = bob.engine.prekey_upload(held=None, now=rotation_due + 2)
    assert again is not None
    assert again.replace


def test_a_peer_that_lost_everything_is_answered_on_its_new_session(net: Net) -> None:
    """Bob's own session to Alice is still unanswered when a restored Alice starts anew.

    Whatever the order of their device keys, Bob must answer on Alice's new
    session: the one his old SessionInit needs (Alice's old prekeys) is gone.
    """
    for _ in range(8):  # both orders of the device keys, with high probability
        alice, bob = net.person("alice"), net.person("bob")
        bob.send([alice.address], "are you there?", now=T0)  # never answered
        net.relay.mail.pop(bytes(alice.address.mailbox), None)  # lost with alice's device
        alice.store = MemoryMessageStore()  # restored from her phrase: same keys, no state
        alice.engine = MessagingEngine(alice.keys, alice.store, directory=net.directory)
        alice.publish(now=T0 + 1)
        alice.send([bob.address], "it is me again", now=T0 + 2)
        assert bob.fetch(now=T0 + 3)
        bob.send([alice.address], "welcome back", now=T0 + 4)
        alice.fetch(now=T0 + 5)
        assert alice.texts() == ["welcome back"]


class _Boom(Exception):
    """Fails the transaction a test wraps around an engine call."""


def test_a_receive_rolled_back_by_the_caller_leaves_the_envelope_readable(net: Net) -> None:
    # The engine keeps sessions decoded in memory; a rollback of an enclosing
    # transaction (a group commit that failed) must drop what it changed there,
    # or the ratchet would have used up the message key and the redelivered
    # envelope could never be opened.
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "hello", now=T0)
    bob.fetch(now=T0)
    bob.send([alice.address], "hi", now=T0)
    alice.fetch(now=T0)
    alice.send([bob.address], "once", now=T0 + 1)
    (raw,) = net.relay.mail.pop(bytes(bob.address.mailbox))
    opened: list[str] = []

    def receive_then_fail() -> None:
        with bob.store.transaction():
            opened.extend(e.text for e in _received(bob.engine.receive(raw, now=T0 + 1)))
            raise _Boom

    with pytest.raises(_Boom):
        receive_then_fail()
    assert opened == ["once"]
    assert bob.texts() == ["hello"]
    assert [e.text for e in _received(bob.engine.receive(raw, now=T0 + 2))] == ["once"]


def test_a_send_rolled_back_by_the_caller_leaves_no_gap_in_the_conversation(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "one", now=T0)
    content = Content.text_message("never sent", now_ms=int(T0 * 1000))

    def send_then_fail() -> None:
        with alice.store.transaction():
            alice.engine.send(content, [bob.address], now=T0)
            raise _Boom

    with pytest.raises(_Boom):
        send_then_fail()
    alice.send([bob.address], "two", now=T0 + 1)
    received = _received(bob.fetch(now=T0 + 1))
    assert [(e.text, e.content.seq) for e in received] == [("one", 1), ("two", 2)]
    assert bob.engine.order.missing(str(alice.card.identity_id)) == 0
