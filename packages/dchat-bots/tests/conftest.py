"""A scripted Bot API (httpx.MockTransport) and a fixture running a test under both backends.

:class:`FakeBotApi` answers like the node (docs/protocol.md section 34) for the
methods the framework uses: the envelope, ``getUpdates`` offsets (an offset
confirms every update below it) and long polling (an empty answer waits for an
update or the timeout). It records the calls and the sent messages; tests push
updates and may script failures of the next calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from dchat_bots import Bot

TOKEN = "7:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
API = "http://bot-node.test"
BOT_ID = 4242


class FakeBotApi:
    token, url, bot_id = TOKEN, API, BOT_ID

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0  # the offset: updates below it are gone
        self.sent: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: list[Callable[[], httpx.Response | None]] = []  # the next answers
        self.replay_next = False  # serve the last batch again, once (a lost answer)
        self.revoked = False  # every call (a waiting long poll too) answers 401
        self._next_id = 100
        self._arrived: anyio.Event | None = None
        self._last_batch: list[dict[str, Any]] = []

    # -- what tests do -------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update; answers its id."""
        self._next_id += 1
        self.updates.append({"update_id": self._next_id, **update})
        if self._arrived is not None:
            self._arrived.set()
        return self._next_id

    def text(self, text: str, chat: int = 1, user: int | None = None, **extra: Any) -> int:
        return self.push({"message": message(text, chat, user, **extra)})

    def press(self, data: str, chat: int = 1, user: int | None = None) -> int:
        query = {
            "id": f"q{self._next_id}",
            "from": {"id": user or chat, "is_bot": False, "first_name": "u"},
            "chat_instance": "ci",
            "data": data,
            "message": message("menu", chat, BOT_ID),
        }
        return self.push({"callback_query": query})

    def revoke(self) -> None:
        self.revoked = True
        if self._arrived is not None:
            self._arrived.set()

    def bot(self, **options: Any) -> Bot:
        return Bot(TOKEN, API, transport=httpx.MockTransport(self.handle), **options)

    @staticmethod
    async def until(predicate: Callable[[], object], timeout: float = 10) -> None:
        """Wait (polling every 10 ms) until ``predicate()`` holds."""
        with anyio.fail_after(timeout):
            while True:
                if predicate():
                    return
                await anyio.sleep(0.01)

    @staticmethod
    def envelope(status: int, result: Any) -> httpx.Response:
        return envelope(status, result)

    def texts(self) -> list[tuple[int, str]]:
        return [(m["chat_id"], m["text"]) for m in self.sent]

    # -- the server ----------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        prefix, _, method = request.url.path.rpartition("/")
        params = json.loads(request.content or b"{}")
        self.calls.append((method, params))
        if self.script:
            scripted = self.script.pop(0)()
            if scripted is not None:  # None: answer as usual
                return scripted
        if prefix != f"/bot{TOKEN}" or self.revoked:
            return envelope(401, "Unauthorized")
        answer = getattr(self, f"_{method}", None)
        if answer is None:
            return envelope(404, "Not Found")
        return await answer(params)

    async def _getMe(self, params: dict[str, Any]) -> httpx.Response:
        me = {"id": BOT_ID, "is_bot": True, "first_name": "echo", "username": "echo_bot"}
        return envelope(200, me)

    async def _getUpdates(self, params: dict[str, Any]) -> httpx.Response:
        if "offset" in params:
            self.confirmed = max(self.confirmed, params["offset"])
            self.updates = [u for u in self.updates if u["update_id"] >= self.confirmed]
        if self.replay_next and self._last_batch:
            self.replay_next = False
            return envelope(200, self._last_batch)
        if not self.updates and params.get("timeout"):
            self._arrived = anyio.Event()
            with anyio.move_on_after(params["timeout"]):
                await self._arrived.wait()
            if self.revoked:
                return envelope(401, "Unauthorized")
        self._last_batch = self.updates[: params.get("limit", 100)]
        return envelope(200, self._last_batch)

    async def _sendMessage(self, params: dict[str, Any]) -> httpx.Response:
        if not params.get("text"):
            return envelope(400, "Bad Request: message text is empty")
        self.sent.append(params)
        return envelope(200, message(params["text"], params["chat_id"], BOT_ID))

    async def _setMyCommands(self, params: dict[str, Any]) -> httpx.Response:
        self.commands = params["commands"]
        return envelope(200, True)

    async def _getMyCommands(self, params: dict[str, Any]) -> httpx.Response:
        return envelope(200, getattr(self, "commands", []))


def message(text: str, chat: int, user: int | None = None, **extra: Any) -> dict[str, Any]:
    sender = {"id": user or chat, "is_bot": user == BOT_ID, "first_name": "someone"}
    return {
        "message_id": 1,
        "from": sender,
        "chat": {"id": chat, "type": "private", "first_name": "someone"},
        "date": 1_700_000_000,
        "text": text,
        **extra,
    }


def envelope(status: int, result: Any) -> httpx.Response:
    if status == 200:
        return httpx.Response(200, json={"ok": True, "result": result})
    return httpx.Response(status, json={"ok": False, "error_code": status, "description": result})


@pytest.fixture
def api() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
def new_api() -> type[FakeBotApi]:
    """The class, for tests that need a fresh API per example (hypothesis)."""
    return FakeBotApi


@pytest.fixture(params=["asyncio", "trio"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``run(async_fn, *args)`` under the parametrized backend, with a 20 s deadline."""

    def runner(function: Callable[..., Any], *args: Any) -> Any:
        async def bounded() -> Any:
            with anyio.fail_after(20):
                return await function(*args)

        return anyio.run(bounded, backend=request.param)

    return runner
