"""Typed Bot API objects: frozen dataclasses parsed defensively from the node's JSON.

Each ``from_json`` takes one decoded JSON value and answers the object or raises
:class:`~dchat_bots.MalformedReplyError` naming the bad field: a required field
missing or of the wrong type, or an object that is not an object. Fields the
framework does not know are ignored, so a node that serves more of Telegram's
objects (photos, keyboards, ...) still parses. Integers are never booleans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import MalformedReplyError
from ._markup import InlineKeyboardMarkup

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "Audio",
    "BotCommand",
    "CallbackQuery",
    "Chat",
    "Document",
    "File",
    "InlineQuery",
    "Location",
    "Message",
    "MessageEntity",
    "PhotoSize",
    "Update",
    "User",
    "Video",
    "Voice",
)

T = TypeVar("T")


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReplyError(f"{where} must be an object")
    return value


def _int(raw: Mapping[str, Any], name: str, where: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedReplyError(f"{where}.{name} must be an integer")
    return value


def _str(raw: Mapping[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise MalformedReplyError(f"{where}.{name} must be a string")
    return value


def _opt_str(raw: Mapping[str, Any], name: str, where: str) -> str | None:
    return None if raw.get(name) is None else _str(raw, name, where)


def _opt_int(raw: Mapping[str, Any], name: str, where: str) -> int | None:
    return None if raw.get(name) is None else _int(raw, name, where)


def _opt(
    raw: Mapping[str, Any], name: str, where: str, parse: Callable[[object, str], T]
) -> T | None:
    value = raw.get(name)
    return None if value is None else parse(value, f"{where}.{name}")


def _float(raw: Mapping[str, Any], name: str, where: str) -> float:
    value = raw.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MalformedReplyError(f"{where}.{name} must be a number")
    return float(value)


@dataclass(frozen=True, slots=True)
class User:
    """A person or a bot (``from`` of a message, ``getMe``)."""

    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "user") -> User:
        raw = _object(value, where)
        is_bot = raw.get("is_bot", False)
        if not isinstance(is_bot, bool):
            raise MalformedReplyError(f"{where}.is_bot must be a boolean")
        return cls(
            _int(raw, "id", where),
            is_bot,
            _str(raw, "first_name", where),
            _opt_str(raw, "last_name", where),
            _opt_str(raw, "username", where),
        )


@dataclass(frozen=True, slots=True)
class Chat:
    """A conversation: ``type`` is ``private`` for a contact, ``group`` for a private group
    (a negative ``id``, its ``title``)."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "chat") -> Chat:
        raw = _object(value, where)
        return cls(
            _int(raw, "id", where),
            _str(raw, "type", where),
            _opt_str(raw, "title", where),
            _opt_str(raw, "username", where),
            _opt_str(raw, "first_name", where),
        )


@dataclass(frozen=True, slots=True)
class MessageEntity:
    """A marked span of a text: ``bot_command``, ``url``, ... (offsets in UTF-16 units)."""

    type: str
    offset: int
    length: int

    @classmethod
    def from_json(cls, value: object, where: str = "entity") -> MessageEntity:
        raw = _object(value, where)
        return cls(_str(raw, "type", where), _int(raw, "offset", where), _int(raw, "length", where))


def _entities(value: object, where: str) -> tuple[MessageEntity, ...]:
    if not isinstance(value, list):
        raise MalformedReplyError(f"{where} must be an array")
    return tuple(MessageEntity.from_json(item, f"{where}[{i}]") for i, item in enumerate(value))


@dataclass(frozen=True, slots=True)
class PhotoSize:
    """One size of a received photo (the node sends one: the photo as it came)."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "photo") -> PhotoSize:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_int(raw, "width", where),
            _opt_int(raw, "height", where),
        )


def _photo(value: object, where: str) -> tuple[PhotoSize, ...]:
    if not isinstance(value, list):
        raise MalformedReplyError(f"{where} must be an array")
    return tuple(PhotoSize.from_json(item, f"{where}[{i}]") for i, item in enumerate(value))


@dataclass(frozen=True, slots=True)
class Document:
    """A received file of any kind; fetch it with ``bot.get_file(file_id)``."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "document") -> Document:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_str(raw, "mime_type", where),
            _opt_str(raw, "file_name", where),
        )


@dataclass(frozen=True, slots=True)
class Audio:
    """A received music file (``duration`` in seconds)."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None
    duration: int | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "audio") -> Audio:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_str(raw, "mime_type", where),
            _opt_str(raw, "file_name", where),
            _opt_int(raw, "duration", where),
        )


@dataclass(frozen=True, slots=True)
class Voice:
    """A received voice note (``duration`` in seconds)."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    duration: int | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "voice") -> Voice:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_str(raw, "mime_type", where),
            _opt_int(raw, "duration", where),
        )


