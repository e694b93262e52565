"""Asynchronous session setup: one message to an offline identity's prekey bundle.

Construction (byte-exact in ``docs/protocol.md``, "Session setup"): a one-way
``Noise_Xpsk0_25519_ChaChaPoly_BLAKE2s`` handshake whose pre-known responder
static key is the bundle's *signed prekey*, and whose PSK folds together

* the X-Wing shared secret encapsulated to the bundle's X-Wing prekey,
* ``DH(e, responder identity X25519 key)`` and
* ``DH(e, one-time prekey)`` when the bundle has one,

where ``e`` is the Noise ephemeral. Noise itself adds ``DH(e, signed prekey)``
and ``DH(initiator static, signed prekey)``, so the session key depends on the
four X3DH exchanges *and* on ML-KEM-768: it stays secret unless both X25519 and
ML-KEM are broken. ``psk0`` puts the PSK first, so even the initiator's
encrypted static key and identity are hidden from a later quantum attacker.
The X-Wing ciphertext and prekey ids travel in the clear, and the prologue binds
them, every key of the bundle and the caller's associated data.

The handshake payload names the initiator's Ed25519 identity and signs its
static key (as dchat links do), so the responder learns who wrote. Session
secrets come from the final chaining key and handshake hash via HKDF-SHA256.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import BadSignatureError, DecryptionError, InvalidKeyError, NoiseHandshakeError
from ._keys import PrivateKey, PublicKey, SigningKey, VerifyKey
from ._noise_handshake import HandshakeState
from ._prekey_secrets import MAX_DELIVERY_DELAY, MAX_REMEMBERED_INITS
from ._prekeys import bundle_body
from ._primitives import hkdf_sha256
from ._ratchet_types import SessionSecrets
from ._session_errors import (
    InvalidBundleError,
    InvalidSessionInitError,
    PrekeyArgumentError,
    PrekeyReusedError,
)
from ._session_init import SessionInit
from ._xwing import InvalidCiphertextError

if TYPE_CHECKING:
    from ._prekey_secrets import Generation, PrekeySecrets
    from ._prekeys import PrekeyBundle

__all__ = ("NOISE_PROTOCOL", "accept_session", "initiate_session")

NOISE_PROTOCOL: Final = "Noise_Xpsk0_25519_ChaChaPoly_BLAKE2s"
_PROLOGUE_DOMAIN: Final = b"dchat-session-v1\x00"
_STATIC_DOMAIN: Final = b"dchat-session-static-v1\x00"
_PSK_INFO: Final = b"dchat-session-v1 psk"
_SECRETS_INFO: Final = b"dchat-session-v1 secrets"
_KEY: Final = 32
_PAYLOAD_FIELDS: Final = frozenset({"v", "ik", "sig"})
_PAYLOAD_LIMITS: Final = DecodeLimits(max_size=512, max_depth=1, max_items=8)


def initiate_session(
    initiator_identity_signing_key: SigningKey,
    initiator_static: PrivateKey,
    bundle: PrekeyBundle,
    *,
    now: float,
    associated_data: bytes,
) -> tuple[SessionInit, SessionSecrets, PublicKey]:
    """Start a session with the owner of ``bundle``, who may be offline.

    Args:
        initiator_identity_signing_key: Our Ed25519 identity key.
        initiator_static: Our identity's X25519 encryption key.
        bundle: The responder's bundle; verified here against ``now``. The caller
            must check that ``bundle.identity_key`` is the identity it means.
        now: Current time, seconds since the Unix epoch.
        associated_data: Context both sides must pass identically.

    Returns:
        ``(init, secrets, responder_ratchet_key)``: the message to deliver, the
        shared secrets, and the responder's first ratchet public key (the signed prekey).

    Raises:
        InvalidBundleError: If the bundle is forged, expired or holds a low-order key.
        PrekeyArgumentError: If ``now`` is not finite or ``associated_data`` is not bytes.
    """
    bundle.verify(_check_now(now))
    ad = _check_ad(associated_data)
    ephemeral = PrivateKey.generate()
    try:
        ss_pq, ciphertext = bundle.xwing_prekey.encapsulate()
        one_time = bundle.one_time_prekey
        psk = _psk(
            ss_pq,
            ephemeral.exchange(bundle.static_key),
            b"" if one_time is None else ephemeral.exchange(one_time),
        )
        state = _handshake(
            initiator=True,
            prologue=_prologue(bundle.body(), ciphertext, ad),
            static=initiator_static,
            remote_static=bundle.signed_prekey,
            psk=psk,
            ephemeral=ephemeral,
        )
        message = state.write_message(
            _identity_payload(initiator_identity_signing_key, initiator_static)
        )
    except InvalidKeyError:
        raise InvalidBundleError("prekey bundle holds a low-order X25519 key") from None
    init = SessionInit(
        signed_prekey_id=bundle.signed_prekey_id,
        xwing_prekey_id=bundle.xwing_prekey_id,
        one_time_prekey_id=bundle.one_time_prekey_id,
        xwing_ciphertext=ciphertext,
        handshake=message,
    )
    return init, _derive_secrets(state), bundle.signed_prekey


def accept_session(
    responder_secrets: PrekeySecrets,
    responder_static: PrivateKey,
    init: SessionInit,
    *,
    now: float,
    associated_data: bytes,
) -> tuple[SessionSecrets, PrivateKey, VerifyKey]:
    """Complete a session from a :class:`SessionInit` addressed to our prekeys.

    On success the one-time prekey (if any) is consumed and the init is
    remembered, so accepting it again fails; persist ``responder_secrets`` before
    using the session. On any failure ``responder_secrets`` is unchanged.

    Args:
        responder_secrets: Our prekeys' private halves.
        responder_static: Our identity's X25519 encryption key.
        init: The received first message.
        now: Current time, seconds since the Unix epoch.
        associated_data: The same context the initiator passed.

    Returns:
        ``(secrets, ratchet_private_key, initiator_identity)``: the shared secrets,
        our first ratchet key pair's private half (the signed prekey) and the
        initiator's authenticated Ed25519 identity key.

    Raises:
        DecryptionError: If the init fails authentication in any way (opaque).
        InvalidSessionInitError: If it names a prekey we do not hold, or the
            replay memory is full (the owner must rotate and prune).
        PrekeyReusedError: If its one-time prekey was consumed or it was accepted before.
        PrekeyArgumentError: If ``responder_static`` does not match the prekeys,
            ``now`` is not finite or ``associated_data`` is not bytes.
    """
    now, ad = _check_now(now), _check_ad(associated_data)
    if responder_static.public_key != responder_secrets.static_key:
        raise PrekeyArgumentError("responder_static does not match the prekeys' static key")
    gen = _find_generation(responder_secrets, init, now)
    one_time = _find_one_time(responder_secrets, init)
    ephemeral = init.handshake[:_KEY]
    if ephemeral in gen.seen:
        raise PrekeyReusedError("this SessionInit was already accepted")
    if responder_secrets.remembered_inits() >= MAX_REMEMBERED_INITS:
        raise InvalidSessionInitError("replay memory is full; the owner must rotate and prune")
    try:
        state = _responder_handshake(responder_secrets, responder_static, gen, one_time, init, ad)
        initiator = _check_identity_payload(state.read_message(init.handshake), state)
    except (
        InvalidCiphertextError,
        InvalidKeyError,
        NoiseHandshakeError,
        BadSignatureError,
        DecodeError,
    ):
        raise DecryptionError from None
    secrets = _derive_secrets(state)
    responder_secrets._commit_accept(gen, ephemeral, init.one_time_prekey_id)
    return secrets, gen.signed_prekey, initiator


# -- responder helpers ---------------------------------------------------------------------


def _find_generation(secrets: PrekeySecrets, init: SessionInit, now: float) -> Generation:
    gen = secrets._generation(init.signed_prekey_id)
    if gen is None or gen.xwing_prekey_id != init.xwing_prekey_id:
        raise InvalidSessionInitError("SessionInit names prekeys we do not hold")
    if now > gen.expires_at + MAX_DELIVERY_DELAY:
        raise InvalidSessionInitError("SessionInit names retired prekeys")
    return gen


def _find_one_time(secrets: PrekeySecrets, init: SessionInit) -> tuple[int, PrivateKey] | None:
    prekey_id = init.one_time_prekey_id
    if prekey_id is None:
        return None
    key = secrets._one_time_prekey(prekey_id)
    if key is None:
        if secrets._was_issued(prekey_id):
            raise PrekeyReusedError("one-time prekey was already used")
        raise InvalidSessionInitError("SessionInit names an unknown one-time prekey")
    return prekey_id, key


def _responder_handshake(
    secrets: PrekeySecrets,
    static: PrivateKey,
    gen: Generation,
    one_time: tuple[int, PrivateKey] | None,
    init: SessionInit,
    ad: bytes,
) -> HandshakeState:
    ephemeral = PublicKey(init.handshake[:_KEY])
    ss_pq = gen.xwing_prekey.decapsulate(init.xwing_ciphertext)
    psk = _psk(
        ss_pq,
        static.exchange(ephemeral),
        b"" if one_time is None else one_time[1].exchange(ephemeral),
    )
    body = bundle_body(
        identity_key=secrets.identity_key,
        static_key=secrets.static_key,
        signed_prekey_id=gen.signed_prekey_id,
        signed_prekey=gen.signed_prekey.public_key,
        expires_at=gen.expires_at,
        xwing_prekey_id=gen.xwing_prekey_id,
        xwing_prekey=gen.xwing_prekey.public_key,
        one_time_prekey=None if one_time is None else (one_time[0], one_time[1].public_key),
    )
    return _handshake(
        initiator=False,
        prologue=_prologue(body, init.xwing_ciphertext, ad),
        static=gen.signed_prekey,
        remote_static=None,
        psk=psk,
        ephemeral=None,
    )


# -- shared construction --------------------------------------------------------------------


def _handshake(
    *,
    initiator: bool,
    prologue: bytes,
    static: PrivateKey,
    remote_static: PublicKey | None,
    psk: bytes,
    ephemeral: PrivateKey | None,
) -> HandshakeState:
    state = HandshakeState(
        NOISE_PROTOCOL,
        initiator=initiator,
        prologue=prologue,
        static=static,
        remote_static=remote_static,
        psks=(psk,),
    )
    if ephemeral is not None:
        # The initiator must know its ephemeral ``e`` before the handshake, to fold
        # DH(e, .) into the psk0 PSK; it installs a *freshly generated* key through
        # the slot hazmat.handshake_with_ephemeral uses. One key, one session.
        state._fixed_ephemeral = ephemeral
    return state


def _prologue(body: dict[str, object], ciphertext: bytes, ad: bytes) -> bytes:
    return _PROLOGUE_DOMAIN + canonical_encode({"bundle": body, "ct": ciphertext, "ad": ad})


def _psk(ss_pq: bytes, dh_static: bytes, dh_one_time: bytes) -> bytes:
    # Fixed-length inputs (32 + 32 [+ 32]); whether the third is present is in the prologue.
    return hkdf_sha256(ss_pq + dh_static + dh_one_time, salt=b"", info=_PSK_INFO, length=_KEY)


def _derive_secrets(state: HandshakeState) -> SessionSecrets:
    # The chaining key is what Noise's Split() would expand; we expand it once,
    # salted with the transcript hash, instead of creating transport ciphers.
    chaining_key = state._ss.ck
    okm = hkdf_sha256(chaining_key, salt=state.handshake_hash, info=_SECRETS_INFO, length=3 * _KEY)
    return SessionSecrets(
        root_key=okm[:_KEY],
        initiator_header_key=okm[_KEY : 2 * _KEY],
        responder_next_header_key=okm[2 * _KEY :],
    )


def _identity_payload(identity: SigningKey, static: PrivateKey) -> bytes:
    signature = identity.sign(_STATIC_DOMAIN + static.public_key.to_bytes())
    return canonical_encode({"v": 1, "ik": identity.public_key.to_bytes(), "sig": signature})


def _check_identity_payload(payload: bytes, state: HandshakeState) -> VerifyKey:
    fields = Fields(canonical_decode(payload, _PAYLOAD_LIMITS), "session identity", _PAYLOAD_FIELDS)
    if fields.get_int("v") != 1:
        raise DecodeError("unsupported session identity version")
    identity = VerifyKey(fields.get_bytes("ik", size=VerifyKey.SIZE))
    remote_static = state.remote_static
    assert remote_static is not None  # pattern X transmits it before the payload
    signature = fields.get_bytes("sig", size=SigningKey.SIGNATURE_SIZE)
    identity.verify(signature, _STATIC_DOMAIN + remote_static.to_bytes())
    return identity


def _check_now(now: float) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise PrekeyArgumentError("now must be a finite number of seconds")
    return float(now)


def _check_ad(associated_data: bytes) -> bytes:
    if not isinstance(associated_data, bytes | bytearray | memoryview):
        raise PrekeyArgumentError("associated_data must be bytes")
    return bytes(associated_data)
