"""Ed25519 keys given by their secret scalar, and the group steps stealth addresses need.

An ordinary :class:`~._keys.SigningKey` is a 32-byte seed: its secret scalar is
``clamp(SHA-512(seed)[:32])``, so a key whose scalar is a *sum* (a spend key
plus a per-payment tweak, as in stealth addresses) cannot be one, and
libsodium does not expose signing with an expanded key. :class:`ScalarSigningKey`
holds the scalar ``a`` (reduced modulo the group order ``L``) and a secret
32-byte nonce prefix and signs with the equations of RFC 8032 §5.1.6::

    r = SHA-512(prefix || M) mod L;  R = r·B;  k = SHA-512(R || A || M) mod L
    S = (r + k·a) mod L;             signature = R || S

which is exactly what an Ed25519 verifier checks (``S·B = R + k·A``), so any
verifier (:class:`~._keys.VerifyKey`, ``cryptography``, libsodium) accepts its
signatures for the public key ``A = a·B``. Only the scalar's origin differs:
not clamped, so ``a`` is uniform modulo ``L`` and ``A`` lies in the prime-order
subgroup. The nonce stays deterministic, derived from a secret prefix as in the
RFC, so no random source can leak the key by repeating a nonce.

Every group and scalar operation is libsodium's constant-time code, called
through PyNaCl's bindings (``crypto_scalarmult_ed25519_base_noclamp``,
``crypto_scalarmult_ed25519_noclamp``, ``crypto_core_ed25519_add``,
``crypto_core_ed25519_scalar_{add,mul,reduce}``,
``crypto_core_ed25519_is_valid_point``); this module hashes and orders the calls.
Points from outside
are checked by :func:`ed25519_point_ok` (on the curve, canonical, in the
prime-order subgroup, not of small order); libsodium's scalar multiplication
makes the same checks itself, so a point that is only multiplied needs none.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Final, Self

from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from ._errors import InvalidKeyError
from ._keys import VerifyKey

__all__ = (
    "ScalarSigningKey",
    "ed25519_add",
    "ed25519_base_mul",
    "ed25519_mul",
    "ed25519_point_ok",
    "ed25519_scalar_from_hash",
)

_SIZE: Final = 32
_ZERO: Final = bytes(_SIZE)
_PREFIX_DOMAIN: Final = b"dchat-scalar-key-prefix-v1\x00"


def ed25519_scalar_from_hash(data: bytes) -> bytes:
    """``SHA-512(data)`` reduced modulo ``L``: a uniform scalar (32 bytes, little-endian)."""
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(hashlib.sha512(data).digest()))


def ed25519_point_ok(point: bytes) -> bool:
    """Whether ``point`` is a canonical point of the prime-order subgroup, not of small order."""
    return len(point) == _SIZE and bool(sodium.crypto_core_ed25519_is_valid_point(point))


def _scalar(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != _SIZE:
        raise InvalidKeyError("an Ed25519 scalar is 32 bytes")
    return value


def _point(value: bytes) -> bytes:
    if not isinstance(value, bytes) or not ed25519_point_ok(value):
        raise InvalidKeyError("not a valid Ed25519 point")
    return value


def ed25519_base_mul(scalar: bytes) -> bytes:
    """``scalar·B`` (no clamping).

    Raises:
        InvalidKeyError: ``scalar`` is not 32 bytes, or is zero modulo ``L``.
    """
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(_scalar(scalar)))
    except SodiumRuntimeError:
        raise InvalidKeyError("the scalar is zero") from None


def ed25519_mul(scalar: bytes, point: bytes) -> bytes:
    """``scalar·point`` (no clamping), for an untrusted ``point``.

    libsodium itself refuses a point that :func:`ed25519_point_ok` refuses
    (not canonical, not on the curve, outside the prime-order subgroup, of
    small order), so the product never depends on a small-order component.

    Raises:
        InvalidKeyError: libsodium refuses ``point``, or the product is the identity.
    """
    if not isinstance(point, bytes) or len(point) != _SIZE:
        raise InvalidKeyError("an Ed25519 point is 32 bytes")
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(_scalar(scalar), point))
    except SodiumRuntimeError:
        raise InvalidKeyError("not a usable Ed25519 point") from None


def ed25519_add(p: bytes, q: bytes) -> bytes:
    """``p + q`` for two checked points.

    Raises:
        InvalidKeyError: A point fails :func:`ed25519_point_ok`.
    """
    return bytes(sodium.crypto_core_ed25519_add(_point(p), _point(q)))


class ScalarSigningKey:
    """An Ed25519 signing key given by its secret scalar and nonce prefix.

    Its :meth:`sign` makes standard Ed25519 signatures (see the module docstring).
    Use :meth:`tweaked` to derive the key of ``a + t`` (a stealth one-time key).
    """

    SIZE: ClassVar[int] = 2 * _SIZE
    __slots__ = ("_prefix", "_public", "_scalar")

    def __init__(self, scalar: bytes, prefix: bytes) -> None:
        reduced = bytes(sodium.crypto_core_ed25519_scalar_reduce(_scalar(scalar) + _ZERO))
        if reduced != scalar or scalar == _ZERO:
            raise InvalidKeyError("the scalar must be reduced modulo L and not zero")
        self._scalar, self._prefix = scalar, _scalar(prefix)
        self._public = ed25519_base_mul(scalar)

    @classmethod
    def from_seed(cls, seed: bytes, domain: bytes) -> Self:
        """A key derived from a secret ``seed`` under a ``domain`` label (both hashed)."""
        material = hashlib.sha512(domain + b"\x00" + seed).digest()
        return cls(ed25519_scalar_from_hash(material[:32]), material[32:])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes`.

        Raises:
            InvalidKeyError: Not 64 bytes, or the scalar is not reduced or is zero.
        """
        if not isinstance(data, bytes) or len(data) != cls.SIZE:
            raise InvalidKeyError("a scalar signing key is 64 bytes")
        return cls(data[:_SIZE], data[_SIZE:])

    def to_bytes(self) -> bytes:
        """Scalar then prefix (64 bytes). Secret."""
        return self._scalar + self._prefix

    @property
    def public_key(self) -> VerifyKey:
        """The Ed25519 public key ``a·B``."""
        return VerifyKey(self._public)

    def tweaked(self, tweak: bytes) -> ScalarSigningKey:
        """The key of ``(a + tweak) mod L``, public key ``A + tweak·B``.

        Raises:
            InvalidKeyError: ``tweak`` is not a reduced scalar, or the sum is zero.
        """
        total = bytes(sodium.crypto_core_ed25519_scalar_add(self._scalar, _scalar(tweak)))
        prefix = hashlib.sha512(_PREFIX_DOMAIN + self._prefix + tweak).digest()[:_SIZE]
        return ScalarSigningKey(total, prefix)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``; returns a 64-byte Ed25519 signature."""
        r = ed25519_scalar_from_hash(self._prefix + message)
        big_r = ed25519_base_mul(r)
        k = ed25519_scalar_from_hash(big_r + self._public + message)
        s = sodium.crypto_core_ed25519_scalar_add(
            r, sodium.crypto_core_ed25519_scalar_mul(k, self._scalar)
        )
        return big_r + bytes(s)

    def __repr__(self) -> str:
        return f"ScalarSigningKey(public={self._public.hex()})"
