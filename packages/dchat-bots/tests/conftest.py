"""A scripted Bot API (httpx.MockTransport) and a fixture running a test under both backends.

:class:`FakeBotApi` answers like the node (docs/protocol.md section 34) for the
methods the framework uses: the envelope, ``getUpdates`` offsets (an offset
confirms every update below it) and long polling (an empty answer waits for an
update or the timeout), JSON and multipart bodies (section 34), files by
upload or ``file_id``, ``getFile`` and ``/file/bot<token>/<path>``, edits,
deletes and the answers to presses and inline queries (section 35). It records
the calls (a multipart call's parts in ``uploads``) and the sent messages;
tests push updates and may script failures of the next calls.
"""

from __future__ import annotations

import email.parser
import email.policy
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
        self.files: dict[str, bytes] = {}  # file_id -> bytes
        self.uploads: list[tuple[str, list[Part]]] = []  # method, its multipart parts
        self.answers: list[tuple[str, dict[str, Any]]] = []  # answer* calls
        self.open_queries: set[str] = set()  # presses and inline queries not yet answered
        self.deleted: list[int] = []

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
        self.open_queries.add(f"q{self._next_id}")
        query = {
            "id": f"q{self._next_id}",
            "from": {"id": user or chat, "is_bot": False, "first_name": "u"},
            "chat_instance": "ci",
            "data": data,
            "message": message("menu", chat, BOT_ID),
        }
        return self.push({"callback_query": query})

    def inline(self, query: str, user: int = 1) -> int:
        self.open_queries.add(f"i{self._next_id}")
        sender = {"id": user, "is_bot": False, "first_name": "u"}
        return self.push(
            {"inline_query": {"id": f"i{self._next_id}", "from": sender, "query": query}}
        )

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
        if request.url.path.startswith("/file/bot"):
            return self._download(request.url.path)
        prefix, _, method = request.url.path.rpartition("/")
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            parts = multipart(content_type, request.content)
            self.uploads.append((method, parts))
            params = {p.name: p.content.decode() for p in parts if p.filename is None}
            params |= {p.name: p for p in parts if p.filename is not None}
        else:
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

    # -- files, locations, edits, deletes, answers (sections 34-35) ----------------------

    async def _media(self, kind: str, params: dict[str, Any]) -> httpx.Response:
        sent = params.get(kind)
        if isinstance(sent, Part):
            file_id = f"dcf1{len(self.files)}"
            self.files[file_id] = sent.content
        elif sent in self.files:
            file_id = sent
        else:
            return envelope(400, "Bad Request: wrong file identifier/HTTP URL specified")
        size = len(self.files[file_id])
        info: dict[str, Any] = {"file_id": file_id, "file_unique_id": "u" + file_id}
        info |= {"file_size": size, "mime_type": "application/octet-stream"}
        shown: Any = [{**info, "width": 1, "height": 1}] if kind == "photo" else info
        self.sent.append({"chat_id": int(params["chat_id"]), kind: file_id})
        extra = {"caption": params["caption"]} if params.get("caption") else {}
        return envelope(200, media(kind, shown, int(params["chat_id"]), **extra))

    async def _sendPhoto(self, params: dict[str, Any]) -> httpx.Response:
        return await self._media("photo", params)

    async def _sendDocument(self, params: dict[str, Any]) -> httpx.Response:
        return await self._media("document", params)

    async def _sendAudio(self, params: dict[str, Any]) -> httpx.Response:
        return await self._media("audio", params)

    async def _sendVoice(self, params: dict[str, Any]) -> httpx.Response:
        return await self._media("voice", params)

    async def _sendLocation(self, params: dict[str, Any]) -> httpx.Response:
        point = {"latitude": params["latitude"], "longitude": params["longitude"]}
        return envelope(200, media("location", point, params["chat_id"]))

    async def _getFile(self, params: dict[str, Any]) -> httpx.Response:
        file_id = params.get("file_id")
        if file_id not in self.files:
            return envelope(400, "Bad Request: invalid file_id")
        size = len(self.files[file_id])
        path = f"documents/{file_id}"
        return envelope(200, {"file_id": file_id, "file_size": size, "file_path": path})

    def _download(self, path: str) -> httpx.Response:
        prefix, _, file_id = path.rpartition("/")
        if not prefix.startswith(f"/file/bot{TOKEN}/"):
            return envelope(401, "Unauthorized")
        if file_id not in self.files:
            return envelope(404, "Not Found")
        return httpx.Response(200, content=self.files[file_id])

    async def _editMessageText(self, params: dict[str, Any]) -> httpx.Response:
        if params["message_id"] != 1:
            return envelope(400, "Bad Request: message to edit not found")
        edited = message(params["text"], params["chat_id"], BOT_ID, edit_date=1_700_000_001)
        return envelope(200, edited)

    async def _deleteMessage(self, params: dict[str, Any]) -> httpx.Response:
        if params["message_id"] != 1:
            return envelope(400, "Bad Request: message to delete not found")
        self.deleted.append(params["message_id"])
        return envelope(200, True)

    async def _answer(self, key: str, params: dict[str, Any]) -> httpx.Response:
        if params.get(key) not in self.open_queries:
            return envelope(400, "Bad Request: query is too old and response timeout expired")
        self.open_queries.discard(params[key])
        self.answers.append((params[key], params))
        return envelope(200, True)

    async def _answerCallbackQuery(self, params: dict[str, Any]) -> httpx.Response:
        return await self._answer("callback_query_id", params)

    async def _answerInlineQuery(self, params: dict[str, Any]) -> httpx.Response:
        return await self._answer("inline_query_id", params)


class Part:
    """One part of a multipart body."""

    def __init__(self, name: str, filename: str | None, content_type: str, content: bytes):
        self.name, self.filename = name, filename
        self.content_type, self.content = content_type, content

    def __repr__(self) -> str:
        return f"Part({self.name!r}, {self.filename!r}, {self.content_type!r}, {self.content!r})"


def multipart(content_type: str, body: bytes) -> list[Part]:
    """The parts of a ``multipart/form-data`` body (read with the stdlib's MIME parser)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert parsed.is_multipart(), content_type
    parts = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str), part
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes)
        parts.append(Part(name, part.get_filename(), part.get_content_type(), content))
    return parts


def media(kind: str, value: Any, chat: int, **extra: Any) -> dict[str, Any]:
    """A message of the bot's carrying a file or a location (no ``text``)."""
    sent = message("", chat, BOT_ID, **{kind: value}, **extra)
    del sent["text"]
    return sent


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
