"""The Bot API's engine pieces: a bot's book of tokens and commands, and the call shapes.

A bot is an identity on its own user node (messages to it stay end to end
encrypted to that node). The node serves a Bot API in the shape of Telegram's
(``/bot<token>/<method>``, docs/protocol.md section 34); this module holds
what it decides: :class:`BotBook` (profile, commands, scoped tokens kept as
SHA-256 digests, the confirmed update offset), the typed parameters of each
method (``parse_*``), the Telegram-shaped objects (:func:`message_update`,
:func:`bot_user`, :func:`sent_message`, :func:`chat_number`), the contact
name an open bot gives a stranger (:func:`stranger_name`) and the answer
envelope (:func:`ok_answer`, :func:`error_answer`). Files, locations, edits
and deletes: multipart bodies (:func:`parse_form`, :class:`Upload`), their
calls (:func:`parse_send_media`, :func:`parse_send_location`,
:func:`parse_edit_text`, :func:`parse_delete_message`, :func:`parse_get_file`),
file ids (:func:`file_id`), message numbers (:func:`message_number`) and
their objects (:func:`incoming_update`, :func:`edited_update`,
:func:`media_message`, :func:`file_object`). Refusals are :class:`BotApiError`
with Telegram's ``error_code``.

Inline keyboards, button presses, command lists and inline queries travel
between the user's node and the bot's node as control messages
(:func:`encode_control`, :func:`decode_control`, section 35); the books that
decide which presses are real and which answers are awaited are
:class:`SentKeyboards`, :class:`ReceivedKeyboards` and :class:`QueryBook`.
A refused control is :class:`BotControlError`.

Strangers (anyone but the contacts the owner chose) are limited at the bot's
node by :class:`StrangerGate` under :class:`BotLimits` (a
:class:`StrangerBucket` each, caps on pending updates); an over-limit text is
refused with a :class:`StrangerLimitError` code (section 48).

In groups (:mod:`._bot_groups`): a group's negative chat number
(:func:`group_chat_number`), its ``Chat`` (:func:`group_chat`), the update of
a group message (:func:`group_message_update`) and a post's ``Message``
(:func:`group_sent_message`); what a bot asks for and is granted there is a
:class:`BotGrant`.
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
from ._bot_book import STRANGER_MARK as STRANGER_MARK
from ._bot_book import BotBook as BotBook
from ._bot_book import BotCommand as BotCommand
from ._bot_book import BotToken as BotToken
from ._bot_book import stranger_name as stranger_name
from ._bot_form import MAX_FORM as MAX_FORM
from ._bot_form import Upload as Upload
from ._bot_form import parse_form as parse_form
from ._bot_groups import group_chat as group_chat
from ._bot_groups import group_chat_number as group_chat_number
from ._bot_groups import group_message_update as group_message_update
from ._bot_groups import group_sent_message as group_sent_message
from ._bot_inline import AnswerCallback as AnswerCallback
from ._bot_inline import AnswerInline as AnswerInline
from ._bot_inline import QueryBook as QueryBook
from ._bot_inline import ReceivedKeyboards as ReceivedKeyboards
from ._bot_inline import SentKeyboard as SentKeyboard
from ._bot_inline import SentKeyboards as SentKeyboards
from ._bot_inline import callback_update as callback_update
from ._bot_inline import inline_update as inline_update
from ._bot_inline import parse_answer_callback as parse_answer_callback
from ._bot_inline import parse_answer_inline as parse_answer_inline
from ._bot_limits import GATED_CONTROLS as GATED_CONTROLS
from ._bot_limits import BotLimits as BotLimits
from ._bot_limits import StrangerBucket as StrangerBucket
from ._bot_limits import StrangerGate as StrangerGate
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
from ._bot_wire import ANSWER_KIND as ANSWER_KIND
from ._bot_wire import BOT_KINDS as BOT_KINDS
from ._bot_wire import COMMANDS_ASK_KIND as COMMANDS_ASK_KIND
from ._bot_wire import COMMANDS_KIND as COMMANDS_KIND
from ._bot_wire import INLINE_ASK_KIND as INLINE_ASK_KIND
from ._bot_wire import INLINE_RESULTS_KIND as INLINE_RESULTS_KIND
from ._bot_wire import KEYBOARD_KIND as KEYBOARD_KIND
from ._bot_wire import PRESS_KIND as PRESS_KIND
from ._bot_wire import Article as Article
from ._bot_wire import Button as Button
from ._bot_wire import Keyboard as Keyboard
from ._bot_wire import decode_control as decode_control
from ._bot_wire import encode_control as encode_control
from ._bot_wire import parse_reply_markup as parse_reply_markup
from ._errors import BotApiError as BotApiError
from ._errors import BotControlError as BotControlError
from ._errors import StrangerLimitError as StrangerLimitError
from ._group_bots import BotGrant as BotGrant

__all__ = (
    "ANSWER_KIND",
    "AnswerCallback",
    "AnswerInline",
    "Article",
    "BOT_KINDS",
    "BotApiError",
    "BotBook",
    "BotCommand",
    "BotControlError",
    "BotGrant",
    "BotLimits",
    "BotToken",
    "Button",
    "COMMANDS_ASK_KIND",
    "COMMANDS_KIND",
    "DeleteMessage",
    "EditText",
    "GATED_CONTROLS",
    "GetUpdates",
    "INLINE_ASK_KIND",
    "INLINE_RESULTS_KIND",
    "KEYBOARD_KIND",
    "Keyboard",
    "MAX_FORM",
    "MEDIA_METHODS",
    "PRESS_KIND",
    "QueryBook",
    "ReceivedKeyboards",
    "SCOPES",
    "STRANGER_MARK",
    "SendLocation",
    "SendMedia",
    "SendMessage",
    "SentKeyboard",
    "SentKeyboards",
    "StrangerBucket",
    "StrangerGate",
    "StrangerLimitError",
    "Upload",
    "bot_user",
    "callback_update",
    "chat_number",
    "decode_control",
    "edited_update",
    "encode_control",
    "error_answer",
    "file_id",
    "file_object",
    "find_chat",
    "group_chat",
    "group_chat_number",
    "group_message_update",
    "group_sent_message",
    "incoming_update",
    "inline_update",
    "media_message",
    "message_number",
    "message_update",
    "ok_answer",
    "parse_answer_callback",
    "parse_answer_inline",
    "parse_commands",
    "parse_delete_message",
    "parse_edit_text",
    "parse_file_id",
    "parse_file_path",
    "parse_form",
    "parse_get_file",
    "parse_get_updates",
    "parse_reply_markup",
    "parse_send_location",
    "parse_send_media",
    "parse_send_message",
    "sent_message",
    "stranger_name",
)
