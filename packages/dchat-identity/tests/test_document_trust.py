"""Which documents a node believes: first from their own key, then only chained updates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import DchatError, canonical_encode
from dchat_identity import (
    ContactCard,
    ForgedRecordError,
    Identity,
    IdentityArgumentError,
    InvalidCardError,
)
from dchat_identity.lowlevel import (
    DOCUMENT_KIND,
    LEARNED,
    LOOKUP_MESSAGE,
    PEER_KIND,
    BrokenChainError,
    DocumentTrust,
    ForkedDocumentError,
    IdentityStateError,
    ReplayedDocumentError,
    answer_lookup,
    check_forwarder,
    check_origin,
    first_chain,
    follow,
    restored_chain,
)
from dchat_testing import hostile_bytes

from .test_document_chain import NOW, alice, cert, history, mallory
from .test_guardian_agents import recovered


def test_the_first_document_is_pinned_only_from_its_own_key() -> None:
    v1, v2, v3 = history()
    check_origin(v1, alice().identity_id)
    with pytest.raises(ForgedRecordError):  # Mallory relays Alice's genuine document
        check_origin(v1, mallory().identity_id)
    followed = follow(None, v1, card=None, now=NOW)
    assert (followed.chain.head, followed.rotated_from) == (v1, None)
    for doc in (v2, v3):
        assert follow(followed.chain, doc, card=None, now=NOW + 30).rotated_from is None
    assert followed.chain.head == v3


def test_replays_forks_and_withdrawn_revocations_change_nothing() -> None:
    v1, v2, v3 = history()
    chain = follow(None, v1, card=None, now=NOW).chain
    follow(chain, v2, card=None, now=NOW)
    with pytest.raises(ReplayedDocumentError):
        follow(chain, v2, card=None, now=NOW)
    fork = v1.successor(alice().signing_key, now=NOW + 11, devices=(cert(3),))
    with pytest.raises(ForkedDocumentError):
        follow(chain, fork, card=None, now=NOW)
    follow(chain, v3, card=None, now=NOW)
    # v4 forgets that device 1 was revoked: refused, and device 1 stays revoked.
    v4 = v3.successor(alice().signing_key, now=NOW + 30, devices=(cert(1), cert(2)), revoked=())
    with pytest.raises(BrokenChainError):
        follow(chain, v4, card=None, now=NOW)
    assert chain.head == v3
    assert chain.revoked_at(cert(1).device_key) == 3


def test_a_recovery_moves_the_key_only_with_the_new_card() -> None:
    v2, v3, new_card = recovered()
    with pytest.raises(BrokenChainError):  # never the first document we believe
        follow(None, v3, card=new_card, now=NOW + 100)
    chain = follow(None, v2, card=None, now=NOW).chain
    stranger = ContactCard.issue(Identity.generate(), name="x", relay="127.0.0.1:1")
    for card in (None, stranger):
        with pytest.raises(InvalidCardError):
            follow(chain, v3, card=card, now=NOW + 100)
        assert chain.head == v2  # a refused rotation leaves the chain as it was
    followed = follow(chain, v3, card=new_card, now=NOW + 100)
    assert (followed.chain.head, followed.rotated_from) == (v3, v2)


def test_a_forged_rotation_is_refused_as_a_forgery_whatever_the_card() -> None:
    v2, v3, _ = recovered()
    chain = follow(None, v2, card=None, now=NOW).chain
    thief = mallory()  # holds a genuine certificate, for another key
    forged = v2.successor(
        thief.signing_key,
        now=v3.issued_ms / 1000,
        encryption_key=thief.encryption_key.public_key,
        recovery=v3.recovery,
    )
    card = ContactCard.issue(thief, name="alice", relay="127.0.0.1:1")
    for sent in (card, None):
        with pytest.raises(ForgedRecordError):
            follow(chain, forged, card=sent, now=NOW + 100)


def test_only_our_own_devices_forward_documents() -> None:
    check_forwarder(alice().identity_id, alice().identity_id)
    for own in (None, mallory().identity_id):
        with pytest.raises(ForgedRecordError):
            check_forwarder(alice().identity_id, own)


def test_lookups_are_answered_only_to_the_key_of_the_chain() -> None:
    v1, v2, _ = history()
    chain = follow(None, v1, card=None, now=NOW).chain
    follow(chain, v2, card=None, now=NOW)
    assert answer_lookup(chain, LOOKUP_MESSAGE, alice().identity_id) == v2
    with pytest.raises(IdentityStateError):
        answer_lookup(chain, LOOKUP_MESSAGE, mallory().identity_id)
    with pytest.raises(IdentityStateError):
        answer_lookup(None, LOOKUP_MESSAGE, alice().identity_id)
    with pytest.raises(DchatError):
        answer_lookup(chain, canonical_encode({"v": 2}), alice().identity_id)


@settings(max_examples=200, deadline=None)
@given(hostile_bytes(max_size=80))
def test_malformed_lookups_give_a_typed_error(data: bytes) -> None:
    chain = follow(None, history()[0], card=None, now=NOW).chain
    if data == LOOKUP_MESSAGE:
        return
    with pytest.raises(DchatError):
        answer_lookup(chain, data, alice().identity_id)


def test_a_restored_identity_takes_its_chain_from_contacts() -> None:
    v1, v2, v3 = history()
    with pytest.raises(IdentityStateError):  # a new version 1 would fork the history
        first_chain(alice(), restoring=True, now=NOW)
    fresh = first_chain(alice(), restoring=False, now=NOW)
    assert (fresh.head.seq, fresh.identity_key) == (1, alice().signing_key.public_key)
    chain = restored_chain(alice(), None, v2.to_bytes())
    assert chain is not None
    assert chain.head == v2
    assert restored_chain(alice(), chain, v1.to_bytes()) is None  # the newest answer wins
    assert restored_chain(alice(), chain, v2.to_bytes()) is None
    newer = restored_chain(alice(), chain, v3.to_bytes())
    assert newer is not None
    assert newer.head == v3
    with pytest.raises(ForgedRecordError):  # someone else's document
        restored_chain(mallory(), None, v2.to_bytes())
    with pytest.raises(BrokenChainError):  # a burner has no chain to restore
        restored_chain(alice(), None, v2.to_bytes(), main=False)


@settings(max_examples=200, deadline=None)
@given(hostile_bytes(max_size=300))
def test_malformed_head_answers_give_a_typed_error(data: bytes) -> None:
    with pytest.raises(DchatError):
        restored_chain(alice(), None, data)


# -- the agent: every route a contact's document can take ----------------------


def test_the_agent_follows_a_contact_and_forwards_to_our_devices() -> None:
    v1, v2, _ = history()
    primary = DocumentTrust(mallory().identity_id, linked=False)
    first = primary.accept(DOCUMENT_KIND, None, v1, sender=alice().identity_id, card=None, now=NOW)
    assert first is not None
    assert (first.chain.head, first.rotated_from, first.forward) == (v1, None, True)
    linked = DocumentTrust(mallory().identity_id, linked=True)  # the primary forwards, not us
    step = linked.accept(LEARNED, first.chain, v2, sender=alice().identity_id, card=None, now=NOW)
    assert step is not None
    assert (step.chain.head, step.forward) == (v2, False)


def test_the_agent_checks_who_sent_or_forwarded_it() -> None:
    v1, _, _ = history()
    ours = DocumentTrust(alice().identity_id, linked=False)
    with pytest.raises(ForgedRecordError):  # Mallory relays Alice's genuine document
        ours.accept(DOCUMENT_KIND, None, v1, sender=mallory().identity_id, card=None, now=NOW)
    stranger = DocumentTrust(mallory().identity_id, linked=False)
    with pytest.raises(ForgedRecordError):  # only our own identity forwards
        stranger.accept(PEER_KIND, None, v1, sender=alice().identity_id, card=None, now=NOW)
    step = ours.accept(PEER_KIND, None, v1, sender=alice().identity_id, card=None, now=NOW)
    assert step is not None
    assert step.forward is False  # never sent back to the devices it came from


def test_a_redelivery_is_not_news_but_a_contacts_replay_is_refused() -> None:
    v1, _, _ = history()
    trust = DocumentTrust(alice().identity_id, linked=False)
    chain = follow(None, v1, card=None, now=NOW).chain
    for route in (PEER_KIND, LEARNED):
        assert (
            trust.accept(route, chain, v1, sender=alice().identity_id, card=None, now=NOW) is None
        )
    with pytest.raises(ReplayedDocumentError):
        trust.accept(DOCUMENT_KIND, chain, v1, sender=alice().identity_id, card=None, now=NOW)


def test_a_rotation_needs_the_card_from_the_contact_itself() -> None:
    v2, v3, new_card = recovered()
    trust = DocumentTrust(mallory().identity_id, linked=False)
    new_id = new_card.identity_id
    chain = follow(None, v2, card=None, now=NOW).chain
    with pytest.raises(InvalidCardError):  # a card riding on another route does not count
        trust.accept(LEARNED, chain, v3, sender=new_id, card=new_card, now=NOW + 100)
    step = trust.accept(DOCUMENT_KIND, chain, v3, sender=new_id, card=new_card, now=NOW + 100)
    assert step is not None
    assert (step.chain.head, step.rotated_from) == (v3, v2)


@given(st.text(max_size=30).filter(lambda r: r not in (DOCUMENT_KIND, PEER_KIND, LEARNED)))
def test_unknown_routes_and_mismatched_chains_are_refused(route: str) -> None:
    v1, _, _ = history()
    trust = DocumentTrust(alice().identity_id, linked=False)
    with pytest.raises(IdentityArgumentError):
        trust.accept(route, None, v1, sender=alice().identity_id, card=None, now=NOW)
    theirs = first_chain(mallory(), restoring=False, now=NOW)
    with pytest.raises(IdentityArgumentError):
        trust.accept(DOCUMENT_KIND, theirs, v1, sender=alice().identity_id, card=None, now=NOW)


def test_next_version_is_signed_and_appended() -> None:
    chain = first_chain(alice(), restoring=False, now=NOW)
    doc = DocumentTrust.next_version(chain, alice().signing_key, now=NOW + 1, devices=(cert(1),))
    assert (chain.head, doc.seq, doc.devices) == (doc, 2, (cert(1),))
    with pytest.raises(IdentityArgumentError):  # someone else cannot extend our chain
        DocumentTrust.next_version(chain, mallory().signing_key, now=NOW + 2)
    assert chain.head == doc


def test_a_linked_device_follows_our_chain_and_ignores_redeliveries() -> None:
    v1, v2, _ = history()
    chain = follow(None, v1, card=None, now=NOW).chain
    assert DocumentTrust.follow_own(chain, v2.to_bytes(), now=NOW) == v2
    assert DocumentTrust.follow_own(chain, v2.to_bytes(), now=NOW) is None
    fork = v1.successor(alice().signing_key, now=NOW + 11, devices=(cert(3),))
    with pytest.raises(ForkedDocumentError):
        DocumentTrust.follow_own(chain, fork.to_bytes(), now=NOW)
    assert chain.head == v2


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_own_updates_give_a_typed_error(data: bytes) -> None:
    chain = follow(None, history()[0], card=None, now=NOW).chain
    with pytest.raises(DchatError):
        DocumentTrust.follow_own(chain, data, now=NOW)
