"""``Bot``: the Bot API of the bot's node (docs/protocol.md section 34) over httpx.

Every call is ``POST <api_url>/bot<token>/<method>`` with a JSON body; the answer
is Telegram's envelope ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code", "description"}``. :meth:`Bot.call` does one such call and answers
the ``result`` (or raises the typed error); the typed methods are a line or two
each over it, so a method the node learns is one more small method here, and
any method can be called by name meanwhile. A file to send goes as
``multipart/form-data`` (the file a part with a ``filename``, the other
parameters text parts; structured ones as JSON text), and a file's bytes come
from ``GET <api_url>/file/bot<token>/<file_path>``, read up to a cap.

httpx runs on anyio, so a ``Bot`` works under asyncio and trio alike. The
token is a secret: it is never in ``repr``, and the filter installed on the
``httpx`` logger replaces it in the request lines httpx logs at INFO.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final, Self, TypeAlias, cast

import anyio
import httpx

from ._errors import (
    BotFileError,
    BotNetworkError,
    DchatBotsError,
    FileTooLargeError,
    MalformedReplyError,
    api_error,
)
from ._markup import InlineKeyboardMarkup, InlineQueryResultArticle, InputFile
from ._types import BotCommand, File, Message, Update, User

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Sequence
    from types import TracebackType

__all__ = ("Bot",)

MAX_REPLY: Final = 16 * 1024 * 1024
"""Bytes of one answer at most (100 updates of 4096 characters are well under 2 MiB)."""

MAX_PHOTO: Final = 10 * 1024 * 1024
"""Bytes of a photo to upload at most (the node's and Telegram's limit)."""

MAX_FILE: Final = 50 * 1024 * 1024
"""Bytes of another file to upload, and of a download by default, at most."""

MIN_FILE_TIMEOUT: Final = 60.0
"""Seconds an upload or a download gets at least (the node seals and relays the file)."""

FileInput: TypeAlias = "bytes | os.PathLike[str] | InputFile | str"
"""A file to send: bytes, a path (read here), an :class:`InputFile`, or a ``file_id`` (``str``)."""

_FILE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_./-]{0,127}")

_TOKEN_IN_PATH = re.compile(r"(?<!/)/bot[^/\s]+/")  # not "//bot.example"


class _HideBotTokens(logging.Filter):
    """Replaces ``/bot<token>/`` in the arguments of httpx's log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_hidden(arg) for arg in record.args)
        return True


def _hidden(value: object) -> object:
    if isinstance(value, httpx.URL | str) and "/bot" in str(value):
        return _TOKEN_IN_PATH.sub("/bot<token>/", str(value))
    return value


def _install_log_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideBotTokens) for f in logger.filters):
        logger.addFilter(_HideBotTokens())


