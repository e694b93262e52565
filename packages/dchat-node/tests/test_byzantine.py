"""A byzantine validator among four real processes: caught, slashed, and no fork.

``validator-3`` runs ``byzantine_validator.py`` (test code): the real validator
with a second, conflicting prevote next to each of its own. The three honest
validators see both votes, emit evidence, put a ``slash`` transaction in their
mempools; a block includes it and the offender's stake is cut and tombstoned,
after which the chain goes on with three validators. Forged evidence submitted
through the API is refused with a typed error and harms nobody.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_chain import Transaction
from dchat_chain.lowlevel import DuplicateVoteEvidence, NetPlan, Vote, VoteKind
from dchat_core import NodeId
from dchat_crypto import BlsSecretKey, KdfParams
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet
from dchat_testing import running_validators, wait_until

pytestmark = pytest.mark.slow

PASSPHRASE = "byzantine test passphrase"
SCRIPT = Path(__file__).with_name("byzantine_validator.py")
STAKE = NetPlan().stake
runner = CliRunner()


class ByzantineProcess(NodeProcess):
    """A validator process running the double-signing script instead of ``dchat_node``."""

    def _command(self) -> list[str]:
        return [sys.executable, str(SCRIPT), *super()._command()[3:]]


class Net:
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

    def get(self, path: str, node: int = 0) -> dict[str, Any]:
        answer: dict[str, Any] = self.http[node].get(path).json()
        return answer

    def height(self, node: int) -> int:
        return int(self.get("/v1/chain/status", node)["height"])

    def validator(self, i: int, node: int = 0) -> dict[str, Any] | None:
        account = self.summary["validators"][i]["account"]
        record: dict[str, Any] | None = self.get(f"/v1/chain/accounts/{account}", node)["validator"]
        return record


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    out = tmp_path_factory.mktemp("byzantine") / "net"
    plan = NetPlan(validators=4, accounts=1)
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.3
    )
    with running_validators(
        out, summary, PASSPHRASE, kinds=[NodeProcess, NodeProcess, NodeProcess, ByzantineProcess]
    ) as nodes:
        network = Net(out, summary, nodes)
        yield network
        for client in network.http:
            client.close()


_until = functools.partial(wait_until, timeout=40.0)


def _slash(net: Net, evidence: bytes) -> dict[str, Any]:
    key = load_wallet(net.out / "wallets" / "account-0.wallet", PASSPHRASE.encode())
    account = key.public_key.to_bytes().hex()
    nonce = net.get(f"/v1/chain/accounts/{account}")["next_nonce"]
    tx = Transaction.create(
        key,
        chain_id=net.summary["currency_chain"],
        nonce=nonce,
        fee=1,
        kind="slash",
        body={"evidence": evidence},
    )
    answer = net.http[0].post("/v1/chain/txs", json={"txs": [tx.raw.hex()]})
    assert answer.status_code == 202
    result: dict[str, Any] = answer.json()["results"][0]
    return result


def _forged(net: Net, victim: int, same_hash: bool = False) -> bytes:
    """Two conflicting prevotes 'by' validator ``victim``, signed with a stranger's BLS key."""
    stranger = BlsSecretKey.generate()
    chain = net.summary["currency_chain"]
    votes = [
        Vote.create(stranger, chain, VoteKind.PREVOTE, 2, 0, bytes([n]) * 32, victim)
        for n in (1, 1 if same_hash else 2)
    ]
    victim_id = bytes(NodeId.parse(net.summary["validators"][victim]["node_id"]))
    if same_hash:
        return DuplicateVoteEvidence(victim_id, votes[0], votes[1]).to_bytes()
    return DuplicateVoteEvidence.from_votes(victim_id, votes[0], votes[1]).to_bytes()


def test_forged_or_malformed_evidence_is_refused_and_validators_stay_up(net: Net) -> None:
    _until(lambda: net.height(0) >= 2)
    forged = _slash(net, _forged(net, 1))
    assert not forged["accepted"]
    assert forged["error"] == "UnauthorizedError"
    assert "does not verify" in forged["message"]
    for junk in (b"\xa0", b"not cbor at all", _forged(net, 1, same_hash=True)):
        refused = _slash(net, junk)
        assert not refused["accepted"]
        assert refused["error"] == "UnauthorizedError"
        assert "evidence rejected" in refused["message"]
    oversized = net.http[0].post("/v1/chain/txs", json={"txs": ["00" * 40_000]})
    assert oversized.status_code == 422
    reached = [net.height(i) for i in range(4)]
    _until(lambda: all(net.height(i) >= reached[i] + 2 for i in range(4)))
    record = net.validator(1)
    assert record == {"stake": STAKE, "power": STAKE, "tombstoned": False}


def test_double_signer_is_slashed_and_the_chain_goes_on_without_a_fork(net: Net) -> None:
    honest = range(3)
    _until(lambda: all(net.get("/v1/chain/status", i)["evidence"] >= 1 for i in honest))

    def slashed() -> bool:
        record = net.validator(3)
        return record is not None and record["tombstoned"]

    _until(slashed)
    cut = STAKE - STAKE * 50 // 1000  # slash_permille 50 (the chain default)
    for i in honest:
        _until(lambda i=i: net.validator(3, i) == {"stake": cut, "power": 0, "tombstoned": True})
    # The wallet shows the same record; its light client follows the chain from
    # genesis across the set change the slash makes.
    balance_args = [
        "wallet",
        "balance",
        "--node",
        str(net.out / "validator-1"),
        "--genesis",
        str(net.out / "validator-1" / "genesis.cbor"),
        "--light-dir",
        str(net.out / "light"),
        net.summary["validators"][3]["account"],
    ]
    result = runner.invoke(app, balance_args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["validator"] == {
        "stake": cut,
        "power": 0,
        "tombstoned": True,
    }
    # Three validators remain, and they keep finalizing the same blocks.
    offender = net.summary["validators"][3]["account"]

    def members(node: int) -> list[str]:
        return [v["account"] for v in net.get("/v1/chain/status", node)["validators"]]

    for i in honest:  # the set change takes effect a height or two after the slash
        _until(lambda i=i: offender not in members(i) and len(members(i)) == 3)
    top = max(net.height(i) for i in honest)
    _until(lambda: min(net.height(i) for i in honest) >= top + 3)
    # The same light state now has to take the hand-off to the three-validator set.
    again = runner.invoke(app, balance_args)
    assert again.exit_code == 0, again.output
    for height in range(1, top + 4):
        hashes = {net.get(f"/v1/chain/blocks/{height}", i)["hash"] for i in honest}
        assert len(hashes) == 1, f"fork at height {height}"
