"""An open bot answers strangers: its node accepts their message requests as they come.

A text from an identity that is not a contact makes a message request
(:mod:`dchat_node.user._requests`). While the bot's book says ``open`` (the
default, ``PUT /v1/bot/open``, ``dchat bot set-open on|off``), this module
accepts each such request right after the request service noted it, exactly
as ``POST /v1/requests/{id}/accept`` would (the same service call), under the
contact name :func:`dchat_messaging.bots.stranger_name` (``~`` marks it). The
stranger's message was already logged as a ``message`` event, so the bot gets
it as an update; its answer goes to a contact like any other.

The event feed wakes a long-polling bot before this hook runs, so a quick
answer can come while the request is still open: the send methods ask
:meth:`BotDoor.admit` for a chat they cannot find, which accepts an open
request of that chat then (one lock: never twice). A request without a card
(nothing to reply to) stays a request; a blocked sender makes none (its
messages are dropped before any hook).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

import trio

from dchat_core import DchatError, IdentityId
from dchat_messaging.bots import BotApiError, find_chat, stranger_name

from ._roles import user_role

if TYPE_CHECKING:
    from dchat_messaging import MessageReceived

    from .._runtime import Node
    from ._bots import BotShelf

__all__ = ("BotDoor",)

_log = logging.getLogger(__name__)
_DOORS: weakref.WeakKeyDictionary[Node, BotDoor] = weakref.WeakKeyDictionary()


class BotDoor:
    """Accepts strangers' message requests while the node's bot is open."""

    @classmethod
    def of(cls, node: Node, shelf: BotShelf) -> BotDoor:
        """The node's (made and registered once, however many apps are built on it)."""
        if node not in _DOORS:
            _DOORS[node] = cls(node, shelf)
        return _DOORS[node]

    def __init__(self, node: Node, shelf: BotShelf) -> None:
        self._node, self._shelf = node, shelf
        self._lock = trio.Lock()
        if node.config.role == "user":  # after the request service's hook, which notes
            user_role(node).user.on_message(self._received)

    async def _received(self, message: MessageReceived) -> None:
        if message.kind == "text" and not message.blocked and message.new:
            await self._accept(message.sender)

    async def admit(self, chat_id: int | str) -> bool:
        """Accept the open request ``chat_id`` names, if the bot is open; whether it did."""
        requests = user_role(self._node).requests
        try:
            who = find_chat(chat_id, [(i, i) for i in requests.pending()])
        except BotApiError:
            return False
        return await self._accept(IdentityId.parse(who))

    async def _accept(self, identity: IdentityId) -> bool:
        role = user_role(self._node)
        if str(identity) not in role.requests.pending():
            return False  # a contact, or ourselves: no file read
        book = await self._shelf.read()
        if book is None or not book.open:
            return False
        async with self._lock:
            card = role.user.senders.card(identity)
            if card is None or str(identity) not in role.requests.pending():
                return False  # no card to answer to, or accepted meanwhile
            name = stranger_name(card.name, str(identity))
            try:
                await role.requests.accept(str(identity), name)
            except DchatError as exc:  # e.g. the name is taken: it stays a request
                _log.warning("the bot could not accept a message request: %s", type(exc).__name__)
                return False
        return True
