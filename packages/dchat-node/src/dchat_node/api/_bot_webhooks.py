"""The bot's webhook: ``setWebhook`` and friends, ``/v1/bot/webhook``, and the task that posts.

Theory of operation. What to send, when, in which order and when to give up is
:class:`dchat_messaging.webhooks.WebhookQueue`'s; this module is its shell. The
state (settings with the signing secret, the queue, the dead letters) lives
in ``bot-webhook.json`` beside the bot book (mode 0600), loaded once and
changed under one lock; a change of the settings is saved at once, answered
deliveries at most every :data:`SAVE_EVERY` seconds and at a clean stop, so a
restart resumes the deliveries that were waiting or on the wire (after a crash
a few answered ones are sent again, which at least once allows). :meth:`WebhookDesk.run` (a task of
``serve_api``) loops: take the bot's new updates in from the event log (the
Bot API's own reading, so a webhook sees what ``getUpdates`` would), start
an HTTP POST for each update that is due, then sleep until the event feed
wakes it, a POST ends, or the next retry is due. Each POST is its own task,
bounded by timeouts; its answer goes back to the queue. Update bodies are
read again from the event log after a restart (the log is encrypted at rest;
the state file holds ids only).

Management (admin token): ``PUT /v1/bot/webhook``, ``GET /v1/bot/webhook``,
``DELETE /v1/bot/webhook``, ``GET /v1/bot/webhook/dead-letters``, ``POST
/v1/bot/webhook/dead-letters/retry``. Wire format: docs/protocol.md, "Bot
webhooks".
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Final

import httpx
import trio
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import DchatError
from dchat_messaging.bots import BotApiError
from dchat_messaging.webhooks import (
    SIGNATURE_HEADER,
    TELEGRAM_SECRET_HEADER,
    Webhook,
    WebhookQueue,
    drop_pending,
    parse_set_webhook,
    sign_webhook,
    update_lane,
)
from dchat_storage import CursorExpiredError

from .._errors import NodeStateError
from ._messages import MAX_CURSOR

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_messaging.bots import BotBook
    from dchat_messaging.webhooks import Delivery, WebhookSettings

    from .._runtime import Node
    from ._bots import BotApi, BotShelf
    from ._events import EventFeed

__all__ = ("WebhookDesk", "add_webhook_routes")

log = logging.getLogger("dchat.bot.webhook")

CONNECT_TIMEOUT: Final = 5.0
POST_TIMEOUT: Final = 10.0
SAVE_EVERY: Final = 0.5
"""Seconds between saves of answered deliveries (a crash in between sends them again)."""
MAX_UPDATE: Final = 1 << 20
"""Bytes of one update's JSON; a larger one goes to the dead letters unsent."""
CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


def _body(update: dict[str, Any]) -> bytes:
    return json.dumps(update, separators=(",", ":"), ensure_ascii=False).encode()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _transport_error(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException | trio.TooSlowError):
        return "Timeout: the webhook did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "Connection failed"
    return "Connection error"


