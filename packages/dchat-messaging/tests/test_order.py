"""Conversation order: sequence numbers and a Lamport clock inside the sealed content."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MessageId, canonical_encode
from dchat_messaging import Content, EngineStateError, EnvelopeRejectedError
from dchat_messaging.lowlevel import MAX_AHEAD, ConversationOrder
from dchat_messaging.testing import MemoryMessageStore
from dchat_privacy import pad
from dchat_testing import EngineNet

T0 = 2000.0
DEVICE = b"d" * 32


def order(store: MemoryMessageStore | None = None) -> ConversationOrder:
    return ConversationOrder(store or MemoryMessageStore(), lambda *p: ".".join(("t", *p)))


def text(seq: int | None, lamport: int | None) -> Content:
    content = Content.text_message("x", now_ms=1)
    return Content(content.message_id, 1, "text", "x", seq=seq, lamport=lamport)


def test_seq_and_clock_travel_inside_the_content() -> None:
    content = text(3, 7)
    again = Content.from_padded(content.to_padded())
    assert (again.seq, again.lamport) == (3, 7)
    plain = Content.text_message("x", now_ms=1)
    assert Content.from_padded(plain.to_padded()).seq is None  # older peers: no place


@pytest.mark.parametrize(
    "extra",
    [{"seq": 0, "lc": 1}, {"seq": 1}, {"lc": 1}, {"seq": "1", "lc": 1}, {"seq": 1, "lc": -1}],
)
def test_a_malformed_place_is_rejected(extra: dict[str, object]) -> None:
    value = {"v": 1, "mid": bytes(16), "ts": 1, "body": {"t": "text", "text": "x"}, **extra}
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(pad(canonical_encode(value)))


def test_stamps_count_up_and_the_clock_passes_what_was_seen() -> None:
    o = order()
    first, second = o.stamp("bob", text(None, None)), o.stamp("bob", text(None, None))
    assert (first.seq, first.lamport, second.seq, second.lamport) == (1, 1, 2, 2)
    o.observe("bob", DEVICE, text(1, 10))  # bob's clock ran ahead
    third = o.stamp("bob", text(None, None))
    assert (third.seq, third.lamport) == (3, 11)  # a reply sorts after what it answers
    assert o.stamp("carol", text(None, None)).seq == 1  # each conversation its own


def test_gaps_are_counted_until_filled() -> None:
    o = order()
    for seq in (1, 2, 5, 7):
        o.observe("bob", DEVICE, text(seq, seq))
    assert o.missing("bob") == 3  # 3, 4 and 6
    o.observe("bob", DEVICE, text(4, 4))
    o.observe("bob", DEVICE, text(3, 3))
    assert o.missing("bob") == 1
    o.observe("bob", DEVICE, text(6, 6))
    o.observe("bob", DEVICE, text(6, 6))  # a duplicate changes nothing
    assert o.missing("bob") == 0
    o.observe("bob", b"e" * 32, text(2, 9))  # another of bob's devices: its own numbers
    assert o.missing("bob") == 1


@given(st.permutations(list(range(1, 40))), st.integers(min_value=0, max_value=38))
def test_any_arrival_order_ends_with_nothing_missing(arrival: list[int], cut: int) -> None:
    o = order()
    for seq in arrival[:cut]:
        o.observe("bob", DEVICE, text(seq, seq))
    seen = set(arrival[:cut])
    expected = max(seen) - len(seen) if seen else 0
    assert o.missing("bob") == expected
    for seq in arrival[cut:]:
        o.observe("bob", DEVICE, text(seq, seq))
    assert o.missing("bob") == 0


def test_a_device_far_ahead_gives_up_the_oldest_gap() -> None:
    o = order()
    for seq in range(3, MAX_AHEAD + 10):
        o.observe("bob", DEVICE, text(seq, seq))
    assert o.missing("bob") == 0  # 1 and 2 were given up, not remembered forever


def test_a_damaged_order_state_is_an_engine_state_error() -> None:
    store = MemoryMessageStore()
    store.put_state("t.order.bob", b"\xff garbage")
    with pytest.raises(EngineStateError):
        order(store).missing("bob")


def test_a_conversation_is_listed_in_the_order_written_not_the_order_arrived() -> None:
    net = EngineNet(rng=random.Random(5))
    alice, bob = net.person("alice"), net.person("bob")
    for i in range(4):
        alice.send([bob.address], f"a{i}", now=T0 + i)
    mailbox = bytes(bob.address.mailbox)
    first, *rest = net.relay.mail.pop(mailbox)
    net.relay.mail[mailbox] = [first, rest[2]]  # a1 and a2 are late
    bob.fetch(now=T0 + 10)
    peer = str(alice.card.identity_id)
    assert bob.engine.order.missing(peer) == 2
    net.relay.mail[mailbox] = [rest[1], rest[0]]  # they arrive, newest first
    bob.fetch(now=T0 + 11)
    assert bob.engine.order.missing(peer) == 0
    bob.send([alice.address], "b0", now=T0 + 12)
    listed = [m.text for m in bob.store.list_messages(peer, 100)]
    assert listed == ["a0", "a1", "a2", "a3", "b0"]  # by place, the reply last
    assert bob.texts() == ["a0", "a3", "a2", "a1"]  # the order they were stored
    alice.fetch(now=T0 + 13)
    reply = next(m for m in alice.store.messages.values() if m.text == "b0")
    assert reply.order == 5  # one past alice's four


def test_message_ids_stay_unique_and_stamping_keeps_them() -> None:
    o = order()
    mid = MessageId.random()
    content = Content.text_message("x", now_ms=1, message_id=mid)
    assert o.stamp("bob", content).message_id == mid
