"""``Context``: what a handler, a filter and a middleware get beside the event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dchat_core import CallerError

from ._errors import DchatBotsError

if TYPE_CHECKING:
    import re
    from collections.abc import Sequence

    from ._bot import Bot, FileInput
    from ._filters import CommandArgs
    from ._fsm import FSMContext
    from ._markup import InlineQueryResultArticle
    from ._types import Message, Update

__all__ = ("Context", "NoChatError", "WrongUpdateKindError")


class NoChatError(DchatBotsError, CallerError, LookupError):
    """The update has no chat to answer in."""


class WrongUpdateKindError(DchatBotsError, CallerError, LookupError):
    """The answer is for another kind of update (``answer_callback`` outside a button press)."""


@dataclass(slots=True)
class Context:
    """One update's handling: the bot, the update, its conversation state, shared values.

    Attributes:
        bot: The :class:`~dchat_bots.Bot` the update came from.
        update: The whole update (the handler's event is one of its fields).
        state: The conversation state of the update's chat and user.
        data: Values filters and middleware leave for later steps (a filter's
            match, a middleware's database session, ...).
    """

    bot: Bot
    update: Update
    state: FSMContext
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> CommandArgs | None:
        """What :class:`~dchat_bots.Command` matched (name and arguments), if it ran."""
        return self.data.get("command")

    @property
    def match(self) -> re.Match[str] | None:
        """What :class:`~dchat_bots.Regex` matched, if it ran."""
        return self.data.get("match")

    async def answer(self, text: str, **extra: Any) -> Message:
        """Send ``text`` to the update's chat (``sendMessage``).

        Raises:
            NoChatError: The update belongs to no chat and no user.
        """
        return await self.bot.send_message(self._chat(), text, **extra)

    async def answer_photo(self, photo: FileInput, **extra: Any) -> Message:
        """Send a photo to the update's chat (``sendPhoto``; bytes, a path or a ``file_id``)."""
        return await self.bot.send_photo(self._chat(), photo, **extra)

    async def answer_document(self, document: FileInput, **extra: Any) -> Message:
        """Send a file to the update's chat (``sendDocument``)."""
        return await self.bot.send_document(self._chat(), document, **extra)

    async def answer_callback(
        self, text: str | None = None, *, show_alert: bool = False, url: str | None = None
    ) -> bool:
        """Answer the button press this update is (``answerCallbackQuery``).

        Raises:
            WrongUpdateKindError: The update is not a ``callback_query``.
        """
        query = self.update.callback_query
        if query is None:
            raise WrongUpdateKindError(f"update {self.update.update_id} is no button press")
        return await self.bot.answer_callback_query(query.id, text, show_alert=show_alert, url=url)

    async def answer_inline(
        self, results: Sequence[InlineQueryResultArticle], *, next_offset: str | None = None
    ) -> bool:
        """Answer the inline query this update is (``answerInlineQuery``).

        Raises:
            WrongUpdateKindError: The update is not an ``inline_query``.
        """
        query = self.update.inline_query
        if query is None:
            raise WrongUpdateKindError(f"update {self.update.update_id} is no inline query")
        return await self.bot.answer_inline_query(query.id, results, next_offset=next_offset)

    def _chat(self) -> int:
        chat = self.update.chat_id if self.update.chat_id is not None else self.update.user_id
        if chat is None:
            raise NoChatError(f"update {self.update.update_id} has no chat to answer in")
        return chat
