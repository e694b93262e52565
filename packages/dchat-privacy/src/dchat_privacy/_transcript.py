"""A Fiat-Shamir transcript: domain-separated, length-framed SHA-512.

Theory of operation. The transcript is one running SHA-512 state. Everything a
proof depends on (protocol name, context, statement, commitments) is absorbed
as framed records, and challenges are squeezed from a copy of the state::

    start          SHA-512 over  "dchat-zk-transcript-v1" || record(0x01, "protocol", name)
    record(k,l,d)  = k (1 byte) || u16-be len(l) || l || u32-be len(d) || d
    append(l, d)   absorbs record(0x01, l, d)
    challenge(l)   c = SHA-512(state || record(0x02, l, "")); absorbs record(0x03, l, c);
                   returns c reduced modulo the group order (64 bytes -> scalar)
    nonce(w, r)    SHA-512(state || record(0x04, "witness", w) || record(0x04, "rng", r)),
                   reduced; does not change the transcript

The framing is injective (every record carries its kind, label length and data
length), so two different sequences of appends never hash alike, and every
challenge depends on everything absorbed before it, including earlier
challenges. Nonces are hedged: derived from fresh randomness *and* the witness
and transcript, so a broken random source alone does not repeat a nonce across
different statements.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import TYPE_CHECKING, Final

from ._ristretto import Element, Scalar
from ._zk_errors import ZkInputError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("Transcript",)

_DOMAIN: Final = b"dchat-zk-transcript-v1"
_APPEND: Final = 0x01
_CHALLENGE: Final = 0x02
_CHALLENGE_OUT: Final = 0x03
_NONCE: Final = 0x04


def _record(kind: int, label: bytes, data: bytes) -> bytes:
    if len(label) > 0xFFFF or len(data) > 0xFFFFFFFF:
        raise ZkInputError("transcript record too large")
    return struct.pack(">BH", kind, len(label)) + label + struct.pack(">I", len(data)) + data


class Transcript:
    """A running Fiat-Shamir transcript for one proof (see the module docstring)."""

    __slots__ = ("_h",)

    def __init__(self, protocol: bytes) -> None:
        self._h = hashlib.sha512(_DOMAIN)
        self.append(b"protocol", protocol)

    def append(self, label: bytes, data: bytes) -> None:
        """Absorb ``data`` under ``label``."""
        self._h.update(_record(_APPEND, label, data))

    def append_u64(self, label: bytes, value: int) -> None:
        if not 0 <= value < 2**64:
            raise ZkInputError("value out of u64 range")
        self.append(label, value.to_bytes(8, "big"))

    def append_elements(self, label: bytes, elements: tuple[Element, ...]) -> None:
        """Absorb a sequence of elements as one record (count implied by the length)."""
        self.append(label, b"".join(e.to_bytes() for e in elements))

    def challenge(self, label: bytes) -> Scalar:
        """Squeeze a challenge scalar and absorb it."""
        fork = self._h.copy()
        fork.update(_record(_CHALLENGE, label, b""))
        digest = fork.digest()
        self._h.update(_record(_CHALLENGE_OUT, label, digest))
        return Scalar.from_hash(digest)

    def nonce(self, witness: Scalar, rng: Callable[[int], bytes] = os.urandom) -> Scalar:
        """A hedged secret nonce bound to this transcript, the witness and fresh randomness."""
        fork = self._h.copy()
        fork.update(_record(_NONCE, b"witness", witness.to_bytes()))
        fork.update(_record(_NONCE, b"rng", rng(32)))
        return Scalar.from_hash(fork.digest())

    def copy(self) -> Transcript:
        clone = Transcript.__new__(Transcript)
        clone._h = self._h.copy()
        return clone
