"""Message requests: mail from people who are not contacts, and blocking.

A text message from an identity that is not a contact (and not one of our own
devices) is stored as usual, but its sender becomes a *request*: the inbox
(``GET /v1/messages`` without a peer) leaves such messages out until the user
accepts the request (the sender's card, which the session's first message
carries sealed inside, becomes a contact), ignores it (the request and its
messages are deleted; a later message makes a new request) or blocks the
sender. A blocked identity's messages are still decrypted (the session must
advance) and then dropped and counted (``refusals.BlockedSenderError``).

Requests and the block list are kept sealed at rest in the settings table
(``user.requests``, ``user.blocked``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeLimits, IdentityId, canonical_decode, canonical_encode
from dchat_identity import ContactCard

from ._errors import NodeStateError

if TYPE_CHECKING:
    from dchat_messaging import MessageReceived

    from ._store import AsyncStore
    from ._user_service import UserService

__all__ = ("RequestService",)

_REQUESTS: Final = "user.requests"
_BLOCKED: Final = "user.blocked"
_LIMITS: Final = DecodeLimits(max_size=8 << 20, max_depth=3, max_items=1 << 16)
MAX_REQUESTS: Final = 1000


class RequestService:
    """Message requests and the block list of one user node."""

    def __init__(self, user: UserService, store: AsyncStore) -> None:
        self._user = user
        self._store = store
        self._requests: dict[bytes, dict[str, Any]] = {}
        user.on_message(self._received)
        user.on_card_lookup(self.card)
        user.on_contact_added(self._contact_added)

    async def load(self) -> None:
        """Read the stored requests and block list."""
        stored = await self._user.state_get(_REQUESTS)
        requests = {} if stored is None else canonical_decode(stored, _LIMITS)
        if not isinstance(requests, dict):
            raise NodeStateError("corrupt_state", "the stored message requests are malformed")
        self._requests = requests
        stored = await self._user.state_get(_BLOCKED)
        blocked = [] if stored is None else canonical_decode(stored, _LIMITS)
        if not isinstance(blocked, list):
            raise NodeStateError("corrupt_state", "the stored block list is malformed")
        self._user.block_senders(IdentityId(b) for b in blocked)

    async def _contact_added(self, card: ContactCard) -> None:
        """A requester added as a contact by hand is no longer a request."""
        if self._requests.pop(bytes(card.identity_id), None) is not None:
            await self._save()

    async def _save(self) -> None:
        await self._user.state_put(_REQUESTS, canonical_encode(self._requests))

    async def _received(self, message: MessageReceived) -> None:
        if message.kind != "text" or message.blocked or not message.new:
            return
        if await self._user.card_of(message.sender) is not None or self._user.is_me(message.sender):
            return
        key = bytes(message.sender)
        entry = self._requests.get(key)
        if entry is None:
            if len(self._requests) >= MAX_REQUESTS:
                return  # still stored and findable by id, just not listed as a request
            entry = {"first": message.sent_at_ms, "n": 0, "card": b""}
            self._requests[key] = entry
        entry["n"] += 1
        card = message.sender_card
        if card is not None and card.identity_id == message.sender:
            entry["card"] = card.to_bytes()
        await self._save()

    def pending(self) -> set[str]:
        """Identity ids with an open request (their messages stay out of the inbox)."""
        return {str(IdentityId(k)) for k in self._requests}

    def card(self, identity: IdentityId) -> ContactCard | None:
        """The card a requester sent, so the user can reply before accepting."""
        entry = self._requests.get(bytes(identity))
        if entry is None or not entry["card"]:
            return None
        return ContactCard.from_bytes(entry["card"])

    async def listing(self) -> list[dict[str, Any]]:
        """Open requests, oldest first, with a preview of the latest message."""
        rows = []
        for key, entry in sorted(self._requests.items(), key=lambda kv: kv[1]["first"]):
            who = str(IdentityId(key))
            messages = await self._user.messages(who, 1)
            card = ContactCard.from_bytes(entry["card"]) if entry["card"] else None
            rows.append(
                {
                    "identity_id": who,
                    "name": None if card is None else card.name,
                    "messages": entry["n"],
                    "first_ms": entry["first"],
                    "preview": messages[-1][0].body if messages else None,
                    "can_reply": card is not None,
                }
            )
        return rows

    def _entry(self, who: str) -> tuple[bytes, dict[str, Any]]:
        key = bytes(IdentityId.parse(who))
        entry = self._requests.get(key)
        if entry is None:
            raise NodeStateError("not_found", f"no message request from {who}")
        return key, entry

    async def accept(self, who: str, name: str) -> dict[str, Any]:
        """Make the requester a contact named ``name``."""
        key, entry = self._entry(who)
        if not entry["card"]:
            raise NodeStateError("no_card", "that request carried no card to add as a contact")
        record = await self._user.add_contact(name, ContactCard.from_bytes(entry["card"]).to_text())
        self._requests.pop(key, None)  # (the contact hook has dropped it already)
        await self._save()
        return {"name": record.name, "identity_id": record.identity_id}

    async def ignore(self, who: str) -> int:
        """Drop the request and delete its messages; returns how many were deleted."""
        key, _ = self._entry(who)
        deleted = await self._user.delete_messages(who)
        del self._requests[key]
        await self._save()
        return deleted

    async def block(self, who: str) -> int:
        """Block an identity (a requester or anyone): its messages are dropped from now on."""
        identity = IdentityId.parse(who)
        self._user.block_senders([identity])
        await self._save_blocked()
        deleted = 0
        if bytes(identity) in self._requests:
            deleted = await self._user.delete_messages(who)
            del self._requests[bytes(identity)]
            await self._save()
        return deleted

    async def unblock(self, who: str) -> None:
        """Let an identity's messages through again."""
        identity = IdentityId.parse(who)
        if identity not in self._user.blocked_senders():
            raise NodeStateError("not_found", f"{who} is not blocked")
        self._user.unblock_sender(identity)
        await self._save_blocked()

    def blocked(self) -> list[str]:
        """Blocked identity ids."""
        return sorted(str(i) for i in self._user.blocked_senders())

    async def _save_blocked(self) -> None:
        value = sorted(bytes(i) for i in self._user.blocked_senders())
        await self._user.state_put(_BLOCKED, canonical_encode(value))
