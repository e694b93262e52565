"""X-Wing: the hybrid X25519 + ML-KEM-768 key encapsulation mechanism.

Implements draft-connolly-cfrg-xwing-kem (revision 06 and later: SHAKE256 key
expansion, label at the end of the combiner), over ``cryptography``'s ML-KEM-768
and X25519::

    expanded          = SHAKE256(seed, 96 bytes)
    (pk_M, sk_M)      = ML-KEM-768.KeyGen_internal(d = expanded[0:32], z = expanded[32:64])
    sk_X              = expanded[64:96];  pk_X = X25519(sk_X, 9)
    public key        = pk_M (1184) || pk_X (32)                     -> 1216 bytes
    encapsulate(pk)   : ek_X random; ct_X = X25519(ek_X, 9); ss_X = X25519(ek_X, pk_X)
                        (ss_M, ct_M) = ML-KEM-768.Encaps(pk_M)
                        ct = ct_M (1088) || ct_X (32)                -> 1120 bytes
    decapsulate(ct)   : ss_M = ML-KEM-768.Decaps(sk_M, ct_M); ss_X = X25519(sk_X, ct_X)
    shared secret     = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\\.//^\\")

The secret stays secure while *either* X25519 or ML-KEM-768 is unbroken. A
ciphertext whose ML-KEM half was altered decapsulates to an unrelated secret
(ML-KEM's implicit rejection), never to an error, so callers must authenticate
what they derive from it.

Deviation from the draft: X25519 here refuses low-order points (OpenSSL returns an
error on an all-zero output and there is no vetted way around it), so an
encapsulation to such a public key raises :class:`InvalidKeyError` and a
ciphertext carrying one raises :class:`InvalidCiphertextError`. Honest peers never
produce either.
"""

from __future__ import annotations

import hashlib
import os
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.mlkem import (
    MLKEM768PrivateKey,
    MLKEM768PublicKey,
)

from dchat_core import PeerError

from ._errors import DchatCryptoError, InvalidKeyError
from ._keys import PrivateKey, PublicKey
from ._primitives import constant_time_equal

__all__ = ("InvalidCiphertextError", "XWingPrivateKey", "XWingPublicKey")

_LABEL = b"\\.//^\\"  # the draft's XWingLabel, 6 ASCII bytes
_MLKEM_SEED = 64
_MLKEM_PUBLIC = 1184
_MLKEM_CIPHERTEXT = 1088
_X25519 = 32


class InvalidCiphertextError(DchatCryptoError, PeerError, ValueError):
    """An X-Wing ciphertext has the wrong length or an unusable X25519 half."""


def _expand(seed: bytes) -> tuple[MLKEM768PrivateKey, PrivateKey]:
    expanded = hashlib.shake_256(seed).digest(_MLKEM_SEED + _X25519)
    mlkem = MLKEM768PrivateKey.from_seed_bytes(expanded[:_MLKEM_SEED])
    return mlkem, PrivateKey(expanded[_MLKEM_SEED:])


def _combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + _LABEL).digest()


