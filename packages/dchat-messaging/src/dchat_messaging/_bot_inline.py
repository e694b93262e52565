"""The decisions around bot controls: which presses are real, which answers are awaited.

Sans-IO. Both ends of a bot conversation are user nodes; the shells call:

* the bot's node: :class:`SentKeyboards` records each keyboard it sends (in
  the node's state, so a press days later still checks) and :meth:`~SentKeyboards.check`
  refuses a press of a button it never sent that user (``forged``);
  a :class:`QueryBook` holds the presses and inline queries waiting for the
  bot program's answer (``answerCallbackQuery``, ``answerInlineQuery``),
  each answerable once.
* the user's node: :class:`ReceivedKeyboards` keeps each keyboard beside
  its message (shown only when the keyboard came from the message's sender),
  and a :class:`QueryBook` holds the questions it asked (a press, a command
  list, an inline query): an answer to a query it never asked, asked of
  another node, answered already or timed out is refused with
  :class:`BotControlError`.

The Telegram shapes of the new updates and the parameters of the two answer
methods are here too (:func:`callback_update`, :func:`inline_update`,
:func:`parse_answer_callback`, :func:`parse_answer_inline`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._bot_api import MAX_TEXT, bot_user, chat_number
from ._bot_wire import (
    INLINE_RESULTS_KIND,
    MAX_ANSWER_TEXT,
    MAX_OFFSET,
    MAX_RESULTS,
    Article,
    Keyboard,
    _json_param,
    encode_control,
)
from ._errors import BotApiError, BotControlError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._contacts import UserStore
    from ._store import StateStore

__all__ = (
    "AnswerCallback",
    "AnswerInline",
    "QueryBook",
    "ReceivedKeyboards",
    "SentKeyboard",
    "SentKeyboards",
    "callback_update",
    "inline_update",
    "parse_answer_callback",
    "parse_answer_inline",
)

SENT_KEY: Final = "bot.kb.out."
RECEIVED_KEY: Final = "bot.kb.in."
_LIMITS: Final = DecodeLimits(max_size=64 << 10, max_depth=5, max_items=1024)
_TOO_OLD: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)


def _load(store: StateStore, key: str) -> dict[str, Any] | None:
    data = store.get_state(key)
    if data is None:
        return None
    try:
        value = canonical_decode(data, _LIMITS)
    except DecodeError:
        return None  # a damaged record counts as none (the press is refused)
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class SentKeyboard:
    """A keyboard the bot sent: to whom, on which message (its number and text)."""

    peer_id: str
    number: int
    text: str
    sent_at: int
    keyboard: Keyboard


class SentKeyboards:
    """The bot's node: the keyboards it sent, by message id."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def record(self, message_id: bytes, sent: SentKeyboard) -> None:
        value = {
            "p": sent.peer_id,
            "n": sent.number,
            "t": sent.text,
            "at": sent.sent_at,
            "kb": sent.keyboard.to_wire(),
        }
        self._store.put_state(SENT_KEY + message_id.hex(), canonical_encode(value))

    def check(self, sender: str, message_id: bytes, data: str) -> SentKeyboard:
        """The keyboard a press of ``data`` on ``message_id`` by ``sender`` hit.

        Raises:
            BotControlError: ``forged``: no keyboard sent to ``sender`` on that
                message has a button with that callback data.
        """
        raw = _load(self._store, SENT_KEY + message_id.hex())
        try:
            sent = SentKeyboard(
                raw["p"], int(raw["n"]), raw["t"], int(raw["at"]), Keyboard.from_wire(raw["kb"])
            ) if raw is not None else None  # fmt: skip
        except (KeyError, TypeError, ValueError):
            sent = None
        if sent is None or sent.peer_id != sender:
            raise BotControlError("forged", "no keyboard was sent to this user on that message")
        if data not in {b.data for b in sent.keyboard.buttons()}:
            raise BotControlError("forged", "the bot sent no button with that callback data")
        return sent


