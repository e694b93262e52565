"""Following a node's event stream: typed events and the resume logic, sans-IO.

Theory of operation. ``GET /v1/events`` streams Server-Sent Events whose
``id`` is the event's cursor in the node's durable event log. An
:class:`EventReader` turns the text of one or more connections into
:class:`Event` objects and remembers the cursor of the last one it returned
(or, before the first, the cursor the stream said it started after). A
dropped connection is resumed with ``?after=<that cursor>``: the node sends
exactly the events after it, so nothing is missed; and the reader never
returns an event whose cursor is not above the last, so nothing repeats even
if a server did send one twice. The clients (:class:`RemoteClient.events`,
:class:`AsyncRemoteClient.events`) only move bytes and sleep for
:class:`Backoff` between attempts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ._errors import ApiError, NodeUnreachableError, _BadReplyError
from ._event_kinds import (
    EVENT_KINDS,
    BotUpdate,
    BurnerSeed,
    ChannelUpdate,
    ConversationChange,
    Expired,
    GroupUpdate,
    PaymentVerdict,
    RelayStatus,
    RequestChange,
)
from ._models import shaped
from ._replies import MessageInfo, integer, items, message
from ._sse import SseDecoder

__all__ = (
    "STREAM_READ_TIMEOUT",
    "Backoff",
    "Event",
    "EventReader",
    "StealthReceived",
    "event_from_json",
    "event_page",
    "parse_cursor",
)

M = TypeVar("M")

STREAM_READ_TIMEOUT: Final = 45.0
"""Seconds without a byte after which a stream is taken as dropped (the node
says ``keep-alive`` every 15 s)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the node's log.

    Attributes:
        cursor: Its place in the log; resume with ``after=cursor``.
        kind: ``message``, ``request``, ... (:data:`EVENT_KINDS` lists them, with the
            property that reads each kind's data typed; new kinds may appear:
            skip unknown ones).
        data: The event's JSON (for ``message``: the message as ``GET /v1/messages``
            shows it).
    """

    cursor: int
    kind: str
    data: dict[str, Any] = field(repr=False)

    @property
    def message(self) -> MessageInfo | None:
        """The message of a ``message`` event; None for other kinds."""
        return message(self.data) if self.kind == "message" else None

    def _as(self, reader: str, model: type[M]) -> M | None:
        """``data`` as ``model`` if :data:`EVENT_KINDS` reads this kind with ``reader``."""
        if EVENT_KINDS.get(self.kind, ("", dict))[0] != reader:
            return None
        return shaped(self.data, model)

    @property
    def request(self) -> RequestChange | None:
        """A ``request`` event's change: ``identity_id``, ``state``; None for other kinds."""
        return self._as("request", RequestChange)

    @property
    def relay(self) -> RelayStatus | None:
        """A ``status`` event's ``relay`` state; None for other kinds."""
        return self._as("relay", RelayStatus)

    @property
    def payment(self) -> PaymentVerdict | None:
        """A ``payment`` event's verdict on a received payment; None for other kinds."""
        return self._as("payment", PaymentVerdict)

    @property
    def expired(self) -> Expired | None:
        """An ``expired`` event's disappeared messages; None for other kinds."""
        return self._as("expired", Expired)

    @property
    def conversation(self) -> ConversationChange | None:
        """A receipt, edit, delete, reaction, typing or timer change; None for other kinds."""
        return self._as("conversation", ConversationChange)

    @property
    def group(self) -> GroupUpdate | None:
        """A ``group_*`` event's data; None for other kinds."""
        return self._as("group", GroupUpdate)

    @property
    def channel(self) -> ChannelUpdate | None:
        """A ``channel_update`` or ``channel_post`` event's data; None for other kinds."""
        return self._as("channel", ChannelUpdate)

    @property
    def bot(self) -> BotUpdate | None:
        """A ``bot_*`` event's data; None for other kinds."""
        return self._as("bot", BotUpdate)

    @property
    def burner(self) -> BurnerSeed | None:
        """A ``burner_held`` or ``burner_released`` event's burner; None for other kinds."""
        return self._as("burner", BurnerSeed)

    @property
    def stealth(self) -> StealthReceived | None:
        """The payment of a ``stealth_received`` event; None for other kinds.

        Raises:
            _BadReplyError: The event's data is not a stealth payment.
        """
        if self.kind != "stealth_received":
            return None
        account, amount, height = (self.data.get(k) for k in ("account", "amount", "height"))
        if not isinstance(account, str) or len(account) != 64:
            raise _BadReplyError("a stealth payment names its 64-hex-digit account")
        if not (isinstance(amount, int) and isinstance(height, int) and min(amount, height) >= 0):
            raise _BadReplyError("a stealth payment's amount and height are counts")
        identity = self.data.get("identity")
        if identity is not None and not isinstance(identity, str):
            raise _BadReplyError("a stealth payment's identity is an id's text")
        return StealthReceived(account, amount, height, identity)


