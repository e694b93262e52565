"""Profiles between nodes: publishing one's own, serving it by relation, caching others'.

Theory of operation. The owner's :class:`Profile` (values, salts, signature)
is revised on the primary (:meth:`ProfileAgent.revise`): each change signs a
new profile whose ``commitment`` goes into the next identity document, and
whose field values (with their visibility) sync to the owner's other devices
as ``profile/<field>`` and ``profile.vis/<field>`` registers.

Serving: a ``profile.request`` control message (payload ``canonical({"v": 1})``,
sent with the requester's card) is answered with ``profile.view`` holding
``Profile.view_for(relation).to_bytes()``, where the *serving* side decides
the relation: a contact if the requester is in its contacts, else a
stranger. A stranger's bytes therefore hold only public values, a contact's
public and contacts-only values, never ``nobody`` values.

Receiving: a view is accepted only from an identity this side asked (or a
known contact), verified against that identity's key and subject, and kept
as a :class:`CachedProfile` noting whether it matches the commitment in the
document this side follows. Sans-IO: the caller sends, stores and looks up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, Fields, IdentityId, canonical_decode
from dchat_core import canonical_encode as encode
from dchat_crypto import VerifyKey

from ._errors import ForgedRecordError, MalformedRecordError
from ._profile import Profile, ProfileView, Relation, Visibility
from ._records import Rng, default_rng, strict

if TYPE_CHECKING:
    from dchat_crypto import SigningKey

    from ._card import ContactCard
    from ._sync_agent import Change

__all__ = (
    "PROFILE_REQUEST_KIND",
    "PROFILE_VIEW_KIND",
    "CachedProfile",
    "ProfileAgent",
    "profile_fields",
    "synced_profile_fields",
)

PROFILE_REQUEST_KIND: Final = "profile.request"
PROFILE_VIEW_KIND: Final = "profile.view"
_LIMITS = DecodeLimits(max_size=32 * 1024, max_depth=2, max_items=8)


@dataclass(frozen=True, slots=True)
class CachedProfile:
    """A profile someone served us, as kept: the view bytes, their key, document match."""

    view: bytes
    key: VerifyKey
    matches_document: bool | None  # None: we follow no document of theirs

    def to_bytes(self) -> bytes:
        """Canonical encoding for storage."""
        return encode({"v": 1, "view": self.view, "key": self.key.to_bytes(),
                       "match": self.matches_document})  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedProfile:
        """Strictly decode :meth:`to_bytes` output (``MalformedRecordError`` otherwise)."""
        with strict("cached profile"):
            fields = Fields(canonical_decode(data, _LIMITS), "cached profile",
                            frozenset({"v", "view", "key", "match"}))  # fmt: skip
            match = fields.raw("match")
            return cls(
                fields.get_bytes("view"),
                VerifyKey.from_bytes(fields.get_bytes("key", size=32)),
                match if isinstance(match, bool) else None,
            )

    def describe(self, subject: IdentityId) -> dict[str, Any]:
        """What a user sees: visible fields, hidden field names, whether it matches."""
        view = ProfileView.from_bytes(self.view, self.key)
        return {
            "identity_id": str(subject),
            "fields": view.fields,
            "hidden": sorted(set(view.entries) - set(view.opened)),
            "matches_document": self.matches_document,
        }


def profile_fields(profile: Profile | None) -> dict[str, Any]:
    """The owner's view of a profile: every field's value and visibility, and the commitment."""
    if profile is None:
        return {"fields": {}}
    return {
        "fields": {
            name: {"value": value, "visibility": vis.value}
            for name, (value, vis) in sorted(profile.values.items())
        },
        "commitment": profile.commitment.hex(),
    }


def synced_profile_fields(registers: dict[str, Any]) -> dict[str, Any]:
    """A linked device's view of the owner's profile, from the synced registers."""
    fields = {
        key.split("/", 1)[1]: {
            "value": value,
            "visibility": registers.get(f"profile.vis/{key.split('/', 1)[1]}"),
        }
        for key, value in registers.items()
        if key.startswith("profile/")
    }
    return {"fields": fields}


class ProfileAgent:
    """Who we asked for a profile, and the rules for revising, serving and accepting one."""

    def __init__(self) -> None:
        self._asked: dict[IdentityId, ContactCard] = {}

    # -- our own profile --------------------------------------------------------------

    @staticmethod
    def revise(
        current: Profile | None,
        changes: dict[str, str],
        visibility: Visibility,
        identity_key: SigningKey,
        subject: IdentityId,
        *,
        rng: Rng = default_rng,
    ) -> tuple[Profile, list[Change]]:
        """The new signed profile with ``changes`` at ``visibility``, and the changes to sync.

        Raises:
            IdentityArgumentError: an unknown field or a value over its limit.
        """
        values = {} if current is None else dict(current.values)
        values.update({name: (value, visibility) for name, value in changes.items()})
        profile = Profile.create(identity_key, subject, values, rng=rng)
        synced: list[Change] = [("set", f"profile/{n}", v) for n, v in changes.items()]
        synced += [("set", f"profile.vis/{n}", visibility.value) for n in changes]
        return profile, synced

    @staticmethod
    def serve(request: bytes, profile: Profile | None, *, contact: bool) -> bytes | None:
        """The ``profile.view`` payload answering ``request``; ``None`` if nothing to serve.

        Raises:
            MalformedRecordError: ``request`` is not a profile request.
        """
        _check_request(request)
        if profile is None:
            return None
        return profile.view_for(Relation.CONTACT if contact else Relation.STRANGER).to_bytes()

    # -- others' profiles -------------------------------------------------------------

    def ask(self, card: ContactCard) -> bytes:
        """Remember that we asked ``card``'s holder; the ``profile.request`` payload."""
        self._asked[card.identity_id] = card
        return encode({"v": 1})

    def asked(self, sender: IdentityId) -> ContactCard | None:
        """The card of ``sender`` if we asked them and have no answer yet."""
        return self._asked.get(sender)

    def accept(
        self,
        data: bytes,
        sender: IdentityId,
        card: ContactCard | None,
        *,
        document_profile: bytes | None,
    ) -> CachedProfile:
        """Check a ``profile.view`` from ``sender`` and make it the cached profile.

        Args:
            data: The payload.
            sender: Who sent it (authenticated by the messaging layer).
            card: ``sender``'s card if they are a contact, else ``None``.
            document_profile: The profile commitment in the document we follow of
                ``sender``'s, if we follow one.

        Raises:
            ForgedRecordError: from someone we neither asked nor know, or not theirs.
            MalformedRecordError: not a profile view.
        """
        card = self._asked.get(sender, card)
        if card is None:
            raise ForgedRecordError  # nobody we asked or know
        view = ProfileView.from_bytes(data, card.identity_key)
        if view.subject != sender:
            raise ForgedRecordError
        matches = None if document_profile is None else document_profile == view.commitment
        self._asked.pop(sender, None)
        return CachedProfile(data, card.identity_key, matches)


def _check_request(data: bytes) -> None:
    try:
        fields = Fields(canonical_decode(data, _LIMITS), "profile request", frozenset({"v"}))
        if fields.get_int("v") != 1:
            raise MalformedRecordError("unsupported profile request")
    except DecodeError:
        raise MalformedRecordError("malformed profile request") from None