class WebhookDesk:
    """The bot's webhook state, its Bot API methods and its delivery task."""

    def __init__(self, node: Node, shelf: BotShelf, feed: EventFeed, api: BotApi) -> None:
        self._node, self._shelf, self._feed, self._api = node, shelf, feed, api
        self._path = node.config.data_dir / "bot-webhook.json"
        self._lock = trio.Lock()
        self._hook: Webhook | None = None
        self._bodies: dict[int, bytes] = {}
        self._poked = trio.Event()
        self._rng = random.Random()
        self._dirty = False
        """The queue changed since the last save (saved at most every SAVE_EVERY s)."""
        self._saved_at = -math.inf

    # -- state -------------------------------------------------------------------------

    async def _load(self) -> Webhook:
        """The state: read once, then this one object (the first of two loads wins)."""
        if self._hook is None:
            path = trio.Path(self._path)
            hook = Webhook(None, WebhookQueue())
            if await path.exists():
                hook = Webhook.from_json(await path.read_bytes())
            if self._hook is None:
                self._hook = hook
        return self._hook

    async def _save(self, hook: Webhook) -> None:
        data, target = hook.to_json(), self._path
        self._dirty, self._saved_at = False, trio.current_time()

        def save() -> None:
            temp = target.with_suffix(".tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, target)

        await trio.to_thread.run_sync(save)

    def _poke(self) -> None:
        self._poked.set()
        self._poked = trio.Event()

    async def change(self, step: Callable[[Webhook], Any]) -> Any:
        """Apply ``step`` to the state, save it and wake the task; ``step``'s answer."""
        async with self._lock:
            hook = await self._load()
            answer = step(hook)
            await self._save(hook)
        self._poke()
        return answer

    # -- setting it --------------------------------------------------------------------

    async def set(self, book: BotBook, params: dict[str, object]) -> WebhookSettings | None:
        """setWebhook: the new settings (None: the URL was empty, the webhook is removed)."""
        hook = await self._load()
        settings = parse_set_webhook(params, _new_secret(), hook.settings)
        if settings is None:
            await self.delete(params)
            return None
        drop = drop_pending(params)
        head = await self._feed.head() if drop else 0

        def step(hook: Webhook) -> None:
            if hook.settings is None:  # start from what getUpdates did not confirm
                hook.queue.drop_pending(book.offset - 1)
                hook.queue.cursor = book.offset - 1
            if drop:
                hook.queue.drop_pending(head)
                self._bodies.clear()
            hook.settings = settings
            hook.queue.max_connections = settings.max_connections

        await self.change(step)
        return settings

    async def delete(self, params: dict[str, object]) -> None:
        """deleteWebhook: stop posting; getUpdates serves what was not delivered."""
        drop = drop_pending(params)
        head = await self._feed.head() if drop else 0

        def step(hook: Webhook) -> int | None:
            was, hook.settings = hook.settings, None
            resume = hook.queue.resume_offset() if was is not None else None
            hook.queue.drop_pending(hook.queue.cursor)
            self._bodies.clear()
            return head + 1 if drop else resume

        offset = await self.change(step)
        if offset is not None:
            await self._shelf.change(lambda book: book.confirm(offset))

    async def show(self, *, reveal: bool) -> dict[str, Any]:
        """The webhook for the owner; with ``reveal``, a secret not yet shown (once)."""

        def step(hook: Webhook) -> dict[str, Any]:
            queue, settings = hook.queue, hook.settings
            answer = {
                "webhook": hook.info(),
                "dead_letters": len(queue.dead),
                "dead_dropped": queue.dead_dropped,
                "delivered": queue.delivered,
            }
            if reveal and settings is not None and not settings.secret_shown:
                answer["signing_secret"] = settings.signing_secret
                hook.settings = replace(settings, secret_shown=True)
            return answer

        return await self.change(step)  # type: ignore[no-any-return]

    # -- the task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Post the bot's updates until cancelled (a task of the user role's API)."""
        if self._node.config.role != "user":
            return
        timeout = httpx.Timeout(POST_TIMEOUT, connect=CONNECT_TIMEOUT)
        http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        try:
            async with http, trio.open_nursery() as posts:
                while True:
                    changed, poked = self._feed.changed(), self._poked  # armed before the read
                    try:
                        wake = await self._round(http, posts)
                    except (DchatError, OSError, KeyError, TypeError, ValueError) as exc:
                        log.warning("webhook round failed: %s", type(exc).__name__)
                        wake = time.time() + 5.0
                    await _first(changed, poked, wake)
        finally:  # a clean stop saves the last answers (a crash only sends them again)
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                if self._dirty and self._hook is not None:
                    await self._save(self._hook)

    async def _round(self, http: httpx.AsyncClient, posts: trio.Nursery) -> float:
        """Take updates in, start the due POSTs, save now and then; when to look again."""
        async with self._lock:
            hook = await self._load()
            settings = hook.settings
            if settings is None:
                return math.inf
            before = hook.queue.cursor
            more = await self._take_in(hook, settings)
            self._dirty |= hook.queue.cursor != before
            save_at = self._saved_at + SAVE_EVERY
            if self._dirty and trio.current_time() >= save_at:
                await self._save(hook)
            sends = hook.queue.due(time.time())
        for delivery in sends:
            posts.start_soon(self._post, http, settings, delivery)
        wake = hook.queue.next_wake()
        wake = math.inf if wake is None else wake
        if self._dirty:  # the save this round skipped
            wake = min(wake, time.time() + save_at - trio.current_time())
        return time.time() if more else wake

    async def _take_in(self, hook: Webhook, settings: WebhookSettings) -> bool:
        """Queue the updates after the queue's cursor; True if more may be waiting."""
        queue = hook.queue
        room = min(queue.room(), 100)
        if room == 0:
            return False
        head = await self._feed.head()  # before the read: every event up to it is readable
        if head <= queue.cursor:
            return False
        try:
            updates = await self._api.updates_after(queue.cursor, room)
        except CursorExpiredError:
            log.warning("webhook: events were pruned before their delivery")
            queue.skip_to(head)
            return False
        now = time.time()
        for update in updates:
            update_id = int(update["update_id"])
            if settings.allows(update):
                queue.offer(update_id, update_lane(update), now)
                self._bodies[update_id] = _body(update)
            else:
                queue.skip_to(update_id)
        if not updates:  # up to 1,000 events were read and none was an update
            queue.skip_to(min(head, queue.cursor + 1000))
        return queue.cursor < head and queue.room() > 0

    async def _reread(self, update_id: int) -> bytes | None:
        try:
            updates = await self._api.updates_after(update_id - 1, 1, handed=False)
        except CursorExpiredError:
            return None
        if updates and updates[0]["update_id"] == update_id:
            return _body(updates[0])
        return None

    async def _post(
        self, http: httpx.AsyncClient, settings: WebhookSettings, delivery: Delivery
    ) -> None:
        try:
            await self._deliver(http, settings, delivery)
        except (DchatError, OSError, KeyError, TypeError, ValueError) as exc:
            log.warning("webhook delivery failed: %s", type(exc).__name__)
            if self._hook is not None:  # off the wire, retried later (saved at the next change)
                note = "Internal error: the node could not send the update"
                self._hook.queue.failed(delivery.update_id, time.time(), note, self._rng)
            self._poke()

    async def _deliver(
        self, http: httpx.AsyncClient, settings: WebhookSettings, delivery: Delivery
    ) -> None:
        update_id = delivery.update_id
        body = self._bodies.get(update_id) or await self._reread(update_id)
        error, refused = "", ""
        if body is None:
            refused = "the update is no longer in the event log"
        elif len(body) > MAX_UPDATE:
            refused = "the update is larger than 1 MiB"
        else:
            error = await self._send(http, settings, body)
        async with self._lock:
            hook = await self._load()
            queue = hook.queue
            if refused:
                queue.refuse(update_id, time.time(), refused)
            elif error:
                queue.failed(update_id, time.time(), error, self._rng)
            else:
                queue.acknowledged(update_id)
            if all(d.update_id != update_id for lane in queue.lanes.values() for d in lane):
                self._bodies.pop(update_id, None)
            self._dirty = True  # saved by the next round (at least once allows the delay)
        self._poke()

    async def _send(self, http: httpx.AsyncClient, settings: WebhookSettings, body: bytes) -> str:
        """POST ``body``; an error message, or "" for a 2xx."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign_webhook(settings.signing_secret, body, int(time.time())),
        }
        if settings.secret_token is not None:
            headers[TELEGRAM_SECRET_HEADER] = settings.secret_token
        try:
            with trio.fail_after(POST_TIMEOUT + CONNECT_TIMEOUT):
                async with http.stream("POST", settings.url, content=body, headers=headers) as r:
                    status, reason = r.status_code, r.reason_phrase
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, trio.TooSlowError) as exc:
            return _transport_error(exc)
        if 200 <= status < 300:
            return ""
        return f"Wrong response from the webhook: {status} {reason}"[:200]

    # -- reading -----------------------------------------------------------------------

    async def active(self) -> bool:
        return (await self._load()).settings is not None

    async def info(self) -> dict[str, Any]:
        """getWebhookInfo's ``WebhookInfo``."""
        return (await self._load()).info()


async def _first(changed: trio.Event, poked: trio.Event, wake: float) -> None:
    """Wait until either event is set or the wall-clock time ``wake`` has come."""
    delay = wake - time.time()
    if delay <= 0:
        return
    with trio.move_on_after(min(delay, 3600.0)):
        async with trio.open_nursery() as waits:
            for event in (changed, poked):
                waits.start_soon(_wait_then_cancel, event, waits.cancel_scope)


async def _wait_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetWebhookBody(_Strict):
    url: str = Field(min_length=1, max_length=2048)
    secret_token: str | None = Field(default=None, min_length=1, max_length=256)
    max_connections: int = Field(default=40, ge=1, le=100)
    allowed_updates: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=32
    )
    drop_pending_updates: bool = False


