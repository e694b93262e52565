"""The node API's WebSocket (``/v1/socket``): sends and the event stream on one connection.

Theory of operation. A user node answers requests over one WebSocket as well
as over HTTP (the node's docs/protocol.md, section 21); a frame costs the node
a fraction of an HTTP request, so a program that sends a lot, or follows the
events while it sends, keeps a socket open. :class:`SocketSession` is the
client side without I/O: it makes the opening handshake (the bearer token in
the upgrade request), numbers requests, and turns received bytes into
:class:`SocketReply` and :class:`~._events.Event` objects (answering pings and
the close handshake itself). :class:`RemoteSocket` drives it over a blocking
socket; :class:`AsyncRemoteSocket` over an anyio stream (asyncio or trio).

The node answers requests on one socket in order; events arrive between
answers once ``follow`` is asked. A cursor expired mid-stream ends it with an
error answer to the ``follow`` request (code ``cursor_expired``).
"""

from __future__ import annotations

import json
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from ._errors import ApiError, NodeUnreachableError, _BadReplyError
from ._events import Event, event_from_json
from ._replies import api_error, obj, string

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from types import TracebackType

    from anyio.abc import ByteStream

__all__ = ("AsyncRemoteSocket", "RemoteSocket", "SocketReply", "SocketSession")

PATH: Final = "/v1/socket"
MAX_FRAME: Final = 16 * 1024 * 1024
"""The largest frame the client accepts from the node."""
READ: Final = 65536


@dataclass(frozen=True, slots=True)
class SocketReply:
    """The node's answer to one request: ``ok`` (its JSON) or ``error``."""

    id: int | None
    ok: dict[str, Any] | None = field(default=None, repr=False)
    error: ApiError | None = None


class SocketSession:
    """The client side of ``/v1/socket``, sans-IO.

    Args:
        base_url: The node API's URL (``http://`` or ``https://``).
        token: The node's bearer token.
    """

    def __init__(self, base_url: str, token: str) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an API URL: {base_url!r}")
        self.host, self.tls = url.hostname, url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self._token = token
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._next = 0
        self._parts: list[str] = []
        self._size = 0
        self._rejected: RejectConnection | None = None
        self._rejection = b""
        self.accepted = False
        """The node accepted the socket."""
        self.closed = False
        """The socket is closed (by either side); nothing more will arrive."""

    def opening(self) -> bytes:
        """The upgrade request to send first."""
        auth = (b"authorization", f"Bearer {self._token}".encode())
        return self._ws.send(Request(host=self.host, target=PATH, extra_headers=[auth]))

    def request(self, op: str, **fields: Any) -> tuple[int, bytes]:
        """A request's id and the bytes to send."""
        rid, self._next = self._next, self._next + 1
        frame = json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":"))
        return rid, self._ws.send(TextMessage(frame))

    def closing(self) -> bytes:
        """The bytes that start the close handshake (empty when already closed)."""
        if self.closed or not self.accepted:
            self.closed = True
            return b""
        self.closed = True
        return self._ws.send(CloseConnection(code=1000))

    def receive(self, data: bytes) -> tuple[list[SocketReply | Event], bytes]:
        """What ``data`` (empty: the connection ended) completes, and bytes to send back.

        Raises:
            ApiError: The node refused to open the socket (e.g. a wrong token).
            NodeUnreachableError: The connection ended.
            _BadReplyError: The node sent something that is not the documented shape.
        """
        self._ws.receive_data(data or None)
        out: list[SocketReply | Event] = []
        reply = b""
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                self._rejected = event
                if not event.has_body:
                    raise self._refusal()
            elif isinstance(event, RejectData):
                self._rejection += event.data
                if event.body_finished:
                    raise self._refusal()
            elif isinstance(event, Ping):
                reply += self._ws.send(event.response())
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:  # the node asked
                    reply += self._ws.send(event.response())
                self.closed = True
            elif isinstance(event, TextMessage):
                item = self._text(event)
                if item is not None:
                    out.append(item)
            elif isinstance(event, Message):  # binary: the node never sends one
                raise _BadReplyError("the node sent a binary frame")
        if not data and not out:
            self.closed = True
            raise NodeUnreachableError("the node closed the socket")
        return out, reply

    def _refusal(self) -> ApiError:
        self.closed = True
        status = self._rejected.status_code if self._rejected else 0
        try:
            return api_error(status, json.loads(self._rejection))
        except ValueError:
            return api_error(status, None)

    def _text(self, event: TextMessage) -> SocketReply | Event | None:
        self._parts.append(event.data)
        self._size += len(event.data)
        if self._size > MAX_FRAME:
            raise _BadReplyError("the node sent an oversized frame")
        if not event.message_finished:
            return None
        text, self._parts, self._size = "".join(self._parts), [], 0
        try:
            frame = obj(json.loads(text))
        except ValueError:
            raise _BadReplyError("the node sent a frame that is not JSON") from None
        if "event" in frame:
            return event_from_json(frame["event"])
        rid = frame.get("id")
        if rid is not None and (type(rid) is not int or rid < 0):
            raise _BadReplyError("an answer's id is not a request id")
        if "error" in frame:
            status = frame.get("status")
            return SocketReply(rid, error=api_error(status if type(status) is int else 0, frame))
        return SocketReply(rid, ok=obj(frame.get("ok")))


