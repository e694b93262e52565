"""The API's front door: the bearer token, then the body size, before any route runs.

Theory of operation. Both guards are pure ASGI middleware wrapped around the
whole FastAPI app, outermost first:

* :class:`RequireToken` compares the ``Authorization`` header with
  ``Bearer <token>`` in constant time (:func:`hmac.compare_digest`) as soon as
  the request head has arrived. A request without the right token is answered
  ``401 unauthorized`` (the API's one error shape, with ``WWW-Authenticate:
  Bearer``) and its body is never read: neither a 64 MiB upload nor malformed
  JSON gets further than the headers, and an unknown path answers 401 too, so
  nothing about the routes leaks to a caller without the token. Only the
  paths in ``open_paths`` (``/health``) and under ``open_prefix`` (the browser
  app's files, ``/app/``, and the Bot API, ``/bot<token>/``, which checks its
  own tokens) pass without it; ``/openapi.json`` is not one of
  them. A request without an ``Authorization`` header may instead carry the
  browser app's session cookie, which ``sessions`` admits only for the app's
  routes and from the app's own origin (:mod:`._webapp`). Other ASGI scopes
  than ``http`` (websockets) are closed unless they carry the token; ``lifespan`` passes through.
* :class:`LimitBody` then refuses a body over ``max_body`` bytes with ``413
  body_too_large``: at once when ``Content-Length`` says so, and otherwise
  (chunked bodies) while counting what the app reads: the chunk that crosses
  the cap is never handed to the app; the guard answers 413 itself and drops
  whatever the app tries to send after that. Paths in ``large`` (attachment
  uploads, which the storage upload rules limit per kind as they stream in)
  are capped at ``large_body`` instead, as are paths under ``large_prefix``
  (the Bot API, whose uploads ``_bot_media`` limits to Telegram's sizes).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._webapp import AppSessions

__all__ = ("LimitBody", "RequireToken", "error_body")


def error_body(code: str, message: str) -> bytes:
    """The API's error shape as JSON bytes."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class RequireToken:
    """Answer 401 to every request without ``Bearer <token>``, before its body is read."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        open_paths: Collection[str],
        open_prefix: str | tuple[str, ...] | None = None,
        sessions: AppSessions | None = None,
    ) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()
        self._open = frozenset(open_paths)
        self._prefix, self._sessions = open_prefix, sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            await self._app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            body = error_body("unauthorized", "missing or wrong bearer token")
            await _answer(send, 401, body, (b"www-authenticate", b"Bearer"))

    def _allowed(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if scope["type"] == "http" and (
            path in self._open or (self._prefix is not None and path.startswith(self._prefix))
        ):
            return True
        given = _header(scope, b"authorization")
        if given is not None:
            return hmac.compare_digest(given, self._expected)
        if self._sessions is None or scope["type"] != "http":
            return False
        headers = {bytes(k).lower(): bytes(v) for k, v in scope.get("headers", ())}
        port = int((scope.get("server") or ("", 0))[1] or 0)
        return self._sessions.admits(scope["method"], path, port, headers)


class _TooLarge(Exception):
    """The body went over the cap (raised into the app's read, which then fails)."""


class LimitBody:
    """Answer ``413 body_too_large`` to a request body over ``max_body`` bytes."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        large: Collection[str] = (),
        large_body: int = 256 * 1024 * 1024,
        large_prefix: tuple[str, ...] = (),
    ) -> None:
        self._app, self._max_small = app, max_body
        self._large, self._large_body = frozenset(large), large_body
        self._large_prefix = large_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope.get("path", "")
        large = path in self._large or path.startswith(self._large_prefix)
        cap = self._large_body if large else self._max_small
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await self._refuse(send, cap)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap and not refused:
                    refused = True
                    await self._refuse(send, cap)
                    raise _TooLarge
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self._app(scope, counted, unless_refused)
        except _TooLarge:
            pass
        except Exception:
            if not refused:  # an app error of its own, not the one we raised into it
                raise

    async def _refuse(self, send: Send, cap: int) -> None:
        message = f"the request body is over {cap} bytes"
        await _answer(send, 413, error_body("body_too_large", message))
