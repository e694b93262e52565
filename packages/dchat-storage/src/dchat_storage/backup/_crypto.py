"""The repository key, the keys derived from it, and the sealed blob format.

A repository has one random 32-byte master key. Each key file (``keys/<id>``)
holds it wrapped under a passphrase with Argon2id
(:func:`dchat_crypto.encrypt_with_passphrase`). Keys for each purpose are
derived with HKDF-SHA256, ``info = b"dchat-backup-v1 " + purpose``:

* ``chunk-id``: BLAKE2b-256 key for chunk ids, so that an id does not reveal
  whether a repository holds a known piece of content;
* ``chunker``: keys the content-defined chunker (see ``_chunker``);
* ``data``, ``snapshot``, ``config``: ChaCha20-Poly1305 keys, one per blob kind.

Sealed blob layout (version 1)::

    offset size  field
    0      4     magic b"DCBK"
    4      1     version = 0x01
    5      1     kind: b"c" chunk, b"s" snapshot, b"f" config
    6      1     compression: 0 none, 1 zstd
    7      12    nonce (random)
    19     n+16  ChaCha20-Poly1305(kind key, nonce, payload, ad = bytes 0..6 || blob id)

The blob id is the chunk id or snapshot id the blob is stored under, so a blob
moved to another name, or of another kind, fails authentication. Random 96-bit
nonces under one key stay safe for about 2**32 blobs per repository
(docs/rationale.md).
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

import zstandard

from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_crypto.hazmat import chacha20poly1305_decrypt, chacha20poly1305_encrypt, hkdf_sha256

from ._errors import BackupAuthenticationError, BackupIntegrityError

__all__ = ("KIND_CHUNK", "KIND_CONFIG", "KIND_SNAPSHOT", "MASTER_KEY_SIZE", "RepositoryKeys")

MASTER_KEY_SIZE: Final = 32
KIND_CHUNK: Final = b"c"
KIND_SNAPSHOT: Final = b"s"
KIND_CONFIG: Final = b"f"

_MAGIC = b"DCBK\x01"
_HEADER_SIZE = 7
_NONCE_SIZE = 12
_RAW, _ZSTD = 0, 1
_ZSTD_LEVEL = 3
# Bound on any decompressed payload: a chunk is at most 64 MiB, and a manifest
# of a few million files fits well under this.
MAX_PAYLOAD: Final = 256 << 20
_PURPOSES = {KIND_CHUNK: b"data", KIND_SNAPSHOT: b"snapshot", KIND_CONFIG: b"config"}


def _derive(master: bytes, purpose: bytes) -> bytes:
    return hkdf_sha256(master, salt=b"", info=b"dchat-backup-v1 " + purpose, length=32)


class RepositoryKeys:
    """The master key of one repository and the keys derived from it.

    Args:
        master: The 32-byte master key.
    """

    __slots__ = ("_aead", "_chunk_id", "_master", "chunker_key")

    def __init__(self, master: bytes) -> None:
        if len(master) != MASTER_KEY_SIZE:
            raise BackupAuthenticationError
        self._master = bytes(master)
        self._chunk_id = _derive(master, b"chunk-id")
        self.chunker_key = _derive(master, b"chunker")
        self._aead = {kind: _derive(master, purpose) for kind, purpose in _PURPOSES.items()}

    @classmethod
    def generate(cls) -> RepositoryKeys:
        """A fresh random master key."""
        return cls(os.urandom(MASTER_KEY_SIZE))

    def wrap(self, passphrase: bytes, params: KdfParams = KdfParams.DEFAULT) -> bytes:
        """The master key encrypted under ``passphrase`` (a key file's content)."""
        return encrypt_with_passphrase(self._master, passphrase, params=params)

    @classmethod
    def unwrap(cls, blob: bytes, passphrase: bytes) -> RepositoryKeys:
        """Recover the keys from a key file; :class:`BackupAuthenticationError` on failure."""
        try:
            return cls(decrypt_with_passphrase(blob, passphrase))
        except (DecryptionError, KeystoreFormatError):
            raise BackupAuthenticationError from None

    def chunk_id(self, data: bytes) -> bytes:
        """Keyed BLAKE2b-256 of a chunk's plaintext: its id and deduplication key."""
        return hashlib.blake2b(data, digest_size=32, key=self._chunk_id).digest()

    def seal(self, kind: bytes, blob_id: bytes, payload: bytes) -> bytes:
        """Compress (when it helps) and encrypt ``payload`` as a blob of ``kind``."""
        packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(payload)
        compression, body = (_ZSTD, packed) if len(packed) < len(payload) else (_RAW, payload)
        header = _MAGIC + kind + bytes((compression,))
        nonce = os.urandom(_NONCE_SIZE)
        sealed = chacha20poly1305_encrypt(self._aead[kind], nonce, body, header + blob_id)
        return header + nonce + sealed

    def open(self, kind: bytes, blob_id: bytes, blob: bytes, *, name: str) -> bytes:
        """Authenticate, decrypt and decompress a blob made by :meth:`seal`.

        Raises:
            BackupIntegrityError: ``name`` is damaged, truncated, of another kind
                or stored under another id (one message for all of these).
        """
        header = blob[:_HEADER_SIZE]
        nonce = blob[_HEADER_SIZE : _HEADER_SIZE + _NONCE_SIZE]
        damaged = BackupIntegrityError(f"blob {name} failed authentication")
        if len(nonce) != _NONCE_SIZE or header[:6] != _MAGIC + kind or header[6] > _ZSTD:
            raise damaged
        body = blob[_HEADER_SIZE + _NONCE_SIZE :]
        try:
            plain = chacha20poly1305_decrypt(self._aead[kind], nonce, body, header + blob_id)
        except DecryptionError:
            raise damaged from None
        if header[6] == _RAW:
            return plain
        try:
            return zstandard.ZstdDecompressor().decompress(plain, max_output_size=MAX_PAYLOAD)
        except zstandard.ZstdError:
            # Authentic but undecodable: only a writer bug (or a stolen key) does this.
            raise damaged from None

    def __repr__(self) -> str:
        return "<RepositoryKeys (secret)>"
