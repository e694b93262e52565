"""The Bot API's files, locations, edits and deletes: typed calls and Telegram's objects.

Sans-IO, beside :mod:`._bot_api` (texts and updates): the node's route hands
in a call's parameters (multipart uploads arrive as :class:`Upload`) and
stored values; this module answers typed calls or :class:`BotApiError`, and
the JSON objects.

Numbers. A message's ``message_id`` is :func:`message_number`, the first 6
bytes of its message id (big-endian, under 2**48), for the messages a bot
sends and those it receives alike, so an edit, a delete and an
``edited_message`` update name one message by one number.

Files. A ``file_id`` is :func:`file_id`: ``dcf1`` and the base64url of the
message id that carries the file (so it names a file on this node only, and
is resolved through that message's attachment record); its
``file_unique_id`` is the base64url of the first 9 bytes of the sealed blob's
id. ``getFile``'s ``file_path`` is ``<folder>/<file_id>``, served at
``/file/bot<token>/<file_path>``. A bot may send a file again by its
``file_id``; a URL instead of a file is refused (the node never fetches URLs
for a bot).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ._bot_api import chat_number, message_update
from ._bot_form import Upload
from ._errors import BotApiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ._attachment import Attachment

__all__ = (
    "MEDIA_METHODS",
    "DeleteMessage",
    "EditText",
    "SendLocation",
    "SendMedia",
    "edited_update",
    "file_id",
    "file_object",
    "find_chat",
    "incoming_update",
    "media_message",
    "message_number",
    "parse_delete_message",
    "parse_edit_text",
    "parse_file_id",
    "parse_file_path",
    "parse_get_file",
    "parse_send_location",
    "parse_send_media",
)

MiB: Final = 1024 * 1024
MAX_PHOTO: Final = 10 * MiB
"""Telegram's limit for an uploaded photo."""
MAX_UPLOAD: Final = 50 * MiB
"""Telegram's limit for any other uploaded file (the node's own per-kind limits also apply)."""
MAX_CAPTION: Final = 1024
MAX_TEXT: Final = 4096
MAX_DURATION: Final = 86_400
_FILE_PREFIX: Final = "dcf1"
_MESSAGE_ID: Final = 16
MEDIA_METHODS: Final = {
    "sendphoto": ("photo", "image"),
    "senddocument": ("document", "document"),
    "sendaudio": ("audio", "audio"),
    "sendvoice": ("voice", "voice"),
}
"""Bot API method: (its file parameter, the dchat attachment kind)."""
_FOLDER: Final = {"image": "photos", "video": "videos", "audio": "music", "voice": "voice"}
_NUMBER_BYTES: Final = 6


