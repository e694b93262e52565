"""Profiles: set on the primary, committed in the document, served by relation.

The owner's :class:`dchat_identity.Profile` (values, salts, signature) is kept
sealed at rest under ``profile.own``; each change signs a new one, publishes
its commitment in the next document version (so contacts can check what they
are served) and syncs the field values to the identity's other devices.

Serving: a ``profile.request`` control message (payload ``canonical({"v": 1})``,
sent with the requester's card) is answered with ``profile.view`` holding
``Profile.view_for(relation).to_bytes()``, where the *serving* node decides
the relation: the requester is a contact if their identity is in its contacts
table, else a stranger. A stranger's bytes therefore hold only public values,
a contact's public and contacts-only values, never ``nobody`` values. The
requester accepts a view only from an identity it asked (or a contact),
verifies it against that identity key, and caches it under
``profile.peer.<id>``, noting whether it matches the document it follows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeError, DecodeLimits, Fields, IdentityId, canonical_decode
from dchat_core import canonical_encode as encode
from dchat_identity import (
    ContactCard,
    ForgedRecordError,
    MalformedRecordError,
    Profile,
    ProfileView,
    Relation,
    Visibility,
)

from ._errors import NodeStateError

if TYPE_CHECKING:
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._store import AsyncStore
    from ._sync_service import SyncService
    from ._user_service import UserService

__all__ = ("REQUEST_KIND", "VIEW_KIND", "ProfileService")

REQUEST_KIND = "profile.request"
VIEW_KIND = "profile.view"
_OWN = "profile.own"
_PEER = "profile.peer."
_CACHE_LIMITS = DecodeLimits(max_size=32 * 1024, max_depth=2, max_items=8)
_log = logging.getLogger("dchat.profile")


class ProfileService:
    """Our own profile, serving it by relation, and the profiles others served us."""

    def __init__(
        self, user: UserService, documents: DocumentService, sync: SyncService, store: AsyncStore
    ) -> None:
        self._user, self._documents, self._sync, self._store = user, documents, sync, store
        self._pending: dict[IdentityId, ContactCard] = {}
        user.on_control(REQUEST_KIND, self._on_request)
        user.on_control(VIEW_KIND, self._on_view)

    async def _own(self) -> Profile | None:
        stored = await self._user.state_get(_OWN)
        if stored is None:
            return None
        return Profile.from_bytes(stored, self._user.identity.signing_key.public_key)

    async def set(self, changes: dict[str, str], visibility: Visibility) -> dict[str, Any]:
        """Set ``changes`` (field -> value) with ``visibility``, sign, publish, sync."""
        identity = self._user.identity
        current = await self._own()
        values = {} if current is None else dict(current.values)
        values.update({name: (value, visibility) for name, value in changes.items()})
        profile = Profile.create(identity.signing_key, identity.identity_id, values)
        await self._user.state_put(_OWN, profile.to_bytes())
        await self._documents.publish(profile=profile.commitment)
        synced = [("set", f"profile/{n}", v) for n, v in changes.items()]
        synced += [("set", f"profile.vis/{n}", visibility.value) for n in changes]
        await self._sync.record(synced)
        return _own_json(profile)

    async def own(self) -> dict[str, Any]:
        """Our profile: from the signed original on the primary, from sync on a linked device."""
        if self._user.has_identity:
            profile = await self._own()
            return {"fields": {}} if profile is None else _own_json(profile)
        snap = await self._sync.snapshot()
        registers = snap.get("registers", {})
        fields = {
            key.split("/", 1)[1]: {
                "value": value,
                "visibility": registers.get(f"profile.vis/{key.split('/', 1)[1]}"),
            }
            for key, value in registers.items()
            if key.startswith("profile/")
        }
        return {"fields": fields}

    # -- asking for and caching others' profiles ----------------------------------

    async def request(self, who: str) -> str:
        """Ask the contact named ``who`` (or the holder of card text ``who``) for their profile."""
        if who.startswith("dchat-card:"):
            card = ContactCard.from_text(who)
        else:
            record = await self._store.run(self._store.db.contacts.get_by_name, who)
            if record is None:
                raise NodeStateError("unknown_contact", f"no contact named {who!r}")
            card = ContactCard.from_bytes(record.card)
        self._pending[card.identity_id] = card
        await self._user.send_control(
            card, REQUEST_KIND, encode({"v": 1}), sender_card=self._user.card
        )
        return str(card.identity_id)

    async def peer(self, who: str) -> dict[str, Any]:
        """The profile ``who`` (contact name or identity id) last served us."""
        if who.startswith(IdentityId.PREFIX):
            subject = IdentityId.parse(who)
        else:
            record = await self._store.run(self._store.db.contacts.get_by_name, who)
            if record is None:
                raise NodeStateError("unknown_contact", f"no contact named {who!r}")
            subject = IdentityId.parse(record.identity_id)
        stored = await self._user.state_get(_PEER + str(subject))
        if stored is None:
            raise NodeStateError("not_found", "no profile received from them yet")
        view_bytes, key, matches = _decode_cache(stored)
        view = ProfileView.from_bytes(view_bytes, key)
        return {
            "identity_id": str(subject),
            "fields": view.fields,
            "hidden": sorted(set(view.entries) - set(view.opened)),
            "matches_document": matches,
        }

    # -- control messages ---------------------------------------------------------

    async def _on_request(self, message: OpenedMessage, _identity: Any) -> None:
        card = message.sender_card
        if card is None:
            raise MalformedRecordError("a profile request must carry the requester's card")
        _check_request(message.data)
        profile = await self._own()
        if profile is None:
            return  # nothing to serve yet
        known = await self._store.run(self._store.db.contacts.get_by_identity, str(message.sender))
        relation = Relation.CONTACT if known is not None else Relation.STRANGER
        view = profile.view_for(relation)
        await self._user.send_control(card, VIEW_KIND, view.to_bytes())
        _log.info("served a profile", extra={"relation": relation.value})

    async def _on_view(self, message: OpenedMessage, _identity: Any) -> None:
        card = self._pending.get(message.sender)
        if card is None:
            record = await self._store.run(
                self._store.db.contacts.get_by_identity, str(message.sender)
            )
            if record is None:
                raise ForgedRecordError  # nobody we asked or know
            card = ContactCard.from_bytes(record.card)
        view = ProfileView.from_bytes(message.data, card.identity_key)
        if view.subject != message.sender:
            raise ForgedRecordError
        chain = await self._documents.peer_chain(message.sender)
        matches = None if chain is None else chain.head.profile == view.commitment
        blob = encode({"v": 1, "view": message.data, "key": card.identity_key.to_bytes(),
                       "match": matches})  # fmt: skip
        await self._user.state_put(_PEER + str(message.sender), blob)
        self._pending.pop(message.sender, None)


def _check_request(data: bytes) -> None:
    try:
        fields = Fields(canonical_decode(data, _CACHE_LIMITS), "profile request", frozenset({"v"}))
        if fields.get_int("v") != 1:
            raise MalformedRecordError("unsupported profile request")
    except DecodeError:
        raise MalformedRecordError("malformed profile request") from None


def _decode_cache(stored: bytes) -> tuple[bytes, Any, bool | None]:
    from dchat_crypto import VerifyKey

    fields = Fields(canonical_decode(stored, _CACHE_LIMITS), "cached profile",
                    frozenset({"v", "view", "key", "match"}))  # fmt: skip
    match = fields.raw("match")
    return (
        fields.get_bytes("view"),
        VerifyKey.from_bytes(fields.get_bytes("key", size=32)),
        match if isinstance(match, bool) else None,
    )


def _own_json(profile: Profile) -> dict[str, Any]:
    return {
        "fields": {
            name: {"value": value, "visibility": vis.value}
            for name, (value, vis) in sorted(profile.values.items())
        },
        "commitment": profile.commitment.hex(),
    }
