"""The Bot API's engine pieces: a bot's book of tokens and commands, and the call shapes.

A bot is an identity on its own user node (messages to it stay end to end
encrypted to that node). The node serves a Bot API in the shape of Telegram's
(``/bot<token>/<method>``, docs/protocol.md section 34); this module holds
what it decides: :class:`BotBook` (profile, commands, scoped tokens kept as
SHA-256 digests, the confirmed update offset), the typed parameters of each
method (``parse_*``), the Telegram-shaped objects (:func:`message_update`,
:func:`bot_user`, :func:`sent_message`, :func:`chat_number`) and the answer
envelope (:func:`ok_answer`, :func:`error_answer`). Refusals are
:class:`BotApiError` with Telegram's ``error_code``.
"""

from __future__ import annotations

from ._bot_api import GetUpdates as GetUpdates
from ._bot_api import SendMessage as SendMessage
from ._bot_api import bot_user as bot_user
from ._bot_api import chat_number as chat_number
from ._bot_api import error_answer as error_answer
from ._bot_api import message_update as message_update
from ._bot_api import ok_answer as ok_answer
from ._bot_api import parse_commands as parse_commands
from ._bot_api import parse_get_updates as parse_get_updates
from ._bot_api import parse_send_message as parse_send_message
from ._bot_api import sent_message as sent_message
from ._bot_book import SCOPES as SCOPES
from ._bot_book import BotBook as BotBook
from ._bot_book import BotCommand as BotCommand
from ._bot_book import BotToken as BotToken
from ._errors import BotApiError as BotApiError

__all__ = (
    "BotApiError",
    "BotBook",
    "BotCommand",
    "BotToken",
    "GetUpdates",
    "SCOPES",
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
