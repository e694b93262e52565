"""The Bot API's files, locations, edits and deletes on the bot's node (docs/protocol.md §34).

Beside ``_bots.py`` (tokens, texts, updates): this module adds the methods
``sendPhoto``, ``sendDocument``, ``sendAudio``, ``sendVoice`` (a multipart
upload or a ``file_id``), ``sendLocation``, ``editMessageText``,
``deleteMessage`` and ``getFile``, the download route
``/file/bot<token>/<file_path>``, and the Telegram updates of received files,
locations and edits. Every file goes the node's own attachment path
(``AttachmentService``: stored by the upload rules, sealed, pushed to the
home relay, sent as an encrypted attachment), every edit and delete the
conversation's (``converse.edit`` / ``delete_for_everyone``), so a bot's
message is a user's message. The decisions (parameters, numbers, objects)
are :mod:`dchat_messaging.bots`'; a refusal is a :class:`BotApiError`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Final

from fastapi.responses import JSONResponse, StreamingResponse

from dchat_core import CallerError, DchatError, MessageId, TransportError
from dchat_messaging.bots import (
    MAX_FORM,
    MEDIA_METHODS,
    BotApiError,
    edited_update,
    error_answer,
    file_object,
    find_chat,
    incoming_update,
    media_message,
    message_number,
    parse_delete_message,
    parse_edit_text,
    parse_file_path,
    parse_form,
    parse_get_file,
    parse_send_location,
    parse_send_media,
)
from dchat_storage import QuotaExceededError, detect_media_type
from dchat_storage.lowlevel import UploadTooLargeError

from ._bot_answer import bot_error
from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import FastAPI, Request

    from dchat_messaging.bots import BotBook, SendMedia
    from dchat_messaging.lowlevel import AttachmentEntry

    from .._runtime import Node
    from ..user._attachments import AttachmentService

__all__ = ("BotMedia", "add_file_route", "read_body")

SCAN: Final = 1000
"""The newest messages of a chat searched for a ``message_id`` (older ones: not found)."""
_GENERIC: Final = ("", "application/octet-stream")
MAX_FILE_PATH: Final = 128
"""Characters of a ``file_path`` (``<folder>/<file_id>``); longer names no file."""


async def read_body(request: Request, cap: int) -> bytes:
    """The request body, refused with 413 past ``cap`` bytes (the rest is drained, not kept)."""
    body, over = bytearray(), False
    async for chunk in request.stream():
        over = over or len(body) + len(chunk) > cap
        if not over:
            body += chunk
    if over:
        raise BotApiError(413, "Request Entity Too Large")
    return bytes(body)


async def form_params(request: Request) -> dict[str, object]:
    """A ``multipart/form-data`` call's parameters (files as ``Upload``)."""
    body = await read_body(request, MAX_FORM)
    return dict(parse_form(body, request.headers.get("content-type", "")))


def _refusal(exc: DchatError) -> BotApiError:
    """A failed send as Telegram's envelope (never the node's internals)."""
    if isinstance(exc, UploadTooLargeError):
        return BotApiError(413, "Request Entity Too Large")
    if isinstance(exc, QuotaExceededError):
        return BotApiError(400, "Bad Request: the bot's attachment quota is used up")
    if isinstance(exc, TransportError):
        return BotApiError(502, "Bad Gateway: the home relay cannot be reached now")
    if isinstance(exc, CallerError | ValueError):
        return BotApiError(400, f"Bad Request: {exc}")
    return BotApiError(500, "Internal Server Error")


