"""A currency validator process probes the relay its chat validator lists (real processes).

Two-validator chat and currency chains (a one-validator chain's node never gets
its API up: its event loop stays busy) and a relay. The relay is listed on the
chat chain with a probeable endpoint (``NODEID@HOST:PORT``); the currency
validator, configured with ``probe_directory`` (the chat validator's data
directory), reads the listing over that node's API and probes the relay, which
answers with its node key (counted in its ``dchat_relay_probes_total``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dchat_chain import Transaction
from dchat_chain.lowlevel import NetPlan, solve_pow
from dchat_crypto import KdfParams
from dchat_node import NodeProcess, free_port
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet

PASSPHRASE = "relay probe test passphrase"
POW_BITS = 8


def _client(node: NodeProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {node.info['token']}"}
    return httpx.Client(base_url=node.info["url"], headers=headers, timeout=5)


def _validator(net: Path, planned: dict[str, str]) -> NodeProcess:
    return NodeProcess(
        net / planned["dir"], "validator", passphrase=PASSPHRASE, listen=planned["listen"]
    )


def _probes(relay: NodeProcess) -> float:
    with _client(relay) as api:
        for line in api.get("/metrics").text.splitlines():
            if line.startswith("dchat_relay_probes_total "):
                return float(line.split()[1])
    return -1.0


@pytest.mark.slow
def test_a_currency_validator_probes_the_relay_its_chat_validator_lists(
    tmp_path: Path, wait_until: Callable[..., None]
) -> None:
    secret, kdf = PASSPHRASE.encode(), KdfParams.TESTING
    chat_plan = NetPlan(validators=2, accounts=1, chain="chat", pow_bits=POW_BITS)
    chat = init_testnet(tmp_path / "chat", chat_plan, secret, kdf=kdf, block_interval=0.2)
    cur_plan = NetPlan(validators=2, accounts=0, chain="currency")
    cur = init_testnet(tmp_path / "cur", cur_plan, secret, kdf=kdf, block_interval=0.2)
    chat_dir = tmp_path / "chat" / chat["validators"][0]["dir"]
    cur_dir = tmp_path / "cur" / cur["validators"][0]["dir"]
    toml = cur_dir / "dchat.toml"
    toml.write_text(toml.read_text() + f'\nprobe_directory = "{chat_dir}"\nprobe_interval = 0.3\n')
    relay = NodeProcess(
        tmp_path / "relay", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{free_port()}"
    )
    chat_nodes = [
        NodeProcess(
            tmp_path / "chat" / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"]
        )
        for v in chat["validators"]
    ]
    cur_nodes = [
        NodeProcess(
            tmp_path / "cur" / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"]
        )
        for v in cur["validators"]
    ]
    chat_node = chat_nodes[0]
    started: list[NodeProcess] = []
    try:
        for node in (relay, *chat_nodes):
            node.start()
            started.append(node)
        # The relay's operator lists it on the chat chain, with its node id in the endpoint.
        wallet = load_wallet(tmp_path / "chat" / "wallets" / "account-0.wallet", secret)
        owner = wallet.public_key.to_bytes()
        chain = chat["chat_chain"]
        endpoint = f"{relay.info['node_id']}@{relay.info['link']}"
        bodies = [
            ("register_identity", 0, {"pow": solve_pow(chain, owner, POW_BITS), "doc": b"d" * 32}),
            ("register_relay", 1, {"endpoint": endpoint, "region": "eu", "stake_ref": b"s" * 32}),
        ]
        txs = [
            Transaction.create(wallet, chain_id=chain, nonce=n, fee=n, kind=kind, body=body)
            for kind, n, body in bodies
        ]
        with _client(chat_node) as api:
            answer = api.post("/v1/chain/txs", json={"txs": [t.raw.hex() for t in txs]}).json()
            assert all(r["accepted"] for r in answer["results"]), answer

            def listed() -> list[dict[str, object]]:
                relays: list[dict[str, object]] = api.get("/v1/chain/relays").json()["relays"]
                return relays

            wait_until(lambda: listed(), timeout=30)
            assert listed()[0]["endpoint"] == endpoint
        assert _probes(relay) == 0
        for node in cur_nodes:
            node.start()
            started.append(node)
        wait_until(lambda: _probes(relay) >= 3, timeout=30)  # a round every 0.3 s
    finally:
        for node in started:
            node.kill()
