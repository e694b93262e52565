"""Inline keyboards, button presses, command lists and inline queries between two nodes.

Both ends are user nodes; the bot controls (docs/protocol.md, section 35)
travel end to end encrypted as control messages. The decisions are
:mod:`dchat_messaging.bots`' (which presses are real, which answers are
awaited); this module registers the control handlers, logs the events and
serves the routes:

* the bot's node: ``sendMessage`` with ``reply_markup`` records the keyboard
  and sends it behind the text (:meth:`BotControls.keyboard_sent`); a press
  becomes a ``bot_callback`` event (a ``callback_query`` update), an inline
  query a ``bot_inline`` event (an ``inline_query`` update); the Bot API's
  ``answerCallbackQuery`` and ``answerInlineQuery`` send the answers; a
  command-list question is answered from the bot's book at once.
* the user's node (admin token): ``POST /v1/bots/{peer}/press``,
  ``GET /v1/bots/{peer}/commands``, ``GET /v1/bots/{peer}/info`` (its
  commands, description and what it asks for in groups, from the same
  answer: shown before a user adds it to a group), ``POST /v1/bots/{peer}/inline`` and
  ``POST /v1/bots/{peer}/inline/{query_id}/pick`` (the chosen result goes as a
  normal text); received keyboards, answers, results and command lists are
  logged as ``bot_keyboard``, ``bot_answer``, ``bot_results`` and
  ``bot_commands`` events.

The handlers are registered when the API is built (the Bot API lives here),
before the node's first mailbox read completes its relay handshake.
Questions wait in memory: a restart forgets them, as a timeout does.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from typing import TYPE_CHECKING, Annotated, Any, Final

import trio
from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import IdentityId, InvalidIdError, MessageId
from dchat_messaging.bots import (
    ANSWER_KIND,
    COMMANDS_ASK_KIND,
    COMMANDS_KIND,
    INLINE_ASK_KIND,
    INLINE_RESULTS_KIND,
    KEYBOARD_KIND,
    PRESS_KIND,
    BotApiError,
    BotControlError,
    QueryBook,
    ReceivedKeyboards,
    SentKeyboard,
    SentKeyboards,
    decode_control,
    encode_control,
    parse_answer_callback,
    parse_answer_inline,
)
from dchat_storage import EngineStore

from .._errors import NodeStateError
from ._messages import traced_send
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_identity import ContactCard, Identity
    from dchat_messaging import MessageReceived
    from dchat_messaging.bots import BotBook, Keyboard

    from .._runtime import Node
    from ..user._service import UserService
    from ._bots import BotShelf

__all__ = ("BotControls", "add_bot_user_routes")

PRESS_TTL: Final = 30.0
"""Seconds a press waits for the bot's answer (Telegram's clients wait about as long)."""
INLINE_KEEP: Final = 600.0
"""Seconds inline results stay pickable after they arrived."""
MAX_WAIT: Final = 30
_CONTROLS: weakref.WeakKeyDictionary[Node, BotControls] = weakref.WeakKeyDictionary()


def _refused(exc: BotControlError) -> NodeStateError:
    codes = {"forged": "not_found", "unknown_query": "not_found", "busy": "rate_limited"}
    return NodeStateError(codes.get(exc.code, "invalid_request"), str(exc))


class BotControls:
    """One node's bot controls: handlers, the two query books, the waits."""

    @classmethod
    def of(cls, node: Node, shelf: BotShelf) -> BotControls:
        """The node's (made and registered once, however many apps are built on it)."""
        if node not in _CONTROLS:
            _CONTROLS[node] = cls(node, shelf)
        return _CONTROLS[node]

    def __init__(self, node: Node, shelf: BotShelf) -> None:
        self._node, self._shelf = node, shelf
        self._asked = QueryBook()  # the user's questions to bots
        self._waiting = QueryBook()  # the questions to our bot, until its program answers
        self._arrived: dict[bytes, trio.Event] = {}
        self._cards: dict[str, ContactCard] = {}
        store = EngineStore(node.store.db)
        self._store, self._sent = store, SentKeyboards(store)
        self._received = ReceivedKeyboards(store)
        if node.config.role == "user":
            handlers = {
                KEYBOARD_KIND: self._on_keyboard,
                PRESS_KIND: self._on_press,
                ANSWER_KIND: self._on_answer,
                COMMANDS_ASK_KIND: self._on_commands_ask,
                COMMANDS_KIND: self._on_commands,
                INLINE_ASK_KIND: self._on_inline,
                INLINE_RESULTS_KIND: self._on_results,
            }
            for kind, handler in handlers.items():
                user_role(node).user.agent.on_control(kind, handler)

    @property
    def _user(self) -> UserService:
        return user_role(self._node).user

    async def _log(self, kind: str, data: dict[str, Any], step: Any = None) -> None:
        """Append an event (after ``step``, in one transaction) and wake the followers.

        The log keeps small maps (a sealed row decodes at most 4 levels and 256
        items), so an event names what happened and the routes serve the rest:
        a keyboard is shown with its message, results are the inline route's answer.
        """
        db, now = self._node.store.db, self._user.now()

        def write() -> None:
            with self._store.transaction():
                if step is not None:
                    step()
                db.events.append(kind, data, now)

        await self._user.run(write)
        self._user.events_logged()

    async def _card(self, message: MessageReceived, identity: Identity) -> tuple[str, ContactCard]:
        """The sender of ``message`` to our main identity, and its card (to answer it)."""
        user = self._user
        if identity.identity_id != user.identity.identity_id:
            raise BotControlError("unknown_peer", "bot controls reach the node's own identity")
        peer = str(message.sender)
        card = await user.run(user.book.card_of, message.sender) or message.sender_card
        card = card or self._cards.get(peer)
        if card is None or str(card.identity_id) != peer:
            raise BotControlError("unknown_peer", "no card to answer the sender with")
        if len(self._cards) > 1024:
            self._cards.clear()
        self._cards[peer] = card
        return peer, card

    async def _name(self, peer: str) -> str | None:
        entries = await self._user.run(self._user.book.entries)
        return next((e.name for e in entries if e.identity_id == peer), None)

    # -- the bot's node -------------------------------------------------------------------

    async def keyboard_sent(
        self, peer: str, mid: MessageId, number: int, text: str, keyboard: Keyboard
    ) -> None:
        """``sendMessage`` sent ``text`` with ``keyboard``: record it, send it behind the text."""
        sent = SentKeyboard(peer, number, text, int(time.time()), keyboard)
        await self._user.run(self._sent.record, bytes(mid), sent)
        data = encode_control(KEYBOARD_KIND, {"id": bytes(mid), "kb": keyboard.to_wire()})
        card = await self._user.run(self._user.book.card_of, IdentityId.parse(peer))
        if card is not None:
            await self._user.send_control(card, KEYBOARD_KIND, data)

    async def _bot(self) -> BotBook:
        book = await self._shelf.read()
        if book is None:
            raise BotControlError("not_a_bot", "this node has no bot")
        return book

    async def _on_press(self, message: MessageReceived, identity: Identity) -> None:
        book = await self._bot()
        fields = decode_control(PRESS_KIND, message.data)
        peer, _ = await self._card(message, identity)
        sent = await self._user.run(self._sent.check, peer, fields["id"], fields["d"])
        self._waiting.open(fields["q"], peer, PRESS_KIND, now=self._user.now(), ttl=PRESS_TTL)
        data = {
            "query_id": fields["q"].hex(),
            "peer_id": peer,
            "peer_name": await self._name(peer),
            "message_number": sent.number,
            "text": sent.text,
            "sent_at": sent.sent_at,
            "reply_markup": json.dumps(sent.keyboard.to_telegram()),  # one item (see _log)
            "data": fields["d"],
            "bot_id": book.identity_id,
            "bot_name": book.name,
        }
        await self._log("bot_callback", data)

    async def _on_inline(self, message: MessageReceived, identity: Identity) -> None:
        await self._bot()
        fields = decode_control(INLINE_ASK_KIND, message.data)
        peer, _ = await self._card(message, identity)
        now = self._user.now()
        self._waiting.open(fields["q"], peer, INLINE_ASK_KIND, now=now, ttl=PRESS_TTL)
        data = {
            "query_id": fields["q"].hex(),
            "peer_id": peer,
            "peer_name": await self._name(peer),
            "query": fields["query"],
            "offset": fields["off"],
        }
        await self._log("bot_inline", data)

    async def _on_commands_ask(self, message: MessageReceived, identity: Identity) -> None:
        book = await self._bot()
        fields = decode_control(COMMANDS_ASK_KIND, message.data)
        _, card = await self._card(message, identity)
        listed = [[c.command, c.description] for c in book.commands]
        answer = {"q": fields["q"], "c": listed, "about": book.description}
        data = encode_control(COMMANDS_KIND, answer | {"grant": book.groups.to_wire()})
        await self._user.send_control(card, COMMANDS_KIND, data)

    async def _answered(self, query: bytes, kind: str) -> ContactCard:
        """The card of whoever asked ``query`` (the bot's program answers it once)."""
        try:
            peer = self._waiting.answer(query, None, kind, True, now=self._user.now())
        except BotControlError:
            raise BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            ) from None
        card = self._cards.get(peer)
        if card is None:
            raise BotApiError(400, "Bad Request: chat not found")
        return card

    async def answer_callback(self, _: BotBook, params: dict[str, object]) -> object:
        """The Bot API's ``answerCallbackQuery``."""
        call = parse_answer_callback(params)
        card = await self._answered(call.query, PRESS_KIND)
        await self._user.send_control(
            card, ANSWER_KIND, encode_control(ANSWER_KIND, call.to_wire())
        )
        return True

    async def answer_inline(self, _: BotBook, params: dict[str, object]) -> object:
        """The Bot API's ``answerInlineQuery``."""
        call = parse_answer_inline(params)
        card = await self._answered(call.query, INLINE_ASK_KIND)
        await self._user.send_control(card, INLINE_RESULTS_KIND, call.data)
        return True

    # -- the user's node ------------------------------------------------------------------

    async def _on_keyboard(self, message: MessageReceived, identity: Identity) -> None:
        fields = decode_control(KEYBOARD_KIND, message.data)
        peer, keyboard, mid = str(message.sender), fields["kb"], fields["id"]
        data = {
            "peer_id": peer,
            "message_id": str(MessageId(mid)),
            "buttons": len(keyboard.buttons()),
        }
        await self._log("bot_keyboard", data, lambda: self._received.accept(peer, mid, keyboard))

    def _take(self, message: MessageReceived, kind: str, answer: object, query: bytes) -> None:
        self._asked.answer(query, str(message.sender), kind, answer, now=self._user.now())
        arrived = self._arrived.get(query)
        if arrived is not None:
            arrived.set()

    async def _on_answer(self, message: MessageReceived, _: Identity) -> None:
        fields = decode_control(ANSWER_KIND, message.data)
        answer = {"text": fields["text"], "show_alert": fields["alert"], "url": fields.get("u")}
        self._take(message, ANSWER_KIND, answer, fields["q"])
        data = {"peer_id": str(message.sender), "query_id": fields["q"].hex(), **answer}
        await self._log("bot_answer", data)

    async def _on_commands(self, message: MessageReceived, _: Identity) -> None:
        fields = decode_control(COMMANDS_KIND, message.data)
        commands = [{"command": c, "description": d} for c, d in fields["c"]]
        grant = fields.get("grant")  # None from a bot node older than group grants
        info = {"commands": commands, "description": fields.get("about", ""),
                "groups": None if grant is None else grant.to_json()}  # fmt: skip
        self._take(message, COMMANDS_KIND, info, fields["q"])
        await self._log("bot_commands", {"peer_id": str(message.sender), "commands": commands})

    async def _on_results(self, message: MessageReceived, _: Identity) -> None:
        fields = decode_control(INLINE_RESULTS_KIND, message.data)
        self._take(message, INLINE_RESULTS_KIND, fields, fields["q"])
        data = {
            "peer_id": str(message.sender),
            "query_id": fields["q"].hex(),
            "results": len(fields["r"]),
            "next_offset": fields["next"],
        }
        await self._log("bot_results", data)

    async def ask(
        self, peer: str, kind: str, answer_kind: str, fields: dict[str, Any], wait: float
    ) -> tuple[bytes, Any]:
        """Send the question ``kind`` to the bot ``peer``; its answer if it came within ``wait``."""
        user, query = self._user, os.urandom(16)
        card = await user.run(user.book.find, peer)
        keep = INLINE_KEEP if kind == INLINE_ASK_KIND else 0.0
        peer_id, ttl = str(card.identity_id), max(wait, PRESS_TTL)
        try:
            data = encode_control(kind, {"q": query, **fields})
            self._asked.open(query, peer_id, answer_kind, now=user.now(), ttl=ttl, keep=keep)
        except BotControlError as exc:  # malformed (a query that is not text), busy
            raise _refused(exc) from None
        self._arrived[query] = arrived = trio.Event()
        try:
            await user.send_control(card, kind, data)
            with trio.move_on_after(wait):
                await arrived.wait()
        finally:
            del self._arrived[query]
        return query, self._asked.answered(query, peer_id)[1]

    async def press(self, peer: str, message_id: str, which: str, wait: float) -> dict[str, Any]:
        user = self._user
        card = await user.run(user.book.find, peer)
        try:
            mid = MessageId.parse(message_id)
        except InvalidIdError:
            raise NodeStateError("invalid_request", "not a message id") from None
        keyboard = await user.run(self._received.get, str(card.identity_id), bytes(mid))
        if keyboard is None:
            raise NodeStateError("not_found", "that message has no keyboard from this peer")
        try:
            button = keyboard.find(which)
        except BotControlError as exc:
            raise _refused(exc) from None
        if button.data is None:  # a link: nothing goes to the bot
            return {"query_id": None, "button": button.text, "url": button.url, "answer": None}
        fields = {"id": bytes(mid), "d": button.data}
        query, answer = await self.ask(peer, PRESS_KIND, ANSWER_KIND, fields, wait)
        return {"query_id": query.hex(), "button": button.text, "url": None, "answer": answer}

    async def pick(self, peer: str, query_id: str, result_id: str, to: str) -> dict[str, Any]:
        """Send the text of the result ``result_id`` of ``query_id`` to ``to``, a normal text."""
        user = self._user
        card = await user.run(user.book.find, peer)
        text = self._picked(str(card.identity_id), query_id, result_id)
        mid = await traced_send(user, to, text)
        return {"message_id": str(mid), "to": to, "text": text}

    def _picked(self, peer_id: str, query_id: str, result_id: str) -> str:
        try:
            query = bytes.fromhex(query_id)
        except ValueError:
            query = b""
        done, fields = self._asked.answered(query, peer_id)
        if not done:
            raise NodeStateError("not_found", "no results for that query (unknown or expired)")
        for article in fields["r"]:
            if article.result_id == result_id:
                return str(article.text)
        raise NodeStateError("not_found", "the bot gave no result with that id")


