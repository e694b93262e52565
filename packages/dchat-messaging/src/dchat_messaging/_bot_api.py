"""The Bot API's shapes: typed parameters, Telegram-shaped objects, the answer envelope.

Sans-IO: the node's route hands in the merged parameters of a call (query, JSON
or form body; form values are text, and structured ones JSON text, as
Telegram's clients send them) and stored messages as plain values; this module
answers typed parameters or :class:`BotApiError`, and the JSON objects.

Numbers. Telegram's clients want integer ids. A chat (a contact) is numbered
by :func:`chat_number`: the first 6 bytes of SHA-256 of its identity id, a
positive integer under 2**48 (exact in JSON and in JavaScript); the bot's own
``id`` is numbered the same way. An update's ``update_id`` is the node's
event cursor, so update ids only grow; :func:`message_update` numbers the
message by it too, and the node's updates renumber it by its message id
(:func:`~dchat_messaging.bots.incoming_update`, so edits can name it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ._bot_book import BotCommand
from ._errors import BotApiError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "GetUpdates",
    "SendMessage",
    "bot_user",
    "chat_number",
    "error_answer",
    "message_update",
    "ok_answer",
    "parse_commands",
    "parse_get_updates",
    "parse_send_message",
    "sent_message",
)

MAX_TEXT: Final = 4096
MAX_TIMEOUT: Final = 50
MAX_LIMIT: Final = 100
MAX_OFFSET: Final = (1 << 63) - 1


def chat_number(identity_id: str) -> int:
    """The integer a Telegram client sees for ``identity_id`` (a chat or a user)."""
    return int.from_bytes(hashlib.sha256(identity_id.encode()).digest()[:6], "big")


def ok_answer(result: object) -> dict[str, Any]:
    return {"ok": True, "result": result}


def error_answer(error: BotApiError) -> dict[str, Any]:
    return {"ok": False, "error_code": error.error_code, "description": error.description}


def _bad(name: str, what: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {name} {what}")


def _int(params: Mapping[str, object], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and len(value) < 24:
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(name, "must be an integer")
    if not low <= value <= high:
        raise _bad(name, f"must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class GetUpdates:
    offset: int | None
    limit: int
    timeout: int


def parse_get_updates(params: Mapping[str, object]) -> GetUpdates:
    """``offset`` (optional), ``limit`` 1-100, ``timeout`` 0-50 s.

    A negative ``offset`` -N (N at most 100) asks, as in Telegram, for the last
    N updates waiting, and forgets every update before them.
    """
    given = params.get("offset") is not None  # a null offset is no offset
    offset = _int(params, "offset", 0, -MAX_LIMIT, MAX_OFFSET) if given else None
    limit = _int(params, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    timeout = _int(params, "timeout", 0, 0, MAX_TIMEOUT)
    return GetUpdates(offset, limit, timeout)


@dataclass(frozen=True)
class SendMessage:
    chat_id: int | str
    """A chat number (a group's is negative), or a contact's name or identity id."""
    text: str


def parse_send_message(params: Mapping[str, object]) -> SendMessage:
    chat = params.get("chat_id")
    if isinstance(chat, str) and chat.strip().removeprefix("-").isdecimal() and len(chat) < 20:
        chat = int(chat)  # a group's number is negative
    if isinstance(chat, bool) or not isinstance(chat, int | str) or chat in ("", None):
        raise _bad("chat_id", "is required (a chat number or a contact)")
    if isinstance(chat, str) and len(chat) > 128:
        raise _bad("chat_id", "is too long")
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _bad("message text", "is empty")
    if len(text) > MAX_TEXT:
        raise _bad("message", "is too long")
    return SendMessage(chat, text)


def parse_commands(params: Mapping[str, object]) -> list[BotCommand]:
    """``commands``: a list (or its JSON text) of ``{command, description}``."""
    raw = params.get("commands")
    if isinstance(raw, str):
        if len(raw) > 64_000:
            raise _bad("commands", "are too long")
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise _bad("commands", "must be a JSON array") from None
    if not isinstance(raw, list) or len(raw) > 100:
        raise _bad("commands", "must be an array of at most 100 commands")
    commands = []
    for item in raw:
        if not isinstance(item, dict):
            raise _bad("commands", "must hold objects")
        name, description = item.get("command"), item.get("description")
        if not isinstance(name, str) or not isinstance(description, str):
            raise _bad("commands", "need a command and a description")
        commands.append(BotCommand(name.removeprefix("/"), description))
    return commands


def _user(identity_id: str, name: str | None, *, is_bot: bool) -> dict[str, Any]:
    return {"id": chat_number(identity_id), "is_bot": is_bot, "first_name": name or identity_id}


def message_update(
    cursor: int, *, peer_id: str, peer_name: str | None, text: str, sent_at: float
) -> dict[str, Any]:
    """The Telegram ``Update`` for a received text from the contact ``peer_id``."""
    chat = {"id": chat_number(peer_id), "type": "private", "first_name": peer_name or peer_id}
    message = {
        "message_id": cursor,
        "from": _user(peer_id, peer_name, is_bot=False),
        "chat": chat,
        "date": int(sent_at),
        "text": text,
    }
    if text.startswith("/"):  # clients route commands by this entity
        word = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(word)}]
    return {"update_id": cursor, "message": message}


def bot_user(identity_id: str, name: str, *, reads_all: bool = False) -> dict[str, Any]:
    """``getMe``'s ``User`` (``reads_all``: the bot asks to read every group message)."""
    return _user(identity_id, name, is_bot=True) | {
        "username": name,
        "can_join_groups": True,
        "can_read_all_group_messages": reads_all,
        "supports_inline_queries": True,
    }


def sent_message(
    message_number: int, *, bot_id: str, bot_name: str, peer_id: str, text: str, at: float
) -> dict[str, Any]:
    """``sendMessage``'s ``Message``."""
    return {
        "message_id": message_number,
        "from": _user(bot_id, bot_name, is_bot=True),
        "chat": {"id": chat_number(peer_id), "type": "private"},
        "date": int(at),
        "text": text,
    }
