"""Real processes: a relay and two users, the message path and its failure modes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from dchat_identity import ContactCard
from dchat_node import NodeProcess
from dchat_node.cli._demo import run_demo
from dchat_testing import wait_until

pytestmark = pytest.mark.slow

TEXT = "meet at the usual place at nine; bring the blue notebook"


def _pair(users: tuple[NodeProcess, NodeProcess]) -> tuple[NodeProcess, NodeProcess]:
    """The two users who added each other, once their identity documents are delivered."""
    alice, bob = users
    with alice.client() as a, bob.client() as b:
        wait_until(
            lambda: not a.status()["outbox"] and not b.status()["outbox"],
            what="the identity documents delivered",
        )
    return alice, bob


def _inbound(node: NodeProcess) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages() if m.direction == "in"]


def _outbox(node: NodeProcess) -> int:
    with node.client() as client:
        return int(client.status()["outbox"])


def test_demo_exits_zero_and_bob_reads_alice() -> None:
    buffer = io.StringIO()
    status = run_demo(Console(file=buffer, width=200))
    transcript = buffer.getvalue()
    assert status == 0, transcript
    assert "bob reads from alice" in transcript
    assert "SUCCESS" in transcript


def test_relay_killed_after_ack_still_delivers_exactly_once(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
) -> None:
    alice, bob = _pair(user_pair)
    bob.stop()
    with alice.client() as a:
        a.send("bob", TEXT)
    wait_until(lambda: _outbox(alice) == 0)  # the relay acknowledged durable storage
    relay.kill()  # SIGKILL before any delivery
    relay.start()
    bob.start()
    wait_until(lambda: _inbound(bob) == [TEXT])
    with relay.client() as r:
        wait_until(lambda: r.status()["mailbox_entries"] == 0)
    # More fetch rounds deliver nothing new: exactly once.
    with bob.client() as b:
        received_before = b.status()["received"]
        wait_until(lambda: b.status()["received"] == received_before, timeout=2)
    assert _inbound(bob) == [TEXT]


def test_relay_files_hold_neither_plaintext_nor_sender_id(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
) -> None:
    alice, bob = _pair(user_pair)
    with alice.client() as a:
        card = ContactCard.from_text(a.card())
        a.send("bob", TEXT)
    wait_until(lambda: _inbound(bob) == [TEXT])
    relay.stop()
    forbidden = {
        "plaintext": TEXT.encode(),
        "plaintext fragment": b"blue notebook",
        "sender id text": str(card.identity_id).encode(),
        "sender id bytes": bytes(card.identity_id),
        "sender identity key": card.identity_key.to_bytes(),
        "sender name": b"alice",
    }
    files = [p for p in Path(relay.data_dir).iterdir() if p.is_file()]
    assert any(p.name == "node.db" for p in files)
    assert any(p.name == "node.log" and p.stat().st_size > 0 for p in files)
    for path in files:
        content = path.read_bytes()
        for what, needle in forbidden.items():
            assert needle not in content, f"{what} found in {path.name}"


def test_message_to_offline_user_waits_in_outbox_until_relay_returns(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
) -> None:
    alice, bob = _pair(user_pair)
    relay.stop()
    with alice.client() as a:
        a.send("bob", TEXT)
    wait_until(lambda: _outbox(alice) == 1)
    relay.start()
    wait_until(lambda: _inbound(bob) == [TEXT], timeout=40)
    assert _outbox(alice) == 0
