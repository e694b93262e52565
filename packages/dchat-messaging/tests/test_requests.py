"""MessageRequests and Notices: strangers' mail, blocking, retired keys, over real engines."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import IdentityId, canonical_encode
from dchat_messaging import (
    Content,
    MessageReceived,
    MessageRequests,
    MessagingEngine,
    Notices,
    RequestError,
)
from dchat_messaging._notices import MAX_NOTICES, NOTICES_KEY
from dchat_messaging._requests import BLOCKED_KEY, REQUESTS_KEY, RETIRED_KEY
from dchat_messaging.lowlevel import ReceiveStats
from dchat_messaging.testing import MemoryMessageStore

if TYPE_CHECKING:
    from dchat_testing import EngineDevice as Device
    from dchat_testing import EngineNet as Net

T0 = 1000.0


def guarded(bob: Device, net: Net) -> MessageRequests:
    """Bob's policy, with his engine dropping whatever it says (as a node wires them)."""
    policy = MessageRequests(bob.store)
    policy.load()
    bob.engine = MessagingEngine(
        bob.keys, bob.store, directory=net.directory, blocked=policy.dropped
    )
    return policy


def deliver(sender: Device, to: Device, text: str, now: float) -> list[MessageReceived]:
    sender.send([to.address], text, now=now)
    return [e for e in to.fetch(now=now) if isinstance(e, MessageReceived)]


def note_all(policy: MessageRequests, events: list[MessageReceived], *, known: bool) -> None:
    for event in events:
        policy.note(event, known=known)


