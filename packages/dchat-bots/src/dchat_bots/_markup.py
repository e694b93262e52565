"""What a bot sends besides text: files, inline keyboards and inline query results.

:class:`InputFile` is a file to upload (``sendPhoto`` ... of docs/protocol.md §34).

These go out as JSON (``to_json``); a keyboard also comes back on a message
(``Message.reply_markup``, parsed defensively by ``from_json``). The node serves
buttons with ``callback_data`` or ``url`` and results of type ``article`` only,
so those are the only shapes here; the node's own bounds (1-128 characters of
button text, 1-64 bytes of callback data, 1-12 buttons a row, at most 100, at
most 50 results) are checked on construction, so a bad keyboard is a
:class:`ValueError` in the bot's code, not a 400 from the node later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import BotFileError, MalformedReplyError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ("InlineKeyboardButton", "InlineKeyboardMarkup", "InlineQueryResultArticle", "InputFile")

MAX_BUTTONS = 100
MAX_ROW = 12
MAX_RESULTS = 50


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReplyError(f"{where} must be an object")
    return value


def _opt_str(raw: Mapping[str, Any], name: str, where: str) -> str | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedReplyError(f"{where}.{name} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class InputFile:
    """Bytes to upload, with the name and media type the receiver sees.

    ``mime_type`` ``None`` lets httpx guess from ``filename`` (else
    ``application/octet-stream``, for which the node sniffs a photo's, audio's
    or voice's type from its bytes).
    """

    content: bytes
    filename: str
    mime_type: str | None = None

    def __post_init__(self) -> None:
        if not self.filename or any(c in self.filename for c in "\r\n\0/"):
            raise BotFileError("a file name is not empty and has no '/', line break or NUL")

    def __repr__(self) -> str:  # never the bytes
        return f"InputFile({self.filename!r}, {len(self.content)} bytes, {self.mime_type!r})"


@dataclass(frozen=True, slots=True)
class InlineKeyboardButton:
    """A button under a message: a press sends ``callback_data`` to the bot, or opens ``url``."""

    text: str
    callback_data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.text) <= 128:
            raise ValueError("a button's text is 1 to 128 characters")
        if (self.callback_data is None) == (self.url is None):
            raise ValueError("a button has exactly one of callback_data and url")
        if self.callback_data is not None and not 1 <= len(self.callback_data.encode()) <= 64:
            raise ValueError("callback_data is 1 to 64 bytes of UTF-8")
        if self.url is not None and (
            not self.url.startswith(("http://", "https://")) or len(self.url) > 2048
        ):
            raise ValueError("a button's url is http(s), at most 2048 characters")

    def to_json(self) -> dict[str, str]:
        kind = "url" if self.url is not None else "callback_data"
        return {"text": self.text, kind: self.url or self.callback_data or ""}

    @classmethod
    def from_json(cls, value: object, where: str = "button") -> InlineKeyboardButton:
        raw = _object(value, where)
        text = _opt_str(raw, "text", where)
        if text is None:
            raise MalformedReplyError(f"{where}.text must be a string")
        try:
            return cls(text, _opt_str(raw, "callback_data", where), _opt_str(raw, "url", where))
        except ValueError as exc:
            raise MalformedReplyError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class InlineKeyboardMarkup:
    """Rows of buttons under a message (``sendMessage(reply_markup=...)``).

    ``InlineKeyboardMarkup.of([("Yes", "yes"), ("No", "no")])`` is one row of
    two callback buttons; pass several lists for several rows.
    """

    inline_keyboard: tuple[tuple[InlineKeyboardButton, ...], ...]

    def __post_init__(self) -> None:
        if any(not 1 <= len(row) <= MAX_ROW for row in self.inline_keyboard):
            raise ValueError(f"a keyboard row has 1 to {MAX_ROW} buttons")
        if sum(len(row) for row in self.inline_keyboard) > MAX_BUTTONS:
            raise ValueError(f"a keyboard has at most {MAX_BUTTONS} buttons")

    @classmethod
    def of(cls, *rows: Iterable[InlineKeyboardButton | tuple[str, str]]) -> InlineKeyboardMarkup:
        """Rows of buttons; a ``(text, callback_data)`` pair is a callback button."""

        def button(b: InlineKeyboardButton | tuple[str, str]) -> InlineKeyboardButton:
            return b if isinstance(b, InlineKeyboardButton) else InlineKeyboardButton(*b)

        return cls(tuple(tuple(button(b) for b in row) for row in rows))

    def to_json(self) -> dict[str, list[list[dict[str, str]]]]:
        return {"inline_keyboard": [[b.to_json() for b in row] for row in self.inline_keyboard]}

    @classmethod
    def from_json(cls, value: object, where: str = "reply_markup") -> InlineKeyboardMarkup:
        rows = _object(value, where).get("inline_keyboard", [])
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise MalformedReplyError(f"{where}.inline_keyboard must be an array of arrays")
        try:
            return cls(
                tuple(
                    tuple(
                        InlineKeyboardButton.from_json(b, f"{where}.inline_keyboard[{i}][{j}]")
                        for j, b in enumerate(row)
                    )
                    for i, row in enumerate(rows)
                )
            )
        except ValueError as exc:  # a row or count out of bounds (MalformedReplyError passes)
            if isinstance(exc, MalformedReplyError):
                raise
            raise MalformedReplyError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class InlineQueryResultArticle:
    """One inline query result: picking it sends ``message_text`` (``answerInlineQuery``)."""

    id: str
    title: str
    message_text: str
    description: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.id.encode()) <= 64:
            raise ValueError("a result id is 1 to 64 bytes of UTF-8")
        if not 1 <= len(self.title) <= 256:
            raise ValueError("a result title is 1 to 256 characters")
        if not 1 <= len(self.message_text) <= 4096:
            raise ValueError("a result's message_text is 1 to 4096 characters")
        if self.description is not None and len(self.description) > 256:
            raise ValueError("a result description is at most 256 characters")

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "type": "article",
            "id": self.id,
            "title": self.title,
            "input_message_content": {"message_text": self.message_text},
        }
        if self.description is not None:
            result["description"] = self.description
        return result