class ReceivedKeyboards:
    """The user's node: the keyboards bots sent with their messages, by message id."""

    def __init__(self, store: UserStore) -> None:
        self._store = store

    def accept(self, sender: str, message_id: bytes, keyboard: Keyboard) -> None:
        """Keep ``keyboard`` for the message ``message_id`` that ``sender`` sent us.

        The text travels first in the same session, so it is stored by now;
        one keyboard per received message bounds what a sender can store.

        Raises:
            BotControlError: ``forged``: we hold no message of that id from ``sender``.
        """
        entry = self._store.get_message(message_id)
        if entry is None or entry.peer_id != sender or entry.direction != "in":
            raise BotControlError("forged", "no message of that id came from the sender")
        value = {"s": sender, "kb": keyboard.to_wire()}
        self._store.put_state(RECEIVED_KEY + message_id.hex(), canonical_encode(value))

    def get(self, peer_id: str, message_id: bytes) -> Keyboard | None:
        """The keyboard of the message ``message_id`` from ``peer_id``, if it has one."""
        held = _load(self._store, RECEIVED_KEY + message_id.hex())
        if held is None or held.get("s") != peer_id:
            return None
        try:
            return Keyboard.from_wire(held.get("kb"))
        except BotControlError:
            return None

    def row(self, peer_id: str, direction: str, message_id: bytes) -> dict[str, Any]:
        """``{"reply_markup": ...}`` for a listed message with a keyboard, else ``{}``."""
        keyboard = self.get(peer_id, message_id) if direction == "in" else None
        return {} if keyboard is None else {"reply_markup": keyboard.to_telegram()}


@dataclass
class _Query:
    peer_id: str
    kind: str
    expires: float
    forget_at: float
    answered: bool = False
    answer: Any = None


class QueryBook:
    """Open queries (in memory: a restart forgets them, and they time out)."""

    def __init__(self, limit: int = 256) -> None:
        self._queries: dict[bytes, _Query] = {}
        self._limit = limit

    def open(
        self, query: bytes, peer_id: str, kind: str, *, now: float, ttl: float, keep: float = 0
    ) -> None:
        """Wait ``ttl`` seconds for the answer to ``query`` from ``peer_id``.

        The query (and its answer) is remembered ``keep`` seconds longer (at
        least ``ttl``): a late or second answer meanwhile is ``expired`` or
        ``replayed``, later ``unknown_query``.

        Raises:
            BotControlError: ``replayed`` (a query id seen before), ``busy``
                (``limit`` queries are open).
        """
        self._forget(now)
        if query in self._queries:
            raise BotControlError("replayed", "a query with that id was seen before")
        if len(self._queries) >= self._limit:
            raise BotControlError("busy", "too many open queries; try again later")
        self._queries[query] = _Query(peer_id, kind, now + ttl, now + ttl + max(ttl, keep))

    def answer(
        self, query: bytes, peer_id: str | None, kind: str, answer: object, *, now: float
    ) -> str:
        """Take the one answer to ``query`` (``peer_id`` None: from anyone); its asker.

        Raises:
            BotControlError: ``unknown_query`` (never asked, another peer or kind),
                ``replayed`` (answered already), ``expired`` (past its time).
        """
        self._forget(now)
        entry = self._queries.get(query)
        if entry is None or entry.kind != kind or peer_id not in (None, entry.peer_id):
            raise BotControlError("unknown_query", "no such query is waiting for an answer")
        if entry.answered:
            raise BotControlError("replayed", "the query was answered already")
        if now > entry.expires:
            raise BotControlError("expired", "the query timed out")
        entry.answered, entry.answer = True, answer
        return entry.peer_id

    def answered(self, query: bytes, peer_id: str) -> tuple[bool, Any]:
        """Whether ``query`` to ``peer_id`` has its answer yet, and the answer."""
        entry = self._queries.get(query)
        if entry is None or entry.peer_id != peer_id:
            return False, None
        return entry.answered, entry.answer

    def _forget(self, now: float) -> None:
        """Drop the queries past their keeping time (then: unknown)."""
        for query in [q for q, e in self._queries.items() if now > e.forget_at]:
            del self._queries[query]


# -- the Bot API's side --------------------------------------------------------------------


def _query_id(params: Mapping[str, object], name: str) -> bytes:
    raw = params.get(name)
    if isinstance(raw, str) and len(raw) == 32:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    raise BotApiError(400, _TOO_OLD)


def _flag(params: Mapping[str, object], name: str) -> bool:
    raw = params.get(name, False)
    if raw in (True, False):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", ""):
        return raw.lower() in ("true", "1")
    raise BotApiError(400, f"Bad Request: {name} must be a boolean")


