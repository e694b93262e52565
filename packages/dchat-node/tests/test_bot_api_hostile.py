"""The Bot API against hostile calls, in process: a real (unstarted) bot node and database.

Every answer is Telegram's envelope with the right ``error_code`` (never the
node's own error shape, never a bare 500), a refused call changes nothing,
and the strangers' limits (``[node.bot_limits]``) are wired to the updates
the bot takes. What travels between nodes is ``test_bots.py``'s (processes).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_core import IdentityId, SystemClock
from dchat_identity import ContactCard, Identity
from dchat_messaging.bots import BotBook
from dchat_node._runtime import Node, build_node
from dchat_node.api._app import create_app
from dchat_node.config import NodeConfig
from dchat_storage import AsyncStore, open_database

ADMIN = "bot-hostile-admin-token"
SECRET = bytes(range(32))
STRANGER = IdentityId.derive(b"a stranger")
FRIEND = IdentityId.derive(b"a friend")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    db = open_database(tmp_path / "node.db")
    config = NodeConfig.model_validate(
        {"role": "user", "data_dir": tmp_path, "relay": "127.0.0.1:1",
         "bot_limits": {"rate": 0, "pending": 2, "pending_total": 3}}
    )  # fmt: skip
    made = build_node(config, AsyncStore(db), SystemClock(), b"unused")
    identity = Identity.generate()
    card = ContactCard.issue(identity, name="echo", relays=["127.0.0.1:1"])
    made.role.user.engines.set_main(identity, card)  # type: ignore[union-attr]
    yield made
    db.close()


@pytest.fixture
def token(node: Node) -> str:
    book = BotBook("echo", str(node.role.user.card.identity_id), offset=1)  # type: ignore[union-attr]
    issued = book.issue(frozenset({"updates", "send", "manage"}), SECRET, 0.0)
    (node.config.data_dir / "bot.json").write_bytes(book.to_json())
    return issued


@pytest.fixture
async def api(node: Node, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, ADMIN))
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://n", headers=headers) as c:
        yield c


async def refused(reply: Any, code: int, description: str = "") -> None:
    """``reply`` is Telegram's refusal ``code`` (its description starting so)."""
    response = await reply
    answer = response.json()
    assert response.status_code == code, answer
    assert set(answer) == {"ok", "error_code", "description"}, answer
    assert (answer["ok"], answer["error_code"]) == (False, code)
    assert answer["description"].startswith(description), answer


