"""The wallet's light client against a real validator, and against a lying proxy in front of it.

One four-validator testnet for the module; the wallet talks to validator 0,
directly or through a proxy. The proxy (test-only, a thread in
this process) forwards every request to the validator and, depending on its
``lie``, rewrites the answer: a forged certificate, a header of another chain,
replayed old headers, an app hash or a value the proof does not cover, or an
old answer replayed. Each must be refused with its own typed error, and an
honest node must keep working through the same code path, across a change of
the validator set (validator 0 stakes more, so its power changes).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dchat_chain import CommitCertificate
from dchat_chain.lowlevel import NetPlan, read_light_state
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_testing import running_validators, wait_until

pytestmark = pytest.mark.slow

PASSPHRASE = "light wallet test passphrase"
runner = CliRunner()


class Proxy:
    """A node API that forwards to a real one and tells the lie it is set to."""

    def __init__(self, upstream: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=upstream, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
        self.lie: str | None = None
        self.recorded: dict[str, Any] = {}
        self.header_starts: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.serve(self, "GET")

            def do_POST(self) -> None:
                proxy.serve(self, "POST")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        path = handler.path
        if path.startswith("/v1/chain/headers") and self.lie == "replay_headers":
            path = path.split("?")[0] + "?from=1&limit=1"
        kind = {"Content-Type": handler.headers.get("Content-Type") or "application/json"}
        upstream = self.http.request(method, path, content=body, headers=kind)
        doc = upstream.json()
        if upstream.status_code == 200:
            doc = self.tell(handler.path, doc)
        data = json.dumps(doc).encode()
        handler.send_response(upstream.status_code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def tell(self, path: str, doc: Any) -> Any:
        if path.startswith("/v1/chain/headers"):
            self.header_starts.append(int(path.split("from=")[1].split("&")[0]))
            for item in doc["headers"]:
                item.update(_lie_about_header(self.lie, item))
        elif path.startswith("/v1/chain/accounts/"):
            self.recorded.setdefault(path, doc)
            if self.lie == "stale":
                return self.recorded[path]
            if self.lie == "app_hash":
                doc["app_hash"] = "ab" * 32
            if self.lie == "value" and doc["value"] is not None:
                value = bytes.fromhex(doc["value"])
                doc["value"] = ((int.from_bytes(value[:8]) + 10**6).to_bytes(8) + value[8:]).hex()
        return doc

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


def _lie_about_header(lie: str | None, item: dict[str, Any]) -> dict[str, Any]:
    if lie == "certificate":
        cert = CommitCertificate.from_bytes(bytes.fromhex(item["certificate"]))
        return {"certificate": replace(cert, round=cert.round + 1).to_bytes().hex()}
    if lie == "chain":
        header = canonical_decode(bytes.fromhex(item["header"]))
        header["chain"] = "another-chain"
        return {"header": canonical_encode(header).hex()}
    return {}


class Net:
    def __init__(self, out: Path, summary: dict[str, Any], nodes: list[NodeProcess]) -> None:
        self.out, self.summary = out, summary
        node = nodes[0]
        self.passfile = out / "passphrase"
        self.passfile.write_text(PASSPHRASE + "\n")
        self.genesis = out / "validator-0" / "genesis.cbor"
        self.proxy = Proxy(node.info["url"], node.info["token"])
        self.proxy_dir = out / "proxy"
        self.proxy_dir.mkdir()
        info = {"url": self.proxy.url, "token": node.info["token"]}
        (self.proxy_dir / "api.json").write_text(json.dumps(info))
        self.http = httpx.Client(
            base_url=node.info["url"],
            headers={"Authorization": f"Bearer {node.info['token']}"},
            timeout=5.0,
        )

    def account(self, i: int = 0) -> str:
        return str(self.summary["accounts"][i]["account"])

    def wallet(self, *args: str, light: Path, ok: bool = True, node: Path | None = None) -> str:
        where = ["--node", str(node or self.proxy_dir), "--genesis", str(self.genesis)]
        full = [*args[:2], *where, "--light-dir", str(light), *args[2:]]
        full += ["--passphrase-file", str(self.passfile)]
        result = runner.invoke(app, full)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    def height(self) -> int:
        return int(self.http.get("/v1/chain/status").json()["height"])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    out = tmp_path_factory.mktemp("light") / "net"
    plan = NetPlan(validators=4, accounts=1)
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.2
    )
    with running_validators(out, summary, PASSPHRASE) as nodes:
        network = Net(out, summary, nodes)
        yield network
        network.proxy.close()
        network.http.close()


_until = functools.partial(wait_until, timeout=30.0)


def test_honest_node_across_a_validator_set_change(net: Net, tmp_path: Path) -> None:
    light = tmp_path / "light"
    _until(lambda: net.height() >= 3)
    first = json.loads(net.wallet("wallet", "balance", net.account(), light=light))
    assert first["balance"] == 10**12
    path = light / "dchat-testnet-currency.light"
    stored = read_light_state(path)
    assert stored is not None
    client, anchor = stored
    assert client.height == first["height"] + 1
    assert client.validators.hash() == anchor  # no change yet
    # The validator bonds more: its power changes, so the set changes.
    key = str(net.out / "validator-0" / "validator.key")
    net.wallet("wallet", "stake", "--wallet", key, "1000000", light=light)
    _until(lambda: net.height() >= client.height + 6)
    net.proxy.header_starts.clear()
    net.wallet("wallet", "balance", net.account(), light=light)
    assert net.proxy.header_starts[0] > client.height  # only new headers were fetched
    after = read_light_state(path)
    assert after is not None
    assert after[0].validators.hash() != anchor  # the client took the hand-off
    assert after[1] == anchor


@pytest.mark.parametrize(
    ("lie", "error"),
    [
        ("certificate", "InvalidCertificateError"),
        ("chain", "UnexpectedHeaderError"),
        ("app_hash", "InvalidStateProofError"),
        ("value", "InvalidStateProofError"),
    ],
)
def test_each_lie_is_refused_with_its_type(net: Net, tmp_path: Path, lie: str, error: str) -> None:
    _until(lambda: net.height() >= 2)
    net.proxy.lie = lie
    try:
        out = net.wallet("wallet", "balance", net.account(), light=tmp_path, ok=False)
    finally:
        net.proxy.lie = None
    assert f"refused the node's answer: {error}" in out
    stored = read_light_state(tmp_path / "dchat-testnet-currency.light")
    if lie in ("certificate", "chain"):
        assert stored is None  # nothing verified, nothing saved


def test_replayed_headers_and_stale_answers_are_refused(net: Net, tmp_path: Path) -> None:
    net.wallet("wallet", "balance", net.account(), light=tmp_path)
    start = net.height()
    _until(lambda: net.height() >= start + 3)
    net.proxy.lie = "replay_headers"
    try:
        out = net.wallet("wallet", "balance", net.account(), light=tmp_path, ok=False)
        assert "UnexpectedHeaderError" in out
        net.proxy.lie = None
        net.wallet("wallet", "balance", net.account(), light=tmp_path)  # catches up honestly
        net.proxy.lie = "stale"  # the first answer the proxy saw, served again
        out = net.wallet("wallet", "balance", net.account(), light=tmp_path, ok=False)
    finally:
        net.proxy.lie = None
    assert "StaleAnswerError" in out


def test_a_corrupt_state_file_is_refused(net: Net, tmp_path: Path) -> None:
    (tmp_path / "dchat-testnet-currency.light").write_bytes(b"\xa1\x61v\x01garbage")
    out = net.wallet("wallet", "balance", net.account(), light=tmp_path, ok=False)
    assert "LightStateError" in out


def _as_int(raw: int | str) -> int | None:
    """What a query parameter means to the route: an integer, or nothing valid."""
    if isinstance(raw, int):
        return raw
    return int(raw) if re.fullmatch(r"-?[0-9]+", raw) else None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(st.integers(-5, 1 << 54), st.text("0123456789-x", max_size=6)),
    st.one_of(st.integers(-5, 100), st.text("0123456789-x", max_size=4)),
)
def test_headers_route_validates_its_parameters(
    net: Net, start: int | str, limit: int | str
) -> None:
    answer = net.http.get("/v1/chain/headers", params={"from": start, "limit": limit})
    start, limit = _as_int(start), _as_int(limit)
    valid = start is not None and limit is not None and 1 <= start <= 1 << 53 and 1 <= limit <= 64
    if not valid:
        assert answer.status_code == 422
        return
    assert start is not None
    assert limit is not None
    assert answer.status_code == 200
    doc = answer.json()
    assert len(doc["headers"]) <= limit
    assert [h["height"] for h in doc["headers"]] == list(range(start, start + len(doc["headers"])))