@dataclass(frozen=True, slots=True)
class AnswerCallback:
    query: bytes
    text: str
    show_alert: bool
    url: str | None

    def to_wire(self) -> dict[str, Any]:
        wire = {"q": self.query, "text": self.text, "alert": self.show_alert}
        return wire | ({} if self.url is None else {"u": self.url})


def parse_answer_callback(params: Mapping[str, object]) -> AnswerCallback:
    """``callback_query_id``, ``text`` (0-200), ``show_alert``, ``url`` (``cache_time`` ignored)."""
    query = _query_id(params, "callback_query_id")
    text, url = params.get("text", ""), params.get("url")
    if not isinstance(text, str) or len(text) > MAX_ANSWER_TEXT:
        raise BotApiError(400, f"Bad Request: text must be at most {MAX_ANSWER_TEXT} characters")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise BotApiError(400, "Bad Request: url must be an http(s) URL")
    return AnswerCallback(query, text, _flag(params, "show_alert"), url)


@dataclass(frozen=True, slots=True)
class AnswerInline:
    query: bytes
    results: tuple[Article, ...]
    next_offset: str
    data: bytes
    """The ``bot.ir`` control's data (encoded while parsing, so its size is checked)."""


def parse_answer_inline(params: Mapping[str, object]) -> AnswerInline:
    """``inline_query_id``, ``results`` (articles, at most 50), ``next_offset``.

    ``cache_time``, ``is_personal`` and ``button`` are accepted and ignored.

    Raises:
        BotApiError: 400: not articles, a field out of bounds, or the whole
            over one control message.
    """
    query = _query_id(params, "inline_query_id")
    raw = _json_param(params, "results")
    if not isinstance(raw, list):
        raise BotApiError(400, "Bad Request: results must be an array of InlineQueryResult")
    if len(raw) > MAX_RESULTS:
        raise BotApiError(400, "Bad Request: RESULTS_TOO_MUCH")
    offset = params.get("next_offset", "")
    if not isinstance(offset, str) or len(offset) > MAX_OFFSET:
        raise BotApiError(400, f"Bad Request: next_offset is at most {MAX_OFFSET} characters")
    try:
        results = tuple(_telegram_article(item) for item in raw)
        wire = {"q": query, "r": [a.to_wire() for a in results], "next": offset}
        data = encode_control(INLINE_RESULTS_KIND, wire)
    except BotControlError as exc:
        raise BotApiError(400, f"Bad Request: {exc}") from None
    return AnswerInline(query, results, offset, data)


def _telegram_article(raw: object) -> Article:
    if not isinstance(raw, dict) or raw.get("type") != "article":
        raise BotControlError("malformed", "only results of type article are served")
    content = raw.get("input_message_content")
    text = content.get("message_text") if isinstance(content, dict) else None
    values = raw.get("id"), raw.get("title"), text, raw.get("description", "")
    if not all(isinstance(v, str) for v in values) or len(str(text)) > MAX_TEXT:
        raise BotControlError("malformed", "an article needs id, title, message_text (text)")
    return Article(*(str(v) for v in values))


def callback_update(cursor: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """The Telegram ``Update`` of a ``bot_callback`` event (a button pressed).

    The event holds the keyboard as JSON text (``reply_markup``): the log keeps small maps.
    """
    peer = data["peer_id"]
    user = {"id": chat_number(peer), "is_bot": False, "first_name": data["peer_name"] or peer}
    message = {
        "message_id": data["message_number"],
        "from": bot_user(data["bot_id"], data["bot_name"]),
        "chat": {"id": chat_number(peer), "type": "private", "first_name": user["first_name"]},
        "date": data["sent_at"],
        "text": data["text"],
        "reply_markup": json.loads(data["reply_markup"]),  # JSON text in the event
    }
    query = {
        "id": data["query_id"],
        "from": user,
        "message": message,
        "chat_instance": str(chat_number(peer)),
        "data": data["data"],
    }
    return {"update_id": cursor, "callback_query": query}


def inline_update(cursor: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """The Telegram ``Update`` of a ``bot_inline`` event (an inline query)."""
    peer = data["peer_id"]
    user = {"id": chat_number(peer), "is_bot": False, "first_name": data["peer_name"] or peer}
    query = {"id": data["query_id"], "from": user, "query": data["query"], "offset": data["offset"]}
    return {"update_id": cursor, "inline_query": query}