class XWingPublicKey:
    """An X-Wing encapsulation key (1216 bytes: ML-KEM-768 then X25519)."""

    SIZE: ClassVar[int] = _MLKEM_PUBLIC + _X25519
    CIPHERTEXT_SIZE: ClassVar[int] = _MLKEM_CIPHERTEXT + _X25519
    SHARED_SECRET_SIZE: ClassVar[int] = 32

    __slots__ = ("_mlkem", "_raw", "_x25519")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise InvalidKeyError(f"XWingPublicKey must be bytes, got {type(raw).__name__}")
        raw = bytes(raw)
        if len(raw) != self.SIZE:
            raise InvalidKeyError(f"XWingPublicKey must be {self.SIZE} bytes, got {len(raw)}")
        try:
            # cryptography runs FIPS 203's modulus check on the encapsulation key here.
            self._mlkem = MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC])
        except ValueError:
            raise InvalidKeyError("XWingPublicKey has an invalid ML-KEM-768 half") from None
        self._x25519 = PublicKey(raw[_MLKEM_PUBLIC:])
        self._raw = raw

    @classmethod
    def from_bytes(cls, data: bytes) -> XWingPublicKey:
        """Parse a 1216-byte X-Wing public key.

        Raises:
            InvalidKeyError: If the length is wrong or the ML-KEM half is malformed.
        """
        return cls(data)

    def to_bytes(self) -> bytes:
        """Return the 1216-byte encoding."""
        return self._raw

    def encapsulate(self) -> tuple[bytes, bytes]:
        """Create a fresh shared secret for the holder of the private key.

        Returns:
            ``(shared_secret, ciphertext)``: 32 and 1120 bytes.

        Raises:
            InvalidKeyError: If the X25519 half is a low-order point.
        """
        ss_m, ct_m = self._mlkem.encapsulate()
        return self._encapsulate_x25519(PrivateKey.generate(), ss_m, ct_m)

    def _encapsulate_x25519(
        self, ephemeral: PrivateKey, ss_m: bytes, ct_m: bytes
    ) -> tuple[bytes, bytes]:
        # Split out so the known-answer tests can supply the draft's ``eseed`` half.
        ct_x = ephemeral.public_key.to_bytes()
        ss_x = ephemeral.exchange(self._x25519)
        pk_x = self._x25519.to_bytes()
        return _combine(ss_m, ss_x, ct_x, pk_x), ct_m + ct_x

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XWingPublicKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((XWingPublicKey, self._raw))

    def __repr__(self) -> str:
        digest = hashlib.sha256(self._raw).hexdigest()[:16]
        return f"XWingPublicKey(sha256:{digest}...)"


class XWingPrivateKey:
    """An X-Wing decapsulation key, stored as its 32-byte seed (as the draft does)."""

    SEED_SIZE: ClassVar[int] = 32

    __slots__ = ("_mlkem", "_public", "_seed", "_x25519")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray | memoryview):
            raise InvalidKeyError(f"XWingPrivateKey seed must be bytes, got {type(seed).__name__}")
        seed = bytes(seed)
        if len(seed) != self.SEED_SIZE:
            raise InvalidKeyError(f"XWingPrivateKey seed must be {self.SEED_SIZE} bytes")
        self._seed = seed
        self._mlkem, self._x25519 = _expand(seed)
        pk_m = self._mlkem.public_key().public_bytes_raw()
        self._public = XWingPublicKey(pk_m + self._x25519.public_key.to_bytes())

    @classmethod
    def generate(cls) -> XWingPrivateKey:
        """Create a new random key from 32 bytes of OS randomness."""
        return cls(os.urandom(cls.SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> XWingPrivateKey:
        """Derive the key from a 32-byte seed with the draft's SHAKE256 expansion.

        Raises:
            InvalidKeyError: If ``seed`` is not 32 bytes.
        """
        return cls(seed)

    def to_seed(self) -> bytes:
        """Return the 32-byte seed (the draft's encoded decapsulation key)."""
        return self._seed

    @property
    def public_key(self) -> XWingPublicKey:
        """The matching encapsulation key."""
        return self._public

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """Recover the 32-byte shared secret from ``ciphertext``.

        A ciphertext that was altered yields a different secret, not an error
        (implicit rejection): authenticate what you derive from it.

        Raises:
            InvalidCiphertextError: If ``ciphertext`` is not 1120 bytes or its
                X25519 half is a low-order point.
        """
        if not isinstance(ciphertext, bytes | bytearray | memoryview):
            raise InvalidCiphertextError("X-Wing ciphertext must be bytes")
        ciphertext = bytes(ciphertext)
        if len(ciphertext) != XWingPublicKey.CIPHERTEXT_SIZE:
            raise InvalidCiphertextError("X-Wing ciphertext has the wrong length")
        ct_m, ct_x = ciphertext[:_MLKEM_CIPHERTEXT], ciphertext[_MLKEM_CIPHERTEXT:]
        ss_m = self._mlkem.decapsulate(ct_m)  # length is right, so this cannot fail
        try:
            ss_x = self._x25519.exchange(PublicKey(ct_x))
        except InvalidKeyError:
            raise InvalidCiphertextError("X-Wing ciphertext has a low-order X25519 half") from None
        return _combine(ss_m, ss_x, ct_x, self._public.to_bytes()[_MLKEM_PUBLIC:])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XWingPrivateKey):
            return NotImplemented
        return constant_time_equal(self._seed, other._seed)

    def __hash__(self) -> int:
        return hash((XWingPrivateKey, self._public.to_bytes()))

    def __repr__(self) -> str:
        return f"XWingPrivateKey(public={self._public!r})"