def raw(kind: str, body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": kind}}


JSON, FORM = "application/json", "application/x-www-form-urlencoded"
HOSTILE_BODIES = [
    pytest.param("sendMessage", raw(JSON, b"{"), 400, "Bad Request: the body", id="malformed"),
    pytest.param("sendMessage", raw(JSON, b"[1, 2]"), 400, "Bad Request: the JSON body must",
                 id="not-an-object"),
    pytest.param("getUpdates", raw(JSON, b'{"offset": ' + b"9" * 5000 + b"}"), 400,
                 "Bad Request: the body", id="huge-integer"),
    pytest.param("sendMessage", raw(JSON, b"[" * 60_000), 400, "Bad Request: the body",
                 id="nested-too-deep"),
    pytest.param("sendMessage", raw(JSON, b" " * (64 * 1024 + 1)), 413, "Request Entity",
                 id="oversized"),
    pytest.param("sendMessage", raw("text/plain", b"hi"), 400, "Bad Request: send JSON",
                 id="wrong-content-type"),
    pytest.param("sendMessage", raw(FORM, b"text=\xff"), 400, "Bad Request: the body",
                 id="form-not-utf8"),
    pytest.param("sendPhoto", raw("multipart/form-data; boundary=x", b"junk"), 400,
                 "Bad Request: the multipart", id="multipart-junk"),
    pytest.param("setMyCommands", raw(FORM, b"commands=" + b"%5B" * 5000), 400,
                 "Bad Request: commands must be", id="commands-nested-too-deep"),
    pytest.param("setWebhook", {"json": {"url": "https://a.example/x",
                                         "allowed_updates": "[" * 4000}}, 400,
                 "Bad Request: allowed_updates", id="allowed-updates-nested-too-deep"),
    pytest.param("sendLocation", raw(JSON, b'{"chat_id": 1, "latitude": NaN, "longitude": 0}'),
                 400, "Bad Request: latitude", id="nan"),
    pytest.param("getUpdates", {"params": {"offset": "99999999999999999999999"}}, 400,
                 "Bad Request: offset", id="offset-huge"),
    pytest.param("getUpdates", {"params": {"offset": "-101"}}, 400, "Bad Request: offset",
                 id="offset-too-negative"),
    pytest.param("getUpdates", {"params": {"limit": "1000000"}}, 400, "Bad Request: limit",
                 id="limit-huge"),
    pytest.param("getUpdates", {"params": {"timeout": "3600"}}, 400, "Bad Request: timeout",
                 id="timeout-huge"),
    pytest.param("getUpdates", {"json": {"offset": 1.5}}, 400, "Bad Request: offset",
                 id="offset-not-an-integer"),
    pytest.param("sendMessage", {"json": {"chat_id": [1], "text": 5}}, 400,
                 "Bad Request: chat_id", id="wrong-types"),
    pytest.param("sendMessage", {"json": {"chat_id": 10**40, "text": "x"}}, 400,
                 "Bad Request: chat not found", id="chat-id-huge"),
    pytest.param("answerCallbackQuery", {"json": {"callback_query_id": "ab" * 8,
                                                  "text": "x" * 500}}, 400,
                 "Bad Request: ", id="callback-long-text"),
    pytest.param("answerInlineQuery", {"json": {"inline_query_id": "ab" * 8,
                                                "results": [{"type": "article"}] * 51}}, 400,
                 "Bad Request: ", id="inline-too-many"),
    pytest.param("x" * 65, {}, 404, "Not Found", id="method-name-too-long"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "call", "code", "description"), HOSTILE_BODIES)
async def test_hostile_calls_answer_in_telegrams_envelope(
    api: httpx.AsyncClient, token: str, method: str, call: dict[str, Any], code: int,
    description: str,
) -> None:  # fmt: skip
    await refused(api.post(f"/bot{token}/{method}", **call), code, description)


async def test_long_or_odd_tokens_and_file_paths_are_refused_in_the_envelope(
    api: httpx.AsyncClient, token: str
) -> None:
    # These were FastAPI's validation answers in the node's error shape (422).
    await refused(api.get("/bot1:" + "a" * 80 + "/getMe"), 401, "Unauthorized")
    await refused(api.get(f"/file/bot{token}/" + "x" * 300), 404, "Not Found")
    await refused(api.get("/file/bot1:" + "a" * 80 + "/photos/x"), 401, "Unauthorized")


async def test_callback_data_too_long_refuses_the_whole_message(
    api: httpx.AsyncClient, token: str, node: Node
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "a", "callback_data": "x" * 65}]]}
    call = {"chat_id": 1, "text": "pick", "reply_markup": keyboard}
    await refused(api.post(f"/bot{token}/sendMessage", json=call), 400, "Bad Request: malformed")
    assert node.store.db.outbox.queued(10) == []  # nothing was sent, or queued


async def test_a_refused_call_changes_nothing(api: httpx.AsyncClient, token: str) -> None:
    await api.post(
        f"/bot{token}/setMyCommands", json={"commands": [{"command": "start", "description": "Go"}]}
    )
    before = (await api.get("/v1/bot")).json()
    bad = [{"command": "start", "description": "Go"}, {"command": "A B", "description": "x"}]
    await refused(api.post(f"/bot{token}/setMyCommands", json={"commands": bad}), 400)
    await refused(api.post(f"/bot{token}/setWebhook", json={"url": "ftp://x"}), 400)
    await refused(
        api.post(
            f"/bot{token}/setWebhook", json={"url": "https://a.example", "max_connections": 0}
        ),
        400,
    )
    assert (await api.get("/v1/bot")).json() == before
    info = (await api.get(f"/bot{token}/getWebhookInfo")).json()["result"]
    assert info["url"] == ""


def _incoming(node: Node, sender: IdentityId, text: str) -> None:
    node.store.db.messages.add(os.urandom(16), "in", str(sender), text, 1.0, 2.0)


async def test_an_offset_past_every_update_confirms_them_all_but_hides_no_later_one(
    api: httpx.AsyncClient, token: str, node: Node
) -> None:
    _incoming(node, FRIEND, "before")
    first = (await api.get(f"/bot{token}/getUpdates")).json()
    assert len(first["result"]) == 1, first
    assert (await api.get(f"/bot{token}/getUpdates?offset=2000000000")).json()["result"] == []
    _incoming(node, FRIEND, "after")  # kept as given, the offset would hide this one forever
    later = (await api.get(f"/bot{token}/getUpdates")).json()["result"]
    assert [u["message"]["text"] for u in later] == ["after"]


