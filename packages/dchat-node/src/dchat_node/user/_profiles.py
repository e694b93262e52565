"""Profiles: a trio shell around :class:`dchat_identity.lowlevel.ProfileAgent`.

The agent holds the rules (what a revision signs and syncs, which relation
sees which fields, which served views to accept); this shell stores the
owner's :class:`dchat_identity.Profile` sealed at rest under ``profile.own``,
publishes its commitment in the next document version, syncs the values to
the identity's other devices, answers ``profile.request`` control messages
(the relation: a contact if the requester is in the contacts table) and
caches accepted views under ``profile.peer.<id>``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import IdentityId
from dchat_identity import ContactCard, MalformedRecordError, Profile
from dchat_identity.lowlevel import (
    PROFILE_REQUEST_KIND,
    PROFILE_VIEW_KIND,
    CachedProfile,
    ProfileAgent,
    profile_fields,
    synced_profile_fields,
)

from .._errors import NodeStateError
from ._guardian_state import load, one_step_at_a_time

if TYPE_CHECKING:
    from dchat_identity import Visibility
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._service import UserService
    from ._sync import SyncService

__all__ = ("ProfileService",)

_OWN = "profile.own"
_PEER = "profile.peer."
_log = logging.getLogger("dchat.profile")


class ProfileService:
    """Our own profile, serving it by relation, and the profiles others served us."""

    def __init__(self, user: UserService, documents: DocumentService, sync: SyncService) -> None:
        self._user, self._documents, self._sync = user, documents, sync
        self._agent = ProfileAgent()
        self._steps = trio.Lock()  # two sets at once would each revise the stored profile
        user.agent.on_control(PROFILE_REQUEST_KIND, self._on_request)
        user.agent.on_control(PROFILE_VIEW_KIND, self._on_view)

    async def _own(self) -> Profile | None:
        key = self._user.identity.signing_key.public_key
        return await load(self._user, _OWN, lambda stored: Profile.from_bytes(stored, key))

    @one_step_at_a_time
    async def set(self, changes: dict[str, str], visibility: Visibility) -> dict[str, Any]:
        """Set ``changes`` (field -> value) with ``visibility``, sign, publish, sync."""
        identity = self._user.identity
        profile, synced = self._agent.revise(
            await self._own(), changes, visibility, identity.signing_key, identity.identity_id
        )
        await self._user.state_put(_OWN, profile.to_bytes())
        await self._documents.publish(profile=profile.commitment)
        await self._sync.record(synced)
        return profile_fields(profile)

    async def own(self) -> dict[str, Any]:
        """Our profile: from the signed original on the primary, from sync on a linked device."""
        if self._user.has_identity:
            return profile_fields(await self._own())
        snap = await self._sync.snapshot()
        return synced_profile_fields(snap.get("registers", {}))

    # -- asking for and caching others' profiles ----------------------------------

    async def request(self, who: str) -> str:
        """Ask the contact named ``who`` (or the holder of card text ``who``) for their profile."""
        if who.startswith("dchat-card:"):
            card = ContactCard.from_text(who)
        else:
            card = await self._user.run(self._user.book.named, who)
        payload = self._agent.ask(card)
        await self._user.send_control(
            card, PROFILE_REQUEST_KIND, payload, sender_card=self._user.card
        )
        return str(card.identity_id)

    async def peer(self, who: str) -> dict[str, Any]:
        """The profile ``who`` (contact name or identity id) last served us."""
        if who.startswith(IdentityId.PREFIX):
            subject = IdentityId.parse(who)
        else:
            subject = (await self._user.run(self._user.book.named, who)).identity_id
        cached = await load(self._user, _PEER + str(subject), CachedProfile.from_bytes)
        if cached is None:
            raise NodeStateError("not_found", "no profile received from them yet")
        return cached.describe(subject)

    # -- control messages ---------------------------------------------------------

    async def _on_request(self, message: OpenedMessage, _identity: Any) -> None:
        card = message.sender_card
        if card is None:
            raise MalformedRecordError("a profile request must carry the requester's card")
        known = await self._user.run(self._user.book.card_of, message.sender)
        view = self._agent.serve(message.data, await self._own(), contact=known is not None)
        if view is not None:
            await self._user.send_control(card, PROFILE_VIEW_KIND, view)
            relation = "stranger" if known is None else "contact"
            _log.info("served a profile", extra={"relation": relation})

    async def _on_view(self, message: OpenedMessage, _identity: Any) -> None:
        sender = message.sender
        chain = await self._documents.peer_chain(sender)
        committed = None if chain is None else chain.head.profile
        # The agent prefers the card we asked with.
        card = await self._user.run(self._user.book.card_of, sender)
        cached = self._agent.accept(message.data, sender, card, document_profile=committed)
        await self._user.state_put(_PEER + str(sender), cached.to_bytes())
