"""The Bot API's engine pieces: a bot's book of tokens and commands, and the call shapes.

A bot is an identity on its own user node (messages to it stay end to end
encrypted to that node). The node serves a Bot API in the shape of Telegram's
(``/bot<token>/<method>``, docs/protocol.md section 34); this module holds
what it decides: :class:`BotBook` (profile, commands, scoped tokens kept as
SHA-256 digests, the confirmed update offset), the typed parameters of each
method (``parse_*``), the Telegram-shaped objects (:func:`message_update`,
:func:`bot_user`, :func:`sent_message`, :func:`chat_number`) and the answer
envelope (:func:`ok_answer`, :func:`error_answer`). Files, locations, edits
and deletes: multipart bodies (:func:`parse_form`, :class:`Upload`), their
calls (:func:`parse_send_media`, :func:`parse_send_location`,
:func:`parse_edit_text`, :func:`parse_delete_message`, :func:`parse_get_file`),
file ids (:func:`file_id`), message numbers (:func:`message_number`) and
their objects (:func:`incoming_update`, :func:`edited_update`,
:func:`media_message`, :func:`file_object`). Refusals are :class:`BotApiError`
with Telegram's ``error_code``.
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
from ._bot_form import MAX_FORM as MAX_FORM
from ._bot_form import Upload as Upload
from ._bot_form import parse_form as parse_form
from ._bot_media import MEDIA_METHODS as MEDIA_METHODS
from ._bot_media import DeleteMessage as DeleteMessage
from ._bot_media import EditText as EditText
from ._bot_media import SendLocation as SendLocation
from ._bot_media import SendMedia as SendMedia
from ._bot_media import edited_update as edited_update
from ._bot_media import file_id as file_id
from ._bot_media import file_object as file_object
from ._bot_media import find_chat as find_chat
from ._bot_media import incoming_update as incoming_update
from ._bot_media import media_message as media_message
from ._bot_media import message_number as message_number
from ._bot_media import parse_delete_message as parse_delete_message
from ._bot_media import parse_edit_text as parse_edit_text
from ._bot_media import parse_file_id as parse_file_id
from ._bot_media import parse_file_path as parse_file_path
from ._bot_media import parse_get_file as parse_get_file
from ._bot_media import parse_send_location as parse_send_location
from ._bot_media import parse_send_media as parse_send_media
from ._errors import BotApiError as BotApiError

__all__ = (
    "BotApiError",
    "BotBook",
    "BotCommand",
    "BotToken",
    "DeleteMessage",
    "EditText",
    "GetUpdates",
    "MAX_FORM",
    "MEDIA_METHODS",
    "SCOPES",
    "SendLocation",
    "SendMedia",
    "SendMessage",
    "Upload",
    "bot_user",
    "chat_number",
    "edited_update",
    "error_answer",
    "file_id",
    "file_object",
    "find_chat",
    "incoming_update",
    "media_message",
    "message_number",
    "message_update",
    "ok_answer",
    "parse_commands",
    "parse_delete_message",
    "parse_edit_text",
    "parse_file_id",
    "parse_file_path",
    "parse_form",
    "parse_get_file",
    "parse_get_updates",
    "parse_send_location",
    "parse_send_media",
    "parse_send_message",
    "sent_message",
)