@dataclass(frozen=True, slots=True)
class Video:
    """A received video."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "video") -> Video:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_str(raw, "mime_type", where),
            _opt_str(raw, "file_name", where),
            _opt_int(raw, "width", where),
            _opt_int(raw, "height", where),
            _opt_int(raw, "duration", where),
        )


@dataclass(frozen=True, slots=True)
class Location:
    """A point on the map, in degrees."""

    latitude: float
    longitude: float

    @classmethod
    def from_json(cls, value: object, where: str = "location") -> Location:
        raw = _object(value, where)
        return cls(_float(raw, "latitude", where), _float(raw, "longitude", where))


@dataclass(frozen=True, slots=True)
class File:
    """``getFile``'s answer: download it with ``bot.download_file(file)``."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None
    file_path: str | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "file") -> File:
        raw = _object(value, where)
        return cls(
            _str(raw, "file_id", where),
            _opt_str(raw, "file_unique_id", where),
            _opt_int(raw, "file_size", where),
            _opt_str(raw, "file_path", where),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A message in a chat. ``from_user`` is Telegram's ``from`` (a keyword in Python).

    A received file has its ``caption`` (if any) and one of ``photo``,
    ``document``, ``audio``, ``voice``, ``video``; a location has ``location``;
    a message with buttons has ``reply_markup``.
    """

    message_id: int
    chat: Chat
    date: int
    from_user: User | None = None
    text: str | None = None
    caption: str | None = None
    entities: tuple[MessageEntity, ...] = ()
    edit_date: int | None = None
    photo: tuple[PhotoSize, ...] = ()
    document: Document | None = None
    audio: Audio | None = None
    voice: Voice | None = None
    video: Video | None = None
    location: Location | None = None
    reply_markup: InlineKeyboardMarkup | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "message") -> Message:
        raw = _object(value, where)
        return cls(
            message_id=_int(raw, "message_id", where),
            chat=Chat.from_json(raw.get("chat"), f"{where}.chat"),
            date=_int(raw, "date", where),
            from_user=_opt(raw, "from", where, User.from_json),
            text=_opt_str(raw, "text", where),
            caption=_opt_str(raw, "caption", where),
            entities=_opt(raw, "entities", where, _entities) or (),
            edit_date=_opt_int(raw, "edit_date", where),
            photo=_opt(raw, "photo", where, _photo) or (),
            document=_opt(raw, "document", where, Document.from_json),
            audio=_opt(raw, "audio", where, Audio.from_json),
            voice=_opt(raw, "voice", where, Voice.from_json),
            video=_opt(raw, "video", where, Video.from_json),
            location=_opt(raw, "location", where, Location.from_json),
            reply_markup=_opt(raw, "reply_markup", where, InlineKeyboardMarkup.from_json),
        )


@dataclass(frozen=True, slots=True)
class CallbackQuery:
    """A press of an inline keyboard button; answer it with ``answerCallbackQuery``."""

    id: str
    from_user: User
    data: str | None = None
    message: Message | None = None
    chat_instance: str | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "callback_query") -> CallbackQuery:
        raw = _object(value, where)
        return cls(
            id=_str(raw, "id", where),
            from_user=User.from_json(raw.get("from"), f"{where}.from"),
            data=_opt_str(raw, "data", where),
            message=_opt(raw, "message", where, Message.from_json),
            chat_instance=_opt_str(raw, "chat_instance", where),
        )


@dataclass(frozen=True, slots=True)
class InlineQuery:
    """A user's inline query to the bot; answer it with ``answerInlineQuery``."""

    id: str
    from_user: User
    query: str
    offset: str = ""

    @classmethod
    def from_json(cls, value: object, where: str = "inline_query") -> InlineQuery:
        raw = _object(value, where)
        offset = _opt_str(raw, "offset", where) or ""
        return cls(
            _str(raw, "id", where),
            User.from_json(raw.get("from"), f"{where}.from"),
            _str(raw, "query", where),
            offset,
        )


Event = Message | CallbackQuery | InlineQuery
"""What a handler receives: the one object an update carries."""


@dataclass(frozen=True, slots=True)
class Update:
    """One update from ``getUpdates``: its id and at most one event.

    An update of a kind this framework does not know keeps only its id
    (``kind`` is ``None``); the dispatcher confirms it and hands it to nobody.
    """

    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None
    inline_query: InlineQuery | None = None

    @classmethod
    def from_json(cls, value: object, where: str = "update") -> Update:
        raw = _object(value, where)
        return cls(
            update_id=_int(raw, "update_id", where),
            message=_opt(raw, "message", where, Message.from_json),
            edited_message=_opt(raw, "edited_message", where, Message.from_json),
            callback_query=_opt(raw, "callback_query", where, CallbackQuery.from_json),
            inline_query=_opt(raw, "inline_query", where, InlineQuery.from_json),
        )

    @property
    def kind(self) -> str | None:
        """``message``, ``edited_message``, ``callback_query``, ``inline_query`` or ``None``."""
        for name in ("message", "edited_message", "callback_query", "inline_query"):
            if getattr(self, name) is not None:
                return name
        return None

    @property
    def event(self) -> Event | None:
        """The object this update carries (``None`` for a kind the framework does not know)."""
        kind = self.kind
        return None if kind is None else getattr(self, kind)

    @property
    def chat_id(self) -> int | None:
        """The chat the update belongs to (a callback's message's chat), if any."""
        event = self.event
        if isinstance(event, Message):
            return event.chat.id
        if isinstance(event, CallbackQuery) and event.message is not None:
            return event.message.chat.id
        return None

    @property
    def user_id(self) -> int | None:
        """The user who caused the update, if known."""
        event = self.event
        return None if event is None or event.from_user is None else event.from_user.id


@dataclass(frozen=True, slots=True)
class BotCommand:
    """A command the bot lists (``setMyCommands``): ``command`` without its ``/``."""

    command: str
    description: str

    @classmethod
    def from_json(cls, value: object, where: str = "command") -> BotCommand:
        raw = _object(value, where)
        return cls(_str(raw, "command", where), _str(raw, "description", where))

    def to_json(self) -> dict[str, str]:
        return {"command": self.command, "description": self.description}
