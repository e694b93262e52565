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

Limits (docs/protocol.md section 48): the user agent's
:class:`dchat_messaging.bots.StrangerGate` refuses a stranger's text over its
limits before it is stored; this module configures it
(``[node.bot_limits]``), names the bot to it whenever the book is read or
written (no bot: nothing is limited), and frees a stranger's slot when
:meth:`BotDoor.handed` is told its update went to the bot (a ``getUpdates``
answer, the webhook's queue), and every slot when the bot has taken every
update there is. ``GET /v1/bot`` shows :meth:`BotDoor.report`.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

import trio

from dchat_core import DchatError, IdentityId
from dchat_messaging.bots import BotApiError, StrangerGate, find_chat, stranger_name

from ._roles import user_role

if TYPE_CHECKING:
    from typing import Any

    from dchat_messaging import MessageReceived
    from dchat_messaging.bots import BotBook

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
        self._handed_through = 0  # the newest event cursor handed to the bot
        self.gate = StrangerGate()  # a stand-in off the user role: never named a bot
        if node.config.role == "user":  # after the request service's hook, which notes
            user = user_role(node).user
            user.on_message(self._received)
            self.gate = user.agent.strangers
            self.gate.limits = node.config.bot_limits
            shelf.seen.append(self._seen)
            self._seen(shelf.peek())

    def _seen(self, book: BotBook | None) -> None:
        self.gate.bot = None if book is None else IdentityId.parse(book.identity_id)

    def handed(self, events: list[dict[str, Any]], through: int, *, everything: bool) -> None:
        """The updates among ``events`` (event log entries) up to the cursor ``through``
        went to the bot: each stranger's text among them frees its sender's slot once.

        ``everything``: the bot has taken every update there is (its read reached
        the log's end), so no slot is held any more: those of texts deleted before
        the bot took them (an ignored or blocked request's) are freed too.
        """
        if everything:
            self.gate.settle()
            self._handed_through = max(self._handed_through, through)
            return
        for event in events:
            cursor, data = event["cursor"], event["data"]
            if event["kind"] != "message" or not self._handed_through < cursor <= through:
                continue
            if data.get("direction") == "in":
                self.gate.handed(str(data["peer_id"]))
        self._handed_through = max(self._handed_through, through)

    def report(self) -> dict[str, object]:
        """The strangers' limits and counts (``GET /v1/bot``'s ``strangers``)."""
        return self.gate.report()

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
