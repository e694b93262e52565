"""Typed BLS12-381 signatures: proof-of-possession scheme, keys in G1, signatures in G2.

The ciphersuite is Ethereum's, ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``
(draft-irtf-cfrg-bls-signature), so signatures and keys interoperate with any
library implementing it. All work is done by a :class:`BlsBackend`; this
module adds types, validation at decode time and dchat's policy:

* A :class:`BlsPublicKey` is always a valid signer key (KeyValidate passed):
  on the curve, in the subgroup, canonically encoded and not the identity.
  A :class:`BlsSignature` is a valid, canonical subgroup point (the identity
  included: it is what aggregating nothing but identities gives).
* Verification functions return ``None`` and raise the opaque
  :class:`BadSignatureError` on any failure, like :meth:`VerifyKey.verify`.
* :func:`bls_fast_aggregate_verify` is only safe when every key's proof of
  possession was checked with :func:`bls_verify_possession` (for example when
  a validator registered): otherwise a rogue key ``x*g1 - pk_victim`` lets an
  attacker forge a "joint" signature alone.
* :func:`bls_aggregate_verify` additionally requires the messages to be
  distinct (the draft's basic-scheme rule; the POP ciphersuite leaves it out
  because it assumes proven keys). With distinct messages, rogue keys gain
  nothing, so it is safe on keys whose possession was never proven.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar, Final, Self

from ._bls_backend import BlsBackend, BlspyBackend
from ._bls_errors import BlsEncodingError, BlsUsageError
from ._errors import BadSignatureError
from ._primitives import constant_time_equal

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = (
    "BlsPublicKey",
    "BlsSecretKey",
    "BlsSignature",
    "bls_aggregate",
    "bls_aggregate_verify",
    "bls_fast_aggregate_verify",
    "bls_verify",
    "bls_verify_possession",
)

# The single place the backend is chosen; handles are opaque ``object``s here.
_BACKEND: Final[BlsBackend[object, object, object]] = BlspyBackend()


def _message(message: bytes) -> bytes:
    if not isinstance(message, bytes | bytearray | memoryview):
        raise BlsUsageError(f"message must be bytes, got {type(message).__name__}")
    return bytes(message)


class BlsPublicKey:
    """A BLS public key: a compressed G1 point of 48 bytes, never the identity."""

    SIZE: ClassVar[int] = 48
    __slots__ = ("_point", "_raw")
    _point: object
    _raw: bytes

    def __init__(self, data: bytes) -> None:
        point = _BACKEND.g1_from_bytes(data)
        if _BACKEND.g1_is_infinity(point):
            raise BlsEncodingError("the point at infinity is not a valid public key")
        self._point = point
        self._raw = _BACKEND.g1_to_bytes(point)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate a public key.

        Raises:
            BlsEncodingError: If ``data`` is not the canonical 48-byte encoding of
                a G1 subgroup point other than the identity.
        """
        return cls(data)

    @classmethod
    def _from_point(cls, point: object) -> Self:
        key = cls.__new__(cls)
        key._point = point
        key._raw = _BACKEND.g1_to_bytes(point)
        return key

    def to_bytes(self) -> bytes:
        """Return the 48-byte compressed encoding."""
        return self._raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlsPublicKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((BlsPublicKey, self._raw))

    def __repr__(self) -> str:
        return f"BlsPublicKey({self._raw.hex()})"


# Signatures that decoded and passed the subgroup check, by their canonical bytes.
# A validator receives every vote again on each of its peers' rebroadcasts, and
# decoding a G2 point (with the subgroup check) costs a tenth of a verification;
# a hit gives the very point the first decode made (points are immutable).
_DECODED_G2: dict[bytes, object] = {}
_DECODED_G2_MAX: Final = 4096


