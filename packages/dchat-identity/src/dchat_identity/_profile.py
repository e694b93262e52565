"""Profiles with per-field visibility, enforced when a profile is served.

The owner signs one :class:`Profile` holding, for every field, its visibility
and a salted commitment ``BLAKE2b(salt || name || value)``; the values and
salts stay with the owner. :meth:`Profile.view_for` builds what one viewer may
see: the signed commitments plus the opening (value, salt) of the fields that
viewer is allowed, and nothing else. The viewer checks the signature and each
opening (:meth:`ProfileView.from_bytes`). A hidden field is absent from the
bytes a viewer receives; only the fact that it exists and its visibility show,
and the 32-byte random salt stops anyone guessing a short value from its
commitment. ``profile.commitment`` is what the identity document carries.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode

from ._errors import ForgedRecordError, IdentityArgumentError, MalformedRecordError
from ._records import (
    Rng,
    check_version,
    decode_fields,
    default_rng,
    record_hash,
    sign_fields,
    strict,
    verify_fields,
)

if TYPE_CHECKING:
    from dchat_crypto import SigningKey, VerifyKey

__all__ = ("FIELD_LIMITS", "Profile", "ProfileView", "Relation", "Visibility")

_DOMAIN = b"dchat-profile-v1\x00"
FIELD_LIMITS = {"avatar": 256, "bio": 500, "display_name": 64, "status": 140}
_LIMITS = DecodeLimits(max_size=16 * 1024, max_depth=4, max_items=128)


class Visibility(Enum):
    """Who may see a profile field."""

    PUBLIC = "public"
    CONTACTS = "contacts"
    NOBODY = "nobody"


class Relation(Enum):
    """Who is asking: the owner's own devices, a contact, or anyone else."""

    SELF = "self"
    CONTACT = "contact"
    STRANGER = "stranger"


_ALLOWED = {
    Relation.SELF: {Visibility.PUBLIC, Visibility.CONTACTS, Visibility.NOBODY},
    Relation.CONTACT: {Visibility.PUBLIC, Visibility.CONTACTS},
    Relation.STRANGER: {Visibility.PUBLIC},
}


def _commit(name: str, value: str, salt: bytes) -> bytes:
    data = salt + canonical_encode([name, value])
    return hashlib.blake2b(data, digest_size=32, person=b"dchat-prof-field").digest()


def _check_field(name: str, value: str) -> None:
    limit = FIELD_LIMITS.get(name)
    if limit is None:
        raise IdentityArgumentError(f"unknown profile field {name!r}")
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise IdentityArgumentError(f"profile field {name!r}: at most {limit} printable characters")


@dataclass(frozen=True, slots=True)
class _Entry:
    visibility: Visibility
    commitment: bytes


def _signed_fields(subject: IdentityId, entries: dict[str, _Entry]) -> dict[str, Any]:
    return {
        "v": 1,
        "id": bytes(subject),
        "fields": {n: [e.visibility.value, e.commitment] for n, e in entries.items()},
    }


@dataclass(frozen=True, slots=True, repr=False)
class Profile:
    """The owner's full profile: values, salts and the signature over the commitments."""

    subject: IdentityId
    values: dict[str, tuple[str, Visibility]]
    salts: dict[str, bytes] = field(repr=False)
    signature: bytes

    @classmethod
    def create(
        cls,
        identity_key: SigningKey,
        subject: IdentityId,
        values: dict[str, tuple[str, Visibility]],
        *,
        rng: Rng = default_rng,
    ) -> Profile:
        """Sign a profile, e.g. ``{"display_name": ("Zoë", Visibility.PUBLIC)}``.

        Fields: ``display_name`` (64), ``avatar`` (a hash or reference, 256),
        ``bio`` (500), ``status`` (140).
        """
        for name, (value, visibility) in values.items():
            _check_field(name, value)
            if not isinstance(visibility, Visibility):
                raise IdentityArgumentError("visibility must be a Visibility")
        salts = {name: rng(32) for name in values}
        profile = cls(subject, dict(values), salts, b"")
        sig = sign_fields(identity_key, _DOMAIN, _signed_fields(subject, profile._entries()))
        return cls(subject, dict(values), salts, sig)

    def _entries(self) -> dict[str, _Entry]:
        return {
            n: _Entry(vis, _commit(n, value, self.salts[n]))
            for n, (value, vis) in self.values.items()
        }

    @property
    def commitment(self) -> bytes:
        """The 32-byte hash for the identity document's ``profile`` field."""
        signed = _signed_fields(self.subject, self._entries())
        return record_hash(b"dchat-profile", canonical_encode({**signed, "sig": self.signature}))

    def view_for(self, relation: Relation) -> ProfileView:
        """What ``relation`` may see: only fields whose visibility allows it are opened."""
        allowed = _ALLOWED[relation]
        opened = {
            n: (value, self.salts[n]) for n, (value, vis) in self.values.items() if vis in allowed
        }
        return ProfileView(self.subject, self._entries(), opened, self.signature)

    def __repr__(self) -> str:
        return f"Profile({self.subject}, fields={sorted(self.values)})"

    def to_bytes(self) -> bytes:
        """The owner's copy, for storage: values, visibilities, salts and signature."""
        values = {n: [v, vis.value, self.salts[n]] for n, (v, vis) in self.values.items()}
        return canonical_encode(
            {"v": 1, "id": bytes(self.subject), "values": values, "sig": self.signature}
        )

    @classmethod
    def from_bytes(cls, data: bytes, identity_key: VerifyKey) -> Profile:
        """Decode the owner's copy and check its signature under ``identity_key``."""
        fields = decode_fields(data, "profile", frozenset({"v", "id", "values", "sig"}), _LIMITS)
        with strict("profile"):
            check_version(fields, "profile")
            subject = IdentityId(fields.get_bytes("id", size=32))
            raw, signature = fields.raw("values"), fields.get_bytes("sig", size=64)
        if not isinstance(raw, dict) or len(raw) > len(FIELD_LIMITS):
            raise MalformedRecordError("malformed profile: bad values")
        values, salts = {}, {}
        for name, entry in raw.items():
            if not (isinstance(entry, list) and len(entry) == 3):
                raise MalformedRecordError("malformed profile: bad value")
            opened = _opened_from({name: [entry[0], entry[2]]})
            try:
                visibility = Visibility(entry[1])
            except ValueError:
                raise MalformedRecordError("malformed profile: bad visibility") from None
            values[name] = (opened[name][0], visibility)
            salts[name] = opened[name][1]
        profile = cls(subject, values, salts, signature)
        profile.view_for(Relation.SELF).verify(identity_key)
        return profile


