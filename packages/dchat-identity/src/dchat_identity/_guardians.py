"""Guardians: the people who can give an identity back when every device is lost.

Setting up ``M``-of-``N`` guardians:

1. draw a random 32-byte *recovery secret*; its HKDF-derived Ed25519
   *recovery key* goes into the :class:`GuardianSet` (public);
2. split the secret into ``N`` SLIP-0039 mnemonics (threshold ``M``);
3. seal each mnemonic to its guardian's X25519 key with a context naming
   the identity, the guardian's position and key, so a share cannot be moved
   to another guardian or identity (:class:`GuardianShare`);
4. publish ``guardian_set.set_hash`` in the identity document.

The set itself (guardian keys, threshold, recovery key) travels with each
share, so any guardian can hand it to the person recovering. Recovery is in
:mod:`._recovery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import DecryptionError, PublicKey, SigningKey, VerifyKey, open_sealed, seal
from dchat_crypto.hazmat import hkdf_sha256

from ._errors import IdentityArgumentError, InvalidShareError, MalformedRecordError
from ._records import Rng, check_version, decode_fields, default_rng, record_hash, strict
from ._slip39 import MAX_SHARES, split_secret

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._card import ContactCard
    from ._identity import Identity

__all__ = ("Guardian", "GuardianSet", "GuardianShare", "recovery_key", "setup_guardians")

_SET_FIELDS = frozenset({"v", "id", "guardians", "m", "rkey"})
_SHARE_FIELDS = frozenset({"v", "set", "i", "box"})
_LIMITS = DecodeLimits(max_size=16 * 1024, max_depth=4, max_items=128)
_SHARE_CONTEXT = b"dchat-guardian-share-v1\x00"


def recovery_key(secret: bytes) -> SigningKey:
    """The Ed25519 recovery key a recovery secret stands for."""
    return SigningKey.from_bytes(
        hkdf_sha256(secret, salt=b"", info=b"dchat-recovery-key-v1", length=32)
    )


@dataclass(frozen=True, slots=True)
class Guardian:
    """A guardian's public keys: one signs approvals, one receives the share."""

    identity_key: VerifyKey
    encryption_key: PublicKey

    @classmethod
    def from_card(cls, card: ContactCard) -> Guardian:
        """The guardian a (verified) contact card describes."""
        return cls(card.identity_key, card.encryption_key)


@dataclass(frozen=True, slots=True)
class GuardianSet:
    """Who the guardians of ``subject`` are, how many must agree, and the recovery key."""

    subject: IdentityId
    guardians: tuple[Guardian, ...]
    threshold: int
    recovery_key: VerifyKey

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": bytes(self.subject),
            "guardians": [
                [g.identity_key.to_bytes(), g.encryption_key.to_bytes()] for g in self.guardians
            ],
            "m": self.threshold,
            "rkey": self.recovery_key.to_bytes(),
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self._fields())

    @property
    def set_hash(self) -> bytes:
        """The hash an identity document carries as its guardian commitment."""
        return record_hash(b"dchat-guardians", self.to_bytes())

    def index_of(self, identity_key: VerifyKey) -> int | None:
        """The position of the guardian with ``identity_key``, if they are one."""
        keys = [g.identity_key for g in self.guardians]
        return keys.index(identity_key) if identity_key in keys else None

    @classmethod
    def from_bytes(cls, data: bytes) -> GuardianSet:
        """Strictly decode a guardian set (2 <= threshold <= guardians <= 16, distinct)."""
        fields = decode_fields(data, "guardian set", _SET_FIELDS, _LIMITS)
        with strict("guardian set"):
            check_version(fields, "guardian set")
            guardians = tuple(
                _guardian(raw) for raw in fields.get_list("guardians", max_len=MAX_SHARES)
            )
            result = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                guardians,
                fields.get_int("m", lo=2, hi=MAX_SHARES),
                VerifyKey.from_bytes(fields.get_bytes("rkey", size=32)),
            )
        keys = {g.identity_key for g in guardians}
        if not result.threshold <= len(guardians) or len(keys) != len(guardians):
            raise MalformedRecordError("malformed guardian set: bad threshold or duplicates")
        return result


def _guardian(raw: object) -> Guardian:
    if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(k, bytes) for k in raw):
        raise MalformedRecordError("malformed guardian set: bad guardian entry")
    return Guardian(VerifyKey.from_bytes(raw[0]), PublicKey.from_bytes(raw[1]))


def _share_context(gset: GuardianSet, index: int) -> bytes:
    guardian = gset.guardians[index]
    return _SHARE_CONTEXT + gset.set_hash + bytes([index]) + guardian.identity_key.to_bytes()


@dataclass(frozen=True, slots=True)
class GuardianShare:
    """What guardian ``index`` keeps: the set and their share, sealed to them."""

    guardian_set: GuardianSet
    index: int
    sealed: bytes

    def open(self, guardian: Identity) -> str:
        """The SLIP-0039 mnemonic inside, for the guardian it was sealed to.

        Raises:
            InvalidShareError: not this guardian's share, or tampered with.
        """
        try:
            raw = open_sealed(
                guardian.encryption_key,
                self.sealed,
                context=_share_context(self.guardian_set, self.index),
            )
            return raw.decode("utf-8")
        except (DecryptionError, UnicodeDecodeError):
            raise InvalidShareError("this share cannot be opened with this key") from None

    def to_bytes(self) -> bytes:
        """Canonical encoding (the share stays sealed)."""
        return canonical_encode(
            {"v": 1, "set": self.guardian_set.to_bytes(), "i": self.index, "box": self.sealed}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> GuardianShare:
        """Strictly decode a stored share."""
        fields = decode_fields(data, "guardian share", _SHARE_FIELDS, _LIMITS)
        with strict("guardian share"):
            check_version(fields, "guardian share")
            gset = GuardianSet.from_bytes(fields.get_bytes("set", max_size=8192))
            index = fields.get_int("i", hi=len(gset.guardians) - 1)
            sealed = fields.get_bytes("box", max_size=2048)
        return cls(gset, index, sealed)


def setup_guardians(
    subject: IdentityId,
    guardians: Sequence[Guardian],
    threshold: int,
    *,
    rng: Rng = default_rng,
) -> tuple[GuardianSet, list[GuardianShare]]:
    """Make an ``threshold``-of-``len(guardians)`` guardian set and one share per guardian.

    Put ``guardian_set.set_hash`` into the next identity document, and deliver
    share ``i`` to guardian ``i``.

    Raises:
        IdentityArgumentError: fewer than 2 or more than 16 guardians, duplicates,
            or a threshold outside ``[2, len(guardians)]``.
    """
    if len({g.identity_key for g in guardians}) != len(guardians):
        raise IdentityArgumentError("each guardian may appear once")
    secret = rng(32)
    mnemonics = split_secret(secret, threshold, len(guardians))
    gset = GuardianSet(subject, tuple(guardians), threshold, recovery_key(secret).public_key)
    shares = [
        GuardianShare(
            gset, i, seal(g.encryption_key, words.encode(), context=_share_context(gset, i))
        )
        for i, (g, words) in enumerate(zip(guardians, mnemonics, strict=True))
    ]
    return gset, shares
