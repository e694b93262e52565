"""The profile agent: revisions, serving by relation, accepting only views we can check."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given

from dchat_core import canonical_encode
from dchat_identity import (
    ContactCard,
    ForgedRecordError,
    Identity,
    IdentityArgumentError,
    MalformedRecordError,
    Profile,
    Visibility,
)
from dchat_identity.lowlevel import (
    CachedProfile,
    ProfileAgent,
    profile_fields,
    synced_profile_fields,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

RELAY = "relay.example:7000"


def _three_fields(alice: Identity) -> Profile:
    """A public name, a bio for contacts, a status for nobody, set one revision at a time."""
    profile = None
    for name, value, visibility in (
        ("display_name", "A", Visibility.PUBLIC),
        ("bio", "for friends", Visibility.CONTACTS),
        ("status", "gone fishing", Visibility.NOBODY),
    ):
        profile, synced = ProfileAgent.revise(
            profile, {name: value}, visibility, alice.signing_key, alice.identity_id,
            rng=SeededRng(name.encode()),
        )  # fmt: skip
        assert synced == [("set", f"profile/{name}", value),
                          ("set", f"profile.vis/{name}", visibility.value)]  # fmt: skip
    assert profile is not None
    return profile


@functools.cache
def _alice_profile() -> tuple[Identity, ContactCard, bytes]:
    alice = Identity.generate()
    profile = _three_fields(alice)
    assert profile_fields(profile)["fields"] == {
        "bio": {"value": "for friends", "visibility": "contacts"},
        "display_name": {"value": "A", "visibility": "public"},
        "status": {"value": "gone fishing", "visibility": "nobody"},
    }
    card = ContactCard.issue(alice, name="alice", relay=RELAY)
    request = ProfileAgent().ask(card)
    return alice, card, ProfileAgent.serve(request, profile, contact=True) or b""


def test_a_revision_keeps_other_fields_and_may_change_a_visibility() -> None:
    alice = Identity.generate()
    first, _ = ProfileAgent.revise(
        None, {"bio": "x", "status": "y"}, Visibility.PUBLIC, alice.signing_key, alice.identity_id
    )
    second, _ = ProfileAgent.revise(
        first, {"bio": "z"}, Visibility.NOBODY, alice.signing_key, alice.identity_id
    )
    assert second.values == {"bio": ("z", Visibility.NOBODY), "status": ("y", Visibility.PUBLIC)}
    assert second.commitment != first.commitment
    with pytest.raises(IdentityArgumentError):
        ProfileAgent.revise(None, {"age": "3"}, Visibility.PUBLIC, alice.signing_key,
                            alice.identity_id)  # fmt: skip
    assert profile_fields(None) == {"fields": {}}


def test_strangers_see_public_fields_contacts_more_nobody_all() -> None:
    alice = Identity.generate()
    profile = _three_fields(alice)
    card = ContactCard.issue(alice, name="alice", relay=RELAY)
    request = canonical_encode({"v": 1})
    for contact, shown in (
        (False, {"display_name": "A"}),
        (True, {"display_name": "A", "bio": "for friends"}),
    ):
        asker = ProfileAgent()
        asker.ask(card)
        served = ProfileAgent.serve(request, profile, contact=contact)
        assert served is not None
        assert b"gone fishing" not in served  # a hidden value is not in the bytes at all
        assert (b"for friends" in served) is contact
        cached = asker.accept(served, alice.identity_id, None, document_profile=profile.commitment)
        described = CachedProfile.from_bytes(cached.to_bytes()).describe(alice.identity_id)
        assert described["fields"] == shown
        assert described["matches_document"] is True
        assert "status" in described["hidden"]
    assert ProfileAgent.serve(request, None, contact=True) is None


def test_views_are_accepted_only_from_who_we_asked_or_know() -> None:
    alice, card, served = _alice_profile()
    stranger = ProfileAgent()
    with pytest.raises(ForgedRecordError):  # never asked, not a contact
        stranger.accept(served, alice.identity_id, None, document_profile=None)
    cached = stranger.accept(served, alice.identity_id, card, document_profile=None)
    assert cached.matches_document is None  # no document of hers followed

    asker = ProfileAgent()
    asker.ask(card)
    assert asker.asked(alice.identity_id) == card
    cached = asker.accept(served, alice.identity_id, None, document_profile=b"\0" * 32)
    assert cached.matches_document is False
    assert asker.asked(alice.identity_id) is None  # answered: no longer pending
    with pytest.raises(ForgedRecordError):  # the same view again, from a non-contact
        asker.accept(served, alice.identity_id, None, document_profile=None)


def test_a_view_from_another_identity_or_under_another_key_is_forged() -> None:
    alice, card, served = _alice_profile()
    mallory = Identity.generate()
    asker = ProfileAgent()
    asker.ask(card)
    with pytest.raises(ForgedRecordError):  # alice's view, relayed by mallory
        asker.accept(served, mallory.identity_id, card, document_profile=None)
    mallory_card = ContactCard.issue(mallory, name="alice", relay=RELAY)
    with pytest.raises(ForgedRecordError):  # checked under mallory's key
        ProfileAgent().accept(served, alice.identity_id, mallory_card, document_profile=None)


def test_a_linked_device_reads_the_profile_from_synced_registers() -> None:
    registers = {"profile/bio": "b", "profile.vis/bio": "contacts", "settings/x": "1"}
    assert synced_profile_fields(registers) == {
        "fields": {"bio": {"value": "b", "visibility": "contacts"}}
    }


@given(hostile_bytes(max_size=200))
def test_hostile_payloads_give_typed_errors(data: bytes) -> None:
    alice, card, _ = _alice_profile()
    with pytest.raises(MalformedRecordError):
        ProfileAgent.serve(data, None, contact=False)
    with pytest.raises((MalformedRecordError, ForgedRecordError)):
        ProfileAgent().accept(data, alice.identity_id, card, document_profile=None)
    with pytest.raises(MalformedRecordError):
        CachedProfile.from_bytes(data)


def test_a_request_of_another_version_is_refused() -> None:
    with pytest.raises(MalformedRecordError, match="unsupported"):
        ProfileAgent.serve(canonical_encode({"v": 2}), None, contact=False)
    with pytest.raises(MalformedRecordError):
        ProfileAgent.serve(canonical_encode({"v": 1, "x": 0}), None, contact=False)
