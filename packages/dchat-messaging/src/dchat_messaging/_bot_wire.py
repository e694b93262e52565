"""Bot controls on the wire: inline keyboards, button presses, commands and inline queries.

Between a user's node and a bot's node these travel as control messages
(``Content.control``) inside the ratchet session, end to end encrypted like a
text (docs/protocol.md, section 35). Each ``data`` is the canonical CBOR of
one map with ``"v": 1``; a query id ``q`` is 16 random bytes chosen by the
asking side:

* ``bot.kb`` (bot -> user) ``{"id": message id(16), "kb": [[button, ...], ...]}``:
  the inline keyboard of the bot's text ``id``, sent right behind it; a
  button is ``{"t": text, "d": callback data}`` or ``{"t": text, "u": url}``.
* ``bot.press`` (user -> bot) ``{"q", "id": message id, "d": callback data}``.
* ``bot.answer`` (bot -> user) ``{"q", "text": str, "alert": bool, ["u": url]}``.
* ``bot.cmds.ask`` (user -> bot) ``{"q"}``; ``bot.cmds`` (bot -> user)
  ``{"q", "c": [[command, description], ...]}``.
* ``bot.iq`` (user -> bot) ``{"q", "query": str, "off": str}``; ``bot.ir``
  (bot -> user) ``{"q", "r": [article, ...], "next": str}``, an article
  ``{"id", "title", "text", ["desc"]}``.

Anything else (an unknown or missing field, a bound exceeded) is
:class:`BotControlError` ``malformed``. :func:`parse_reply_markup` reads the
Bot API's ``reply_markup`` (Telegram's ``InlineKeyboardMarkup`` JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode

from ._content import MAX_CONTROL
from ._errors import BotApiError, BotControlError
from ._group_bots import BotGrant

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "ANSWER_KIND",
    "BOT_KINDS",
    "COMMANDS_ASK_KIND",
    "COMMANDS_KIND",
    "INLINE_ASK_KIND",
    "INLINE_RESULTS_KIND",
    "KEYBOARD_KIND",
    "PRESS_KIND",
    "Article",
    "Button",
    "Keyboard",
    "decode_control",
    "encode_control",
    "parse_reply_markup",
)

KEYBOARD_KIND: Final = "bot.kb"
PRESS_KIND: Final = "bot.press"
ANSWER_KIND: Final = "bot.answer"
COMMANDS_ASK_KIND: Final = "bot.cmds.ask"
COMMANDS_KIND: Final = "bot.cmds"
INLINE_ASK_KIND: Final = "bot.iq"
INLINE_RESULTS_KIND: Final = "bot.ir"
BOT_KINDS: Final = frozenset(
    {
        KEYBOARD_KIND,
        PRESS_KIND,
        ANSWER_KIND,
        COMMANDS_ASK_KIND,
        COMMANDS_KIND,
        INLINE_ASK_KIND,
        INLINE_RESULTS_KIND,
    }
)

MAX_BUTTONS: Final = 100
MAX_ROW: Final = 12
MAX_BUTTON_TEXT: Final = 128
MAX_DATA_BYTES: Final = 64
MAX_URL: Final = 2048
MAX_ANSWER_TEXT: Final = 200
MAX_QUERY: Final = 256
MAX_OFFSET: Final = 64
MAX_RESULTS: Final = 50
MAX_RESULT_ID: Final = 64
MAX_TITLE: Final = 256
MAX_MESSAGE_TEXT: Final = 4096
QUERY_BYTES: Final = 16
_LIMITS: Final = DecodeLimits(max_size=MAX_CONTROL, max_depth=5, max_items=MAX_BUTTONS * 4)


def _malformed(what: str) -> BotControlError:
    return BotControlError("malformed", f"malformed bot control: {what}")


def _text(value: object, high: int, what: str, *, low: int = 1) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high or _utf8(value) is None:
        raise _malformed(f"{what} must be {low}-{high} characters")
    return value


def _utf8(value: str) -> bytes | None:
    """``value`` in UTF-8, or None if it cannot be (a lone surrogate from JSON)."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        return None


def _data(value: object) -> str:
    encoded = _utf8(value) if isinstance(value, str) else None
    if encoded is None or not 1 <= len(encoded) <= MAX_DATA_BYTES:
        raise _malformed(f"callback data must be 1-{MAX_DATA_BYTES} bytes of text")
    return str(value)


def _url(value: object) -> str:
    url = _text(value, MAX_URL, "a url")
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise _malformed("a url must be http(s) without spaces")
    return url


