"""Validators: testnet files, the durable block store, and 4 real validator processes.

The multi-process test follows the issue's script: 4 validators finalize blocks
with transfers; one SIGKILLed, the other three go on; a second SIGKILLed, no
new blocks and the survivors agree on every block; one restarted, progress
resumes and the restarted one catches up by block sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from dchat_chain import Transaction
from dchat_chain.lowlevel import NetPlan, parse_peer
from dchat_crypto import KdfParams
from dchat_node import ConfigError, NodeProcess
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_validator_keys, load_wallet
from dchat_testing import holds_for, wait_stable, wait_until

PASSPHRASE = "validator test passphrase"
SECRET = PASSPHRASE.encode()


@pytest.fixture
def testnet(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    plan = NetPlan(validators=4, accounts=2)
    summary = init_testnet(
        tmp_path / "net", plan, SECRET, kdf=KdfParams.TESTING, block_interval=0.3
    )
    return tmp_path / "net", summary


# -- files ---------------------------------------------------------------------------


def test_testnet_keys_are_encrypted_and_peers_pinned(testnet: tuple[Path, dict[str, Any]]) -> None:
    out, summary = testnet
    home = out / "validator-0"
    keys = load_validator_keys(home / "validator.key", SECRET)
    blob = (home / "validator.key").read_bytes()
    assert keys.account.to_bytes() not in blob
    assert keys.bls.to_bytes() not in blob
    assert (home / "validator.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="passphrase"):
        load_validator_keys(home / "validator.key", b"not the passphrase")
    wallet = load_wallet(out / "wallets" / "account-0.wallet", SECRET)
    assert wallet.public_key.to_bytes().hex() == summary["accounts"][0]["account"]
    toml = (home / "dchat.toml").read_text()
    others = [v for v in summary["validators"] if v["dir"] != "validator-0"]
    peers = [parse_peer(f"{v['node_id']}@{v['listen']}") for v in others]
    assert all(str(p) in toml for p in peers)
    assert summary["validators"][0]["node_id"] not in toml  # never its own peer
    with pytest.raises(ConfigError, match="already"):
        init_testnet(out, NetPlan(), SECRET, kdf=KdfParams.TESTING)


# -- four processes ------------------------------------------------------------------


class Api:
    """A validator's chain API (every client opened is closed by the ``opened`` fixture)."""

    opened: ClassVar[list[httpx.Client]] = []

    def __init__(self, node: NodeProcess) -> None:
        info = node.info
        headers = {"Authorization": f"Bearer {info['token']}"}
        self.http = httpx.Client(base_url=info["url"], headers=headers, timeout=5.0)
        Api.opened.append(self.http)

    def height(self) -> int:
        return int(self.http.get("/v1/chain/status").json()["height"])

    def block_hash(self, height: int) -> str:
        return str(self.http.get(f"/v1/chain/blocks/{height}").json()["hash"])

    def submit(self, tx: bytes) -> str:
        result = self.http.post("/v1/chain/txs", json={"txs": [tx.hex()]}).json()["results"][0]
        assert result["accepted"], result
        return str(result["hash"])

    def tx(self, digest: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get(f"/v1/chain/txs/{digest}").json()
        return answer

    def balance(self, account: str, *, timeout: float = 30.0) -> int:
        """The certified balance; before the first certified state the node says
        ``not_ready`` (no proof yet), so ask again until it has one."""

        def certified() -> dict[str, Any] | None:
            answer: dict[str, Any] = self.http.get(f"/v1/chain/accounts/{account}").json()
            return answer if "proof_valid" in answer else None

        answer = wait_until(certified, timeout=timeout, what="a certified balance")
        assert isinstance(answer, dict)
        assert answer["proof_valid"], answer
        return int(answer["balance"])


@pytest.fixture
def close_clients() -> Iterator[None]:
    yield
    while Api.opened:
        Api.opened.pop().close()


@pytest.fixture
def validators(testnet: tuple[Path, dict[str, Any]]) -> Iterator[list[NodeProcess]]:
    out, summary = testnet
    nodes = [
        NodeProcess(out / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
        for v in summary["validators"]
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def _transfer(out: Path, summary: dict[str, Any], nonce: int, amount: int) -> bytes:
    key = load_wallet(out / "wallets" / "account-0.wallet", SECRET)
    to = bytes.fromhex(summary["accounts"][1]["account"])
    tx = Transaction.create(
        key,
        chain_id=summary["currency_chain"],
        nonce=nonce,
        fee=1,
        kind="transfer",
        body={"to": to, "amount": amount},
    )
    return tx.raw


def _agree(a: Api, b: Api, top: int) -> None:
    for height in range(1, top + 1):
        assert a.block_hash(height) == b.block_hash(height), f"fork at height {height}"


@pytest.mark.slow
def test_four_validators_tolerate_one_crash_halt_at_two_and_resume(
    testnet: tuple[Path, dict[str, Any]],
    validators: list[NodeProcess],
    close_clients: None,
) -> None:
    out, summary = testnet
    apis = [Api(n) for n in validators]
    recipient = summary["accounts"][1]["account"]
    start_balance = apis[0].balance(recipient)
    wait_until(lambda: min(a.height() for a in apis) >= 3, timeout=30)

    # All four: a transfer submitted to one validator is committed everywhere.
    digest = apis[0].submit(_transfer(out, summary, 0, 1000))
    wait_until(lambda: apis[3].tx(digest).get("status") == "committed", timeout=20)
    assert apis[3].tx(digest)["code"] == 0
    wait_until(lambda: apis[2].balance(recipient) == start_balance + 1000, timeout=10)

    # One SIGKILLed: the other three go on finalizing, with transactions.
    validators[3].kill()
    reached = apis[0].height()
    digest = apis[1].submit(_transfer(out, summary, 1, 2000))
    wait_until(lambda: apis[0].height() >= reached + 3, timeout=30)
    wait_until(lambda: apis[2].tx(digest).get("status") == "committed", timeout=20)

    # Two SIGKILLed: half the power is left, below the 2/3 quorum: no new blocks.
    validators[2].kill()
    # A block already past its precommits may still land: wait for the heights to
    # settle, then watch that they stay put.
    stalled = wait_stable(lambda: [apis[0].height(), apis[1].height()], quiet=1.5, timeout=20)
    holds_for(lambda: [apis[0].height(), apis[1].height()] == stalled, seconds=3.0)
    _agree(apis[0], apis[1], min(stalled))

    # One returns: progress resumes; it catches up (block sync) on the same chain.
    validators[3].start()
    apis[3] = Api(validators[3])
    top = max(stalled)
    wait_until(lambda: apis[0].height() >= top + 3, timeout=40)
    wait_until(lambda: apis[3].height() >= top + 3, timeout=20)
    _agree(apis[0], apis[3], top + 3)
    _agree(apis[0], apis[1], top + 3)
    assert apis[3].balance(recipient) == start_balance + 3000
    assert "block sync" in (validators[3].data_dir / "node.log").read_text()
