"""Typed Bot API objects: frozen dataclasses parsed defensively from the node's JSON.

Each ``from_json`` takes one decoded JSON value and answers the object or raises
:class:`~dchat_bots.MalformedReplyError` naming the bad field: a required field
missing or of the wrong type, or an object that is not an object. Fields the
framework does not know are ignored, so a node that serves more of Telegram's
objects (photos, keyboards, ...) still parses. Integers are never booleans.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._markup import InlineKeyboardMarkup
from ._parse import BOOL, FLOAT, INT, STR, ArrayOf, Parsed, opt, req

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


@dataclass(frozen=True, slots=True)
class User(Parsed):
    """A person or a bot (``from`` of a message, ``getMe``)."""

    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None

    _WHERE = "user"
    _FIELDS = (
        req("id", INT),
        req("is_bot", BOOL, missing=False),
        req("first_name", STR),
        opt("last_name", STR),
        opt("username", STR),
    )


@dataclass(frozen=True, slots=True)
class Chat(Parsed):
    """A conversation: ``type`` is ``private`` for a contact, ``group`` for a private group
    (a negative ``id``, its ``title``)."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None

    _WHERE = "chat"
    _FIELDS = (
        req("id", INT),
        req("type", STR),
        opt("title", STR),
        opt("username", STR),
        opt("first_name", STR),
    )


@dataclass(frozen=True, slots=True)
class MessageEntity(Parsed):
    """A marked span of a text: ``bot_command``, ``url``, ... (offsets in UTF-16 units)."""

    type: str
    offset: int
    length: int

    _WHERE = "entity"
    _FIELDS = (req("type", STR), req("offset", INT), req("length", INT))


@dataclass(frozen=True, slots=True)
class _ReceivedFile(Parsed):
    """The fields every file object starts with (a photo, a document, ``getFile``'s answer)."""

    file_id: str
    file_unique_id: str | None = None
    file_size: int | None = None


_FILE_FIELDS = (req("file_id", STR), opt("file_unique_id", STR), opt("file_size", INT))


@dataclass(frozen=True, slots=True)
class PhotoSize(_ReceivedFile):
    """One size of a received photo (the node sends one: the photo as it came)."""

    width: int | None = None
    height: int | None = None

    _WHERE = "photo"
    _FIELDS = (*_FILE_FIELDS, opt("width", INT), opt("height", INT))


@dataclass(frozen=True, slots=True)
class Document(_ReceivedFile):
    """A received file of any kind; fetch it with ``bot.get_file(file_id)``."""

    mime_type: str | None = None
    file_name: str | None = None

    _WHERE = "document"
    _FIELDS = (*_FILE_FIELDS, opt("mime_type", STR), opt("file_name", STR))


@dataclass(frozen=True, slots=True)
class Audio(_ReceivedFile):
    """A received music file (``duration`` in seconds)."""

    mime_type: str | None = None
    file_name: str | None = None
    duration: int | None = None

    _WHERE = "audio"
    _FIELDS = (*_FILE_FIELDS, opt("mime_type", STR), opt("file_name", STR), opt("duration", INT))


@dataclass(frozen=True, slots=True)
class Voice(_ReceivedFile):
    """A received voice note (``duration`` in seconds)."""

    mime_type: str | None = None
    duration: int | None = None

    _WHERE = "voice"
    _FIELDS = (*_FILE_FIELDS, opt("mime_type", STR), opt("duration", INT))


@dataclass(frozen=True, slots=True)
class Video(_ReceivedFile):
    """A received video."""

    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None

    _WHERE = "video"
    _FIELDS = (
        *_FILE_FIELDS,
        opt("mime_type", STR),
        opt("file_name", STR),
        opt("width", INT),
        opt("height", INT),
        opt("duration", INT),
    )


@dataclass(frozen=True, slots=True)
class Location(Parsed):
    """A point on the map, in degrees."""

    latitude: float
    longitude: float

    _WHERE = "location"
    _FIELDS = (req("latitude", FLOAT), req("longitude", FLOAT))


@dataclass(frozen=True, slots=True)
class File(_ReceivedFile):
    """``getFile``'s answer: download it with ``bot.download_file(file)``."""

    file_path: str | None = None

    _WHERE = "file"
    _FIELDS = (*_FILE_FIELDS, opt("file_path", STR))


@dataclass(frozen=True, slots=True)
class Message(Parsed):
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

    _WHERE = "message"
    _FIELDS = (
        req("message_id", INT),
        req("chat", Chat),
        req("date", INT),
        opt("from_user", User, key="from"),
        opt("text", STR),
        opt("caption", STR),
        opt("entities", ArrayOf(MessageEntity), default=()),
        opt("edit_date", INT),
        opt("photo", ArrayOf(PhotoSize), default=()),
        opt("document", Document),
        opt("audio", Audio),
        opt("voice", Voice),
        opt("video", Video),
        opt("location", Location),
        opt("reply_markup", InlineKeyboardMarkup),
    )


@dataclass(frozen=True, slots=True)
class CallbackQuery(Parsed):
    """A press of an inline keyboard button; answer it with ``answerCallbackQuery``."""

    id: str
    from_user: User
    data: str | None = None
    message: Message | None = None
    chat_instance: str | None = None

    _WHERE = "callback_query"
    _FIELDS = (
        req("id", STR),
        req("from_user", User, key="from"),
        opt("data", STR),
        opt("message", Message),
        opt("chat_instance", STR),
    )


@dataclass(frozen=True, slots=True)
class InlineQuery(Parsed):
    """A user's inline query to the bot; answer it with ``answerInlineQuery``."""

    id: str
    from_user: User
    query: str
    offset: str = ""

    _WHERE = "inline_query"
    _FIELDS = (
        req("id", STR),
        req("from_user", User, key="from"),
        req("query", STR),
        opt("offset", STR, default=""),
    )


Event = Message | CallbackQuery | InlineQuery
"""What a handler receives: the one object an update carries."""


@dataclass(frozen=True, slots=True)
class Update(Parsed):
    """One update from ``getUpdates``: its id and at most one event.

    An update of a kind this framework does not know keeps only its id
    (``kind`` is ``None``); the dispatcher confirms it and hands it to nobody.
    """

    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None
    inline_query: InlineQuery | None = None

    _WHERE = "update"
    _FIELDS = (
        req("update_id", INT),
        opt("message", Message),
        opt("edited_message", Message),
        opt("callback_query", CallbackQuery),
        opt("inline_query", InlineQuery),
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
class BotCommand(Parsed):
    """A command the bot lists (``setMyCommands``): ``command`` without its ``/``."""

    command: str
    description: str

    _WHERE = "command"
    _FIELDS = (req("command", STR), req("description", STR))

    def to_json(self) -> dict[str, str]:
        return {"command": self.command, "description": self.description}
