"""A relay node's receipts through its API, in process: seal, report a claim, restart, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dchat_core import MailboxId, NodeId, SystemClock
from dchat_crypto import SigningKey
from dchat_network.lowlevel import DeliveryReceipt, RelayReceipt, check_audit, encode_relay_message
from dchat_node._runtime import Node, build_node
from dchat_node.api._app import create_app
from dchat_node.config import NodeConfig
from dchat_storage import AsyncStore, open_database

TOKEN = "t" * 43
RELAY = SigningKey(b"\x09" * 32)
RELAY_ID = bytes(NodeId.derive(RELAY.public_key.to_bytes()))
OWNER = SigningKey(b"\x0a" * 32)
BOX = bytes(MailboxId.derive(OWNER.public_key.to_bytes()))


async def call(node: Node, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to the node's API app (ASGI, no socket)."""
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [(b"authorization", f"Bearer {TOKEN}".encode())]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    scope |= {"query_string": b"", "http_version": "1.1", "scheme": "http", "root_path": ""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await create_app(node, TOKEN)(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(answer)


@pytest.fixture
def relay_node(tmp_path: Path) -> Iterator[Any]:
    """Makes relay nodes over one database file (a second one is a restart)."""
    opened = []

    def make() -> Node:
        db = open_database(tmp_path / "node.db")
        opened.append(db)
        config = NodeConfig.model_validate({"role": "relay", "data_dir": tmp_path})
        node = build_node(config, AsyncStore(db), SystemClock(), b"unused")
        node.role.service.server.node_key = RELAY  # what start() sets from node.key
        return node

    yield make
    for db in opened:
        db.close()


def _give_receipt(node: Node, ids: list[bytes]) -> None:
    server = node.role.service.server
    server.receipts.handed(BOX, ids)
    raw = DeliveryReceipt.sign(OWNER, RELAY_ID, ids).to_bytes()
    assert not server.handle(BOX, encode_relay_message(RelayReceipt(1, raw)), 5.0).close


async def test_a_claimed_batch_is_answerable_after_a_restart(relay_node: Any) -> None:
    node = relay_node()
    _give_receipt(node, [bytes([i]) * 32 for i in range(1, 6)])
    status, sealed = await call(node, "POST", "/v1/relay/receipts/batch")
    assert status == 200
    assert (sealed["count"], sealed["receipts"], sealed["taken"]) == (5, 1, 1)
    status, _ = await call(node, "POST", "/v1/relay/receipts/claimed", {"root": "zz"})
    assert status == 422
    status, known = await call(node, "POST", "/v1/relay/receipts/claimed", {"root": sealed["root"]})
    assert (status, known) == (200, {"known": True})
    _give_receipt(node, [b"\x07" * 32])  # pending at the restart
    _, report = await call(node, "GET", "/v1/relay/status")
    receipts = report["receipts"]
    assert (receipts["pending"], receipts["batches"], receipts["unclaimed"]) == (1, 1, 0)
    assert receipts["last_claim"] is not None
    assert receipts["auto_claims"] is None  # no chat_node: claims are manual

    again = relay_node()  # the relay restarts over the same database
    book, root = again.role.service.server.receipts, bytes.fromhex(sealed["root"])
    for index in range(5):
        answer = book.answer(root, index)
        assert answer is not None
        assert check_audit(RELAY_ID, root, 5, index, answer)
    _, report = await call(again, "GET", "/v1/relay/status")
    assert report["receipts"]["pending"] == 1
    assert report["receipts"]["taken"] == 0  # since this start
    _, sealed_again = await call(again, "POST", "/v1/relay/receipts/batch")
    assert sealed_again["count"] == 1


async def test_receipt_routes_before_the_relay_started(tmp_path: Path) -> None:
    db = open_database(tmp_path / "node.db")
    try:
        config = NodeConfig.model_validate({"role": "relay", "data_dir": tmp_path})
        node = build_node(config, AsyncStore(db), SystemClock(), b"unused")
        status, answer = await call(node, "POST", "/v1/relay/receipts/claimed", {"root": "00" * 32})
        assert (status, answer["error"]["code"]) == (503, "not_ready")
        _, report = await call(node, "GET", "/v1/relay/status")
        assert report["receipts"] is None
    finally:
        db.close()
