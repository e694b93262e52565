"""``/v1/socket``: the user node's API over one WebSocket (requests and the event stream).

Theory of operation. An HTTP request costs the node about half a millisecond
of CPU before a route runs (parsing, the middleware stack, dependency
solving); a frame on an open WebSocket costs a fraction of that. A client
that sends many messages, or follows events while it sends, holds one socket
instead (docs/protocol.md, section 21):

* **Opening.** The upgrade request carries the bearer token like any other
  request; :class:`~._guard.RequireToken` closes a socket without it (1008)
  before it is accepted. Frames are limited to ``api_max_body`` bytes (a
  larger one closes the socket with 1009, by Hypercorn).
* **Requests** are text frames holding a JSON object ``{"id", "op", ...}``.
  They are answered in the order they arrive, one at a time, each with
  ``{"id", "ok": {...}}`` or ``{"id", "status", "error": {"code", "message"}}``
  (the status and code the HTTP API would answer: :func:`~._answers.error_of`).
  A frame that is not such an object is answered with ``invalid_request`` and
  the socket stays open, so a client can pipeline requests and match answers
  by id. Several sockets run
  concurrently (their sends share group commits).
* **Events.** ``{"op": "follow", "after": C}`` starts the event stream on the
  socket: after its answer, every event after cursor ``C`` (``null``: from the
  current end) arrives as ``{"event": {"cursor", "kind", "at", "data"}}``, as
  :class:`~._events.EventFeed` reads them for Server-Sent Events (woken on
  commit, one page at a time, so a slow client holds back only its own
  stream). If retention overtakes the cursor, the stream stops with
  ``{"id": <follow id>, "error": {"code": "cursor_expired"}}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import trio
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from dchat_storage import CursorExpiredError

from .._errors import NodeStateError
from ._answers import error_of
from ._messages import MAX_CURSOR, SendMessage, traced_send
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .._runtime import Node
    from ._events import EventFeed

__all__ = ("add_socket_route",)

MAX_ID: Final = (1 << 53) - 1
"""Request ids are integers up to this (exact in every JSON implementation)."""


def _bad(message: str) -> NodeStateError:
    return NodeStateError("invalid_request", message)


def _request(frame: str) -> tuple[int, str, dict[str, Any]]:
    """The id, op and the whole object of a request frame.

    Raises:
        NodeStateError: ``invalid_request``, with the id if one could be read
            (the caller answers with ``id: null`` otherwise).
    """
    try:
        request = json.loads(frame)
    except ValueError:
        raise _bad("a request is a JSON object") from None
    if not isinstance(request, dict):
        raise _bad("a request is a JSON object")
    rid, op = request.get("id"), request.get("op")
    if type(rid) is not int or not 0 <= rid <= MAX_ID:
        raise _bad(f"id must be an integer in 0..{MAX_ID}")
    if not isinstance(op, str):
        raise _Answerable(rid, _bad("op must be a string"))
    return rid, op, request


class _Answerable(Exception):
    """An error to answer to a request whose id is known."""

    def __init__(self, rid: int, error: Exception) -> None:
        super().__init__(str(error))
        self.rid, self.error = rid, error


class _Socket:
    """One accepted socket: its requests in order, and its event stream if followed."""

    def __init__(self, node: Node, feed: EventFeed, ws: WebSocket) -> None:
        self._node, self._feed, self._ws = node, feed, ws
        self._following = False

    async def answer(self, rid: int | None, exc: Exception) -> None:
        mapped = error_of(exc)
        if mapped is None:
            raise exc
        status, code, message = mapped
        await self._send({"id": rid, "status": status, "error": {"code": code, "message": message}})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._ws.send_text(json.dumps(frame, separators=(",", ":")))

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text")
                if not isinstance(frame, str):  # a binary frame: not this protocol
                    await self._ws.close(1003)
                    break
                try:
                    await self._handle(frame, nursery)
                except WebSocketDisconnect:  # the client left while we answered
                    break
            nursery.cancel_scope.cancel()

    async def _handle(self, frame: str, nursery: trio.Nursery) -> None:
        try:
            rid, op, request = _request(frame)
        except NodeStateError as exc:
            await self.answer(None, exc)
            return
        except _Answerable as exc:
            await self.answer(exc.rid, exc.error)
            return
        try:
            if op == "send":
                await self._send({"id": rid, "ok": await self._send_message(request)})
            elif op == "follow":
                start = await self._start_following(request)
                await self._send({"id": rid, "ok": {"after": start}})
                nursery.start_soon(self._follow, rid, start)
            elif op == "status":
                await self._send({"id": rid, "ok": await self._node.status()})
            else:
                raise _bad(f"unknown op {op[:64]!r}: send, follow or status")
        except Exception as exc:
            await self.answer(rid, exc)

    async def _send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        fields = {key: value for key, value in request.items() if key not in ("id", "op")}
        try:
            body = SendMessage.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise _bad(f"{where}: {first.get('msg', 'invalid')}") from None
        user = user_role(self._node).user
        try:
            mid = await traced_send(user, body.to, body.text)
        finally:
            self._feed.notify()  # the sent message is an event
        return {"message_id": str(mid), "relay": user.relay_state()}

    async def _start_following(self, request: dict[str, Any]) -> int:
        if self._following:
            raise _bad("this socket already follows the events")
        after = request.get("after")
        if after is not None and (type(after) is not int or not 0 <= after <= MAX_CURSOR):
            raise _bad(f"after must be null or an integer cursor in 0..{MAX_CURSOR}")
        start = await self._feed.head() if after is None else after
        await self._feed.page(start, 1)  # an expired cursor is refused before it starts
        self._following = True
        return start

    async def _follow(self, rid: int, after: int) -> None:
        try:
            async for events in self._feed.follow(after):
                for event in events:
                    await self._send({"event": event})
        except CursorExpiredError as exc:
            await self.answer(rid, exc)
            self._following = False


def add_socket_route(app: FastAPI, node: Node, feed: EventFeed) -> None:
    """Add ``/v1/socket`` (see the module docstring) to ``app``."""

    @app.websocket("/v1/socket")
    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        sock = _Socket(node, feed, ws)
        try:
            user_role(node)
        except NodeStateError as exc:  # another role: say so, then close
            await sock.answer(None, exc)
            await ws.close(1008)
            return
        await sock.serve()
