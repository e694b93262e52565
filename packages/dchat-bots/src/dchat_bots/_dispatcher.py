"""``Dispatcher``: the root router, long polling with offsets, graceful stop.

Theory of operation. The dispatcher asks ``getUpdates`` with the offset one
past the highest update it has seen, which (as in Telegram) confirms to the
node every update below it. A batch is handled completely before the next
call, so an update is confirmed only after its handler ran: if the program
dies mid-batch, the node serves the batch again (at least once). Within one
process an update id is handed to handlers once: ids below the highest seen
are dropped (a batch served twice after a lost answer, for instance).

Inside a batch, updates of one chat run one after the other, in order; chats
run concurrently (at most ``concurrency`` handlers at once), so one slow
conversation does not hold up the others, and one person's conversation
state is never written by two handlers at once.

A malformed update (see :mod:`dchat_bots._types`) is logged with its id and
skipped, its id confirmed like the others. Network trouble and server errors
are retried with exponential backoff (0.5 s doubling up to 30 s); a revoked
token (401), a missing scope (403) or another consumer of the updates (409)
stop polling with the typed error.

:meth:`Dispatcher.stop` (or SIGINT/SIGTERM with ``handle_signals``) cancels
the pending long poll only: the handlers of the current batch finish, the
offset is confirmed with one last short ``getUpdates``, and polling returns.
"""

from __future__ import annotations

import logging
import signal
import traceback
from collections import defaultdict
from typing import TYPE_CHECKING, Literal

import anyio

from ._context import Context
from ._errors import BotApiError, BotNetworkError, DchatBotsError, MalformedReplyError
from ._fsm import FSMContext, MemoryStorage, StateStorage, StorageKey
from ._router import Router, UnhandledError
from ._types import Update

if TYPE_CHECKING:
    from ._bot import Bot

__all__ = ("Dispatcher",)

logger = logging.getLogger("dchat_bots")

_FATAL = (401, 403, 404, 409)
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0