class BlsSignature:
    """A BLS signature (or aggregate, or possession proof): a compressed G2 point of 96 bytes."""

    SIZE: ClassVar[int] = 96
    __slots__ = ("_decoded", "_raw")
    _decoded: object | None  # None until a deferred signature is first used
    _raw: bytes

    def __init__(self, data: bytes) -> None:
        point = _DECODED_G2.get(data) if type(data) is bytes else None
        if point is not None:
            self._decoded, self._raw = point, data
            return
        self._decoded = point = _BACKEND.g2_from_bytes(data)
        self._raw = _BACKEND.g2_to_bytes(point)
        if self._raw == data:
            if len(_DECODED_G2) >= _DECODED_G2_MAX:
                _DECODED_G2.clear()
            _DECODED_G2[self._raw] = point

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate a signature.

        Raises:
            BlsEncodingError: If ``data`` is not the canonical 96-byte encoding of
                a G2 subgroup point.
        """
        return cls(data)

    @classmethod
    def from_bytes_deferred(cls, data: bytes) -> Self:
        """Keep ``data`` as it is and decode it the first time the signature is used.

        For signatures that are carried far more often than checked (the
        certificates inside a synced batch of blocks, of which only the top one
        is verified): decoding a G2 point costs about as much as hashing the
        whole block. The first verification or aggregation decodes and validates
        ``data`` exactly as :meth:`from_bytes` does; if that fails, verification
        raises :class:`BadSignatureError` and :func:`bls_aggregate`
        :class:`BlsEncodingError`. Equality and :meth:`to_bytes` use ``data``.

        Raises:
            BlsEncodingError: If ``data`` is not 96 bytes.
        """
        if not isinstance(data, bytes | bytearray) or len(data) != cls.SIZE:
            raise BlsEncodingError(f"a G2 point is {cls.SIZE} bytes")
        signature = cls.__new__(cls)
        signature._decoded = None
        signature._raw = bytes(data)
        return signature

    @classmethod
    def _from_point(cls, point: object) -> Self:
        signature = cls.__new__(cls)
        signature._decoded = point
        signature._raw = _BACKEND.g2_to_bytes(point)
        return signature

    @property
    def _point(self) -> object:
        point = self._decoded
        if point is None:
            point = _BACKEND.g2_from_bytes(self._raw)
            if _BACKEND.g2_to_bytes(point) != self._raw:
                raise BlsEncodingError("not the canonical encoding of a G2 point")
            self._decoded = point
        return point

    def to_bytes(self) -> bytes:
        """Return the 96-byte compressed encoding."""
        return self._raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlsSignature):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((BlsSignature, self._raw))

    def __repr__(self) -> str:
        return f"BlsSignature({self._raw.hex()})"


class BlsSecretKey:
    """A BLS secret key: an integer in ``[1, r)``, 32 bytes big-endian.

    ``repr`` shows only the public key; equality is constant-time.
    """

    SIZE: ClassVar[int] = 32
    MIN_SEED_SIZE: ClassVar[int] = 32
    __slots__ = ("_public", "_secret")
    _secret: object
    _public: BlsPublicKey

    def __init__(self, data: bytes) -> None:
        self._set(_BACKEND.secret_from_bytes(data))

    def _set(self, secret: object) -> None:
        self._secret = secret
        self._public = BlsPublicKey._from_point(_BACKEND.sk_to_pk(secret))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode a secret key.

        Raises:
            BlsSecretKeyError: If ``data`` is not 32 bytes, is zero or is not
                below the group order ``r``.
        """
        return cls(data)

    @classmethod
    def from_seed(cls, ikm: bytes) -> Self:
        """Derive a key with the draft's KeyGen (empty ``key_info``).

        The same seed always gives the same key, so ``ikm`` must be secret and
        uniformly random.

        Raises:
            BlsSecretKeyError: If ``ikm`` is shorter than 32 bytes.
        """
        key = cls.__new__(cls)
        key._set(_BACKEND.key_gen(ikm))
        return key

    @classmethod
    def generate(cls) -> Self:
        """Create a new key from 32 bytes of ``os.urandom``."""
        return cls.from_seed(os.urandom(cls.MIN_SEED_SIZE))

    def to_bytes(self) -> bytes:
        """Return the 32-byte big-endian encoding (secret: handle with care)."""
        return _BACKEND.secret_to_bytes(self._secret)

    @property
    def public_key(self) -> BlsPublicKey:
        """The matching public key."""
        return self._public

    def sign(self, message: bytes) -> BlsSignature:
        """Sign ``message`` under the POP ciphersuite."""
        return BlsSignature._from_point(_BACKEND.sign(self._secret, _message(message)))

    def prove_possession(self) -> BlsSignature:
        """Prove knowledge of this key: sign the public key under the PoP tag.

        Publish the proof with the public key; others check it with
        :func:`bls_verify_possession` before the key takes part in
        :func:`bls_fast_aggregate_verify`.
        """
        return BlsSignature._from_point(_BACKEND.pop_prove(self._secret))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlsSecretKey):
            return NotImplemented
        return constant_time_equal(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash((BlsSecretKey, self._public.to_bytes()))

    def __repr__(self) -> str:
        return f"BlsSecretKey(public={self._public.to_bytes().hex()})"


def _checkable(signature: BlsSignature) -> object:
    # A deferred signature that turns out not to be a point simply does not verify.
    try:
        return signature._point
    except BlsEncodingError:
        raise BadSignatureError from None


def bls_verify(public_key: BlsPublicKey, message: bytes, signature: BlsSignature) -> None:
    """Check that ``signature`` is ``public_key``'s signature over ``message``.

    Raises:
        BadSignatureError: If it is not (the identity signature never is).
    """
    if not _BACKEND.verify(public_key._point, _message(message), _checkable(signature)):
        raise BadSignatureError


def bls_aggregate(signatures: Iterable[BlsSignature]) -> BlsSignature:
    """Combine signatures (over any messages, by any keys) into one.

    Raises:
        BlsUsageError: If ``signatures`` is empty.
    """
    points = [signature._point for signature in signatures]
    return BlsSignature._from_point(_BACKEND.aggregate(points))


def bls_aggregate_verify(
    public_keys: Sequence[BlsPublicKey], messages: Sequence[bytes], signature: BlsSignature
) -> None:
    """Check an aggregate of one signature per ``(public_keys[i], messages[i])``.

    The messages must be pairwise distinct; then no proof of possession is
    needed (see the module docstring).

    Raises:
        BadSignatureError: If the lists are empty or differ in length, two
            messages are equal, or the aggregate does not verify.
    """
    encoded = [_message(message) for message in messages]
    if not public_keys or len(public_keys) != len(encoded) or len(set(encoded)) != len(encoded):
        raise BadSignatureError
    points = [key._point for key in public_keys]
    if not _BACKEND.aggregate_verify(points, encoded, _checkable(signature)):
        raise BadSignatureError


def bls_fast_aggregate_verify(
    public_keys: Sequence[BlsPublicKey], message: bytes, signature: BlsSignature
) -> None:
    """Check an aggregate of signatures by all ``public_keys`` over one ``message``.

    One pairing check for any number of signers. Every key must have had its
    proof of possession verified (:func:`bls_verify_possession`) beforehand,
    or a rogue key can forge the aggregate.

    Raises:
        BadSignatureError: If ``public_keys`` is empty or the aggregate does not verify.
    """
    points = [key._point for key in public_keys]
    if not _BACKEND.fast_aggregate_verify(points, _message(message), _checkable(signature)):
        raise BadSignatureError


def bls_verify_possession(public_key: BlsPublicKey, proof: BlsSignature) -> None:
    """Check a proof of possession made by :meth:`BlsSecretKey.prove_possession`.

    Raises:
        BadSignatureError: If ``proof`` does not prove possession of ``public_key``.
    """
    if not _BACKEND.pop_verify(public_key._point, _checkable(proof)):
        raise BadSignatureError