@dataclass(frozen=True, slots=True)
class ProfileView:
    """A profile as served to one viewer: signed commitments and some openings."""

    subject: IdentityId
    entries: dict[str, _Entry]
    opened: dict[str, tuple[str, bytes]]
    signature: bytes

    @property
    def fields(self) -> dict[str, str]:
        """The visible field values."""
        return {name: value for name, (value, _) in self.opened.items()}

    @property
    def commitment(self) -> bytes:
        """The same hash as :attr:`Profile.commitment`, to compare with the document."""
        signed = _signed_fields(self.subject, self.entries)
        return record_hash(b"dchat-profile", canonical_encode({**signed, "sig": self.signature}))

    def verify(self, identity_key: VerifyKey) -> None:
        """Check the owner's signature and every opened field.

        Raises:
            ForgedRecordError: bad signature, or an opening that does not match.
        """
        verify_fields(
            identity_key, _DOMAIN, _signed_fields(self.subject, self.entries), self.signature
        )
        for name, (value, salt) in self.opened.items():
            entry = self.entries.get(name)
            if entry is None or not hmac.compare_digest(
                entry.commitment, _commit(name, value, salt)
            ):
                raise ForgedRecordError

    def to_bytes(self) -> bytes:
        """Canonical encoding (only the opened fields' values are inside)."""
        signed = _signed_fields(self.subject, self.entries)
        opened = {n: [value, salt] for n, (value, salt) in self.opened.items()}
        return canonical_encode({**signed, "open": opened, "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes, identity_key: VerifyKey) -> ProfileView:
        """Decode and verify a served profile against the owner's identity key."""
        allowed = frozenset({"v", "id", "fields", "open", "sig"})
        fields = decode_fields(data, "profile", allowed, _LIMITS)
        with strict("profile"):
            check_version(fields, "profile")
            view = cls(
                IdentityId(fields.get_bytes("id", size=32)),
                _entries_from(fields.raw("fields")),
                _opened_from(fields.raw("open")),
                fields.get_bytes("sig", size=64),
            )
        view.verify(identity_key)
        return view


def _entries_from(raw: object) -> dict[str, _Entry]:
    if not isinstance(raw, dict) or len(raw) > len(FIELD_LIMITS):
        raise MalformedRecordError("malformed profile: bad fields")
    entries = {}
    for name, entry in raw.items():
        if name not in FIELD_LIMITS or not isinstance(entry, list) or len(entry) != 2:
            raise MalformedRecordError("malformed profile: bad field")
        visibility, commitment = entry
        try:
            entries[name] = _Entry(Visibility(visibility), commitment)
        except ValueError:
            raise MalformedRecordError("malformed profile: bad visibility") from None
        if not isinstance(commitment, bytes) or len(commitment) != 32:
            raise MalformedRecordError("malformed profile: bad commitment")
    return entries


def _opened_from(raw: object) -> dict[str, tuple[str, bytes]]:
    if not isinstance(raw, dict) or len(raw) > len(FIELD_LIMITS):
        raise MalformedRecordError("malformed profile: bad openings")
    opened = {}
    for name, entry in raw.items():
        ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
        if not ok or not isinstance(entry[1], bytes) or len(entry[1]) != 32:
            raise MalformedRecordError("malformed profile: bad opening")
        try:
            _check_field(name, entry[0])
        except IdentityArgumentError:
            raise MalformedRecordError("malformed profile: bad opening") from None
        opened[name] = (entry[0], entry[1])
    return opened
