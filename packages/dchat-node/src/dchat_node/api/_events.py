"""``GET /v1/events``: the node's event log as Server-Sent Events or JSON pages (user role).

Theory of operation. The log itself is storage's (``Database.events``): every
stored message appends a ``message`` event in the same commit, the request
shell appends ``request`` events; the cursor is the log's sequence. This
module follows it for clients:

* **Waking.** :class:`EventFeed` holds a ``trio.Event`` that is set and
  replaced whenever a commit may have appended events: after each received
  message (the user service's message hook) and after each API call that
  may write (a send, a request decision: :class:`NotifyAfterWrites`, around
  the app). A waiting stream takes
  the current event *before* it reads the database and, once a read reached the
  end of the log, waits on it before reading again, so a commit that lands
  between the read and the wait has already set the event it waits on: no
  wake-up is lost, no timer polls the database, and a batch of events costs
  one read (:meth:`EventFeed.follow`, for the SSE stream and the socket). The
  keep-alive tick re-reads as well, which bounds the delay of an event
  committed by a path that does not notify.
* **From memory when caught up.** A follower one message behind would read
  exactly the event just committed: storage keeps the newest committed
  events in memory, each with the cursor its append returned
  (``Database.events.recent``), and the contacts' names between writes, so
  the follower takes them from there without a worker trip
  (:meth:`EventFeed.recent`). Memory answers only when it holds every event
  after the follower's cursor; otherwise, and at each keep-alive, the page
  is read from the database as before. Order and cursors are the log's.
* **Bounded.** Each read is one page of at most :data:`PAGE` events, sent
  before the next is read; a slow client holds back its own stream (the
  server's send waits) and never makes the node buffer the log.
* **Framing.** Each event is ``id: <cursor>``, ``event: <kind>``,
  ``data: <json>`` and a blank line; a stream opens with ``retry:`` and an
  ``id:`` line carrying the cursor it starts after (so a client holds a resume
  point before the first event), and says ``: keep-alive`` every
  :data:`KEEPALIVE` seconds. A cursor that retention overtakes mid-stream ends
  the stream with an ``event: error`` frame carrying ``cursor_expired``.

Resuming: ``?after=<cursor>``, else the ``Last-Event-ID`` header, else the
current end of the log (only new events). ``format=json`` (or an ``Accept``
header naming ``application/json`` and not ``text/event-stream``) answers one
page instead: ``{"events": [...], "next": <cursor>}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import trio
from fastapi import Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from dchat_storage import CursorExpiredError

from .._errors import NodeStateError
from ._messages import MAX_CURSOR, Cursor, message_json
from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from fastapi import FastAPI
    from fastapi.params import Depends
    from starlette.types import ASGIApp, Receive, Scope, Send

    from dchat_messaging import MessageReceived
    from dchat_storage import EventRecord

    from .._runtime import Node

__all__ = ("EventFeed", "NotifyAfterWrites", "add_event_routes", "sse_frame")

PAGE: Final = 100
"""Events read from the database at a time for a stream."""
KEEPALIVE: Final = 15.0
"""Seconds of silence after which a stream sends a comment (and re-reads)."""
RETRY_MS: Final = 2000
"""The reconnection delay a stream suggests to its client."""


def sse_frame(cursor: int, kind: str, data: dict[str, Any]) -> str:
    """One Server-Sent Events frame (the JSON has no newlines, so one ``data:`` line)."""
    return f"id: {cursor}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _last_event_id(value: str | None) -> int | None:
    """The cursor in a ``Last-Event-ID`` header (None if absent or empty)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdecimal()) or int(text) > MAX_CURSOR:
        raise NodeStateError("invalid_request", "Last-Event-ID must be an event cursor")
    return int(text)