class Dispatcher(Router):
    """The root router of a bot; runs long polling.

    Args:
        storage: Conversation state storage (default: a :class:`MemoryStorage`).
        concurrency: Handlers running at once across chats.
        poll_timeout: Seconds one ``getUpdates`` waits for updates (0-50).
        limit: Updates asked per call (1-100).
    """

    def __init__(
        self,
        *,
        storage: StateStorage | None = None,
        concurrency: int = 16,
        poll_timeout: int = 25,
        limit: int = 100,
    ) -> None:
        super().__init__("dispatcher")
        self.storage: StateStorage = storage if storage is not None else MemoryStorage()
        self.concurrency = concurrency
        self.poll_timeout = poll_timeout
        self.limit = limit
        self._next_offset: int | None = None
        self._stopping = False
        self._poll_scope: anyio.CancelScope | None = None
        self._polling = False

    # -- one update ----------------------------------------------------------------------

    async def feed_update(self, bot: Bot, update: Update) -> bool:
        """Hand ``update`` to the routers once; answers whether a handler took it.

        A handler's exception that no error handler takes is logged, not raised.
        """
        kind, event = update.kind, update.event
        if kind is None:
            return False
        me = await bot.me()
        chat = update.chat_id if update.chat_id is not None else update.user_id
        key = StorageKey(me.id, chat or 0, update.user_id or 0)
        ctx = Context(bot, update, FSMContext(self.storage, key))
        try:
            try:
                return await self._route(update, kind, event, ctx, ())
            except UnhandledError:
                raise
            except Exception as error:  # a filter's or a middleware's: the root's handlers
                if not await self._offer(error, ctx):
                    raise UnhandledError(error) from error
        except UnhandledError as unhandled:
            _log_error(update, unhandled.error)
        return True

    # -- long polling ---------------------------------------------------------------------

    def run_polling(
        self,
        bot: Bot,
        *,
        backend: Literal["asyncio", "trio"] = "asyncio",
        handle_signals: bool = True,
    ) -> None:
        """Poll until stopped (SIGINT/SIGTERM by default): the blocking entry point.

        Closes ``bot`` and the state storage when polling ends.
        """

        async def main() -> None:
            async with bot:
                try:
                    await self.start_polling(bot, handle_signals=handle_signals)
                finally:
                    await self.storage.aclose()

        anyio.run(main, backend=backend)

    async def start_polling(self, bot: Bot, *, handle_signals: bool = False) -> None:
        """Poll ``bot``'s updates and handle them until :meth:`stop`.

        Raises:
            BotApiError: The node refused the token (401), its scope (403) or
                the polling (409: the updates go elsewhere).
        """
        if self._polling:
            raise RuntimeError("this dispatcher is already polling")
        self._polling, self._stopping = True, False
        try:
            async with anyio.create_task_group() as group:
                if handle_signals:
                    group.start_soon(self._stop_on_signals)
                if await self._introduce(bot):
                    await self._poll(bot)
                group.cancel_scope.cancel()
        finally:
            self._polling = False
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._confirm(bot)

    def stop(self) -> None:
        """Stop polling: the current batch's handlers finish, then polling returns."""
        self._stopping = True
        if self._poll_scope is not None:
            self._poll_scope.cancel()

    async def _introduce(self, bot: Bot) -> bool:
        """``getMe`` until the node answers (a node still starting); ``False`` if stopped."""
        delay = _BACKOFF_FIRST
        while not self._stopping:
            try:
                await bot.me()
                return True
            except (BotNetworkError, MalformedReplyError) as error:
                logger.warning("getMe failed (%s); retrying", type(error).__name__)
            await self._pause(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
        return False

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless stopped meanwhile (a stop ends it at once)."""
        with anyio.CancelScope() as scope:
            self._poll_scope = scope
            await anyio.sleep(seconds)
        self._poll_scope = None

    async def _poll(self, bot: Bot) -> None:
        delay = _BACKOFF_FIRST
        while not self._stopping:
            raw: list[object] | None = None
            with anyio.CancelScope() as scope:
                self._poll_scope = scope
                raw = await self._fetch(bot)
            self._poll_scope = None
            if scope.cancelled_caught:
                continue  # stopped: the loop's condition ends it
            if raw is None:  # no answer: wait, unless stopped meanwhile
                await self._pause(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            delay = _BACKOFF_FIRST
            await self._handle_batch(bot, self._take(raw))

    async def _fetch(self, bot: Bot) -> list[object] | None:
        try:
            return await bot.get_raw_updates(self._next_offset, self.limit, self.poll_timeout)
        except BotApiError as error:
            if error.error_code in _FATAL:
                raise
            logger.warning("getUpdates refused (%d); retrying", error.error_code)
        except (BotNetworkError, MalformedReplyError) as error:
            logger.warning("getUpdates failed (%s); retrying", type(error).__name__)
        return None

    def _take(self, raw: list[object]) -> list[Update]:
        """The batch's new, well-formed updates; moves the offset past every id seen."""
        fresh = []
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                logger.warning("an update without an update_id: dropped")
                continue
            if self._next_offset is not None and update_id < self._next_offset:
                continue  # handed over already
            self._next_offset = max(self._next_offset or 0, update_id + 1)
            try:
                fresh.append(Update.from_json(item))
            except MalformedReplyError as error:
                logger.warning("update %d is malformed (%s): skipped", update_id, error)
        return fresh

    async def _handle_batch(self, bot: Bot, updates: list[Update]) -> None:
        by_chat: dict[object, list[Update]] = defaultdict(list)
        for update in updates:
            chat = update.chat_id if update.chat_id is not None else update.user_id
            by_chat[chat if chat is not None else ("update", update.update_id)].append(update)
        limiter = anyio.CapacityLimiter(self.concurrency)

        async def run_chat(queue: list[Update]) -> None:
            for update in queue:
                async with limiter:
                    await self.feed_update(bot, update)

        async with anyio.create_task_group() as group:
            for queue in by_chat.values():
                group.start_soon(run_chat, queue)

    async def _confirm(self, bot: Bot) -> None:
        """Tell the node the handled updates are done (the next getUpdates would)."""
        if self._next_offset is None:
            return
        try:
            await bot.get_raw_updates(self._next_offset, limit=1, timeout=0)
        except DchatBotsError as error:
            logger.warning("could not confirm the last updates (%s)", type(error).__name__)

    async def _stop_on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for received in signals:
                logger.info("signal %d: stopping after the current updates", received)
                self.stop()
                return


def _log_error(update: Update, error: BaseException) -> None:
    """Where, not what: the traceback's frames, without the message (it may hold user text)."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error("update %d: %s not handled\n%s", update.update_id, type(error).__name__, frames)
