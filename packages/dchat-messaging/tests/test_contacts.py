"""ContactBook: a user node's contacts and the messages kept with them, without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import IdentityId, InvalidIdError, canonical_encode
from dchat_identity import ContactCard, Identity, InvalidCardError
from dchat_messaging import RequestError, UserMessaging
from dchat_messaging.testing import MemoryMessageStore

T0 = 1_000_000.0
RELAY = "127.0.0.1:7400"
QUIET = "user.quiet_contacts"  # the stored key is part of a node's data directory


def person(name: str) -> ContactCard:
    return ContactCard.issue(Identity.generate(), name=name, relay=RELAY)


def node(store: MemoryMessageStore | None = None) -> tuple[UserMessaging, ContactCard]:
    """A user node's messaging with its own identity set; returns it and its card."""
    identity = Identity.generate()
    card = ContactCard.issue(identity, name="me", relay=RELAY)
    agent = UserMessaging(MemoryMessageStore() if store is None else store)
    agent.engines.set_main(identity, card)
    return agent, card


def test_a_contact_must_be_a_valid_card_and_not_our_own() -> None:
    agent, own = node()
    bob = person("bob")
    assert agent.contacts.verify(bob.to_text()) == bob
    with pytest.raises(InvalidCardError):
        agent.contacts.add("me", own.to_text(), now=T0)
    with pytest.raises(InvalidCardError):
        agent.contacts.add("x", "dchat-card:not a card", now=T0)
    assert agent.contacts.entries() == []


def test_adding_stores_the_card_and_teaches_the_directory_its_devices() -> None:
    agent, _ = node()
    bob = person("bob")
    entry = agent.contacts.add("bob", bob.to_text(), now=T0)
    assert (entry.name, entry.identity_id) == ("bob", str(bob.identity_id))
    assert agent.directory.devices_of(bob)
    assert agent.contacts.named("bob") == bob
    assert agent.contacts.card_of(bob.identity_id) == bob


def test_a_taken_name_changes_nothing() -> None:
    store = MemoryMessageStore()
    agent, _ = node(store)
    bob, carol = person("bob"), person("carol")
    agent.contacts.add("bob", bob.to_text(), now=T0)
    with pytest.raises(KeyError):  # the store's duplicate error
        agent.contacts.add("bob", carol.to_text(), now=T0, announce=False)
    assert [e.name for e in agent.contacts.entries()] == ["bob"]
    assert QUIET not in store.state  # the quiet list was not written either
    assert not agent.contacts.is_quiet(carol.identity_id)


def test_quiet_contacts_are_remembered_across_a_restart_and_get_no_documents() -> None:
    store = MemoryMessageStore()
    agent, _ = node(store)
    bob, carol = person("bob"), person("carol")
    agent.contacts.add("bob", bob.to_text(), now=T0, announce=False)
    agent.contacts.add("carol", carol.to_text(), now=T0)
    restarted = UserMessaging(store)
    restarted.load()
    assert restarted.contacts.is_quiet(bob.identity_id)
    assert restarted.contacts.is_quiet(str(bob.identity_id))
    assert not restarted.contacts.is_quiet(carol.identity_id)
    assert restarted.directory.devices_of(bob)  # the stored cards teach the directory
    assert restarted.contacts.announced() == [carol]


def test_guardian_business_can_refuse_a_quiet_contact() -> None:
    agent, _ = node()
    bob = person("bob")
    agent.contacts.add("bob", bob.to_text(), now=T0, announce=False)
    assert agent.contacts.named("bob") == bob
    with pytest.raises(RequestError) as refused:
        agent.contacts.named("bob", quiet_ok=False)
    assert refused.value.code == "quiet_contact"


def test_find_takes_a_name_or_the_identity_id_of_anyone_whose_card_we_hold() -> None:
    agent, _ = node()
    bob, stranger, nobody = person("bob"), person("stranger"), person("nobody")
    agent.contacts.add("bob", bob.to_text(), now=T0)
    held = {stranger.identity_id: stranger}  # e.g. a message request's card
    agent.contacts.add_card_source(held.get)
    assert agent.contacts.find("bob") == bob
    assert agent.contacts.find(str(bob.identity_id)) == bob
    assert agent.contacts.find(str(stranger.identity_id)) == stranger
    for unknown in ("alice", str(nobody.identity_id)):
        with pytest.raises(RequestError) as caught:
            agent.contacts.find(unknown)
        assert caught.value.code == "unknown_contact"
    with pytest.raises(RequestError):  # named() is by name only
        agent.contacts.named(str(bob.identity_id))


