"""Device certificates, revocations and attestations.

* A :class:`DeviceCertificate` is the identity key saying "this Ed25519 key
  (and this X25519 key) is one of my devices". Identity documents list them.
* A :class:`DeviceRevocation` is the identity key saying "from document
  version ``seq`` on, this device no longer speaks for me". It is a record of
  its own, so a peer holding an older document can still check it.
* A :class:`DeviceAttestation` is the *device* key making a statement about
  itself (platform facts) in answer to a verifier's fresh challenge. It proves
  possession of the device key now; it cannot prove that the facts are true
  (see the package README, "What a software attestation cannot prove").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import PublicKey, SigningKey, VerifyKey, constant_time_equal

from ._errors import (
    ExpiredError,
    ForgedRecordError,
    IdentityArgumentError,
    MalformedRecordError,
)
from ._records import check_version, decode_fields, sign_fields, strict, to_ms, verify_fields

__all__ = ("DeviceAttestation", "DeviceCertificate", "DeviceRevocation")

_CERT_DOMAIN = b"dchat-device-cert-v1\x00"
_REVOKE_DOMAIN = b"dchat-device-revoke-v1\x00"
_ATTEST_DOMAIN = b"dchat-device-attest-v1\x00"
_CERT_FIELDS = frozenset({"v", "id", "dev", "dh", "name", "issued", "sig"})
_REVOKE_FIELDS = frozenset({"v", "id", "dev", "seq", "at", "sig"})
_ATTEST_FIELDS = frozenset({"v", "id", "dev", "facts", "nonce", "at", "sig"})
_LIMITS = DecodeLimits(max_size=4096, max_depth=3, max_items=80)
MAX_DEVICE_NAME = 64
MAX_FACTS, MAX_FACT_KEY, MAX_FACT_VALUE = 16, 32, 128
MIN_NONCE, MAX_NONCE = 16, 64


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_DEVICE_NAME or not name.isprintable():
        raise IdentityArgumentError("a device name must be 1-64 printable characters")


def _check_facts(facts: dict[str, str]) -> None:
    if not isinstance(facts, dict) or len(facts) > MAX_FACTS:
        raise IdentityArgumentError("at most 16 platform facts")
    for key, value in facts.items():
        good_key = isinstance(key, str) and 0 < len(key) <= MAX_FACT_KEY and key.isprintable()
        good_value = isinstance(value, str) and len(value) <= MAX_FACT_VALUE
        if not (good_key and good_value and value.isprintable()):
            raise IdentityArgumentError("platform facts are short printable text pairs")


@dataclass(frozen=True, slots=True)
class DeviceCertificate:
    """The identity key's statement that ``device_key`` is one of its devices."""

    subject: IdentityId
    device_key: VerifyKey
    exchange_key: PublicKey
    name: str
    issued_ms: int
    signature: bytes
    # Documents embed certificates as bytes; re-encoding them on every check was
    # most of a chain verifier's time. Immutable, so the cache cannot go stale.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def issue(
        cls,
        identity_key: SigningKey,
        subject: IdentityId,
        device_key: VerifyKey,
        exchange_key: PublicKey,
        *,
        name: str,
        now: float,
    ) -> DeviceCertificate:
        """Certify a device for ``subject``, signed by the current ``identity_key``."""
        _check_name(name)
        cert = cls(subject, device_key, exchange_key, name, to_ms(now), b"")
        return replace(cert, signature=sign_fields(identity_key, _CERT_DOMAIN, cert._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": bytes(self.subject),
            "dev": self.device_key.to_bytes(),
            "dh": self.exchange_key.to_bytes(),
            "name": self.name,
            "issued": self.issued_ms,
        }

    def verify(self, identity_key: VerifyKey) -> None:
        """Check that ``identity_key`` signed this certificate (ForgedRecordError if not)."""
        verify_fields(identity_key, _CERT_DOMAIN, self._fields(), self.signature)

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        if self._encoded is None:
            encoded = canonical_encode({**self._fields(), "sig": self.signature})
            object.__setattr__(self, "_encoded", encoded)
        assert self._encoded is not None
        return self._encoded

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceCertificate:
        """Decode; verifying needs the identity key (:meth:`verify`)."""
        fields = decode_fields(data, "device certificate", _CERT_FIELDS, _LIMITS)
        with strict("device certificate"):
            check_version(fields, "device certificate")
            name = fields.get_str("name", max_len=MAX_DEVICE_NAME)
            cert = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                VerifyKey.from_bytes(fields.get_bytes("dev", size=32)),
                PublicKey.from_bytes(fields.get_bytes("dh", size=32)),
                name,
                fields.get_int("issued"),
                fields.get_bytes("sig", size=64),
            )
        if not name or not name.isprintable():
            raise MalformedRecordError("malformed device certificate: bad name")
        object.__setattr__(cert, "_encoded", bytes(data))  # strict: canonical already
        return cert