class RetryDead(_Strict):
    update_ids: list[Annotated[int, Field(ge=0, le=MAX_CURSOR)]] | None = Field(
        default=None, max_length=1000
    )


def _refused(exc: BotApiError) -> NodeStateError:
    return NodeStateError("not_found" if exc.error_code == 404 else "invalid_request", str(exc))


def add_webhook_routes(
    app: FastAPI, node: Node, shelf: BotShelf, feed: EventFeed, api: BotApi, auth: list[Depends]
) -> WebhookDesk:
    """Serve setWebhook, getWebhookInfo and deleteWebhook, and ``/v1/bot/webhook``."""
    desk = WebhookDesk(node, shelf, feed, api)
    _add_bot_methods(desk, api)

    async def bot() -> BotBook:
        book = await shelf.read()
        if book is None:
            raise NodeStateError("not_found", "this node has no bot (dchat bot create)")
        return book

    @app.put("/v1/bot/webhook", dependencies=auth)
    async def set_webhook(body: SetWebhookBody) -> dict[str, Any]:
        try:
            await desk.set(await bot(), body.model_dump(exclude_none=True))
        except BotApiError as exc:
            raise _refused(exc) from None
        return await desk.show(reveal=True)

    @app.get("/v1/bot/webhook", dependencies=auth)
    async def show_webhook() -> dict[str, Any]:
        await bot()
        return await desk.show(reveal=True)

    @app.delete("/v1/bot/webhook", dependencies=auth)
    async def delete_webhook(
        drop_pending_updates: Annotated[bool, Query()] = False,
    ) -> dict[str, Any]:
        await bot()
        await desk.delete({"drop_pending_updates": drop_pending_updates})
        return await desk.show(reveal=False)

    @app.get("/v1/bot/webhook/dead-letters", dependencies=auth)
    async def dead_letters() -> dict[str, Any]:
        await bot()
        return await desk.change(lambda h: {"dead_letters": [d.to_json() for d in h.queue.dead]})  # type: ignore[no-any-return]

    @app.post("/v1/bot/webhook/dead-letters/retry", dependencies=auth)
    async def retry_dead(body: RetryDead) -> dict[str, Any]:
        await bot()
        now = time.time()
        retried = await desk.change(lambda h: h.queue.retry_dead(body.update_ids, now))
        return {"retried": retried}

    return desk


def _add_bot_methods(desk: WebhookDesk, api: BotApi) -> None:
    async def set_webhook(book: BotBook, params: dict[str, object]) -> object:
        await desk.set(book, params)
        return True

    async def delete_webhook(_: BotBook, params: dict[str, object]) -> object:
        await desk.delete(params)
        return True

    async def webhook_info(_: BotBook, __: dict[str, object]) -> object:
        return await desk.info()

    api.add_method("setwebhook", "updates", set_webhook)
    api.add_method("deletewebhook", "updates", delete_webhook)
    api.add_method("getwebhookinfo", "updates", webhook_info)
    scope, polling = api.method("getupdates")

    async def get_updates(book: BotBook, params: dict[str, object]) -> object:
        if await desk.active():
            raise BotApiError(409, CONFLICT)
        return await polling(book, params)

    api.add_method("getupdates", scope, get_updates)
