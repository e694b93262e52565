"""A user node's stealth payments: looked up on contacts' cards, each told once as an event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto.hazmat import ed25519_base_mul, ed25519_scalar_from_hash
from dchat_identity import ContactCard, Identity
from dchat_messaging import EngineStateError, RequestError, UserMessaging
from dchat_messaging.testing import MemoryMessageStore

T0 = 1_000_000.0
RELAY = "127.0.0.1:7400"
KEY = "stealth.inbox"  # the stored key is part of a node's data directory
META = b"".join(ed25519_base_mul(ed25519_scalar_from_hash(s)) for s in (b"scan", b"spend"))


def _node(store: MemoryMessageStore) -> UserMessaging:
    identity = Identity.generate()
    agent = UserMessaging(store)
    agent.engines.set_main(identity, ContactCard.issue(identity, name="me", relay=RELAY))
    return agent


def _received(store: MemoryMessageStore) -> list[dict[str, object]]:
    return [data for kind, data, _ in store.events if kind == "stealth_received"]


def test_a_contact_card_s_meta_address_is_found_by_name_and_id() -> None:
    agent = _node(MemoryMessageStore())
    bob = ContactCard.issue(Identity.generate(), name="bob", relay=RELAY, stealth=META)
    carol = ContactCard.issue(Identity.generate(), name="carol", relay=RELAY)
    agent.contacts.add("bob", bob.to_text(), now=T0, announce=False)
    agent.contacts.add("carol", carol.to_text(), now=T0, announce=False)
    assert agent.contacts.stealth_address("bob") == META
    assert agent.contacts.stealth_address(str(bob.identity_id)) == META
    with pytest.raises(RequestError) as no_address:
        agent.contacts.stealth_address("carol")
    assert no_address.value.code == "no_stealth_address"
    with pytest.raises(RequestError) as unknown:
        agent.contacts.stealth_address("dave")
    assert unknown.value.code == "unknown_contact"


ME = "id-of-the-identity-or-burner"


def _find(n: int, height: int, identity: str = ME) -> tuple[bytes, int, int, str]:
    return bytes([n]) * 32, height, 100 + n, identity


def test_each_payment_is_told_once_across_rescans_and_restarts() -> None:
    store = MemoryMessageStore()
    agent = _node(store)
    assert agent.stealth.status() == {"scanned_to": 0, "received": 0}
    first = agent.stealth.record(10, [_find(1, 4)], T0)
    assert first == [{"account": (b"\x01" * 32).hex(), "amount": 101, "height": 4, "identity": ME}]
    assert agent.stealth.record(12, [_find(1, 4)], T0) == []  # a rescan finds it again
    restarted = _node(store)  # a new node process over the same database
    assert restarted.stealth.record(20, [_find(2, 15), _find(1, 4)], T0) == [
        {"account": (b"\x02" * 32).hex(), "amount": 102, "height": 15, "identity": ME}
    ]
    assert restarted.stealth.record(5, [_find(1, 4), _find(2, 15)], T0) == []  # rebuilt scan
    assert [e["height"] for e in _received(store)] == [4, 15]
    assert restarted.stealth.status() == {"scanned_to": 20, "received": 2}


def test_an_event_carries_no_key_only_the_account_amount_height_and_identity() -> None:
    store = MemoryMessageStore()
    _node(store).stealth.record(3, [_find(7, 3)], T0)
    (event,) = _received(store)
    assert set(event) == {"account", "amount", "height", "identity"}


def test_each_event_names_the_identity_or_burner_that_was_paid() -> None:
    store = MemoryMessageStore()
    agent = _node(store)
    finds = [_find(1, 3, "main"), _find(2, 3, "burner-a"), _find(3, 4, "burner-b")]
    agent.stealth.record(4, finds, T0)
    told = [(e["account"], e["identity"]) for e in _received(store)]
    assert told == [(f[0].hex(), f[3]) for f in finds]


def test_events_and_the_told_set_commit_together() -> None:
    store = MemoryMessageStore()
    agent = _node(store)
    store.state[KEY] = canonical_encode({"v": 1, "scanned": 0, "told": [b"short"]})
    with pytest.raises(EngineStateError):
        agent.stealth.record(3, [_find(7, 3)], T0)
    assert _received(store) == []


@settings(max_examples=40, deadline=None)
@given(
    value=st.one_of(
        st.binary(max_size=64),
        st.integers(-(2**63), 2**63 - 1),
        st.lists(st.integers(0, 2**32)),
    )
)
def test_damaged_state_is_a_typed_error(value: object) -> None:
    store = MemoryMessageStore()
    agent = _node(store)
    raw = value if isinstance(value, bytes) else canonical_encode({"v": 1, "told": value})
    store.state[KEY] = raw
    with pytest.raises(EngineStateError):
        agent.stealth.status()


def test_a_held_burner_and_its_release_are_told_as_events() -> None:
    store = MemoryMessageStore()
    agent = _node(store)
    agent.stealth.burner_held("dcid1burner", T0)
    agent.stealth.burner_released("dcid1burner", "empty", T0 + 5)
    told = [(kind, data) for kind, data, _ in store.events if kind.startswith("burner_")]
    assert told == [
        ("burner_held", {"burner_id": "dcid1burner", "reason": "expired"}),
        ("burner_released", {"burner_id": "dcid1burner", "reason": "empty"}),
    ]
