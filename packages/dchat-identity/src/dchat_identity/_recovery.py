"""Guardian recovery: time-locked, vetoable, and verifiable by every contact.

Theory of operation (someone who lost every device, and their guardians)::

    recovering device                 guardians                    old key (if alive)
    RecoveryRequest.create  ------->  approve_recovery
      (new keys, old head, set,         signs GuardianApproval,
       not_before = now + lock)         re-seals its share to the new key
    RecoveryProcess.add_approval <--  (approval, ShareRelease)
                                                                    RecoveryVeto.sign
    RecoveryProcess.add_veto    <-----------------------------------  (before not_before)
    RecoveryProcess.complete(now >= not_before, no veto, >= M approvals and shares)
      -> combines the shares (SLIP-0039), derives the recovery key, checks it is
         the set's, signs the RecoveryCertificate and the next identity document
         with the NEW key; the old head's contacts accept it via verify_rotation.

The certificate shows contacts: the request (signed by the new key, naming the
old key, the exact old document and the guardian set), ``M`` guardian
signatures over it, and the recovery key's signature (which only someone who
combined ``M`` shares can make), completed no earlier than ``not_before``.
Vetoes reach the recovering device and the guardians; contacts do not see
them, which is why the time lock exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import DecryptionError, PublicKey, VerifyKey, open_sealed, seal

from ._errors import (
    ExpiredError,
    ForgedRecordError,
    IdentityArgumentError,
    InvalidShareError,
    MalformedRecordError,
)
from ._records import (
    check_version,
    decode_fields,
    record_hash,
    sign_fields,
    strict,
    to_ms,
    verify_fields,
)
from ._slip39 import MAX_SHARES

if TYPE_CHECKING:
    from ._document import IdentityDocument
    from ._guardians import GuardianSet, GuardianShare
    from ._identity import Identity

__all__ = (
    "GuardianApproval",
    "RecoveryRequest",
    "RecoveryVeto",
    "ShareRelease",
    "approve_recovery",
    "release_context",
    "veto_domain",
)

_REQ_DOMAIN = b"dchat-recovery-request-v1\x00"
_APPROVE_DOMAIN = b"dchat-recovery-approve-v1\x00"
_VETO_DOMAIN = b"dchat-recovery-veto-v1\x00"
_RELEASE_CONTEXT = b"dchat-recovery-share-v1\x00"
_LIMITS = DecodeLimits(max_size=48 * 1024, max_depth=3, max_items=128)
_REQ_FIELDS = frozenset(
    {"v", "id", "old", "okey", "nkey", "nenc", "gset", "created", "nb", "exp", "sig"}
)
DEFAULT_LOCK = 7 * 24 * 3600.0
DEFAULT_TTL = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class RecoveryRequest:
    """A request to move ``subject`` from ``old_key`` to ``new_key``, signed by the new key."""

    subject: IdentityId
    old_document: bytes
    old_key: VerifyKey
    new_key: VerifyKey
    new_encryption_key: PublicKey
    guardian_set: bytes
    created_ms: int
    not_before_ms: int
    expires_ms: int
    signature: bytes = field(default=b"", repr=False)

    @classmethod
    def create(
        cls,
        new_identity: Identity,
        old_head: IdentityDocument,
        guardian_set: GuardianSet,
        *,
        now: float,
        lock: float = DEFAULT_LOCK,
        ttl: float = DEFAULT_TTL,
    ) -> RecoveryRequest:
        """Ask to recover the identity whose last known version is ``old_head``."""
        if not 0 <= lock < ttl:
            raise IdentityArgumentError("need 0 <= lock < ttl")
        if guardian_set.set_hash != old_head.guardians or guardian_set.subject != old_head.subject:
            raise IdentityArgumentError("this guardian set is not the identity's")
        request = cls(
            old_head.subject,
            old_head.document_hash,
            old_head.identity_key,
            new_identity.signing_key.public_key,
            new_identity.encryption_key.public_key,
            guardian_set.set_hash,
            to_ms(now),
            to_ms(now + lock),
            to_ms(now + ttl),
        )
        sig = sign_fields(new_identity.signing_key, _REQ_DOMAIN, request._fields())
        return replace(request, signature=sig)

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": bytes(self.subject),
            "old": self.old_document,
            "okey": self.old_key.to_bytes(),
            "nkey": self.new_key.to_bytes(),
            "nenc": self.new_encryption_key.to_bytes(),
            "gset": self.guardian_set,
            "created": self.created_ms,
            "nb": self.not_before_ms,
            "exp": self.expires_ms,
        }

    @property
    def request_hash(self) -> bytes:
        """What approvals, vetoes and the certificate sign."""
        return record_hash(b"dchat-recov-req", self.to_bytes())

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        return canonical_encode({**self._fields(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryRequest:
        """Decode and check the new key's signature and the time fields."""
        fields = decode_fields(data, "recovery request", _REQ_FIELDS, _LIMITS)
        with strict("recovery request"):
            check_version(fields, "recovery request")
            request = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                fields.get_bytes("old", size=32),
                VerifyKey.from_bytes(fields.get_bytes("okey", size=32)),
                VerifyKey.from_bytes(fields.get_bytes("nkey", size=32)),
                PublicKey.from_bytes(fields.get_bytes("nenc", size=32)),
                fields.get_bytes("gset", size=32),
                fields.get_int("created"),
                fields.get_int("nb"),
                fields.get_int("exp"),
                fields.get_bytes("sig", size=64),
            )
        if not request.created_ms <= request.not_before_ms < request.expires_ms:
            raise MalformedRecordError("malformed recovery request: bad times")
        verify_fields(request.new_key, _REQ_DOMAIN, request._fields(), request.signature)
        return request


