"""SLIP-0010 hierarchical deterministic derivation for Ed25519.

SLIP-0010 adapts BIP-32 to other curves. For Ed25519 only *hardened* children
exist (public derivation is undefined on that curve), which is what we want
anyway: a leaked child public key and chain code reveal nothing about siblings.

::

    master:  I = HMAC-SHA512(key=b"ed25519 seed", data=seed)
             private = I[:32], chain_code = I[32:]
    child i (i >= 2**31):
             I = HMAC-SHA512(key=chain_code, data=0x00 || private || ser32(i))
             private = I[:32], chain_code = I[32:]
    public:  0x00 || Ed25519 public key(private)        (33 bytes, as in the spec)

Paths are written ``m/44'/25443'/0'`` (``'`` or ``h`` marks hardened indices;
a non-hardened index is rejected because Ed25519 has none).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from dchat_crypto import SigningKey

from ._errors import IdentityArgumentError

__all__ = ("HARDENED", "ExtendedKey", "parse_path")

HARDENED = 0x8000_0000
_CURVE_KEY = b"ed25519 seed"
_MIN_SEED, _MAX_SEED = 16, 64  # SLIP-0010: 128 to 512 bits
_MAX_DEPTH = 255  # BIP-32 serialises depth in one byte


def _hmac512(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    digest = hmac.new(key, data, hashlib.sha512).digest()
    return digest[:32], digest[32:]


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExtendedKey:
    """One node of a SLIP-0010 Ed25519 tree: a private key and its chain code."""

    private: bytes
    chain_code: bytes
    depth: int = 0

    @classmethod
    def master(cls, seed: bytes) -> ExtendedKey:
        """The root node for ``seed`` (16 to 64 bytes).

        Raises:
            IdentityArgumentError: the seed has a length SLIP-0010 does not allow.
        """
        if not isinstance(seed, bytes) or not _MIN_SEED <= len(seed) <= _MAX_SEED:
            raise IdentityArgumentError("a SLIP-0010 seed must be 16 to 64 bytes")
        private, chain_code = _hmac512(_CURVE_KEY, seed)
        return cls(private, chain_code)

    def child(self, index: int) -> ExtendedKey:
        """The hardened child ``index`` (which must already include :data:`HARDENED`).

        Raises:
            IdentityArgumentError: ``index`` is not a hardened 32-bit index, or too deep.
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise IdentityArgumentError("a child index must be an integer")
        if not HARDENED <= index <= 0xFFFF_FFFF:
            raise IdentityArgumentError("Ed25519 supports only hardened child indices")
        if self.depth >= _MAX_DEPTH:
            raise IdentityArgumentError("derivation path too deep")
        data = b"\x00" + self.private + index.to_bytes(4, "big")
        private, chain_code = _hmac512(self.chain_code, data)
        return ExtendedKey(private, chain_code, self.depth + 1)

    def derive(self, path: str) -> ExtendedKey:
        """Follow ``path`` (``m/...``) from this node, which must be the master."""
        if self.depth != 0:
            raise IdentityArgumentError("absolute paths start at the master node")
        node = self
        for index in parse_path(path):
            node = node.child(index)
        return node

    @property
    def signing_key(self) -> SigningKey:
        """This node's private key as an Ed25519 signing key."""
        return SigningKey.from_bytes(self.private)

    @property
    def public_key(self) -> bytes:
        """The SLIP-0010 public key encoding: ``0x00 || Ed25519 public key``."""
        return b"\x00" + self.signing_key.public_key.to_bytes()

    def __repr__(self) -> str:
        return f"ExtendedKey(depth={self.depth}, public={self.public_key.hex()})"


def parse_path(path: str) -> tuple[int, ...]:
    """Parse ``m/0'/1'/...`` into child indices with the hardened bit set.

    Raises:
        IdentityArgumentError: malformed path, non-hardened or out-of-range index.
    """
    if not isinstance(path, str) or len(path) > 1024:
        raise IdentityArgumentError("a derivation path must be a short string")
    parts = path.split("/")
    if parts[0] != "m":
        raise IdentityArgumentError("a derivation path starts with 'm'")
    indices = []
    for part in parts[1:]:
        if len(part) < 2 or part[-1] not in "'hH" or not part[:-1].isdecimal():
            raise IdentityArgumentError(f"bad path component {part!r} (hardened only)")
        number = int(part[:-1])
        if not part[:-1].isascii() or number >= HARDENED or str(number) != part[:-1]:
            raise IdentityArgumentError(f"bad path component {part!r}")
        indices.append(number + HARDENED)
    return tuple(indices)
