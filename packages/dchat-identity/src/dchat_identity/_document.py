"""Identity documents: the signed, versioned, hash-chained state of an identity.

Each version lists what peers need to know about the identity and is signed
by the identity key it names::

    {"v": 1, "id": subject IdentityId, "seq": version (1, 2, ...),
     "prev": document_hash(previous version) or 32 zero bytes at seq 1,
     "key": identity key, "enc": encryption key, "issued": ms,
     "devices": [DeviceCertificate], "revoked": [DeviceRevocation],
     "prekeys": [32-byte prekey pointers], "profile": 32-byte profile commitment,
     "guardians": 32-byte guardian set hash, ["exp": ms], ["recovery": certificate],
     "sig": Ed25519(key, "dchat-iddoc-v1" 0x00 || canonical(all but sig))}

The subject id is the id of the *first* identity key and never changes, so
contacts keep one handle across a recovery that rotates the key (the rotation
carries a recovery certificate; see :mod:`._recovery`). A lone document is
checked here (:meth:`IdentityDocument.from_bytes` verifies its signature and
its embedded records); how versions follow each other is :mod:`._chain`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import PublicKey, SigningKey, VerifyKey

from ._devices import DeviceCertificate, DeviceRevocation
from ._errors import (
    ExpiredError,
    IdentityArgumentError,
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

__all__ = ("IdentityDocument",)

_DOMAIN = b"dchat-iddoc-v1\x00"
_HASH_PERSON = b"dchat-iddoc"
_FIELDS = frozenset(
    {
        "v", "id", "seq", "prev", "key", "enc", "issued", "devices", "revoked",
        "prekeys", "profile", "guardians", "exp", "recovery", "sig",
    }
)  # fmt: skip
MAX_DEVICES, MAX_REVOKED, MAX_PREKEYS = 32, 128, 256
MAX_DOCUMENT = 96 * 1024
_LIMITS = DecodeLimits(max_size=MAX_DOCUMENT, max_depth=3, max_items=1024)
NO_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class IdentityDocument:
    """One signed version of an identity's public state."""

    subject: IdentityId
    seq: int
    prev: bytes
    identity_key: VerifyKey
    encryption_key: PublicKey
    issued_ms: int
    devices: tuple[DeviceCertificate, ...] = ()
    revoked: tuple[DeviceRevocation, ...] = ()
    prekeys: tuple[bytes, ...] = ()
    profile: bytes = NO_HASH
    guardians: bytes = NO_HASH
    expires_ms: int | None = None
    recovery: bytes | None = None
    signature: bytes = field(default=b"", repr=False)
    # Immutable, so the encoding is computed once (hashing and chain checks reuse it).
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    # -- building -------------------------------------------------------------

    @classmethod
    def genesis(
        cls,
        identity_key: SigningKey,
        encryption_key: PublicKey,
        *,
        now: float,
        expires: float | None = None,
        **contents: Any,
    ) -> IdentityDocument:
        """Version 1 of a new identity whose subject is the id of ``identity_key``.

        ``contents`` may set ``devices``, ``revoked``, ``prekeys``, ``profile``,
        ``guardians``. ``expires`` (seconds) makes the identity expire (burners).
        """
        public = identity_key.public_key
        doc = cls(
            subject=IdentityId.derive(public.to_bytes()),
            seq=1,
            prev=NO_HASH,
            identity_key=public,
            encryption_key=encryption_key,
            issued_ms=to_ms(now),
            expires_ms=None if expires is None else to_ms(expires),
            **contents,
        )
        return doc._signed(identity_key)

    def successor(
        self, identity_key: SigningKey, *, now: float, **changes: Any
    ) -> IdentityDocument:
        """The next version, chained to this one and signed by ``identity_key``.

        ``changes`` replaces any of the listed contents (and ``encryption_key``,
        ``expires_ms``, ``recovery``); ``identity_key`` may differ from this
        version's key only together with a ``recovery`` certificate.
        """
        forbidden = {"subject", "seq", "prev", "issued_ms", "signature"} & set(changes)
        if forbidden:
            raise IdentityArgumentError(f"cannot set {sorted(forbidden)} on a successor")
        changes.setdefault("recovery", None)
        if identity_key.public_key != self.identity_key and changes["recovery"] is None:
            raise IdentityArgumentError("the identity key changes only with a recovery certificate")
        nxt = replace(
            self,
            seq=self.seq + 1,
            prev=self.document_hash,
            identity_key=identity_key.public_key,
            issued_ms=max(to_ms(now), self.issued_ms),
            **changes,
        )
        return nxt._signed(identity_key)

    def _signed(self, identity_key: SigningKey) -> IdentityDocument:
        if identity_key.public_key != self.identity_key:
            raise IdentityArgumentError("the signing key is not the document's identity key")
        self._check_contents()
        return replace(self, signature=sign_fields(identity_key, _DOMAIN, self._fields()))

    # -- encoding -------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "v": 1,
            "id": bytes(self.subject),
            "seq": self.seq,
            "prev": self.prev,
            "key": self.identity_key.to_bytes(),
            "enc": self.encryption_key.to_bytes(),
            "issued": self.issued_ms,
            "devices": [cert.to_bytes() for cert in self.devices],
            "revoked": [entry.to_bytes() for entry in self.revoked],
            "prekeys": list(self.prekeys),
            "profile": self.profile,
            "guardians": self.guardians,
        }
        if self.expires_ms is not None:
            fields["exp"] = self.expires_ms
        if self.recovery is not None:
            fields["recovery"] = self.recovery
        return fields

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        if self._encoded is None:
            encoded = canonical_encode({**self._fields(), "sig": self.signature})
            object.__setattr__(self, "_encoded", encoded)
        assert self._encoded is not None
        return self._encoded

    @property
    def document_hash(self) -> bytes:
        """BLAKE2b-256 of :meth:`to_bytes`; the next version's ``prev``."""
        return record_hash(_HASH_PERSON, self.to_bytes())

    @classmethod
    def from_bytes(
        cls, data: bytes, *, known_records: frozenset[bytes] = frozenset()
    ) -> IdentityDocument:
        """Decode one document and check it on its own.

        Checks the signature by the key it names, every embedded certificate and
        revocation (subject and signature), and at seq 1 that the subject is the
        id of the key. Chain rules (versions, prev, forks) are :mod:`._chain`'s.

        Args:
            data: The encoded document.
            known_records: Encoded certificates/revocations the caller already
                verified under this document's key (a chain verifier's cache).

        Raises:
            MalformedRecordError: not a well-formed document.
            ForgedRecordError: a signature does not verify.
        """
        doc = cls._decode(data)
        doc.verify_signatures(known_records)
        return doc

    @classmethod
    def _decode(cls, data: bytes) -> IdentityDocument:
        fields = decode_fields(data, "identity document", _FIELDS, _LIMITS)
        with strict("identity document"):
            check_version(fields, "identity document")
            doc = cls(
                subject=IdentityId(fields.get_bytes("id", size=32)),
                seq=fields.get_int("seq", lo=1),
                prev=fields.get_bytes("prev", size=32),
                identity_key=VerifyKey.from_bytes(fields.get_bytes("key", size=32)),
                encryption_key=PublicKey.from_bytes(fields.get_bytes("enc", size=32)),
                issued_ms=fields.get_int("issued"),
                devices=tuple(
                    DeviceCertificate.from_bytes(_blob(raw))
                    for raw in fields.get_list("devices", max_len=MAX_DEVICES)
                ),
                revoked=tuple(
                    DeviceRevocation.from_bytes(_blob(raw))
                    for raw in fields.get_list("revoked", max_len=MAX_REVOKED)
                ),
                prekeys=tuple(
                    _blob(raw, 32) for raw in fields.get_list("prekeys", max_len=MAX_PREKEYS)
                ),
                profile=fields.get_bytes("profile", size=32),
                guardians=fields.get_bytes("guardians", size=32),
                expires_ms=fields.get_int("exp") if fields.has("exp") else None,
                recovery=fields.get_bytes("recovery", max_size=48 * 1024)
                if fields.has("recovery")
                else None,
                signature=fields.get_bytes("sig", size=64),
            )
        try:
            doc._check_contents()
        except IdentityArgumentError as exc:
            raise MalformedRecordError(f"malformed identity document: {exc}") from None
        # Strict decoding means these bytes are exactly the canonical encoding.
        object.__setattr__(doc, "_encoded", bytes(data))
        return doc

    # -- checks ---------------------------------------------------------------

    def _check_contents(self) -> None:
        if self.seq == 1 and (
            self.prev != NO_HASH or self.subject != IdentityId.derive(self.identity_key.to_bytes())
        ):
            raise IdentityArgumentError("version 1 must name its own key's id and no prev")
        if self.seq > 1 and self.prev == NO_HASH:
            raise IdentityArgumentError("a later version must name its previous document")
        if len(self.devices) > MAX_DEVICES or len(self.revoked) > MAX_REVOKED:
            raise IdentityArgumentError("too many devices or revocations")
        if len(self.prekeys) > MAX_PREKEYS or any(len(p) != 32 for p in self.prekeys):
            raise IdentityArgumentError("prekey pointers are at most 256 32-byte hashes")
        if len(self.profile) != 32 or len(self.guardians) != 32:
            raise IdentityArgumentError("profile and guardian commitments are 32-byte hashes")
        active = [cert.device_key for cert in self.devices]
        revoked = {entry.device_key for entry in self.revoked}
        if len(set(active)) != len(active) or revoked & set(active):
            raise IdentityArgumentError("a device is listed twice, or both active and revoked")
        if any(entry.seq > self.seq for entry in self.revoked):
            raise IdentityArgumentError("a revocation names a future version")
        subjects = [c.subject for c in self.devices] + [r.subject for r in self.revoked]
        if any(subject != self.subject for subject in subjects):
            raise IdentityArgumentError("a device record names another identity")

    def embedded_records(self) -> frozenset[bytes]:
        """The encodings of the certificates and revocations this version carries."""
        certs = {cert.to_bytes() for cert in self.devices}
        return frozenset(certs | {entry.to_bytes() for entry in self.revoked})

    def verify_signatures(self, known_records: frozenset[bytes] = frozenset()) -> None:
        """Check the document's and every embedded record's signature.

        Records whose encoding is in ``known_records`` were verified under this
        same key before and are skipped.

        Raises:
            ForgedRecordError: any signature fails (opaque).
        """
        verify_fields(self.identity_key, _DOMAIN, self._fields(), self.signature)
        for cert in self.devices:
            if cert.to_bytes() not in known_records:
                cert.verify(self.identity_key)
        for entry in self.revoked:
            if entry.to_bytes() not in known_records:
                entry.verify(self.identity_key)

    def check_not_expired(self, now: float) -> None:
        """Raise :class:`ExpiredError` if the document carries an expiry at or before ``now``."""
        if self.expires_ms is not None and to_ms(now) >= self.expires_ms:
            raise ExpiredError("the identity document has expired")

    def device(self, device_key: VerifyKey) -> DeviceCertificate | None:
        """The active certificate of ``device_key`` in this version, if any."""
        return next((c for c in self.devices if c.device_key == device_key), None)


def _blob(raw: object, size: int | None = None) -> bytes:
    if not isinstance(raw, bytes) or (size is not None and len(raw) != size):
        raise MalformedRecordError("malformed identity document: bad list entry")
    return raw
