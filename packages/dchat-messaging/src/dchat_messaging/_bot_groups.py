"""The Bot API's group shapes: a group's chat number, its updates and a message sent to it.

A group is a Telegram chat of ``type`` ``"group"`` with its ``title``. Its
``id`` is negative, as Telegram's group ids are: minus the first 6 bytes of
SHA-256 of ``"group:"`` and its id in hex (so it never equals a contact's
positive number, and stays exact in JSON and JavaScript). A bot's node makes
an update of each ``group_message`` event it logged that another member
wrote: every message if the bot reads all, else only the commands members
sent it (:mod:`._group_bots`); the bot's own posts are not updates.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from dchat_core import MessageId

from ._bot_api import chat_number
from ._bot_media import message_number

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("group_chat", "group_chat_number", "group_message_update", "group_sent_message")


def group_chat_number(group_id: str) -> int:
    """The (negative) chat id a Telegram client sees for the group ``group_id`` (hex)."""
    digest = hashlib.sha256(f"group:{group_id.lower()}".encode()).digest()
    return -int.from_bytes(digest[:6], "big")


def group_chat(group_id: str, title: str) -> dict[str, Any]:
    """The ``Chat`` of a group."""
    return {"id": group_chat_number(group_id), "type": "group", "title": title}


def group_message_update(cursor: int, event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Update`` of a logged ``group_message`` event (``group``, ``by``, ``message_id``,
    ``text``, ``title``, ``sent_at_ms``, ``sender_name``)."""
    sender, text = str(event["by"]), str(event["text"])
    name = str(event.get("sender_name") or sender)
    message: dict[str, Any] = {
        "message_id": message_number(bytes(MessageId.parse(str(event["message_id"])))),
        "from": {
            "id": chat_number(sender),
            "is_bot": False,
            "first_name": name,
        },
        "chat": group_chat(str(event["group"]), str(event.get("title", ""))),
        "date": int(event.get("sent_at_ms", 0)) // 1000,
        "text": text,
    }
    if text.startswith("/"):  # clients route commands by this entity
        word = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(word)}]
    return {"update_id": cursor, "message": message}


def group_sent_message(
    message_id: bytes, *, bot_id: str, bot_name: str, group_id: str, title: str, text: str,
    at: float,
) -> dict[str, Any]:  # fmt: skip
    """``sendMessage``'s ``Message`` for a text the bot posted to a group."""
    return {
        "message_id": message_number(message_id),
        "from": {"id": chat_number(bot_id), "is_bot": True, "first_name": bot_name},
        "chat": group_chat(group_id, title),
        "date": int(at),
        "text": text,
    }
