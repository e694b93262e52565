"""The issue's whole relay network in real processes (issue 15, "Done means", first bullet).

Four validators per chain (chat and currency), five relays, four users. Each
relay's operator lists it on the chat chain (``dchat-node relay register``)
and bonds on the currency chain (``dchat-node relay bond``); every listing has
its own operator, region and network tag, so any two relays are diverse. The
users run with ``relay_discovery``: each reads the directory through its light
clients and pins two home relays of its own (random) choosing; nobody writes a
relay list by hand. The test reads the choices from ``home-relays.json`` and
plans the kills from them: a *victim* user's first home relay dies at message
100 of a 500-message stream among all four users, its second at message 250.
From then on the victim's mail waits in its senders' outboxes; everyone
else's goes through their other home relay. When the victim's first relay is
restarted (same key, same address), the links to it come back, it carries the
waiting mail, and the victim gets everything. Every message arrives exactly
once, each conversation in order. The test prints how long setup, stream and
recovery took.

Cost: seventeen processes, most of whose start is the interpreter importing
the node, so they start at once (:func:`dchat_testing.start_all`) and the five
operators register at once. Blocks come every second (``init-testnet``'s
default): at 0.3 s each idle validator took about 9 % of a core (4 % at 1 s),
eight of them most of one of CI's two cores for the whole test.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer

from dchat_chain.lowlevel import NetPlan
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node.cli import node_app
from dchat_node.cli._process import free_ports
from dchat_node.cli._testnet import init_testnet
from dchat_testing import certified, currency_copies, start_all, toml_listen, wait_until
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow

RELAYS, USERS, VALIDATORS, MESSAGES = 5, 4, 4, 500
KILLS = (100, 250)  # the victim's first home relay, then its second
BLOCK_INTERVAL = 1.0
_COMMAND = typer.main.get_command(node_app)


@dataclass
class _Net:
    """Every process of the network and where its files are."""

    net: Path
    chat: list[Path]  # the chat validators' data directories
    currency: list[Path]
    validators: list[NodeProcess]
    relays: list[NodeProcess]
    users: list[NodeProcess]
    clients: list[RemoteClient] = field(default_factory=list)

    def kill(self) -> None:
        for client in self.clients:
            client.close()
        for node in self.validators + self.relays + self.users:
            node.kill()


def _user_dir(path: Path, net: Path, chat: Path, currency: Path) -> Path:
    path.mkdir(mode=0o700)
    (path / "dchat.toml").write_text(
        "[node]\n"
        "[node.relay_discovery]\n"
        "enabled = true\n"
        f'chat_api = "{chat}"\n'
        f'currency_api = "{currency}"\n'
        f'chat_genesis = "{net / "genesis-chat.cbor"}"\n'
        f'currency_genesis = "{net / "genesis-currency.cbor"}"\n'
        "min_bond = 50\n"
    )
    return path


def _network(tmp_path: Path) -> _Net:
    net = tmp_path / "net"
    plan = NetPlan(validators=VALIDATORS, accounts=RELAYS, chain="chat", pow_bits=4)
    summary = init_testnet(
        net, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=BLOCK_INTERVAL
    )
    chat = [net / v["dir"] for v in summary["validators"]]  # type: ignore[attr-defined]
    currency = currency_copies(net, summary)
    return _Net(
        net,
        chat,
        currency,
        validators=[
            NodeProcess(home, "validator", passphrase=PASSPHRASE, listen=toml_listen(home))
            for home in chat + currency
        ],
        relays=[  # fixed ports: a restarted relay must be where the directory says
            NodeProcess(
                tmp_path / f"relay{i}", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{p}"
            )
            for i, p in enumerate(free_ports(RELAYS))
        ],
        users=[
            NodeProcess(
                _user_dir(tmp_path / f"u{i}", net, chat[i % VALIDATORS], currency[i % VALIDATORS]),
                "user",
                passphrase=PASSPHRASE,
                poll_interval=0.2,
            )
            for i in range(USERS)
        ],
    )


def _cli(*args: str) -> None:
    """``dchat-node ARGS`` in this process (unlike CliRunner, safe in threads: no stdout swap)."""
    code = _COMMAND.main(list(args), prog_name="dchat-node", standalone_mode=False)
    assert code in (None, 0), args


def _operate(net: _Net, i: int) -> None:
    """Operator ``i``, on its own machine, lists relay ``i`` and bonds 50 for it."""
    home = net.net.parent / f"operator-{i}"
    home.mkdir()
    (home / "pass").write_text(PASSPHRASE)
    shutil.copy(net.net / "wallets" / f"account-{i}.wallet", home / "operator.wallet")
    common = ("--wallet", str(home / "operator.wallet"), "--passphrase-file", str(home / "pass"))
    _cli(
        "relay", "register", "--chat-node", str(net.chat[i % VALIDATORS]),
        "--relay-dir", str(net.relays[i].data_dir), "--region", f"region-{i}",
        "--tag", f"as:{64500 + i}", "--label", f"operator {i}",
        "--genesis", str(net.net / "genesis-chat.cbor"), *common,
    )  # fmt: skip
    _cli("relay", "bond", "--currency-node", str(net.currency[i % VALIDATORS]), *common, "50")


def _links(client: RemoteClient, relay: NodeProcess) -> list[dict[str, Any]]:
    return [link for link in client.status()["links"] if link["relay"] == relay.info["link"]]


def _connected(client: RemoteClient, relay: NodeProcess) -> bool:
    links = _links(client, relay)
    return bool(links) and all(link["state"] == "connected" for link in links)


def _inbound(client: RemoteClient, peer: str) -> list[str]:
    return [m.text for m in client.messages(peer, limit=1000) if m.direction == "in"]


class _Timer:
    """Prints each phase's wall time (and the total so far) in the test's output."""

    def __init__(self) -> None:
        self.began = self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"timing: {what} {now - self.last:.1f}s (total {now - self.began:.1f}s)")
        self.last = now


def _chains_and_relays(net: _Net, timer: _Timer) -> None:
    """Validators and relays up; every relay listed and bonded by its own operator."""
    start_all(net.validators + net.relays, timeout=240)
    for node in net.validators:
        wait_until(lambda node=node: certified(node), timeout=120, what="a certified block")
    timer.lap("validators and relays up")
    with ThreadPoolExecutor(RELAYS) as pool:  # five operators, each at once on its own machine
        list(pool.map(lambda i: _operate(net, i), range(RELAYS)))
    timer.lap("relays listed and bonded")


def _users(net: _Net, timer: _Timer) -> list[list[NodeProcess]]:
    """Users up on the home relays each chose; identities, contacts, links. Their relays."""
    start_all(net.users, timeout=240)  # each reads the directory before it starts
    clients = net.clients = [user.client(timeout=30) for user in net.users]
    by_link = {relay.info["link"]: relay for relay in net.relays}
    homes = []
    for user, client in zip(net.users, clients, strict=True):
        pinned = json.loads((user.data_dir / "home-relays.json").read_text())["relays"]
        assert len(pinned) == 2
        assert client.status()["home_relays"] == [r["address"] for r in pinned]
        homes.append([by_link[r["endpoint"]] for r in pinned])
    for i, client in enumerate(clients):
        client.create_identity(f"u{i}")
    cards = [client.card() for client in clients]  # each lists both home relays
    for (i, client), j in itertools.product(enumerate(clients), range(USERS)):
        if i != j:
            client.add_contact(f"u{j}", cards[j])
    for client, home in zip(clients, homes, strict=True):
        for relay in home:
            wait_until(lambda c=client, r=relay: _connected(c, r), timeout=60, what="linked")
    print("home relays:", [[net.relays.index(r) for r in home] for home in homes])
    timer.lap("users up on discovered relays, contacts, links")
    return homes


def _stream(clients: list[RemoteClient], doomed: list[NodeProcess]) -> dict[Any, list[str]]:
    """500 messages among all four users, ``doomed`` killed one by one at :data:`KILLS`."""
    sent: dict[tuple[int, int], list[str]] = {}
    for number in range(MESSAGES):
        if number in KILLS:
            doomed[KILLS.index(number)].kill()
        sender = number % USERS
        recipient = (sender + 1 + (number // USERS) % (USERS - 1)) % USERS
        text = f"u{sender}->u{recipient} {number:03d}"
        clients[sender].send(f"u{recipient}", text)
        sent.setdefault((sender, recipient), []).append(text)
    return sent


def test_five_discovered_relays_two_killed_during_500_messages(tmp_path: Path) -> None:
    timer = _Timer()
    net = _network(tmp_path)
    try:
        _chains_and_relays(net, timer)
        homes = _users(net, timer)
        clients = net.clients
        victim = 0  # a recipient: its first home relay dies at message 100, its second at 250
        doomed = homes[victim]
        sent = _stream(clients, doomed)
        timer.lap(f"stream of {MESSAGES} messages")
        expected = [sum(len(t) for (_, r), t in sent.items() if r == i) for i in range(USERS)]

        def whole(recipient: int) -> bool:
            if clients[recipient].status()["received"] < expected[recipient]:
                return False
            return all(
                _inbound(clients[recipient], f"u{s}") == texts  # all, once, in order
                for (s, r), texts in sent.items()
                if r == recipient
            )

        cut_off = [i for i, home in enumerate(homes) if set(home) <= set(doomed)]
        for i in sorted(set(range(USERS)) - set(cut_off)):
            wait_until(lambda i=i: whole(i), timeout=120, what=f"u{i}'s mail")
        timer.lap("mail of the users with a live home relay")
        assert not whole(victim)  # the rest of its mail waits for one of its relays
        back = doomed[0]
        before = clients[victim].status()
        # Its links to that relay: its mailbox's and its contacts' rotating tags' (section 38).
        carried = sum(
            link["received"] for link in before["links"] if link["relay"] == back.info["link"]
        )
        back.start()  # the same key and address: the directory still lists it
        for i, home in enumerate(homes):
            if back in home:
                wait_until(lambda i=i: _connected(clients[i], back), timeout=90, what="relinked")
        timer.lap("relay restarted, its users relinked")
        for i in cut_off:
            wait_until(lambda i=i: whole(i), timeout=120, what=f"u{i}'s mail after the restart")
        timer.lap("the cut-off users' mail, through the restarted relay")
        after = clients[victim].status()
        assert sum(link["received"] for link in _links(clients[victim], back)) > carried  # again
        assert after["rejected"] == before["rejected"]
        for recipient, client in enumerate(clients):
            assert client.status()["received"] == expected[recipient]  # exactly once
    finally:
        net.kill()