class EventFeed:
    """Reads the event log for clients and wakes those waiting for new events."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._changed = trio.Event()
        if node.config.role == "user":
            user_role(node).user.on_message(self._received)
            user_role(node).user.on_event_logged(self.notify)

    def notify(self) -> None:
        """A commit may have appended events: wake every waiting stream."""
        self._changed.set()
        self._changed = trio.Event()

    def changed(self) -> trio.Event:
        """The event the next :meth:`notify` sets (take it before reading, then wait)."""
        return self._changed

    async def _received(self, _: MessageReceived) -> None:
        self.notify()

    async def head(self) -> int:
        """The cursor of the newest event."""
        user_role(self._node)
        return await self._node.store.run(self._node.store.db.events.head)

    async def page(self, after: int, limit: int) -> list[dict[str, Any]]:
        """The JSON of the first ``limit`` events after ``after``.

        Raises:
            CursorExpiredError: Retention pruned events after ``after``.
        """
        user, db = user_role(self._node).user, self._node.store.db

        def read() -> tuple[list[EventRecord], Mapping[str, str]]:
            return db.events.page(after, limit), db.contacts.names()  # one worker trip

        records, names = await user.run(read)
        return [_event_json(r, names) for r in records]

    def recent(self, after: int, limit: int) -> list[dict[str, Any]] | None:
        """As :meth:`page` from storage's memory of the newest commits, or None (read a page).

        No worker trip: a follower that is caught up takes the event of the
        message just committed from there (the cursor is the one its append
        returned; ``Database.events.recent`` says why none is missed).
        """
        db = self._node.store.db
        records, names = db.events.recent(after, limit), db.contacts.names_in_memory()
        if records is None or names is None:
            return None
        return [_event_json(r, names) for r in records]

    async def follow(self, after: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of the events after ``after`` as they are committed, forever.

        An empty page after :data:`KEEPALIVE` seconds without one. A page
        shorter than :data:`PAGE` reached the end of the log, so the next read
        waits for a wake-up armed before that read (nothing committed since
        then is missed) instead of reading again at once: one read per batch
        of events, not two.

        Raises:
            CursorExpiredError: Retention pruned events after the cursor.
        """
        changed: trio.Event | None = None
        while True:
            quiet = False
            if changed is not None:
                with trio.move_on_after(KEEPALIVE):
                    await changed.wait()
                quiet = not changed.is_set()
            changed = self._changed  # armed before the read: no lost wake-up
            events = None if quiet else self.recent(after, PAGE)
            if events is None:
                events = await self.page(after, PAGE)
            if events:
                after = events[-1]["cursor"]
                yield events
            elif quiet:
                yield events  # nothing for KEEPALIVE seconds (the re-read bounds a missed wake)
            if len(events) == PAGE:
                changed = None  # more may be waiting: read on at once

    async def stream(self, after: int) -> AsyncIterator[str]:
        """The SSE body: frames of the events after ``after``, forever."""
        yield f"retry: {RETRY_MS}\nid: {after}\n\n"
        try:
            async for events in self.follow(after):
                if not events:
                    yield ": keep-alive\n\n"
                for event in events:
                    yield sse_frame(event["cursor"], event["kind"], event["data"])
        except CursorExpiredError as exc:
            error = {"error": {"code": exc.code, "message": str(exc)}}
            yield f"event: error\ndata: {json.dumps(error)}\n\n"


class NotifyAfterWrites:
    """ASGI middleware: after each request that is not a GET, :meth:`EventFeed.notify`.

    Pure ASGI (not Starlette's ``BaseHTTPMiddleware``), so streamed answers pass
    through untouched.
    """

    def __init__(self, app: ASGIApp, feed: EventFeed) -> None:
        self._app, self._feed = app, feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD"):
                self._feed.notify()


class EventOut(BaseModel):
    """One event of a page."""

    cursor: int
    kind: str
    data: dict[str, Any]


#: One Server-Sent Events frame as a client parses it (every field is optional:
#: the opening frame is ``retry`` and ``id`` only; ``data`` is JSON text).
SSE_FRAME: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


class EventPage(BaseModel):
    """``GET /v1/events?format=json``: events after the cursor, and where to go on."""

    events: list[EventOut]
    next: int


def _event_json(record: EventRecord, names: Mapping[str, str]) -> dict[str, Any]:
    data = record.data
    if record.message is not None:
        data = message_json(record.message, names.get(record.message.peer_id))
    return {"cursor": record.cursor, "kind": record.kind, "at": record.created_at, "data": data}


def add_event_routes(app: FastAPI, feed: EventFeed, auth: list[Depends]) -> None:
    """Add ``GET /v1/events`` (see the module docstring) to ``app``."""

    @app.get(
        "/v1/events",
        dependencies=auth,
        response_model=None,
        responses={
            200: {
                "description": "An event stream, or with format=json one page",
                # FastAPI lists EventPage under components (so its references resolve);
                # the stream's schema describes each frame, as OpenAPI 3.1 tools read it.
                "model": EventPage,
                "content": {"text/event-stream": {"schema": SSE_FRAME}},
            },
            410: {"description": "cursor_expired: events after the cursor were pruned"},
        },
    )
    async def events(
        after: Cursor = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = PAGE,
        format: Annotated[Literal["sse", "json"] | None, Query()] = None,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
        accept: Annotated[str | None, Header(max_length=1024)] = None,
    ) -> dict[str, Any] | StreamingResponse:
        """Follow the event log from a cursor (Server-Sent Events), or read one page of it.

        See docs/protocol.md, section 19: ``id`` is the cursor, ``event`` the kind,
        ``data`` the JSON; resume with ``after`` or ``Last-Event-ID``.
        """
        if after is None:
            after = _last_event_id(last_event_id)
        start = await feed.head() if after is None else after
        if format == "json" or (format is None and _wants_json(accept)):
            page = await feed.page(start, limit)
            return {"events": page, "next": page[-1]["cursor"] if page else start}
        await feed.page(start, 1)  # an expired cursor is refused before the stream starts
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            feed.stream(start), media_type="text/event-stream", headers=headers
        )


def _wants_json(accept: str | None) -> bool:
    return accept is not None and "application/json" in accept and "event-stream" not in accept
