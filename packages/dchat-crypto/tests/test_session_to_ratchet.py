"""The whole path between two people: prekey bundle -> X-Wing session setup -> Double Ratchet."""

from __future__ import annotations

import pytest

from dchat_crypto import (
    DecryptionError,
    PrekeySecrets,
    PrivateKey,
    RatchetSession,
    SigningKey,
    accept_session,
    initiate_session,
)
from dchat_crypto.hazmat import InvalidSessionInitError, PrekeyReusedError

NOW = 1_800_000_000.0


def _people() -> tuple[tuple[SigningKey, PrivateKey], tuple[SigningKey, PrivateKey]]:
    return (SigningKey.generate(), PrivateKey.generate()), (
        SigningKey.generate(),
        PrivateKey.generate(),
    )


def test_offline_bob_receives_ratcheted_messages_and_replies() -> None:
    (alice_id, alice_static), (bob_id, bob_static) = _people()
    bob_prekeys = PrekeySecrets.generate(bob_id.public_key, bob_static.public_key, now=NOW)
    (otk,) = bob_prekeys.generate_one_time_prekeys(1)
    bundle = bob_prekeys.bundle(bob_id, one_time_prekey_id=otk)
    ad = b"alice->bob"

    init, alice_secrets, bob_ratchet_pub = initiate_session(
        alice_id, alice_static, bundle, now=NOW, associated_data=ad
    )
    alice = RatchetSession.initiator(alice_secrets, bob_ratchet_pub, associated_data=ad, now=NOW)
    first = alice.encrypt(b"hello bob, you were offline", now=NOW)
    second = alice.encrypt(b"second message", now=NOW + 1)

    # Bob comes online later, with only his stored prekey state.
    restored = PrekeySecrets.from_bytes(bob_prekeys.to_bytes())
    bob_secrets, ratchet_private, alice_key = accept_session(
        restored, bob_static, init, now=NOW + 60, associated_data=ad
    )
    assert alice_key == alice_id.public_key
    bob = RatchetSession.responder(bob_secrets, ratchet_private, associated_data=ad, now=NOW + 60)
    assert bob.decrypt(second, now=NOW + 61) == b"second message"  # out of order
    assert bob.decrypt(first, now=NOW + 61) == b"hello bob, you were offline"
    reply = bob.encrypt(b"hi alice", now=NOW + 62)
    assert alice.decrypt(reply, now=NOW + 63) == b"hi alice"

    # The one-time prekey is spent: the same init cannot open a second session.
    with pytest.raises(PrekeyReusedError):
        accept_session(restored, bob_static, init, now=NOW + 70, associated_data=ad)


def test_a_session_for_someone_else_cannot_read_the_messages() -> None:
    (alice_id, alice_static), (bob_id, bob_static) = _people()
    bob_prekeys = PrekeySecrets.generate(bob_id.public_key, bob_static.public_key, now=NOW)
    bundle = bob_prekeys.bundle(bob_id)
    init, secrets, bob_ratchet = initiate_session(
        alice_id, alice_static, bundle, now=NOW, associated_data=b"ad"
    )
    alice = RatchetSession.initiator(secrets, bob_ratchet, associated_data=b"ad", now=NOW)
    message = alice.encrypt(b"only for bob", now=NOW)
    # Mallory has her own prekeys; she cannot accept Bob's init nor read the message.
    mallory_id, mallory_static = SigningKey.generate(), PrivateKey.generate()
    mallory = PrekeySecrets.generate(mallory_id.public_key, mallory_static.public_key, now=NOW)
    with pytest.raises((InvalidSessionInitError, DecryptionError)):
        accept_session(mallory, mallory_static, init, now=NOW, associated_data=b"ad")
    # Bob with different associated data (another conversation) cannot accept it either.
    with pytest.raises(DecryptionError):
        accept_session(bob_prekeys, bob_static, init, now=NOW, associated_data=b"other ad")
    wrong = RatchetSession.responder(secrets, PrivateKey.generate(), associated_data=b"ad", now=NOW)
    with pytest.raises(DecryptionError):
        wrong.decrypt(message, now=NOW)
