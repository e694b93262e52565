"""Encrypted, device-signed sync messages between one identity's devices.

::

    header = {"v": 1, "id": subject, "dev": sender device key, "epoch": sync key epoch}
    box    = seal_box(sync key, canonical([op, ...]), label="sync", ad=canonical(header))
    sig    = Ed25519(device key, "dchat-sync-v1" 0x00 || canonical({**header, "box": box}))
    message = canonical({**header, "box": box, "sig": sig})

The sync key is shared by the identity's devices (derived from the seed, or
handed over at pairing), so relays and other people read nothing; the device
signature says which device wrote the operations, and the receiver checks
against its document chain that the device is certified and not revoked.
Operations are idempotent, so a replayed message changes nothing. After a
revocation the owner moves to a new epoch (:meth:`SyncKey.next_epoch`), since
the revoked device still knows the old key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError, SigningKey, VerifyKey
from dchat_crypto.hazmat import hkdf_sha256

from ._aead import open_box, seal_box
from ._crdt import SyncOp
from ._errors import ForgedRecordError, IdentityArgumentError, MalformedRecordError
from ._records import Rng, check_version, decode_fields, default_rng, strict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_core import IdentityId

    from ._chain import DocumentChain

__all__ = ("SyncKey", "open_sync_message", "seal_sync_message")

_DOMAIN = b"dchat-sync-v1\x00"
MAX_OPS = 4096
_LIMITS = DecodeLimits(max_size=4 << 20, max_depth=2, max_items=16)
_OPS_LIMITS = DecodeLimits(max_size=4 << 20, max_depth=5, max_items=MAX_OPS * 300)


@dataclass(frozen=True, slots=True, repr=False)
class SyncKey:
    """The devices' shared sync key for one epoch."""

    secret: bytes
    epoch: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != 32:
            raise IdentityArgumentError("a sync key is 32 bytes")

    def next_epoch(self) -> SyncKey:
        """The key of the next epoch (after a device revocation)."""
        info = b"dchat-sync-epoch-v1" + (self.epoch + 1).to_bytes(8, "big")
        return SyncKey(hkdf_sha256(self.secret, salt=b"", info=info, length=32), self.epoch + 1)

    def __repr__(self) -> str:
        return f"SyncKey(epoch={self.epoch})"


def seal_sync_message(
    ops: Sequence[SyncOp],
    *,
    key: SyncKey,
    device_key: SigningKey,
    subject: IdentityId,
    rng: Rng = default_rng,
) -> bytes:
    """Encrypt ``ops`` for the identity's other devices and sign as ``device_key``."""
    if len(ops) > MAX_OPS:
        raise IdentityArgumentError(f"at most {MAX_OPS} operations per sync message")
    header = _header(subject, device_key.public_key, key.epoch)
    plain = canonical_encode([op.to_value() for op in ops])
    box = seal_box(key.secret, plain, label=b"sync", ad=canonical_encode(header), rng=rng)
    sig = device_key.sign(_DOMAIN + canonical_encode({**header, "box": box}))
    return canonical_encode({**header, "box": box, "sig": sig})


def _header(subject: IdentityId, device: VerifyKey, epoch: int) -> dict[str, Any]:
    return {"v": 1, "id": bytes(subject), "dev": device.to_bytes(), "epoch": epoch}


def open_sync_message(data: bytes, *, key: SyncKey, chain: DocumentChain) -> list[SyncOp]:
    """Check and decrypt a sync message from another device of ``chain``'s identity.

    Raises:
        MalformedRecordError: not a well-formed sync message.
        RevokedDeviceError: the sender is not an active device of the identity.
        ForgedRecordError: bad signature, another identity, wrong key or epoch.
    """
    allowed = frozenset({"v", "id", "dev", "epoch", "box", "sig"})
    fields = decode_fields(data, "sync message", allowed, _LIMITS)
    with strict("sync message"):
        check_version(fields, "sync message")
        subject = fields.get_bytes("id", size=32)
        device = VerifyKey.from_bytes(fields.get_bytes("dev", size=32))
        epoch = fields.get_int("epoch")
        box, sig = fields.get_bytes("box"), fields.get_bytes("sig", size=64)
    chain.check_device(device)
    header = {"v": 1, "id": subject, "dev": device.to_bytes(), "epoch": epoch}
    try:
        device.verify(sig, _DOMAIN + canonical_encode({**header, "box": box}))
    except BadSignatureError:
        raise ForgedRecordError from None
    if subject != bytes(chain.subject) or epoch != key.epoch:
        raise ForgedRecordError
    plain = open_box(key.secret, box, label=b"sync", ad=canonical_encode(header))
    try:
        raw_ops = canonical_decode(plain, _OPS_LIMITS)
    except DecodeError:
        raise MalformedRecordError("malformed sync message payload") from None
    if not isinstance(raw_ops, list) or len(raw_ops) > MAX_OPS:
        raise MalformedRecordError("malformed sync message payload")
    return [SyncOp.from_value(op) for op in raw_ops]
