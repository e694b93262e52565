"""Validator and wallet key files, encrypted under a passphrase.

A validator holds two secrets: its Ed25519 account key (the currency-chain
account that owns its stake; ``NodeId.derive`` of its public key is both its
validator id and its link identity) and its BLS vote key. A wallet holds one
Ed25519 account key. Both files are ``encrypt_with_passphrase`` blobs (Argon2id
+ AEAD) around a canonical map, written atomically with mode 0600::

    validator.key  {"v": 1, "kind": "validator", "ed25519": seed(32), "bls": secret(32)}
    *.wallet       {"v": 1, "kind": "wallet", "ed25519": seed(32)}

Nothing here logs or returns key material in a ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, Fields, NodeId, canonical_decode, canonical_encode
from dchat_crypto import (
    BlsSecretKey,
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)

from .._errors import ConfigError
from .._files import write_private

if TYPE_CHECKING:
    from pathlib import Path

__all__ = (
    "ValidatorKeys",
    "load_validator_keys",
    "load_wallet",
    "write_validator_keys",
    "write_wallet",
)

_FIELDS: Final = frozenset({"v", "kind", "ed25519", "bls"})


@dataclass(frozen=True)
class ValidatorKeys:
    """A validator's account (Ed25519) and vote (BLS) keys."""

    account: SigningKey = field(repr=False)
    bls: BlsSecretKey = field(repr=False)

    @classmethod
    def generate(cls) -> ValidatorKeys:
        """Fresh random keys."""
        return cls(SigningKey.generate(), BlsSecretKey.generate())

    @property
    def account_public(self) -> bytes:
        """The 32-byte account key (the validator's operator address)."""
        return self.account.public_key.to_bytes()

    @property
    def node_id(self) -> NodeId:
        """Validator id and link identity: ``NodeId.derive(account key)``."""
        return NodeId.derive(self.account_public)


def _seal(path: Path, content: dict[str, object], passphrase: bytes, kdf: KdfParams) -> None:
    write_private(path, encrypt_with_passphrase(canonical_encode(content), passphrase, params=kdf))


def _open(path: Path, passphrase: bytes, *kinds: str) -> Fields:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        plain = decrypt_with_passphrase(blob, passphrase)
    except (DecryptionError, KeystoreFormatError):
        raise ConfigError(f"cannot unlock {path.name}: wrong passphrase?") from None
    try:
        fields = Fields(canonical_decode(plain), "key file", _FIELDS)
        if fields.get_int("v") != 1 or fields.get_str("kind", max_len=16) not in kinds:
            raise ConfigError(f"{path.name} is not a {' or '.join(kinds)} key file")
    except DchatError as exc:
        raise ConfigError(f"{path.name} is corrupt: {exc}") from None
    return fields


def write_validator_keys(
    path: Path, keys: ValidatorKeys, passphrase: bytes, *, kdf: KdfParams = KdfParams.DEFAULT
) -> None:
    """Encrypt ``keys`` into ``path``."""
    content = {
        "v": 1,
        "kind": "validator",
        "ed25519": keys.account.to_bytes(),
        "bls": keys.bls.to_bytes(),
    }
    _seal(path, content, passphrase, kdf)


def load_validator_keys(path: Path, passphrase: bytes) -> ValidatorKeys:
    """Decrypt a validator key file.

    Raises:
        ConfigError: Unreadable, wrong passphrase, or not a validator key file.
    """
    fields = _open(path, passphrase, "validator")
    try:
        account = SigningKey.from_bytes(fields.get_bytes("ed25519", size=32))
        bls = BlsSecretKey.from_bytes(fields.get_bytes("bls", size=32))
    except DchatError as exc:
        raise ConfigError(f"{path.name} holds an invalid key: {exc}") from None
    return ValidatorKeys(account, bls)


def write_wallet(
    path: Path, key: SigningKey, passphrase: bytes, *, kdf: KdfParams = KdfParams.DEFAULT
) -> None:
    """Encrypt an account key into a wallet file."""
    _seal(path, {"v": 1, "kind": "wallet", "ed25519": key.to_bytes()}, passphrase, kdf)


def load_wallet(path: Path, passphrase: bytes) -> SigningKey:
    """Decrypt a wallet file (a validator key file also works: its account key).

    Raises:
        ConfigError: Unreadable, wrong passphrase, or not a key file.
    """
    fields = _open(path, passphrase, "wallet", "validator")
    try:
        return SigningKey.from_bytes(fields.get_bytes("ed25519", size=32))
    except DchatError as exc:
        raise ConfigError(f"{path.name} holds an invalid key: {exc}") from None