def test_a_rotated_contact_keeps_its_name_with_the_new_card() -> None:
    agent, _ = node()
    old, new = person("bob"), person("bob")
    agent.contacts.add("bob", old.to_text(), now=T0)
    entry = agent.contacts.replace(old.identity_id, new)
    assert entry is not None
    assert entry.name == "bob"
    assert agent.contacts.named("bob") == new
    assert agent.contacts.card_of(old.identity_id) is None
    assert agent.directory.devices_of(new)
    assert agent.contacts.replace(person("x").identity_id, new) is None


def test_messages_are_listed_with_peer_names_and_deleted_per_peer() -> None:
    store = MemoryMessageStore()
    agent, _ = node(store)
    bob, stranger = person("bob"), person("stranger")
    agent.contacts.add("bob", bob.to_text(), now=T0)
    for i in range(5):
        store.add_message(b"b%d" % i, "in", str(bob.identity_id), f"hi {i}", T0, T0 + i)
        store.add_message(b"s%d" % i, "in", str(stranger.identity_id), "?", T0, T0 + i)
    rows = agent.contacts.messages("bob", 3)
    assert [(m.body, name) for m, name in rows] == [
        ("hi 2", "bob"),
        ("hi 3", "bob"),
        ("hi 4", "bob"),
    ]
    everyone = agent.contacts.messages(None, 100)
    assert {name for _, name in everyone} == {"bob", None}
    by_id = agent.contacts.messages(str(stranger.identity_id), 100)
    assert len(by_id) == 5
    with pytest.raises(RequestError):
        agent.contacts.messages("carol", 10)
    assert agent.contacts.delete_messages(str(stranger.identity_id)) == 5
    assert agent.contacts.delete_messages(str(stranger.identity_id)) == 0
    assert len(agent.contacts.messages(None, 100)) == 5  # bob's are untouched


def test_messages_page_by_cursor_with_names() -> None:
    store = MemoryMessageStore()
    agent, _ = node(store)
    bob = person("bob")
    agent.contacts.add("bob", bob.to_text(), now=T0)
    for i in range(6):  # storage times out of order: cursors follow storage order
        store.add_message(b"b%d" % i, "in", str(bob.identity_id), f"hi {i}", T0, T0 - i)
    everything = agent.contacts.messages(None, 100, after=0)
    assert [m.body for m, _ in everything] == [f"hi {i}" for i in range(6)]
    cursors = [m.cursor for m, _ in everything]
    assert cursors == sorted(cursors)
    after = agent.contacts.messages("bob", 2, after=cursors[1])
    assert [(m.body, name) for m, name in after] == [("hi 2", "bob"), ("hi 3", "bob")]
    before = agent.contacts.messages("bob", 2, before=cursors[4])
    assert [m.body for m, _ in before] == ["hi 2", "hi 3"]
    assert agent.contacts.messages(None, 10, after=cursors[-1]) == []


def test_deleting_a_long_conversation_takes_several_batches() -> None:
    store = MemoryMessageStore()
    agent, _ = node(store)
    peer = str(person("chatty").identity_id)
    for i in range(1_201):
        store.add_message(i.to_bytes(4, "big"), "in", peer, "x", T0, T0 + i)
    assert agent.contacts.delete_messages(peer) == 1_201
    assert store.messages == {}


@pytest.mark.parametrize(
    "stored",
    [
        b"\xff not canonical",
        canonical_encode([1, 2]),
        canonical_encode({"a": 1}),
        canonical_encode([b"\xff\xfe"]),  # not text
    ],
)
def test_a_malformed_quiet_list_is_corrupt_state(stored: bytes) -> None:
    store = MemoryMessageStore()
    store.put_state(QUIET, stored)
    with pytest.raises(RequestError) as caught:
        UserMessaging(store).load()
    assert caught.value.code == "corrupt_state"


@given(st.binary(max_size=200))
def test_any_stored_quiet_list_loads_or_is_corrupt_state(stored: bytes) -> None:
    store = MemoryMessageStore()
    store.put_state(QUIET, stored)
    code = None
    try:
        UserMessaging(store).load()
    except RequestError as exc:
        code = exc.code
    assert code in {None, "corrupt_state"}


def test_a_malformed_identity_id_is_the_callers_error() -> None:
    agent, _ = node()
    with pytest.raises(InvalidIdError):
        agent.contacts.find(IdentityId.PREFIX + "not-base32!")
