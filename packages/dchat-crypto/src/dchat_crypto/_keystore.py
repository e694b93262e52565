"""Passphrase keystore: a secret encrypted under an Argon2id-derived key.

Blob layout (version 1, all integers big-endian)::

    offset size  field
    0      4     magic b"DCKS"
    4      1     version = 0x01
    5      4     memory_kib  (Argon2id memory cost, KiB)
    9      4     iterations  (Argon2id time cost)
    13     1     lanes       (Argon2id parallelism)
    14     16    salt        (random)
    30     12    nonce       (random)
    42     n+16  ChaCha20-Poly1305(key, nonce, secret, ad=bytes 0..41)

``key = Argon2id(passphrase, salt, memory_kib, iterations, lanes, length=32)``.
The whole header is the AEAD's associated data, so tampering with the KDF
parameters, salt or nonce fails authentication like a wrong passphrase does.

Structural problems (short blob, bad magic/version, absurd parameters) raise
:class:`KeystoreFormatError` *before* any KDF runs, so a hostile blob cannot
make us allocate gigabytes or spin for minutes. Wrong passphrases and tampered
contents raise the opaque :class:`DecryptionError`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ._errors import KeystoreFormatError
from ._primitives import AEAD_TAG_SIZE, chacha20poly1305_decrypt, chacha20poly1305_encrypt

__all__ = ("KdfParams", "decrypt_with_passphrase", "encrypt_with_passphrase")

_MAGIC = b"DCKS"
_VERSION = 1
_PARAMS = struct.Struct(">4sBIIB")
_SALT_SIZE = 16
_NONCE_SIZE = 12
_HEADER_SIZE = _PARAMS.size + _SALT_SIZE + _NONCE_SIZE

# DoS guard for blobs from untrusted storage: far above any sane setting.
# 1 GiB: 16x the default. A single corrupted byte in a blob header must not make
# unlocking try to allocate many gigabytes.
_MAX_MEMORY_KIB = 1024 * 1024
_MAX_ITERATIONS = 64
_MAX_LANES = 16


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters.

    Attributes:
        memory_kib: Memory cost in KiB (at least ``8 * lanes``, at most 1 GiB).
        iterations: Number of passes (1 to 64).
        lanes: Degree of parallelism (1 to 16).
    """

    memory_kib: int
    iterations: int
    lanes: int

    DEFAULT: ClassVar[KdfParams]
    """64 MiB, 3 passes, 1 lane: RFC 9106 section 4's second recommended option."""

    TESTING: ClassVar[KdfParams]
    """1 MiB, 1 pass, 1 lane. For tests only: far too cheap to resist guessing."""

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def of_blob(cls, blob: bytes) -> KdfParams:
        """The cost recorded in the header of a blob :func:`encrypt_with_passphrase` made.

        Raises:
            KeystoreFormatError: Not a keystore blob, or its cost is out of range.
        """
        return _parse_header(blob)[0]

    def check(self) -> None:
        """Validate the parameters.

        Raises:
            KeystoreFormatError: If a parameter is out of the accepted range.
        """
        if not 1 <= self.lanes <= _MAX_LANES:
            raise KeystoreFormatError(f"lanes must be in 1..{_MAX_LANES}")
        if not 1 <= self.iterations <= _MAX_ITERATIONS:
            raise KeystoreFormatError(f"iterations must be in 1..{_MAX_ITERATIONS}")
        if not 8 * self.lanes <= self.memory_kib <= _MAX_MEMORY_KIB:
            raise KeystoreFormatError(f"memory_kib must be in 8*lanes..{_MAX_MEMORY_KIB}")


KdfParams.DEFAULT = KdfParams(memory_kib=65536, iterations=3, lanes=1)
KdfParams.TESTING = KdfParams(memory_kib=1024, iterations=1, lanes=1)


def _as_bytes(passphrase: str | bytes) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def _derive_key(passphrase: str | bytes, salt: bytes, params: KdfParams) -> bytes:
    kdf = Argon2id(
        salt=salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(_as_bytes(passphrase))


def encrypt_with_passphrase(
    secret: bytes, passphrase: str | bytes, *, params: KdfParams = KdfParams.DEFAULT
) -> bytes:
    """Encrypt ``secret`` under a key derived from ``passphrase`` with Argon2id.

    Args:
        secret: The bytes to protect (e.g. a master key).
        passphrase: The passphrase; ``str`` is encoded as UTF-8.
        params: Argon2id cost; keep the default outside tests.

    Returns:
        A self-describing, versioned blob (see the module docstring).
    """
    salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
    header = (
        _PARAMS.pack(_MAGIC, _VERSION, params.memory_kib, params.iterations, params.lanes)
        + salt
        + nonce
    )
    key = _derive_key(passphrase, salt, params)
    return header + chacha20poly1305_encrypt(key, nonce, secret, header)


def _parse_header(blob: bytes) -> tuple[KdfParams, bytes, bytes]:
    if len(blob) < _HEADER_SIZE + AEAD_TAG_SIZE:
        raise KeystoreFormatError("keystore blob is too short")
    magic, version, memory_kib, iterations, lanes = _PARAMS.unpack_from(blob)
    if magic != _MAGIC:
        raise KeystoreFormatError("not a dchat keystore blob")
    if version != _VERSION:
        raise KeystoreFormatError(f"unsupported keystore version {version}")
    params = KdfParams(memory_kib=memory_kib, iterations=iterations, lanes=lanes)
    salt = blob[_PARAMS.size : _PARAMS.size + _SALT_SIZE]
    nonce = blob[_PARAMS.size + _SALT_SIZE : _HEADER_SIZE]
    return params, salt, nonce


def decrypt_with_passphrase(blob: bytes, passphrase: str | bytes) -> bytes:
    """Recover the secret from a blob made by :func:`encrypt_with_passphrase`.

    Args:
        blob: The keystore blob.
        passphrase: The passphrase used to encrypt it.

    Returns:
        The secret.

    Raises:
        KeystoreFormatError: If the blob is malformed or its KDF cost is absurd.
        DecryptionError: If the passphrase is wrong or the blob was tampered with.
    """
    blob = bytes(blob)
    params, salt, nonce = _parse_header(blob)
    key = _derive_key(passphrase, salt, params)
    return chacha20poly1305_decrypt(key, nonce, blob[_HEADER_SIZE:], blob[:_HEADER_SIZE])
