"""Profiles: per-field visibility enforced when served, signed by the identity."""

from __future__ import annotations

import dataclasses
import functools

import pytest
from hypothesis import given, settings

from dchat_core import canonical_decode, canonical_encode
from dchat_identity import (
    ForgedRecordError,
    Identity,
    IdentityArgumentError,
    IdentityDocument,
    MalformedRecordError,
    Profile,
    ProfileView,
    Relation,
    Visibility,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1_700_000_000.0
V = Visibility


@functools.cache
def alice() -> Identity:
    return Identity.generate(SeededRng(b"alice"))


@functools.cache
def profile() -> Profile:
    return Profile.create(
        alice().signing_key,
        alice().identity_id,
        {
            "display_name": ("Alice", V.PUBLIC),
            "avatar": ("blake2b:" + "ab" * 32, V.PUBLIC),
            "bio": ("likes long walks near the secret lake", V.CONTACTS),
            "status": ("at the dentist", V.NOBODY),
        },
        rng=SeededRng(b"salts"),
    )


def served(relation: Relation) -> ProfileView:
    raw = profile().view_for(relation).to_bytes()
    return ProfileView.from_bytes(raw, alice().signing_key.public_key)


def test_a_stranger_gets_only_public_fields() -> None:
    raw = profile().view_for(Relation.STRANGER).to_bytes()
    assert served(Relation.STRANGER).fields == {
        "display_name": "Alice",
        "avatar": "blake2b:" + "ab" * 32,
    }
    for hidden in (b"secret lake", b"dentist"):
        assert hidden not in raw


def test_a_contact_gets_contacts_fields_but_not_private_ones() -> None:
    raw = profile().view_for(Relation.CONTACT).to_bytes()
    assert served(Relation.CONTACT).fields["bio"] == "likes long walks near the secret lake"
    assert "status" not in served(Relation.CONTACT).fields
    assert b"dentist" not in raw


def test_own_devices_see_everything() -> None:
    assert served(Relation.SELF).fields["status"] == "at the dentist"


def test_every_view_matches_the_document_commitment() -> None:
    a = alice()
    doc = IdentityDocument.genesis(
        a.signing_key, a.encryption_key.public_key, now=NOW, profile=profile().commitment
    )
    for relation in Relation:
        assert served(relation).commitment == doc.profile


def test_a_forged_or_swapped_field_is_rejected() -> None:
    fields = canonical_decode(profile().view_for(Relation.STRANGER).to_bytes())
    fields["open"]["display_name"][0] = "Mallory"
    with pytest.raises(ForgedRecordError):
        ProfileView.from_bytes(canonical_encode(fields), alice().signing_key.public_key)
    fields = canonical_decode(profile().view_for(Relation.STRANGER).to_bytes())
    fields["fields"]["status"][0] = "public"  # upgrade a field's visibility
    with pytest.raises(ForgedRecordError):
        ProfileView.from_bytes(canonical_encode(fields), alice().signing_key.public_key)
    mallory = Identity.generate(SeededRng(b"mallory"))
    with pytest.raises(ForgedRecordError):
        ProfileView.from_bytes(
            profile().view_for(Relation.CONTACT).to_bytes(), mallory.signing_key.public_key
        )


def test_salts_hide_short_values() -> None:
    # Same value, same visibility, two profiles: the commitments differ.
    again = Profile.create(
        alice().signing_key, alice().identity_id, {"status": ("at the dentist", V.NOBODY)}
    )
    assert again.view_for(Relation.STRANGER).entries["status"].commitment != (
        profile().view_for(Relation.STRANGER).entries["status"].commitment
    )


def test_owner_copy_round_trips_and_is_checked() -> None:
    key = alice().signing_key.public_key
    assert Profile.from_bytes(profile().to_bytes(), key) == profile()
    tampered = dataclasses.replace(profile(), values={**profile().values, "bio": ("x", V.PUBLIC)})
    with pytest.raises(ForgedRecordError):
        Profile.from_bytes(tampered.to_bytes(), key)
    assert "dentist" not in repr(profile())


@pytest.mark.parametrize(
    "values",
    [
        {"nickname": ("x", V.PUBLIC)},
        {"display_name": ("x" * 65, V.PUBLIC)},
        {"bio": ("a\nb", V.PUBLIC)},
        {"status": ("ok", "public")},
    ],
)
def test_bad_fields_are_refused(values) -> None:
    with pytest.raises(IdentityArgumentError):
        Profile.create(alice().signing_key, alice().identity_id, values)


@settings(max_examples=200)
@given(hostile_bytes(max_size=600))
def test_garbage_profiles_are_typed(data: bytes) -> None:
    with pytest.raises(MalformedRecordError):
        ProfileView.from_bytes(data, alice().signing_key.public_key)
    with pytest.raises(MalformedRecordError):
        Profile.from_bytes(data, alice().signing_key.public_key)
