"""Sender keys: one symmetric chain per sending device of a group, signed messages.

Theory of operation
-------------------
Each device that posts to a group owns a *sender chain* (Signal's sender
keys): an epoch number, an iteration counter, a 32-byte chain key and an
Ed25519 signing key. It hands the chain (key, iteration, the signing key's
public half) to every other member device over the pairwise ratchet sessions
(``group.key``, :mod:`._groups`); then one message costs one encryption,
whatever the number of members:

    message key     = HMAC-SHA256(chain key, 0x01)
    next chain key  = HMAC-SHA256(chain key, 0x02)
    key || nonce    = HKDF-SHA256(message key, salt = "", info = "dchat-group-msg-v1", 44)
    ct              = ChaCha20-Poly1305(key, nonce, plaintext, ad = canonical header)
    sig             = Ed25519(signing key, "dchat-group-msg-v1" || canonical header || ct)

The chain only moves forward, so a member who joins at iteration ``n``
cannot read what came before it (forward secrecy within a chain); the
signature keeps members, who all hold the chain key, from forging each
other's messages. A receiver derives and keeps the keys of skipped
iterations (at most :data:`MAX_SKIP` ahead, :data:`MAX_SKIPPED` kept), so
messages may arrive out of order; a key is used once, so a replay is refused.
A new epoch (after a member leaves) is a fresh chain and signing key.

Every failure to authenticate (signature or AEAD) is one opaque
``GroupError("unreadable")``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError, DecryptionError, SigningKey, VerifyKey
from dchat_crypto.hazmat import (
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256,
)

from ._errors import GroupError

__all__ = (
    "MAX_SKIP",
    "MAX_SKIPPED",
    "GroupCiphertext",
    "SenderChain",
    "decode_distribution",
    "decode_keyed",
    "encode_distribution",
    "encode_keyed",
    "message_hash",
)

MAX_SKIP: Final = 1000
"""How far ahead of a chain a message may be (iterations derived and kept)."""
MAX_SKIPPED: Final = 256
"""Skipped message keys kept per chain (the oldest are dropped)."""
_INFO: Final = b"dchat-group-msg-v1"
_HEADER: Final = frozenset({"v", "g", "s", "d", "e", "n", "q", "ph"})
_WIRE: Final = frozenset({"h", "ct", "sig"})
_LIMITS: Final = DecodeLimits(max_size=64_000, max_depth=3, max_items=64)
_MAX_N: Final = 2**32


def _step(chain_key: bytes) -> tuple[bytes, bytes]:
    """``(message key, next chain key)``."""
    message_key = hmac.new(chain_key, b"\x01", hashlib.sha256).digest()
    return message_key, hmac.new(chain_key, b"\x02", hashlib.sha256).digest()


def message_hash(wire: bytes) -> bytes:
    """The hash a sender's next message names as ``ph`` (and a later chain anchor commits)."""
    return hashlib.sha256(b"dchat-group-msg-hash" + wire).digest()


