"""The bot of a user node: management under ``/v1/bot`` and the Bot API under ``/bot<token>/``.

A bot is this node's identity: messages to it are end to end encrypted to this
node, like any user's. Management (the node's admin token): ``POST /v1/bot``
``{name, description?}`` makes the node's identity a bot and answers its first
token (shown once), ``GET /v1/bot``, ``POST /v1/bot/tokens {scopes}``, ``DELETE
/v1/bot/tokens/{id}``, ``PUT /v1/bot/commands {commands}``, ``PUT
/v1/bot/description {description}``, ``PUT /v1/bot/open {open}`` (whether
strangers' message requests are accepted: :mod:`._bot_open`), ``PUT
/v1/bot/groups {read, post, admin}`` (what the bot asks for in groups, shown
to users before they add it: ``dchat bot info``).

In groups the bot's node is a member like any (docs/protocol.md section 44):
``getUpdates`` and the webhook hand it each ``group_message`` another member
wrote that reached it (every one if its grant reads all, else the commands
sent to it) with a ``chat`` of ``type`` ``"group"`` and a negative id;
``sendMessage`` to that id posts to the group if its grant lets it.

The Bot API (docs/protocol.md section 34) follows Telegram's shape:
``GET|POST /bot<token>/<method>`` with query, JSON or form parameters, answered
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description"}``.
It passes the admin-token guard (its own token is checked here, against the
book's digests) and is left out of the OpenAPI document, whose error shape it
does not use. Inline keyboards, callback queries, command lists and inline
queries (``answerCallbackQuery``, ``answerInlineQuery``, the user's
``/v1/bots/{peer}/...``) are :mod:`._bot_inline`'s. The decisions (tokens, parameters, objects) are
:mod:`dchat_messaging.bots`'; this module reads and writes the book file
(``bot.json`` in the data directory, mode 0600, digests only) and the event log.
Webhooks (setWebhook, getWebhookInfo, deleteWebhook, ``/v1/bot/webhook`` and
the task that posts) are :mod:`._bot_webhooks`', added through
:meth:`BotApi.add_method`.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias
from urllib.parse import parse_qsl

import trio
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import JSONResponse  # noqa: TC002 (FastAPI reads the annotation)
from pydantic import BaseModel, ConfigDict, Field

from dchat_messaging import RequestError
from dchat_messaging.bots import (
    BotApiError,
    BotBook,
    BotCommand,
    BotGrant,
    bot_user,
    callback_update,
    chat_number,
    group_chat_number,
    group_message_update,
    group_sent_message,
    inline_update,
    parse_commands,
    parse_get_updates,
    parse_reply_markup,
    parse_send_message,
    sent_message,
)

from .._errors import NodeStateError
from ._bot_answer import bot_answer
from ._bot_inline import BotControls, add_bot_user_routes
from ._bot_media import BotMedia, add_file_route, form_params, read_body
from ._bot_open import BotDoor
from ._bot_webhooks import add_webhook_routes
from ._messages import traced_send
from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node
    from ._events import EventFeed

__all__ = ("add_bot_routes",)

MAX_PARAMS = 64 * 1024
"""Bytes of a Bot API call's body (a text is at most 4096 characters)."""
MAX_METHOD = 64
"""Characters of a method's name (longer: no such method)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBot(_Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=512)


class IssueToken(_Strict):
    scopes: list[str] = Field(default=["updates", "send", "manage"], min_length=1, max_length=3)


class Command(_Strict):
    command: str = Field(min_length=1, max_length=33)
    description: str = Field(min_length=1, max_length=256)


class SetCommands(_Strict):
    commands: list[Command] = Field(max_length=100)


class SetDescription(_Strict):
    description: str = Field(max_length=512)


class SetOpen(_Strict):
    open: bool


class AskGroups(_Strict):
    read: Literal["commands", "all"] = "commands"
    post: bool = True
    admin: bool = False


def _state_error(exc: BotApiError) -> NodeStateError:
    return NodeStateError("not_found" if exc.error_code == 404 else "invalid_request", str(exc))


class BotShelf:
    """The book file of this node's bot: read, changed and written under one lock."""

    def __init__(self, node: Node) -> None:
        self._path = node.config.data_dir / "bot.json"
        self._lock = trio.Lock()
        self.seen: list[Callable[[BotBook | None], None]] = []
        """Called with the book each time it is read or written (None: no bot)."""

    def peek(self) -> BotBook | None:
        """The book, read without the event loop (once, while the API is built; a damaged
        one is None here, and each Bot API call says it is damaged)."""
        try:
            return BotBook.from_json(self._path.read_bytes())
        except (OSError, BotApiError):
            return None

    async def read(self) -> BotBook | None:
        path = trio.Path(self._path)
        book = BotBook.from_json(await path.read_bytes()) if await path.exists() else None
        for seen in self.seen:
            seen(book)
        return book

    async def change(self, step: Callable[[BotBook], Any]) -> Any:
        """Apply ``step`` to the book and save it; ``step``'s answer."""
        async with self._lock:
            book = await self.read()
            if book is None:
                raise BotApiError(404, "Not Found: this node has no bot (dchat bot create)")
            answer = step(book)
            await self.write(book)
            return answer

    async def write(self, book: BotBook) -> None:
        data, target = book.to_json(), self._path

        def save() -> None:
            temp = target.with_suffix(".tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, target)

        await trio.to_thread.run_sync(save)
        for seen in self.seen:
            seen(book)


def add_bot_routes(app: FastAPI, node: Node, feed: EventFeed, auth: list[Depends]) -> None:
    """Add the management routes and the Bot API (see the module docstring) to ``app``."""
    shelf = BotShelf(node)
    door = BotDoor.of(node, shelf)  # strangers: accepted while open, always limited
    _add_management(app, node, shelf, feed, auth, door)
    controls = BotControls.of(node, shelf)  # inline keyboards, commands, inline queries
    add_bot_user_routes(app, controls, auth)
    api = BotApi(node, shelf, feed, controls)
    add_file_route(app, api.media, api.check)
    app.state.webhooks = add_webhook_routes(app, node, shelf, feed, api, auth)  # serve_api runs it

    @app.api_route("/bot{token}/{method}", methods=["GET", "POST"], include_in_schema=False)
    async def bot_call(request: Request, token: str, method: str) -> JSONResponse:
        async def run() -> object:
            await api.check(token, None)  # a stranger's body is not read
            params = await _params(request)
            if len(method) > MAX_METHOD:
                raise BotApiError(404, "Not Found: method not found")
            return await api.call(token, method.lower(), params)

        return await bot_answer(run)  # in Telegram's envelope, whatever fails


def _add_management(
    app: FastAPI, node: Node, shelf: BotShelf, feed: EventFeed, auth: list[Depends], door: BotDoor
) -> None:
    async def changed(step: Callable[[BotBook], Any]) -> Any:
        try:
            return await shelf.change(step)
        except BotApiError as exc:
            raise _state_error(exc) from None

    @app.post("/v1/bot", dependencies=auth, status_code=201)
    async def create_bot(body: CreateBot) -> dict[str, Any]:
        identity_id = str(user_role(node).user.card.identity_id)
        if await shelf.read() is not None:
            raise NodeStateError("bot_exists", "this node already has a bot")
        book = BotBook(body.name, identity_id, body.description, offset=await feed.head() + 1)
        token = book.issue(frozenset({"updates", "send", "manage"}), _secret(), time.time())
        await shelf.write(book)
        return {"bot": book.summary(), "token": token}

    @app.get("/v1/bot", dependencies=auth)
    async def show_bot() -> dict[str, Any]:
        book = await shelf.read()
        if book is None:
            raise NodeStateError("not_found", "this node has no bot (dchat bot create)")
        return book.summary() | {"strangers": door.report()}

    @app.post("/v1/bot/tokens", dependencies=auth, status_code=201)
    async def issue_token(body: IssueToken) -> dict[str, Any]:
        scopes = frozenset(body.scopes)
        token = await changed(lambda book: book.issue(scopes, _secret(), time.time()))
        return {"token": token, "token_id": int(token.split(":", 1)[0])}

    @app.delete("/v1/bot/tokens/{token_id}", dependencies=auth)
    async def revoke_token(
        token_id: Annotated[int, PathParam(ge=1, le=1_000_000)],
    ) -> dict[str, Any]:
        await changed(lambda book: book.revoke(token_id))
        return {"revoked": token_id}

    @app.put("/v1/bot/commands", dependencies=auth)
    async def set_commands(body: SetCommands) -> dict[str, Any]:
        try:
            commands = [
                BotCommand(c.command.removeprefix("/"), c.description) for c in body.commands
            ]
        except BotApiError as exc:
            raise _state_error(exc) from None
        await changed(lambda book: book.set_commands(commands))
        return {"commands": [c.__dict__ for c in commands]}

    @app.put("/v1/bot/description", dependencies=auth)
    async def set_description(body: SetDescription) -> dict[str, Any]:
        await changed(lambda book: book.set_description(body.description))
        return {"description": body.description}

    @app.put("/v1/bot/open", dependencies=auth)
    async def set_open(body: SetOpen) -> dict[str, Any]:
        await changed(lambda book: book.set_open(body.open))
        return {"open": body.open}

    @app.put("/v1/bot/groups", dependencies=auth)
    async def ask_groups(body: AskGroups) -> dict[str, Any]:
        grant = BotGrant.parse(body.read, post=body.post, admin=body.admin)
        await changed(lambda book: book.set_groups(grant))
        return {"groups": grant.to_json()}


def _secret() -> bytes:
    return secrets.token_bytes(32)


async def _params(request: Request) -> dict[str, object]:
    """The call's parameters: the query, then a JSON object or a urlencoded form body."""
    params: dict[str, object] = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":  # a file upload (``_bot_media``)
        return params | await form_params(request)
    body = await read_body(request, MAX_PARAMS)
    if not body.strip():
        return params
    if kind not in ("application/json", "application/x-www-form-urlencoded"):
        raise BotApiError(400, "Bad Request: send JSON or a urlencoded form")
    try:  # ValueError: not UTF-8, not JSON, an integer of over 4,300 digits
        if kind == "application/json":
            decoded = json.loads(body)
        else:
            decoded = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        raise BotApiError(400, "Bad Request: the body cannot be parsed") from None
    if not isinstance(decoded, dict):
        raise BotApiError(400, "Bad Request: the JSON body must be an object")
    return params | decoded


# A negative getUpdates offset reads the waiting updates forward, this many reads at most
# (each up to ten pages of 100 events).
_TAIL_READS = 1000
_QUERY_UPDATES = {"bot_callback": callback_update, "bot_inline": inline_update}
_Method: TypeAlias = "Callable[[BotBook, dict[str, object]], Awaitable[object]]"


class BotApi:
    """The Bot API's methods, each after the token is checked for its scope."""

    def __init__(self, node: Node, shelf: BotShelf, feed: EventFeed, controls: BotControls) -> None:
        self._node, self._shelf, self._feed, self._controls = node, shelf, feed, controls
        self.door = BotDoor.of(node, shelf)  # strangers, while the bot is open
        self.media = BotMedia(node, self.door.admit)
        self._methods: dict[str, tuple[str | None, _Method]] = self.media.methods() | {
            "getme": (None, self._get_me),
            "getupdates": ("updates", self._get_updates),
            "sendmessage": ("send", self._send_message),
            "setmycommands": ("manage", self._set_commands),
            "getmycommands": (None, self._get_commands),
            "answercallbackquery": ("send", controls.answer_callback),
            "answerinlinequery": ("send", controls.answer_inline),
        }

    def add_method(self, name: str, scope: str | None, run: _Method) -> None:
        """Serve the method ``name`` (lower case) with ``run``, for tokens with ``scope``."""
        self._methods[name] = (scope, run)

    def method(self, name: str) -> tuple[str | None, _Method]:
        """The scope and the function of the method ``name`` (to wrap it)."""
        return self._methods[name]

    async def check(self, token: str, scope: str | None) -> BotBook:
        """The bot's book, if ``token`` is live and has ``scope`` (else 401 / 403)."""
        book = await self._shelf.read()
        if book is None:
            raise BotApiError(401, "Unauthorized")
        book.authorize(token, scope)
        return book

    async def call(self, token: str, method: str, params: dict[str, object]) -> object:
        book = await self._shelf.read()
        if book is None:
            raise BotApiError(401, "Unauthorized")
        scope, run = self._methods.get(method, (None, None))
        book.authorize(token, scope)  # before saying whether the method exists
        if run is None:
            raise BotApiError(404, "Not Found: method not found")
        return await run(book, params)

    async def _get_me(self, book: BotBook, _: dict[str, object]) -> object:
        return bot_user(book.identity_id, book.name, reads_all=book.groups.read_all)

    async def _get_commands(self, book: BotBook, _: dict[str, object]) -> object:
        return [c.__dict__ for c in book.commands]

    async def _set_commands(self, _: BotBook, params: dict[str, object]) -> object:
        commands = parse_commands(params)
        await self._shelf.change(lambda book: book.set_commands(commands))
        return True

    async def _get_updates(self, book: BotBook, params: dict[str, object]) -> object:
        call = parse_get_updates(params)
        if call.offset is not None and call.offset < 0:  # the last -offset updates
            offset: int | None = await self._offset_from_end(book, -call.offset)
        else:
            # An offset past every update confirms them all, no more: kept as it came, it
            # would hide the updates of the next events (the offset only moves forward).
            offset = None if call.offset is None else min(call.offset, await self._feed.head() + 1)
        if offset is not None and offset > book.offset:
            await self._shelf.change(lambda b: b.confirm(offset))
        start = max(book.offset, offset or 0) - 1
        changed = self._feed.changed()  # armed before the read: no lost wake-up
        # The first read is outside the deadline: with timeout 0 (a short poll) the
        # deadline has passed at once and would cancel it, answering [] with updates waiting.
        updates = await self._updates_after(start, call.limit)
        if updates or call.timeout == 0:
            return updates
        with trio.move_on_after(call.timeout):
            while True:
                await changed.wait()
                changed = self._feed.changed()
                updates = await self._updates_after(start, call.limit)
                if updates:
                    return updates
        return []

    async def _offset_from_end(self, book: BotBook, count: int) -> int:
        """The offset that keeps only the last ``count`` updates waiting (Telegram's ``-count``).

        Reads the waiting updates forward (at most ``_TAIL_READS`` reads of up to
        ten event pages each); none waiting: the offset past every event.

        Raises:
            BotApiError: 400 if more updates wait than that bound lets us read.
        """
        tail: deque[int] = deque(maxlen=count)
        after = book.offset - 1
        for _ in range(_TAIL_READS):
            read: list[dict[str, Any]] = []
            updates, end = await self._read_updates(after, 100, read)
            tail.extend(int(update["update_id"]) for update in updates)
            if end or not read:
                return tail[0] if tail else await self._feed.head() + 1
            after = int(updates[-1]["update_id"]) if updates else int(read[-1]["cursor"])
        raise BotApiError(400, "Bad Request: too many updates wait; confirm them with an offset")

    async def updates_after(
        self, after: int, limit: int, *, handed: bool = True
    ) -> list[dict[str, Any]]:
        """The first ``limit`` updates after the event cursor ``after`` (the webhook's too).

        ``handed``: they go to the bot now (strangers' slots are freed), not read again.
        """
        if not handed:
            return (await self._read_updates(after, limit, []))[0]
        return await self._updates_after(after, limit)

    async def _updates_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        """The updates (see :meth:`updates_after`), handed to the bot: strangers' slots free."""
        read: list[dict[str, Any]] = []
        updates, end = await self._read_updates(after, limit, read)
        through = int(updates[-1]["update_id"]) if updates else after
        # At the end of the log every stranger's text is handed, or was deleted unhanded
        # (an ignored or blocked request's): then no slot is held any more.
        self.door.handed(read, through, everything=end)
        return updates

    async def _read_updates(
        self, after: int, limit: int, read: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        """The first ``limit`` updates after ``after``, and whether the log's end was read."""
        updates: list[dict[str, Any]] = []
        for _ in range(10):  # at most 10 pages of other events per call
            events = await self._feed.page(after, 100)
            read += events
            page = await self.media.updates(events)  # texts, files, locations, edits
            page += [  # a button pressed, an inline query
                _QUERY_UPDATES[e["kind"]](e["cursor"], e["data"])
                for e in events
                if e["kind"] in _QUERY_UPDATES
            ]
            me = str(user_role(self._node).user.card.identity_id)
            page += [  # what other members wrote in our groups (not our own posts)
                group_message_update(e["cursor"], e["data"])
                for e in events
                if e["kind"] == "group_message" and e["data"].get("by") != me
            ]
            updates += sorted(page, key=lambda update: int(update["update_id"]))
            end = len(events) < 100
            if len(updates) >= limit:
                return updates[:limit], end and len(updates) == limit
            if end or updates:
                return updates, end
            after = events[-1]["cursor"]
        return updates, False

    async def _contact(self, chat_id: int | str) -> Any:
        user = user_role(self._node).user
        peer = None
        for contact in await user.run(user.book.entries):
            if chat_id in (chat_number(contact.identity_id), contact.name, contact.identity_id):
                peer = contact
        return peer

    async def _group(self, chat_id: int | str) -> dict[str, Any] | None:
        """The listing of the group whose chat id is ``chat_id`` (None: not a group's)."""
        if not isinstance(chat_id, int) or chat_id >= 0:
            return None
        user = user_role(self._node).user
        for group in await user.run(user.agent.groups.listing):
            if group_chat_number(str(group["group_id"])) == chat_id:
                return dict(group)
        raise BotApiError(400, "Bad Request: chat not found")

    async def _post(self, book: BotBook, group: dict[str, Any], text: str) -> object:
        user = user_role(self._node).user
        gid = str(group["group_id"])
        try:
            mid = await user.act(user.agent.groups.send_text, gid, text)
        except RequestError as exc:  # our grant does not let us post, or we left
            raise BotApiError(403, f"Forbidden: {exc}") from None
        return group_sent_message(
            bytes(mid), bot_id=book.identity_id, bot_name=book.name, group_id=gid,
            title=str(group["title"]), text=text, at=time.time(),
        )  # fmt: skip

    async def _send_message(self, book: BotBook, params: dict[str, object]) -> object:
        call = parse_send_message(params)
        markup = parse_reply_markup(params)  # refused before anything is sent
        user = user_role(self._node).user
        group = await self._group(call.chat_id)
        if group is not None:  # a group's (negative) chat id: post there, if granted
            if markup is not None:
                raise BotApiError(400, "Bad Request: inline keyboards go to private chats only")
            return await self._post(book, group, call.text)
        peer = await self._contact(call.chat_id)
        if peer is None and await self.door.admit(call.chat_id):  # a stranger, accepted now
            peer = await self._contact(call.chat_id)
        if peer is None:
            raise BotApiError(400, "Bad Request: chat not found")
        mid = await traced_send(user, peer.identity_id, call.text)
        number = int.from_bytes(bytes(mid)[:6], "big")
        shown = {}
        if markup is not None:  # the keyboard goes right behind its text
            await self._controls.keyboard_sent(peer.identity_id, mid, number, call.text, markup)
            shown = {"reply_markup": markup.to_telegram()}
        return shown | sent_message(
            number,
            bot_id=book.identity_id,
            bot_name=book.name,
            peer_id=peer.identity_id,
            text=call.text,
            at=time.time(),
        )
