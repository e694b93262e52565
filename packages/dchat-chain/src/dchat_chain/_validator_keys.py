"""A validator's keys and the canonical records its key files hold.

A validator holds two secrets: its Ed25519 account key (the currency-chain
account that owns its stake; ``NodeId.derive`` of its public key is both its
validator id and its link identity) and its BLS vote key. A wallet holds one
Ed25519 account key. The records are canonical maps; a node encrypts them
under a passphrase (``dchat_crypto.encrypt_with_passphrase``) and writes them
to ``validator.key`` and ``*.wallet`` files::

    validator  {"v": 1, "kind": "validator", "ed25519": seed(32), "bls": secret(32)}
    wallet     {"v": 1, "kind": "wallet", "ed25519": seed(32)}

This module only turns keys into record bytes and back (sans-IO: no files, no
passphrases). Decoding checks the version, the kind and every key, and raises
:class:`KeyRecordError` for anything else; a validator record also serves as a
wallet (its account key). Nothing here returns key material in a ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from dchat_core import DchatError, Fields, NodeId, canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

from ._errors import KeyRecordError

__all__ = (
    "ValidatorKeys",
    "decode_validator_keys",
    "decode_wallet_key",
    "encode_validator_keys",
    "encode_wallet_key",
)

_FIELDS: Final = frozenset({"v", "kind", "ed25519", "bls"})
SEED_SIZE: Final = 64  # Ed25519 seed (32) then BLS key-generation input (32)


@dataclass(frozen=True)
class ValidatorKeys:
    """A validator's account (Ed25519) and vote (BLS) keys."""

    account: SigningKey = field(repr=False)
    bls: BlsSecretKey = field(repr=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> ValidatorKeys:
        """Both keys from 64 secret, uniformly random bytes (the same seed, the same keys).

        Raises:
            KeyRecordError: ``seed`` is not 64 bytes.
        """
        if len(seed) != SEED_SIZE:
            raise KeyRecordError(f"needs a {SEED_SIZE}-byte seed, not {len(seed)} bytes")
        return cls(SigningKey.from_bytes(seed[:32]), BlsSecretKey.from_seed(seed[32:]))

    @property
    def account_public(self) -> bytes:
        """The 32-byte account key (the validator's operator address)."""
        return self.account.public_key.to_bytes()

    @property
    def node_id(self) -> NodeId:
        """Validator id and link identity: ``NodeId.derive(account key)``."""
        return NodeId.derive(self.account_public)


def encode_validator_keys(keys: ValidatorKeys) -> bytes:
    """The canonical validator record (secret: encrypt it before it leaves memory)."""
    record = {
        "v": 1,
        "kind": "validator",
        "ed25519": keys.account.to_bytes(),
        "bls": keys.bls.to_bytes(),
    }
    return canonical_encode(record)


def encode_wallet_key(key: SigningKey) -> bytes:
    """The canonical wallet record of an account key (secret, like the validator record)."""
    return canonical_encode({"v": 1, "kind": "wallet", "ed25519": key.to_bytes()})


def decode_validator_keys(data: bytes) -> ValidatorKeys:
    """The keys of a validator record.

    Raises:
        KeyRecordError: Not canonical, not version 1, not a validator record, or a bad key.
    """
    fields = _fields(data, "validator")
    try:
        account = SigningKey.from_bytes(fields.get_bytes("ed25519", size=32))
        bls = BlsSecretKey.from_bytes(fields.get_bytes("bls", size=32))
    except DchatError as exc:
        raise KeyRecordError(f"holds an invalid key: {exc}") from None
    return ValidatorKeys(account, bls)


def decode_wallet_key(data: bytes) -> SigningKey:
    """The account key of a wallet record, or of a validator record.

    Raises:
        KeyRecordError: Not canonical, not version 1, neither kind, or a bad key.
    """
    fields = _fields(data, "wallet", "validator")
    try:
        return SigningKey.from_bytes(fields.get_bytes("ed25519", size=32))
    except DchatError as exc:
        raise KeyRecordError(f"holds an invalid key: {exc}") from None


def _fields(data: bytes, *kinds: str) -> Fields:
    try:
        fields = Fields(canonical_decode(data), "key file", _FIELDS)
        version, kind = fields.get_int("v"), fields.get_str("kind", max_len=16)
    except DchatError as exc:
        raise KeyRecordError(f"is corrupt: {exc}") from None
    if version != 1 or kind not in kinds:
        raise KeyRecordError(f"is not a {' or '.join(kinds)} key file")
    return fields
