"""Chain-anchored group order: the wire records and the pure checks (no store, no I/O).

Theory of operation
-------------------
A group that asks for it (``GroupState.anchor``: the identity that owns its
chat-chain channel) has its message order fixed on the chat chain. Three
things are checked, all by every member's node:

1. *Per-device chains.* Every group message names its sending device's
   number ``q`` and the hash ``ph`` of that device's previous message
   (:class:`~dchat_messaging.lowlevel.GroupCiphertext`). Two different
   messages for one ``(s, d, q)``, or a ``ph`` that is not the hash of the
   ``q - 1`` we hold, is a *fork*: the sender signed two histories. A jump
   in ``q`` is a *gap*: messages we have not received.
2. *The sequencer's batch.* An admin's node (the sequencer) lists the hashes
   of the messages it holds in its order, commits ``commit_order {channel,
   first, last, root}`` with :func:`order_root` of the list, and sends the
   signed list (:class:`OrderBatch`, control ``group.ord``) to every member.
3. *The chain.* Each member reads the order record of ``[first, last]``
   through its light client (a Merkle proof against a certified header) and
   accepts the list only if its root is the chain's. Then every message it
   holds that the list names is *anchored*; a list entry for an ``(s, d, q)``
   it holds with another hash is a fork; a list whose root is not the
   chain's, or two lists the sequencer signed for one range, is the
   sequencer's equivocation.

Evidence is always two signed artefacts (two sender-signed messages, a
sender-signed message and a sequencer-signed list, or two sequencer-signed
lists, the chain's root beside them) and is sent to the other members as
``group.evi``, who check it themselves before they record it.

The Merkle tree over a batch of ``n`` entries (RFC 6962's shape, our own
domain separation)::

    leaf(s, d, q, h) = SHA-256(0x00 || "dchat-group-ord-v1" || s || d || q(8, BE) || h)
    node(l, r)       = SHA-256(0x01 || l || r)
    root(e[0:n])     = leaf(e[0]) if n == 1,
                       else node(root(e[0:k]), root(e[k:n])), k the largest power of 2 < n
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError

from ._errors import GroupError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_crypto import SigningKey, VerifyKey

__all__ = (
    "MAX_BATCH",
    "OrderBatch",
    "OrderEntry",
    "Evidence",
    "decode_evidence",
    "encode_evidence",
    "order_channel",
    "order_root",
)

MAX_BATCH: Final = 256
"""Entries of one ``group.ord`` (it must fit one control payload)."""
_INFO: Final = b"dchat-group-ord-v1"
_CHANNEL_DOMAIN: Final = b"dchat-channel-v1\x00"  # the chat chain's channel id (protocol.md §12)
_BATCH: Final = frozenset({"v", "g", "ch", "f", "e", "by", "sig"})
_EVIDENCE: Final = frozenset({"v", "g", "k", "a"})
_LIMITS: Final = DecodeLimits(max_size=48_000, max_depth=4, max_items=6 * MAX_BATCH + 32)
_MAX_SEQ: Final = 2**53
EVIDENCE_KINDS: Final = frozenset({"fork", "order"})


def order_channel(owner: bytes, group: bytes) -> bytes:
    """The chat-chain channel of ``group``: created by ``owner``, named by the group id (hex)."""
    return hashlib.sha256(_CHANNEL_DOMAIN + owner + group.hex().encode()).digest()


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """One message in a batch: its sender, device, device number and hash."""

    sender: bytes
    device: bytes
    seq: int
    hash: bytes

    def leaf(self) -> bytes:
        q = self.seq.to_bytes(8, "big")
        return hashlib.sha256(b"\x00" + _INFO + self.sender + self.device + q + self.hash).digest()

    @property
    def slot(self) -> tuple[bytes, bytes, int]:
        return self.sender, self.device, self.seq


def order_root(entries: Sequence[OrderEntry]) -> bytes:
    """The Merkle root of a non-empty batch (see the module docstring)."""
    if not entries:
        raise ValueError("a batch has at least one entry")
    return _root([e.leaf() for e in entries])


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _root(leaves[:k]) + _root(leaves[k:])).digest()


@dataclass(frozen=True, slots=True)
class OrderBatch:
    """A sequencer's signed list of one range (the data of a ``group.ord`` control).

    ``canonical({"v": 1, "g": group(32), "ch": channel(32), "f": first, "e":
    [[s(32), d(32), q, h(32)], ...], "by": sequencer identity(32), "sig":
    Ed25519(identity key, "dchat-group-ord-v1" || canonical(the rest))})``;
    the range is ``[f, f + len(e) - 1]``.
    """

    group: bytes
    channel: bytes
    first: int
    entries: tuple[OrderEntry, ...]
    by: bytes
    signature: bytes = b""

    @property
    def last(self) -> int:
        return self.first + len(self.entries) - 1

    def root(self) -> bytes:
        return order_root(self.entries)

    def _unsigned(self) -> dict[str, object]:
        return {
            "v": 1, "g": self.group, "ch": self.channel, "f": self.first, "by": self.by,
            "e": [[e.sender, e.device, e.seq, e.hash] for e in self.entries],
        }  # fmt: skip

    def signed_bytes(self) -> bytes:
        return _INFO + canonical_encode(self._unsigned())

    def signed(self, key: SigningKey) -> OrderBatch:
        return replace(self, signature=key.sign(self.signed_bytes()))

    def verify(self, key: VerifyKey) -> None:
        """Raises: GroupError ``bad_signature``."""
        try:
            key.verify(self.signature, self.signed_bytes())
        except BadSignatureError:
            raise GroupError("bad_signature", "an order list not signed by its sequencer") from None

    def to_bytes(self) -> bytes:
        return canonical_encode({**self._unsigned(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> OrderBatch:
        """Parse untrusted bytes (the signature is checked by :meth:`verify`).

        Raises:
            GroupError: ``malformed``.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "group order", _BATCH)
            if f.get_int("v") != 1:
                raise DecodeError("version")
            entries = tuple(_entry(e) for e in f.get_list("e", max_len=MAX_BATCH))
            if not entries or len({e.slot for e in entries}) != len(entries):
                raise DecodeError("entries")
            if len({e.hash for e in entries}) != len(entries):
                raise DecodeError("a message listed twice")
            return cls(
                f.get_bytes("g", size=32), f.get_bytes("ch", size=32),
                f.get_int("f", hi=_MAX_SEQ), entries, f.get_bytes("by", size=32),
                f.get_bytes("sig", size=64),
            )  # fmt: skip
        except (DecodeError, ValueError, TypeError):
            raise GroupError("malformed", "a group order list is malformed") from None


