"""The BLS backend interface and its one implementation, on ``blspy``.

:class:`BlsBackend` is the whole surface dchat needs from a BLS12-381 library:
the proof-of-possession scheme of draft-irtf-cfrg-bls-signature (ciphersuite
``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``, PoP tag
``BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``, as used by Ethereum) with
public keys in G1 (48-byte compressed) and signatures in G2 (96-byte
compressed). Handles (secret keys, points) are opaque to callers; another
library can replace :class:`BlspyBackend` by implementing the same protocol.

Contract, which every backend must meet exactly as the draft specifies:

* ``*_from_bytes`` accept only canonical compressed encodings of points on the
  curve and in the prime-order subgroup (the point at infinity included: it is
  a valid *point*; refusing it as a *key* is KeyValidate's job). Failures raise
  :class:`BlsEncodingError`.
* Secret keys are integers in ``[1, r)``; ``sign`` and ``pop_prove`` refuse
  anything else with :class:`BlsSecretKeyError`.
* Verification methods return ``False`` for anything invalid, including every
  public key failing KeyValidate (the identity), and empty inputs.
* ``aggregate`` of nothing raises :class:`BlsUsageError`.

What blspy 2.0.3 does on its own (checked against this version; the adapter
below corrects each, and ``tests/test_bls_backend.py`` pins both the behaviour
and the fix):

1. ``PrivateKey.from_bytes(bytes(32))`` accepts the zero key, and
   ``PopSchemeMPL.sign``/``pop_prove`` with it return the infinity point, a
   "signature" that verifies under the infinity public key. The draft's
   secret keys are in ``[1, r)``; we refuse to sign.
2. ``fast_aggregate_verify`` sums the public keys without KeyValidate on each,
   so ``[pk, infinity]`` verifies with ``pk``'s signature alone (``[infinity]``
   alone is refused). We run KeyValidate on every key first.
3. ``aggregate_verify([], [], infinity)`` returns ``True``: the empty product of
   pairings equals ``e(g1, infinity)``. The draft requires ``n >= 1``.
4. ``aggregate([])`` returns the infinity signature; the draft's Aggregate
   needs at least one signature.
5. ``key_gen`` is an earlier draft's KeyGen (the salt used as is, no retry
   loop), not the one of draft 04 onwards (the salt hashed, retried until the
   key is non-zero) that the current draft and EIP-2333 specify. The two give
   different keys for every seed. :func:`keygen` implements the current one
   on HKDF-SHA256 from ``cryptography``; blspy's is not used.

Things blspy already does right, which the adapter relies on (and the vector
tests check): ``G1Element``/``G2Element.from_bytes`` reject wrong lengths, bad
flag bits, non-canonical infinity, coordinates ``>= p``, points off the curve
and outside the subgroup; ``verify``, ``aggregate_verify`` and ``pop_verify``
refuse the infinity public key; ``PrivateKey.from_bytes`` refuses values ``>= r``.
Only ``from_bytes`` (never ``from_bytes_unchecked``) creates points here, so
every handle is in the subgroup.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import blspy  # type: ignore[import-not-found]  # a C extension without stubs

from ._bls_errors import BlsEncodingError, BlsSecretKeyError, BlsUsageError
from ._primitives import constant_time_equal, hkdf_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("CIPHERSUITE", "POP_CIPHERSUITE", "BlsBackend", "BlspyBackend", "keygen")

CIPHERSUITE: Final = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
POP_CIPHERSUITE: Final = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

SecretT = TypeVar("SecretT")
G1T = TypeVar("G1T")
G2T = TypeVar("G2T")

_SECRET_SIZE: Final = 32
_G1_SIZE: Final = 48
_G2_SIZE: Final = 96
_MIN_IKM: Final = 32
# The order of the G1 and G2 subgroups.
_R: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
# KeyGen's L = ceil(3 * ceil(log2(r)) / 16): 48 bytes keep the bias of mod r negligible.
_KEYGEN_L: Final = 48
_KEYGEN_SALT: Final = b"BLS-SIG-KEYGEN-SALT-"
# blspy signals bad input with these; nothing else is expected from it.
_BLSPY_ERRORS: Final = (ValueError, RuntimeError, TypeError)


class BlsBackend(Protocol[SecretT, G1T, G2T]):
    """What dchat needs from a BLS12-381 library (POP scheme, keys in G1).

    ``SecretT``, ``G1T`` and ``G2T`` are the library's own handle types; only
    the backend that made a handle may be given it back.
    """

    def key_gen(self, ikm: bytes) -> SecretT:
        """KeyGen(IKM) of draft 04+, empty ``key_info``; ``ikm`` of at least 32 bytes."""
        ...

    def secret_from_bytes(self, data: bytes) -> SecretT:
        """Decode a 32-byte big-endian secret key in ``[1, r)``."""
        ...

    def secret_to_bytes(self, sk: SecretT) -> bytes:
        """Encode a secret key as 32 big-endian bytes."""
        ...

    def sk_to_pk(self, sk: SecretT) -> G1T:
        """SkToPk: the public key ``sk * g1``."""
        ...

    def g1_from_bytes(self, data: bytes) -> G1T:
        """Decode and validate (curve, subgroup, canonical) a 48-byte G1 point."""
        ...

    def g1_to_bytes(self, point: G1T) -> bytes:
        """Compress a G1 point to 48 bytes."""
        ...

    def g1_is_infinity(self, point: G1T) -> bool:
        """Whether the point is the identity (the one key KeyValidate refuses here)."""
        ...

    def g2_from_bytes(self, data: bytes) -> G2T:
        """Decode and validate (curve, subgroup, canonical) a 96-byte G2 point."""
        ...

    def g2_to_bytes(self, point: G2T) -> bytes:
        """Compress a G2 point to 96 bytes."""
        ...

    def sign(self, sk: SecretT, message: bytes) -> G2T:
        """Sign ``message`` (POP ciphersuite DST)."""
        ...

    def verify(self, pk: G1T, message: bytes, signature: G2T) -> bool:
        """Verify one signature; ``False`` for any invalid input."""
        ...

    def aggregate(self, signatures: Sequence[G2T]) -> G2T:
        """Sum one or more signatures."""
        ...

    def aggregate_verify(
        self, pks: Sequence[G1T], messages: Sequence[bytes], signature: G2T
    ) -> bool:
        """CoreAggregateVerify: ``n >= 1`` (key, message) pairs, one aggregate."""
        ...

    def fast_aggregate_verify(self, pks: Sequence[G1T], message: bytes, signature: G2T) -> bool:
        """FastAggregateVerify: ``n >= 1`` keys, one message, one aggregate."""
        ...

    def pop_prove(self, sk: SecretT) -> G2T:
        """PopProve: a signature over the public key under the PoP tag."""
        ...

    def pop_verify(self, pk: G1T, proof: G2T) -> bool:
        """PopVerify; ``False`` for any invalid input."""
        ...


def _as_bytes(data: bytes, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BlsUsageError(f"{what} must be bytes, got {type(data).__name__}")
    return bytes(data)


def _is_zero_secret(data: bytes) -> bool:
    # Constant time: any() would stop at the first non-zero byte of the secret.
    return constant_time_equal(data, bytes(_SECRET_SIZE))


def keygen(ikm: bytes, key_info: bytes = b"") -> bytes:
    """KeyGen of draft-irtf-cfrg-bls-signature-04+ (and EIP-2333's HKDF_mod_r).

    Returns:
        The 32-byte big-endian secret key, in ``[1, r)``.

    Raises:
        BlsSecretKeyError: If ``ikm`` is shorter than 32 bytes.
    """
    ikm = _as_bytes(ikm, "seed")
    if len(ikm) < _MIN_IKM:
        raise BlsSecretKeyError(f"seed must be at least {_MIN_IKM} bytes")
    salt, sk = _KEYGEN_SALT, 0
    while sk == 0:  # repeats with probability about 2**-255, but the draft requires it
        salt = hashlib.sha256(salt).digest()
        okm = hkdf_sha256(
            ikm + b"\x00",
            salt=salt,
            info=key_info + _KEYGEN_L.to_bytes(2, "big"),
            length=_KEYGEN_L,
        )
        sk = int.from_bytes(okm, "big") % _R
    return sk.to_bytes(_SECRET_SIZE, "big")


def _check_length(data: bytes, size: int, what: str) -> bytes:
    data = _as_bytes(data, what)
    if len(data) != size:
        raise BlsEncodingError(f"{what} must be {size} bytes, got {len(data)}")
    return data


class BlspyBackend:
    """:class:`BlsBackend` on ``blspy.PopSchemeMPL``, with the draft's checks blspy lacks."""

    __slots__ = ()

    def key_gen(self, ikm: bytes) -> blspy.PrivateKey:
        # Not blspy's key_gen: it follows an older draft (module docstring, 5).
        return blspy.PrivateKey.from_bytes(keygen(ikm))

    def secret_from_bytes(self, data: bytes) -> blspy.PrivateKey:
        data = _as_bytes(data, "secret key")
        if len(data) != _SECRET_SIZE:
            raise BlsSecretKeyError(f"secret key must be {_SECRET_SIZE} bytes")
        if _is_zero_secret(data):
            raise BlsSecretKeyError("secret key must not be zero")
        try:
            return blspy.PrivateKey.from_bytes(data)
        except _BLSPY_ERRORS:
            raise BlsSecretKeyError("secret key must be below the group order") from None

    def secret_to_bytes(self, sk: blspy.PrivateKey) -> bytes:
        return bytes(sk)

    def sk_to_pk(self, sk: blspy.PrivateKey) -> blspy.G1Element:
        return sk.get_g1()

    def g1_from_bytes(self, data: bytes) -> blspy.G1Element:
        data = _check_length(data, _G1_SIZE, "G1 point")
        try:
            return blspy.G1Element.from_bytes(data)
        except _BLSPY_ERRORS:
            raise BlsEncodingError("not a valid G1 point encoding") from None

    def g1_to_bytes(self, point: blspy.G1Element) -> bytes:
        return bytes(point)

    def g1_is_infinity(self, point: blspy.G1Element) -> bool:
        return bool(point == _G1_INFINITY)

    def g2_from_bytes(self, data: bytes) -> blspy.G2Element:
        data = _check_length(data, _G2_SIZE, "G2 point")
        try:
            return blspy.G2Element.from_bytes(data)
        except _BLSPY_ERRORS:
            raise BlsEncodingError("not a valid G2 point encoding") from None

    def g2_to_bytes(self, point: blspy.G2Element) -> bytes:
        return bytes(point)

    def _signing_key(self, sk: blspy.PrivateKey) -> blspy.PrivateKey:
        # blspy signs with zero and returns infinity (see module docstring, 1).
        if _is_zero_secret(bytes(sk)):
            raise BlsSecretKeyError("refusing to sign with the zero secret key")
        return sk

    def sign(self, sk: blspy.PrivateKey, message: bytes) -> blspy.G2Element:
        return blspy.PopSchemeMPL.sign(self._signing_key(sk), message)

    def _keys_valid(self, pks: Sequence[blspy.G1Element]) -> bool:
        # KeyValidate; the subgroup part was done when each point was decoded.
        return all(not self.g1_is_infinity(pk) for pk in pks)

    def verify(self, pk: blspy.G1Element, message: bytes, signature: blspy.G2Element) -> bool:
        if not self._keys_valid((pk,)):
            return False
        return bool(blspy.PopSchemeMPL.verify(pk, message, signature))

    def aggregate(self, signatures: Sequence[blspy.G2Element]) -> blspy.G2Element:
        # blspy returns infinity for nothing (see module docstring, 4).
        if not signatures:
            raise BlsUsageError("nothing to aggregate")
        return blspy.PopSchemeMPL.aggregate(list(signatures))

    def aggregate_verify(
        self,
        pks: Sequence[blspy.G1Element],
        messages: Sequence[bytes],
        signature: blspy.G2Element,
    ) -> bool:
        # blspy accepts n == 0 with the infinity signature (see module docstring, 3).
        if not pks or len(pks) != len(messages) or not self._keys_valid(pks):
            return False
        return bool(blspy.PopSchemeMPL.aggregate_verify(list(pks), list(messages), signature))

    def fast_aggregate_verify(
        self, pks: Sequence[blspy.G1Element], message: bytes, signature: blspy.G2Element
    ) -> bool:
        # blspy skips KeyValidate per key (see module docstring, 2).
        if not pks or not self._keys_valid(pks):
            return False
        return bool(blspy.PopSchemeMPL.fast_aggregate_verify(list(pks), message, signature))

    def pop_prove(self, sk: blspy.PrivateKey) -> blspy.G2Element:
        return blspy.PopSchemeMPL.pop_prove(self._signing_key(sk))

    def pop_verify(self, pk: blspy.G1Element, proof: blspy.G2Element) -> bool:
        if not self._keys_valid((pk,)):
            return False
        return bool(blspy.PopSchemeMPL.pop_verify(pk, proof))


_G1_INFINITY: Final = blspy.G1Element()
