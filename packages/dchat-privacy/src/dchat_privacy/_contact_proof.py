"""Contact proofs: "I am one of the recipient's contacts", without saying which.

Credential. Each contact holds a :class:`ContactSecret` ``x`` made for one
recipient (never reused across recipients) and gives the recipient its
:class:`ContactKey` ``P = x * B`` over their end-to-end session. The recipient's
:class:`ContactRing` is the sorted set of its contacts' keys, optionally padded
with decoys (hash-to-group elements nobody knows a discrete log of) up to a size
class, so the ring's length does not give the number of contacts.

Proof. For a :class:`ContactContext` chosen by the verifier (mailbox, epoch and
a fresh nonce), the sender proves with a CDS OR-proof that it knows the secret
of one key of the ring. In linkable mode it also publishes a tag
``T = x * H(mailbox, epoch)`` and proves, in the same OR, equal discrete logs
(Chaum-Pedersen) for the branch it holds: the verifier then sees the same tag
whenever the same contact writes to that mailbox within that epoch (to rate
limit or refuse a second use) and unrelated tags in other epochs.

Wire format: canonical CBOR, see docs/protocol.md ("Zero-knowledge contact proofs").
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._ristretto import Element, Scalar
from ._sigma import OrProof, prove_or, verify_or
from ._transcript import Transcript
from ._zk_errors import InvalidProofError, ZkDecodeError, ZkInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = (
    "MAX_RING_SIZE",
    "RING_SIZE_CLASSES",
    "ContactContext",
    "ContactKey",
    "ContactProof",
    "ContactRing",
    "ContactSecret",
    "prove_contact",
    "ring_statement",
    "verify_contact",
)

MAX_RING_SIZE: Final = 1024
RING_SIZE_CLASSES: Final = (8, 64, 256, 1024)
_PROTOCOL: Final = b"dchat-contact-proof-v1"
_TAG_DOMAIN: Final = b"dchat-contact-tag-v1"
_RING_DOMAIN: Final = b"dchat-contact-ring-v1"
_VERSION: Final = 1
_E: Final = Element.SIZE


class ContactKey:
    """A contact's public credential ``x * B`` (32 bytes, never the identity)."""

    SIZE: Final = _E
    __slots__ = ("element",)

    def __init__(self, element: Element) -> None:
        if element.is_identity():
            raise ZkDecodeError("a contact key is never the identity element")
        self.element = element

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactKey:
        """Raises ZkDecodeError unless ``data`` is a valid non-identity element."""
        return cls(Element.from_bytes(data))

    def to_bytes(self) -> bytes:
        return self.element.to_bytes()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContactKey) and self.element == other.element

    def __hash__(self) -> int:
        return hash(self.element)

    def __repr__(self) -> str:
        return f"ContactKey({self.to_bytes().hex()})"


class ContactSecret:
    """A contact's secret credential: a non-zero scalar, made for one recipient."""

    SIZE: Final = Scalar.SIZE
    __slots__ = ("_x",)

    def __init__(self, scalar: Scalar) -> None:
        if scalar.is_zero():
            raise ZkInputError("a contact secret is never zero")
        self._x = scalar

    @classmethod
    def generate(cls, rng: Callable[[int], bytes] = os.urandom) -> ContactSecret:
        while True:
            scalar = Scalar.random(rng)
            if not scalar.is_zero():
                return cls(scalar)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactSecret:
        """Raises ZkDecodeError (not canonical) or ZkInputError (zero)."""
        return cls(Scalar.from_bytes(data))

    def to_bytes(self) -> bytes:
        return self._x.to_bytes()

    @property
    def scalar(self) -> Scalar:
        return self._x

    @property
    def public_key(self) -> ContactKey:
        return ContactKey(Element.base_mul(self._x))

    def __repr__(self) -> str:
        return "ContactSecret(...)"


class ContactRing:
    """The recipient's contact keys, sorted and distinct: the OR-proof's branches."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[ContactKey]) -> None:
        ordered = tuple(sorted(keys, key=lambda k: k.to_bytes()))
        if not 1 <= len(ordered) <= MAX_RING_SIZE:
            raise ZkInputError("a ring holds 1 to 1024 keys")
        if len(set(ordered)) != len(ordered):
            raise ZkInputError("a ring holds each key once")
        self.keys: tuple[ContactKey, ...] = ordered

    @classmethod
    def padded(
        cls,
        keys: Iterable[ContactKey],
        *,
        size: int | None = None,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> ContactRing:
        """A ring of ``keys`` plus decoys, to ``size`` or the next of RING_SIZE_CLASSES."""
        real = set(keys)
        fits = (c for c in RING_SIZE_CLASSES if c >= len(real))
        target = size if size is not None else next(fits, 0)
        if not len(real) <= target <= MAX_RING_SIZE:
            raise ZkInputError("padding size out of range")
        while len(real) < target:
            real.add(ContactKey(Element.from_uniform_bytes(rng(64))))
        return cls(real)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactRing:
        """Decode concatenated keys in strictly increasing order (the canonical form).

        Raises:
            ZkDecodeError: bad length, an invalid key or not strictly increasing.
        """
        if not isinstance(data, bytes) or not 0 < len(data) <= _E * MAX_RING_SIZE or len(data) % _E:
            raise ZkDecodeError("a ring is 1 to 1024 keys of 32 bytes")
        chunks = [data[i : i + _E] for i in range(0, len(data), _E)]
        if any(a >= b for a, b in itertools.pairwise(chunks)):
            raise ZkDecodeError("ring keys are not strictly increasing")
        return cls(ContactKey.from_bytes(c) for c in chunks)

    def to_bytes(self) -> bytes:
        return b"".join(k.to_bytes() for k in self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[ContactKey]:
        return iter(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.keys


def ring_statement(mailbox: bytes, ring: bytes) -> bytes:
    """What a mailbox's owner signs over the ring it registers (protocol section 41).

    ``"dchat-contact-ring-v1" || u8 len(mailbox) || mailbox || ring``: senders
    check the signature before proving, so a relay can serve only rings the
    owner made (not one tailored to single a sender out).
    """
    return _RING_DOMAIN + bytes((len(mailbox),)) + mailbox + ring


@dataclass(frozen=True, slots=True)
class ContactContext:
    """What a proof is bound to: the mailbox, the epoch and the verifier's fresh nonce."""

    mailbox: bytes
    epoch: int
    nonce: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.mailbox, bytes) or not 1 <= len(self.mailbox) <= 64:
            raise ZkInputError("mailbox is 1 to 64 bytes")
        epoch = self.epoch
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**64:
            raise ZkInputError("epoch is a u64")
        if not isinstance(self.nonce, bytes) or not 16 <= len(self.nonce) <= 64:
            raise ZkInputError("nonce is 16 to 64 bytes")

    def tag_base(self) -> Element:
        """``H(mailbox, epoch)``: the base of linkable tags, the same for every nonce."""
        digest = hashlib.sha512(
            _TAG_DOMAIN + bytes((len(self.mailbox),)) + self.mailbox + self.epoch.to_bytes(8, "big")
        ).digest()
        return Element.from_uniform_bytes(digest)

    def transcript(self, linkable: bool) -> Transcript:
        t = Transcript(_PROTOCOL)
        t.append(b"mailbox", self.mailbox)
        t.append_u64(b"epoch", self.epoch)
        t.append(b"nonce", self.nonce)
        t.append(b"mode", b"\x01" if linkable else b"\x00")
        return t