def _bad(what: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {what}")


def message_number(message_id: bytes) -> int:
    """The ``message_id`` a Telegram client sees for the message ``message_id``."""
    return int.from_bytes(message_id[:_NUMBER_BYTES], "big")


def file_id(message_id: bytes) -> str:
    """The ``file_id`` of the file the message ``message_id`` carries."""
    return _FILE_PREFIX + base64.urlsafe_b64encode(message_id).rstrip(b"=").decode()


def parse_file_id(text: object) -> bytes:
    """The message id a ``file_id`` names.

    Raises:
        BotApiError: 400 for anything :func:`file_id` did not make.
    """
    wrong = _bad("wrong file identifier/HTTP URL specified")
    if not isinstance(text, str) or not text.startswith(_FILE_PREFIX) or len(text) != 26:
        raise wrong
    try:
        raw = base64.urlsafe_b64decode(text[len(_FILE_PREFIX) :] + "==")
    except (binascii.Error, ValueError):
        raise wrong from None
    if len(raw) != _MESSAGE_ID or file_id(raw) != text:
        raise wrong
    return raw


def _chat(params: Mapping[str, object]) -> int | str:
    chat = params.get("chat_id")
    if isinstance(chat, str) and chat.strip().isdecimal() and len(chat) < 20:
        chat = int(chat)
    if isinstance(chat, bool) or not isinstance(chat, int | str) or chat == "":
        raise _bad("chat_id is required (a chat number or a contact)")
    if isinstance(chat, str) and len(chat) > 128:
        raise _bad("chat_id is too long")
    return chat


def find_chat(chat_id: int | str, contacts: Iterable[tuple[str, str]]) -> str:
    """The identity id of the contact ``chat_id`` names (its number, name or identity id).

    ``contacts``: ``(identity id, name)`` of each contact.

    Raises:
        BotApiError: 400 ``chat not found``.
    """
    for identity_id, name in contacts:
        if chat_id in (chat_number(identity_id), name, identity_id):
            return identity_id
    raise _bad("chat not found")


def _number(params: Mapping[str, object], name: str) -> int:
    value = params.get(name)
    if isinstance(value, str) and value.strip().isdecimal() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 48:
        raise _bad(f"{name} must be a message number")
    return value


def _text(params: Mapping[str, object], name: str, limit: int, *, empty: bool) -> str:
    value = params.get(name, "" if empty else None)
    if not isinstance(value, str) or not (empty or value.strip()):
        raise _bad(f"{name} must be a non-empty text" if not empty else f"{name} must be a text")
    if len(value) > limit:
        raise _bad(f"{name} is too long")
    return value


@dataclass(frozen=True)
class SendMedia:
    """sendPhoto / sendDocument / sendAudio / sendVoice.

    Exactly one of ``upload`` (a multipart file) and ``source`` (the message
    id a ``file_id`` names) is set.
    """

    chat_id: int | str
    kind: str
    upload: Upload | None
    source: bytes | None
    caption: str
    duration_ms: int


def parse_send_media(method: str, params: Mapping[str, object]) -> SendMedia:
    """A media call's parameters (``method`` lower-cased, a key of :data:`MEDIA_METHODS`).

    Raises:
        BotApiError: 400 for a missing or bad parameter, a URL, an empty file;
            413 for a file over Telegram's limit (10 MB a photo, 50 MB others).
    """
    field, kind = MEDIA_METHODS[method]
    chat = _chat(params)
    value = params.get(field)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value.removeprefix("attach://"), value)
    caption = _text(params, "caption", MAX_CAPTION, empty=True)
    duration = params.get("duration", 0)
    if isinstance(duration, str) and duration.strip().isdecimal() and len(duration) < 8:
        duration = int(duration)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _bad("duration must be an integer")
    if not 0 <= duration <= MAX_DURATION:
        raise _bad(f"duration must be between 0 and {MAX_DURATION}")
    if isinstance(value, Upload):
        if not value.data:
            raise _bad(f"{field} is an empty file")
        if len(value.data) > (MAX_PHOTO if kind == "image" else MAX_UPLOAD):
            raise BotApiError(413, "Request Entity Too Large")
        return SendMedia(chat, kind, value, None, caption, duration * 1000)
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        raise _bad("sending a file by URL is not supported here (upload it)")
    if value is None:
        raise _bad(f"there is no {field} in the request")
    return SendMedia(chat, kind, None, parse_file_id(value), caption, duration * 1000)


@dataclass(frozen=True)
class SendLocation:
    chat_id: int | str
    latitude: float
    longitude: float


def _degrees(params: Mapping[str, object], name: str, bound: float) -> float:
    value = params.get(name)
    if isinstance(value, str) and len(value) < 32:
        with contextlib.suppress(ValueError):  # not a number: refused below
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name} must be a number")
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise _bad(f"{name} must be between {-bound:g} and {bound:g}")
    return float(value)


def parse_send_location(params: Mapping[str, object]) -> SendLocation:
    """sendLocation: ``chat_id``, ``latitude`` (-90..90), ``longitude`` (-180..180)."""
    chat = _chat(params)
    return SendLocation(chat, _degrees(params, "latitude", 90), _degrees(params, "longitude", 180))


@dataclass(frozen=True)
class EditText:
    chat_id: int | str
    message_id: int
    text: str


def parse_edit_text(params: Mapping[str, object]) -> EditText:
    """editMessageText: ``chat_id``, ``message_id``, ``text`` (inline messages: refused)."""
    if params.get("inline_message_id") not in (None, ""):
        raise _bad("inline messages are not supported here")
    chat, number = _chat(params), _number(params, "message_id")
    return EditText(chat, number, _text(params, "text", MAX_TEXT, empty=False))


@dataclass(frozen=True)
class DeleteMessage:
    chat_id: int | str
    message_id: int


def parse_delete_message(params: Mapping[str, object]) -> DeleteMessage:
    """deleteMessage: ``chat_id``, ``message_id``."""
    return DeleteMessage(_chat(params), _number(params, "message_id"))


