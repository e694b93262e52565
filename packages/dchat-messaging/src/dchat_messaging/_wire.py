"""The session layer's wire form, inside a sealed envelope.

A :class:`SealedEnvelope` (``{"v": 1, "mb": mailbox, "ct": sealed}``, see
:mod:`._envelope`) shows a relay only the recipient device's mailbox. Its
``sealed`` is a sealed box (:func:`dchat_crypto.seal`) to the recipient
*device's* X25519 key, with ``b"dchat-envelope-v2\\x00" || mailbox`` bound in
as context, of the canonical map::

    {"v": 2, "from": sender identity id(32), "dev": sender device key(32),
     ["init": SessionInit], "msg": ratchet message, ["surbs": supply]}

``init`` is present on the first message of a session (X-Wing session setup
to the recipient device's prekey bundle); ``surbs``, when present, is a
supply of reply blocks the sender gives the recipient (protocol §45,
:mod:`._reply_blocks`), kept only once the message authenticates; ``msg``
is a Double Ratchet message with encrypted header whose plaintext is a
padded :class:`~._content.Content`.

The sealed box hides who writes from the relay; the recipient uses ``from``
and ``dev`` only to pick the session, and the session then authenticates them
(a forged ``from`` selects a session whose keys the forger lacks, and the
ratchet refuses). The sealed box uses the device's long-term key, so a thief
of that key learns who wrote old messages, not what they said (as in Signal's
sealed sender); the content has the ratchet's forward secrecy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    MailboxId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import (
    DecryptionError,
    InvalidKeyError,
    PrivateKey,
    PublicKey,
    SessionInit,
    VerifyKey,
    open_sealed,
    seal,
)
from dchat_crypto.hazmat import InvalidSessionInitError

from ._envelope import SealedEnvelope
from ._errors import EnvelopeRejectedError

__all__ = ("SessionEnvelope", "open_session_envelope", "seal_session_envelope")


@functools.lru_cache(maxsize=1024)
def _sender(raw: bytes) -> IdentityId:
    """One id object per sender lately seen: its text form (a conversation's key) is made once."""
    return IdentityId(raw)


_CONTEXT: Final = b"dchat-envelope-v2\x00"
_FIELDS: Final = frozenset({"v", "from", "dev", "init", "msg", "surbs"})
_LIMITS: Final = DecodeLimits(max_size=72_000, max_depth=1, max_items=16)
_MAX_RATCHET: Final = 68_000
_MAX_SURBS: Final = 16_384


@dataclass(frozen=True, slots=True)
class SessionEnvelope:
    """The opened outer layer: who claims to write, and the session messages."""

    sender: IdentityId
    sender_device: VerifyKey
    init: SessionInit | None
    message: bytes
    surbs: bytes | None = None
    """Reply blocks the sender gives (a supply, protocol §45), or None."""


def seal_session_envelope(
    inner: SessionEnvelope, *, mailbox: MailboxId, device_key: PublicKey
) -> SealedEnvelope:
    """Seal ``inner`` to the recipient device (``device_key``, ``mailbox``)."""
    value: dict[str, object] = {
        "v": 2,
        "from": bytes(inner.sender),
        "dev": inner.sender_device.to_bytes(),
        "msg": inner.message,
    }
    if inner.init is not None:
        value["init"] = inner.init.to_bytes()
    if inner.surbs is not None:
        value["surbs"] = inner.surbs
    sealed = seal(device_key, canonical_encode(value), context=_CONTEXT + bytes(mailbox))
    return SealedEnvelope(mailbox, sealed)


def open_session_envelope(envelope: SealedEnvelope, device_key: PrivateKey) -> SessionEnvelope:
    """Open the outer layer with the recipient device's X25519 key.

    Raises:
        EnvelopeRejectedError: for any failure (opaque by design).
    """
    try:
        context = _CONTEXT + bytes(envelope.mailbox)
        plain = open_sealed(device_key, envelope.ciphertext, context=context)
        fields = Fields(canonical_decode(plain, _LIMITS), "session envelope", _FIELDS)
        if fields.get_int("v") != 2:
            raise ValueError("version")
        init = None
        if fields.has("init"):
            init = SessionInit.from_bytes(fields.get_bytes("init", max_size=4096))
        return SessionEnvelope(
            _sender(fields.get_bytes("from", size=32)),
            VerifyKey.from_bytes(fields.get_bytes("dev", size=32)),
            init,
            fields.get_bytes("msg", max_size=_MAX_RATCHET),
            fields.get_bytes("surbs", max_size=_MAX_SURBS) if fields.has("surbs") else None,
        )
    except (DecryptionError, DecodeError, InvalidKeyError, InvalidSessionInitError, ValueError):
        raise EnvelopeRejectedError from None
