"""At-rest encryption: the storage key, sealed record payloads and blind indexes.

Theory of operation: every private field of a user-database row lives in one
``payload`` column, a canonical-CBOR map sealed with ChaCha20-Poly1305. Columns
that queries must match on (a contact's name, a peer's identity id, a message
id) are stored as *blind indexes*: keyed BLAKE2b-256 of the value, so equality
look-ups and unique constraints still work while the disk shows only
pseudo-random bytes. Timestamps, sizes and directions stay in clear because
ordering, retention and quotas are computed by the database; docs/rationale.md
lists what that reveals.

Keys: one random 32-byte :class:`StorageKey` per database (wrapped by the node
passphrase with Argon2id and kept in the database's ``storage_meta`` table).
Per-purpose subkeys are derived from it with HKDF-SHA256, separately for
sealing and for indexing, so no key is used for two jobs. Each sealed value
carries a fresh random 96-bit nonce; the associated data binds it to its
purpose and to its row (the row's natural-key index), so a ciphertext copied
into another row or column fails to open.

With no key (relays, tests), :class:`Sealer` stores payloads and index values
in clear through the same code path, so both modes run the same queries.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, ClassVar, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode
from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_crypto.hazmat import ChaCha20Poly1305Key, hkdf_sha256

from ._errors import InvalidArgumentError, LockedError, StorageCorruptError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "AeadSealer",
    "Sealer",
    "StorageKey",
    "decode_payload",
    "encode_payload",
    "text_index",
)

_SALT: Final = b"dchat-storage-v1"
_FORMAT: Final = b"\x01"  # version byte of a sealed value
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
# Payloads are authenticated before decoding, but still bounded: a thumbnail or a
# keystore is far smaller, and message bodies are limited by the envelope size.
_PAYLOAD_LIMITS: Final = DecodeLimits(max_size=64 << 20, max_depth=4, max_items=256)


class StorageKey:
    """The 32-byte root key of one database's at-rest encryption.

    Never printed: ``repr`` shows no key material.
    """

    SIZE: ClassVar[int] = 32
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        """Wrap raw key bytes; prefer :meth:`generate` or :meth:`from_bytes`."""
        if len(key) != self.SIZE:
            raise InvalidArgumentError(f"a storage key is {self.SIZE} bytes, got {len(key)}")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> StorageKey:
        """Return a fresh random key."""
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def from_bytes(cls, key: bytes) -> StorageKey:
        """Rebuild a key from :meth:`to_bytes` output.

        Raises:
            InvalidArgumentError: ``key`` is not 32 bytes.
        """
        return cls(key)

    def to_bytes(self) -> bytes:
        """Return the raw key; handle it like any secret."""
        return self._key

    def wrap(self, passphrase: str | bytes, *, params: KdfParams = KdfParams.DEFAULT) -> bytes:
        """Encrypt the key under ``passphrase`` (Argon2id + ChaCha20-Poly1305)."""
        return encrypt_with_passphrase(self._key, passphrase, params=params)

    @classmethod
    def unwrap(cls, blob: bytes, passphrase: str | bytes) -> StorageKey:
        """Recover a key wrapped by :meth:`wrap`.

        Raises:
            LockedError: Wrong passphrase, or a damaged or foreign blob (one
                opaque error; it does not say which).
        """
        try:
            return cls(decrypt_with_passphrase(blob, passphrase))
        except (DecryptionError, KeystoreFormatError, InvalidArgumentError):
            raise LockedError("cannot unlock the database: wrong passphrase?") from None

    def __repr__(self) -> str:
        return "<StorageKey>"


class Sealer:
    """The clear-text sealer: values and indexes are stored as given.

    Subclassed by :class:`AeadSealer`; repositories only use this interface.
    """

    encrypted: ClassVar[bool] = False

    def seal(self, purpose: str, ad: bytes, plaintext: bytes) -> bytes:
        """Return what to store for ``plaintext`` (here: itself)."""
        del purpose, ad
        return plaintext

    def open(self, purpose: str, ad: bytes, stored: bytes) -> bytes:
        """Return the plaintext of a stored value (here: itself)."""
        del purpose, ad
        return bytes(stored)

    def index(self, purpose: str, value: bytes) -> bytes:
        """Return the look-up key stored for ``value`` (here: itself)."""
        del purpose
        return value


class AeadSealer(Sealer):
    """Seals with ChaCha20-Poly1305 and indexes with keyed BLAKE2b-256."""

    encrypted: ClassVar[bool] = True

    def __init__(self, key: StorageKey) -> None:
        """Derive subkeys lazily from ``key``."""
        self._root = key.to_bytes()
        self._subkeys: dict[tuple[str, str], bytes] = {}
        # Each purpose's sealing key set up once (several seals per message use few keys).
        self._ciphers: dict[str, ChaCha20Poly1305Key] = {}

    def _cipher(self, purpose: str) -> ChaCha20Poly1305Key:
        cipher = self._ciphers.get(purpose)
        if cipher is None:
            cipher = self._ciphers[purpose] = ChaCha20Poly1305Key(self._subkey("seal", purpose))
        return cipher

    def _subkey(self, job: str, purpose: str) -> bytes:
        cached = self._subkeys.get((job, purpose))
        if cached is None:
            info = f"{job}\x00{purpose}".encode()
            cached = hkdf_sha256(self._root, salt=_SALT, info=info, length=32)
            self._subkeys[(job, purpose)] = cached
        return cached

    def seal(self, purpose: str, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt under the purpose's key with a fresh random nonce."""
        nonce = os.urandom(_NONCE_SIZE)
        return _FORMAT + nonce + self._cipher(purpose).encrypt(nonce, plaintext, _ad(purpose, ad))

    def open(self, purpose: str, ad: bytes, stored: bytes) -> bytes:
        """Decrypt and authenticate a value made by :meth:`seal`.

        Raises:
            StorageCorruptError: The value does not authenticate (flipped bits,
                tampering, or a value moved from another row).
        """
        stored = bytes(stored)
        if len(stored) < 1 + _NONCE_SIZE + _TAG_SIZE or stored[:1] != _FORMAT:
            raise StorageCorruptError("a stored record failed authentication")
        nonce, body = stored[1 : 1 + _NONCE_SIZE], stored[1 + _NONCE_SIZE :]
        try:
            return self._cipher(purpose).decrypt(nonce, body, _ad(purpose, ad))
        except DecryptionError:
            raise StorageCorruptError("a stored record failed authentication") from None

    def index(self, purpose: str, value: bytes) -> bytes:
        """Return keyed BLAKE2b-256 of ``value`` under the purpose's index key."""
        key = self._subkey("index", purpose)
        return hashlib.blake2b(value, key=key, digest_size=32).digest()

    def __repr__(self) -> str:
        return "<AeadSealer>"