def test_a_stranger_becomes_a_request_with_its_card_and_a_count(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    note_all(policy, deliver(alice, bob, "hi, it is alice", T0), known=False)
    note_all(policy, deliver(alice, bob, "from the conference", T0 + 1), known=False)
    (request,) = policy.listing()
    assert request.identity == alice.card.identity_id
    assert request.messages == 2
    assert request.first_ms == int(T0 * 1000)
    assert request.card == alice.card  # the first message carried it: bob can reply
    assert policy.pending() == {str(alice.card.identity_id)}
    assert bob.texts() == ["hi, it is alice", "from the conference"]  # stored, held back
    assert request.row("from the conference") == {
        "identity_id": str(alice.card.identity_id),
        "name": alice.card.name,
        "messages": 2,
        "first_ms": int(T0 * 1000),
        "preview": "from the conference",
        "can_reply": True,
    }
    assert replace(request, card=None).row(None)["can_reply"] is False


def test_a_contact_a_control_or_a_redelivery_makes_no_request(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    (event,) = deliver(alice, bob, "hello", T0)
    assert not policy.note(event, known=True)
    assert not policy.note(replace(event, new=False), known=False)
    control = replace(event, content=Content.control("x.y", b"", now_ms=1))
    assert not policy.note(control, known=False)
    assert policy.listing() == []


def test_accepting_hands_over_the_card_and_releases_the_held_messages(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    note_all(policy, deliver(alice, bob, "hello", T0), known=False)
    assert policy.card_to_accept(alice.card.identity_id) == alice.card
    assert policy.resolve(alice.card.identity_id)
    assert policy.pending() == set()  # the inbox shows alice's messages now
    assert bob.texts() == ["hello"]
    assert not policy.resolve(alice.card.identity_id)
    with pytest.raises(RequestError) as caught:
        policy.card_to_accept(alice.card.identity_id)
    assert caught.value.code == "not_found"


def test_a_request_without_a_card_cannot_be_accepted(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    (event,) = deliver(alice, bob, "hello", T0)
    policy.note(replace(event, content=replace(event.content, card=None)), known=False)
    with pytest.raises(RequestError) as caught:
        policy.card_to_accept(alice.card.identity_id)
    assert caught.value.code == "no_card"
    assert policy.card(alice.card.identity_id) is None


def test_a_card_naming_someone_else_is_not_kept(net: Net) -> None:
    alice, bob, carol = net.person("alice"), net.person("bob"), net.person("carol")
    policy = guarded(bob, net)
    (event,) = deliver(alice, bob, "hello", T0)
    policy.note(replace(event, content=replace(event.content, card=carol.card)), known=False)
    assert policy.get(alice.card.identity_id).card is None


def test_blocking_drops_later_messages_after_decryption_and_counts_them(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    note_all(policy, deliver(alice, bob, "buy my course", T0), known=False)
    assert policy.block(alice.card.identity_id)  # it had an open request
    assert policy.resolve(alice.card.identity_id)
    alice.send([bob.address], "are you there?", now=T0 + 1)
    events = bob.fetch(now=T0 + 1)
    (dropped,) = events
    assert isinstance(dropped, MessageReceived)
    assert dropped.blocked
    stats = ReceiveStats()
    texts, resets = stats.count(events, policy)
    assert (texts, resets) == ([], [])
    assert stats.refusals == {"BlockedSenderError": 1}
    assert stats.rejected == 1
    assert bob.texts() == ["buy my course"]  # the dropped one was not stored
    assert policy.listing() == []
    assert not policy.note(dropped, known=False)


def test_unblocking_lets_messages_through_again(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    assert not policy.block(alice.card.identity_id)  # blocked before ever writing
    with pytest.raises(RequestError) as caught:
        policy.unblock(bob.card.identity_id)
    assert caught.value.code == "not_found"
    policy.unblock(alice.card.identity_id)
    assert policy.blocked() == []
    note_all(policy, deliver(alice, bob, "last try", T0), known=False)
    assert bob.texts() == ["last try"]
    assert policy.pending() == {str(alice.card.identity_id)}


def test_a_retired_key_stays_refused_when_unblocked_and_is_counted_apart(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    policy = guarded(bob, net)
    old = alice.card.identity_id
    policy.retire(old)
    policy.block(old)
    policy.unblock(old)
    assert old in policy.dropped
    alice.send([bob.address], "signed by my lost key", now=T0)
    stats = ReceiveStats()
    stats.count(bob.fetch(now=T0), policy)
    assert stats.refusals == {"RetiredKeyError": 1}
    assert stats.rejected_retired == 1


def test_the_state_survives_a_restart_in_the_stored_format() -> None:
    store = MemoryMessageStore()
    first = MessageRequests(store)
    alice, carol = IdentityId(b"\x01" * 32), IdentityId(b"\x02" * 32)
    first.block(carol)
    first.retire(alice)
    assert store.state[BLOCKED_KEY] == canonical_encode([bytes(carol)])
    assert store.state[RETIRED_KEY] == canonical_encode([bytes(alice)])
    store.state[REQUESTS_KEY] = canonical_encode({str(alice): {"first": 5, "n": 3, "card": b""}})
    again = MessageRequests(store)
    again.load()
    assert again.blocked() == [carol]
    assert again.dropped == {alice, carol}
    (request,) = again.listing()
    assert (request.identity, request.first_ms, request.messages) == (alice, 5, 3)


def test_a_noted_request_is_written_at_once_and_reloads_with_its_card(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    note_all(guarded(bob, net), deliver(alice, bob, "hello", T0), known=False)
    again = MessageRequests(bob.store)  # bob's node restarted
    again.load()
    (request,) = again.listing()
    assert (request.identity, request.messages, request.card) == (
        alice.card.identity_id,
        1,
        alice.card,
    )


def test_a_stored_card_that_does_not_verify_is_corrupt_state(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    note_all(guarded(bob, net), deliver(alice, bob, "hello", T0), known=False)
    bob.store.state[REQUESTS_KEY] = bob.store.state[REQUESTS_KEY].replace(
        alice.card.identity_key.to_bytes(), bytes(32)
    )
    with pytest.raises(RequestError) as caught:
        MessageRequests(bob.store).load()
    assert caught.value.code == "corrupt_state"


def test_beyond_the_limit_strangers_are_stored_but_not_listed(net: Net) -> None:
    alice, bob, carol = net.person("alice"), net.person("bob"), net.person("carol")
    policy = MessageRequests(bob.store, limit=1)
    note_all(policy, deliver(alice, bob, "first", T0), known=False)
    note_all(policy, deliver(carol, bob, "second", T0), known=False)
    assert policy.pending() == {str(alice.card.identity_id)}
    assert sorted(bob.texts()) == ["first", "second"]


@pytest.mark.parametrize("key", [REQUESTS_KEY, BLOCKED_KEY, RETIRED_KEY])
@given(data=st.binary(max_size=512) | st.builds(canonical_encode, st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["first", "n", "card", "x"]) | st.text(max_size=6), inner, max_size=4
    ),
    max_leaves=12,
)))  # fmt: skip
def test_damaged_stored_state_is_a_typed_error(key: str, data: bytes) -> None:
    store = MemoryMessageStore()
    store.state[key] = data
    policy = MessageRequests(store)
    try:
        policy.load()
    except RequestError as exc:
        code = exc.code
    else:
        code = "loaded"
        for request in policy.listing():  # whatever loaded is well formed
            assert isinstance(request.messages, int)
    assert code in {"corrupt_state", "loaded"}


def test_notices_keep_the_newest_and_survive_damage() -> None:
    store = MemoryMessageStore()
    notices = Notices(store)
    peer = IdentityId(b"\x03" * 32)
    for i in range(MAX_NOTICES + 5):
        notices.add("session_reset", peer, at_ms=i)
    listed = notices.listing()
    assert len(listed) == MAX_NOTICES
    assert listed[0].at_ms == 5
    assert listed[-1].at_ms == MAX_NOTICES + 4
    store.state[NOTICES_KEY] = b"\xff not cbor"
    assert notices.listing() == []
    store.state[NOTICES_KEY] = canonical_encode([["session_reset", b"short", 1], "junk"])
    assert notices.listing() == []
    notices.add("session_reset", peer, at_ms=7)
    assert [(n.kind, n.peer, n.at_ms) for n in notices.listing()] == [("session_reset", peer, 7)]