@dataclass(frozen=True, slots=True)
class ContactProof:
    """A contact proof: the OR-proof and, in linkable mode, the tag."""

    proof: OrProof
    tag: Element | None = None

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "v": _VERSION,
            "c": b"".join(c.to_bytes() for c in self.proof.challenges),
            "s": b"".join(s.to_bytes() for s in self.proof.responses),
        }
        if self.tag is not None:
            body["t"] = self.tag.to_bytes()
        return canonical_encode(body)

    @classmethod
    def from_bytes(cls, data: bytes, *, max_ring: int = MAX_RING_SIZE) -> ContactProof:
        """Decode a proof for a ring of at most ``max_ring`` keys.

        Raises:
            ZkDecodeError: anything but the canonical encoding of a well-formed proof.
        """
        limits = DecodeLimits(max_size=2 * Scalar.SIZE * max_ring + 64, max_depth=2, max_items=8)
        try:
            body = canonical_decode(data, limits)
        except DecodeError as exc:
            raise ZkDecodeError("contact proof is not canonical CBOR") from exc
        if not isinstance(body, dict) or set(body) - {"t"} != {"v", "c", "s"}:
            raise ZkDecodeError("contact proof has the wrong fields")
        challenges, responses, tag = body["c"], body["s"], body.get("t")
        if type(body["v"]) is not int or body["v"] != _VERSION:  # CBOR true is not 1
            raise ZkDecodeError("contact proof has an unknown version")
        if not isinstance(challenges, bytes) or not isinstance(responses, bytes):
            raise ZkDecodeError("contact proof fields are not bytes")
        n, rest = divmod(len(challenges), Scalar.SIZE)
        if rest or not 1 <= n <= max_ring:
            raise ZkDecodeError("contact proof has a bad branch count")
        proof = OrProof.from_bytes(challenges + responses, n)
        if tag is None:
            return cls(proof)
        if not isinstance(tag, bytes):
            raise ZkDecodeError("contact proof tag is not bytes")
        return cls(proof, ContactKey.from_bytes(tag).element)


def _statement(
    ring: ContactRing, context: ContactContext, tag: Element | None
) -> tuple[tuple[Element, ...], list[tuple[Element, ...]]]:
    if tag is None:
        return (Element.generator(),), [(k.element,) for k in ring.keys]
    return (Element.generator(), context.tag_base()), [(k.element, tag) for k in ring.keys]


def prove_contact(
    secret: ContactSecret,
    ring: ContactRing,
    context: ContactContext,
    *,
    linkable: bool = False,
    rng: Callable[[int], bytes] = os.urandom,
) -> ContactProof:
    """Prove that the holder of ``secret`` is one of ``ring``, bound to ``context``.

    Raises:
        ZkInputError: ``secret``'s key is not in ``ring``.
    """
    try:
        index = ring.keys.index(secret.public_key)
    except ValueError:
        raise ZkInputError("this contact secret's key is not in the ring") from None
    tag = context.tag_base() * secret.scalar if linkable else None
    bases, branches = _statement(ring, context, tag)
    transcript = context.transcript(linkable)
    return ContactProof(prove_or(transcript, bases, branches, index, secret.scalar, rng=rng), tag)


def verify_contact(
    proof: ContactProof, ring: ContactRing, context: ContactContext, *, linkable: bool = False
) -> bytes | None:
    """Check ``proof`` for ``ring`` and ``context``; in linkable mode return its 32-byte tag.

    The verifier must compare the nonce in ``context`` with the one it issued
    and keep each nonce for one use: that is what makes a proof non-replayable.

    Raises:
        InvalidProofError: the proof does not verify, including a mode mismatch.
    """
    if (proof.tag is not None) != linkable:
        raise InvalidProofError
    bases, branches = _statement(ring, context, proof.tag)
    verify_or(context.transcript(linkable), bases, branches, proof.proof)
    return None if proof.tag is None else proof.tag.to_bytes()
