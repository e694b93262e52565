"""``Bot``: the Bot API of the bot's node (docs/protocol.md section 34) over httpx.

Every call is ``POST <api_url>/bot<token>/<method>`` with a JSON body; the answer
is Telegram's envelope ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code", "description"}``. :meth:`Bot.call` does one such call and answers
the ``result`` (or raises the typed error); the typed methods are a line or two
each over it, so a method the node learns (``sendPhoto``, ``answerCallbackQuery``)
is one more small method here, and any method can be called by name meanwhile.

httpx runs on anyio, so a ``Bot`` works under asyncio and trio alike. The
token is a secret: it is never in ``repr``, and the filter installed on the
``httpx`` logger replaces it in the request lines httpx logs at INFO.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final, Self, cast

import httpx

from ._errors import BotNetworkError, MalformedReplyError, api_error
from ._types import BotCommand, Message, Update, User

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable
    from types import TracebackType

__all__ = ("Bot",)

MAX_REPLY: Final = 16 * 1024 * 1024
"""Bytes of one answer at most (100 updates of 4096 characters are well under 2 MiB)."""

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
        body = {name: value for name, value in params.items() if value is not None}
        url = f"{self.api_url}/bot{self._token}/{method}"
        try:
            async with self._http.stream(
                "POST", url, json=body, timeout=request_timeout or self.timeout
            ) as response:
                content = await _read_capped(response, method)
        except httpx.TransportError as exc:  # never the URL: it holds the token
            reason = _hidden(f"{type(exc).__name__}: {exc}")
            raise BotNetworkError(f"{method}: no answer from the bot's node ({reason})") from None
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

    async def send_message(self, chat_id: int | str, text: str, **extra: Any) -> Message:
        """``sendMessage``: ``text`` to the chat ``chat_id`` (a chat number or a contact)."""
        result = await self.call("sendMessage", chat_id=chat_id, text=text, **extra)
        return Message.from_json(result, "sendMessage")

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


async def _read_capped(response: httpx.Response, method: str) -> bytes:
    chunks, size = [], 0
    chunks_of = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())  # it is one
    async with aclosing(chunks_of) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > MAX_REPLY:
                raise MalformedReplyError(f"{method}: the answer is over {MAX_REPLY} bytes")
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
