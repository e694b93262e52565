"""A validator's files: genesis names, and key files encrypted under a passphrase.

The key records (what a ``validator.key`` or ``*.wallet`` holds, and their
checks) are :mod:`dchat_chain.lowlevel`'s ``encode_validator_keys`` and
friends; here they are sealed with ``encrypt_with_passphrase`` (Argon2id +
AEAD), written atomically with mode 0600, and read back. Every failure is a
:class:`ConfigError` naming the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar

from dchat_chain.lowlevel import (
    KeyRecordError,
    ValidatorKeys,
    decode_validator_keys,
    decode_wallet_key,
    encode_validator_keys,
    encode_wallet_key,
)
from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_storage.lowlevel import write_private

from .._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = (
    "CHAT_GENESIS",
    "CURRENCY_GENESIS",
    "VALIDATOR_GENESIS",
    "load_validator_keys",
    "load_wallet",
    "write_validator_keys",
    "write_wallet",
)

T = TypeVar("T")

CURRENCY_GENESIS: Final = "genesis-currency.cbor"
CHAT_GENESIS: Final = "genesis-chat.cbor"
VALIDATOR_GENESIS: Final = "genesis.cbor"  # the genesis of the chain this validator runs


def write_validator_keys(
    path: Path, keys: ValidatorKeys, passphrase: bytes, *, kdf: KdfParams = KdfParams.DEFAULT
) -> None:
    """Encrypt ``keys`` into ``path``."""
    write_private(
        path, encrypt_with_passphrase(encode_validator_keys(keys), passphrase, params=kdf)
    )


def write_wallet(
    path: Path, key: SigningKey, passphrase: bytes, *, kdf: KdfParams = KdfParams.DEFAULT
) -> None:
    """Encrypt an account key into a wallet file."""
    write_private(path, encrypt_with_passphrase(encode_wallet_key(key), passphrase, params=kdf))


def load_validator_keys(path: Path, passphrase: bytes) -> ValidatorKeys:
    """Decrypt a validator key file.

    Raises:
        ConfigError: Unreadable, wrong passphrase, or not a validator key file.
    """
    return _open(path, passphrase, decode_validator_keys)


def load_wallet(path: Path, passphrase: bytes) -> SigningKey:
    """Decrypt a wallet file (a validator key file also works: its account key).

    Raises:
        ConfigError: Unreadable, wrong passphrase, or not a key file.
    """
    return _open(path, passphrase, decode_wallet_key)


def _open(path: Path, passphrase: bytes, decode: Callable[[bytes], T]) -> T:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        plain = decrypt_with_passphrase(blob, passphrase)
    except (DecryptionError, KeystoreFormatError):
        raise ConfigError(f"cannot unlock {path.name}: wrong passphrase?") from None
    try:
        return decode(plain)
    except KeyRecordError as exc:
        raise ConfigError(f"{path.name} {exc.reason}") from None
