"""Identity keys, the ids derived from them, and the passphrase keystore."""

from __future__ import annotations

import functools

import pytest

from dchat_core import IdentityId, MailboxId
from dchat_crypto import KdfParams
from dchat_identity import Identity, KeystoreError

PASSPHRASE = "correct horse battery staple"


@functools.cache
def _stored() -> tuple[Identity, bytes]:
    """One identity and its keystore, shared because Argon2id is the slow part."""
    identity = Identity.generate()
    return identity, identity.to_keystore(PASSPHRASE, KdfParams.TESTING)


def _private_keys(identity: Identity) -> list[bytes]:
    return [
        identity.signing_key.to_bytes(),
        identity.encryption_key.to_bytes(),
        identity.mailbox_key.to_bytes(),
    ]


def _public_keys(identity: Identity) -> list[bytes]:
    return [
        identity.signing_key.public_key.to_bytes(),
        identity.encryption_key.public_key.to_bytes(),
        identity.mailbox_key.public_key.to_bytes(),
    ]


def _same(a: Identity, b: Identity) -> bool:
    return _private_keys(a) == _private_keys(b)


# -- keys and ids ------------------------------------------------------------


def test_generate_gives_three_distinct_keys() -> None:
    identity = Identity.generate()
    assert len(set(_private_keys(identity))) == 3
    assert len(set(_public_keys(identity))) == 3


def test_two_generated_identities_share_nothing() -> None:
    a, b = Identity.generate(), Identity.generate()
    assert not set(_private_keys(a)) & set(_private_keys(b))
    assert a.identity_id != b.identity_id
    assert a.mailbox_id != b.mailbox_id


def test_identity_id_is_the_digest_of_the_identity_public_key() -> None:
    identity = Identity.generate()
    expected = IdentityId.derive(identity.signing_key.public_key.to_bytes())
    assert identity.identity_id == expected
    # ...and of no other key the identity holds.
    assert identity.identity_id != IdentityId.derive(identity.mailbox_key.public_key.to_bytes())


def test_mailbox_id_is_the_digest_of_the_mailbox_public_key() -> None:
    identity = Identity.generate()
    expected = MailboxId.derive(identity.mailbox_key.public_key.to_bytes())
    assert identity.mailbox_id == expected
    # A relay must not be able to compute the mailbox from the identity key.
    assert identity.mailbox_id != MailboxId.derive(identity.signing_key.public_key.to_bytes())


def test_identity_and_mailbox_ids_are_different_kinds_and_values() -> None:
    identity = Identity.generate()
    assert type(identity.identity_id) is IdentityId
    assert type(identity.mailbox_id) is MailboxId
    assert bytes(identity.identity_id) != bytes(identity.mailbox_id)
    assert str(identity.identity_id).startswith(IdentityId.PREFIX)
    assert str(identity.mailbox_id).startswith(MailboxId.PREFIX)
    assert identity.identity_id != identity.mailbox_id


def test_repr_shows_no_key_material() -> None:
    identity = Identity.generate()
    text = repr(identity) + str(identity)
    for raw in _private_keys(identity):
        assert raw.hex() not in text
        assert raw.hex().upper() not in text
        assert repr(raw) not in text
    assert str(identity.identity_id) in repr(identity)


# -- keystore ----------------------------------------------------------------


def test_keystore_round_trip() -> None:
    identity, blob = _stored()
    restored = Identity.from_keystore(blob, PASSPHRASE)
    assert _same(restored, identity)
    assert restored.identity_id == identity.identity_id
    assert restored.mailbox_id == identity.mailbox_id


def test_keystore_accepts_bytes_passphrase_equal_to_its_utf8_text() -> None:
    identity, blob = _stored()
    assert _same(Identity.from_keystore(blob, PASSPHRASE.encode()), identity)


def test_keystore_is_salted_each_time() -> None:
    identity, blob = _stored()
    assert identity.to_keystore(PASSPHRASE, KdfParams.TESTING) != blob


def test_keystore_contains_no_private_key_bytes() -> None:
    identity, blob = _stored()
    for raw in _private_keys(identity):
        # No 8-byte window of any private key appears anywhere in the blob.
        for start in range(len(raw) - 7):
            assert raw[start : start + 8] not in blob


@pytest.mark.parametrize("wrong", ["", "Correct horse battery staple", PASSPHRASE + " ", "x"])
def test_wrong_passphrase_is_a_keystore_error(wrong: str) -> None:
    _, blob = _stored()
    with pytest.raises(KeystoreError):
        Identity.from_keystore(blob, wrong)


def test_every_flipped_byte_is_a_keystore_error() -> None:
    _, blob = _stored()
    # Masks chosen so that no flip of the KDF cost fields asks Argon2id for more
    # than ~64 MiB (the 4 GiB cap is dchat-crypto's business, not this test's).
    for position in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(blob)
            tampered[position] ^= mask
            with pytest.raises(KeystoreError):
                Identity.from_keystore(bytes(tampered), PASSPHRASE)


def test_every_truncation_is_a_keystore_error() -> None:
    _, blob = _stored()
    for length in range(len(blob)):
        with pytest.raises(KeystoreError):
            Identity.from_keystore(blob[:length], PASSPHRASE)


def test_appended_bytes_are_a_keystore_error() -> None:
    _, blob = _stored()
    with pytest.raises(KeystoreError):
        Identity.from_keystore(blob + b"\x00", PASSPHRASE)


@pytest.mark.parametrize("junk", [b"", b"DCKS", b"\x00" * 200, b"not a keystore" * 10])
def test_junk_is_a_keystore_error(junk: bytes) -> None:
    with pytest.raises(KeystoreError):
        Identity.from_keystore(junk, PASSPHRASE)


def test_keystore_errors_do_not_say_which_check_failed() -> None:
    _, blob = _stored()
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    messages = set()
    for bad_blob, passphrase in [(blob, "wrong"), (tampered, PASSPHRASE), (blob[:10], PASSPHRASE)]:
        with pytest.raises(KeystoreError) as info:
            Identity.from_keystore(bad_blob, passphrase)
        assert isinstance(info.value, ValueError)
        messages.add(str(info.value))
    assert len(messages) == 1
