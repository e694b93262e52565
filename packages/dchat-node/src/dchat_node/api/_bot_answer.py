"""Every Bot API answer in Telegram's envelope, whatever went wrong behind it.

A Bot API client reads ``{"ok": false, "error_code", "description"}`` and
nothing else: the node's own error shape (``{"error": {...}}``), a FastAPI
validation answer or a bare 500 would break it. :func:`bot_answer` runs one
call and answers its result, a :class:`~dchat_messaging.bots.BotApiError`
as is, another dchat error by the status the node's API gives it
(:func:`._answers.error_of`; a conflict, a gone cursor or an invalid entity
read as Telegram's 400), and anything unforeseen as a 500 whose description
says nothing of the node's internals (its type is logged, never its text).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse

from dchat_core import DchatError
from dchat_messaging.bots import BotApiError, error_answer, ok_answer

from ._answers import error_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("bot_answer", "bot_error")

_log = logging.getLogger("dchat.bot.api")
_AS_BAD_REQUEST = frozenset({400, 409, 410, 422})


def bot_error(exc: Exception) -> BotApiError:
    """``exc`` as the Bot API refuses with it."""
    if isinstance(exc, BotApiError):
        return exc
    found = error_of(exc) if isinstance(exc, DchatError) else None
    if found is None:
        _log.warning("a Bot API call failed: %s", type(exc).__name__)
        return BotApiError(500, "Internal Server Error")
    status, _, message = found
    if status in _AS_BAD_REQUEST:
        return BotApiError(400, f"Bad Request: {message}")
    if status >= 500:
        return BotApiError(status, HTTPStatus(status).phrase)
    return BotApiError(status, f"{HTTPStatus(status).phrase}: {message}")


async def bot_answer(call: Callable[[], Awaitable[object]]) -> JSONResponse:
    """Run ``call``; its result or its refusal in Telegram's envelope."""
    try:
        result = await call()
    except Exception as exc:
        refused = bot_error(exc)
        return JSONResponse(error_answer(refused), status_code=refused.error_code)
    if isinstance(result, JSONResponse):  # a method that answers for itself
        return result
    return JSONResponse(ok_answer(result))
