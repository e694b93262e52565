"""Control payloads of guardian recovery, and what an agent asks its shell to send.

Each payload is a canonical CBOR map with ``"v": 1``, carried by a sealed
control message (``Content.control``) of its kind; ``docs/protocol.md`` lists
them byte by byte. Decoding is strict and total: any malformed input raises a
:class:`dchat_core.DecodeError` or a :mod:`dchat_identity` error, never
anything else, and never returns a partial object.

The guardian and recovery agents do no I/O: they return :class:`Outgoing`
values (a card, a kind, a payload) that the node sends as control messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    canonical_decode,
    canonical_encode,
)

from ._card import ContactCard
from ._document import IdentityDocument
from ._guardians import GuardianSet, GuardianShare
from ._recovery import GuardianApproval, RecoveryRequest, RecoveryVeto, ShareRelease

__all__ = (
    "KIND_ALERT",
    "KIND_APPROVAL",
    "KIND_INFO",
    "KIND_LOOKUP",
    "KIND_REQUEST",
    "KIND_SHARE",
    "KIND_VETO",
    "ApprovalMessage",
    "InfoMessage",
    "LookupMessage",
    "Outgoing",
    "RequestMessage",
    "ShareMessage",
    "VetoMessage",
)

KIND_SHARE: Final = "guardian.share"
KIND_LOOKUP: Final = "guardian.lookup"
KIND_INFO: Final = "guardian.info"
KIND_REQUEST: Final = "guardian.request"
KIND_ALERT: Final = "guardian.alert"
KIND_APPROVAL: Final = "guardian.approval"
KIND_VETO: Final = "guardian.veto"

_LIMITS: Final = DecodeLimits(max_size=48_000, max_depth=2, max_items=16)
_CARD_MAX: Final = 2048


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A control payload an agent wants sent: ``data`` of ``kind`` to ``card``."""

    card: ContactCard
    kind: str
    data: bytes


def _fields(data: bytes, what: str, names: set[str]) -> Fields:
    fields = Fields(canonical_decode(data, _LIMITS), what, frozenset({"v", *names}))
    if fields.get_int("v") != 1:
        raise DecodeError(f"{what}: unsupported version")
    return fields


def _encode(**fields: object) -> bytes:
    return canonical_encode({"v": 1, **fields})


@dataclass(frozen=True, slots=True)
class ShareMessage:
    """``guardian.share``: the owner gives a guardian its sealed share and its card."""

    share: GuardianShare
    owner: ContactCard

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(share=self.share.to_bytes(), card=self.owner.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareMessage:
        """Strictly decode."""
        f = _fields(data, "guardian share message", {"share", "card"})
        return cls(
            GuardianShare.from_bytes(f.get_bytes("share", max_size=16_384)),
            ContactCard.from_bytes(f.get_bytes("card", max_size=_CARD_MAX)),
        )


@dataclass(frozen=True, slots=True)
class LookupMessage:
    """``guardian.lookup``: someone recovering ``subject`` asks for its set and document."""

    subject: IdentityId
    requester: ContactCard

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(id=bytes(self.subject), card=self.requester.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> LookupMessage:
        """Strictly decode."""
        f = _fields(data, "guardian lookup", {"id", "card"})
        return cls(
            IdentityId(f.get_bytes("id", size=32)),
            ContactCard.from_bytes(f.get_bytes("card", max_size=_CARD_MAX)),
        )


@dataclass(frozen=True, slots=True)
class InfoMessage:
    """``guardian.info``: a guardian's answer, the guardian set and the latest document."""

    guardian_set: GuardianSet
    document: IdentityDocument

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(set=self.guardian_set.to_bytes(), doc=self.document.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> InfoMessage:
        """Strictly decode (the document's own signatures are checked)."""
        f = _fields(data, "guardian info", {"set", "doc"})
        return cls(
            GuardianSet.from_bytes(f.get_bytes("set", max_size=8192)),
            IdentityDocument.from_bytes(f.get_bytes("doc", max_size=40_000)),
        )


@dataclass(frozen=True, slots=True)
class RequestMessage:
    """``guardian.request`` / ``guardian.alert``: a recovery request and its sender's card.

    The card is the new key's (where approvals and vetoes go); it must name
    the request's new keys.
    """

    request: RecoveryRequest
    requester: ContactCard

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(req=self.request.to_bytes(), card=self.requester.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestMessage:
        """Strictly decode; the request's signature and the card's keys are checked."""
        f = _fields(data, "recovery request message", {"req", "card"})
        request = RecoveryRequest.from_bytes(f.get_bytes("req", max_size=4096))
        card = ContactCard.from_bytes(f.get_bytes("card", max_size=_CARD_MAX))
        if (
            card.identity_key != request.new_key
            or card.encryption_key != request.new_encryption_key
        ):
            raise DecodeError("recovery request message: the card is not the new key's")
        return cls(request, card)


@dataclass(frozen=True, slots=True)
class ApprovalMessage:
    """``guardian.approval``: a guardian's signed approval and its re-sealed share."""

    approval: GuardianApproval
    release: ShareRelease

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(approval=self.approval.to_bytes(), release=self.release.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ApprovalMessage:
        """Strictly decode (verify the approval against the request separately)."""
        f = _fields(data, "guardian approval message", {"approval", "release"})
        return cls(
            GuardianApproval.from_bytes(f.get_bytes("approval", max_size=1024)),
            ShareRelease.from_bytes(f.get_bytes("release", max_size=4096)),
        )


@dataclass(frozen=True, slots=True)
class VetoMessage:
    """``guardian.veto``: the current key refuses a request."""

    veto: RecoveryVeto

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return _encode(veto=self.veto.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> VetoMessage:
        """Strictly decode (verify against the request separately)."""
        f = _fields(data, "recovery veto message", {"veto"})
        return cls(RecoveryVeto.from_bytes(f.get_bytes("veto", max_size=1024)))
