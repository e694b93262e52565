"""Real processes: relays that log all they see cannot tell who wrote to whom in onion mode.

Three relay processes each write an ``observe_log`` (every connection with the
peer's address and link key id, every request with its kind, the mailboxes or
tags it names, its size, a digest of its bytes and of any onion packet, every
onion forward and deposit, with unrounded times). Three users, each dialling
from its own loopback address (``link_source``: alice 127.0.0.2, bob
127.0.0.3, carol 127.0.0.4; the relays dial each other from 127.0.0.1), each
homed on a different relay, with rotating mailbox tags (the default), write to
each other twice: first with onion mode off (phase A), then with it on for
every identity (phase B). :func:`who_wrote_to_whom` holds all three logs and
the address book of the users; what it tries is written there. It names
alice -> bob and carol -> alice from phase A's events, and no writer at all
from phase B's. :func:`who_fetched_whose_keys` does the same for
prekey bundle fetches (a fetch by address is a contact link too): it names
carol fetching alice's bundle and alice bob's before phase B (adding a contact
sets its session up), and nobody in phase B, where bob and carol add each
other and set their sessions up through onion fetches (protocol §46). Then
(phase C) bob answers alice, who wrote to him in onion mode and so gave him
single-use reply blocks (protocol §45): the answer reaches alice, and no log
shows bob's address at alice's mailbox relay or bob's connections naming any
mailbox or tag alice reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_node.cli._process import free_ports
from dchat_sdk import ApiError
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow

USERS = {"alice": "127.0.0.2", "bob": "127.0.0.3", "carol": "127.0.0.4"}
DEPOSITS = {"RelayPut", "RelayPutMany"}
OWNER_READS = {"RelayPull", "RelayFetch"}
OWNER_WRITES = {"RelayPrekeyPut", "RelayPrekeyCount"}

Event = dict[str, Any]


def who_wrote_to_whom(logs: list[list[Event]], users: dict[str, str]) -> set[tuple[str, str]]:
    """The (writer, recipient) pairs an adversary holding every relay's log can name.

    What it tries, for each deposit any relay saw (a ``put``/``put_many``
    request, or the deposit at the last hop of an onion):

    1. The writer: the user whose address the depositing connection came
       from. If it came from another relay (an onion's last hop), follow the
       onion back hop by hop as far as the logs allow: the packet a relay
       received (its digest) is matched to the packet another relay logged
       as forwarded, and so on, until a connection from a user's address.
       Bytes are matched across hops and links only; a relay's log does not
       pair what it received with what it sent on (an honest hop), so the
       chain can cross a link, not a peel.
    2. Its content: an envelope deposited somewhere is matched (by digest) to
       any packet or request a user's connection carried.
    3. The recipient: the user whose connection read (``pull``/``fetch``) the
       mailbox or rotating tag the deposit named.

    A pair is named when both ends are users. Not tried: correlating arrival
    and departure times across relays (it would succeed at this test's low
    traffic: no mixing delays or cover traffic yet), nor prekey bundle
    fetches, which name the mailbox a session is being set up with (phase A
    sets the sessions up).
    """
    by_address = {address: name for name, address in users.items()}
    events = [e for log in logs for e in log]

    def user_at(peer: str) -> str | None:
        return by_address.get(peer.rsplit(":", 1)[0])

    readers: dict[str, set[str]] = {}
    for e in events:
        if e["ev"] == "request" and e["op"] in OWNER_READS and (who := user_at(e["peer"])):
            for box in e["mb"]:
                readers.setdefault(box, set()).add(who)
    received = {e["pkt"]: e for e in events if e["ev"] == "request" and "pkt" in e}
    forwarded = {e["digest"]: e for e in events if e["ev"] == "forward"}
    user_bytes = {e["digest"]: user_at(e["peer"]) for e in events if e["ev"] == "request"}

    def writer(deposit: Event) -> str | None:
        if (who := user_at(deposit["peer"])) is not None:
            return who
        if (who := user_bytes.get(deposit.get("digest", ""))) is not None:
            return who  # the same envelope bytes were seen coming from a user
        for e in received.values():  # onions the last hop was handed on that link
            if e["peer"] == deposit["peer"] and e["pkt"] in forwarded:
                hop = forwarded[e["pkt"]]  # the relay before it sent these very bytes;
                if (who := user_at(hop.get("peer", ""))) is not None:  # its log has no
                    return who  # pairing with what it received, so the chain stops here
        return None

    pairs: set[tuple[str, str]] = set()
    for e in events:
        deposit = (e["ev"] == "request" and e["op"] in DEPOSITS) or e["ev"] == "deposit"
        if not deposit or (who := writer(e)) is None:
            continue
        for box in e["mb"]:
            pairs |= {(who, reader) for reader in readers.get(box, set()) if reader != who}
    return pairs


def who_fetched_whose_keys(
    logs: list[list[Event]], users: dict[str, str], owners_from: list[list[Event]]
) -> set[tuple[str, str]]:
    """The (asker, owner) pairs of prekey bundle fetches an adversary holding every log can name.

    What it tries, for each fetch any relay saw (a ``prekeys_get`` request, or
    the ``fetch`` at the last hop of a fetch onion): the asker is the user
    whose address the fetching connection came from or, for an onion fetch,
    the user whose connection handed the previous relay the very packet it
    forwarded (as :func:`who_wrote_to_whom` follows deposits); the owner is
    the user whose connection publishes prekeys to, or reads, the mailbox the
    fetch names (from ``owners_from``: all the logs, since links outlive phases).
    Not tried: timing (see :func:`who_wrote_to_whom`).
    """
    by_address = {address: name for name, address in users.items()}

    def user_at(peer: str) -> str | None:
        return by_address.get(peer.rsplit(":", 1)[0])

    owners: dict[str, str] = {}
    for e in (e for log in owners_from for e in log):
        own = e["ev"] == "request" and e["op"] in OWNER_READS | OWNER_WRITES
        if own and (who := user_at(e["peer"])):
            owners |= dict.fromkeys(e["mb"], who)
    events = [e for log in logs for e in log]
    received = [e for e in events if e["ev"] == "request" and "pkt" in e]
    forwarded = {e["digest"]: e for e in events if e["ev"] == "forward"}
    pairs: set[tuple[str, str]] = set()
    for e in events:
        direct = e["ev"] == "request" and e["op"] == "RelayPrekeyGet"
        if not direct and e["ev"] != "fetch":
            continue
        asker = user_at(e["peer"])
        for onion in (r for r in received if asker is None and r["peer"] == e["peer"]):
            if onion["pkt"] in forwarded:  # the hop before logs no sender with it
                asker = asker or user_at(forwarded[onion["pkt"]].get("peer", ""))
        pairs |= {(asker, owners[box]) for box in e["mb"] if asker and box in owners}
    return {(asker, owner) for asker, owner in pairs if asker != owner}


def _dchat(node: NodeProcess, *args: str) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output


def _relay(path: Path, port: int) -> NodeProcess:
    path.mkdir(mode=0o700)
    log = path / "observe.jsonl"
    (path / "dchat.toml").write_text(f'[node.relay_limits]\nobserve_log = "{log}"\n')
    return NodeProcess(path, "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{port}")


def _user(path: Path, name: str, home: NodeProcess, relays: list[NodeProcess]) -> NodeProcess:
    path.mkdir(mode=0o700)
    hops = [f'"{r.info["node_id"]}@{r.info["link"]}"' for r in relays]
    toml = f'[node]\nlink_source = "{USERS[name]}"\nonion_relays = [{", ".join(hops)}]\n'
    (path / "dchat.toml").write_text(toml)
    return NodeProcess(
        path, "user", passphrase=PASSPHRASE, relay=home.info["link"], poll_interval=0.2
    )


def _start_all(nodes: list[NodeProcess]) -> None:
    """Start the processes at once (each waits for its own API)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        for started in [pool.submit(node.start) for node in nodes]:
            started.result()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[list[NodeProcess], dict[str, NodeProcess]]]:
    started: list[NodeProcess] = []
    try:
        relays = [_relay(tmp_path / f"relay{n}", p) for n, p in enumerate(free_ports(3))]
        started += relays
        _start_all(relays)
        homes = zip(USERS, relays, strict=True)
        users = {name: _user(tmp_path / name, name, home, relays) for name, home in homes}
        started += users.values()
        _start_all(list(users.values()))
        yield relays, users
    finally:
        for node in started:
            node.kill()


