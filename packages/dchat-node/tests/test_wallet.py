"""``dchat wallet`` against four real validator processes (one testnet for the module).

Rapid transfers queue behind each other with the node's pending nonce; a replayed
nonce is refused with its typed error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    ChannelUpdate,
    NetPlan,
    decode_channel_text,
    encode_channel_text,
)
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet
from dchat_testing import running_validators, wait_until

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
        # Every command reads the chain through the light client, whose verified
        # headers are kept here (first use trusts the node directory's genesis).
        self.env = {"DCHAT_LIGHT_DIR": str(out / "light")}

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
        result = runner.invoke(app, full, env=self.env)
        if ok:  # stdout only: the first command on a fresh light state notes its trust on stderr
            assert result.exit_code == 0, result.output
            return result.stdout
        return result.output


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    out = tmp_path_factory.mktemp("wallet") / "net"
    plan = NetPlan(validators=4, accounts=4)  # tests share the net: each its own accounts
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.3
    )
    with running_validators(out, summary, PASSPHRASE) as nodes:
        network = Net(out, summary, nodes)
        # Whichever test runs first on this worker finds a certified state on every node
        # (balances and the wallet's light client read only certified state).
        for i in range(len(nodes)):
            wait_until(
                lambda i=i: (network.get("/v1/chain/status", i).get("certified_height") or 0) >= 1,
                timeout=30.0,
                what=f"a certified state on validator {i}",
            )
        yield network
        for client in network.http:
            client.close()


_until = functools.partial(wait_until, timeout=30.0)


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
    key = load_wallet(net.wallet(3), PASSPHRASE.encode())  # no other test spends from it
    chain = net.summary["currency_chain"]

    def transfer(nonce: int, amount: int) -> bytes:
        body = {"to": bytes.fromhex(net.account(1)), "amount": amount}
        tx = Transaction.create(key, chain_id=chain, nonce=nonce, fee=1, kind="transfer", body=body)
        return tx.raw

    first = transfer(0, 5)
    result = net.http[1].post("/v1/chain/txs", json={"txs": [first.hex()]}).json()["results"][0]
    assert result["accepted"]
    _until(lambda: net.get(f"/v1/chain/txs/{result['hash']}", 1)["status"] == "committed")
    committed = int(net.get(f"/v1/chain/txs/{result['hash']}", 1)["height"])
    for raw in (first, transfer(0, 6)):  # the same bytes again, and new bytes on a used nonce
        again = net.http[1].post("/v1/chain/txs", json={"txs": [raw.hex()]}).json()["results"][0]
        assert not again["accepted"]
        assert again["error"] == "ReplayedNonceError"
    # The light client reads the certified state: the one a stored header proves.
    _until(lambda: (net.get("/v1/chain/status").get("certified_height") or 0) >= committed)
    shown = json.loads(net.cli("wallet", "balance", net.account(3)))
    assert shown["nonce"] == 1
    assert shown["height"] >= committed


# -- payment channels ------------------------------------------------------------------


def _chan(net: Net, who: int, command: str, *args: str, ok: bool = True) -> str:
    base = ["wallet", "channel", command, "--node", str(net.out / f"validator-{who % 4}")]
    base += ["--wallet", str(net.wallet(who)), "--passphrase-file", str(net.passfile)]
    result = runner.invoke(app, [*base, *args], env=net.env)
    if not ok:
        assert result.exit_code == 1, result.output
        return result.output
    assert result.exit_code == 0, result.output
    return result.stdout  # without the light client's first-use note (stderr)


def _text(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("dchat-chan:"))


def _open(net: Net, a: int, b: int, deposit: int, peer_deposit: int) -> str:
    offer = _chan(
        net,
        a,
        "open",
        "--peer",
        net.account(b),
        "--deposit",
        str(deposit),
        "--peer-deposit",
        str(peer_deposit),
    )
    chan = offer.split("channel ")[1].split(":")[0]
    consent = _text(_chan(net, b, "accept", _text(offer)))
    assert f"channel {chan} is open" in _chan(net, a, "open", "--consent", consent)
    return chan


def _pay(net: Net, payer: int, payee: int, chan: str, amount: int) -> str:
    update = _text(_chan(net, payer, "pay", chan, str(amount)))
    countersigned = _text(_chan(net, payee, "accept", update))
    _chan(net, payer, "accept", countersigned)
    return countersigned


def test_channel_payments_then_cooperative_close(net: Net) -> None:
    a, b = 0, 1
    before = [net.balance(net.account(i)) for i in (a, b)]
    chan = _open(net, a, b, 1000, 500)
    _pay(net, a, b, chan, 100)
    first = _text(_chan(net, a, "pay", chan, "50"))
    countersigned = _text(_chan(net, b, "accept", first))
    # The same update again is a replay; a tampered one does not verify.
    assert "replay" in _chan(net, b, "accept", first, ok=False)
    sent = decode_channel_text(_text(_chan(net, a, "pay", chan, "5")))
    assert isinstance(sent, ChannelUpdate)
    st = sent.state  # a pays 5 at seq 3; b changes the split in its own favour
    forged = replace(
        sent, state=replace(st, balance_a=st.balance_a - 9, balance_b=st.balance_b + 9)
    )
    assert "does not verify" in _chan(net, b, "accept", encode_channel_text(forged), ok=False)
    _chan(net, b, "accept", encode_channel_text(sent))
    assert "not a channel message" in _chan(net, b, "accept", "hello", ok=False)
    assert "longer than" in _chan(net, b, "accept", "dchat-chan:" + "A" * 5000, ok=False)
    _chan(net, a, "accept", countersigned)
    _pay(net, b, a, chan, 30)
    shown = json.loads(_chan(net, b, "show", countersigned))
    assert (shown["seq"], shown["balance_a"], shown["balance_b"]) == (2, 850, 650)
    rows = {r["channel"]: r for r in json.loads(_chan(net, a, "list"))}
    assert rows[chan]["status"] == "open"
    final = _text(_chan(net, a, "close", chan))
    final_signed = _text(_chan(net, b, "accept", final))
    assert "(final)" in _chan(net, a, "accept", final_signed)
    assert "is closed" in _chan(net, b, "close", chan)
    state = json.loads(_chan(net, a, "show", final_signed))
    assert state["final"]
    ba, bb = state["balance_a"], state["balance_b"]
    assert (ba, bb) == (1000 - 155 + 30, 500 + 155 - 30)
    _until(lambda: net.balance(net.account(a), 2) == before[0] - 1000 - 1 + ba)
    assert net.balance(net.account(b), 2) == before[1] - 500 - 1 + bb
    assert json.loads(_chan(net, b, "list"))[0]["status"] == "closed"


def test_stale_unilateral_close_is_penalised_by_dispute(net: Net) -> None:
    a, b = 2, 1  # account 2 cheats; account 1 watches
    chan = _open(net, a, b, 1000, 0)
    before = [net.balance(net.account(i)) for i in (a, b)]
    stale = _pay(net, a, b, chan, 100)  # seq 1: a 900, b 100 (both signed)
    _pay(net, a, b, chan, 200)  # seq 2: a 700, b 300
    # Nothing newer to dispute yet, and b cannot dispute an open channel.
    assert "not closing" in _chan(net, b, "dispute", chan, ok=False)
    closing = _chan(net, a, "close", chan, "--unilateral", "--state", stale)
    assert "may dispute until height" in closing
    assert "disputed" in _chan(net, b, "dispute", chan)
    # The cheater loses the whole channel: b gets all 1000.
    _until(lambda: net.balance(net.account(b), 3) == before[1] + 1000 - 1)
    assert net.balance(net.account(a), 3) == before[0] - 1  # the close fee
    assert json.loads(_chan(net, a, "list"))[0]["status"] == "closed"
    assert "not open" in _chan(net, a, "pay", chan, "1", ok=False)
