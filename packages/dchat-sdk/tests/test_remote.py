"""RemoteClient against a scripted node (httpx.MockTransport) and real sockets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from dchat_core import CallerError, PeerError, TransportError
from dchat_sdk import (
    ApiError,
    ContactInfo,
    DchatSdkError,
    MessageInfo,
    NodeUnreachableError,
    RemoteClient,
)

BASE = "http://127.0.0.1:8470"
TOKEN = "s3cret-token"
MESSAGE = {
    "message_id": "dcmsg1abc",
    "direction": "in",
    "peer_id": "dcid1xyz",
    "peer_name": "bob",
    "text": "hi alice",
    "sent_at": 1767225600.5,
    "stored_at": 1767225601,
}


class Node:
    """A scripted node: answers each request with ``reply`` and records it."""

    def __init__(self, status: int = 200, reply: Any = None, *, raw: bytes | None = None) -> None:
        self.status = status
        self.reply = reply
        self.raw = raw
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raw is not None:
            return httpx.Response(self.status, content=self.raw)
        body = json.dumps(self.reply).encode()  # json=None would mean "no body"
        return httpx.Response(
            self.status, content=body, headers={"Content-Type": "application/json"}
        )

    def client(self) -> RemoteClient:
        return RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(self))

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more: connecting is refused


# -- successful calls --------------------------------------------------------


def test_every_request_carries_the_bearer_token() -> None:
    node = Node(reply={"status": "ok"})
    with node.client() as client:
        client.health()
    assert node.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert str(node.last.url) == f"{BASE}/health"


def test_health_and_status() -> None:
    node = Node(reply={"status": "ok", "role": "user"})
    with node.client() as client:
        assert client.health() == {"status": "ok", "role": "user"}
        assert (node.last.method, node.last.url.path) == ("GET", "/health")
        assert client.status() == {"status": "ok", "role": "user"}
        assert (node.last.method, node.last.url.path) == ("GET", "/status")


def test_put_auth() -> None:
    reply = {"mode": "proof", "tokens_issued": 0, "secrets_issued": 2, "ring_size": 8}
    reply["ring_version"] = 1
    node = Node(reply=reply)
    with node.client() as client:
        assert client.put_auth()["mode"] == "proof"
    assert (node.last.method, node.last.url.path) == ("GET", "/v1/put-auth")


def test_a_burners_stealth_accounts_are_swept_by_naming_it() -> None:
    node = Node(reply={"swept": 39, "to": "00" * 32, "txs": ["ab"]})
    with node.client() as client:
        client.stealth_sweep("00" * 32)
        assert node.last_json() == {"to": "00" * 32, "fee": 1}  # the identity's own
        assert client.stealth_sweep("00" * 32, identity="burner-id")["swept"] == 39
    assert (node.last.method, node.last.url.path) == ("POST", "/v1/stealth/sweep")
    assert node.last_json() == {"to": "00" * 32, "fee": 1, "identity": "burner-id"}


@pytest.mark.parametrize(
    ("call", "reply"),
    [
        (lambda c: c.cover_traffic(), {"on": True, "budget": 100}),
        (lambda c: c.onion_mode(), {"identities": {}}),
        (lambda c: c.put_auth(), {"mode": "token"}),
        (lambda c: c.stealth_status(), {"scanned_to": 3}),
        (lambda c: c.stealth_scan(), {"scanned_to": 3, "accounts": []}),
        (lambda c: c.stealth_pay("bob", 1), {"account": "00" * 32}),
        (lambda c: c.stealth_sweep("00" * 32), {"swept": 0}),
        (lambda c: c.pay("bob", 1), {"message_id": "m"}),
        (lambda c: c.payments(), {"pending": []}),
        (lambda c: c.buy_tokens("r:1", 1), {"relay": "r:1"}),
        (lambda c: c.tokens(), {"relays": []}),
    ],
)
def test_a_typed_reply_missing_a_field_is_a_bad_reply(
    call: Callable[[RemoteClient], Any], reply: dict[str, Any]
) -> None:
    with Node(reply=reply).client() as client, pytest.raises(DchatSdkError, match="lacks"):
        call(client)


def test_create_identity() -> None:
    node = Node(201, {"identity_id": "dcid1me", "card": "dchat-card:xyz"})
    with node.client() as client:
        assert client.create_identity("alice") == "dcid1me"
    assert (node.last.method, node.last.url.path) == ("POST", "/v1/identity")
    assert node.last_json() == {"name": "alice"}


def test_card() -> None:
    node = Node(reply={"identity_id": "dcid1me", "name": "alice", "card": "dchat-card:xyz"})
    with node.client() as client:
        assert client.card() == "dchat-card:xyz"
    assert (node.last.method, node.last.url.path) == ("GET", "/v1/identity")


def test_add_contact() -> None:
    node = Node(201, {"name": "bob", "identity_id": "dcid1bob"})
    with node.client() as client:
        assert client.add_contact("bob", "dchat-card:b") == ContactInfo("bob", "dcid1bob")
    assert (node.last.method, node.last.url.path) == ("POST", "/v1/contacts")
    assert node.last_json() == {"name": "bob", "card": "dchat-card:b"}


def test_add_contact_by_handle() -> None:
    node = Node(201, {"name": "alice", "identity_id": "dcid1al"})
    with node.client() as client:
        assert client.add_contact_by_handle("@alice") == ContactInfo("alice", "dcid1al")
        assert node.last_json() == {"handle": "@alice"}
        client.add_contact_by_handle("@alice", "al")
    assert (node.last.method, node.last.url.path) == ("POST", "/v1/contacts")
    assert node.last_json() == {"handle": "@alice", "name": "al"}


def test_handle_calls() -> None:
    found = {"handle": "alice", "identity": "ab" * 32, "relays": ["127.0.0.1:7"]}
    node = Node(reply=found)
    with node.client() as client:
        assert client.lookup_handle("@alice/../x") == found
        assert node.last.url.raw_path == b"/v1/handles/@alice%2F..%2Fx"  # one path segment
        node.reply = {"handle": found}
        assert client.own_handle() == found
        assert (node.last.method, node.last.url.path) == ("GET", "/v1/handle")
        assert client.handle_action("register", "@alice") == found
        assert node.last_json() == {"action": "register", "name": "@alice"}
        node.reply = {"handle": None}
        assert client.handle_action("release") is None
        assert node.last_json() == {"action": "release"}
        assert client.own_handle() is None


def test_contacts() -> None:
    reply = {
        "contacts": [{"name": "bob", "identity_id": "i1"}, {"name": "eve", "identity_id": "i2"}]
    }
    node = Node(reply=reply)
    with node.client() as client:
        assert client.contacts() == [ContactInfo("bob", "i1"), ContactInfo("eve", "i2")]
    assert (node.last.method, node.last.url.path) == ("GET", "/v1/contacts")


def test_send() -> None:
    node = Node(202, {"message_id": "dcmsg1new"})
    with node.client() as client:
        assert client.send("bob", "hello") == "dcmsg1new"
    assert (node.last.method, node.last.url.path) == ("POST", "/v1/messages")
    assert node.last_json() == {"to": "bob", "text": "hello"}


def test_messages() -> None:
    node = Node(reply={"messages": [MESSAGE, {**MESSAGE, "peer_name": None}]})
    with node.client() as client:
        first, second = client.messages()
    assert first == MessageInfo(
        message_id="dcmsg1abc",
        direction="in",
        peer_id="dcid1xyz",
        peer_name="bob",
        text="hi alice",
        sent_at=1767225600.5,
        stored_at=1767225601.0,
    )
    assert second.peer_name is None
    assert node.last.url.path == "/v1/messages"
    assert dict(node.last.url.params) == {"limit": "100"}


@pytest.mark.parametrize("peer", ["bob", "a&limit=1", "x y+z", "#frag", "zoë"])
def test_messages_peer_is_sent_as_one_query_parameter(peer: str) -> None:
    node = Node(reply={"messages": []})
    with node.client() as client:
        assert client.messages(peer, limit=5) == []
    assert node.last.url.path == "/v1/messages"
    assert node.last.url.params.get_list("peer") == [peer]
    assert node.last.url.params.get_list("limit") == ["5"]


# -- failures ----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500, 503])
def test_error_json_becomes_api_error(status: int) -> None:
    node = Node(status, {"error": {"code": "no_contact", "message": "no contact named bob"}})
    with node.client() as client, pytest.raises(ApiError) as info:
        client.send("bob", "hi")
    assert info.value.status == status
    assert info.value.code == "no_contact"
    assert "no contact named bob" in str(info.value)
    assert isinstance(info.value, DchatSdkError)
    assert isinstance(info.value, CallerError)


@pytest.mark.parametrize("reply", [{}, [], "oops", None, {"error": "flat"}, {"error": [1]}])
def test_error_of_unexpected_shape_is_still_api_error(reply: Any) -> None:
    node = Node(500, reply)
    with node.client() as client, pytest.raises(ApiError) as info:
        client.health()
    assert info.value.status == 500
    assert info.value.code == "unknown"


@pytest.mark.parametrize("status", [200, 502])
@pytest.mark.parametrize("raw", [b"<html>Bad Gateway</html>", b"", b"\xff\xfe\x00garbage"])
def test_non_json_reply_is_a_bad_reply(status: int, raw: bytes) -> None:
    node = Node(status, raw=raw)
    with node.client() as client, pytest.raises(DchatSdkError) as info:
        client.status()
    assert isinstance(info.value, PeerError)
    assert not isinstance(info.value, ApiError | NodeUnreachableError)


CALLS: dict[str, Callable[[RemoteClient], object]] = {
    "health": lambda c: c.health(),
    "status": lambda c: c.status(),
    "create_identity": lambda c: c.create_identity("alice"),
    "card": lambda c: c.card(),
    "add_contact": lambda c: c.add_contact("bob", "dchat-card:b"),
    "contacts": lambda c: c.contacts(),
    "send": lambda c: c.send("bob", "hi"),
    "messages": lambda c: c.messages(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("reply", [[], "text", 42, None])
def test_json_that_is_not_an_object_is_a_bad_reply(call: str, reply: Any) -> None:
    with Node(reply=reply).client() as client, pytest.raises(DchatSdkError) as info:
        CALLS[call](client)
    assert isinstance(info.value, PeerError)


@pytest.mark.parametrize(
    ("call", "reply"),
    [
        ("create_identity", {}),
        ("create_identity", {"identity_id": 7}),
        ("card", {"card": None}),
        ("add_contact", {"name": "bob"}),
        ("contacts", {"contacts": {"name": "bob"}}),
        ("contacts", {"contacts": [{"name": "bob"}]}),
        ("contacts", {"contacts": ["bob"]}),
        ("send", {"id": "x"}),
        ("messages", {}),
        ("messages", {"messages": [{**MESSAGE, "sent_at": "yesterday"}]}),
        ("messages", {"messages": [{**MESSAGE, "sent_at": True}]}),
        ("messages", {"messages": [{k: v for k, v in MESSAGE.items() if k != "text"}]}),
        ("messages", {"messages": [{**MESSAGE, "peer_name": 3}]}),
    ],
)
def test_json_of_the_wrong_shape_is_a_bad_reply(call: str, reply: Any) -> None:
    with Node(reply=reply).client() as client, pytest.raises(DchatSdkError) as info:
        CALLS[call](client)
    assert isinstance(info.value, PeerError)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("garbage"),
    ],
)
def test_transport_failures_become_node_unreachable(error: httpx.HTTPError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    client = RemoteClient(BASE, TOKEN, transport=httpx.MockTransport(fail))
    with client, pytest.raises(NodeUnreachableError) as info:
        client.health()
    assert isinstance(info.value, TransportError)


def test_connection_refused_is_node_unreachable() -> None:
    with RemoteClient(f"http://127.0.0.1:{_closed_port()}", TOKEN, timeout=5) as client:
        with pytest.raises(NodeUnreachableError):
            client.health()
        with pytest.raises(NodeUnreachableError):
            client.send("bob", "hi")


# -- from_data_dir -----------------------------------------------------------


def test_from_data_dir_without_api_json_is_node_unreachable(tmp_path: Path) -> None:
    with pytest.raises(NodeUnreachableError):
        RemoteClient.from_data_dir(tmp_path)
    with pytest.raises(NodeUnreachableError):
        RemoteClient.from_data_dir(tmp_path / "does-not-exist")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"http://127.0.0.1:1"',
        b'{"url": "http://127.0.0.1:1"}',
        b'{"token": "t"}',
        b"\xff\xfe\xfd",
        '{"url": "http://127.0.0.1:1", "token": "tök"}'.encode(),  # not sendable in a header
    ],
)
def test_from_data_dir_with_garbled_api_json_is_node_unreachable(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "api.json").write_bytes(content)
    with pytest.raises(NodeUnreachableError):
        RemoteClient.from_data_dir(tmp_path)


def test_from_data_dir_where_api_json_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "api.json").mkdir()
    with pytest.raises(NodeUnreachableError):
        RemoteClient.from_data_dir(tmp_path)


def test_from_data_dir_pointing_at_a_stopped_node(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    (tmp_path / "api.json").write_text(json.dumps({"url": url, "token": TOKEN}))
    with (
        RemoteClient.from_data_dir(tmp_path, timeout=5) as client,
        pytest.raises(NodeUnreachableError),
    ):
        client.health()


@pytest.fixture
def live_node() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback answering /health; yields (url, seen auth headers)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"status": "ok", "role": "user"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_from_data_dir_reaches_the_node_in_api_json(
    tmp_path: Path, live_node: tuple[str, list[str]]
) -> None:
    url, seen = live_node
    (tmp_path / "api.json").write_text(json.dumps({"url": url, "token": TOKEN}))
    with RemoteClient.from_data_dir(tmp_path, timeout=5) as client:
        assert client.health() == {"status": "ok", "role": "user"}
    assert seen == [f"Bearer {TOKEN}"]


def test_disappear() -> None:
    node = Node(202, {"peer": "bob", "seconds": 3600, "message_id": "dcmsg1t"})
    with node.client() as client:
        assert client.disappear("bob", 3600)["seconds"] == 3600
    assert (node.last.method, node.last.url.path) == ("PUT", "/v1/conversations/bob/disappear")
    assert node.last_json() == {"seconds": 3600}
