"""HandshakeState behaviour: turns, misuse, robustness against hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import HandshakeState, InvalidKeyError, PrivateKey
from dchat_crypto.hazmat import (
    MessageTooLargeError,
    NoiseHandshakeError,
    NoiseProtocolNameError,
    NoiseStateError,
)

XX = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
INIT_STATIC, RESP_STATIC = PrivateKey.generate(), PrivateKey.generate()


def _pair(name: str = XX) -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(name, initiator=True, static=INIT_STATIC),
        HandshakeState(name, initiator=False, static=RESP_STATIC),
    )


def _finish(init: HandshakeState, resp: HandshakeState) -> None:
    while not init.is_complete:
        sender, receiver = (init, resp) if init.is_my_turn else (resp, init)
        receiver.read_message(sender.write_message(b"p"))


def test_xx_turns_and_remote_static() -> None:
    init, resp = _pair()
    assert init.is_my_turn
    assert not resp.is_my_turn
    assert init.remote_static is None
    _finish(init, resp)
    assert init.is_complete
    assert resp.is_complete
    assert not init.is_my_turn
    assert init.remote_static == RESP_STATIC.public_key
    assert resp.remote_static == INIT_STATIC.public_key
    assert init.handshake_hash == resp.handshake_hash


@pytest.mark.parametrize(
    "name",
    [
        "Noise_XX_448_ChaChaPoly_BLAKE2s",
        "Noise_X1K_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_25519_Salsa_BLAKE2s",
        "Noise_XX_25519_ChaChaPoly_MD5",
        "Noise_XXfallback_25519_ChaChaPoly_BLAKE2s",
        "Noise_NNpsk3_25519_ChaChaPoly_BLAKE2s",
        "XX",
    ],
)
def test_unsupported_names(name: str) -> None:
    with pytest.raises(NoiseProtocolNameError):
        HandshakeState(name, initiator=True)


def test_misuse_is_a_state_error() -> None:
    init, resp = _pair()
    with pytest.raises(NoiseStateError):
        resp.write_message()
    with pytest.raises(NoiseStateError):
        init.read_message(b"")
    with pytest.raises(NoiseStateError):
        init.split()
    _finish(init, resp)
    with pytest.raises(NoiseStateError):
        init.write_message()
    init.split()
    with pytest.raises(NoiseStateError, match="already split"):
        init.split()


def test_missing_keys_and_psks_are_caller_errors() -> None:
    with pytest.raises(NoiseStateError):
        HandshakeState(XX, initiator=True)
    with pytest.raises(NoiseStateError):
        HandshakeState("Noise_NK_25519_ChaChaPoly_SHA256", initiator=True)
    with pytest.raises(NoiseStateError):
        HandshakeState("Noise_NNpsk0_25519_ChaChaPoly_SHA256", initiator=True)
    with pytest.raises(InvalidKeyError):
        HandshakeState("Noise_NNpsk0_25519_ChaChaPoly_SHA256", initiator=True, psks=[b"short"])


def test_psk_mismatch_fails_authentication() -> None:
    name = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
    init = HandshakeState(name, initiator=True, psks=[bytes(32)])
    resp = HandshakeState(name, initiator=False, psks=[b"\x01" * 32])
    with pytest.raises(NoiseHandshakeError):
        resp.read_message(init.write_message(b"hi"))


def test_handshake_message_size_limit() -> None:
    init, resp = _pair()
    with pytest.raises(MessageTooLargeError):
        init.write_message(bytes(65535 - 31))
    message = init.write_message(bytes(65535 - 32))  # e (32) + payload = exactly the limit
    assert len(message) == 65535
    with pytest.raises(NoiseHandshakeError):
        resp.read_message(message + b"x")
    assert resp.read_message(message) == bytes(65535 - 32)


def _advance(init: HandshakeState, resp: HandshakeState, steps: int) -> None:
    for _ in range(steps):
        sender, receiver = (init, resp) if init.is_my_turn else (resp, init)
        receiver.read_message(sender.write_message(b"step"))


@settings(max_examples=150, deadline=None)
@given(step=st.integers(0, 2), garbage=st.binary(max_size=200), flip=st.integers(0, 10_000))
def test_hostile_bytes_leave_the_handshake_unchanged(step: int, garbage: bytes, flip: int) -> None:
    init, resp = _pair()
    _advance(init, resp, step)
    sender, receiver = (init, resp) if init.is_my_turn else (resp, init)
    genuine = sender.write_message(b"genuine")
    tampered = bytearray(genuine)
    tampered[flip % len(tampered)] ^= 0x80
    hash_before = receiver.handshake_hash
    hostiles = [garbage, bytes(tampered), genuine[:-1]]
    if step == 0:
        # XX message 1 is a bare ephemeral key and an unencrypted payload: nothing
        # to authenticate, so only messages too short to hold the key must fail.
        hostiles = [garbage[:31], genuine[:31]]
    for hostile in hostiles:
        if hostile == genuine:
            continue
        with pytest.raises(NoiseHandshakeError):
            receiver.read_message(hostile)
        assert receiver.handshake_hash == hash_before
    assert receiver.read_message(genuine) == b"genuine"
    _advance(init, resp, 3 - step - 1)
    assert init.is_complete
    assert resp.is_complete
    t_init, t_resp = init.split(), resp.split()
    assert t_resp.decrypt(t_init.encrypt(b"after")) == b"after"


def test_one_way_pattern() -> None:
    name = "Noise_X_25519_AESGCM_SHA512"
    init = HandshakeState(
        name, initiator=True, static=INIT_STATIC, remote_static=RESP_STATIC.public_key
    )
    resp = HandshakeState(name, initiator=False, static=RESP_STATIC)
    assert resp.read_message(init.write_message(b"one way")) == b"one way"
    assert init.is_complete
    assert resp.is_complete
    assert resp.remote_static == INIT_STATIC.public_key
    t_init, t_resp = init.split(), resp.split()
    assert t_resp.decrypt(t_init.encrypt(b"m")) == b"m"
    with pytest.raises(NoiseStateError):
        t_init.decrypt(bytes(16))
    with pytest.raises(NoiseStateError):
        t_resp.encrypt(b"m")