def _file(
    items: list[SocketReply | Event], answers: dict[int, SocketReply], events: deque[Event]
) -> None:
    """Put what arrived where its reader looks: answers by id, events in order.

    Raises:
        ApiError: The node answered an error it could not tie to a request.
    """
    for item in items:
        if isinstance(item, Event):
            events.append(item)
        elif item.id is None:
            raise item.error or _BadReplyError("an answer without an id")
        else:
            answers[item.id] = item


def _ok(reply: SocketReply) -> dict[str, Any]:
    if reply.error is not None:
        raise reply.error
    assert reply.ok is not None  # a reply is ok or error
    return reply.ok


class RemoteSocket:
    """A blocking ``/v1/socket`` connection (use ``with``); one thread at a time.

    Args:
        base_url: The node API's URL.
        token: The node's bearer token.
        timeout: Seconds allowed for each request (and for opening).
        ssl_context: For an ``https`` API (default: the system's trust store).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._session = SocketSession(base_url, token)
        self._answers: dict[int, SocketReply] = {}
        self._events: deque[Event] = deque()
        try:
            sock = socket.create_connection((self._session.host, self._session.port), timeout)
            if self._session.tls:
                context = ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._session.host)
        except OSError as exc:
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        try:
            self._write(self._session.opening())
            while not self._session.accepted:
                self._read()
        except BaseException:
            sock.close()
            raise

    def _write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise NodeUnreachableError(f"node socket failed: {type(exc).__name__}") from None

    def _read(self) -> None:
        try:
            data = self._sock.recv(READ)
        except OSError as exc:
            raise NodeUnreachableError(f"node socket failed: {type(exc).__name__}") from None
        items, reply = self._session.receive(data)
        if reply:
            self._write(reply)
        _file(items, self._answers, self._events)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its answer's JSON.

        Raises:
            ApiError: The node refused it.
        """
        rid, data = self._session.request(op, **fields)
        self._write(data)
        while rid not in self._answers:
            self._read()
        return _ok(self._answers.pop(rid))

    def send(self, to: str, text: str) -> str:
        """Encrypt and queue a text for contact ``to``; returns its message id."""
        return string(self.call("send", to=to, text=text), "message_id")

    def events(self, after: int | None = None) -> Iterator[Event]:
        """Follow the events after cursor ``after`` (None: from now on), forever."""
        self.call("follow", after=after)
        while True:
            while self._events:
                yield self._events.popleft()
            self._read()

    def close(self) -> None:
        """Close the socket (politely when it is open)."""
        try:
            if data := self._session.closing():
                self._sock.sendall(data)
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> RemoteSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRemoteSocket:
    """An asynchronous ``/v1/socket`` connection (asyncio or trio; ``async with``).

    Requests from several tasks may be in flight at once (the node answers
    them in order). Events are read by whoever iterates :meth:`events`.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self._session = SocketSession(base_url, token)
        self._timeout = timeout
        self._stream: ByteStream | None = None
        self._answers: dict[int, SocketReply] = {}
        self._events: deque[Event] = deque()
        self._lock = anyio.Lock()  # one reader at a time
        self._writing = anyio.Lock()  # one writer at a time (frames never interleave)

    async def __aenter__(self) -> AsyncRemoteSocket:
        host, port = self._session.host, self._session.port
        try:
            with anyio.fail_after(self._timeout):
                if self._session.tls:
                    self._stream = await anyio.connect_tcp(host, port, tls=True)
                else:
                    self._stream = await anyio.connect_tcp(host, port)
                await self._stream.send(self._session.opening())
                while not self._session.accepted:
                    await self._read()
        except (OSError, TimeoutError) as exc:
            await self.aclose()
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket."""
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        with anyio.CancelScope(shield=True):
            try:
                if data := self._session.closing():
                    await stream.send(data)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            await stream.aclose()

    async def _write(self, data: bytes) -> None:
        """Send ``data``; the caller holds ``_writing``."""
        assert self._stream is not None
        try:
            await self._stream.send(data)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise NodeUnreachableError(f"node socket failed: {type(exc).__name__}") from None

    async def _read(self) -> None:
        """Read once (one task at a time, under the lock's holder) and file what came."""
        assert self._stream is not None
        try:
            data = await self._stream.receive(READ)
        except anyio.EndOfStream:
            data = b""
        except (OSError, anyio.BrokenResourceError) as exc:
            raise NodeUnreachableError(f"node socket failed: {type(exc).__name__}") from None
        items, reply = self._session.receive(data)
        if reply:
            async with self._writing:
                await self._write(reply)
        _file(items, self._answers, self._events)

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its answer's JSON (raises :class:`ApiError`)."""
        if self._stream is None:
            raise NodeUnreachableError("the socket is not open")
        async with self._writing:  # numbered in the order they are written
            rid, data = self._session.request(op, **fields)
            await self._write(data)
        while rid not in self._answers:
            async with self._lock:  # one reader at a time; the others find their answer
                if rid not in self._answers:
                    with anyio.fail_after(self._timeout):
                        await self._read()
        return _ok(self._answers.pop(rid))

    async def send(self, to: str, text: str) -> str:
        """Encrypt and queue a text for contact ``to``; returns its message id."""
        return string(await self.call("send", to=to, text=text), "message_id")

    async def events(self, after: int | None = None) -> AsyncIterator[Event]:
        """Follow the events after cursor ``after`` (None: from now on), forever."""
        await self.call("follow", after=after)
        while True:
            while self._events:
                yield self._events.popleft()
            async with self._lock:
                if not self._events:
                    await self._read()
