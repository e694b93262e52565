"""``Context``: what a handler, a filter and a middleware get beside the event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dchat_core import CallerError

from ._errors import DchatBotsError

if TYPE_CHECKING:
    import re

    from ._bot import Bot
    from ._filters import CommandArgs
    from ._fsm import FSMContext
    from ._types import Message, Update

__all__ = ("Context", "NoChatError")


class NoChatError(DchatBotsError, CallerError, LookupError):
    """The update has no chat to answer in."""


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
        chat = self.update.chat_id if self.update.chat_id is not None else self.update.user_id
        if chat is None:
            raise NoChatError(f"update {self.update.update_id} has no chat to answer in")
        return await self.bot.send_message(chat, text, **extra)
