"""API and data-directory hardening, against real node processes.

Each test is a point of issue 14, item 5: the token is checked before a body
is read, bodies are capped with 413, the OpenAPI document needs the token,
the API leaves loopback only when exposed on purpose and then only over TLS,
a data directory other users can reach is refused, and what a node creates
is private. Operator mistakes end in one line, never a traceback.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dchat_node import NodeProcess
from dchat_sdk import RemoteClient
from dchat_testing import write_self_signed_tls
from dchat_testing.pytest_plugin import PASSPHRASE, start_user

pytestmark = pytest.mark.slow


def _exchange(url: str, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:
    """Send a raw request head (and maybe part of a body); the status and the answer's bytes.

    The socket is never closed for writing: a server that waits for the rest of
    a declared body times out here instead of answering.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _post_head(path: str, length: int, token: str | None = None) -> str:
    auth = "" if token is None else f"Authorization: Bearer {token}\n"
    return (
        f"POST {path} HTTP/1.1\nHost: x\n{auth}Content-Type: application/json\n"
        f"Content-Length: {length}\n"
    )


@pytest.fixture(scope="module")
def user(
    tmp_path_factory: pytest.TempPathFactory, module_relay: NodeProcess
) -> Iterator[NodeProcess]:
    """A user node shared by the tests that only get refusals (each asserts its own)."""
    node = start_user(tmp_path_factory.mktemp("hardening") / "carol", module_relay)
    yield node
    node.kill()


def test_the_token_is_checked_before_the_body_arrives(user: NodeProcess) -> None:
    # 64 MiB announced, none of it sent: the answer comes from the head alone.
    status, answer = _exchange(user.info["url"], _post_head("/v1/identity", 64 * 1024 * 1024))
    assert status == 401
    assert b'"code": "unauthorized"' in answer
    assert b"www-authenticate: bearer" in answer.lower()