class BotMedia:
    """The methods above, and the updates of received files and edits."""

    def __init__(
        self, node: Node, admit: Callable[[int | str], Awaitable[bool]] | None = None
    ) -> None:
        self._node = node
        self._admit = admit  # accepts a stranger's open request (an open bot, ``_bot_open``)

    def methods(self) -> dict[str, tuple[str | None, Any]]:
        """Method name (lower-case): (the scope it needs, the call)."""
        methods: dict[str, tuple[str | None, Any]] = {
            name: ("send", self._media_call(name)) for name in MEDIA_METHODS
        }
        return methods | {
            "sendlocation": ("send", self._send_location),
            "editmessagetext": ("send", self._edit_text),
            "deletemessage": ("send", self._delete),
            "getfile": ("updates", self._get_file),
        }

    def _service(self) -> AttachmentService:
        return user_role(self._node).attachments

    async def _chat(self, chat_id: int | str) -> str:
        user = user_role(self._node).user
        contacts = await user.run(user.book.entries)
        try:
            return find_chat(chat_id, [(c.identity_id, c.name) for c in contacts])
        except BotApiError:
            if self._admit is None or not await self._admit(chat_id):
                raise
        contacts = await user.run(user.book.entries)  # the stranger is a contact now
        return find_chat(chat_id, [(c.identity_id, c.name) for c in contacts])

    # -- sending --------------------------------------------------------------------------

    def _media_call(self, method: str) -> Callable[[BotBook, dict[str, object]], Awaitable[object]]:
        async def call(book: BotBook, params: dict[str, object]) -> object:
            return await self._send_media(book, parse_send_media(method, params))

        return call

    async def _send_media(self, book: BotBook, call: SendMedia) -> object:
        peer = await self._chat(call.chat_id)
        if call.upload is not None:
            data, name = call.upload.data, call.upload.filename
            media_type = call.upload.media_type.split(";")[0].strip().lower()
            if media_type in _GENERIC and call.kind != "document":
                media_type = detect_media_type(data[:4096]) or "application/octet-stream"
        else:
            assert call.source is not None
            entry = await self._stored(call.source, "wrong file identifier/HTTP URL specified")
            data = await self._content(entry)
            name, media_type = entry.attachment.name, entry.attachment.media_type
        service = self._service()
        try:
            mid = await service.send(
                peer,
                io.BytesIO(data),
                call.kind,
                media_type or "application/octet-stream",
                name=name,
                caption=call.caption,
                duration_ms=call.duration_ms,
            )
        except DchatError as exc:
            raise _refusal(exc) from None
        return await self._sent(book, peer, mid)

    async def _sent(self, book: BotBook, peer: str, mid: bytes) -> object:
        entry = await self._service().entry(mid)
        now = user_role(self._node).user.now()
        return media_message(
            mid,
            bot_id=book.identity_id,
            bot_name=book.name,
            peer_id=peer,
            at=now,
            attachment=entry.attachment,
        )

    async def _send_location(self, book: BotBook, params: dict[str, object]) -> object:
        call = parse_send_location(params)
        peer = await self._chat(call.chat_id)
        mid = await self._service().send_location(peer, call.latitude, call.longitude)
        return await self._sent(book, peer, mid)

    # -- files ----------------------------------------------------------------------------

    async def _stored(self, mid: bytes, wrong: str) -> AttachmentEntry:
        """The attachment of message ``mid``, fetched and opened if still on the relay."""
        service = self._service()
        try:
            entry = await service.fetch(mid)
        except TransportError:
            raise BotApiError(502, "Bad Gateway: the file's relay cannot be reached now") from None
        except DchatError:
            raise BotApiError(400, f"Bad Request: {wrong}") from None
        if entry.state == "refused":
            raise BotApiError(400, f"Bad Request: the file was refused ({entry.code})")
        if entry.attachment.is_location:
            raise BotApiError(400, "Bad Request: a location has no file")
        return entry

    async def _content(self, entry: AttachmentEntry) -> bytes:
        if entry.attachment.size > MAX_FORM:
            raise BotApiError(400, "Bad Request: file is too big")
        return b"".join([chunk async for chunk in self._service().content(entry)])

    async def _get_file(self, _: BotBook, params: dict[str, object]) -> object:
        mid = parse_get_file(params)
        entry = await self._stored(mid, "invalid file_id")
        return file_object(mid, entry.attachment)

    async def download(self, file_path: str) -> StreamingResponse:
        """The bytes of the file ``file_path`` names (after the token was checked)."""
        mid = parse_file_path(file_path)
        entry = await self._stored(mid, "invalid file_id")
        headers = {"content-length": str(entry.attachment.size)}
        content = self._service().content(entry)
        return StreamingResponse(content, media_type=entry.attachment.media_type, headers=headers)

    # -- edits and deletes ----------------------------------------------------------------

    async def _own(self, peer: str, number: int, what: str) -> tuple[bytes, float, str]:
        """The bot's message ``number`` in the chat with ``peer``: id, date and its text."""
        db, user = self._node.store.db, user_role(self._node).user
        keeper = self._service().keeper

        def find() -> tuple[bytes, float, str, str, bool] | None:
            for record in db.messages.list(peer, SCAN):
                if message_number(record.message_id) == number:
                    text = user.agent.conversations.text_of(record)
                    has_file = keeper.book.get(record.message_id) is not None
                    return record.message_id, record.sent_at, record.direction, text, has_file
            return None

        found = await user.run(find)
        if found is None:
            raise BotApiError(400, f"Bad Request: message to {what} not found")
        mid, sent_at, direction, text, has_file = found
        if direction != "out":
            raise BotApiError(400, f"Bad Request: message can't be {what.rstrip('e')}ed")
        if has_file and what == "edit":
            raise BotApiError(400, "Bad Request: there is no text in the message to edit")
        return mid, sent_at, text

    async def _edit_text(self, book: BotBook, params: dict[str, object]) -> object:
        call = parse_edit_text(params)
        peer = await self._chat(call.chat_id)
        mid, sent_at, text = await self._own(peer, call.message_id, "edit")
        if text == call.text:
            raise BotApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        user = user_role(self._node).user
        await user.act(user.agent.converse.edit, peer, MessageId(mid), call.text)
        return media_message(
            mid,
            bot_id=book.identity_id,
            bot_name=book.name,
            peer_id=peer,
            at=sent_at,
            text=call.text,
            edited_at=user.now(),
        )

    async def _delete(self, _: BotBook, params: dict[str, object]) -> object:
        call = parse_delete_message(params)
        peer = await self._chat(call.chat_id)
        mid, _sent, _text = await self._own(peer, call.message_id, "delete")
        user = user_role(self._node).user
        await user.act(user.agent.converse.delete_for_everyone, peer, MessageId(mid))
        return True

    # -- updates --------------------------------------------------------------------------

    async def updates(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Telegram updates among ``events`` (a page of the event log), in order.

        A received message (a text, a file, a location) is a ``message``; a
        contact's edit of their text an ``edited_message``. One worker trip
        reads the attachments and the edited messages of the page.
        """
        received = [
            bytes(MessageId.parse(e["data"]["message_id"]))
            for e in events
            if e["kind"] == "message" and e["data"].get("direction") == "in"
        ]
        edited = [bytes(MessageId.parse(e["data"]["ids"][0])) for e in events if _peer_edit(e)]
        if not received and not edited:
            return []
        db, user = self._node.store.db, user_role(self._node).user
        book = self._service().keeper.book

        def read() -> tuple[dict[bytes, Any], dict[bytes, Any], dict[str, str]]:
            files = {mid: book.get(mid) for mid in received}
            originals = {mid: db.messages.get(mid) for mid in edited}
            names = {c.identity_id: c.name for c in user.book.entries()}
            return files, originals, names

        files, originals, names = await user.run(read)
        updates = []
        for event in events:
            data, cursor = event["data"], event["cursor"]
            if event["kind"] == "message" and data.get("direction") == "in":
                mid = bytes(MessageId.parse(data["message_id"]))
                entry = files.get(mid)
                update = incoming_update(
                    cursor,
                    mid,
                    peer_id=data["peer_id"],
                    peer_name=data["peer_name"],
                    text=data["text"] or "",
                    sent_at=data["sent_at"],
                    attachment=None if entry is None else entry.attachment,
                )
                updates.append(update)
            elif _peer_edit(event):
                mid = bytes(MessageId.parse(data["ids"][0]))
                original = originals.get(mid)
                if original is None or original.direction != "in":
                    continue  # deleted since, or not theirs
                update = edited_update(
                    cursor,
                    mid,
                    peer_id=data["peer"],
                    peer_name=names.get(data["peer"]),
                    text=str(data["text"]),
                    sent_at=original.sent_at,
                    edited_at=event["at"],
                )
                updates.append(update)
        return updates


def _peer_edit(event: dict[str, Any]) -> bool:
    """An ``edit`` event of a contact's own text (not one of ours from another device)."""
    data = event["data"]
    return bool(
        event["kind"] == "edit"
        and data.get("by") == data.get("peer")
        and isinstance(data.get("ids"), list)
        and len(data["ids"]) == 1
        and isinstance(data.get("text"), str)
    )


def add_file_route(
    app: FastAPI, media: BotMedia, check: Callable[[str, str | None], Awaitable[object]]
) -> None:
    """``GET /file/bot<token>/<file_path>``: a file's bytes (``check``: the token, its scope)."""

    @app.get("/file/bot{token}/{file_path:path}", include_in_schema=False, response_model=None)
    async def bot_file(token: str, file_path: str) -> StreamingResponse | JSONResponse:
        try:
            await check(token, "updates")
            if len(file_path) > MAX_FILE_PATH:
                raise BotApiError(404, "Not Found: no such file")
            return await media.download(file_path)
        except Exception as exc:
            refused = bot_error(exc)
            return JSONResponse(error_answer(refused), status_code=refused.error_code)