def _entry(raw: object) -> OrderEntry:
    if not isinstance(raw, list) or len(raw) != 4:
        raise DecodeError("entry")
    s, d, q, h = raw
    if not (isinstance(s, bytes) and isinstance(d, bytes) and isinstance(h, bytes)):
        raise DecodeError("entry")
    if len(s) != 32 or len(d) != 32 or len(h) != 32:
        raise DecodeError("entry sizes")
    if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= _MAX_SEQ:
        raise DecodeError("entry number")
    return OrderEntry(s, d, q, h)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The data of a ``group.evi`` control: one signed artefact the receiver checks itself.

    ``canonical({"v": 1, "g": group(32), "k": "fork" | "order", "a": bytes})``:
    ``fork``: a group message (sender-signed) that conflicts with what the
    sender of the evidence holds; ``order``: a sequencer-signed list that does
    not match the chain (or another list the sequencer signed for its range).
    """

    group: bytes
    kind: str
    artefact: bytes


def encode_evidence(evidence: Evidence) -> bytes:
    return canonical_encode(
        {"v": 1, "g": evidence.group, "k": evidence.kind, "a": evidence.artefact}
    )


def decode_evidence(data: bytes) -> Evidence:
    """Parse untrusted ``group.evi`` data.

    Raises:
        GroupError: ``malformed``.
    """
    try:
        f = Fields(canonical_decode(data, _LIMITS), "group evidence", _EVIDENCE)
        kind = f.get_str("k", max_len=8)
        if f.get_int("v") != 1 or kind not in EVIDENCE_KINDS:
            raise DecodeError("version or kind")
        return Evidence(f.get_bytes("g", size=32), kind, f.get_bytes("a", max_size=48_000))
    except (DecodeError, ValueError, TypeError):
        raise GroupError("malformed", "group evidence is malformed") from None