@dataclass(frozen=True, slots=True)
class Button:
    """One inline button: ``data`` for a callback button, ``url`` for a link."""

    text: str
    data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        _text(self.text, MAX_BUTTON_TEXT, "a button's text")
        if (self.data is None) == (self.url is None):
            raise _malformed("a button has callback data or a url (one of them)")
        if self.data is not None:
            _data(self.data)
        if self.url is not None:
            _url(self.url)

    def to_wire(self) -> dict[str, str]:
        if self.data is not None:
            return {"t": self.text, "d": self.data}
        return {"t": self.text, "u": str(self.url)}

    def to_telegram(self) -> dict[str, str]:
        if self.data is not None:
            return {"text": self.text, "callback_data": self.data}
        return {"text": self.text, "url": str(self.url)}


@dataclass(frozen=True, slots=True)
class Keyboard:
    """An inline keyboard: rows of buttons (1-100 buttons, at most 12 a row)."""

    rows: tuple[tuple[Button, ...], ...]

    def __post_init__(self) -> None:
        count = sum(len(row) for row in self.rows)
        if not 1 <= count <= MAX_BUTTONS or any(not 1 <= len(r) <= MAX_ROW for r in self.rows):
            raise _malformed(f"a keyboard has 1-{MAX_BUTTONS} buttons, 1-{MAX_ROW} a row")

    def buttons(self) -> list[Button]:
        return [button for row in self.rows for button in row]

    def find(self, which: str) -> Button:
        """The button numbered ``which`` (1, 2, ... in reading order), else by text or data.

        Raises:
            BotControlError: ``forged`` when no button matches.
        """
        buttons = self.buttons()
        if which.isdecimal() and 1 <= int(which) <= len(buttons):
            return buttons[int(which) - 1]
        for button in buttons:
            if which in (button.text, button.data):
                return button
        raise BotControlError("forged", "the message has no such button")

    def to_wire(self) -> list[list[dict[str, str]]]:
        return [[button.to_wire() for button in row] for row in self.rows]

    def to_telegram(self) -> dict[str, Any]:
        """Telegram's ``InlineKeyboardMarkup``."""
        return {"inline_keyboard": [[b.to_telegram() for b in row] for row in self.rows]}

    @classmethod
    def from_wire(cls, raw: object) -> Keyboard:
        if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
            raise _malformed("a keyboard is a list of rows")
        return cls(tuple(tuple(_wire_button(b) for b in row) for row in raw))


def _wire_button(raw: object) -> Button:
    if not isinstance(raw, dict) or set(raw) not in ({"t", "d"}, {"t", "u"}):
        raise _malformed("a button is {t, d} or {t, u}")
    data, url = raw.get("d"), raw.get("u")
    if not isinstance(data, str | None) or not isinstance(url, str | None):
        raise _malformed("a button's data and url are text")
    return Button(_text(raw["t"], MAX_BUTTON_TEXT, "a button's text"), data, url)


@dataclass(frozen=True, slots=True)
class Article:
    """An inline query result of type ``article``: what a pick sends is ``text``."""

    result_id: str
    title: str
    text: str
    description: str = ""

    def __post_init__(self) -> None:
        encoded = _utf8(self.result_id) if isinstance(self.result_id, str) else None
        if encoded is None or not 1 <= len(encoded) <= MAX_RESULT_ID:
            raise _malformed(f"a result id is 1-{MAX_RESULT_ID} bytes")
        _text(self.title, MAX_TITLE, "a result's title")
        _text(self.text, MAX_MESSAGE_TEXT, "a result's message text")
        _text(self.description, MAX_TITLE, "a result's description", low=0)

    def to_wire(self) -> dict[str, str]:
        wire = {"id": self.result_id, "title": self.title, "text": self.text}
        return wire | ({"desc": self.description} if self.description else {})

    def to_json(self) -> dict[str, str]:
        """As the user's API shows it."""
        return {
            "id": self.result_id,
            "title": self.title,
            "description": self.description,
            "text": self.text,
        }


def _article(raw: object) -> Article:
    if not isinstance(raw, dict) or not {"id", "title", "text"} <= set(raw) <= {
        "id",
        "title",
        "text",
        "desc",
    }:
        raise _malformed("an article is {id, title, text, desc?}")
    values = [raw["id"], raw["title"], raw["text"], raw.get("desc", "")]
    if not all(isinstance(v, str) for v in values):
        raise _malformed("an article's fields are text")
    return Article(*values)


# -- the controls' maps --------------------------------------------------------------------

_FIELDS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    # kind: (required fields besides v, optional fields)
    KEYBOARD_KIND: (frozenset({"id", "kb"}), frozenset()),
    PRESS_KIND: (frozenset({"q", "id", "d"}), frozenset()),
    ANSWER_KIND: (frozenset({"q", "text", "alert"}), frozenset({"u"})),
    COMMANDS_ASK_KIND: (frozenset({"q"}), frozenset()),
    COMMANDS_KIND: (frozenset({"q", "c"}), frozenset({"about", "grant"})),
    INLINE_ASK_KIND: (frozenset({"q", "query", "off"}), frozenset()),
    INLINE_RESULTS_KIND: (frozenset({"q", "r", "next"}), frozenset()),
}