async def test_a_negative_offset_keeps_the_last_updates_and_forgets_the_rest(
    api: httpx.AsyncClient, token: str, node: Node
) -> None:
    assert (await api.get(f"/bot{token}/getUpdates?offset=-1")).json()["result"] == []
    for text in ("one", "two", "three"):
        _incoming(node, FRIEND, text)
    unset = await api.post(f"/bot{token}/getUpdates", json={"offset": None})
    assert [u["message"]["text"] for u in unset.json()["result"]] == ["one", "two", "three"]
    kept = (await api.get(f"/bot{token}/getUpdates", params={"offset": -2})).json()["result"]
    assert [u["message"]["text"] for u in kept] == ["two", "three"]
    # "one" is forgotten: a plain read starts at "two" (not confirmed yet).
    again = (await api.get(f"/bot{token}/getUpdates")).json()["result"]
    assert [u["message"]["text"] for u in again] == ["two", "three"]
    last = (await api.get(f"/bot{token}/getUpdates", params={"offset": -1})).json()["result"]
    assert [u["message"]["text"] for u in last] == ["three"]
    _incoming(node, FRIEND, "four")
    later = (await api.get(f"/bot{token}/getUpdates", params={"offset": -5})).json()["result"]
    assert [u["message"]["text"] for u in later] == ["three", "four"]


async def test_strangers_slots_are_freed_as_the_bot_takes_their_updates(
    api: httpx.AsyncClient, token: str, node: Node
) -> None:
    shown = (await api.get("/v1/bot")).json()["strangers"]
    assert shown["limits"] == {"rate": 0.0, "burst": 20, "pending": 2, "pending_total": 3,
                               "senders": 10000}  # fmt: skip
    gate = node.role.user.agent.strangers  # type: ignore[union-attr]
    me = node.role.user.card.identity_id  # type: ignore[union-attr]
    assert gate.bot == me  # named when the API was built over the book
    for text in ("one", "two"):
        assert gate.check(me, STRANGER, "text", 5.0) == (True, None)  # as the engine asks
        _incoming(node, STRANGER, text)
    assert gate.check(me, STRANGER, "text", 5.0) == (False, "pending")
    taken = (await api.get(f"/bot{token}/getUpdates?limit=1")).json()["result"]
    assert [u["message"]["text"] for u in taken] == ["one"]
    await api.get(f"/bot{token}/getUpdates?limit=1")  # the same one again: freed once only
    assert gate.pending_of(str(STRANGER)) == 1
    assert "dchat_bot_stranger_slots 1.0" in (await api.get("/metrics")).text
    await api.get(f"/bot{token}/getUpdates")  # to the log's end: every slot is free
    shown = (await api.get("/v1/bot")).json()["strangers"]
    assert (shown["pending"], shown["admitted"], shown["refused"]["pending"]) == (0, 2, 1)
    assert gate.check(me, STRANGER, "text", 5.0) == (True, None)  # a text deleted unhanded
    await api.get(f"/bot{token}/getUpdates")  # (an ignored request's): its slot is freed too
    assert gate.pending_total() == 0


_PARAMS = st.dictionaries(
    st.sampled_from(["chat_id", "text", "offset", "limit", "timeout", "reply_markup", "url",
                     "commands", "results", "inline_query_id", "callback_query_id",
                     "message_id", "latitude", "longitude", "file_id", "photo"]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                    max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)  # fmt: skip
_METHODS = st.sampled_from(
    ["getUpdates", "sendMessage", "sendPhoto", "sendLocation", "editMessageText",
     "deleteMessage", "answerCallbackQuery", "answerInlineQuery", "setMyCommands", "getFile"]
)  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=_METHODS, params=_PARAMS)
async def test_any_json_call_answers_in_the_envelope_and_never_fails_inside(
    api: httpx.AsyncClient, token: str, method: str, params: dict[str, Any]
) -> None:
    params.pop("timeout", None)  # no long poll
    body = json.dumps(params).encode()  # NaN and Infinity as Python writes them
    response = await api.post(f"/bot{token}/{method}", **raw(JSON, body))
    answer = response.json()
    assert isinstance(answer["ok"], bool)
    if not answer["ok"]:
        assert response.status_code == answer["error_code"]
        assert 400 <= answer["error_code"] < 500, answer


async def test_a_damaged_book_fails_each_call_in_the_envelope_not_the_node(
    node: Node, token: str
) -> None:
    (node.config.data_dir / "bot.json").write_bytes(b"{not json")
    transport = httpx.ASGITransport(app=create_app(node, ADMIN))  # builds: no bot named
    async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
        await refused(client.get(f"/bot{token}/getMe"), 500, "Internal Server Error: the bot")
