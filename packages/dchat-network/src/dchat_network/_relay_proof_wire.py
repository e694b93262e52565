"""Relay protocol messages for contact-proof put authorization (protocol §41).

::

    ring_set {"t": "ring_set", "rid": n, "mb": mailbox(32), "ring": keys(32 * 0..1024),
              "pk": key(32) or empty, "sig": signature(64) or empty}
             -> {"t": "ring_held", "rid": n, "n": keys held}
    zk_get   {"t": "zk_get", "rid": n, "mb": mailbox(32), "n": 1..64}
             -> {"t": "zk_ctx", "rid": n, "ep": epoch, "nonces": [nonce(32), ...],
                 "ring": keys(32 * 0..1024), "pk": key, "sig": signature}

``ring_set`` is the owner's (like ``tok_set``): it replaces the mailbox's
ring, the contact keys concatenated in strictly increasing order (empty:
remove it), signed by the mailbox's key ``pk`` (whose mailbox id is ``mb``)
over :func:`~dchat_privacy.lowlevel.ring_statement`; the server checks every
key and the signature (``bad_ring`` otherwise) and answers
``busy`` ``rings`` past its memory bound. ``zk_get`` is anyone's: up to
``n`` one-use nonces of the relay's current proof epoch for a deposit into
``mb``, with the ring to prove against and its signature (no nonces and
empty fields: the mailbox has none). The codec checks shapes and sizes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, Fields

from ._put_proofs import KEY_SIZE, MAX_CONTEXTS, MAX_RING_BYTES, NONCE_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("PROOF_DECODERS", "RingHeld", "RingSet", "ZkContexts", "ZkGet")

_MAX_RID: Final = 2**63 - 1
_ID: Final = 32


@dataclass(frozen=True, slots=True)
class RingSet:
    """Replace the contact ring registered for ``mailbox`` (the caller's own)."""

    rid: int
    mailbox: bytes
    ring: bytes
    key: bytes = b""
    signature: bytes = b""

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        body = {"t": "ring_set", "mb": self.mailbox, "ring": self.ring}
        return {**body, "pk": self.key, "sig": self.signature}


@dataclass(frozen=True, slots=True)
class RingHeld:
    """The relay now holds a ring of ``count`` keys for the mailbox."""

    rid: int
    count: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "ring_held", "n": self.count}


@dataclass(frozen=True, slots=True)
class ZkGet:
    """Issue up to ``count`` one-use proof nonces for a deposit into ``mailbox``."""

    rid: int
    mailbox: bytes
    count: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "zk_get", "mb": self.mailbox, "n": self.count}


@dataclass(frozen=True, slots=True)
class ZkContexts:
    """The relay's epoch, fresh nonces and the mailbox's ring (empty: none)."""

    rid: int
    epoch: int
    nonces: tuple[bytes, ...]
    ring: bytes
    key: bytes = b""
    signature: bytes = b""

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        body = {"t": "zk_ctx", "ep": self.epoch, "nonces": list(self.nonces), "ring": self.ring}
        return {**body, "pk": self.key, "sig": self.signature}


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_RID)


def _ring(f: Fields) -> bytes:
    ring = f.get_bytes("ring", max_size=MAX_RING_BYTES)
    if len(ring) % KEY_SIZE:
        raise DecodeError("a ring is whole 32-byte keys")
    return ring


def _signed(f: Fields, ring: bytes) -> tuple[bytes, bytes]:
    key, signature = f.get_bytes("pk", max_size=_ID), f.get_bytes("sig", max_size=64)
    if (len(key), len(signature)) != ((_ID, 64) if ring else (0, 0)):
        raise DecodeError("a ring comes with a 32-byte key and a 64-byte signature")
    return key, signature


def _ring_set(value: object) -> RingSet:
    f, rid = _fields(value, "mb", "ring", "pk", "sig")
    ring = _ring(f)
    return RingSet(rid, f.get_bytes("mb", size=_ID), ring, *_signed(f, ring))


def _ring_held(value: object) -> RingHeld:
    f, rid = _fields(value, "n")
    return RingHeld(rid, f.get_int("n", hi=MAX_RING_BYTES // KEY_SIZE))


def _zk_get(value: object) -> ZkGet:
    f, rid = _fields(value, "mb", "n")
    return ZkGet(rid, f.get_bytes("mb", size=_ID), f.get_int("n", lo=1, hi=MAX_CONTEXTS))


def _zk_ctx(value: object) -> ZkContexts:
    f, rid = _fields(value, "ep", "nonces", "ring", "pk", "sig")
    nonces = f.get_list("nonces", max_len=MAX_CONTEXTS)
    if not all(isinstance(n, bytes) and len(n) == NONCE_SIZE for n in nonces):
        raise DecodeError("proof nonces are 32 bytes each")
    ring = _ring(f)
    if bool(nonces) != bool(ring):
        raise DecodeError("nonces come with a ring, and only with one")
    epoch = f.get_int("ep", hi=2**64 - 1)
    return ZkContexts(rid, epoch, tuple(nonces), ring, *_signed(f, ring))


PROOF_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "ring_set": _ring_set,
    "ring_held": _ring_held,
    "zk_get": _zk_get,
    "zk_ctx": _zk_ctx,
}
