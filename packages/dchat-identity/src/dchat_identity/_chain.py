"""Verifying how identity documents follow each other.

Theory of operation: a verifier pins one document of an identity (trust on
first use, e.g. from a contact card exchange, or version 1) and then accepts
only documents that extend its current head by exactly one version:

* same subject id; ``seq`` one above the head; ``prev`` equal to the head's
  hash; issued no earlier than the head;
* signed by the head's identity key, or by a new key together with a valid
  recovery certificate (the only way the key changes, see :mod:`._recovery`);
* revocations are never withdrawn and a revoked device never returns.

Anything else is rejected with a typed error: a document already accepted is
*replayed*; a different one for an accepted version whose ``prev`` matches
what the verifier accepted is a *fork* (the key signed two histories); an old
or otherwise non-increasing version is *stale*; a wrong prev, subject, a gap
or an unauthorised key change *breaks the chain*. A verifier never moves back,
so an attacker who replays an old document cannot resurrect a revoked device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import BadSignatureError, VerifyKey

from ._document import IdentityDocument
from ._errors import (
    BrokenChainError,
    ForgedRecordError,
    ForkedDocumentError,
    IdentityArgumentError,
    MalformedRecordError,
    ReplayedDocumentError,
    RevokedDeviceError,
    StaleDocumentError,
)
from ._records import check_version, decode_fields, strict
from ._recovery_process import verify_rotation

if TYPE_CHECKING:
    from ._devices import DeviceCertificate

__all__ = ("DocumentChain", "verify_update")

MAX_VERSIONS = 4096
_LIMITS = DecodeLimits(max_size=64 << 20, max_depth=3, max_items=MAX_VERSIONS + 8)


def verify_update(
    prev: IdentityDocument, new: IdentityDocument, *, now: float | None = None
) -> None:
    """Check that ``new`` is a valid next version of ``prev``.

    Both documents must already be decoded (which checked their own signatures).

    Raises:
        ReplayedDocumentError: ``new`` is ``prev`` again.
        StaleDocumentError: ``new`` does not increase the version or the issue time.
        BrokenChainError: another subject, a gap, a wrong prev hash, an unauthorised
            key change, or a revocation withdrawn.
        ForgedRecordError: the recovery certificate behind a key change is forged.
        ExpiredError: ``now`` is given and ``new`` has expired.
    """
    if new.subject != prev.subject:
        raise BrokenChainError("the document belongs to another identity")
    if new.seq <= prev.seq:
        if new.document_hash == prev.document_hash:
            raise ReplayedDocumentError("this document version was already accepted")
        raise StaleDocumentError(f"version {new.seq} is not above {prev.seq}")
    if new.seq != prev.seq + 1:
        raise BrokenChainError(f"version gap: {prev.seq} -> {new.seq}")
    if new.prev != prev.document_hash:
        raise BrokenChainError("the document does not chain to the previous version")
    if new.issued_ms < prev.issued_ms:
        raise StaleDocumentError("the document is older than the previous version")
    _check_key_change(prev, new)
    _check_revocations(prev, new)
    if now is not None:
        new.check_not_expired(now)


def _check_key_change(prev: IdentityDocument, new: IdentityDocument) -> None:
    if new.identity_key == prev.identity_key:
        if new.recovery is not None:
            raise BrokenChainError("a recovery certificate without a key change")
        return
    if new.recovery is None:
        # Someone else's key signed a version of this identity: a forgery.
        raise ForgedRecordError
    verify_rotation(prev, new)


def _check_revocations(prev: IdentityDocument, new: IdentityDocument) -> None:
    kept = {entry.device_key for entry in new.revoked}
    if any(entry.device_key not in kept for entry in prev.revoked):
        raise BrokenChainError("a device revocation was withdrawn")


@dataclass(frozen=True, slots=True)
class _Accepted:
    doc: IdentityDocument
    hash: bytes


class DocumentChain:
    """A verifier's view of one identity: the pinned document and every later version.

    Args:
        anchor: The first document this verifier trusts (pinned, not checked
            against anything earlier).
        now: If given, an expired anchor is refused.
    """

    __slots__ = ("_known", "_versions")

    def __init__(self, anchor: IdentityDocument, *, now: float | None = None) -> None:
        if now is not None:
            anchor.check_not_expired(now)
        self._versions = [_Accepted(anchor, anchor.document_hash)]
        self._known = anchor.embedded_records()

    @property
    def head(self) -> IdentityDocument:
        """The newest accepted version."""
        return self._versions[-1].doc

    @property
    def subject(self) -> IdentityId:
        """The identity this chain follows."""
        return self.head.subject

    @property
    def identity_key(self) -> VerifyKey:
        """The identity key in force (after any recovery)."""
        return self.head.identity_key

    def update(self, data: bytes | IdentityDocument, *, now: float | None = None) -> None:
        """Accept the next version (bytes are decoded and their signatures checked).

        Raises:
            MalformedRecordError, ForgedRecordError, DocumentChainError, ExpiredError:
                as :meth:`IdentityDocument.from_bytes` and :func:`verify_update`.
        """
        if isinstance(data, IdentityDocument):
            data = data.to_bytes()
        doc = IdentityDocument._decode(data)
        # The cache holds records verified under the head's key; a document that
        # names another key (a rotation) must have every record checked again.
        same_key = doc.identity_key == self.identity_key
        doc.verify_signatures(self._known if same_key else frozenset())
        head = self._versions[-1]
        if doc.subject != head.doc.subject:
            raise BrokenChainError("the document belongs to another identity")
        if doc.seq <= head.doc.seq:
            self._reject_old(doc)
        verify_update(head.doc, doc, now=now)
        if len(self._versions) >= MAX_VERSIONS:
            raise IdentityArgumentError("this chain holds the maximum number of versions")
        if doc.identity_key != head.doc.identity_key:
            self._known = frozenset()
        self._known |= doc.embedded_records()
        self._versions.append(_Accepted(doc, doc.document_hash))

    def _reject_old(self, doc: IdentityDocument) -> None:
        first = self._versions[0].doc.seq
        if doc.seq < first:
            raise StaleDocumentError("the document predates the pinned version")
        accepted = self._versions[doc.seq - first]
        if accepted.hash == doc.document_hash:
            raise ReplayedDocumentError("this document version was already accepted")
        if doc.identity_key != accepted.doc.identity_key:
            raise ForgedRecordError
        parent = self._versions[doc.seq - first - 1].hash if doc.seq > first else None
        if doc.prev == parent or doc.seq == first:
            raise ForkedDocumentError(f"a second, different document for version {doc.seq}")
        raise StaleDocumentError(f"version {doc.seq} is not above {self.head.seq}")

    def version(self, seq: int | None = None) -> IdentityDocument:
        """The accepted document of version ``seq`` (the head if ``None``)."""
        if seq is None:
            return self.head
        first = self._versions[0].doc.seq
        if isinstance(seq, bool) or not isinstance(seq, int) or not first <= seq <= self.head.seq:
            raise IdentityArgumentError(f"no accepted version {seq}")
        return self._versions[seq - first].doc

    def revoked_at(self, device_key: VerifyKey) -> int | None:
        """The version from which ``device_key`` is revoked, as far as this chain knows."""
        seqs = [e.seq for e in self.head.revoked if e.device_key == device_key]
        return min(seqs) if seqs else None

    def check_device(
        self, device_key: VerifyKey, *, version: int | None = None
    ) -> DeviceCertificate:
        """The certificate of an active device at ``version`` (default: the head).

        Raises:
            RevokedDeviceError: not certified at that version, or revoked at or before it.
        """
        doc = self.version(version)
        revoked = self.revoked_at(device_key)
        cert = doc.device(device_key)
        if cert is None or (revoked is not None and revoked <= doc.seq):
            raise RevokedDeviceError("the device does not speak for this identity")
        return cert

    def verify_device_signature(
        self,
        device_key: VerifyKey,
        message: bytes,
        signature: bytes,
        *,
        domain: bytes,
        version: int | None = None,
    ) -> None:
        """Check a device's signature over ``domain || message`` at ``version``.

        Raises:
            RevokedDeviceError: the device is not active at that version.
            ForgedRecordError: the signature does not verify.
        """
        self.check_device(device_key, version=version)
        try:
            device_key.verify(signature, domain + message)
        except BadSignatureError:
            raise ForgedRecordError from None

    # -- persistence ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Every accepted version, for storage; :meth:`from_bytes` re-verifies them."""
        return canonical_encode({"v": 1, "docs": [a.doc.to_bytes() for a in self._versions]})

    @classmethod
    def from_bytes(cls, data: bytes) -> DocumentChain:
        """Rebuild a chain, re-checking every signature and link.

        Raises:
            MalformedRecordError, ForgedRecordError, DocumentChainError.
        """
        fields = decode_fields(data, "document chain", frozenset({"v", "docs"}), _LIMITS)
        with strict("document chain"):
            check_version(fields, "document chain")
            docs = fields.get_list("docs", max_len=MAX_VERSIONS)
        if not docs or not all(isinstance(raw, bytes) for raw in docs):
            raise MalformedRecordError("malformed document chain: bad list")
        chain = cls(IdentityDocument.from_bytes(docs[0]))
        for raw in docs[1:]:
            chain.update(raw)
        return chain