def parse_get_file(params: Mapping[str, object]) -> bytes:
    """getFile's ``file_id``: the message id it names (400 ``invalid file_id``)."""
    try:
        return parse_file_id(params.get("file_id"))
    except BotApiError:
        raise _bad("invalid file_id") from None


def parse_file_path(path: str) -> bytes:
    """The message id a ``file_path`` (``<folder>/<file_id>``) names (404 otherwise)."""
    folder, _, name = path.partition("/")
    try:
        if folder not in (*_FOLDER.values(), "documents"):
            raise _bad("wrong folder")
        return parse_file_id(name)
    except BotApiError:
        raise BotApiError(404, "Not Found") from None


def _unique(attachment: Attachment) -> str:
    return base64.urlsafe_b64encode(attachment.blob_id[:9]).decode()


def _media(message_id: bytes, att: Attachment) -> dict[str, Any]:
    """The Telegram message fields that show ``att``."""
    if att.is_location:
        return {
            "location": {"latitude": att.latitude_e6 / 1e6, "longitude": att.longitude_e6 / 1e6}
        }
    common: dict[str, Any] = {
        "file_id": file_id(message_id),
        "file_unique_id": _unique(att),
        "file_size": att.size,
    }
    seconds = att.duration_ms // 1000
    if att.kind == "image":
        return {"photo": [common | {"width": att.width, "height": att.height}]}
    named = common | {"mime_type": att.media_type} | ({"file_name": att.name} if att.name else {})
    if att.kind == "video":
        sized = {"width": att.width, "height": att.height, "duration": seconds}
        return {"video": named | sized}
    if att.kind in ("audio", "voice"):
        return {att.kind: named | {"duration": seconds}}
    return {"document": named}


def _with_media(message: dict[str, Any], message_id: bytes, att: Attachment | None) -> None:
    if att is None:
        return
    message.pop("text", None)
    message.pop("entities", None)
    message.update(_media(message_id, att))
    if att.caption:
        message["caption"] = att.caption


def incoming_update(
    cursor: int,
    message_id: bytes,
    *,
    peer_id: str,
    peer_name: str | None,
    text: str,
    sent_at: float,
    attachment: Attachment | None = None,
) -> dict[str, Any]:
    """The ``Update`` of a received message: a text, or a file or location (with its caption)."""
    update = message_update(
        cursor, peer_id=peer_id, peer_name=peer_name, text=text, sent_at=sent_at
    )
    message = update["message"]
    message["message_id"] = message_number(message_id)
    _with_media(message, message_id, attachment)
    return update


def edited_update(
    cursor: int,
    message_id: bytes,
    *,
    peer_id: str,
    peer_name: str | None,
    text: str,
    sent_at: float,
    edited_at: float,
) -> dict[str, Any]:
    """The ``Update`` of a contact's edit of their text: ``edited_message`` with ``edit_date``."""
    message = incoming_update(
        cursor, message_id, peer_id=peer_id, peer_name=peer_name, text=text, sent_at=sent_at
    )["message"]
    message["edit_date"] = int(edited_at)
    return {"update_id": cursor, "edited_message": message}


def media_message(
    message_id: bytes,
    *,
    bot_id: str,
    bot_name: str,
    peer_id: str,
    at: float,
    text: str = "",
    attachment: Attachment | None = None,
    edited_at: float | None = None,
) -> dict[str, Any]:
    """The ``Message`` a send or an edit answers: the bot's text, file or location."""
    message: dict[str, Any] = {
        "message_id": message_number(message_id),
        "from": {"id": chat_number(bot_id), "is_bot": True, "first_name": bot_name},
        "chat": {"id": chat_number(peer_id), "type": "private"},
        "date": int(at),
        "text": text,
    }
    if edited_at is not None:
        message["edit_date"] = int(edited_at)
    _with_media(message, message_id, attachment)
    return message


def file_object(message_id: bytes, attachment: Attachment) -> dict[str, Any]:
    """getFile's ``File`` (a location has none: 400)."""
    if attachment.is_location:
        raise _bad("a location has no file")
    name = file_id(message_id)
    return {
        "file_id": name,
        "file_unique_id": _unique(attachment),
        "file_size": attachment.size,
        "file_path": f"{_FOLDER.get(attachment.kind, 'documents')}/{name}",
    }