@dataclass(frozen=True, slots=True)
class DeviceRevocation:
    """The identity key's statement that ``device_key`` is revoked from version ``seq``."""

    subject: IdentityId
    device_key: VerifyKey
    seq: int
    at_ms: int
    signature: bytes
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def issue(
        cls,
        identity_key: SigningKey,
        subject: IdentityId,
        device_key: VerifyKey,
        *,
        seq: int,
        now: float,
    ) -> DeviceRevocation:
        """Revoke ``device_key`` from document version ``seq`` on."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise IdentityArgumentError("a revocation names a document version >= 1")
        entry = cls(subject, device_key, seq, to_ms(now), b"")
        return replace(entry, signature=sign_fields(identity_key, _REVOKE_DOMAIN, entry._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": bytes(self.subject),
            "dev": self.device_key.to_bytes(),
            "seq": self.seq,
            "at": self.at_ms,
        }

    def verify(self, identity_key: VerifyKey) -> None:
        """Check that ``identity_key`` signed this revocation (ForgedRecordError if not)."""
        verify_fields(identity_key, _REVOKE_DOMAIN, self._fields(), self.signature)

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        if self._encoded is None:
            encoded = canonical_encode({**self._fields(), "sig": self.signature})
            object.__setattr__(self, "_encoded", encoded)
        assert self._encoded is not None
        return self._encoded

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceRevocation:
        """Decode; verifying needs the identity key (:meth:`verify`)."""
        fields = decode_fields(data, "device revocation", _REVOKE_FIELDS, _LIMITS)
        with strict("device revocation"):
            check_version(fields, "device revocation")
            entry = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                VerifyKey.from_bytes(fields.get_bytes("dev", size=32)),
                fields.get_int("seq", lo=1),
                fields.get_int("at"),
                fields.get_bytes("sig", size=64),
            )
        object.__setattr__(entry, "_encoded", bytes(data))  # strict: canonical already
        return entry


@dataclass(frozen=True, slots=True)
class DeviceAttestation:
    """A device's signed statement of its key and platform facts, for one challenge.

    A verifier sends a fresh random ``nonce``; the device answers with
    :meth:`create`; the verifier calls :meth:`verify` with the nonce it sent.
    """

    subject: IdentityId
    device_key: VerifyKey
    facts: dict[str, str]
    nonce: bytes
    at_ms: int
    signature: bytes

    @classmethod
    def create(
        cls,
        device_key: SigningKey,
        subject: IdentityId,
        facts: dict[str, str],
        *,
        nonce: bytes,
        now: float,
    ) -> DeviceAttestation:
        """Sign ``facts`` (e.g. ``{"os": "linux", "keystore": "software"}``) for ``nonce``."""
        _check_facts(facts)
        if not isinstance(nonce, bytes) or not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            raise IdentityArgumentError("an attestation nonce is 16-64 bytes")
        stmt = cls(subject, device_key.public_key, dict(facts), nonce, to_ms(now), b"")
        return replace(stmt, signature=sign_fields(device_key, _ATTEST_DOMAIN, stmt._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": bytes(self.subject),
            "dev": self.device_key.to_bytes(),
            "facts": dict(self.facts),
            "nonce": self.nonce,
            "at": self.at_ms,
        }

    def verify(self, *, nonce: bytes, now: float, max_age: float = 300.0) -> None:
        """Check the signature, that it answers ``nonce`` and was made within ``max_age``.

        Whether ``device_key`` belongs to the identity is the document's business
        (:meth:`DocumentChain.check_device`).

        Raises:
            ForgedRecordError: bad signature, or an answer to another challenge.
            ExpiredError: older than ``max_age`` seconds (or from the future).
        """
        verify_fields(self.device_key, _ATTEST_DOMAIN, self._fields(), self.signature)
        if not constant_time_equal(self.nonce, nonce):
            raise ForgedRecordError
        if not to_ms(now - max_age) <= self.at_ms <= to_ms(now + 60):
            raise ExpiredError("the attestation is not fresh")

    def to_bytes(self) -> bytes:
        """Canonical encoding, signature included."""
        return canonical_encode({**self._fields(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceAttestation:
        """Decode; then :meth:`verify` against the challenge."""
        fields = decode_fields(data, "device attestation", _ATTEST_FIELDS, _LIMITS)
        with strict("device attestation"):
            check_version(fields, "device attestation")
            facts = fields.raw("facts")
            stmt = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                VerifyKey.from_bytes(fields.get_bytes("dev", size=32)),
                facts,
                fields.get_bytes("nonce", max_size=MAX_NONCE),
                fields.get_int("at"),
                fields.get_bytes("sig", size=64),
            )
        try:
            _check_facts(facts)
        except IdentityArgumentError:
            raise MalformedRecordError("malformed device attestation: bad facts") from None
        if len(stmt.nonce) < MIN_NONCE:
            raise MalformedRecordError("malformed device attestation: short nonce")
        return stmt
