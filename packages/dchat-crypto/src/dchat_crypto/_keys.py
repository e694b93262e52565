"""Typed Ed25519 and X25519 keys.

Each class wraps raw key bytes with its size as a class constant. Equality is
constant-time, hashing uses public material only, and ``repr`` never shows
private bytes, so keys can be logged or put in sets without leaking secrets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

from ._errors import BadSignatureError, InvalidKeyError
from ._primitives import constant_time_equal

__all__ = ("PrivateKey", "PublicKey", "SigningKey", "VerifyKey")


def _check_bytes(cls: type[object], data: bytes, size: int) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidKeyError(f"{cls.__name__} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != size:
        raise InvalidKeyError(f"{cls.__name__} must be {size} bytes, got {len(data)}")
    return data


class _RawKey:
    """Shared behaviour: raw bytes, constant-time equality."""

    SIZE: ClassVar[int] = 32
    __slots__ = ("_raw",)
    _raw: bytes

    def __init__(self, raw: bytes) -> None:
        self._raw = _check_bytes(type(self), raw, self.SIZE)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Build the key from its raw encoding.

        Raises:
            InvalidKeyError: If ``data`` does not have exactly ``SIZE`` bytes.
        """
        return cls(data)

    def to_bytes(self) -> bytes:
        """Return the raw encoding of the key."""
        return self._raw

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _RawKey)
        return constant_time_equal(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._raw))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw.hex()})"


class _PrivateRawKey(_RawKey, ABC):
    """Private keys: hash by public key, never show bytes in repr."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._public_bytes()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(public={self._public_bytes().hex()})"

    @abstractmethod
    def _public_bytes(self) -> bytes:
        """The matching public key's bytes (each key type derives it its own way)."""


class VerifyKey(_RawKey):
    """An Ed25519 public key (32 bytes)."""

    __slots__ = ()

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature over ``message``.

        Raises:
            BadSignatureError: If the signature (or this key) is not valid.
        """
        if len(signature) != SigningKey.SIGNATURE_SIZE:
            raise BadSignatureError
        # libsodium verifies about twice as fast as OpenSSL here, and everything it
        # accepts OpenSSL accepts too (the same cofactorless equation; libsodium
        # adds stricter encoding and small-order checks). So an acceptance is
        # final, and only a refusal is handed to OpenSSL, whose verdict is the rule.
        try:
            crypto_sign_open(signature + message, self._raw)
        except (CryptoError, ValueError, TypeError):
            pass
        else:
            return
        try:
            Ed25519PublicKey.from_public_bytes(self._raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise BadSignatureError from None


class SigningKey(_PrivateRawKey):
    """An Ed25519 private key, stored as its 32-byte seed."""

    SIGNATURE_SIZE: ClassVar[int] = 64
    __slots__ = ("_key", "_public")
    _key: Ed25519PrivateKey

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self._key = Ed25519PrivateKey.from_private_bytes(self._raw)
        self._public: bytes | None = None  # derived on first use (a scalar multiplication)

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a new random signing key."""
        return cls(Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def public_key(self) -> VerifyKey:
        """The matching Ed25519 public key."""
        return VerifyKey(self._public_bytes())

    def _public_bytes(self) -> bytes:
        if self._public is None:
            self._public = self._key.public_key().public_bytes_raw()
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``; returns the 64-byte Ed25519 signature."""
        return self._key.sign(message)


class PublicKey(_RawKey):
    """An X25519 public key (32 bytes)."""

    __slots__ = ()


class PrivateKey(_PrivateRawKey):
    """An X25519 private key (32 bytes; clamping happens inside the DH)."""

    __slots__ = ("_key",)
    _key: X25519PrivateKey | None

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        # Built on first use: any 32 bytes are a valid X25519 scalar, so nothing is
        # checked later, and a holder of many keys (stored one-time prekeys, decoded
        # on every accepted SessionInit) pays only for the one it uses.
        self._key = None

    @classmethod
    def generate(cls) -> PrivateKey:
        """Create a new random X25519 private key."""
        key = X25519PrivateKey.generate()
        made = cls.__new__(cls)  # keeps the generated key rather than parsing its bytes again
        made._raw, made._key = key.private_bytes_raw(), key
        return made

    @property
    def public_key(self) -> PublicKey:
        """The matching X25519 public key."""
        return PublicKey(self._public_bytes())

    def _public_bytes(self) -> bytes:
        return self._x25519().public_key().public_bytes_raw()

    def _x25519(self) -> X25519PrivateKey:
        if self._key is None:
            self._key = X25519PrivateKey.from_private_bytes(self._raw)
        return self._key

    def exchange(self, peer: PublicKey) -> bytes:
        """Compute the 32-byte X25519 shared secret with ``peer``.

        Raises:
            InvalidKeyError: If the result is all zeros (a low-order peer point).
        """
        try:
            shared = self._x25519().exchange(X25519PublicKey.from_public_bytes(peer.to_bytes()))
        except ValueError:
            # OpenSSL refuses all-zero outputs itself; report it like our own check.
            raise InvalidKeyError("X25519 with a low-order point") from None
        if constant_time_equal(shared, bytes(32)):
            raise InvalidKeyError("X25519 with a low-order point")
        return shared