@dataclass(frozen=True, slots=True)
class GroupCiphertext:
    """One group message on the wire (the data of a ``group.msg`` control).

    ``canonical({"h": header, "ct": bytes, "sig": bytes(64)})`` with header
    ``{"v": 1, "g": group id(32), "s": sender identity(32), "d": sender
    device(32), "e": epoch, "n": iteration, "q": the sender device's message
    number in the group (from 1, across epochs), "ph": hash of its previous
    message (32 zero bytes for the first)}``.
    """

    group: bytes
    sender: bytes
    device: bytes
    epoch: int
    iteration: int
    seq: int
    prev_hash: bytes
    ciphertext: bytes
    signature: bytes

    def header(self) -> dict[str, object]:
        return {
            "v": 1, "g": self.group, "s": self.sender, "d": self.device, "e": self.epoch,
            "n": self.iteration, "q": self.seq, "ph": self.prev_hash,
        }  # fmt: skip

    def signed_bytes(self) -> bytes:
        return _INFO + canonical_encode(self.header()) + self.ciphertext

    def to_bytes(self) -> bytes:
        return canonical_encode({"h": self.header(), "ct": self.ciphertext, "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupCiphertext:
        """Parse untrusted bytes.

        Raises:
            GroupError: ``malformed``.
        """
        try:
            outer = Fields(canonical_decode(data, _LIMITS), "group message", _WIRE)
            h = Fields(outer.raw("h"), "group message header", _HEADER)
            if h.get_int("v") != 1:
                raise DecodeError("version")
            return cls(
                h.get_bytes("g", size=32), h.get_bytes("s", size=32), h.get_bytes("d", size=32),
                h.get_int("e", hi=_MAX_N), h.get_int("n", hi=_MAX_N), h.get_int("q", lo=1),
                h.get_bytes("ph", size=32), outer.get_bytes("ct", max_size=60_000),
                outer.get_bytes("sig", size=64),
            )  # fmt: skip
        except (DecodeError, ValueError):
            raise GroupError("malformed", "a group message is malformed") from None


@dataclass(slots=True)
class SenderChain:
    """One device's sender chain, as its owner or a receiver holds it.

    Attributes:
        epoch: Which chain of the device this is (a new one after a removal).
        iteration: The iteration the chain key is at (the next message's).
        chain_key: The current chain key.
        public: The signing key's public half (32 bytes).
        signing: The signing key (the owner's chain only).
        skipped: Message keys of iterations passed over, by iteration (receivers).
    """

    epoch: int
    iteration: int
    chain_key: bytes
    public: bytes
    signing: bytes | None = None
    skipped: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def generate(cls, epoch: int) -> SenderChain:
        """A fresh chain (random chain key and signing key) for ``epoch``."""
        key = SigningKey.generate()
        return cls(epoch, 0, os.urandom(32), key.public_key.to_bytes(), key.to_bytes())

    def encrypt(
        self, plaintext: bytes, *, group: bytes, sender: bytes, device: bytes, seq: int,
        prev_hash: bytes,
    ) -> GroupCiphertext:  # fmt: skip
        """Encrypt and sign one message; the chain moves one step."""
        if self.signing is None:
            raise GroupError("not_allowed", "only the owner of a sender chain sends on it")
        message_key, self.chain_key = _step(self.chain_key)
        n, self.iteration = self.iteration, self.iteration + 1
        draft = GroupCiphertext(group, sender, device, self.epoch, n, seq, prev_hash, b"", b"")
        key, nonce = _split(message_key)
        ct = chacha20poly1305_encrypt(key, nonce, plaintext, canonical_encode(draft.header()))
        signed = replace(draft, ciphertext=ct)
        return replace(signed, signature=SigningKey(self.signing).sign(signed.signed_bytes()))

    def decrypt(self, message: GroupCiphertext) -> bytes:
        """Check and open ``message`` (of this chain's epoch); its key is then forgotten.

        Raises:
            GroupError: ``unreadable`` (bad signature or ciphertext), ``replay``
                (that iteration was opened already), ``too_far`` (more than
                :data:`MAX_SKIP` ahead).
        """
        try:
            VerifyKey(self.public).verify(message.signature, message.signed_bytes())
        except BadSignatureError:
            raise GroupError("unreadable", "a group message does not open") from None
        n = message.iteration
        if n < self.iteration:
            message_key = self.skipped.get(n)
            if message_key is None:
                raise GroupError("replay", "that group message was opened already")
            plain = _open(message_key, message)
            del self.skipped[n]
            return plain
        if n - self.iteration > MAX_SKIP:
            raise GroupError("too_far", "a group message is too far ahead of its chain")
        chain, skipped = self.chain_key, dict(self.skipped)
        for i in range(self.iteration, n):
            skipped[i], chain = _step(chain)
        message_key, chain = _step(chain)
        plain = _open(message_key, message)  # nothing changes unless it opens
        while len(skipped) > MAX_SKIPPED:
            del skipped[min(skipped)]
        self.chain_key, self.iteration, self.skipped = chain, n + 1, skipped
        return plain

    def shared(self) -> SenderChain:
        """What a receiver holds of this chain (no signing key, no skipped keys)."""
        return SenderChain(self.epoch, self.iteration, self.chain_key, self.public)

    def to_map(self) -> dict[str, object]:
        value: dict[str, object] = {
            "e": self.epoch, "n": self.iteration, "ck": self.chain_key, "pk": self.public,
        }  # fmt: skip
        if self.signing is not None:
            value["sk"] = self.signing
        if self.skipped:
            value["sx"] = [[i, k] for i, k in sorted(self.skipped.items())]
        return value

    @classmethod
    def from_map(cls, raw: object) -> SenderChain:
        """Read a chain map (a distributed one, or our stored state).

        Raises:
            DecodeError: malformed.
        """
        f = Fields(raw, "sender chain", frozenset({"e", "n", "ck", "pk", "sk", "sx"}))
        skipped: dict[int, bytes] = {}
        for item in f.get_list("sx", max_len=MAX_SKIPPED) if f.has("sx") else []:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], bytes)):
                raise DecodeError("sender chain: bad skipped key")
            skipped[int(item[0])] = item[1]
        return cls(
            f.get_int("e", hi=_MAX_N), f.get_int("n", hi=_MAX_N), f.get_bytes("ck", size=32),
            f.get_bytes("pk", size=32), f.get_bytes("sk", size=32) if f.has("sk") else None,
            skipped,
        )  # fmt: skip


