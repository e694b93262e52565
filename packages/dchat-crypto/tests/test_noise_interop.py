"""Interoperability with the independent ``noiseprotocol`` implementation."""

from __future__ import annotations

import pytest
from noise.connection import Keypair, NoiseConnection

from dchat_crypto import HandshakeState, PrivateKey
from dchat_crypto.hazmat import NoiseTransport

PROTOCOLS = (
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_XX_25519_AESGCM_SHA256",
    "Noise_IK_25519_ChaChaPoly_SHA256",
    "Noise_NK_25519_AESGCM_BLAKE2b",
)
PROLOGUE = b"dchat interop"


def _theirs(name: str, *, initiator: bool, static: PrivateKey | None, remote: PrivateKey | None):
    conn = NoiseConnection.from_name(name.encode())
    conn.set_prologue(PROLOGUE)
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    if static is not None:
        conn.set_keypair_from_private_bytes(Keypair.STATIC, static.to_bytes())
    if remote is not None:
        conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote.public_key.to_bytes())
    conn.start_handshake()
    return conn


def _keys(name: str, *, initiator: bool) -> tuple[PrivateKey | None, PrivateKey | None]:
    """(initiator static, responder static) as the pattern needs them."""
    pattern = name.split("_")[1]
    init_static = PrivateKey.generate() if pattern[0] in "XIK" else None
    resp_static = PrivateKey.generate() if pattern[1] in "XK" else None
    return init_static, resp_static


def _pre_known(name: str, resp_static: PrivateKey | None) -> PrivateKey | None:
    return resp_static if name.split("_")[1][1] == "K" else None


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize("ours_initiates", [True, False])
def test_handshake_and_transport_with_noiseprotocol(name: str, ours_initiates: bool) -> None:
    init_static, resp_static = _keys(name, initiator=ours_initiates)
    remote_for_init = _pre_known(name, resp_static)
    if ours_initiates:
        ours = HandshakeState(
            name,
            initiator=True,
            prologue=PROLOGUE,
            static=init_static,
            remote_static=None if remote_for_init is None else remote_for_init.public_key,
        )
        theirs = _theirs(name, initiator=False, static=resp_static, remote=None)
    else:
        ours = HandshakeState(name, initiator=False, prologue=PROLOGUE, static=resp_static)
        theirs = _theirs(name, initiator=True, static=init_static, remote=remote_for_init)

    step = 0
    while not ours.is_complete:
        payload = f"handshake payload {step}".encode()
        if ours.is_my_turn:
            assert theirs.read_message(ours.write_message(payload)) == payload
        else:
            assert ours.read_message(theirs.write_message(payload)) == payload
        step += 1
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    if init_static is not None and not ours_initiates:
        assert ours.remote_static == init_static.public_key
    _exchange_transport(ours.split(), theirs)


def _exchange_transport(ours: NoiseTransport, theirs: NoiseConnection) -> None:
    for i in range(3):
        message = b"ours->theirs %d" % i
        assert theirs.decrypt(ours.encrypt(message)) == message
        reply = b"theirs->ours %d" % i * 50
        assert ours.decrypt(theirs.encrypt(reply)) == reply
