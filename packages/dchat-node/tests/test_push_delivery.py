"""Real processes: push delivery, no lost wake-ups, queue order through relay crashes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_testing import wait_until
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(tmp_path: Path, relay: NodeProcess) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Alice and bob, each other's contacts, retrying failed deliveries only every 2 minutes.

    With such a long retry timer, anything that arrives quickly arrived because
    a send woke the outbox and the relay pushed it, not because a timer fired.
    """
    nodes = [
        NodeProcess(
            tmp_path / name,
            "user",
            passphrase=PASSPHRASE,
            relay=relay.info["link"],
            poll_interval=120.0,
        )
        for name in ("alice", "bob")
    ]
    try:
        for node in nodes:
            node.start()
        alice, bob = nodes
        _introduce(alice, bob)
        yield alice, bob
    finally:
        for node in nodes:
            node.kill()


def _introduce(alice: NodeProcess, bob: NodeProcess) -> None:
    """Give both nodes an identity and make them each other's contacts."""
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())


def _inbound(node: NodeProcess) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages(limit=1000) if m.direction == "in"]


def _conversation(node: NodeProcess) -> list[str]:
    """Alice's texts as bob's conversation with her shows them, with none missing."""
    with node.client() as client:
        listing = client.request("GET", "/v1/messages", params={"peer": "alice", "limit": 1000})
    assert listing["missing"] == 0
    return [m["text"] for m in listing["messages"] if m["direction"] == "in"]


def test_a_burst_larger_than_a_batch_arrives_without_waiting_for_a_timer(
    pair: tuple[NodeProcess, NodeProcess],
) -> None:
    alice, bob = pair
    sent = [f"burst {i:03d}" for i in range(150)]  # > one deposit and one pull (64 each)
    with alice.client() as a:
        for text in sent:
            a.send("bob", text)
    # Well under the 120 s retry timer: the wake-ups and the push did it.
    wait_until(lambda: len(_inbound(bob)) >= len(sent), timeout=60, what="the burst delivered")
    # Exactly once each. Bob's node lists all its mail in arrival order, and the mail
    # comes in over two links (his mailbox and a rotating tag), so only the conversation
    # is in send order: by the sequence inside each sealed message (issue 13, item 4).
    assert sorted(_inbound(bob)) == sent
    assert _conversation(bob) == sent
    with alice.client() as a:
        assert a.status()["outbox"] == 0


def test_queue_order_survives_three_relay_kills_during_200_sends(
    relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")  # retries every 0.2 s
    _introduce(alice, bob)
    sent = [f"ordered {i:03d}" for i in range(200)]
    progress = threading.Semaphore(0)

    def send_all() -> None:
        with alice.client() as a:
            for text in sent:
                a.send("bob", text)
                progress.release()

    sender = threading.Thread(target=send_all)
    sender.start()
    for _ in range(3):  # a SIGKILL after every ~50 sends, then a restart
        for _ in range(50):
            assert progress.acquire(timeout=60)
        relay.kill()
        relay.start()
    sender.join(timeout=120)
    assert not sender.is_alive()
    wait_until(lambda: len(_inbound(bob)) >= len(sent), timeout=120, what="all delivered")
    assert sorted(_inbound(bob)) == sent  # exactly once each (listed in arrival order)
    assert _conversation(bob) == sent  # the conversation's order: the order they were sent


def test_status_and_send_say_when_the_relay_is_unreachable(
    relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    _introduce(alice, bob)
    with alice.client() as a:
        wait_until(lambda: a.status()["relay"] == "connected", what="alice's link up")
        relay.kill()
        wait_until(lambda: a.status()["relay"] == "unreachable", what="the loss noticed")
        result = CliRunner().invoke(app, ["--data-dir", str(alice.data_dir), "send", "bob", "hi"])
        assert result.exit_code == 0, result.output
        assert "relay unreachable" in result.output
        status = a.status()
        assert status["outbox"] >= 1
        assert status["outbox_oldest_age"] is not None
        assert all(link["state"] != "connected" for link in status["links"])
        assert all(link["last_error"] for link in status["links"])
        assert "unreachable" in (alice.data_dir / "node.log").read_text()
        relay.start()
        wait_until(lambda: a.status()["relay"] == "connected", timeout=60, what="reconnected")
        wait_until(lambda: a.status()["outbox"] == 0, timeout=60, what="the queue delivered")
        assert a.status()["outbox_oldest_age"] is None
        # A client following the event stream saw each change, in order, without polling.
        events, _ = a.event_page(after=0, limit=1000)
        changes = [e.data["relay"] for e in events if e.kind == "status"]
        assert changes == ["connected", "unreachable", "connected"]
    wait_until(lambda: _inbound(bob) == ["hi"], timeout=60, what="bob has it")


def test_sends_acknowledged_under_load_survive_a_sigkill(
    relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    _introduce(alice, bob)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(worker: int) -> None:
        with alice.client() as a:
            for i in range(1000):
                if stop.is_set():
                    return
                try:
                    text = f"w{worker} m{i}"
                    a.send("bob", text)  # returns only once the send is committed
                except Exception:  # the node was killed under us: not acknowledged
                    return
                with lock:
                    acknowledged.append(text)

    workers = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(acknowledged) >= 100, timeout=60, what="sends under way")
    alice.kill()  # SIGKILL while eight clients are sending (group commits in flight)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    with lock:
        survivors = list(acknowledged)
    alice.start()
    wait_until(
        lambda: set(survivors) <= set(_inbound(bob)),
        timeout=120,
        what="every acknowledged send delivered after the restart",
    )
    assert len(_inbound(bob)) == len(set(_inbound(bob)))  # and none twice
