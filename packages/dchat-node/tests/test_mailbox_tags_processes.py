"""Real processes: rotating mailbox tags at a real relay, and an offline recipient catching up.

Bob's epochs last 3 s here (``tag_epoch``). While Bob is stopped, Alice writes
to him in two epochs; the relay's database then holds the two envelopes
under two unrelated mailbox ids, neither Bob's published one, with arrival
times coarsened to the minute. When Bob starts again his node drains the
epochs it missed (they are outside the live window by then) and reads both.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dchat_identity import ContactCard
from dchat_network.lowlevel import ARRIVAL_GRANULARITY
from dchat_node import NodeProcess
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow

EPOCH = 3


def _user(path: Path, relay: NodeProcess) -> NodeProcess:
    path.mkdir(mode=0o700)
    (path / "dchat.toml").write_text(f"[node]\ntag_epoch = {EPOCH}\n")
    node = NodeProcess(path, "user", passphrase=PASSPHRASE, relay=relay.info["link"])
    node.start()
    return node


@pytest.fixture
def users(tmp_path: Path, relay: NodeProcess) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    nodes = [_user(tmp_path / name, relay) for name in ("alice", "bob")]
    try:
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.kill()


def _inbound(node: NodeProcess) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages(limit=100) if m.direction == "in"]


def _outbox(node: NodeProcess) -> int:
    with node.client() as client:
        return int(client.status()["outbox"])


def _stored(relay: NodeProcess) -> list[tuple[bytes, float]]:
    """What the relay's store holds: ``(mailbox id, arrival time)`` of each entry."""
    uri = f"file:{relay.data_dir / 'node.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute("SELECT mailbox, received_at FROM mailbox_entries ORDER BY seq")
        return [(bytes(mailbox), float(at)) for mailbox, at in rows]


def test_an_offline_recipients_mail_sits_under_unlinked_tags_and_is_caught_up(
    relay: NodeProcess, users: tuple[NodeProcess, NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bob = users
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        published = bytes(ContactCard.from_text(b.card()).mailbox)
        b.send("alice", "hello alice")  # hands Alice Bob's tag secret
    wait_until(lambda: _inbound(alice) == ["hello alice"], what="bob's first message")
    wait_until(lambda: _outbox(bob) == 0, what="bob's outbox drained")
    bob.stop()
    wait_until(lambda: _outbox(alice) == 0, what="alice's receipt to bob stored")
    before = len(_stored(relay))  # e.g. that delivery receipt, waiting for Bob
    with alice.client() as a:
        a.send("bob", "first epoch")
    wait_until(lambda: len(_stored(relay)) == before + 1, what="the first envelope stored")
    time.sleep(EPOCH * 1.2)  # the next epoch (or later)
    with alice.client() as a:
        a.send("bob", "second epoch")
    wait_until(lambda: len(_stored(relay)) == before + 2, what="the second envelope stored")
    stored = _stored(relay)[before:]
    mailboxes = {mailbox for mailbox, _ in stored}
    assert len(mailboxes) == 2  # one recipient, two epochs: two unrelated mailbox ids
    assert published not in mailboxes
    assert all(at % ARRIVAL_GRANULARITY == 0 for _, at in _stored(relay))
    time.sleep(EPOCH * 2.2)  # both epochs now behind Bob's live window
    bob.start()
    wait_until(
        lambda: sorted(_inbound(bob)) == ["first epoch", "second epoch"],
        timeout=60,
        what="bob caught up on the epochs he missed",
    )
    wait_until(lambda: _stored(relay) == [], what="the caught-up mail acknowledged")