def _logs(relays: list[NodeProcess], after: float) -> list[list[Event]]:
    logs = []
    for relay in relays:
        lines = (relay.data_dir / "observe.jsonl").read_text().splitlines()
        logs.append([e for e in map(json.loads, lines) if e["at"] > after])
    return logs


def _settled(users: dict[str, NodeProcess], texts: dict[str, list[str]]) -> bool:
    for name, node in users.items():
        with node.client() as client:
            if int(client.status()["outbox"]) != 0:
                return False
            got = {m.text for m in client.messages(limit=100) if m.direction == "in"}
        if not set(texts.get(name, [])) <= got:
            return False
    return True


def _host(event: Event) -> str:
    return str(event.get("peer", "")).rsplit(":", 1)[0]


def _got(client: Any, text: str) -> bool:
    return text in {m.text for m in client.messages(limit=100) if m.direction == "in"}


def test_relays_logging_everything_cannot_say_who_wrote_to_whom_in_onion_mode(
    network: tuple[list[NodeProcess], dict[str, NodeProcess]], wait_until: Callable[..., None]
) -> None:
    relays, users = network
    clients = {name: node.client() for name, node in users.items()}
    try:
        a, b, c = clients["alice"], clients["bob"], clients["carol"]
        for name, client in clients.items():
            client.create_identity(name)
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        c.add_contact("alice", a.card())
        a.add_contact("carol", c.card())
        b.send("alice", "tags for alice")  # hands alice bob's tag secret
        a.send("carol", "tags for carol")
        wait_until(lambda: _settled(users, {"alice": ["tags for alice"]}), what="setup")
        start = _logs(relays, 0)[0][-1]["at"] if _logs(relays, 0)[0] else 0.0
        # Phase A: onion mode off.
        a.send("bob", "a1")
        sent_at = time.monotonic()
        c.send("alice", "c1")
        wait_until(lambda: _got(a, "c1"), what="c1 direct")
        direct_seconds = time.monotonic() - sent_at
        wait_until(lambda: _settled(users, {"bob": ["a1"], "alice": ["c1"]}), what="phase A")
        phase_a = _logs(relays, start)
        middle = max(e["at"] for log in phase_a for e in log)
        # Phase B: onion mode on for every identity (carol's through the CLI).
        a.set_onion_mode(True)
        b.set_onion_mode(True)
        _dchat(users["carol"], "privacy", "onion", "on")
        burner = a.request("POST", "/v1/burners", {"ttl": 600})["burner_id"]
        _dchat(users["alice"], "privacy", "onion", "on", "--identity", burner)
        with pytest.raises(ApiError) as unknown:
            a.set_onion_mode(True, identity="not-a-burner")
        assert unknown.value.status == 404
        a.send("bob", "a2")
        c.send("alice", "c2")
        b.send("alice", "b2")
        # New contacts in onion mode: their sessions start with prekey fetches through onions.
        b.add_contact("carol", c.card())
        c.add_contact("bob", b.card())
        b.send("carol", "b3")
        wait_until(
            lambda: _settled(users, {"bob": ["a2"], "alice": ["c2", "b2"], "carol": ["b3"]}),
            timeout=60,
            what="phase B through onions",
        )
        status = a.status()
        phase_b = _logs(relays, middle)
        everything = _logs(relays, 0)
        with relays[0].client() as relay:
            onions = relay.status()["onions"]
        # Phase C: bob answers alice under one of the reply blocks her a2 carried.
        late = max(e["at"] for log in phase_b for e in log)
        assert b.onion_mode()["onion"]["reply_blocks"]["held"] >= 1
        sent_at = time.monotonic()
        b.send("alice", "c3 under a reply block")
        wait_until(lambda: _got(a, "c3 under a reply block"), timeout=60, what="phase C")
        reply_seconds = time.monotonic() - sent_at
        phase_c = _logs(relays, late)
        answered = b.onion_mode()["onion"]["reply_blocks"]["answers"]
        given = a.onion_mode()["onion"]["reply_blocks"]
    finally:
        for client in clients.values():
            client.close()
    assert status["onion"]["identities"] == {status["identity_id"]: True, burner: True}
    assert len(status["onion"]["relays"]) == 3
    assert status["onion"]["routes"] == "manual"  # onion_relays set: the manual override
    assert status["onion"]["route_error"] is None
    assert onions["peeled"] >= 1
    named_a = who_wrote_to_whom(phase_a, USERS)
    assert {("alice", "bob"), ("carol", "alice")} <= named_a  # the script works
    deposits_b = [e for log in phase_b for e in log if e["ev"] == "deposit"]
    assert len(deposits_b) >= 3  # every phase B envelope arrived as an onion deposit
    assert not [e for log in phase_b for e in log if e.get("op") in DEPOSITS]  # none directly
    assert who_wrote_to_whom(phase_b, USERS) == set()  # and no writer can be named
    # Prekey fetches: by address before B (the script works), through onions in B.
    before_b = [[e for e in log if e["at"] <= middle] for log in everything]
    named = who_fetched_whose_keys(before_b, USERS, everything)
    assert {("carol", "alice"), ("alice", "bob")} <= named
    fetches_b = [e for log in phase_b for e in log if e["ev"] == "fetch"]
    assert fetches_b  # bob's fetch of carol's bundle arrived as an onion fetch
    assert not [e for log in phase_b for e in log if e.get("op") == "RelayPrekeyGet"]
    assert who_fetched_whose_keys(phase_b, USERS, everything) == set()
    # Phase C: the answer went under alice's block, never near her relay or mailbox.
    assert answered.get("stored", 0) >= 1
    assert given["supply"] == 3
    alice_boxes = {
        box
        for log in _logs(relays, 0)
        for e in log
        if e["ev"] == "request" and e["op"] in OWNER_READS and _host(e) == USERS["alice"]
        for box in e["mb"]
    }
    replies = [e for e in phase_c[0] if e["ev"] == "deposit" and set(e["mb"]) & alice_boxes]
    assert replies  # it reached alice's mailbox relay as an onion's last hop
    bob = [e for log in phase_c for e in log if _host(e) == USERS["bob"]]
    assert bob  # bob's node did talk to a relay (the block's first hop)
    assert not [e for e in phase_c[0] if _host(e) == USERS["bob"]]
    assert not [e for e in bob if set(e.get("mb", ())) & alice_boxes]
    print(f"to alice: direct {direct_seconds:.2f} s, under a reply block {reply_seconds:.2f} s")
