"""The client side of the node API's WebSocket (``SocketSession``), without I/O.

A scripted node is a wsproto server connection: it answers the upgrade, then
sends whatever frames a test wants, well-formed or hostile. Every hostile
reply must surface as one of the SDK's typed errors, never as another
exception, and nothing the client sent may be lost or reordered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from dchat_sdk import ApiError, DchatSdkError, Event, NodeUnreachableError, SocketReply
from dchat_sdk._errors import _BadReplyError
from dchat_sdk._socket import MAX_FRAME, SocketSession

BASE = "http://127.0.0.1:8470"


class Node:
    """The node's end of one socket (a wsproto server)."""

    def __init__(self) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.requests: list[dict[str, Any]] = []
        self.headers: dict[bytes, bytes] = {}

    def receive(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, Request):
                self.headers = {bytes(k).lower(): bytes(v) for k, v in event.extra_headers}
            elif isinstance(event, TextMessage):
                self.requests.append(json.loads(event.data))

    def accept(self) -> bytes:
        return self.ws.send(AcceptConnection())

    def text(self, frame: Any, **kw: Any) -> bytes:
        data = frame if isinstance(frame, str) else json.dumps(frame)
        return self.ws.send(TextMessage(data, **kw))


def opened() -> tuple[SocketSession, Node]:
    client, node = SocketSession(BASE, "secret"), Node()
    node.receive(client.opening())
    assert client.receive(node.accept()) == ([], b"")
    assert client.accepted
    return client, node


def test_the_upgrade_carries_the_token_and_requests_are_numbered_in_order() -> None:
    client, node = opened()
    assert node.headers[b"authorization"] == b"Bearer secret"
    first, data1 = client.request("send", to="bob", text="hi")
    second, data2 = client.request("status")
    node.receive(data1 + data2)
    assert (first, second) == (0, 1)
    assert node.requests == [
        {"id": 0, "op": "send", "to": "bob", "text": "hi"},
        {"id": 1, "op": "status"},
    ]


def test_answers_events_and_errors_are_typed() -> None:
    client, node = opened()
    event = {"cursor": 7, "kind": "message", "at": 1.0, "data": {"text": "hi"}}
    error = {"id": 2, "status": 404, "error": {"code": "unknown_contact", "message": "no"}}
    data = node.text({"id": 1, "ok": {"message_id": "m"}}) + node.text({"event": event})
    items, _ = client.receive(data + node.text(error))
    assert items[0] == SocketReply(1, ok={"message_id": "m"})
    assert items[1] == Event(7, "message", {"text": "hi"})
    failed = items[2]
    assert isinstance(failed, SocketReply)
    assert isinstance(failed.error, ApiError)
    assert (failed.error.status, failed.error.code) == (404, "unknown_contact")


def test_a_fragmented_frame_is_joined() -> None:
    client, node = opened()
    whole = json.dumps({"id": 0, "ok": {"text": "x" * 100}})
    first = node.text(whole[:40], message_finished=False)
    assert client.receive(first) == ([], b"")
    items, _ = client.receive(node.text(whole[40:]))
    assert items == [SocketReply(0, ok={"text": "x" * 100})]


def test_pings_are_answered_and_a_close_is_returned() -> None:
    client, node = opened()
    _, reply = client.receive(node.ws.send(Ping(b"p")))
    assert reply  # the pong
    _, reply = client.receive(node.ws.send(CloseConnection(code=1000)))
    assert reply
    assert client.closed


def test_a_refused_upgrade_is_an_api_error_with_the_nodes_code() -> None:
    client, node = SocketSession(BASE, "wrong"), Node()
    node.receive(client.opening())
    body = json.dumps({"error": {"code": "unauthorized", "message": "no"}}).encode()
    refusal = node.ws.send(
        RejectConnection(
            status_code=401,
            headers=[(b"content-length", str(len(body)).encode())],
            has_body=True,
        )
    ) + node.ws.send(RejectData(data=body))
    with pytest.raises(ApiError) as info:
        client.receive(refusal)
    assert (info.value.status, info.value.code) == (401, "unauthorized")


def test_a_refused_upgrade_without_body_is_an_api_error() -> None:
    client, node = SocketSession(BASE, "wrong"), Node()
    node.receive(client.opening())
    with pytest.raises(ApiError) as info:
        client.receive(node.ws.send(RejectConnection(status_code=403)))
    assert info.value.status == 403


def test_the_end_of_the_connection_is_node_unreachable() -> None:
    client, _ = opened()
    with pytest.raises(NodeUnreachableError):
        client.receive(b"")
    assert client.closed


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"id": "x", "ok": {}}',
        '{"id": -1, "ok": {}}',
        '{"id": 1, "ok": [1]}',
        '{"event": {"cursor": -1, "kind": "m", "data": {}}}',
        '{"event": {"cursor": 1, "kind": 5, "data": {}}}',
        '{"event": "x"}',
    ],
)
def test_frames_that_are_not_the_documented_shape_are_bad_replies(frame: str) -> None:
    client, node = opened()
    with pytest.raises(_BadReplyError):
        client.receive(node.text(frame))


def test_a_binary_frame_is_a_bad_reply() -> None:
    client, node = opened()
    with pytest.raises(_BadReplyError):
        client.receive(node.ws.send(BytesMessage(b"\x00")))


def test_an_oversized_frame_is_refused_before_it_is_joined() -> None:
    client, node = opened()
    chunk = "x" * (1 << 20)
    for _ in range(MAX_FRAME // len(chunk) - 1):
        client.receive(node.text(chunk, message_finished=False))
    with pytest.raises(_BadReplyError, match="oversized"):
        client.receive(node.text(chunk + "x", message_finished=False))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_frame_is_an_item_or_a_typed_error(frame: str | bytes) -> None:
    client, node = opened()
    data = node.ws.send(BytesMessage(frame) if isinstance(frame, bytes) else TextMessage(frame))
    try:
        items, _ = client.receive(data)
    except DchatSdkError:
        return
    assert all(isinstance(item, SocketReply | Event) for item in items)


@given(st.binary(max_size=300))
def test_garbage_bytes_are_typed_errors_or_nothing(data: bytes) -> None:
    client, _ = opened()
    try:
        client.receive(data)
    except DchatSdkError:
        pass
    except Exception as exc:  # wsproto's own protocol errors must not leak
        pytest.fail(f"untyped error {type(exc).__name__}: {exc}")


def test_bad_urls_are_refused() -> None:
    for url in ("ftp://x", "http://", "nonsense"):
        with pytest.raises(ValueError, match="not an API URL"):
            SocketSession(url, "t")