def _split(message_key: bytes) -> tuple[bytes, bytes]:
    okm = hkdf_sha256(message_key, salt=b"", info=_INFO, length=44)
    return okm[:32], okm[32:]


def _open(message_key: bytes, message: GroupCiphertext) -> bytes:
    key, nonce = _split(message_key)
    ad = canonical_encode(message.header())
    try:
        return chacha20poly1305_decrypt(key, nonce, message.ciphertext, ad)
    except DecryptionError:
        raise GroupError("unreadable", "a group message does not open") from None


_DIST: Final = frozenset({"v", "g", "d", "ch"})


def encode_distribution(group: bytes, device: bytes, chain: SenderChain) -> bytes:
    """The data of a ``group.key`` control: ``{"v": 1, "g", "d": device(32), "ch": chain}``.

    ``ch`` is ``{"e": epoch, "n": iteration, "ck": chain key(32), "pk": public key(32)}``.
    """
    return canonical_encode({"v": 1, "g": group, "d": device, "ch": chain.shared().to_map()})


def decode_distribution(data: bytes) -> tuple[bytes, bytes, SenderChain]:
    """``(group, device, chain)`` from a ``group.key`` control.

    Raises:
        GroupError: ``malformed``.
    """
    try:
        f = Fields(canonical_decode(data, _LIMITS), "sender key", _DIST)
        chain = SenderChain.from_map(f.raw("ch"))
        if f.get_int("v") != 1 or chain.signing is not None or chain.skipped:
            raise DecodeError("sender key")
        return f.get_bytes("g", size=32), f.get_bytes("d", size=32), chain
    except (DecodeError, ValueError, TypeError):
        raise GroupError("malformed", "a sender key is malformed") from None


_KEYED: Final = frozenset({"v", "k", "m"})
_KEYED_LIMITS: Final = DecodeLimits(max_size=66_000, max_depth=2, max_items=8)


def encode_keyed(distribution: bytes, message: bytes) -> bytes:
    """The data of a ``group.kmsg`` control: a message with the chain that opens it.

    ``{"v": 1, "k": distribution (a ``group.key``'s data), "m": message (a
    ``group.msg``'s data)}``: how a chain rotated by a membership change is
    handed out, with the sender's next message (one envelope per member, not two).
    """
    return canonical_encode({"v": 1, "k": distribution, "m": message})


def decode_keyed(data: bytes) -> tuple[bytes, bytes]:
    """``(distribution, message)`` of a ``group.kmsg`` control (each checked by its reader).

    Raises:
        GroupError: ``malformed``.
    """
    try:
        f = Fields(canonical_decode(data, _KEYED_LIMITS), "keyed group message", _KEYED)
        if f.get_int("v") != 1:
            raise DecodeError("version")
        return f.get_bytes("k", max_size=1024), f.get_bytes("m", max_size=64_000)
    except (DecodeError, ValueError, TypeError):
        raise GroupError("malformed", "a keyed group message is malformed") from None
