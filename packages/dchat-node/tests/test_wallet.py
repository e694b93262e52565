"""``dchat wallet`` against four real validator processes (one testnet for the module).

Rapid transfers queue behind each other with the node's pending nonce; a replayed
nonce is refused with its typed error. Alice pays Bob inside a conversation
(``dchat pay``, two user nodes and a relay beside the validators); Bob's node
shows it paid once its light client proved the transfer, and refuses a forged
and a replayed payment message.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

if TYPE_CHECKING:
    from dchat_messaging import SealedEnvelope

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    ChannelUpdate,
    NetPlan,
    decode_channel_text,
    encode_channel_text,
)
from dchat_core import MessageId
from dchat_crypto import KdfParams
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, Payment
from dchat_node import NodeProcess, free_port
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet
from dchat_sdk import ApiError
from dchat_testing import running_validators, start_all, wait_until

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
    plan = NetPlan(validators=4, accounts=5)  # tests share the net: each its own accounts
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


# -- stealth payments (docs/protocol.md §43) ------------------------------------------


def test_stealth_payments_are_found_by_scanning_and_swept(net: Net) -> None:
    payer, payee = str(net.wallet(4)), str(net.wallet(2))
    address = ["wallet", "stealth-address", "--wallet", payee, "--passphrase-file"]
    meta = runner.invoke(app, [*address, str(net.passfile)]).stdout.strip()
    assert meta.startswith("dchat-stealth:")
    paid = []
    for amount in ("35", "70"):
        out = net.cli("wallet", "pay", "--wallet", payer, "--stealth", meta, amount)
        paid.append(out.split("one-time account ")[1].split()[0])
    assert paid[0] != paid[1]
    assert all(p not in meta for p in paid)
    # On chain the two transfers share no field: other accounts, other memos.
    found = []
    assert [net.balance(p) for p in paid] == [35, 70]
    for height in range(1, net.height() + 1):
        for raw in net.get(f"/v1/chain/blocks/{height}/txs")["txs"]:
            body = Transaction.decode(bytes.fromhex(raw)).body
            if "stealth" in body:
                found.append(body)
    assert len(found) == 2
    assert {b["to"].hex() for b in found} == set(paid)
    assert found[0]["stealth"] != found[1]["stealth"]
    # The payee's scan finds both, balances proven (that another wallet's scan of
    # the same blocks finds nothing is test_stealth.py's: a scan from genesis costs).
    shown = json.loads(net.cli("wallet", "scan", "--wallet", payee))
    assert sorted(r["account"] for r in shown["accounts"]) == sorted(paid)
    assert shown["stealth_balance"] == 105
    assert json.loads(net.cli("wallet", "balance", "--wallet", payee))["stealth_balance"] == 105
    # Sweeping signs with each one-time key (an ordinary Ed25519 signature to the chain).
    sink = "ab" * 32
    assert "swept 103" in net.cli("wallet", "sweep", "--wallet", payee, sink)
    _until(lambda: net.balance(sink, 1) == 103)
    assert json.loads(net.cli("wallet", "scan", "--wallet", payee))["stealth_balance"] == 0
    assert "TO:" in net.cli("wallet", "pay", "--wallet", payer, "--stealth", "x", "1", ok=False)


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


def _dchat(node: NodeProcess, *args: str) -> Any:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _payments_of(node: NodeProcess, peer: str) -> list[dict[str, Any]]:
    shown = _dchat(node, "show", peer, "--keep-unread")["messages"]
    return [m for m in shown if m["payment"] is not None]


def test_alice_pays_bob_in_a_conversation(
    net: Net,
    tmp_path: Path,
    relay: NodeProcess,
    crafted_message: Callable[[Identity, ContactCard, Content], SealedEnvelope],
    deposit: Callable[[SealedEnvelope], None],
) -> None:
    users = []
    for name in ("alice", "bob"):  # payments read the currency chain of validator 0
        (tmp_path / name).mkdir(mode=0o700)
        chain = net.out / "validator-0"
        # Bob's node scans for stealth payments in the background (protocol §43).
        scan = "stealth_scan_interval = 1\n" if name == "bob" else ""
        (tmp_path / name / "dchat.toml").write_text(f'[node]\ncurrency_node = "{chain}"\n{scan}')
        link = relay.info["link"]
        users.append(NodeProcess(tmp_path / name, "user", passphrase=PASSPHRASE, relay=link))
    try:
        start_all(users)  # at once: each start is mostly the interpreter importing the node
        _pay_and_refuse(net, relay, *users, crafted_message, deposit)
    finally:
        for user in users:
            user.kill()


def _pay_and_refuse(
    net: Net,
    relay: NodeProcess,
    alice: NodeProcess,
    bob: NodeProcess,
    crafted_message: Callable[[Identity, ContactCard, Content], SealedEnvelope],
    deposit: Callable[[SealedEnvelope], None],
) -> None:
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        accounts = [ContactCard.from_text(c.card()).identity_key.to_bytes().hex() for c in (a, b)]
    net.cli("wallet", "transfer", "--wallet", str(net.wallet(4)), accounts[0], "1000")
    before = net.balance(accounts[1])
    paid = _dchat(alice, "pay", "bob", "250", "--note", "for lunch")
    paid["id"] = paid["message_id"]
    assert net.balance(accounts[1]) == before + 250
    assert [(m["text"], m["payment"]["state"]) for m in _payments_of(alice, "bob")] == [
        ("for lunch", "sent")
    ]
    _until(lambda: [m["payment"]["state"] for m in _payments_of(bob, "alice")] == ["verified"])
    (shown,) = _payments_of(bob, "alice")
    assert shown["message_id"] == paid["message_id"]
    assert (shown["payment"]["amount"], shown["payment"]["tx"]) == (250, paid["tx"])
    # Mallory, another contact of Bob's, forges a payment and replays Alice's.
    mallory = Identity.generate()
    mallory_card = ContactCard.issue(mallory, name="mallory", relay=relay.info["link"])
    with bob.client() as b:
        b.add_contact("mallory", mallory_card.to_text())
        bob_card = ContactCard.from_text(b.card())
    claim = Payment(
        250, net.summary["currency_chain"], bytes.fromhex(accounts[0]),
        bytes.fromhex(accounts[1]), bytes.fromhex(paid["tx"]), paid["height"], "yours",
    )  # fmt: skip
    now_ms = int(time.time() * 1000)
    for content in (
        Content.payment_message(claim, now_ms=now_ms, message_id=MessageId.random()),  # replay
        Content.payment_message(  # forged: no such transfer
            replace(claim, tx_hash=bytes(32), amount=9999), now_ms=now_ms,
            message_id=MessageId.random(),
        ),
        # Alice's own message again, word for word: stored once already, so dropped.
        Content.payment_message(claim, now_ms=now_ms, message_id=MessageId.parse(paid["id"])),
    ):  # fmt: skip
        deposit(crafted_message(mallory, bob_card, content))

    def refused() -> list[tuple[int, str | None]]:
        rows = _payments_of(bob, "mallory")
        return [(m["payment"]["amount"], m["payment"]["code"]) for m in rows]

    _until(lambda: sorted(refused()) == [(250, "not_found"), (9999, "not_found")])
    assert [m["payment"]["state"] for m in _payments_of(bob, "alice")] == ["verified"]
    assert net.balance(accounts[1]) == before + 250
    _stealth_through_the_api(net, alice, bob, accounts[1])


def _stealth_through_the_api(net: Net, alice: NodeProcess, bob: NodeProcess, bob_at: str) -> None:
    """The same stealth payment through the user nodes' API and the SDK (protocol §43):
    Alice pays Bob by contact name (the meta-address on his card); Bob's background scan
    finds it and tells it once as a ``stealth_received`` event, however often he rescans."""
    before = net.balance(bob_at)
    with alice.client() as a, bob.client() as b:
        meta = b.stealth_address()
        assert a.stealth_address("bob") == meta  # read from Bob's verified card
        _, cursor = b.event_page(None)
        paid = a.stealth_pay("bob", 40)
        assert paid["account"] not in (bob_at, meta)
        # Nobody asks for a scan (its first walks from genesis: up to a minute under load).
        wait_until(lambda: b.stealth_status()["received"] == 1, timeout=150.0)
        assert b.status()["stealth"]["scanned_to"] >= paid["height"]
        idle = {"scanned_to": 0, "received": 0, "scan_interval": 0, "held_burners": []}
        assert a.stealth_status() == idle
        found = b.stealth_scan()
        assert [(r["account"], r["balance"]) for r in found["accounts"]] == [(paid["account"], 40)]
        assert found["stealth_balance"] == 40
        swept = b.stealth_sweep(bob_at)  # signed by the one-time key
        assert (swept["swept"], swept["to"]) == (39, bob_at)
        assert b.stealth_scan()["stealth_balance"] == 0
        events = [e.stealth for e in b.event_page(cursor, 1000)[0] if e.stealth is not None]
        assert [(e.account, e.amount, e.height) for e in events] == [
            (paid["account"], 40, paid["height"])
        ]
        with pytest.raises(ApiError, match="bad_key"):
            a.stealth_pay("dchat-stealth:" + "00" * 64, 1)
        with pytest.raises(ApiError, match="no_stealth_address"):
            b.stealth_pay("mallory", 1)  # her card publishes none
        # The CLI wallet pays Bob by contact name too, looked up on Alice's node.
        node_dir, wallet = str(net.out / "validator-0"), str(net.wallet(4))
        paid_by_cli = runner.invoke(
            app,
            ["--data-dir", str(alice.data_dir), "wallet", "pay", "--node", node_dir,
             "--passphrase-file", str(net.passfile), "--wallet", wallet, "--stealth", "bob", "7"],
            env=net.env,
        )  # fmt: skip
        assert paid_by_cli.exit_code == 0, paid_by_cli.output
        wait_until(lambda: b.stealth_status()["received"] == 2, timeout=60.0)
        events = [e.stealth for e in b.event_page(cursor, 1000)[0] if e.stealth is not None]
        assert [e.amount for e in events] == [40, 7]
    assert net.balance(bob_at) == before + 39
    bob.kill()  # no clean shutdown: what was told is the database's word
    bob.start()
    with bob.client() as b:
        b.stealth_scan()  # a rescan after the restart (the background one runs as well)
        assert b.stealth_status()["received"] == 2
        events = [e.stealth for e in b.event_page(cursor, 1000)[0] if e.stealth is not None]
        assert [e.amount for e in events] == [40, 7]
    _burner_stealth(alice, bob, bob_at)
    _expiring_burner(alice, bob, bob_at)


def _cli(node: NodeProcess, *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def _burner_stealth(alice: NodeProcess, bob: NodeProcess, bob_at: str) -> None:
    """A burner of Bob's is paid at the meta-address on its own card; Bob's one scan
    finds it beside his own payments, tells whose it is, refuses to destroy the burner
    until its payment is swept (``--identity``), and forgets its keys after."""
    shadow = json.loads(_cli(bob, "burner", "new", "--name", "shadow"))
    burner_card = ContactCard.from_text(shadow["card"])
    assert burner_card.stealth is not None
    meta = "dchat-stealth:" + burner_card.stealth.hex()
    with alice.client() as a, bob.client() as b:
        assert meta != b.stealth_address()  # its own keys, nothing of Bob's
        _, cursor = b.event_page(None)
        paid = a.stealth_pay(meta, 30)
        found = b.stealth_scan()
        whose = {r["account"]: (r["identity"], r["balance"]) for r in found["accounts"]}
        assert whose[paid["account"]] == (shadow["burner_id"], 30)
        bob_id = str(ContactCard.from_text(b.card()).identity_id)
        assert {i for i, _ in whose.values()} == {shadow["burner_id"], bob_id}
        wait_until(lambda: any(e.stealth for e in b.event_page(cursor, 1000)[0]), timeout=30.0)
        (told,) = [e.stealth for e in b.event_page(cursor, 1000)[0] if e.stealth is not None]
        assert (told.account, told.identity) == (paid["account"], shadow["burner_id"])
        assert "unswept_funds" in _cli(bob, "burner", "discard", shadow["burner_id"], ok=False)
        assert b.stealth_sweep(bob_at)["swept"] == 6  # Bob's own 7: the burner's stays apart
        after = {r["account"]: r["balance"] for r in b.stealth_scan()["accounts"]}
        assert after[paid["account"]] == 30
        with pytest.raises(ApiError, match="not_found"):
            b.stealth_sweep(bob_at, identity="no-such-burner")
    assert "--wallet" in _cli(bob, "wallet", "sweep", bob_at, ok=False)  # whose: say it
    out = _cli(bob, "wallet", "sweep", bob_at, "--identity", shadow["burner_id"])
    assert out.strip() == f"swept 29 to {bob_at}"
    _cli(bob, "burner", "discard", shadow["burner_id"])
    with bob.client() as b:
        assert paid["account"] not in {r["account"] for r in b.stealth_scan()["accounts"]}


def _expiring_burner(alice: NodeProcess, bob: NodeProcess, bob_at: str) -> None:
    """A burner that expires holding a stealth payment keeps its seed (event, status)
    until the payment is swept; the next scan finds its account empty and drops it."""
    brief = json.loads(_cli(bob, "burner", "new", "--name", "brief", "--ttl", "6s"))
    stealth = ContactCard.from_text(brief["card"]).stealth
    assert stealth is not None
    with alice.client() as a, bob.client() as b:
        _, cursor = b.event_page(None)
        a.stealth_pay("dchat-stealth:" + stealth.hex(), 20)

        def told() -> list[Any]:
            return [e.burner for e in b.event_page(cursor, 1000)[0] if e.burner is not None]

        wait_until(lambda: bool(told()), timeout=30.0)  # expired (Bob scans every second)
        assert told() == [{"burner_id": brief["burner_id"], "reason": "expired"}]
        b.stealth_scan()  # its account holds 20: the seed stays
        (held,) = b.stealth_status()["held_burners"]
        assert held["burner_id"] == brief["burner_id"]
        assert "burner_expired" in _cli(
            bob, "burner", "send", brief["burner_id"], "x", "hi", ok=False
        )
        assert b.stealth_sweep(bob_at, identity=brief["burner_id"])["swept"] == 19
        b.stealth_scan()
        assert b.stealth_status()["held_burners"] == []
        assert told()[-1] == {"burner_id": brief["burner_id"], "reason": "empty"}


def _relay_status(relay: NodeProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    answer = httpx.get(relay.info["url"] + "/v1/relay/status", headers=headers, timeout=10)
    status: dict[str, Any] = answer.json()
    return status


def test_a_stranger_buys_tokens_and_its_mail_passes_a_busy_relay_without_work(
    net: Net, tmp_path: Path
) -> None:
    """Paid tokens (protocol §40): bought on the currency chain, spent in place of work.

    The relay asks every stranger's deposit for 30 bits of work, more than a
    sender pays (24): without a token nothing of Carol's could be stored.
    """
    chain = net.out / "validator-0"
    relay_dir = tmp_path / "relay"
    relay_dir.mkdir(mode=0o700)
    (relay_dir / "dchat.toml").write_text(
        f'[node]\ncurrency_node = "{chain}"\n'
        "[node.relay_limits]\npow_free_mailbox = 0.0\npow_min_bits = 30\npow_max_bits = 30\n"
        "[node.relay_tokens]\nenabled = true\nprice = 2\nmax_per_payment = 16\n"
    )
    relay = NodeProcess(
        relay_dir, "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{free_port()}"
    )
    relay.start()
    users = []
    try:
        for name in ("carol", "dan"):
            (tmp_path / name).mkdir(mode=0o700)
            (tmp_path / name / "dchat.toml").write_text(f'[node]\ncurrency_node = "{chain}"\n')
            link = relay.info["link"]
            users.append(NodeProcess(tmp_path / name, "user", passphrase=PASSPHRASE, relay=link))
        start_all(users)
        _buy_and_send(net, relay, *users)
    finally:
        for node in (*users, relay):
            node.kill()


def _buy_and_send(net: Net, relay: NodeProcess, carol: NodeProcess, dan: NodeProcess) -> None:
    with carol.client() as c, dan.client() as d:
        c.create_identity("carol")
        d.create_identity("dan")
        c.add_contact("dan", d.card())  # dan never writes back: carol holds no put token
        d.add_contact("carol", c.card())
        account = ContactCard.from_text(c.card()).identity_key.to_bytes().hex()
    net.cli("wallet", "transfer", "--wallet", str(net.wallet(4)), account, "100")
    payee = _relay_status(relay)["tokens"]["payee"]
    before = net.balance(payee)
    bought = _dchat(carol, "tokens", "buy", relay.info["link"], "8")
    assert (bought["bought"], bought["paid"]) == (8, 16)
    assert net.balance(payee) == before + 16
    assert net.balance(account) == 100 - 16 - 1
    held = _dchat(carol, "tokens")  # her node may be spending some already
    assert 0 < held["total"] <= bought["held"] <= 8
    assert sum(held["relays"][0]["epochs"].values()) == held["total"]
    with carol.client() as c, dan.client() as d:
        texts = [f"paid message {i}" for i in range(3)]
        for text in texts:
            c.send("dan", text)
        inbound = lambda: [m.text for m in d.messages(limit=100) if m.direction == "in"]  # noqa: E731
        _until(lambda: sorted(inbound()) == texts)
        held = c.status()["tokens"]["held"]
    status = _relay_status(relay)
    print(f"\nrelay tokens: {status['tokens']}, refusals: {status['load']['refusals']}")
    tokens = status["tokens"]
    assert (tokens["sold"], tokens["refused"]) == (8, 0)
    # Carol's three messages (and the controls her node queued for dan when she
    # added him) each spent one token; none was wasted: the wallet holds the rest.
    assert tokens["redeemed"] >= 3
    assert held == 8 - tokens["redeemed"]
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    text = httpx.get(relay.info["url"] + "/metrics", headers=headers, timeout=10).text
    kinds = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dchat_relay_put_authorizations_total"
    }
    assert kinds["paid"] == tokens["redeemed"]
    assert kinds["work"] == 0  # no deposit of carol's was stored for work
