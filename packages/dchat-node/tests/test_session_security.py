"""Security of the message path against a full compromise, with real processes.

Each test records what an attacker can record (the envelopes a relay stores),
then hands the attacker a copy of the victim's whole data directory and its
passphrase, and tries to open the recorded envelopes with *everything* in it:
the identity keys, every stored session (current and previous), and the
prekey secrets, through the same engine the node runs (which tries each of
them). Before the messaging engine, messages were sealed to the long-term key
and every one of these envelopes opened.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dchat_identity import ContactCard, Identity
from dchat_messaging import DeviceKeys, MessagingEngine, Rejected
from dchat_node import NodeProcess
from dchat_storage import EngineStore, open_database

from .conftest import PASSPHRASE

pytestmark = pytest.mark.slow


def _pair(make_user: Callable[[str], NodeProcess]) -> tuple[NodeProcess, NodeProcess]:
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
    return alice, bob


def _texts(node: NodeProcess, direction: str = "in") -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages() if m.direction == direction]


def _mailbox(node: NodeProcess) -> bytes:
    with node.client() as client:
        return bytes(ContactCard.from_text(client.card()).mailbox)


def _stored(relay: NodeProcess, mailbox: bytes) -> list[bytes]:
    db = open_database(relay.data_dir / "node.db")
    try:
        return [entry.envelope for entry in db.mailboxes.fetch(mailbox)]
    finally:
        db.close()


def _steal(node: NodeProcess, where: Path) -> Path:
    """A copy of the node's whole data directory, taken while it is stopped."""
    node.stop()
    shutil.copytree(node.data_dir, where)
    node.start()
    return where


def _attacker_opens(stolen: Path, envelopes: list[bytes]) -> list[str]:
    """What the thief reads from ``envelopes`` with everything in ``stolen``."""
    db = open_database(stolen / "node.db", passphrase=PASSPHRASE.encode())
    try:
        record = db.identity.get()
        assert record is not None
        me = Identity.from_keystore(record.keystore, PASSPHRASE.encode())
        card = ContactCard.from_bytes(record.card)
        keys = DeviceKeys(me.identity_id, me.signing_key, me.encryption_key, me.mailbox_id, card)
        store = EngineStore(db)
        engine = MessagingEngine(keys, store, namespace=f"msg.{me.identity_id}")
        read: list[str] = []
        for raw in envelopes:
            events = engine.receive(raw, now=2e9)
            read.extend(e.text for e in events if not isinstance(e, Rejected))  # type: ignore[union-attr]
        assert [m.text for m in db.messages.list(None, 1000) if m.text in read] == read
        return read
    finally:
        db.close()


def test_forward_secrecy_recorded_envelopes_stay_closed_after_full_compromise(
    relay: NodeProcess,
    make_user: Callable[[str], NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = _pair(make_user)
    mailbox = _mailbox(bob)
    wait_until(lambda: len(_texts(bob, "in")) == 0 and _stored(relay, mailbox) == [])
    bob.stop()
    secrets = [f"secret {i}: the vault code is {1000 + i}" for i in range(3)]
    with alice.client() as a:
        for text in secrets:
            a.send("bob", text)
        wait_until(lambda: a.status()["outbox"] == 0)
    recorded = _stored(relay, mailbox)
    assert len(recorded) == 3
    bob.start()
    wait_until(lambda: _texts(bob) == secrets)
    wait_until(lambda: _stored(relay, mailbox) == [])

    stolen = _steal(bob, tmp_path / "stolen")
    assert _attacker_opens(stolen, recorded) == []


def test_post_compromise_security_heals_after_both_sides_write(
    relay: NodeProcess,
    make_user: Callable[[str], NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = _pair(make_user)
    with alice.client() as a, bob.client() as b:
        a.send("bob", "before the theft")
        wait_until(lambda: _texts(bob) == ["before the theft"])
    stolen = _steal(bob, tmp_path / "stolen")

    # Without healing, the thief reads the next message on the stolen chain
    # (this is what the test below must stop being true).
    mailbox = _mailbox(bob)
    bob.stop()
    with alice.client() as a:
        a.send("bob", "right after the theft")
        wait_until(lambda: a.status()["outbox"] == 0)
    early = _stored(relay, mailbox)
    assert _attacker_opens(tmp_path / "stolen", early) == ["right after the theft"]
    bob.start()
    wait_until(lambda: "right after the theft" in _texts(bob))

    with alice.client() as a, bob.client() as b:
        for i in range(3):
            b.send("alice", f"bob {i}")
            wait_until(lambda i=i: f"bob {i}" in _texts(alice))
            a.send("bob", f"alice {i}")
            wait_until(lambda i=i: f"alice {i}" in _texts(bob))
    bob.stop()
    with alice.client() as a:
        a.send("bob", "after healing")
        wait_until(lambda: a.status()["outbox"] == 0)
    late = _stored(relay, mailbox)
    assert len(late) == 1
    assert _attacker_opens(shutil.copytree(stolen, tmp_path / "stolen2"), late) == []
    bob.start()
    wait_until(lambda: "after healing" in _texts(bob))
