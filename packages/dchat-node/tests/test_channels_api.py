"""``/v1/channels`` in process: a real (unstarted) user node and database, through the guard.

The routes answer with the channel book's state and its typed errors; what
travels between nodes is ``test_channels.py``'s (real processes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dchat_core import SystemClock
from dchat_node._runtime import Node, build_node
from dchat_node.api._app import create_app
from dchat_node.config import NodeConfig
from dchat_storage import AsyncStore, open_database

TOKEN = "channels-api-token"
RELAY = "127.0.0.1:1"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    db = open_database(tmp_path / "node.db")
    config = NodeConfig.model_validate({"role": "user", "data_dir": tmp_path, "relay": RELAY})
    yield build_node(config, AsyncStore(db), SystemClock(), b"unused")
    db.close()


@pytest.fixture
async def api(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, TOKEN))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://n", headers=headers) as c:
        yield c


async def ok(reply: Any, status: int = 200) -> dict[str, Any]:
    response = await reply
    assert response.status_code == status, response.text
    return dict(response.json())


async def refused(reply: Any, status: int, code: str) -> None:
    response = await reply
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_create_post_read_and_link(api: httpx.AsyncClient, node: Node) -> None:
    made = await ok(api.post("/v1/channels", json={"title": "news"}), 201)
    cid = made["channel_id"]
    assert made["link"].startswith("dchat-channel:")
    listed = (await ok(api.get("/v1/channels")))["channels"]
    assert listed == [{"channel_id": cid, "title": "news", "role": "owner", "relays": [RELAY],
                       "posts": 0}]  # fmt: skip
    assert (await ok(api.get(f"/v1/channels/{cid[:8]}/link")))["link"] == made["link"]
    await ok(api.post("/v1/channels/news/posts", json={"text": "hello"}), 202)
    posts = (await ok(api.get(f"/v1/channels/{cid}/posts")))["posts"]
    assert [(p["text"], p["q"], p["dir"]) for p in posts] == [("hello", 1, "out")]
    pending = node.role.user.agent.channels.pending()  # type: ignore[union-attr]
    assert [relay for *_, relay in pending] == [RELAY]  # one upload queued, for the one relay
    shown = await ok(api.get(f"/v1/channels/{cid}"))
    assert (shown["role"], shown["gaps"], shown["refused"]) == ("owner", 0, 0)
    # Subscribing to our own link is a no-op; unsubscribing forgets the channel.
    assert (await ok(api.post("/v1/channels/subscribe", json={"link": made["link"]}))) == {
        "channel_id": cid
    }
    assert (await ok(api.delete(f"/v1/channels/{cid}")))["unsubscribed"] == cid
    assert (await ok(api.get("/v1/channels")))["channels"] == []


async def test_typed_errors(api: httpx.AsyncClient) -> None:
    await refused(api.get("/v1/channels/nothing"), 404, "unknown_channel")
    await refused(api.post("/v1/channels/subscribe", json={"link": "dchat-channel:AAAA"}), 400,
                  "bad_link")  # fmt: skip
    await refused(api.post("/v1/channels", json={"title": "x", "relays": []}), 422,
                  "invalid_request")  # fmt: skip
    made = await ok(api.post("/v1/channels", json={"title": "mine"}), 201)
    other = await ok(api.post("/v1/channels", json={"title": "theirs"}), 201)
    await api.delete(f"/v1/channels/{other['channel_id']}")
    await ok(api.post("/v1/channels/subscribe", json={"link": other["link"]}))
    await refused(api.post("/v1/channels/theirs/posts", json={"text": "hi"}), 403, "not_publisher")
    await refused(
        api.post("/v1/channels/theirs/publishers", json={"key": "00" * 32}), 403, "not_owner"
    )
    await refused(api.post("/v1/channels/mine/publishers", json={"key": "zz"}), 422,
                  "invalid_request")  # fmt: skip
    publisher = (await ok(api.get("/v1/channels/theirs")))["publisher_key"]
    answer = await ok(api.post("/v1/channels/mine/publishers", json={"key": publisher}))
    assert answer["version"] == 1
    assert (await ok(api.get(f"/v1/channels/{made['channel_id']}")))["publishers"] == [publisher]
    await refused(api.get("/v1/channels", headers={"Authorization": "Bearer wrong"}), 401,
                  "unauthorized")  # fmt: skip
