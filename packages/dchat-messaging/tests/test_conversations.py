"""Conversation features between two user agents, driven without a network.

Replies, forwards, edits, deletes, reactions, delivery and read receipts, and
hostile controls (malformed, oversized, of others' texts, of unknown texts):
each refused with a typed error and counted, nothing else in its batch lost.
Disappearing messages (at the end): the ``conv.timer`` control, hostile
values refused, the timer reaching both users and our other devices (the
greatest version wins), texts counted from reading (theirs) or from the
peer's read receipt (ours), and the expiry deleting each text with its note
and attachment record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MessageId, canonical_encode
from dchat_messaging import (
    Attachment,
    Content,
    ConversationError,
    MessageReceived,
    RequestError,
    UserMessaging,
)
from dchat_messaging._search import snippet
from dchat_messaging._user import RECEIPT_EVERY
from dchat_messaging.lowlevel import (
    CONVERSATION_KINDS,
    MAX_RECEIPT_IDS,
    MAX_TIMER,
    MAX_TIMER_VERSION,
    TIMER_KIND,
    AttachmentBook,
    AttachmentEntry,
    Edit,
    Reaction,
    Receipt,
    Timer,
    decode_conversation,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_storage import Database, EngineStore, open_database
from dchat_storage.lowlevel import StorageKey
from dchat_testing import AGENT_T0, AgentNode, agent_pair, deliver_mail

T0 = AGENT_T0
DAY = 86400.0
Node = AgentNode
deliver = deliver_mail


@pytest.fixture
def pair() -> tuple[Node, Node]:
    return agent_pair()


def test_texts_are_marked_delivered_then_read(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    ids = [alice.send("bob", f"m{i}") for i in range(3)]
    deliver(alice, bob)
    assert alice.row(ids[0])["delivered"] is False
    updates = deliver(bob, alice)  # one delivery receipt for the batch
    assert [(u.kind, u.detail) for u in updates] == [("receipt", {"read": False})]  # type: ignore[attr-defined]
    assert [alice.row(i)["delivered"] for i in ids] == [True] * 3
    assert [alice.row(i)["read"] for i in ids] == [False] * 3
    read, _ = bob.agent.converse.read("alice", now=T0 + 5)
    assert sorted(map(bytes, read)) == sorted(map(bytes, ids))
    assert [bob.row(i)["read"] for i in ids] == [True] * 3
    deliver(bob, alice)
    assert [alice.row(i)["read"] for i in ids] == [True] * 3
    logged = [(kind, data["read"]) for kind, data, _ in alice.store.events]
    assert logged == [("receipt", False), ("receipt", True)]  # for the event stream
    assert bob.agent.converse.read("alice", now=T0 + 6)[0] == []  # nothing unread: no receipt
    assert bob.outgoing() == []


def test_with_read_receipts_off_no_read_receipt_is_sent(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    mid = alice.send("bob", "hello")
    deliver(alice, bob)
    deliver(bob, alice)
    bob.agent.conversations.set_settings(read_receipts=False)
    read, _ = bob.agent.converse.read("alice", now=T0 + 5)
    assert read == [mid]
    assert bob.row(mid)["read"] is True
    assert [box for box, _ in bob.outgoing() if box in alice.mailboxes()] == []
    assert alice.row(mid) == {**alice.row(mid), "delivered": True, "read": False}


def test_a_reply_and_a_forward_carry_their_marks(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    first = alice.send("bob", "lunch?")
    deliver(alice, bob)
    reply, _ = bob.agent.converse.reply("alice", first, "yes", now=T0)
    deliver(bob, alice)
    assert alice.row(reply)["reply_to"] == str(first) == bob.row(reply)["reply_to"]
    forwarded, _ = alice.agent.converse.forward(reply, "bob", now=T0)
    deliver(alice, bob)
    assert bob.row(forwarded)["forwarded"] is True
    assert bob.row(forwarded)["text"] == "yes"
    with pytest.raises(RequestError) as unknown:
        bob.agent.converse.reply("alice", MessageId.random(), "?", now=T0)
    assert unknown.value.code == "unknown_message"


def test_only_the_author_edits_and_the_history_is_kept(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    mid = alice.send("bob", "helo")
    deliver(alice, bob)
    alice.agent.converse.edit("bob", mid, "hello", now=T0 + 1)
    alice.agent.converse.edit("bob", mid, "hello!", now=T0 + 2)
    deliver(alice, bob)
    for node in (alice, bob):
        row = node.row(mid)
        assert (row["text"], row["edited"]) == ("hello!", True)
        assert row["history"] == ["helo", "hello", "hello!"]
    with pytest.raises(RequestError) as refused:
        bob.agent.converse.edit("alice", mid, "bob's words", now=T0)
    assert refused.value.code == "not_author"
    # A hostile bob sends the edit anyway: alice refuses it, nothing changes.
    hostile = Content.control("conv.edit", Edit(mid, "forged").encode(), now_ms=0)
    bob.agent.send_as(bob.agent.contacts.find("alice"), hostile, now=T0)
    deliver(bob, alice)
    assert alice.row(mid)["text"] == "hello!"
    assert alice.agent.stats.refusals["ConversationError.not_author"] == 1


def test_delete_for_everyone_removes_the_text_on_both_sides(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    keep, gone = alice.send("bob", "keep"), alice.send("bob", "oops")
    deliver(alice, bob)
    alice.agent.converse.delete_for_everyone("bob", gone, now=T0)
    deliver(alice, bob)
    for node in (alice, bob):
        assert node.store.get_message(bytes(gone)) is None
        assert node.store.get_message(bytes(keep)) is not None
    with pytest.raises(RequestError):
        bob.agent.converse.delete_for_everyone("alice", keep, now=T0)  # not bob's


def test_reactions_are_one_per_person_and_emoji_and_removable(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    mid = alice.send("bob", "news")
    deliver(alice, bob)
    bob.agent.converse.react("alice", mid, "👍", on=True, now=T0)
    bob.agent.converse.react("alice", mid, "👍", on=True, now=T0)
    alice.agent.converse.react("bob", mid, "🎉", on=True, now=T0)
    deliver(bob, alice)
    deliver(alice, bob)
    expected = {str(bob.identity.identity_id): ["👍"], str(alice.identity.identity_id): ["🎉"]}
    assert alice.row(mid)["reactions"] == expected == bob.row(mid)["reactions"]
    bob.agent.converse.react("alice", mid, "👍", on=False, now=T0)
    deliver(bob, alice)
    assert alice.row(mid)["reactions"] == {str(alice.identity.identity_id): ["🎉"]}


def test_controls_of_unknown_texts_are_refused_and_nothing_in_the_batch_is_lost(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    card = bob.agent.contacts.find("alice")
    stray = Reaction(MessageId.random(), "👍", on=True).encode()
    bob.agent.send_as(card, Content.control("conv.react", stray, now_ms=0), now=T0)
    bad = Content.control("conv.receipt", canonical_encode({"k": "x", "ids": []}), now_ms=0)
    bob.agent.send_as(card, bad, now=T0)
    after = bob.send("alice", "still here")
    deliver(bob, alice)
    assert alice.store.get_message(bytes(after)) is not None
    refusals = alice.agent.stats.refusals
    assert refusals["ConversationError.unknown_message"] == 1
    assert refusals["ConversationError.malformed"] == 1


def test_receipts_never_read_the_texts_they_name(pair: tuple[Node, Node]) -> None:
    """A receipt needs each id's direction and peer only: the stored text is not read."""
    alice, bob = pair
    ids = [alice.send("bob", f"m{i}") for i in range(3)]
    deliver(alice, bob)

    def no_reading(message_id: bytes) -> None:
        raise AssertionError("a receipt read a whole message")

    alice.store.get_message = no_reading  # type: ignore[method-assign]
    deliver(bob, alice)
    assert [bool(alice.agent.conversations.note(bytes(i))) for i in ids] == [True] * 3
    bob.agent.converse.read("alice", now=T0 + 5)
    deliver(bob, alice)
    notes = [alice.agent.conversations.note(bytes(i)) for i in ids]
    assert [n is not None and n.read_ms is not None for n in notes] == [True] * 3


