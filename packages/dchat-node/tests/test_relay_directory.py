"""Relay directory end to end: relays register and bond, a user node discovers diverse ones.

Real processes: two chat-chain validators and two currency-chain validators
(the same testnet keys running each genesis), three relays and a user node.
Each relay's operator lists it with ``dchat-node relay register`` and bonds
with ``dchat-node relay bond``; two relays share a region, so the only diverse
pairs hold the third. The user node, configured with ``relay_discovery``,
reads the directory through its light clients at start, pins two diverse
relays in ``home-relays.json`` and runs on the first; ``dchat-node relay
status`` shows one relay's load, quota and verified chain-side figures.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from typer.testing import CliRunner

from dchat_chain.lowlevel import (
    ONION_DIRECTORY_FILE,
    InvalidStateProofError,
    NetPlan,
    NoDiverseRouteError,
    OnionDirectory,
)
from dchat_core import IdentityId, MailboxId, NodeId, canonical_decode, canonical_encode
from dchat_crypto import KdfParams, SigningKey
from dchat_messaging import SealedEnvelope
from dchat_network import relay_session
from dchat_network.lowlevel import DeliveryReceipt
from dchat_node import NodeProcess
from dchat_node.cli import node_app
from dchat_node.cli._relays import discover_home_relays
from dchat_node.cli._testnet import init_testnet
from dchat_node.config import load_config
from dchat_node.relay._role import load_node_key
from dchat_node.validator._keys import load_wallet
from dchat_testing import certified, currency_copies, start_all, toml_listen

PASSPHRASE = "relay directory test passphrase"
REGIONS = ["eu", "eu", "us"]

pytestmark = pytest.mark.slow


@pytest.fixture
def network(tmp_path: Path, wait_until: Callable[..., None]) -> Iterator[dict[str, Any]]:
    net = tmp_path / "net"
    # Two validators per chain: the smallest set that needs a peer's vote per block.
    plan = NetPlan(validators=2, accounts=3, chain="chat", pow_bits=4)
    summary = init_testnet(
        net, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.3
    )
    validators: list[dict[str, Any]] = summary["validators"]  # type: ignore[assignment]
    chat = [net / v["dir"] for v in validators]
    currency = currency_copies(net, summary)
    procs = [
        NodeProcess(home, "validator", passphrase=PASSPHRASE, listen=toml_listen(home))
        for home in chat + currency
    ]
    relays = [
        NodeProcess(tmp_path / f"relay-{i}", "relay", passphrase=PASSPHRASE) for i in range(3)
    ]
    try:
        start_all(procs + relays)
        for proc in procs:
            wait_until(lambda proc=proc: certified(proc), timeout=60)
        yield {"net": net, "chat": chat[0], "currency": currency[1], "relays": relays}
    finally:
        for proc in procs + relays:
            proc.kill()


class _LyingChatNode(ThreadingHTTPServer):
    """Forwards to a real chat validator, but answers the relay index without one relay."""

    def __init__(self, upstream: dict[str, Any]) -> None:
        self.upstream = upstream

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {"Authorization": f"Bearer {upstream['token']}"}
                answer = httpx.get(upstream["url"] + self.path, headers=headers, timeout=10).json()
                if self.path == f"/v1/chain/state/{b'relayidx'.hex()}" and answer.get("value"):
                    index = canonical_decode(bytes.fromhex(answer["value"]))
                    answer["value"] = canonical_encode(index[1:]).hex()
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


async def _give_receipt(link: str, relay_key: SigningKey) -> int:
    """Two envelopes reach a mailbox through the relay, whose owner receipts them."""
    host, port = link.rsplit(":", 1)
    owner = SigningKey.generate()
    mailbox = MailboxId.derive(owner.public_key.to_bytes())
    envelopes = [SealedEnvelope(mailbox, b"sealed %d" % i * 10).to_bytes() for i in range(2)]
    relay_id = bytes(NodeId.derive(relay_key.public_key.to_bytes()))
    with trio.fail_after(10):
        async with relay_session(host, int(port)) as sender:
            await sender.put_many([(bytes(mailbox), e) for e in envelopes])
        async with relay_session(host, int(port), node_key=owner) as session:
            pushed = await session.pull(bytes(mailbox))
            receipt = DeliveryReceipt.sign(owner, relay_id, [i for i, _ in pushed])
            return await session.send_receipt(receipt.to_bytes())


def _cli(args: list[str], passfile: Path) -> str:
    result = CliRunner().invoke(node_app, [*args, "--passphrase-file", str(passfile)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_relays_register_bond_and_a_user_node_picks_two_diverse_ones(
    network: dict[str, Any], tmp_path: Path
) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    wallets = network["net"] / "wallets"
    light = tmp_path / "operator-light"
    chat_genesis = network["net"] / "genesis-chat.cbor"
    for i, relay in enumerate(network["relays"]):
        wallet = ["--wallet", str(wallets / f"account-{i}.wallet")]
        out = _cli(
            [
                "relay", "register", "--chat-node", str(network["chat"]), *wallet,
                "--relay-dir", str(relay.data_dir), "--region", REGIONS[i],
                "--tag", f"as:{64500 + i}", "--label", f"operator {i}",
                "--genesis", str(chat_genesis), "--light-dir", str(light),
            ],
            passfile,
        )  # fmt: skip
        assert f"@{relay.info['link']}" in out
        out = _cli(
            ["relay", "bond", "--currency-node", str(network["currency"]), *wallet, "50"], passfile
        )
        assert "relay bond of" in out
        assert out.rstrip().endswith(": 50")

    status = json.loads(
        _cli(
            [
                "relay", "status", "--relay-dir", str(network["relays"][2].data_dir),
                "--chat-node", str(network["chat"]), "--currency-node", str(network["currency"]),
                "--wallet", str(wallets / "account-2.wallet"), "--light-dir", str(light),
            ],
            passfile,
        )
    )  # fmt: skip
    assert status["relay"]["quota"]["mailboxes"] == 0
    assert status["relay"]["load"]["links_open"] >= 0
    assert status["directory"]["listed"]
    assert status["directory"]["region"] == "us"
    assert status["directory"]["tags"] == ["as:64502"]
    assert status["directory"]["address"].endswith("@" + network["relays"][2].info["link"])
    assert status["stake"]["bond"] == 50
    assert status["stake"]["balance"] > 0
    assert status["stake"]["earnings"] == {"uptime": 0, "delivery": 0}  # no probers here
    assert status["relay"]["receipts"]["taken"] == 0
    assert status["relay"]["receipts"]["auto_claims"] is None  # no chat_node: manual claims

    user_dir = tmp_path / "user"
    user_dir.mkdir(mode=0o700)
    (user_dir / "dchat.toml").write_text(
        "[node]\n"
        "[node.relay_discovery]\n"
        "enabled = true\n"
        f'chat_api = "{network["chat"]}"\n'
        f'currency_api = "{network["currency"]}"\n'
        f'chat_genesis = "{chat_genesis}"\n'
        f'currency_genesis = "{network["net"] / "genesis-currency.cbor"}"\n'
        "min_bond = 50\n"
    )
    user = NodeProcess(user_dir, "user", passphrase=PASSPHRASE)
    try:
        user.start()
        home = json.loads((user_dir / "home-relays.json").read_text())
        links = {r.info["link"]: i for i, r in enumerate(network["relays"])}
        chosen = [links[r["endpoint"]] for r in home["relays"]]
        assert len(chosen) == 2
        assert 2 in chosen  # the only relay outside "eu": every diverse pair holds it
        assert {REGIONS[i] for i in chosen} == {"eu", "us"}
        by_link = {r.info["link"]: r.info["node_id"] for r in network["relays"]}
        for relay in home["relays"]:
            assert relay["address"] == f"{by_link[relay['endpoint']]}@{relay['endpoint']}"
        headers = {"Authorization": f"Bearer {user.info['token']}"}
        answer = httpx.get(user.info["url"] + "/status", headers=headers, timeout=5).json()
        assert answer["home_relays"] == [r["address"] for r in home["relays"]]
        shown = json.loads(
            CliRunner().invoke(node_app, ["relays", "--data-dir", str(user_dir), "--json"]).output
        )
        assert shown["relays"] == home["relays"]
        # Onion hops come from the same view; two of its three relays share "eu",
        # so no route of three distinct operators and regions exists: refused.
        onions = OnionDirectory.from_json((user_dir / ONION_DIRECTORY_FILE).read_text())
        listed = sorted(f"{by_link[link]}@{link}" for link in links)
        assert sorted(address for address, _, _ in onions.candidates) == listed
        for address, _, _ in onions.candidates:
            with pytest.raises(NoDiverseRouteError):
                onions.route(address, random.Random(1))
        mode = httpx.get(user.info["url"] + "/v1/privacy/onion", headers=headers, timeout=5)
        assert mode.json()["onion"]["routes"] == "directory"
        # Two guards (every route would start at one): of two operators and regions.
        guards = mode.json()["onion"]["guards"]
        assert len(guards) == 2
        assert {links[g["address"].partition("@")[2]] == 2 for g in guards} == {True, False}
    finally:
        user.kill()
    # A restart keeps the pinned relays (nothing became ineligible).
    user.start()
    try:
        again = json.loads((user_dir / "home-relays.json").read_text())
        assert again == home
        headers = {"Authorization": f"Bearer {user.info['token']}"}
        mode = httpx.get(user.info["url"] + "/v1/privacy/onion", headers=headers, timeout=5)
        assert mode.json()["onion"]["guards"] == guards  # kept in the store, not drawn anew
        wrong = httpx.get(user.info["url"] + "/v1/relay/status", headers=headers, timeout=5)
        assert wrong.json()["error"]["code"] == "wrong_role"
    finally:
        user.kill()


def test_an_operator_claims_receipts_and_a_lying_chat_node_cannot_hide_a_relay(
    network: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    wallets, net = network["net"] / "wallets", network["net"]
    for i, relay in enumerate(network["relays"][:2]):
        wallet = ["--wallet", str(wallets / f"account-{i}.wallet")]
        _cli(
            [
                "relay", "register", "--chat-node", str(network["chat"]), *wallet,
                "--relay-dir", str(relay.data_dir), "--region", f"r{i}",
                "--genesis", str(net / "genesis-chat.cbor"), "--light-dir", str(tmp_path / "l"),
            ],
            passfile,
        )  # fmt: skip
    # The operator (not the relay's node key) listed relay 0: it claims the receipts.
    relay = network["relays"][0]
    node_key = load_node_key(relay.data_dir / "node.key", PASSPHRASE.encode())
    assert trio.run(_give_receipt, relay.info["link"], node_key) == 2
    claim = ["relay", "claim", "--data-dir", str(relay.data_dir), "--node", str(network["chat"])]
    claimed = json.loads(_cli([*claim, "--wallet", str(wallets / "account-0.wallet")], passfile))
    assert (claimed["claimed"], claimed["count"]) == (True, 2)
    assert claimed["tx"]["accepted"]
    upstream = json.loads((network["chat"] / "api.json").read_text())
    operator = bytes(
        IdentityId.derive(
            load_wallet(wallets / "account-0.wallet", PASSPHRASE.encode()).public_key.to_bytes()
        )
    )

    def listed() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {upstream['token']}"}
        relays = httpx.get(upstream["url"] + "/v1/chain/relays", headers=headers, timeout=5)
        (entry,) = [r for r in relays.json()["relays"] if r["identity"] == operator.hex()]
        return dict(entry)

    wait_until(lambda: listed()["receipt_batches"] == 1, timeout=30)
    # What currency validators' probers read: the relay's node id, dialable, and the batch.
    assert listed()["endpoint"] == f"{relay.info['node_id']}@{relay.info['link']}"
    assert listed()["last_batch"] == {"root": claimed["root"], "count": 2}
    liar = _LyingChatNode(upstream)
    threading.Thread(target=liar.serve_forever, daemon=True).start()
    try:
        # The same lie a node could tell: a well-formed index, one relay short.
        monkeypatch.setenv("DCHAT_CHAIN_API_TOKEN", "unused")
        user_dir = tmp_path / "user"
        user_dir.mkdir(mode=0o700)
        table = {
            "enabled": True,
            "chat_api": f"http://127.0.0.1:{liar.server_address[1]}",
            "currency_api": str(network["currency"]),
            "chat_genesis": str(net / "genesis-chat.cbor"),
            "currency_genesis": str(net / "genesis-currency.cbor"),
            "min_bond": 0,
        }
        config = load_config(user_dir, overrides={"relay_discovery": table}, environ={})
        with pytest.raises(InvalidStateProofError):
            discover_home_relays(config)
        assert not (user_dir / "home-relays.json").exists()
        honest = {**table, "chat_api": str(network["chat"])}
        config = load_config(user_dir, overrides={"relay_discovery": honest}, environ={})
        assert len(discover_home_relays(config).relays) == 2
    finally:
        liar.shutdown()
        liar.server_close()
