"""The chat app in the browser: its static files, its one-time login and its session.

Theory of operation.

* **Files.** ``GET /app/`` and ``GET /app/<name>`` serve the fixed set of files in
  ``dchat_node/web`` (:data:`FILES`), with a strict Content-Security-Policy
  (:data:`CSP`: scripts and styles only from the node, no inline script, no
  frames, no form posts, connections only to the node), ``nosniff``,
  ``no-referrer`` and ``no-store``. The files hold no secret, so they are open.
* **Login.** ``POST /v1/app/login`` (bearer token only: a session can never mint
  codes) issues a one-time code: 32 random bytes, kept as a SHA-256 hash for
  :data:`CODE_TTL` seconds, at most :data:`MAX_CODES` outstanding. The link it
  answers carries the code in the URL *fragment* (``/app/#code=...``), which a
  browser never sends to a server nor puts in a ``Referer``; the page posts it
  to ``POST /app/session`` and drops it from the address bar. A code works once:
  it is removed before it is checked for expiry, so a second use fails either way.
* **Session.** The exchange answers a cookie ``dchat_app_<port>`` (HttpOnly,
  SameSite=Strict, Path=/) holding a fresh 32-byte session secret, also kept
  only as a hash, in this process: a node restart (which makes a new bearer
  token) ends every session. :class:`AppSessions` is handed to
  :class:`~._guard.RequireToken`, which accepts the cookie instead of the token
  only for the app's routes (:data:`APP_PATHS`) and only from the app's own
  origin: ``Sec-Fetch-Site`` must be ``same-origin`` when the browser sends it,
  and a request that changes state must carry ``X-Dchat-App: 1`` (a header a
  cross-origin page cannot add without a CORS preflight, which the node never
  grants). Every other route, ``/metrics``, ``/status``, ``/openapi.json``, the
  socket and the login route among them, still needs the bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Final

import segno
from fastapi import Path as PathParam
from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from fastapi.params import Depends

__all__ = ("APP_PATHS", "CODE_TTL", "CSP", "AppSessions", "add_webapp_routes", "cookie_name")

CODE_TTL: Final = 60.0
"""Seconds a login code stays valid."""
MAX_CODES: Final = 8
"""Outstanding login codes; issuing one more forgets the oldest."""
MAX_SESSIONS: Final = 16
"""Live app sessions; a new one beyond this ends the oldest."""
FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
APP_PATHS: Final = (
    "/v1/conversations",
    "/v1/messages",
    "/v1/attachments",
    "/v1/contacts",
    "/v1/requests",
    "/v1/devices",
    "/v1/groups",
    "/v1/events",
    "/v1/app/qr",
)
"""Path prefixes a session cookie may reach (plus ``GET /v1/identity``)."""
_SAFE: Final = frozenset({"GET", "HEAD"})


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class AppSessions:
    """One-time login codes and the sessions they buy (in memory, this process only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._codes: dict[bytes, float] = {}
        self._sessions: dict[bytes, None] = {}

    def issue_code(self) -> str:
        """A new single-use code, valid for :data:`CODE_TTL` seconds."""
        code = secrets.token_urlsafe(32)
        while len(self._codes) >= MAX_CODES:
            del self._codes[next(iter(self._codes))]
        self._codes[_hash(code)] = self._clock() + CODE_TTL
        return code

    def redeem(self, code: str) -> str:
        """Spend ``code`` for a new session secret; NodeStateError if unknown, used or expired."""
        expires = self._codes.pop(_hash(code), None)
        if expires is None or self._clock() > expires:
            raise NodeStateError("unauthorized", "this login link is used or expired")
        session = secrets.token_urlsafe(32)
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        self._sessions[_hash(session)] = None
        return session

    def end(self, session: str) -> None:
        self._sessions.pop(_hash(session), None)

    def valid(self, session: str) -> bool:
        digest = _hash(session)
        return any(hmac.compare_digest(digest, known) for known in self._sessions)

    def admits(self, method: str, path: str, port: int, headers: dict[bytes, bytes]) -> bool:
        """Whether a request with these ``headers`` may use a session cookie for ``path``."""
        if not (path.startswith(APP_PATHS) or (path == "/v1/identity" and method in _SAFE)):
            return False
        site = headers.get(b"sec-fetch-site")
        if site is not None and site != b"same-origin":
            return False
        if method not in _SAFE and headers.get(b"x-dchat-app") != b"1":
            return False
        session = _cookie(headers.get(b"cookie", b""), cookie_name(port))
        return session is not None and self.valid(session)


def cookie_name(port: int) -> str:
    """The session cookie's name: per port, as browsers share cookies across a host's ports."""
    return f"dchat_app_{port}"


def _port(request: Request) -> int:
    server = request.scope.get("server") or ("", 0)
    return int(server[1] or 0)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_the_app(request: Request) -> None:
    """Refuse a request without the app's header or to a name that is not loopback."""
    host = (request.url.hostname or "").strip("[]")
    if request.headers.get("x-dchat-app") != "1" or not _is_loopback(host):
        raise NodeStateError("unauthorized", "not a request of the app on this machine")


def _cookie(header: bytes, name: str) -> str | None:
    for part in header.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Redeem(_Strict):
    code: str = Field(min_length=1, max_length=128)


class QrBody(_Strict):
    text: str = Field(min_length=1, max_length=4096)


def _static(name: str) -> Response:
    if name not in FILES:
        raise NodeStateError("not_found", "no such file")
    body = resources.files("dchat_node.web").joinpath(name).read_bytes()
    headers = {
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "x-frame-options": "DENY",
    }
    return Response(body, media_type=FILES[name], headers=headers)


def add_webapp_routes(app: FastAPI, sessions: AppSessions, auth: list[Depends]) -> None:
    """Serve the app under ``/app/`` and add its login, session and QR routes."""

    @app.get("/app/", include_in_schema=False)
    async def index() -> Response:
        return _static("index.html")

    @app.get("/app/{name}", include_in_schema=False)
    async def asset(name: Annotated[str, PathParam(max_length=32)]) -> Response:
        return _static(name)

    @app.post("/v1/app/login", dependencies=auth, status_code=201)
    async def login(request: Request) -> dict[str, Any]:
        code = sessions.issue_code()
        base = str(request.base_url).rstrip("/")
        return {"url": f"{base}/app/#code={code}", "expires_in": CODE_TTL}

    @app.post("/app/session", include_in_schema=False)
    async def session(body: Redeem, request: Request) -> Response:
        _from_the_app(request)
        secret = sessions.redeem(body.code)
        answer = Response(status_code=204)
        name = cookie_name(_port(request))
        answer.set_cookie(name, secret, httponly=True, samesite="strict", path="/")
        return answer

    @app.post("/app/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        _from_the_app(request)
        name = cookie_name(_port(request))
        secret = request.cookies.get(name)
        if secret:
            sessions.end(secret)
        answer = Response(status_code=204)
        answer.delete_cookie(name, path="/")
        return answer

    @app.post("/v1/app/qr", dependencies=auth)
    async def qr(body: QrBody) -> dict[str, Any]:
        code = segno.make_qr(body.text, error="m")
        rows = ["".join("1" if cell else "0" for cell in row) for row in code.matrix]
        return {"size": len(rows), "rows": rows}
