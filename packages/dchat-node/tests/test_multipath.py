"""Real processes: multi-home relays and multi-path delivery with failover.

Three relays; bob is homed on two of them (his card lists both), alice on the
third and one of bob's. Alice streams 100 messages to bob and, mid-stream, bob's
first home relay is killed: every message still arrives exactly once and in
order, through the other relay, without anyone doing anything. When the dead
relay comes back, bob's links to it reconnect (it rejoins), alice's copies
queued for it go out, and what it then pushes to bob counts as duplicates:
nothing is shown twice and nothing is refused.

The issue's full scale (validators, relays found through the chain's
directory, 5 relays, 4 users, 500 messages, 2 relays killed) is
test_relay_network.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dchat_node import NodeProcess
from dchat_node.cli._process import free_ports
from dchat_testing import wait_until
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow

COUNT = 100
KILL_AFTER = 30


def _user(path: Path, relays: list[str]) -> NodeProcess:
    path.mkdir(mode=0o700)
    (path / "dchat.toml").write_text(f"[node]\nrelays = {json.dumps(relays)}\n")
    node = NodeProcess(path, "user", passphrase=PASSPHRASE, poll_interval=0.2)
    node.start()
    return node


def _inbound(node: NodeProcess) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages(limit=1000) if m.direction == "in"]


def _status(node: NodeProcess) -> dict[str, Any]:
    with node.client() as client:
        return client.status()


def _connected(node: NodeProcess, relay: NodeProcess) -> bool:
    links = [link for link in _status(node)["links"] if link["relay"] == relay.info["link"]]
    return bool(links) and all(link["state"] == "connected" for link in links)


def _start_relays(path: Path, count: int) -> list[NodeProcess]:
    nodes = [
        NodeProcess(path / f"relay{i}", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{p}")
        for i, p in enumerate(free_ports(count))
    ]
    for node in nodes:
        node.start()
    return nodes


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    nodes: list[NodeProcess] = []
    try:
        nodes += _start_relays(tmp_path, 3)
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def test_a_home_relay_killed_mid_stream_loses_nothing_and_rejoins(
    tmp_path: Path, relays: list[NodeProcess]
) -> None:
    first, second, _ = relays
    pinned = [f"{r.info['node_id']}@{r.info['link']}" for r in relays]
    users = []
    try:
        bob = _user(tmp_path / "bob", [pinned[0], pinned[1]])
        users.append(bob)
        alice = _user(tmp_path / "alice", [pinned[2], pinned[1]])
        users.append(alice)
        with alice.client() as a, bob.client() as b:
            a.create_identity("alice")
            b.create_identity("bob")
            a.add_contact("bob", b.card())
            b.add_contact("alice", a.card())
        # Bob keeps a link to each home relay and reports each one.
        wait_until(lambda: _connected(bob, first) and _connected(bob, second), timeout=30)
        before = _status(bob)
        sent = [f"stream {i:03d}" for i in range(COUNT)]
        with alice.client() as a:
            for number, text in enumerate(sent):
                if number == KILL_AFTER:
                    first.kill()  # bob's first home relay dies mid-stream
                a.send("bob", text)
        wait_until(lambda: len(_inbound(bob)) >= COUNT, timeout=90, what="every message")
        assert _inbound(bob) == sent  # exactly once, in order
        assert not _connected(bob, first)
        assert _status(bob)["relay"] == "connected"  # the other relay carries on
        # Alice's copies for the dead relay wait in her outbox, nothing else does.
        assert 0 < _status(alice)["outbox"] <= COUNT - KILL_AFTER + 64

        first.start()  # the relay comes back on its old address and key: it rejoins
        wait_until(lambda: _connected(bob, first), timeout=60, what="bob's links to it")
        wait_until(lambda: _status(alice)["outbox"] == 0, timeout=60, what="alice's queue")
        # Every message reached bob at least twice (through each relay; a relay
        # killed mid-push pushes its unacknowledged batch again), the copies
        # counted as duplicates: the dead relay's copies were not lost either.
        copies = COUNT + before["duplicates"]
        wait_until(lambda: _status(bob)["duplicates"] >= copies, timeout=60, what="the copies")
        final = _status(bob)
        assert _inbound(bob) == sent  # the copies it then pushed were not shown again
        assert final["received"] == before["received"] + COUNT
        assert final["rejected"] == before["rejected"]  # a copy is no error
    finally:
        for node in users:
            node.kill()