def encode_control(kind: str, fields: Mapping[str, Any]) -> bytes:
    """The ``data`` of the control ``kind`` (checked by decoding it again).

    Raises:
        BotControlError: ``malformed``: the fields do not make the control
            (``too large`` when it would not fit one control message).
    """
    data = canonical_encode({"v": 1, **fields})
    if len(data) > MAX_CONTROL:
        raise BotControlError("malformed", "too large for one control message")
    decode_control(kind, data)
    return data


def decode_control(kind: str, data: bytes) -> dict[str, Any]:
    """The checked fields of a received bot control (keyboards, buttons, articles typed).

    Raises:
        BotControlError: ``malformed``: not the map of ``kind`` within bounds.
    """
    if kind not in _FIELDS:
        raise _malformed(f"unknown kind {kind!r}")
    try:
        raw = canonical_decode(data, _LIMITS)
    except DecodeError:
        raise _malformed("not canonical CBOR within bounds") from None
    required, optional = _FIELDS[kind]
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise _malformed("not a version 1 map")
    fields = {k: v for k, v in raw.items() if k != "v"}
    if not required <= set(fields) <= required | optional:
        raise _malformed(f"{kind} needs exactly {sorted(required)}")
    return _typed(fields)


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for name in ("q", "id"):
        if name in fields and (not isinstance(fields[name], bytes) or len(fields[name]) != 16):
            raise _malformed(f"{name} is 16 bytes")
    if "kb" in fields:
        out["kb"] = Keyboard.from_wire(fields["kb"])
    if "d" in fields:
        _data(fields["d"])
    if "text" in fields:
        _text(fields["text"], MAX_ANSWER_TEXT, "an answer's text", low=0)
    if "alert" in fields and not isinstance(fields["alert"], bool):
        raise _malformed("alert is a boolean")
    if "u" in fields:
        _url(fields["u"])
    if "c" in fields:
        out["c"] = _commands(fields["c"])
    if "about" in fields:  # the bot's description, and what it asks for in groups
        _text(fields["about"], 512, "a description", low=0)
    if "grant" in fields:
        try:
            out["grant"] = BotGrant.from_wire(fields["grant"])
        except ValueError:
            raise _malformed("grant is an integer 0-7") from None
    if "query" in fields:
        _text(fields["query"], MAX_QUERY, "a query", low=0)
    for name, high in (("off", MAX_OFFSET), ("next", MAX_OFFSET)):
        if name in fields:
            _text(fields[name], high, f"{name}", low=0)
    if "r" in fields:
        if not isinstance(fields["r"], list) or len(fields["r"]) > MAX_RESULTS:
            raise _malformed(f"results are a list of at most {MAX_RESULTS}")
        out["r"] = [_article(item) for item in fields["r"]]
        if len({a.result_id for a in out["r"]}) != len(out["r"]):
            raise _malformed("two results share an id")
    return out


def _commands(raw: object) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or len(raw) > 100:
        raise _malformed("commands are a list of at most 100")
    commands = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 2:
            raise _malformed("a command is [name, description]")
        commands.append((_text(item[0], 32, "a command"), _text(item[1], 256, "a description")))
    return commands


# -- the Bot API's reply_markup ----------------------------------------------------------


def _json_param(params: Mapping[str, object], name: str) -> object:
    """A structured parameter: as sent in JSON, or JSON text (a form field)."""
    raw = params.get(name)
    if isinstance(raw, str):
        if len(raw) > 64_000:
            raise BotApiError(400, f"Bad Request: {name} is too long")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise BotApiError(400, f"Bad Request: {name} must be JSON") from None
    return raw


def parse_reply_markup(params: Mapping[str, object]) -> Keyboard | None:
    """The ``reply_markup`` of a send: an ``InlineKeyboardMarkup``, or None when absent.

    Raises:
        BotApiError: 400 for any other markup, a button other than a
            ``callback_data`` or ``url`` one, or a bound exceeded.
    """
    raw = _json_param(params, "reply_markup")
    if raw is None:
        return None
    rows = raw.get("inline_keyboard") if isinstance(raw, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotApiError(400, "Bad Request: only an InlineKeyboardMarkup is supported")
    try:
        return Keyboard(tuple(tuple(_telegram_button(b) for b in row) for row in rows))
    except BotControlError as exc:
        raise BotApiError(400, f"Bad Request: {exc}") from None


def _telegram_button(raw: object) -> Button:
    if not isinstance(raw, dict) or not {"text"} < set(raw) <= {"text", "callback_data", "url"}:
        raise _malformed("a button needs text and callback_data or url (others are not served)")
    values = raw["text"], raw.get("callback_data"), raw.get("url")
    if not all(isinstance(v, str | None) for v in values) or values[0] is None:
        raise _malformed("a button's fields are text")
    return Button(str(values[0]), values[1], values[2])
