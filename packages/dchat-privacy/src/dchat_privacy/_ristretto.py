"""The Ristretto255 prime-order group (RFC 9496) over libsodium, through rbcl.

Every group operation is libsodium's constant-time code; this module only checks
encodings and gives the bytes types. An :class:`Element` is always a valid
canonical encoding (checked when decoded, produced by libsodium otherwise) and a
:class:`Scalar` is always reduced modulo the group order ``L``.

rbcl ships libsodium inside its wheel and, when imported, writes it to a
temporary file to load it. It is imported on first use (so programs that import
dchat_privacy without using the proofs do not pay for it) and the temporary file
is removed once the library is loaded.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
import sys
from typing import TYPE_CHECKING, Any, Final

from ._zk_errors import ZkDecodeError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("GROUP_ORDER", "Element", "Scalar")

GROUP_ORDER: Final = 2**252 + 27742317777372353535851937790883648493
_SIZE: Final = 32
_WIDE: Final = 64


@functools.cache
def _na() -> Any:  # rbcl is untyped
    import rbcl  # type: ignore[import-untyped]

    loader = sys.modules.get("rbcl._sodium")
    path = getattr(loader, "lib_path", None)
    if isinstance(path, str):
        # Already mapped, the file is no longer needed (Windows keeps it locked).
        with contextlib.suppress(OSError):
            os.unlink(path)
    return rbcl


class Scalar:
    """An integer modulo the group order, as 32 little-endian bytes."""

    SIZE: Final = _SIZE
    __slots__ = ("_b",)

    def __init__(self, reduced: bytes) -> None:
        # Internal: callers use from_bytes/from_hash/random, which guarantee reduction.
        self._b = reduced

    @classmethod
    def from_bytes(cls, data: bytes) -> Scalar:
        """Decode a canonical scalar (32 bytes, little-endian, below the group order).

        Raises:
            ZkDecodeError: wrong length or not reduced.
        """
        if not isinstance(data, bytes) or len(data) != _SIZE:
            raise ZkDecodeError("a scalar is 32 bytes")
        if int.from_bytes(data, "little") >= GROUP_ORDER:
            raise ZkDecodeError("non-canonical scalar")
        return cls(data)

    @classmethod
    def from_hash(cls, digest: bytes) -> Scalar:
        """Reduce 64 uniform bytes (a SHA-512 digest) modulo the group order."""
        if len(digest) != _WIDE:
            raise ZkDecodeError("a wide scalar is 64 bytes")
        return cls(_na().crypto_core_ristretto255_scalar_reduce(digest))

    @classmethod
    def random(cls, rng: Callable[[int], bytes] = os.urandom) -> Scalar:
        """A uniformly random scalar (64 random bytes reduced)."""
        return cls.from_hash(rng(_WIDE))

    @classmethod
    def from_int(cls, value: int) -> Scalar:
        """The scalar ``value mod L`` (for constants and tests)."""
        return cls((value % GROUP_ORDER).to_bytes(_SIZE, "little"))

    def to_bytes(self) -> bytes:
        """The canonical 32-byte encoding."""
        return self._b

    def is_zero(self) -> bool:
        return hmac.compare_digest(self._b, bytes(_SIZE))

    def __add__(self, other: Scalar) -> Scalar:
        return Scalar(_na().crypto_core_ristretto255_scalar_add(self._b, other._b))

    def __sub__(self, other: Scalar) -> Scalar:
        return Scalar(_na().crypto_core_ristretto255_scalar_sub(self._b, other._b))

    def __mul__(self, other: Scalar) -> Scalar:
        return Scalar(_na().crypto_core_ristretto255_scalar_mul(self._b, other._b))

    def __neg__(self) -> Scalar:
        return Scalar(_na().crypto_core_ristretto255_scalar_negate(self._b))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return hmac.compare_digest(self._b, other._b)

    def __hash__(self) -> int:
        return hash(self._b)

    def __repr__(self) -> str:
        return "Scalar(...)"  # scalars are often secrets: never print them


class Element:
    """A Ristretto255 group element, as its canonical 32-byte encoding."""

    SIZE: Final = _SIZE
    __slots__ = ("_b",)

    def __init__(self, valid: bytes) -> None:
        # Internal: from_bytes checks validity, libsodium's outputs are valid.
        self._b = valid

    @classmethod
    def from_bytes(cls, data: bytes) -> Element:
        """Decode a canonical encoding (RFC 9496 section 4.3.1).

        Raises:
            ZkDecodeError: wrong length or not a valid canonical encoding.
        """
        if not isinstance(data, bytes) or len(data) != _SIZE:
            raise ZkDecodeError("an element is 32 bytes")
        if not _na().crypto_core_ristretto255_is_valid_point(data):
            raise ZkDecodeError("invalid ristretto255 encoding")
        return cls(data)

    @classmethod
    def from_uniform_bytes(cls, data: bytes) -> Element:
        """Map 64 uniform bytes to an element (RFC 9496 section 4.3.4): hash to group."""
        if len(data) != _WIDE:
            raise ZkDecodeError("hash-to-group input is 64 bytes")
        return cls(_na().crypto_core_ristretto255_from_hash(data))

    @classmethod
    def generator(cls) -> Element:
        """The standard generator ``B``."""
        return _GENERATOR

    @classmethod
    def identity(cls) -> Element:
        return cls(bytes(_SIZE))

    @classmethod
    def base_mul(cls, scalar: Scalar) -> Element:
        """``scalar * B`` (zero gives the identity)."""
        return cls(_na().crypto_scalarmult_ristretto255_base_allow_scalar_zero(scalar.to_bytes()))

    def to_bytes(self) -> bytes:
        return self._b

    def is_identity(self) -> bool:
        return hmac.compare_digest(self._b, bytes(_SIZE))

    def __mul__(self, scalar: Scalar) -> Element:
        if self._b == _GENERATOR_BYTES:
            return Element.base_mul(scalar)
        mul = _na().crypto_scalarmult_ristretto255_allow_scalar_zero
        return Element(mul(scalar.to_bytes(), self._b))

    def __add__(self, other: Element) -> Element:
        return Element(_na().crypto_core_ristretto255_add(self._b, other._b))

    def __sub__(self, other: Element) -> Element:
        return Element(_na().crypto_core_ristretto255_sub(self._b, other._b))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return hmac.compare_digest(self._b, other._b)

    def __lt__(self, other: Element) -> bool:
        return self._b < other._b

    def __hash__(self) -> int:
        return hash(self._b)

    def __repr__(self) -> str:
        return f"Element({self._b.hex()})"


_GENERATOR_BYTES: Final = bytes.fromhex(
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
)
_GENERATOR: Final = Element(_GENERATOR_BYTES)
