"""The recovering side of guardian recovery, and the certificate contacts check.

See :mod:`._recovery` for the flow. :class:`RecoveryProcess` is a plain state
object (time is a parameter) the recovering node feeds approvals, share
releases and vetoes; :func:`verify_rotation` is what every verifier runs on a
document whose identity key changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeLimits, canonical_encode
from dchat_crypto import DecryptionError, open_sealed

from ._devices import DeviceRevocation
from ._document import NO_HASH, IdentityDocument
from ._errors import (
    ExpiredError,
    ForgedRecordError,
    IdentityArgumentError,
    InvalidShareError,
    MalformedRecordError,
    NotEnoughApprovalsError,
    TimeLockedError,
    VetoedError,
)
from ._guardians import GuardianSet, recovery_key
from ._records import check_version, decode_fields, sign_fields, strict, to_ms, verify_fields
from ._recovery import (
    GuardianApproval,
    RecoveryRequest,
    RecoveryVeto,
    ShareRelease,
    release_context,
    veto_domain,
)
from ._slip39 import MAX_SHARES, combine_shares

if TYPE_CHECKING:
    from ._devices import DeviceCertificate
    from ._identity import Identity

__all__ = ("RecoveryCertificate", "RecoveryProcess", "verify_rotation")

_CERT_DOMAIN = b"dchat-recovery-cert-v1\x00"
_CERT_FIELDS = frozenset({"v", "req", "gset", "approvals", "done", "rsig"})
_PROC_FIELDS = frozenset({"v", "req", "gset", "old", "approvals", "veto"})
_LIMITS = DecodeLimits(max_size=160 * 1024, max_depth=4, max_items=256)


@dataclass(frozen=True, slots=True)
class RecoveryCertificate:
    """Proof, for contacts, that guardians moved an identity to a new key."""

    request: RecoveryRequest
    guardian_set: GuardianSet
    approvals: tuple[GuardianApproval, ...]
    done_ms: int
    recovery_signature: bytes = field(repr=False)

    def _signed_fields(self) -> dict[str, Any]:
        return {"v": 1, "req": self.request.request_hash, "done": self.done_ms}

    def verify(self, old_head: IdentityDocument) -> None:
        """Check the certificate against the last version signed by the old key.

        Raises:
            ForgedRecordError: any check fails (opaque): wrong identity, document,
                key or guardian set, fewer than ``M`` valid distinct approvals, a
                bad recovery signature, or completed outside the time lock window.
        """
        request, gset = self.request, self.guardian_set
        if (
            request.subject != old_head.subject
            or request.old_document != old_head.document_hash
            or request.old_key != old_head.identity_key
            or gset.set_hash != old_head.guardians
            or request.guardian_set != gset.set_hash
            or not request.not_before_ms <= self.done_ms < request.expires_ms
        ):
            raise ForgedRecordError
        indices = {approval.index for approval in self.approvals}
        if len(indices) != len(self.approvals) or len(indices) < gset.threshold:
            raise ForgedRecordError
        for approval in self.approvals:
            approval.verify(gset, request)
        verify_fields(
            gset.recovery_key, _CERT_DOMAIN, self._signed_fields(), self.recovery_signature
        )

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(
            {
                "v": 1,
                "req": self.request.to_bytes(),
                "gset": self.guardian_set.to_bytes(),
                "approvals": [a.to_bytes() for a in self.approvals],
                "done": self.done_ms,
                "rsig": self.recovery_signature,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryCertificate:
        """Strictly decode (the request's own signature is checked; see :meth:`verify`)."""
        fields = decode_fields(data, "recovery certificate", _CERT_FIELDS, _LIMITS)
        with strict("recovery certificate"):
            check_version(fields, "recovery certificate")
            approvals = fields.get_list("approvals", max_len=MAX_SHARES)
            if not all(isinstance(raw, bytes) for raw in approvals):
                raise MalformedRecordError("malformed recovery certificate: bad approvals")
            return cls(
                RecoveryRequest.from_bytes(fields.get_bytes("req", max_size=4096)),
                GuardianSet.from_bytes(fields.get_bytes("gset", max_size=8192)),
                tuple(GuardianApproval.from_bytes(raw) for raw in approvals),
                fields.get_int("done"),
                fields.get_bytes("rsig", size=64),
            )


def verify_rotation(prev: IdentityDocument, new: IdentityDocument) -> None:
    """Check that ``new`` may carry a new identity key because of its recovery certificate.

    Raises:
        MalformedRecordError: the certificate is not well formed.
        ForgedRecordError: the certificate does not authorise exactly this rotation.
    """
    if new.recovery is None:
        raise ForgedRecordError
    cert = RecoveryCertificate.from_bytes(new.recovery)
    cert.verify(prev)
    if (
        cert.request.new_key != new.identity_key
        or cert.request.new_encryption_key != new.encryption_key
        or new.issued_ms < cert.done_ms
    ):
        raise ForgedRecordError


class RecoveryProcess:
    """The recovering device's state for one request.

    Args:
        request: The request the guardians are asked to approve.
        guardian_set: The set named by the old document (handed over by a guardian).
        old_head: The newest version of the identity the recovering person knows.
    """

    __slots__ = ("_approvals", "_gset", "_old", "_request", "_veto")

    def __init__(
        self, request: RecoveryRequest, guardian_set: GuardianSet, old_head: IdentityDocument
    ) -> None:
        if (
            guardian_set.set_hash != request.guardian_set
            or old_head.document_hash != request.old_document
        ):
            raise IdentityArgumentError("the guardian set or document is not the request's")
        self._request, self._gset, self._old = request, guardian_set, old_head
        self._approvals: dict[int, tuple[GuardianApproval, ShareRelease]] = {}
        self._veto: RecoveryVeto | None = None

    @property
    def request(self) -> RecoveryRequest:
        """The request being processed."""
        return self._request

    @property
    def approvals(self) -> int:
        """How many distinct guardians have validly approved."""
        return len(self._approvals)

    @property
    def vetoed(self) -> bool:
        """Whether the current key vetoed the request."""
        return self._veto is not None

    def add_approval(
        self, approval: GuardianApproval, release: ShareRelease, *, now: float
    ) -> None:
        """Record a guardian's approval (and their released share).

        A second approval from the same guardian is ignored.

        Raises:
            ForgedRecordError: the approval is not a guardian's valid signature on
                this request, or the release is for another guardian.
            VetoedError, ExpiredError: the request was vetoed or has expired.
        """
        approval.verify(self._gset, self._request)
        if release.index != approval.index:
            raise ForgedRecordError
        self._check_open(now)
        self._approvals.setdefault(approval.index, (approval, release))

    def add_veto(self, veto: RecoveryVeto, *, now: float) -> None:
        """Record the current key's veto, which must come before the lock ends.

        Raises:
            ForgedRecordError: not signed by the key the request would replace.
            TimeLockedError: the time lock has already ended.
        """
        if veto.request_hash != self._request.request_hash:
            raise ForgedRecordError
        verify_fields(self._request.old_key, veto_domain(), veto._fields(), veto.signature)
        deadline = self._request.not_before_ms
        if veto.at_ms >= deadline or to_ms(now) >= deadline:
            raise TimeLockedError("the time lock has ended; a veto is too late")
        self._veto = veto

    def _check_open(self, now: float) -> None:
        if self._veto is not None:
            raise VetoedError("the identity's current key vetoed this recovery")
        if to_ms(now) >= self._request.expires_ms:
            raise ExpiredError("the recovery request has expired")

    def complete(
        self,
        new_identity: Identity,
        *,
        now: float,
        devices: tuple[DeviceCertificate, ...] = (),
    ) -> tuple[RecoveryCertificate, IdentityDocument]:
        """Finish the recovery: the certificate and the next document under the new key.

        Raises:
            VetoedError, ExpiredError: vetoed, or the request expired.
            TimeLockedError: before ``not_before``.
            NotEnoughApprovalsError: fewer than ``M`` approvals.
            InvalidShareError: the released shares do not give the set's recovery key.
            IdentityArgumentError: ``new_identity`` is not the request's new key.
        """
        self._check_open(now)
        if to_ms(now) < self._request.not_before_ms:
            raise TimeLockedError("the recovery is still time-locked")
        if len(self._approvals) < self._gset.threshold:
            raise NotEnoughApprovalsError(
                f"{len(self._approvals)} of {self._gset.threshold} guardian approvals"
            )
        if new_identity.signing_key.public_key != self._request.new_key:
            raise IdentityArgumentError("this is not the identity the request names")
        secret = combine_shares(self._open_releases(new_identity))
        rkey = recovery_key(secret)
        if rkey.public_key != self._gset.recovery_key:
            raise InvalidShareError("the shares do not give this guardian set's recovery key")
        cert = RecoveryCertificate(
            self._request,
            self._gset,
            tuple(a for a, _ in sorted(self._approvals.values(), key=lambda p: p[0].index)),
            to_ms(now),
            b"",
        )
        cert = replace(
            cert, recovery_signature=sign_fields(rkey, _CERT_DOMAIN, cert._signed_fields())
        )
        return cert, self._rotated_document(new_identity, cert, now, devices)

    def _open_releases(self, new_identity: Identity) -> list[str]:
        words = []
        chosen = sorted(self._approvals.items())[: self._gset.threshold]
        for _, (_, release) in chosen:
            try:
                raw = open_sealed(
                    new_identity.encryption_key,
                    release.sealed,
                    context=release_context(self._request, release.index),
                )
                words.append(raw.decode("utf-8"))
            except (DecryptionError, UnicodeDecodeError):
                raise InvalidShareError("a released share cannot be opened") from None
        return words

    def _rotated_document(
        self,
        new_identity: Identity,
        cert: RecoveryCertificate,
        now: float,
        devices: tuple[DeviceCertificate, ...],
    ) -> IdentityDocument:
        old, key, seq = self._old, new_identity.signing_key, self._old.seq + 1
        # Every old device is lost (or in a thief's hands): revoke it from this
        # version on, and re-sign older revocations under the new key.
        keep = [
            DeviceRevocation.issue(key, old.subject, e.device_key, seq=e.seq, now=now)
            for e in old.revoked
        ]
        lost = [
            DeviceRevocation.issue(key, old.subject, c.device_key, seq=seq, now=now)
            for c in old.devices
        ]
        return old.successor(
            key,
            now=now,
            encryption_key=new_identity.encryption_key.public_key,
            devices=devices,
            revoked=tuple(keep + lost),
            prekeys=(),
            guardians=NO_HASH,
            recovery=cert.to_bytes(),
        )

    # -- persistence ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole state, for storage (shares stay sealed to the new key)."""
        fields: dict[str, Any] = {
            "v": 1,
            "req": self._request.to_bytes(),
            "gset": self._gset.to_bytes(),
            "old": self._old.to_bytes(),
            "approvals": [[a.to_bytes(), r.to_bytes()] for a, r in self._approvals.values()],
        }
        if self._veto is not None:
            fields["veto"] = self._veto.to_bytes()
        return canonical_encode(fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryProcess:
        """Rebuild a process, re-verifying every approval and the veto."""
        fields = decode_fields(data, "recovery process", _PROC_FIELDS, _LIMITS)
        with strict("recovery process"):
            check_version(fields, "recovery process")
            process = cls(
                RecoveryRequest.from_bytes(fields.get_bytes("req", max_size=4096)),
                GuardianSet.from_bytes(fields.get_bytes("gset", max_size=8192)),
                IdentityDocument.from_bytes(fields.get_bytes("old", max_size=96 * 1024)),
            )
            pairs = fields.get_list("approvals", max_len=MAX_SHARES)
            veto = RecoveryVeto.from_bytes(fields.get_bytes("veto")) if fields.has("veto") else None
        for pair in pairs:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(x, bytes) for x in pair)
            ):
                raise MalformedRecordError("malformed recovery process: bad approval")
            approval = GuardianApproval.from_bytes(pair[0])
            approval.verify(process._gset, process._request)
            release = ShareRelease.from_bytes(pair[1])
            if release.index != approval.index:
                raise ForgedRecordError
            process._approvals.setdefault(approval.index, (approval, release))
        if veto is not None:
            if veto.request_hash != process._request.request_hash:
                raise ForgedRecordError
            verify_fields(process._request.old_key, veto_domain(), veto._fields(), veto.signature)
            process._veto = veto
        return process


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes)