def test_malformed_json_without_the_token_is_401_not_422(user: NodeProcess) -> None:
    for token in (None, "wrong"):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = httpx.post(
            user.info["url"] + "/v1/identity", content=b"{not json", headers=headers, timeout=10
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_bodies_over_the_cap_get_413(user: NodeProcess) -> None:
    token = user.info["token"]
    status, answer = _exchange(user.info["url"], _post_head("/v1/identity", 5 * 1024 * 1024, token))
    assert status == 413
    assert b'"code": "body_too_large"' in answer

    def chunks() -> object:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = httpx.post(  # chunked: no length to judge by, counted as it arrives
        user.info["url"] + "/v1/identity",
        content=chunks(),  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    with user.client() as client:  # the node is fine afterwards
        assert client.status()["role"] == "user"


def test_openapi_needs_the_token(user: NodeProcess) -> None:
    url = user.info["url"] + "/openapi.json"
    refused = httpx.get(url, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    for docs in ("/docs", "/redoc"):
        assert httpx.get(user.info["url"] + docs, timeout=10).status_code == 401
    schema = httpx.get(url, headers={"Authorization": f"Bearer {user.info['token']}"}, timeout=10)
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_relay_openapi_lists_no_user_routes(module_relay: NodeProcess) -> None:
    schema = httpx.get(
        module_relay.info["url"] + "/openapi.json",
        headers={"Authorization": f"Bearer {module_relay.info['token']}"},
        timeout=10,
    ).json()
    assert sorted(schema["paths"]) == [
        "/health",
        "/metrics",
        "/status",
        "/v1/relay/receipts/batch",
        "/v1/relay/receipts/claimed",
        "/v1/relay/status",
    ]
    contacts = httpx.get(  # user routes still answer, with the usual error
        module_relay.info["url"] + "/v1/contacts",
        headers={"Authorization": f"Bearer {module_relay.info['token']}"},
        timeout=10,
    )
    assert contacts.json()["error"]["code"] == "wrong_role"


def _run(data_dir: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``dchat-node run`` that must exit by itself (a refusal); killed if it does not."""
    command = [sys.executable, "-m", "dchat_node", "run", "--data-dir", str(data_dir), *args]
    return subprocess.run(
        command,
        env={**os.environ, "DCHAT_PASSPHRASE": PASSPHRASE},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("--role", "user", "--listen", "0.0.0.0:0"),
        ("--role", "relay", "--listen", "127.0.0.1:0", "--api-listen", "0.0.0.0:0"),
        ("--role", "user", "--listen", "[::]:0"),
    ],
)
def test_an_api_off_loopback_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    message = _one_line_error(_run(tmp_path / "node", *args))
    assert "is not loopback" in message
    assert not (tmp_path / "node" / "node.db").exists()


def test_exposing_the_api_without_tls_is_refused(tmp_path: Path) -> None:
    result = _run(tmp_path / "node", "--listen", "0.0.0.0:0", "--expose-api")
    assert "expose_api needs TLS" in _one_line_error(result)
    config = tmp_path / "tls.toml"
    config.write_text(
        '[node]\napi_tls_cert = "/nonexistent.pem"\napi_tls_key = "/nonexistent.key"\n'
    )
    result = _run(
        tmp_path / "node", "--listen", "0.0.0.0:0", "--expose-api", "--config", str(config)
    )
    assert "cannot load the API's TLS files /nonexistent.pem" in _one_line_error(result)


def test_an_exposed_api_is_served_over_tls_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "relay"
    data.mkdir(mode=0o700)
    cert, _ = write_self_signed_tls(data)
    (data / "dchat.toml").write_text(
        '[node]\nexpose_api = true\napi_tls_cert = "api-cert.pem"\napi_tls_key = "api-key.pem"\n'
    )
    with NodeProcess(data, "relay", passphrase=PASSPHRASE) as node:
        info = node.start()
        assert info["url"].startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        auth = {"Authorization": f"Bearer {info['token']}"}
        with httpx.Client(base_url=info["url"], verify=trust, timeout=10) as https:
            assert https.get("/health").json()["status"] == "ok"
            assert https.get("/status", headers=auth).json()["role"] == "relay"
            assert https.get("/status").status_code == 401
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how a local `dchat` trusts it
        with RemoteClient.from_data_dir(data) as client:
            assert client.status()["role"] == "relay"
        clear = info["url"].replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):  # no clear-text API on the same port
            httpx.get(clear + "/health", timeout=5)


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o707])
def test_a_data_dir_other_users_can_reach_is_refused(tmp_path: Path, mode: int) -> None:
    data = tmp_path / "node"
    data.mkdir()
    data.chmod(mode)
    message = _one_line_error(_run(data, "--role", "relay"))
    assert f"data directory {data} is open to other users" in message
    assert f"chmod 700 {data}" in message
    assert sorted(os.listdir(data)) == []  # refused before the lock or the database


def _loose(root: Path) -> list[str]:
    """Files under ``root`` that other users could read or write, and non-0700 directories."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if (path.is_dir() and mode != 0o700) or (not path.is_dir() and mode & 0o077):
            found.append(f"{path.relative_to(root)} {mode:04o}")
    return found


def test_what_a_node_creates_is_private(
    tmp_path: Path, make_user: Callable[[str], NodeProcess], relay: NodeProcess
) -> None:
    # The directories exist already (made private) and this process's umask is
    # the usual 022: the node's own files must still come out 0600.
    old = os.umask(0o022)
    try:
        alice = make_user("alice")
    finally:
        os.umask(old)
    with alice.client() as client:
        client.create_identity("alice")  # the keystore and identity go into node.db
    created = {p.name for p in alice.data_dir.iterdir()}
    assert {"node.db", "api.json", "node.lock"} <= created
    assert _loose(alice.data_dir) == []
    assert _loose(relay.data_dir) == []


def test_an_idle_keep_alive_connection_outlives_the_clients_expiry(
    module_relay: NodeProcess,
) -> None:
    # httpx (the SDK, the CLI) keeps an idle connection 5 s. If the server closed
    # it at the same moment, a request sent on it would get no answer; the API
    # keeps it longer, so the second request on the same connection is answered.
    host, port = module_relay.info["url"].removeprefix("http://").rsplit(":", 1)
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        for pause in (0.0, httpx.Limits().keepalive_expiry + 1.0):  # type: ignore[operator]
            time.sleep(pause)
            conn.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = conn.recv(65536)
                assert chunk, f"closed without an answer after {pause:.0f} s idle"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