@dataclass(frozen=True, slots=True)
class StealthReceived:
    """A stealth payment the node's scan found (``Event.stealth``).

    Attributes:
        account: The one-time account it went to (hex); its key never leaves the node.
        amount: The amount the committed transfer names.
        height: The block holding it.
        identity: Whose meta-address was paid: the node's identity id or one
            of its burners' (None from nodes older than burner stealth payments).
    """

    account: str
    amount: int
    height: int
    identity: str | None = None


def parse_cursor(text: str) -> int:
    """A cursor from its decimal text.

    Raises:
        _BadReplyError: It is not one.
    """
    if not (text.isascii() and text.isdecimal()) or len(text) > 19:
        raise _BadReplyError(f"not an event cursor: {text[:40]!r}")
    return int(text)


def event_from_json(reply: Any) -> Event:
    """An event of a JSON page (``{"cursor", "kind", "data"}``)."""
    if not isinstance(reply, dict):
        raise _BadReplyError("an event is not a JSON object")
    cursor, kind, data = reply.get("cursor"), reply.get("kind"), reply.get("data")
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
        raise _BadReplyError("an event's cursor is not a cursor")
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise _BadReplyError("an event lacks its kind or data")
    return Event(cursor, kind, data)


def event_page(reply: Any) -> tuple[list[Event], int]:
    """A JSON page of events and the cursor to continue after."""
    return [event_from_json(e) for e in items(reply, "events")], integer(reply, "next")


class EventReader:
    """The events of a stream, across reconnections.

    Args:
        after: Start after this cursor (None: at the log's current end).
    """

    def __init__(self, after: int | None = None) -> None:
        self.cursor = after
        """The cursor to resume after (None until the stream told one)."""
        self._decoder = SseDecoder()

    def request(self) -> tuple[dict[str, int], dict[str, str]]:
        """Query parameters and headers for the next connection."""
        params = {} if self.cursor is None else {"after": self.cursor}
        return params, {"Accept": "text/event-stream"}

    def connected(self) -> None:
        """A new connection begins: forget a half-read frame of the old one."""
        self._decoder = SseDecoder()

    @property
    def retry_s(self) -> float | None:
        """The reconnection delay the node asked for, if it did."""
        ms = self._decoder.retry_ms
        return None if ms is None else ms / 1000

    def feed(self, text: str) -> list[Event]:
        """The new events in ``text`` (a chunk of the stream).

        Raises:
            ApiError: The node ended the stream with an error (``cursor_expired``).
            _BadReplyError: The stream is not the documented format.
        """
        events: list[Event] = []
        for frame in self._decoder.feed(text):
            if frame.event == "error":
                raise _stream_error(frame.data)
            cursor = parse_cursor(frame.id)
            if self.cursor is not None and cursor <= self.cursor:
                continue  # already returned: never repeat
            try:
                data = json.loads(frame.data)
            except ValueError:
                raise _BadReplyError("an event's data is not JSON") from None
            events.append(event_from_json({"cursor": cursor, "kind": frame.event, "data": data}))
            self.cursor = cursor
        if self.cursor is None and self._decoder.last_event_id:
            self.cursor = parse_cursor(self._decoder.last_event_id)  # where the stream began
        return events


def _stream_error(data: str) -> ApiError:
    try:
        error = json.loads(data).get("error", {})
        return ApiError(410, str(error["code"]), str(error["message"]))
    except (ValueError, AttributeError, KeyError, TypeError):
        raise _BadReplyError("an error frame is not the documented JSON") from None


@dataclass(slots=True)
class Backoff:
    """Delays between reconnection attempts: doubling from ``first`` up to ``cap``.

    A connection that delivered the stream's opening resets it.
    """

    first: float = 0.25
    cap: float = 5.0
    failures: int = 0

    def next_delay(self, hint: float | None = None) -> float:
        """The delay before the next attempt (at least the node's ``retry`` hint if given)."""
        self.failures += 1
        delay: float = min(self.cap, self.first * 2.0 ** (self.failures - 1))
        return delay if hint is None or self.failures > 1 else max(delay, min(hint, self.cap))

    def reset(self) -> None:
        """The stream is flowing again."""
        self.failures = 0

    def after_drop(
        self, failure: Exception | None, retries: int | None, hint: float | None
    ) -> float:
        """A connection ended (``failure``, or None: the node closed it): the delay
        before the next attempt.

        Raises:
            NodeUnreachableError: ``retries`` attempts in a row failed.
        """
        if retries is not None and self.failures >= retries:
            what = "the node closed it" if failure is None else type(failure).__name__
            raise NodeUnreachableError(f"event stream lost: {what}")
        return self.next_delay(hint)
