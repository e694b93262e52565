"""Wire formats between one identity's devices: pairing rendezvous and sync mailboxes.

Two devices never listen to each other; everything goes through the home
relay, into mailboxes whose Ed25519 keys only the right parties can derive
(anyone may put into a mailbox, fetching needs its key, and the relay sees
only ``mailbox_id = BLAKE2b(public key)``)::

    rendezvous key (direction d in {b"to-host", b"to-joiner"})
        = Ed25519 seed HKDF-SHA256(ikm=code (10 base32 chars, ASCII),
                                   salt=b"dchat-pair-rendezvous-v1", info=d, 32)
    sync mailbox key of a device
        = Ed25519 seed HKDF-SHA256(ikm=sync secret of the epoch,
                                   salt=device public key, info=b"dchat-sync-mailbox-v1", 32)

Pairing items carry the four messages of the pairing protocol
(:mod:`._pairing`) plus an attestation challenge/answer and the new device's
starter kit; sync items are sealed (``dchat_crypto.seal``) to the receiving
device's X25519 key and hold a document, a signed rekey and/or a sync message
(:mod:`._sync`). The relay envelope around an item (``SealedEnvelope``) is the
node's business: this module sees only its ciphertext. Every decoder here is
strict and bounded and raises ``MalformedRecordError`` (an item that does not
open under the device's key: ``ForgedRecordError``) only. ``docs/protocol.md``
section 17 has the byte layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from dchat_core import DecodeError, DecodeLimits, Fields, IdentityId, canonical_decode
from dchat_core import canonical_encode as encode
from dchat_crypto import (
    BadSignatureError,
    DecryptionError,
    PrivateKey,
    PublicKey,
    SigningKey,
    VerifyKey,
    open_sealed,
    seal,
)
from dchat_crypto.hazmat import hkdf_sha256

from ._errors import ForgedRecordError, MalformedRecordError

__all__ = (
    "ABORT_REASONS",
    "ITEM_CONTEXT",
    "PAIR_KINDS",
    "PairItem",
    "Rekey",
    "SyncItem",
    "decode_pair_item",
    "decode_starter",
    "decode_sync_item",
    "encode_pair_item",
    "encode_starter",
    "encode_sync_item",
    "open_sync_item",
    "rendezvous_keys",
    "seal_sync_item",
    "sync_mailbox_key",
)

PAIR_KINDS: Final = {
    "hello": frozenset({"m"}),
    "keys": frozenset({"m", "nonce"}),
    "reveal": frozenset({"m", "att"}),
    "welcome": frozenset({"m", "kit"}),
    "abort": frozenset({"why"}),
}
ABORT_REASONS: Final = frozenset({"cancelled", "sas_mismatch", "expired", "failed"})
ITEM_CONTEXT: Final = b"dchat-sync-item-v1"
_ITEM_LIMITS = DecodeLimits(max_size=64 * 1024, max_depth=2, max_items=16)
_REKEY_DOMAIN = b"dchat-sync-rekey-v1\x00"
_MAX_BLOB = 60 * 1024


def _seed(ikm: bytes, salt: bytes, info: bytes) -> SigningKey:
    return SigningKey.from_bytes(hkdf_sha256(ikm, salt=salt, info=info, length=32))


def rendezvous_keys(code: str) -> tuple[SigningKey, SigningKey]:
    """The ``(to_host, to_joiner)`` mailbox keys of a pairing code (dashes and case ignored)."""
    text = "".join(code.split()).replace("-", "").upper().encode("ascii", "replace")
    salt = b"dchat-pair-rendezvous-v1"
    return _seed(text, salt, b"to-host"), _seed(text, salt, b"to-joiner")


def sync_mailbox_key(secret: bytes, device: VerifyKey) -> SigningKey:
    """The key of ``device``'s sync mailbox under the sync secret of one epoch."""
    return _seed(secret, device.to_bytes(), b"dchat-sync-mailbox-v1")


def _decode_map(data: bytes, what: str, allowed: frozenset[str]) -> Fields:
    if not isinstance(data, bytes):
        raise MalformedRecordError(f"malformed {what}")
    try:
        fields = Fields(canonical_decode(data, _ITEM_LIMITS), what, frozenset(allowed))
        if fields.get_int("v") != 1:
            raise MalformedRecordError(f"unsupported {what} version")
    except DecodeError:
        raise MalformedRecordError(f"malformed {what}") from None
    return fields


# -- pairing items ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairItem:
    """One rendezvous item: its kind and fields (all bytes, except ``why``)."""

    kind: str
    fields: dict[str, Any]


def encode_pair_item(kind: str, **fields: bytes | str) -> bytes:
    """``canonical({"v": 1, "t": kind, **fields})``."""
    if kind not in PAIR_KINDS or set(fields) != PAIR_KINDS[kind]:
        raise ValueError(f"bad pairing item {kind!r}")
    return encode({"v": 1, "t": kind, **fields})