def _ad(purpose: str, ad: bytes) -> bytes:
    # Length-prefixed, so ("ab", b"c") and ("a", b"bc") never collide.
    name = purpose.encode()
    return len(name).to_bytes(2, "big") + name + ad


def encode_payload(sealer: Sealer, purpose: str, ad: bytes, fields: Mapping[str, Any]) -> bytes:
    """Encode ``fields`` as canonical CBOR and seal them.

    Raises:
        InvalidArgumentError: :func:`decode_payload` could not read them back
            (nested too deep, too many items or too large): stored, such a
            record would fail every read of it, and of every page holding it.
    """
    record = dict(fields)
    plain = canonical_encode(record)
    why = "too large" if len(plain) > _PAYLOAD_LIMITS.max_size else _shape_error(record)
    if why is not None:
        raise InvalidArgumentError(f"a record too big or too deep to store: {why}")
    return sealer.seal(purpose, ad, plain)


def _shape_error(record: dict[str, Any]) -> str | None:
    """Why decoding ``record`` under the payload limits would fail (None: it would not).

    Counts as the decoder does (a map's entries twice, a list's once, over the
    whole record; a non-empty container at the depth limit fails) without
    encoding or decoding anything: every stored record passes through here.
    """
    max_items, max_depth = _PAYLOAD_LIMITS.max_items, _PAYLOAD_LIMITS.max_depth
    items = 0
    todo: list[tuple[Any, int]] = [(record, 0)]  # dict, list, tuple: what canonical CBOR nests
    while todo:
        node, depth = todo.pop()
        children = node.values() if type(node) is dict else node  # map keys: str or int
        count = 2 * len(node) if children is not node else len(node)
        items += count
        if items > max_items:
            return "too many items"
        if count and depth >= max_depth:
            return "nesting too deep"
        todo.extend((c, depth + 1) for c in children if isinstance(c, dict | list | tuple))
    return None


def decode_payload(sealer: Sealer, purpose: str, ad: bytes, stored: bytes) -> dict[str, Any]:
    """Open and decode a payload made by :func:`encode_payload`.

    Raises:
        StorageCorruptError: It does not authenticate or does not decode to a map.
    """
    try:
        value = canonical_decode(sealer.open(purpose, ad, stored), _PAYLOAD_LIMITS)
    except DecodeError:
        raise StorageCorruptError("a stored record is damaged") from None
    if not isinstance(value, dict):
        raise StorageCorruptError("a stored record is damaged")
    return value


def text_index(sealer: Sealer, purpose: str, value: str) -> bytes:
    """Blind index of a text value (UTF-8)."""
    return sealer.index(purpose, value.encode())
