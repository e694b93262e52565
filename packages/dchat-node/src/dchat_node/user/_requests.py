"""Message requests and blocking on a user node: the shell of :class:`MessageRequests`.

The policy (:class:`dchat_messaging.MessageRequests`, held by the user service
as ``senders``) decides: a text message from an identity that is neither a
contact nor ourselves makes its sender a *request*; the inbox
(``GET /v1/messages`` without a peer) leaves such messages out until the user
accepts (the card that came sealed with the message becomes a contact),
ignores (request and messages deleted) or blocks the sender. A blocked
identity's messages are still decrypted (the session must advance), then
dropped and counted (``refusals.BlockedSenderError``).

This shell answers the contact question for the policy and deletes
messages and adds contacts through the user service's contact book, and
logs each request change as a ``request`` event (in its commit). The
policy's :class:`~dchat_messaging.RequestError` carries a code (``not_found``,
``no_card``, ``corrupt_state``) that the API answers with.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from dchat_core import IdentityId

if TYPE_CHECKING:
    from dchat_identity import ContactCard
    from dchat_messaging import MessageReceived
    from dchat_storage import AsyncStore

    from ._service import UserService

__all__ = ("RequestService",)


class RequestService:
    """Message requests and the block list of one user node."""

    def __init__(self, user: UserService, store: AsyncStore) -> None:
        self._user = user
        self._store = store
        self._policy = user.senders
        user.on_message(self._received)
        user.book.add_card_source(self._policy.card)
        user.on_contact_added(self._contact_added)

    async def load(self) -> None:
        """Nothing to read: the user service loads the policy with the identity."""

    async def _contact_added(self, card: ContactCard) -> None:
        """A requester added as a contact (by hand, or accepted) is no longer a request."""
        await self._resolved(card.identity_id, "accepted")

    async def _received(self, message: MessageReceived) -> None:
        if message.kind != "text" or message.blocked or not message.new:
            return
        if self._user.engines.is_me(message.sender):
            return
        contact = message.contact  # read when the message was stored, if it was
        if contact is None:
            contact = await self._store.run(self._user.book.card_of, message.sender) is not None
        if contact:
            return  # a contact's message is no request (and needs no write to say so)
        note = functools.partial(self._policy.note, message, known=False)
        await self._logged(note, message.sender, "open")

    async def _resolved(self, identity: IdentityId, state: str) -> None:
        await self._logged(functools.partial(self._policy.resolve, identity), identity, state)

    async def _logged(self, change: functools.partial[bool], who: IdentityId, state: str) -> None:
        """Make a policy change; if it changed anything, log a ``request`` event in its commit."""
        event = {"identity_id": str(who), "state": state}
        log = self._store.db.events.append_after
        await self._store.run(log, change, "request", event, self._user.now())

    def pending(self) -> set[str]:
        """Identity ids with an open request (their messages stay out of the inbox)."""
        return self._policy.pending()

    async def listing(self) -> list[dict[str, Any]]:
        """Open requests, oldest first, with a preview of the latest message."""
        rows = []
        for request in self._policy.listing():
            messages = await self._store.run(self._user.book.messages, str(request.identity), 1)
            rows.append(request.row(messages[-1][0].body if messages else None))
        return rows

    async def accept(self, who: str, name: str) -> dict[str, Any]:
        """Make the requester a contact named ``name``."""
        identity = IdentityId.parse(who)
        card = self._policy.card_to_accept(identity)
        record = await self._user.add_contact(name, card.to_text())
        await self._store.run(self._policy.resolve, identity)  # (the contact hook did already)
        return {"name": record.name, "identity_id": record.identity_id}

    async def ignore(self, who: str) -> int:
        """Drop the request and delete its messages; returns how many were deleted."""
        identity = IdentityId.parse(who)
        self._policy.get(identity)
        deleted = await self._store.run(self._user.book.delete_messages, who)
        await self._resolved(identity, "ignored")
        return deleted

    async def block(self, who: str) -> int:
        """Block an identity (a requester or anyone): its messages are dropped from now on."""
        identity = IdentityId.parse(who)
        requested = await self._store.run(self._user.agent.block, identity)  # token, tags revoked
        self._user.agent.tags.notify()  # its tags' links stop
        self._user.put_auth_changed(self._user.identity)  # its token leaves the relays now
        if not requested:
            return 0
        deleted = await self._store.run(self._user.book.delete_messages, who)
        await self._resolved(identity, "blocked")
        return deleted

    async def unblock(self, who: str) -> None:
        """Let an identity's messages through again."""
        await self._store.run(self._policy.unblock, IdentityId.parse(who))

    def blocked(self) -> list[str]:
        """Blocked identity ids."""
        return sorted(str(i) for i in self._policy.blocked())
