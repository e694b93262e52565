"""Public @handles with real processes: a chat-chain validator, a relay and user nodes.

Alice registers ``@alice`` with ``dchat handle register`` (her node registers
her identity on the chain first, paying work, not tokens); Bob runs ``dchat
contact add @alice`` and writes to her without ever seeing her card. Carol's
node reaches the chain through a proxy that lies about the handle: her light
client refuses the answer by its proof. Hostile API and CLI input is typed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dchat_chain.lowlevel import NetPlan
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_sdk import ApiError
from dchat_testing import running_validators

pytestmark = pytest.mark.slow

PASSPHRASE = "handles test passphrase"
runner = CliRunner()


class LyingProxy:
    """A validator API in front of a real one that, while ``lying``, forges handle records."""

    def __init__(self, upstream: str, token: str) -> None:
        self.http = httpx.Client(base_url=upstream, timeout=10.0)
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.lying = True
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        upstream = self.http.get(handler.path)
        doc = upstream.json()
        if self.lying and handler.path.startswith("/v1/chain/handles/") and doc.get("value"):
            record = canonical_decode(bytes.fromhex(doc["value"]))
            record["relays"] = ["127.0.0.1:1"]  # send Carol's mail somewhere else
            doc["value"] = canonical_encode(record).hex()
        data = json.dumps(doc).encode()
        handler.send_response(upstream.status_code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


@pytest.fixture(scope="module")
def chat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, NodeProcess]]:
    """A four-validator chat chain (cheap work for identities and handles); validator 0."""
    out = tmp_path_factory.mktemp("handles") / "chain"
    plan = NetPlan(validators=4, accounts=0, chain="chat", pow_bits=4, handle_pow_bits=4)
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.2
    )
    with running_validators(out, summary, PASSPHRASE) as nodes:
        yield out / "validator-0", nodes[0]


def _user(
    make_user: Callable[[str], NodeProcess], tmp_path: Path, name: str, chain: Path, **extra: Path
) -> NodeProcess:
    data_dir = tmp_path / name
    data_dir.mkdir(mode=0o700)
    lines = [f'chat_node = "{chain}"', *(f'{k} = "{v}"' for k, v in extra.items())]
    (data_dir / "dchat.toml").write_text("[node]\n" + "\n".join(lines) + "\n")
    node = make_user(name)
    with node.client() as api:
        api.create_identity(name)
    return node


def _dchat(node: NodeProcess, *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_register_look_up_add_by_handle_renew_release(
    chat_node: tuple[Path, NodeProcess],
    relay: NodeProcess,
    make_user: Callable[[str], NodeProcess],
    tmp_path: Path,
    wait_until: Callable[..., None],
) -> None:
    chain, _ = chat_node
    alice = _user(make_user, tmp_path, "alice", chain)
    bob = _user(make_user, tmp_path, "bob", chain)
    with alice.client() as a:
        alice_id = a.request("GET", "/v1/identity")["identity_id"]
        assert a.own_handle() is None
    assert "@alice" in _dchat(alice, "handle", "register", "@Alice")
    with bob.client() as b:
        found = b.lookup_handle("@alice")
        assert found["card_current"]
        assert found["relays"] == [relay.info["link"]]
        assert found["expires"] > found["height"]
    added = _dchat(bob, "contact", "add", "@alice")
    assert f"added alice ({alice_id})" in added
    with bob.client() as b, alice.client() as a:
        a.add_contact("bob", b.card())  # bob has no handle: his card works as before
        b.send("alice", "found you by your handle")
        wait_until(
            lambda: any(m.text == "found you by your handle" for m in a.messages()), timeout=30
        )
        # Someone else cannot take it, nor a look-alike of it.
        with pytest.raises(ApiError) as taken:
            b.handle_action("register", "a1ice")
        assert taken.value.code == "handle_refused"
    shown = _dchat(alice, "handle", "show")
    assert "@alice" in shown
    assert "expires" in shown
    assert "@alice" in _dchat(alice, "handle", "renew")
    assert "released" in _dchat(alice, "handle", "release")
    with bob.client() as b:
        with pytest.raises(ApiError) as gone:
            b.lookup_handle("alice")
        assert gone.value.code == "not_found"
    assert "no live handle" in _dchat(bob, "contact", "add", "al2", "@alice", ok=False)


def test_a_lying_chain_node_is_refused_by_proof(
    chat_node: tuple[Path, NodeProcess],
    make_user: Callable[[str], NodeProcess],
    tmp_path: Path,
) -> None:
    chain, validator = chat_node
    proxy = LyingProxy(validator.info["url"], validator.info["token"])
    try:
        lied = tmp_path / "lying-node"
        lied.mkdir()
        (lied / "api.json").write_text(json.dumps({"url": proxy.url, "token": "t"}))
        alice = _user(make_user, tmp_path, "alice", chain)
        carol = _user(make_user, tmp_path, "carol", lied, chat_genesis=chain / "genesis.cbor")
        _dchat(alice, "handle", "register", "alicia")
        with carol.client() as c:
            with pytest.raises(ApiError) as refused:
                c.add_contact_by_handle("@alicia")
            assert refused.value.code == "InvalidStateProofError"
            assert c.contacts() == []
            proxy.lying = False  # the same path, honest: accepted
            assert c.add_contact_by_handle("@alicia", "al").name == "al"
    finally:
        proxy.close()


def test_hostile_handle_input_is_typed(
    make_user: Callable[[str], NodeProcess], tmp_path: Path
) -> None:
    node = _user(make_user, tmp_path, "dave", tmp_path / "no-chain-here")
    with node.client() as api:
        for bad, code in (("no", "InvalidHandleError"), ("%40%40x", "InvalidHandleError")):
            with pytest.raises(ApiError) as raised:
                api.request("GET", f"/v1/handles/{bad}")
            assert raised.value.code == code
        with pytest.raises(ApiError) as unconfigured:
            api.lookup_handle("@alice")
        assert (unconfigured.value.code, unconfigured.value.status) == ("no_chain", 409)
        for body in ({}, {"card": "dchat-card:x", "handle": "@a"}, {"card": "dchat-card:x"}):
            with pytest.raises(ApiError) as refused:
                api.request("POST", "/v1/contacts", body)
            assert refused.value.code == "invalid_request"
        with pytest.raises(ApiError) as bad_action:
            api.request("POST", "/v1/handle", {"action": "steal", "name": "alice"})
        assert bad_action.value.status == 422
        with pytest.raises(ApiError) as bad_name:
            api.handle_action("register", "x" * 33)
        assert bad_name.value.code == "InvalidHandleError"
    assert "card, or their @handle" in _dchat(node, "contact", "add", "bob", ok=False)
    _dchat(node, "contact", "add", "@--", ok=False)
