"""``dchat wallet`` against four real validator processes (one testnet for the module).

Rapid transfers queue behind each other with the node's pending nonce; a replayed
nonce is refused with its typed error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_chain import Transaction
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node._validator_keys import load_wallet
from dchat_node._validator_testnet import NetPlan, init_testnet
from dchat_node.cli import app

pytestmark = pytest.mark.slow

PASSPHRASE = "wallet test passphrase"
runner = CliRunner()


class Net:
    """The running testnet: its directory, summary, processes and API clients."""

    def __init__(self, out: Path, summary: dict[str, Any], nodes: list[NodeProcess]) -> None:
        self.out, self.summary, self.nodes = out, summary, nodes
        self.http = [
            httpx.Client(
                base_url=n.info["url"],
                headers={"Authorization": f"Bearer {n.info['token']}"},
                timeout=5.0,
            )
            for n in nodes
        ]
        self.passfile = out / "passphrase"
        self.passfile.write_text(PASSPHRASE + "\n")

    def wallet(self, i: int) -> Path:
        return self.out / "wallets" / f"account-{i}.wallet"

    def account(self, i: int) -> str:
        return str(self.summary["accounts"][i]["account"])

    def get(self, path: str, node: int = 0) -> dict[str, Any]:
        answer: dict[str, Any] = self.http[node].get(path).json()
        return answer

    def balance(self, account: str, node: int = 0) -> int:
        return int(self.get(f"/v1/chain/accounts/{account}", node)["balance"])

    def height(self, node: int = 0) -> int:
        return int(self.get("/v1/chain/status", node)["height"])

    def cli(self, *args: str, ok: bool = True) -> str:
        node_dir = str(self.out / "validator-0")
        full = [*args[:2], "--node", node_dir, "--passphrase-file", str(self.passfile), *args[2:]]
        result = runner.invoke(app, full)
        if ok:
            assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    out = tmp_path_factory.mktemp("wallet") / "net"
    plan = NetPlan(validators=4, accounts=3, block_interval=0.3)
    summary = init_testnet(out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING)
    nodes = [
        NodeProcess(out / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
        for v in summary["validators"]
    ]
    try:
        for node in nodes:
            node.start()
        network = Net(out, summary, nodes)
        yield network
        for client in network.http:
            client.close()
    finally:
        for node in nodes:
            node.kill()


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"condition not met within {timeout}s")


def test_twenty_back_to_back_transfers_all_finalize(net: Net) -> None:
    to = net.account(1)
    _until(lambda: net.height() >= 2)
    before = net.balance(to)
    hashes = []
    for i in range(20):
        out = net.cli(
            "wallet", "transfer", "--wallet", str(net.wallet(0)), to, str(i + 1), "--no-wait"
        )
        hashes.append(out.split("submitted ")[1].split()[0])
    assert len(set(hashes)) == 20

    def all_committed() -> bool:
        return all(net.get(f"/v1/chain/txs/{h}", 3).get("status") == "committed" for h in hashes)

    _until(all_committed)
    assert all(net.get(f"/v1/chain/txs/{h}", 3)["code"] == 0 for h in hashes)
    _until(lambda: net.balance(to, 2) == before + sum(range(1, 21)))
    answer = net.get(f"/v1/chain/accounts/{net.account(0)}")
    assert answer["next_nonce"] == answer["nonce"] == 20


def test_replayed_nonce_is_refused_with_its_type(net: Net) -> None:
    key = load_wallet(net.wallet(2), PASSPHRASE.encode())
    chain = net.summary["currency_chain"]

    def transfer(nonce: int, amount: int) -> bytes:
        body = {"to": bytes.fromhex(net.account(1)), "amount": amount}
        tx = Transaction.create(key, chain_id=chain, nonce=nonce, fee=1, kind="transfer", body=body)
        return tx.raw

    first = transfer(0, 5)
    result = net.http[1].post("/v1/chain/txs", json={"txs": [first.hex()]}).json()["results"][0]
    assert result["accepted"]
    _until(lambda: net.get(f"/v1/chain/txs/{result['hash']}", 1)["status"] == "committed")
    for raw in (first, transfer(0, 6)):  # the same bytes again, and new bytes on a used nonce
        again = net.http[1].post("/v1/chain/txs", json={"txs": [raw.hex()]}).json()["results"][0]
        assert not again["accepted"]
        assert again["error"] == "ReplayedNonceError"
    refused = net.cli("wallet", "balance", net.account(2))
    assert json.loads(refused)["nonce"] == 1