class Bot:
    """A client of one bot's Bot API.

    Args:
        token: The bot token (``<n>:<secret>``, from ``dchat bot create`` or ``token``).
        api_url: The bot node's API address, e.g. ``http://127.0.0.1:8470``.
        timeout: Seconds for one call; a long poll gets its own timeout on top.
        transport: An httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        token: str,
        api_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not token or any(c in token for c in "/?#\r\n \t"):
            raise ValueError("a bot token is '<number>:<secret>' without '/', '?' or spaces")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._me: User | None = None
        _install_log_filter()

    def __repr__(self) -> str:
        return f"Bot(api_url={self.api_url!r}, token=<hidden>)"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def call(
        self, method: str, /, *, request_timeout: float | None = None, **params: Any
    ) -> Any:
        """Call ``method`` with ``params`` (``None`` values are left out); answers ``result``.

        ``request_timeout`` replaces the ``Bot``'s timeout for this call.

        Raises:
            BotApiError: The node answered ``ok: false`` (a subclass per error code).
            BotNetworkError: No answer (refused, reset, timed out).
            MalformedReplyError: The answer is not a Bot API envelope.
        """
        return await self._post(method, params, None, request_timeout)

    async def _post(
        self,
        method: str,
        params: Mapping[str, Any],
        files: dict[str, tuple[str, bytes, str | None]] | None,
        request_timeout: float | None,
    ) -> Any:
        body = {name: value for name, value in params.items() if value is not None}
        url = f"{self.api_url}/bot{self._token}/{method}"
        sent: dict[str, Any] = {"json": body}
        if files:  # multipart: text parts, structured values as JSON text
            sent = {"data": {k: _form_value(v) for k, v in body.items()}, "files": files}
        try:
            async with self._http.stream(
                "POST", url, timeout=request_timeout or self.timeout, **sent
            ) as response:
                content = await _read_capped(response, method)
        except httpx.TransportError as exc:  # never the URL: it holds the token
            raise _no_answer(method, exc) from None
        return _result(method, response.status_code, content)

    # -- the methods the node serves (docs/protocol.md section 34) ------------------------

    async def get_me(self) -> User:
        """``getMe``: the bot's own user (cached by :meth:`me`)."""
        self._me = User.from_json(await self.call("getMe"), "getMe")
        return self._me

    async def me(self) -> User:
        """The bot's user, asked once per ``Bot``."""
        return self._me if self._me is not None else await self.get_me()

    async def get_updates(
        self, offset: int | None = None, limit: int = 100, timeout: int = 0
    ) -> list[Update]:
        """``getUpdates``: waits up to ``timeout`` s; ``offset`` confirms every update below it.

        Raises :class:`MalformedReplyError` if any update is malformed (the
        dispatcher reads them one by one instead, to skip only the bad ones).
        """
        return [
            Update.from_json(u, "update")
            for u in await self.get_raw_updates(offset, limit, timeout)
        ]

    async def get_raw_updates(
        self, offset: int | None = None, limit: int = 100, timeout: int = 0
    ) -> list[object]:
        """``getUpdates`` as decoded JSON values, each still to be parsed."""
        result = await self.call(
            "getUpdates",
            request_timeout=self.timeout + timeout,
            offset=offset,
            limit=limit,
            timeout=timeout,
        )
        if not isinstance(result, list):
            raise MalformedReplyError("getUpdates: result must be an array")
        return result

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        **extra: Any,
    ) -> Message:
        """``sendMessage``: ``text`` to the chat ``chat_id`` (a chat number or a contact).

        ``reply_markup``: buttons under the message (their presses come back as
        ``callback_query`` updates).
        """
        markup = None if reply_markup is None else reply_markup.to_json()
        result = await self.call(
            "sendMessage", chat_id=chat_id, text=text, reply_markup=markup, **extra
        )
        return Message.from_json(result, "sendMessage")

    async def send_photo(
        self, chat_id: int | str, photo: FileInput, *, caption: str | None = None, **extra: Any
    ) -> Message:
        """``sendPhoto``: a photo (at most 10 MiB) as an encrypted attachment.

        ``photo`` is bytes, a path, an :class:`InputFile` (all uploaded) or a
        ``file_id`` of this node's (a ``str``, sent again without an upload).

        Raises:
            BotFileError: A path that cannot be read.
            FileTooLargeError: An upload over the limit (checked before sending).
        """
        return await self._send_file("sendPhoto", "photo", chat_id, photo, caption, extra)

    async def send_document(
        self, chat_id: int | str, document: FileInput, *, caption: str | None = None, **extra: Any
    ) -> Message:
        """``sendDocument``: any file (at most 50 MiB); ``document`` as in :meth:`send_photo`."""
        return await self._send_file("sendDocument", "document", chat_id, document, caption, extra)

    async def send_audio(
        self,
        chat_id: int | str,
        audio: FileInput,
        *,
        caption: str | None = None,
        duration: int | None = None,
        **extra: Any,
    ) -> Message:
        """``sendAudio``: music (at most 50 MiB; ``duration`` in seconds), as :meth:`send_photo`."""
        extra["duration"] = duration
        return await self._send_file("sendAudio", "audio", chat_id, audio, caption, extra)

    async def send_voice(
        self,
        chat_id: int | str,
        voice: FileInput,
        *,
        caption: str | None = None,
        duration: int | None = None,
        **extra: Any,
    ) -> Message:
        """``sendVoice``: a voice note (at most 50 MiB), as :meth:`send_photo`."""
        extra["duration"] = duration
        return await self._send_file("sendVoice", "voice", chat_id, voice, caption, extra)

    async def send_location(
        self, chat_id: int | str, latitude: float, longitude: float, **extra: Any
    ) -> Message:
        """``sendLocation``: a point (degrees; checked here: -90..90, -180..180, finite)."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # NaN fails too
            raise ValueError("latitude is -90..90 and longitude -180..180 degrees")
        result = await self.call(
            "sendLocation", chat_id=chat_id, latitude=latitude, longitude=longitude, **extra
        )
        return Message.from_json(result, "sendLocation")

    async def get_file(self, file_id: str) -> File:
        """``getFile``: the node fetches and checks the file, and answers where to download it."""
        return File.from_json(await self.call("getFile", file_id=file_id), "getFile")

    async def download_file(self, file: File | str, *, max_size: int = MAX_FILE) -> bytes:
        """The bytes of ``file`` (a :class:`File` from :meth:`get_file`, or its ``file_path``).

        Raises:
            FileTooLargeError: The file is over ``max_size`` bytes (said or read).
            BotFileError: No or a malformed ``file_path``.
            BotApiError: The node refused (401, 404, ... in the Bot API's envelope).
            BotNetworkError: No answer.
        """
        path = file.file_path if isinstance(file, File) else file
        if path is None or not _FILE_PATH.fullmatch(path) or ".." in path:
            raise BotFileError("download_file: no or a malformed file_path")
        url = f"{self.api_url}/file/bot{self._token}/{path}"
        timeout = max(self.timeout, MIN_FILE_TIMEOUT)
        try:
            async with self._http.stream("GET", url, timeout=timeout) as response:
                if response.status_code != httpx.codes.OK:
                    content = await _read_capped(response, "download_file")
                    _result("download_file", response.status_code, content)  # raises if refused
                    raise MalformedReplyError(
                        f"download_file: HTTP {response.status_code} without a file"
                    )
                said = response.headers.get("content-length", "")
                if said.isdecimal() and int(said) > max_size:
                    raise FileTooLargeError(f"download_file: the file is over {max_size} bytes")
                return await _read_capped(response, "download_file", max_size, FileTooLargeError)
        except httpx.TransportError as exc:
            raise _no_answer("download_file", exc) from None

    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, **extra: Any
    ) -> Message:
        """``editMessageText``: a new text for a message the bot sent; answers the edited one."""
        result = await self.call(
            "editMessageText", chat_id=chat_id, message_id=message_id, text=text, **extra
        )
        return Message.from_json(result, "editMessageText")

    async def delete_message(self, chat_id: int | str, message_id: int) -> bool:
        """``deleteMessage``: deletes a message the bot sent, for everyone."""
        return await self.call("deleteMessage", chat_id=chat_id, message_id=message_id) is True

    async def answer_callback_query(
        self,
        callback_query_id: str,
        text: str | None = None,
        *,
        show_alert: bool = False,
        url: str | None = None,
    ) -> bool:
        """``answerCallbackQuery``: the answer to a button press (once, within 30 s)."""
        result = await self.call(
            "answerCallbackQuery",
            callback_query_id=callback_query_id,
            text=text,
            show_alert=show_alert or None,
            url=url,
        )
        return result is True

    async def answer_inline_query(
        self,
        inline_query_id: str,
        results: Sequence[InlineQueryResultArticle],
        *,
        next_offset: str | None = None,
    ) -> bool:
        """``answerInlineQuery``: at most 50 article results (once, within 30 s)."""
        result = await self.call(
            "answerInlineQuery",
            inline_query_id=inline_query_id,
            results=[r.to_json() for r in results],
            next_offset=next_offset,
        )
        return result is True

    async def set_my_commands(self, commands: Mapping[str, str] | Iterable[BotCommand]) -> bool:
        """``setMyCommands``: the commands the bot lists (name -> description, or a list)."""
        if isinstance(commands, Mapping):
            commands = [BotCommand(name, text) for name, text in commands.items()]
        listed = [c.to_json() for c in commands]
        return await self.call("setMyCommands", commands=listed) is True

    async def get_my_commands(self) -> list[BotCommand]:
        """``getMyCommands``."""
        result = await self.call("getMyCommands")
        if not isinstance(result, list):
            raise MalformedReplyError("getMyCommands: result must be an array")
        return [BotCommand.from_json(c, f"getMyCommands[{i}]") for i, c in enumerate(result)]

    async def delete_webhook(self) -> bool:
        """``deleteWebhook`` (the updates come by ``getUpdates``)."""
        return await self.call("deleteWebhook") is True

    async def _send_file(
        self,
        method: str,
        kind: str,
        chat_id: int | str,
        file: FileInput,
        caption: str | None,
        extra: dict[str, Any],
    ) -> Message:
        params = {"chat_id": chat_id, "caption": caption, **extra}
        if isinstance(file, str):  # a file_id: JSON, no upload
            result = await self._post(method, {**params, kind: file}, None, None)
        else:
            cap = MAX_PHOTO if kind == "photo" else MAX_FILE
            upload = await _input_file(file, kind, cap)
            files = {kind: (upload.filename, upload.content, upload.mime_type)}
            timeout = max(self.timeout, MIN_FILE_TIMEOUT)
            result = await self._post(method, params, files, timeout)
        return Message.from_json(result, method)


async def _input_file(file: bytes | os.PathLike[str] | InputFile, kind: str, cap: int) -> InputFile:
    """The upload ``file`` stands for, refused before reading if over ``cap`` bytes."""
    if isinstance(file, bytes | bytearray | memoryview):
        file = InputFile(bytes(file), kind)
    elif not isinstance(file, InputFile):
        path = anyio.Path(os.fspath(file))
        try:
            if (await path.stat()).st_size > cap:
                raise FileTooLargeError(f"{path.name}: over {cap} bytes, the {kind} limit")
            file = InputFile(await path.read_bytes(), path.name or kind)
        except OSError as exc:
            raise BotFileError(f"{path.name}: cannot be read ({type(exc).__name__})") from None
    if len(file.content) > cap:
        raise FileTooLargeError(f"{file.filename}: over {cap} bytes, the {kind} limit")
    return file


def _form_value(value: object) -> str:
    """A parameter as a multipart text part: text as is, anything else as JSON text."""
    return value if isinstance(value, str) else json.dumps(value, allow_nan=False)


def _no_answer(method: str, exc: httpx.TransportError) -> BotNetworkError:
    reason = _hidden(f"{type(exc).__name__}: {exc}")  # never the URL: it holds the token
    return BotNetworkError(f"{method}: no answer from the bot's node ({reason})")


async def _read_capped(
    response: httpx.Response,
    method: str,
    cap: int | None = None,
    error: type[DchatBotsError] = MalformedReplyError,
) -> bytes:
    cap = MAX_REPLY if cap is None else cap  # read now: tests lower it
    chunks, size = [], 0
    chunks_of = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())  # it is one
    async with aclosing(chunks_of) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > cap:
                raise error(f"{method}: the answer is over {cap} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _result(method: str, status: int, content: bytes) -> Any:
    try:
        envelope = json.loads(content)
    except (ValueError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("ok"), bool):
        raise MalformedReplyError(f"{method}: HTTP {status} without a Bot API envelope")
    if envelope["ok"]:
        if "result" not in envelope:
            raise MalformedReplyError(f"{method}: ok without a result")
        return envelope["result"]
    code, description = envelope.get("error_code"), envelope.get("description")
    if not isinstance(code, int) or isinstance(code, bool):
        code = status
    if not isinstance(description, str):
        description = f"HTTP {status}"
    raise api_error(code, description[:1000])