def test_a_receipt_for_someone_elses_texts_changes_nothing(pair: tuple[Node, Node]) -> None:
    alice, _bob = pair
    carol = Node("carol", alice.bundles)
    alice.agent.contacts.add("carol", carol.card.to_text(), now=T0)
    carol.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    mid = alice.send("bob", "for bob only")
    receipt = Content.control("conv.receipt", Receipt(True, (mid,)).encode(), now_ms=0)
    carol.agent.send_as(carol.agent.contacts.find("alice"), receipt, now=T0)
    deliver(carol, alice)
    assert alice.row(mid)["read"] is False


def test_a_stranger_gets_no_delivery_receipt(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    carol = Node("carol", alice.bundles)
    carol.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    carol.send("alice", "hi, we have not met")
    mailbox = bytes(alice.card.mailbox)
    envelopes = [env for box, env in carol.outgoing() if box == mailbox]
    accepted = alice.agent.accept_many(alice.engine, envelopes, now=T0)
    assert len(accepted.texts) == 1
    assert accepted.waiting is None


def test_typing_indicators_are_off_unless_turned_on(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    assert alice.agent.converse.typing("bob", True, now=T0)[0] is False
    alice.agent.conversations.set_settings(typing=True)
    bob.agent.conversations.set_settings(typing=True)
    assert alice.agent.converse.typing("bob", True, now=T0)[0] is True
    assert [u.kind for u in deliver(alice, bob)] == ["typing"]  # type: ignore[attr-defined]


def test_an_oversized_receipt_is_malformed() -> None:
    ids = [bytes(MessageId.random()) for _ in range(MAX_RECEIPT_IDS + 1)]
    with pytest.raises(ConversationError) as too_many:
        decode_conversation("conv.receipt", canonical_encode({"k": "d", "ids": ids}))
    assert too_many.value.code == "malformed"
    receipts = UserMessaging(MemoryMessageStore()).conversations.receipts(
        [MessageId.random() for _ in range(MAX_RECEIPT_IDS + 1)], read=False, now=T0
    )
    assert len(receipts) == 2  # more ids go in more receipts


@given(st.sampled_from(sorted(CONVERSATION_KINDS)), st.binary(max_size=600))
def test_hostile_control_payloads_decode_or_raise_a_typed_error(kind: str, data: bytes) -> None:
    try:
        decode_conversation(kind, data)
    except ConversationError as exc:
        code = exc.code
    else:
        code = "decoded"
    assert code in {"malformed", "decoded"}


@given(
    st.sampled_from(sorted(CONVERSATION_KINDS)),
    st.dictionaries(
        st.sampled_from(["k", "ids", "id", "text", "e", "on", "s", "x"]),
        st.one_of(
            st.integers(-2, 3),
            st.text(max_size=40),
            st.binary(max_size=20),
            st.lists(st.binary(min_size=16, max_size=16), max_size=3),
        ),
        max_size=4,
    ),
)
def test_hostile_control_maps_decode_or_raise_a_typed_error(
    kind: str, value: dict[str, object]
) -> None:
    try:
        decoded = decode_conversation(kind, canonical_encode(value))
    except ConversationError as exc:
        assert_malformed(exc)
    else:
        assert decode_conversation(kind, decoded.encode()) == decoded  # round trip


def assert_malformed(exc: ConversationError) -> None:
    assert exc.code == "malformed"


def test_a_received_control_is_applied_once_per_message(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    mid = alice.send("bob", "x")
    deliver(alice, bob)
    content = Content.control("conv.react", Reaction(mid, "👀", on=True).encode(), now_ms=0)
    message = MessageReceived(content, alice.identity.identity_id, b"", new=True)
    update = bob.agent.conversations.apply(message, now=T0)
    assert update is not None
    assert update.kind == "reaction"
    assert bob.agent.conversations.apply(message, now=T0) is not None  # idempotent
    assert bob.row(mid)["reactions"] == {str(alice.identity.identity_id): ["👀"]}


@given(st.binary(min_size=16, max_size=16), st.booleans())
def test_replies_and_forwards_round_trip_in_content(target: bytes, forwarded: bool) -> None:
    content = Content(MessageId(target), 5, "text", "t", reply_to=MessageId(target))
    content = Content(**{**_fields(content), "forwarded": forwarded})
    assert Content.from_padded(content.to_padded()) == content


def _fields(content: Content) -> dict[str, object]:
    return {name: getattr(content, name) for name in Content.__slots__}


def test_delivery_receipts_to_one_sender_come_at_most_once_a_second(
    pair: tuple[Node, Node],
) -> None:
    """The first batch is answered at once; later ones within RECEIPT_EVERY wait and go
    together in one receipt when it is over (a receipt per text ping-pongs the ratchet)."""
    alice, bob = pair

    def to_bob_at(at: float, text: str, *, wake: bool = True) -> MessageId:
        mid = alice.send("bob", text)
        mine = [env for box, env in alice.outgoing() if box in bob.mailboxes()]
        accepted = bob.agent.accept_many(bob.engine, mine, now=at)
        # The shell is told to look at the receipts when one went out or a due
        # time began; a text joining receipts already held leaves that time as it was.
        assert (accepted.waiting is not None) is wake
        return mid

    def receipts_to_alice() -> list[object]:
        mine = [env for box, env in bob.outgoing() if box in alice.mailboxes()]
        return list(alice.agent.accept_many(alice.engine, mine, now=T0 + 9).updates)

    first = to_bob_at(T0 + 1.0, "one")
    assert len(receipts_to_alice()) == 1  # answered at once
    assert alice.row(first)["delivered"] is True
    later = [to_bob_at(T0 + 1.2, "two"), to_bob_at(T0 + 1.5, "three", wake=False)]
    assert bob.agent.receipts_due_at() == T0 + 1.0 + RECEIPT_EVERY
    assert receipts_to_alice() == []  # held
    assert bob.agent.flush_receipts(now=T0 + 1.9) == []
    assert receipts_to_alice() == []  # not due yet
    bob.agent.flush_receipts(now=T0 + 2.0)
    assert bob.agent.receipts_due_at() is None
    (update,) = receipts_to_alice()  # one receipt for both
    assert [alice.row(m)["delivered"] for m in later] == [True, True]
    assert update.kind == "receipt"  # type: ignore[attr-defined]


# -- disappearing messages ----------------------------------------------------------


def _ids(node: Node) -> set[bytes]:
    return set(node.store.messages)


def test_a_timer_round_trips_and_off_is_zero() -> None:
    for seconds in (0, 1, 3600, MAX_TIMER):
        for version in (1, 7, MAX_TIMER_VERSION):
            timer = Timer(seconds, version)
            assert decode_conversation(TIMER_KIND, timer.encode()) == timer


@pytest.mark.parametrize(
    "value",
    [
        {"s": -1, "n": 1},
        {"s": MAX_TIMER + 1, "n": 1},
        {"s": 2**64 - 1, "n": 1},
        {"s": -(2**63), "n": 1},
        {"s": "3600", "n": 1},
        {"s": True, "n": 1},
        {"s": None, "n": 1},
        {"s": [60], "n": 1},
        {"s": 60, "n": 0},
        {"s": 60, "n": -1},
        {"s": 60, "n": MAX_TIMER_VERSION + 1},
        {"s": 60, "n": "1"},
        {"s": 60},
        {"n": 1},
        {},
        {"s": 60, "n": 1, "x": 1},
    ],
)
def test_hostile_timers_are_malformed(value: dict[str, object]) -> None:
    with pytest.raises(ConversationError) as refused:
        decode_conversation(TIMER_KIND, canonical_encode(value))
    assert refused.value.code == "malformed"


@pytest.mark.parametrize(
    "data",
    [
        b"\xa2\x61n\x01\x61s\xc2\x49\x01" + bytes(8),  # {"n": 1, "s": 2**64} (a bignum)
        b"\xa2\x61n\x01\x61s\xf9\x3e\x00",  # {"n": 1, "s": 1.5}
        b"\xa2\x61n\x01\x61s\xfb" + bytes(8),  # {"n": 1, "s": 0.0}
        b"\xa2\x61n\x01\x61s",  # truncated
        b"",
    ],
)
def test_non_integer_and_truncated_timers_are_malformed(data: bytes) -> None:
    with pytest.raises(ConversationError) as refused:
        decode_conversation(TIMER_KIND, data)
    assert refused.value.code == "malformed"


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_any_integer_is_a_timer_or_malformed(seconds: int) -> None:
    data = canonical_encode({"s": seconds, "n": 1})
    if 0 <= seconds <= MAX_TIMER:
        assert decode_conversation(TIMER_KIND, data) == Timer(seconds, 1)
        return
    with pytest.raises(ConversationError) as refused:
        decode_conversation(TIMER_KIND, data)
    assert refused.value.code == "malformed"


def test_our_user_cannot_set_a_bad_timer(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    for bad in (-1, MAX_TIMER + 1):
        with pytest.raises(RequestError) as refused:
            alice.agent.converse.disappear("bob", bad, now=T0)
        assert refused.value.code == "invalid_request"
    assert alice.agent.conversations.timers.timer(str(bob.identity.identity_id)) is None
    assert alice.outgoing() == []  # nothing was sent


def test_the_timer_reaches_the_peer_and_texts_count_from_reading(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice.agent.converse.disappear("bob", 60, now=T0)
    alice_id, bob_id = str(alice.identity.identity_id), str(bob.identity.identity_id)
    assert alice.agent.conversations.timers.timer(bob_id) == 60
    updates = deliver(alice, bob)
    assert [(u.kind, u.detail) for u in updates] == [("timer", {"seconds": 60})]  # type: ignore[attr-defined]
    assert ("timer", alice_id) in [(k, d["by"]) for k, d, _ in bob.store.events]
    assert bob.agent.conversations.timers.timer(alice_id) == 60

    mid = alice.send("bob", "self-destructs")
    deliver(alice, bob)
    assert alice.row(mid)["expires_at"] == T0 + DAY  # ours: held until bob's read receipt
    assert bob.row(mid)["expires_at"] is None  # unread: not counting yet
    assert bob.agent.conversations.timers.expire(T0 + 10_000) == []
    bob.agent.converse.read("alice", now=T0 + 100)
    assert bob.row(mid)["expires_at"] == T0 + 160
    deliver(bob, alice)  # the delivery and read receipts (stamped T0 + 1 by the harness)
    assert alice.row(mid)["expires_at"] == T0 + 61

    assert bob.agent.conversations.timers.expire(T0 + 159) == []
    gone = bob.agent.conversations.timers.expire(T0 + 160)
    assert [g.message_id for g in gone] == [bytes(mid)]
    assert bytes(mid) not in _ids(bob)
    assert ("expired", {"peer": alice_id, "ids": [str(mid)]}) in [
        (k, d) for k, d, _ in bob.store.events
    ]
    assert [g.message_id for g in alice.agent.conversations.timers.expire(T0 + 61)] == [bytes(mid)]
    assert bytes(mid) not in _ids(alice)


def test_without_a_read_receipt_our_copy_goes_a_day_after_sending(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice.agent.converse.disappear("bob", 60, now=T0)
    deliver(alice, bob)
    bob.agent.conversations.set_settings(read_receipts=False)
    mid = alice.send("bob", "read in silence")
    deliver(alice, bob)
    bob.agent.converse.read("alice", now=T0 + 5)
    deliver(bob, alice)
    assert alice.row(mid)["read"] is False
    assert alice.agent.conversations.timers.expire(T0 + DAY - 1) == []
    assert [g.message_id for g in alice.agent.conversations.timers.expire(T0 + DAY)] == [bytes(mid)]


def test_expiry_takes_the_note_and_the_attachment_record(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice.agent.converse.disappear("bob", 5, now=T0)
    deliver(alice, bob)
    mid = alice.send("bob", "with a note")
    alice.agent.converse.edit("bob", mid, "edited", now=T0)
    book = AttachmentBook(alice.store)
    entry = AttachmentEntry(Attachment.location(1.0, 2.0), "stored", "", b"")
    book.put(bytes(mid), entry)
    assert alice.agent.conversations.note(bytes(mid)) is not None
    (gone,) = alice.agent.conversations.timers.expire(T0 + DAY)
    assert (gone.direction, gone.attachment) == ("out", entry)
    assert alice.agent.conversations.note(bytes(mid)) is None
    assert book.get(bytes(mid)) is None


def test_every_way_a_message_goes_takes_its_note_and_attachment_record(
    pair: tuple[Node, Node],
) -> None:
    """Deleted for everyone or with the contact's history: nothing stays beside the message."""
    alice, bob = pair
    location = AttachmentEntry(Attachment.location(1.0, 2.0), "stored", "", b"")
    for node in (alice, bob):
        AttachmentBook(node.store).put(b"\x00" * 16, location)  # someone else's: kept
    gone, wiped = alice.send("bob", "oops"), alice.send("bob", "history")
    deliver(alice, bob)
    for node, peer in ((alice, "bob"), (bob, "alice")):
        for mid in (gone, wiped):
            AttachmentBook(node.store).put(bytes(mid), location)
        node.agent.converse.react(peer, wiped, "👍", on=True, now=T0)
    alice.agent.converse.delete_for_everyone("bob", gone, now=T0)
    deliver(alice, bob)
    assert bob.agent.contacts.delete_messages(str(alice.identity.identity_id)) == 1
    for node in (alice, bob):
        book = AttachmentBook(node.store)
        assert book.get(bytes(gone)) is None
        assert book.get(b"\x00" * 16) == location
    assert AttachmentBook(alice.store).get(bytes(wiped)) == location  # alice kept hers
    assert bob.agent.conversations.note(bytes(wiped)) is None
    assert AttachmentBook(bob.store).get(bytes(wiped)) is None


def test_turning_it_off_stops_new_counts_but_not_running_ones(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice.agent.converse.disappear("bob", 30, now=T0)
    first = alice.send("bob", "counted")
    alice.agent.converse.disappear("bob", 0, now=T0 + 1)
    second = alice.send("bob", "kept")
    assert alice.row(first)["expires_at"] == T0 + DAY
    assert alice.row(second)["expires_at"] is None
    deliver(alice, bob)
    assert bob.agent.conversations.timers.timer(str(alice.identity.identity_id)) is None


def test_a_sent_copy_sets_the_timer_on_our_other_device(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    laptop = Node("alice-laptop", {})  # another device of alice: it applies her sent copies
    content = alice.agent.conversations.timers.set(
        str(bob.identity.identity_id), 120, by=str(alice.identity.identity_id), now=T0
    )
    copy = replace(content, peer=bob.identity.identity_id)
    message = MessageReceived(copy, alice.identity.identity_id, b"", new=True)
    update = laptop.agent.conversations.apply(message, now=T0 + 1)
    assert update is not None
    assert (update.kind, update.peer) == ("timer", str(bob.identity.identity_id))
    assert laptop.agent.conversations.timers.timer(str(bob.identity.identity_id)) == 120
    laptop.store.add_message(b"m" * 16, "out", str(bob.identity.identity_id), "x", T0, T0 + 2)
    assert laptop.store.messages[b"m" * 16].expires_at == T0 + 2 + DAY
    assert laptop.store.start_timer(b"m" * 16, T0 + 10)  # bob's read receipt reached it too
    assert laptop.store.messages[b"m" * 16].expires_at == T0 + 130


def test_concurrent_changes_settle_alike_on_both_sides(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice_id, bob_id = str(alice.identity.identity_id), str(bob.identity.identity_id)
    alice.agent.converse.disappear("bob", 60, now=T0 + 50)  # both at version 1, crossing:
    bob.agent.converse.disappear("alice", 3600, now=T0)  # the greater identity id wins
    deliver(alice, bob)
    deliver(bob, alice)
    winner = 60 if alice_id > bob_id else 3600
    assert alice.agent.conversations.timers.timer(bob_id) == winner
    assert bob.agent.conversations.timers.timer(alice_id) == winner


def test_a_change_made_after_seeing_another_wins_whatever_the_clocks(
    pair: tuple[Node, Node],
) -> None:
    alice, bob = pair
    bob.agent.converse.disappear("alice", 3600, now=T0 + 50)  # bob's clock is ahead
    deliver(bob, alice)
    alice.agent.converse.disappear("bob", 60, now=T0 + 2)  # later, by a clock that is behind
    deliver(alice, bob)
    assert alice.agent.conversations.timers.timer(str(bob.identity.identity_id)) == 60
    assert bob.agent.conversations.timers.timer(str(alice.identity.identity_id)) == 60


def test_a_version_far_ahead_is_refused_and_an_old_one_ignored(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    alice_id = str(alice.identity.identity_id)

    def timer(seconds: int, version: int) -> object:
        data = Timer(seconds, version).encode()
        content = Content.control(TIMER_KIND, data, now_ms=int(T0 * 1000))
        message = MessageReceived(content, alice.identity.identity_id, b"", new=True)
        return bob.agent.conversations.apply(message, now=T0)

    with pytest.raises(ConversationError) as ahead:  # would pin the timer against bob's changes
        timer(60, MAX_TIMER_VERSION)
    assert ahead.value.code == "malformed"
    assert timer(60, 5) is not None
    assert timer(30, 4) is None  # an older change arriving late
    assert bob.agent.conversations.timers.timer(alice_id) == 60
    bob.agent.converse.disappear("alice", 0, now=T0)  # bob's next change is version 6
    assert bob.agent.conversations.timers.timer(alice_id) is None
    alice_wins = alice_id > str(bob.identity.identity_id)  # a tie at version 6: by identity
    assert (timer(90, 6) is not None) is alice_wins
    assert bob.agent.conversations.timers.timer(alice_id) == (90 if alice_wins else None)


def test_a_damaged_attachment_record_does_not_stop_the_expiry(pair: tuple[Node, Node]) -> None:
    alice, _ = pair
    alice.agent.converse.disappear("bob", 5, now=T0)
    mid = alice.send("bob", "x")
    alice.store.put_state("user.att." + bytes(mid).hex(), b"\xff not a record")
    (gone,) = alice.agent.conversations.timers.expire(T0 + DAY)
    assert (gone.message_id, gone.attachment) == (bytes(mid), None)
    assert alice.store.get_state("user.att." + bytes(mid).hex()) is None


# -- search ---------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Node, Node, Database, Database]]:
    """alice and bob over sealed node databases (the real search index)."""
    dbs = [open_database(tmp_path / f"{n}.sqlite3", key=StorageKey.generate()) for n in "ab"]
    alice, bob = agent_pair((EngineStore(dbs[0]), EngineStore(dbs[1])))
    yield alice, bob, dbs[0], dbs[1]
    for d in dbs:
        d.close()


def _texts(node: Node, query: str, **kwargs: Any) -> list[str]:
    return [hit.text for hit in node.agent.search.search(query, **kwargs)]


def test_search_finds_sent_and_received_texts(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, bob, _, _ = stored
    alice.send("bob", "Shall we meet at the LIGHTHOUSE\n tomorrow at nine?")
    deliver(alice, bob)
    bob.send("alice", "which lighthouse?")
    bob.send("alice", "the blue door")
    hits = bob.agent.search.search("Lighthouse")
    assert [(h.text, h.entry.direction, h.peer_name) for h in hits] == [
        ("which lighthouse?", "out", "alice"),
        ("Shall we meet at the LIGHTHOUSE\n tomorrow at nine?", "in", "alice"),
    ]
    first = hits[1]
    assert first.snippet == "Shall we meet at the LIGHTHOUSE tomorrow at nine?"
    assert first.snippet[first.match[0] : first.match[1]] == "LIGHTHOUSE"
    assert _texts(bob, "lighthouse nine") == [first.text]
    assert _texts(bob, "lighthouse", peer="alice", limit=1) == ["which lighthouse?"]
    assert _texts(bob, "lighthouse", before=hits[0].entry.cursor) == [first.text]
    assert _texts(bob, "purple") == []


def test_an_edit_moves_the_text_in_the_index_on_both_sides(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, bob, _, _ = stored
    mid = alice.send("bob", "see you at helo point")
    deliver(alice, bob)
    for node in (alice, bob):  # the index is built before the edit
        assert _texts(node, "helo") == ["see you at helo point"]
    alice.agent.converse.edit("bob", mid, "see you at the harbour", now=T0 + 1)
    deliver(alice, bob)
    for node in (alice, bob):
        assert _texts(node, "helo") == []
        assert _texts(node, "harbour") == ["see you at the harbour"]


def test_delete_for_everyone_drops_the_index_rows_on_both_sides(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, bob, alice_db, bob_db = stored
    keep, gone = alice.send("bob", "keep this"), alice.send("bob", "forget these words")
    deliver(alice, bob)
    assert alice_db.search.count() == bob_db.search.count() == 5
    alice.agent.converse.delete_for_everyone("bob", gone, now=T0)
    deliver(alice, bob)
    assert alice_db.search.count() == bob_db.search.count() == 2
    for node in (alice, bob):
        assert _texts(node, "words") == []
        assert node.store.get_message(bytes(keep)) is not None


def test_the_real_text_decides_so_a_stale_index_gives_no_false_match(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, _, alice_db, _ = stored
    mid = alice.send("bob", "apples")
    assert _texts(alice, "apples") == ["apples"]  # builds the index
    alice_db.search.reindex(bytes(mid), "bananas")  # the index now lies about the text
    assert alice_db.search.candidates("bananas") != []
    assert _texts(alice, "bananas") == []


def test_a_page_ending_on_a_stale_candidate_still_leads_to_older_matches(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, _, alice_db, _ = stored
    older = alice.send("bob", "bananas")
    stale = alice.send("bob", "apples")
    alice.send("bob", "bananas")
    assert _texts(alice, "apples") == ["apples"]  # builds the index
    alice_db.search.reindex(bytes(stale), "bananas")
    newest, after = alice.agent.search.page("bananas", limit=2)
    assert [h.text for h in newest] == ["bananas"]
    assert after is not None
    rest, end = alice.agent.search.page("bananas", limit=2, before=after)
    assert [h.entry.message_id for h in rest] == [bytes(older)]
    assert end is None


def test_the_first_search_builds_the_index_with_the_latest_edits(
    stored: tuple[Node, Node, Database, Database],
) -> None:
    alice, _, alice_db, _ = stored
    mid = alice.send("bob", "draft words")
    alice.agent.converse.edit("bob", mid, "final words", now=T0 + 1)
    alice_db.search.forget(bytes(mid))  # as if stored before the index existed
    assert alice_db.search.ready is False
    assert _texts(alice, "final") == ["final words"]
    assert alice_db.search.ready is True
    assert alice.agent.search.rebuild() == 1


@pytest.mark.parametrize(
    ("query", "kwargs"),
    [
        ("", {}),
        ("?! -- ...", {}),
        ("x" * 5000, {}),
        (" ".join(f"w{i}" for i in range(10_000)), {}),
        ("ok", {"limit": 0}),
        ("ok", {"limit": 10_000}),
        ("ok", {"before": -1}),
    ],
    ids=["empty", "punctuation", "huge", "10000-terms", "limit-0", "limit-huge", "cursor"],
)
def test_hostile_searches_are_refused_with_a_typed_error(
    stored: tuple[Node, Node, Database, Database], query: str, kwargs: dict[str, Any]
) -> None:
    alice, _, _, _ = stored
    alice.send("bob", "ok")
    with pytest.raises(RequestError) as refused:
        alice.agent.search.search(query, **kwargs)
    assert refused.value.code == "invalid_request"
    with pytest.raises(RequestError) as unknown:
        alice.agent.search.search("ok", peer="mallory")
    assert unknown.value.code == "unknown_contact"
    assert _texts(alice, "ok") == ["ok"]  # nothing lost


def test_the_memory_store_search_follows_edits(pair: tuple[Node, Node]) -> None:
    alice, bob = pair
    mid = alice.send("bob", "tea at five")
    deliver(alice, bob)
    alice.agent.converse.edit("bob", mid, "coffee at five", now=T0 + 1)
    deliver(alice, bob)
    for node in (alice, bob):
        assert _texts(node, "tea") == []
        assert _texts(node, "COFFEE five") == ["coffee at five"]


def test_a_snippet_is_cut_around_the_first_match() -> None:
    text = "a" * 100 + " the\tNeedle in  the haystack " + "b" * 100
    cut, (start, end) = snippet(text, ["needle"])
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert cut[start:end] == "Needle"
    assert " the Needle in the haystack " in cut
    assert snippet("no match here", ["x"]) == ("no match here", (0, 0))


@given(st.text(max_size=200), st.text(alphabet="abcXYZé", min_size=1, max_size=10))
def test_the_snippet_marks_a_word_that_matches(text: str, word: str) -> None:
    from dchat_storage.lowlevel import search_terms

    full = f"{text} {word} {text}"
    term = search_terms(word)[0]
    cut, (start, end) = snippet(full, [term])
    assert term in search_terms(cut[start:end])
