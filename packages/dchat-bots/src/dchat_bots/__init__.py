"""dchat-bots: an async framework for bots on a dchat node's Bot API (asyncio or trio).

A :class:`Bot` is a client of one bot's Bot API (docs/protocol.md section 34):
typed methods over ``POST <node>/bot<token>/<method>``. A :class:`Dispatcher`
polls its updates with offsets (each handed to handlers once, confirmed after
they ran) and walks its :class:`Router` tree: handlers per update kind chosen
by filters (:class:`Command`, :class:`Text`, :class:`Regex`,
:class:`ChatFilter`, :class:`InState`, or any callable), wrapped by outer and
inner middleware, with error handlers. Conversations are state machines
(:class:`StatesGroup`, ``ctx.state``) kept in a :class:`MemoryStorage` or a
:class:`SQLiteStorage`. Updates are typed, frozen dataclasses (:class:`Update`,
:class:`Message`, :class:`Chat`, :class:`User`, :class:`CallbackQuery`, ...).

An echo bot::

    dp = Dispatcher()

    @dp.message(Text())
    async def echo(message: Message, ctx: Context) -> None:
        await ctx.answer(message.text or "")

    dp.run_polling(Bot(token, "http://127.0.0.1:8470"))
"""

from __future__ import annotations

from ._bot import Bot as Bot
from ._context import Context as Context
from ._context import NoChatError as NoChatError
from ._context import WrongUpdateKindError as WrongUpdateKindError
from ._dispatcher import Dispatcher as Dispatcher
from ._errors import BadRequestError as BadRequestError
from ._errors import BotApiError as BotApiError
from ._errors import BotFileError as BotFileError
from ._errors import BotNetworkError as BotNetworkError
from ._errors import ConflictError as ConflictError
from ._errors import DchatBotsError as DchatBotsError
from ._errors import FileTooLargeError as FileTooLargeError
from ._errors import ForbiddenError as ForbiddenError
from ._errors import MalformedReplyError as MalformedReplyError
from ._errors import MethodNotFoundError as MethodNotFoundError
from ._errors import StateDataError as StateDataError
from ._errors import StateStorageError as StateStorageError
from ._errors import UnauthorizedError as UnauthorizedError
from ._filters import ChatFilter as ChatFilter
from ._filters import Command as Command
from ._filters import CommandArgs as CommandArgs
from ._filters import Filter as Filter
from ._filters import InState as InState
from ._filters import Regex as Regex
from ._filters import Text as Text
from ._fsm import FSMContext as FSMContext
from ._fsm import MemoryStorage as MemoryStorage
from ._fsm import SQLiteStorage as SQLiteStorage
from ._fsm import State as State
from ._fsm import StatesGroup as StatesGroup
from ._fsm import StateStorage as StateStorage
from ._fsm import StorageKey as StorageKey
from ._markup import InlineKeyboardButton as InlineKeyboardButton
from ._markup import InlineKeyboardMarkup as InlineKeyboardMarkup
from ._markup import InlineQueryResultArticle as InlineQueryResultArticle
from ._markup import InputFile as InputFile
from ._router import ErrorHandler as ErrorHandler
from ._router import Handler as Handler
from ._router import Middleware as Middleware
from ._router import Router as Router
from ._types import Audio as Audio
from ._types import BotCommand as BotCommand
from ._types import CallbackQuery as CallbackQuery
from ._types import Chat as Chat
from ._types import Document as Document
from ._types import File as File
from ._types import InlineQuery as InlineQuery
from ._types import Location as Location
from ._types import Message as Message
from ._types import MessageEntity as MessageEntity
from ._types import PhotoSize as PhotoSize
from ._types import Update as Update
from ._types import User as User
from ._types import Video as Video
from ._types import Voice as Voice

__all__ = (
    "Audio",
    "BadRequestError",
    "Bot",
    "BotApiError",
    "BotCommand",
    "BotFileError",
    "BotNetworkError",
    "CallbackQuery",
    "Chat",
    "ChatFilter",
    "Command",
    "CommandArgs",
    "ConflictError",
    "Context",
    "DchatBotsError",
    "Dispatcher",
    "Document",
    "ErrorHandler",
    "FSMContext",
    "File",
    "FileTooLargeError",
    "Filter",
    "ForbiddenError",
    "Handler",
    "InState",
    "InlineKeyboardButton",
    "InlineKeyboardMarkup",
    "InlineQuery",
    "InlineQueryResultArticle",
    "InputFile",
    "Location",
    "MalformedReplyError",
    "MemoryStorage",
    "Message",
    "MessageEntity",
    "MethodNotFoundError",
    "Middleware",
    "NoChatError",
    "PhotoSize",
    "Regex",
    "Router",
    "SQLiteStorage",
    "State",
    "StateDataError",
    "StateStorage",
    "StateStorageError",
    "StatesGroup",
    "StorageKey",
    "Text",
    "UnauthorizedError",
    "Update",
    "User",
    "Video",
    "Voice",
    "WrongUpdateKindError",
)
