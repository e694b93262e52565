"""RemoteClient's plain calls over the standard library, against a real HTTP/1.1 server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dchat_core import PeerError
from dchat_sdk import ApiError, NodeUnreachableError, RemoteClient

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "tok-123"


class _Node(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list[dict[str, Any]]

    def log_message(self, *args: object) -> None:
        return None

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        url = urlsplit(self.path)
        record = {
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query),
            "headers": dict(self.headers),
            "body": self.rfile.read(length),
            "port": self.client_address[1],
        }
        self.seen.append(record)
        if url.path == "/slow":
            time.sleep(1.5)
            self.close_connection = True
            return  # the client gave up
        if url.path == "/not-json":
            self._answer(200, b"<html>")
        elif url.path == "/missing":
            self._answer(404, b'{"error": {"code": "not_found", "message": "no such thing"}}')
        else:
            self._answer(200, json.dumps({"message_id": "m1", "path": url.path}).encode())
        if url.path == "/v1/idle-close":
            self.close_connection = True  # closed after a keep-alive answer, as idle nodes do

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def node() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Node,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_send_is_one_json_request_without_httpx(node: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = node
    with RemoteClient(url, TOKEN, timeout=5) as client:
        assert client.send("bob", "hï ✓") == "m1"
        assert client._httpx is None  # plain calls never built the httpx client
    (request,) = seen
    assert (request["method"], request["path"]) == ("POST", "/v1/messages")
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == '{"to":"bob","text":"hï ✓"}'.encode()


def test_query_values_arrive_as_sent(node: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = node
    with RemoteClient(url, TOKEN, timeout=5) as client, pytest.raises(PeerError):
        client.message_page("a&b #+c/ö", 7, after=3)  # the fake answer is not a page
    assert seen[0]["path"] == "/v1/messages"
    assert seen[0]["query"] == {"peer": ["a&b #+c/ö"], "limit": ["7"], "after": ["3"]}


def test_errors_and_broken_answers_are_typed(node: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = node
    with RemoteClient(url, TOKEN, timeout=5) as client:
        with pytest.raises(ApiError) as refused:
            client.request("GET", "/missing")
        assert (refused.value.status, refused.value.code) == (404, "not_found")
        with pytest.raises(PeerError):
            client.request("GET", "/not-json")
        assert client.request("GET", "/after-errors")["path"] == "/after-errors"


def test_one_connection_is_kept_and_a_closed_one_replaced(
    node: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = node
    with RemoteClient(url, TOKEN, timeout=5) as client:
        client.request("GET", "/one")
        client.request("POST", "/v1/idle-close")  # the node closes it after answering
        time.sleep(0.2)
        client.request("POST", "/three")  # sent once, on a new connection
    assert [r["path"] for r in seen] == ["/one", "/v1/idle-close", "/three"]
    assert seen[0]["port"] == seen[1]["port"] != seen[2]["port"]


def test_a_slow_node_times_out_as_unreachable(node: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = node
    with RemoteClient(url, TOKEN, timeout=0.3) as client:
        with pytest.raises(NodeUnreachableError, match="node API unreachable"):
            client.request("GET", "/slow")
        assert client.request("GET", "/fine")["path"] == "/fine"  # a fresh connection


def test_threads_may_share_a_client(node: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = node
    with RemoteClient(url, TOKEN, timeout=5) as client, ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda n: client.request("GET", f"/n{n}")["path"], range(40)))
    assert paths == [f"/n{n}" for n in range(40)]
    assert len(seen) == 40