def decode_pair_item(data: bytes) -> PairItem:
    """Strictly decode a rendezvous item."""
    allowed = frozenset({"v", "t"}).union(*PAIR_KINDS.values())
    fields = _decode_map(data, "pairing item", allowed)
    try:
        kind = fields.get_str("t", max_len=16)
        expected = PAIR_KINDS.get(kind)
        if expected is None or not all(fields.has(k) for k in expected):
            raise MalformedRecordError("malformed pairing item")
        if any(fields.has(k) for k in allowed - expected - {"v", "t"}):
            raise MalformedRecordError("malformed pairing item")
        if kind == "abort":
            why = fields.get_str("why", max_len=32)
            if why not in ABORT_REASONS:
                raise MalformedRecordError("malformed pairing item")
            return PairItem(kind, {"why": why})
        return PairItem(kind, {k: fields.get_bytes(k, max_size=_MAX_BLOB) for k in expected})
    except DecodeError:
        raise MalformedRecordError("malformed pairing item") from None


def encode_starter(card: bytes, document: bytes, epoch: int) -> bytes:
    """What the new device gets besides its certificate: card, head document, sync epoch."""
    return encode({"v": 1, "card": card, "doc": document, "epoch": epoch})


def decode_starter(data: bytes) -> tuple[bytes, bytes, int]:
    """``(card, document, epoch)`` of a starter kit."""
    fields = _decode_map(data, "starter kit", frozenset({"v", "card", "doc", "epoch"}))
    try:
        return (
            fields.get_bytes("card", max_size=2048),
            fields.get_bytes("doc", max_size=_MAX_BLOB),
            fields.get_int("epoch", hi=2**32),
        )
    except DecodeError:
        raise MalformedRecordError("malformed starter kit") from None


# -- sync items ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Rekey:
    """The identity key handing one device the sync secret of a new epoch."""

    subject: IdentityId
    device: VerifyKey
    epoch: int
    secret: bytes
    signature: bytes

    @classmethod
    def issue(
        cls, identity_key: SigningKey, subject: IdentityId, device: VerifyKey, epoch: int,
        secret: bytes,
    ) -> Rekey:  # fmt: skip
        """Sign a rekey for ``device``."""
        unsigned = cls(subject, device, epoch, secret, b"")
        return cls(
            subject, device, epoch, secret, identity_key.sign(_REKEY_DOMAIN + unsigned._body())
        )

    def _body(self) -> bytes:
        return encode(
            {"v": 1, "id": bytes(self.subject), "dev": self.device.to_bytes(),
             "epoch": self.epoch, "secret": self.secret}
        )  # fmt: skip

    def verify(self, identity_key: VerifyKey, subject: IdentityId, device: VerifyKey) -> None:
        """Check the signature and that the rekey is for ``subject`` and ``device``."""
        try:
            identity_key.verify(self.signature, _REKEY_DOMAIN + self._body())
        except BadSignatureError:
            raise ForgedRecordError from None
        if self.subject != subject or self.device != device:
            raise ForgedRecordError

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        return encode(
            {"v": 1, "id": bytes(self.subject), "dev": self.device.to_bytes(),
             "epoch": self.epoch, "secret": self.secret, "sig": self.signature}
        )  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> Rekey:
        """Strictly decode (the signature is checked by :meth:`verify`)."""
        fields = _decode_map(data, "rekey", frozenset({"v", "id", "dev", "epoch", "secret", "sig"}))
        try:
            return cls(
                IdentityId(fields.get_bytes("id", size=32)),
                VerifyKey.from_bytes(fields.get_bytes("dev", size=32)),
                fields.get_int("epoch", lo=1, hi=2**32),
                fields.get_bytes("secret", size=32),
                fields.get_bytes("sig", size=64),
            )
        except (DecodeError, ValueError):
            raise MalformedRecordError("malformed rekey") from None


@dataclass(frozen=True, slots=True)
class SyncItem:
    """What one sync-mailbox entry holds (each part optional, at least one present)."""

    document: bytes | None = None
    rekey: bytes | None = None
    ops: bytes | None = None


def encode_sync_item(item: SyncItem) -> bytes:
    """``canonical({"v": 1, ["doc"], ["rekey"], ["ops"]})``."""
    body: dict[str, Any] = {"v": 1}
    for key, value in (("doc", item.document), ("rekey", item.rekey), ("ops", item.ops)):
        if value is not None:
            body[key] = value
    return encode(body)


def decode_sync_item(data: bytes) -> SyncItem:
    """Strictly decode a (decrypted) sync item."""
    fields = _decode_map(data, "sync item", frozenset({"v", "doc", "rekey", "ops"}))
    try:
        parts = {
            key: fields.get_bytes(key, max_size=_MAX_BLOB) if fields.has(key) else None
            for key in ("doc", "rekey", "ops")
        }
    except DecodeError:
        raise MalformedRecordError("malformed sync item") from None
    if all(value is None for value in parts.values()):
        raise MalformedRecordError("malformed sync item: empty")
    return SyncItem(parts["doc"], parts["rekey"], parts["ops"])


def seal_sync_item(item: SyncItem, device_exchange_key: PublicKey) -> bytes:
    """The ciphertext of one sync-mailbox entry for the device holding ``device_exchange_key``."""
    return seal(device_exchange_key, encode_sync_item(item), context=ITEM_CONTEXT)


def open_sync_item(ciphertext: bytes, exchange_key: PrivateKey) -> SyncItem:
    """Open one sync-mailbox entry addressed to the device holding ``exchange_key``.

    Raises:
        ForgedRecordError: not sealed to this device (or tampered with).
        MalformedRecordError: it opens, but is not a well-formed item.
    """
    try:
        plain = open_sealed(exchange_key, ciphertext, context=ITEM_CONTEXT)
    except DecryptionError:
        raise ForgedRecordError from None
    return decode_sync_item(plain)
