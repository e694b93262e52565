"""Filters: which handler takes an event.

A filter looks at the event (a :class:`~dchat_bots.Message`, a
:class:`~dchat_bots.CallbackQuery`, ...) and the :class:`~dchat_bots.Context`,
and answers ``False`` (not mine), ``True`` or a dict (mine, and these values go
into ``ctx.data`` for the handler). Filters combine with ``&``, ``|`` and
``~``. Any callable ``(event, ctx) -> bool | dict`` (plain or async) is a
filter too: routers wrap it with :func:`as_filter`.

The "text" of an event is a message's text (or its caption), a callback
query's data, an inline query's query: :class:`Text` and :class:`Regex` look
at that, so one filter serves commands, buttons and queries.
"""

from __future__ import annotations

import abc
import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ._fsm import State, _state_name
from ._types import CallbackQuery, InlineQuery, Message

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._context import Context

__all__ = (
    "ChatFilter",
    "Command",
    "CommandArgs",
    "Filter",
    "FilterLike",
    "InState",
    "Regex",
    "Text",
    "as_filter",
    "event_text",
)

Verdict: TypeAlias = "bool | dict[str, Any]"


def event_text(event: object) -> str | None:
    """The text filters look at (see the module's docstring)."""
    if isinstance(event, Message):
        return event.text if event.text is not None else event.caption
    if isinstance(event, CallbackQuery):
        return event.data
    if isinstance(event, InlineQuery):
        return event.query
    return None


class Filter(abc.ABC):
    """Base of the filters: a subclass says what :meth:`check` decides."""

    @abc.abstractmethod
    async def check(self, event: Any, ctx: Context) -> Verdict:
        """Whether ``event`` passes (a dict of values passes and hands them to the handler)."""

    def __and__(self, other: FilterLike) -> Filter:
        return _All((self, as_filter(other)))

    def __or__(self, other: FilterLike) -> Filter:
        return _Any((self, as_filter(other)))

    def __invert__(self) -> Filter:
        return _Not(self)


FilterLike: TypeAlias = "Filter | Callable[[Any, Context], Verdict | Awaitable[Verdict]]"


class _Callable(Filter):
    def __init__(self, function: Callable[[Any, Context], Any]) -> None:
        self.function = function

    async def check(self, event: Any, ctx: Context) -> Verdict:
        verdict = self.function(event, ctx)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict if isinstance(verdict, dict) else bool(verdict)


def as_filter(value: FilterLike) -> Filter:
    """A :class:`Filter` for a filter or a callable ``(event, ctx) -> bool | dict``."""
    if isinstance(value, Filter):
        return value
    if not callable(value):
        raise TypeError(f"not a filter: {value!r}")
    return _Callable(value)


class _All(Filter):
    def __init__(self, parts: tuple[Filter, ...]) -> None:
        self.parts = parts

    async def check(self, event: Any, ctx: Context) -> Verdict:
        found: dict[str, Any] = {}
        for part in self.parts:
            verdict = await part.check(event, ctx)
            if verdict is False:
                return False
            if isinstance(verdict, dict):
                found |= verdict
        return found or True


class _Any(Filter):
    def __init__(self, parts: tuple[Filter, ...]) -> None:
        self.parts = parts

    async def check(self, event: Any, ctx: Context) -> Verdict:
        for part in self.parts:
            verdict = await part.check(event, ctx)
            if verdict is not False:
                return verdict
        return False


class _Not(Filter):
    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    async def check(self, event: Any, ctx: Context) -> Verdict:
        return await self.inner.check(event, ctx) is False


@dataclass(frozen=True, slots=True)
class CommandArgs:
    """A matched command: ``/start@echo_bot a b`` is ``name="start"``, ``args="a b"``."""

    name: str
    args: str
    mention: str | None = None


class Command(Filter):
    """A message whose first word is ``/name`` or ``/name@this_bot`` (``ctx.command``).

    With no names, any command. ``/name@other_bot`` is not this bot's command.
    """

    def __init__(self, *names: str, ignore_case: bool = True) -> None:
        self.ignore_case = ignore_case
        fold = str.lower if ignore_case else str
        self.names = frozenset(fold(n.removeprefix("/")) for n in names)

    async def check(self, event: Any, ctx: Context) -> Verdict:
        if not isinstance(event, Message) or not event.text or not event.text.startswith("/"):
            return False
        word, _, args = event.text[1:].partition(" ")
        name, _, mention = word.partition("@")
        if not name:
            return False
        if mention:
            me = await ctx.bot.me()
            if (me.username or "").lower() != mention.lower():
                return False
        key = name.lower() if self.ignore_case else name
        if self.names and key not in self.names:
            return False
        return {"command": CommandArgs(name, args.strip(), mention or None)}


class Text(Filter):
    """The event's text: equal to one of ``values``, or starting with / containing a string.

    With no arguments: any event that has a text.
    """

    def __init__(
        self,
        *values: str,
        startswith: str | None = None,
        contains: str | None = None,
        ignore_case: bool = False,
    ) -> None:
        self.fold = str.casefold if ignore_case else str
        self.values = frozenset(self.fold(v) for v in values)
        self.startswith = None if startswith is None else self.fold(startswith)
        self.contains = None if contains is None else self.fold(contains)

    async def check(self, event: Any, ctx: Context) -> Verdict:
        text = event_text(event)
        if text is None:
            return False
        text = self.fold(text)
        if self.values and text not in self.values:
            return False
        if self.startswith is not None and not text.startswith(self.startswith):
            return False
        return self.contains is None or self.contains in text


class Regex(Filter):
    """The event's text matches ``pattern`` (``re.search``); the match is ``ctx.match``."""

    def __init__(self, pattern: str | re.Pattern[str], flags: int = 0) -> None:
        self.pattern = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

    async def check(self, event: Any, ctx: Context) -> Verdict:
        text = event_text(event)
        found = None if text is None else self.pattern.search(text)
        return False if found is None else {"match": found}


class ChatFilter(Filter):
    """The update's chat is one of ``ids`` (any if none) and of ``type`` (any if ``None``)."""

    def __init__(self, *ids: int, type: str | None = None) -> None:
        self.ids = frozenset(ids)
        self.type = type

    async def check(self, event: Any, ctx: Context) -> Verdict:
        message = event.message if isinstance(event, CallbackQuery) else event
        if not isinstance(message, Message):
            return False
        if self.ids and message.chat.id not in self.ids:
            return False
        return self.type is None or message.chat.type == self.type


class InState(Filter):
    """The conversation is in one of ``states`` (``None``: in no state; ``"*"``: in any)."""

    def __init__(self, *states: State | str | None) -> None:
        self.states = frozenset(_state_name(s) for s in states)

    async def check(self, event: Any, ctx: Context) -> Verdict:
        current = await ctx.state.get()
        return current in self.states or ("*" in self.states and current is not None)