@dataclass(frozen=True, slots=True)
class GuardianApproval:
    """Guardian ``index``'s signature over a request."""

    request_hash: bytes
    index: int
    at_ms: int
    signature: bytes

    def _fields(self) -> dict[str, Any]:
        return {"v": 1, "req": self.request_hash, "i": self.index, "at": self.at_ms}

    def verify(self, gset: GuardianSet, request: RecoveryRequest) -> None:
        """Check it is a valid approval of ``request`` by a guardian of ``gset``.

        Raises:
            ForgedRecordError: another request, no such guardian, or a bad signature.
        """
        if self.request_hash != request.request_hash or not 0 <= self.index < len(gset.guardians):
            raise ForgedRecordError
        key = gset.guardians[self.index].identity_key
        verify_fields(key, _APPROVE_DOMAIN, self._fields(), self.signature)
        if not request.created_ms <= self.at_ms <= request.expires_ms:
            raise ForgedRecordError

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        return canonical_encode({**self._fields(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> GuardianApproval:
        """Strictly decode (verify with :meth:`verify`)."""
        allowed = frozenset({"v", "req", "i", "at", "sig"})
        fields = decode_fields(data, "guardian approval", allowed, _LIMITS)
        with strict("guardian approval"):
            check_version(fields, "guardian approval")
            return cls(
                fields.get_bytes("req", size=32),
                fields.get_int("i", hi=MAX_SHARES - 1),
                fields.get_int("at"),
                fields.get_bytes("sig", size=64),
            )


@dataclass(frozen=True, slots=True)
class ShareRelease:
    """A guardian's share, re-sealed to the request's new encryption key."""

    index: int
    sealed: bytes = field(repr=False)

    def check(self, new_identity: Identity, request: RecoveryRequest) -> None:
        """Check on arrival that the share opens with the request's new key.

        Whether the words are the right ones shows only when ``M`` shares are
        combined (:meth:`RecoveryProcess.complete`); this catches a box sealed to
        another key, for another request or position, or tampered with.

        Raises:
            InvalidShareError: the box does not open (opaque).
        """
        try:
            open_sealed(
                new_identity.encryption_key,
                self.sealed,
                context=release_context(request, self.index),
            ).decode("utf-8")
        except (DecryptionError, UnicodeDecodeError):
            raise InvalidShareError("a released share cannot be opened") from None

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode({"v": 1, "i": self.index, "box": self.sealed})

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareRelease:
        """Strictly decode."""
        fields = decode_fields(data, "share release", frozenset({"v", "i", "box"}), _LIMITS)
        with strict("share release"):
            check_version(fields, "share release")
            return cls(
                fields.get_int("i", hi=MAX_SHARES - 1), fields.get_bytes("box", max_size=2048)
            )


def release_context(request: RecoveryRequest, index: int) -> bytes:
    """The sealed-box context of guardian ``index``'s share released for ``request``."""
    return _RELEASE_CONTEXT + request.request_hash + bytes([index])


def veto_domain() -> bytes:
    """The signature domain of :class:`RecoveryVeto`."""
    return _VETO_DOMAIN


def approve_recovery(
    guardian: Identity, share: GuardianShare, request: RecoveryRequest, *, now: float
) -> tuple[GuardianApproval, ShareRelease]:
    """A guardian's approval of ``request`` and their share for the new key.

    The guardian must have checked out of band (a call, a meeting) that the
    request really comes from the person; this function checks the rest.

    Raises:
        IdentityArgumentError: the share is for another identity or guardian set.
        ExpiredError: the request has expired.
        InvalidShareError: the share cannot be opened with ``guardian``'s key.
    """
    gset = share.guardian_set
    if request.subject != gset.subject or request.guardian_set != gset.set_hash:
        raise IdentityArgumentError("this share does not belong to the request's identity")
    if gset.guardians[share.index].identity_key != guardian.signing_key.public_key:
        raise IdentityArgumentError("this share belongs to another guardian")
    if to_ms(now) >= request.expires_ms:
        raise ExpiredError("the recovery request has expired")
    words = share.open(guardian)
    approval = GuardianApproval(request.request_hash, share.index, to_ms(now), b"")
    signature = sign_fields(guardian.signing_key, _APPROVE_DOMAIN, approval._fields())
    sealed = seal(
        request.new_encryption_key,
        words.encode(),
        context=release_context(request, share.index),
    )
    return replace(approval, signature=signature), ShareRelease(share.index, sealed)


@dataclass(frozen=True, slots=True)
class RecoveryVeto:
    """The current identity key's refusal of a recovery request."""

    request_hash: bytes
    at_ms: int
    signature: bytes

    @classmethod
    def sign(cls, identity: Identity, request: RecoveryRequest, *, now: float) -> RecoveryVeto:
        """Veto ``request`` with the identity key it wants to replace."""
        veto = cls(request.request_hash, to_ms(now), b"")
        return replace(
            veto, signature=sign_fields(identity.signing_key, _VETO_DOMAIN, veto._fields())
        )

    def _fields(self) -> dict[str, Any]:
        return {"v": 1, "req": self.request_hash, "at": self.at_ms}

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        return canonical_encode({**self._fields(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> RecoveryVeto:
        """Strictly decode."""
        fields = decode_fields(data, "recovery veto", frozenset({"v", "req", "at", "sig"}), _LIMITS)
        with strict("recovery veto"):
            check_version(fields, "recovery veto")
            return cls(
                fields.get_bytes("req", size=32),
                fields.get_int("at"),
                fields.get_bytes("sig", size=64),
            )