class Press(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str = Field(min_length=1, max_length=64)
    button: str = Field(min_length=1, max_length=128, description="number, text or data")
    wait: float = Field(default=0, ge=0, le=MAX_WAIT)


class InlineAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(max_length=256)
    offset: str = Field(default="", max_length=64)
    wait: float = Field(default=10, ge=0.1, le=MAX_WAIT)


class Pick(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result_id: str = Field(min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=128, description="the conversation (a contact)")


Peer = Annotated[str, PathParam(min_length=1, max_length=128)]


def _timeout(wait: float) -> NodeStateError:
    return NodeStateError("bot_timeout", f"the bot did not answer within {wait:g} s")


def add_bot_user_routes(app: FastAPI, controls: BotControls, auth: list[Depends]) -> None:
    """Add the user's routes (see the module docstring) to ``app``."""

    @app.post("/v1/bots/{peer}/press", dependencies=auth)
    async def press(peer: Peer, body: Press) -> dict[str, Any]:
        """Press a button of a bot's message; the bot's answer if it came within ``wait``."""
        return await controls.press(peer, body.message_id, body.button, body.wait)

    @app.get("/v1/bots/{peer}/commands", dependencies=auth)
    async def commands(
        peer: Peer, wait: Annotated[float, Query(ge=0.1, le=MAX_WAIT)] = 10
    ) -> dict[str, Any]:
        """Ask the bot for its commands (end to end) and wait for the list."""
        _, info = await controls.ask(peer, COMMANDS_ASK_KIND, COMMANDS_KIND, {}, wait)
        if info is None:
            raise _timeout(wait)
        return {"commands": info["commands"]}

    @app.get("/v1/bots/{peer}/info", dependencies=auth)
    async def info(
        peer: Peer, wait: Annotated[float, Query(ge=0.1, le=MAX_WAIT)] = 10
    ) -> dict[str, Any]:
        """Ask the bot what it is: commands, description, what it asks for in groups."""
        _, got = await controls.ask(peer, COMMANDS_ASK_KIND, COMMANDS_KIND, {}, wait)
        if got is None:
            raise _timeout(wait)
        return dict(got)

    @app.post("/v1/bots/{peer}/inline", dependencies=auth)
    async def inline(peer: Peer, body: InlineAsk) -> dict[str, Any]:
        """Run an inline query; the bot's results (pick one with ``.../pick``)."""
        fields = {"query": body.query, "off": body.offset}
        query, got = await controls.ask(
            peer, INLINE_ASK_KIND, INLINE_RESULTS_KIND, fields, body.wait
        )
        if got is None:
            raise _timeout(body.wait)
        results = [a.to_json() for a in got["r"]]
        return {"query_id": query.hex(), "results": results, "next_offset": got["next"]}

    @app.post("/v1/bots/{peer}/inline/{query_id}/pick", dependencies=auth, status_code=202)
    async def pick(
        peer: Peer, query_id: Annotated[str, PathParam(max_length=64)], body: Pick
    ) -> dict[str, Any]:
        """Send the chosen result's text to ``to`` as a normal message."""
        return await controls.pick(peer, query_id, body.result_id, body.to)
