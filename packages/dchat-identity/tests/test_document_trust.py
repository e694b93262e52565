"""Which documents a node believes: first from their own key, then only chained updates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import DchatError, canonical_encode
from dchat_identity import ContactCard, ForgedRecordError, Identity, InvalidCardError
from dchat_identity.lowlevel import (
    LOOKUP_MESSAGE,
    BrokenChainError,
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
@given(st.binary(max_size=80))
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
@given(st.binary(max_size=300))
def test_malformed_head_answers_give_a_typed_error(data: bytes) -> None:
    with pytest.raises(DchatError):
        restored_chain(alice(), None, data)
