"""The chain commands' API client (``dchat-node relay …``, ``dchat wallet …``) over real HTTP.

Each call opens a short-lived HTTP client; building a TLS context for each one
loaded the whole CA bundle every time (a relay registration makes dozens of
calls: under load that was most of its time). The context is now built once.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from dchat_node.cli._chain import _Api

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    """Answers every GET with its path as JSON (HTTP/1.0: the body ends with the connection)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"path": self.path}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def node_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose ``api.json`` names a small local JSON server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    info = {"url": f"http://127.0.0.1:{server.server_address[1]}", "token": "t"}
    (tmp_path / "api.json").write_text(json.dumps(info))
    try:
        yield tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_calls_share_one_tls_context(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    api = _Api(node_dir)
    answers = [api.call("GET", f"/v1/chain/status?n={n}") for n in range(5)]
    assert [a["path"] for a in answers] == [f"/v1/chain/status?n={n}" for n in range(5)]
    assert len(loads) <= 1  # at most the first call of the process builds it
