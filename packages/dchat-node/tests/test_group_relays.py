"""A private group of five users over two relays, with real processes (issue 17's done-means).

alice, carol and erin are homed on one relay, bob and dave on the other;
alice (the admin) knows everyone, the others know only her. Alice makes the
group and adds the four; everyone reads everyone. She removes carol, whose
node then stays down while alice posts to the others (who are down too, so
that the relays store every envelope): handed every envelope the two relays
stored after her removal, carol's node (its own steps over its data) opens none.
Alice adds carol back: she reads what follows, never what she missed. Then
dave's node is modified: with his keys it signs updates the group's rules
forbid him (removing the admin, making himself admin) and sends them to
every member over his real sessions: every honest node refuses them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest

from dchat_core import IdentityId
from dchat_identity import ContactCard, Identity
from dchat_messaging import SealedEnvelope, UserMessaging
from dchat_messaging.lowlevel import GroupUpdate
from dchat_node import NodeProcess
from dchat_node.cli._process import free_ports
from dchat_storage import EngineStore, open_database
from dchat_testing import wait_until
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

NAMES = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    nodes = [
        NodeProcess(tmp_path / f"relay{i}", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{p}")
        for i, p in enumerate(free_ports(2))
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def _user(path: Path, relay: NodeProcess) -> NodeProcess:
    path.mkdir(mode=0o700)
    pinned = f"{relay.info['node_id']}@{relay.info['link']}"
    (path / "dchat.toml").write_text(f"[node]\nrelays = {json.dumps([pinned])}\n")
    node = NodeProcess(path, "user", passphrase=PASSPHRASE, poll_interval=0.2)
    node.start()
    return node


def _texts(node: NodeProcess, gid: str) -> list[str]:
    with node.client() as client:
        return sorted(m["text"] for m in client.group_messages(gid))


def _show(node: NodeProcess, gid: str) -> dict[str, object]:
    with node.client() as client:
        return client.group(gid)


def _stored(relay: NodeProcess, mailboxes: list[bytes]) -> list[bytes]:
    db = open_database(relay.data_dir / "node.db")
    try:
        return [entry.envelope for box in mailboxes for entry in db.mailboxes.fetch(box)]
    finally:
        db.close()


def _stored_all(relay: NodeProcess) -> list[bytes]:
    """Every envelope ``relay`` stores, under any mailbox or rotating tag (protocol section 38)."""
    uri = f"file:{relay.data_dir / 'node.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        return [bytes(e) for (e,) in db.execute("SELECT envelope FROM mailbox_entries")]


@contextlib.contextmanager
def _agent_of(node: NodeProcess) -> Iterator[tuple[Identity, UserMessaging]]:
    """The messaging agent the node runs, over its (stopped) data directory."""
    db = open_database(node.data_dir / "node.db", passphrase=PASSPHRASE.encode())
    try:
        record = db.identity.get()
        assert record is not None
        me = Identity.from_keystore(record.keystore, PASSPHRASE.encode())
        agent = UserMessaging(EngineStore(db))
        agent.engines.set_main(me, ContactCard.from_bytes(record.card))
        agent.load()
        yield me, agent
    finally:
        db.close()


def _forge_as(node: NodeProcess, gid: str, ops: list[tuple[str, object]]) -> None:
    """A modified client: with ``node``'s own keys, sign ``ops`` on its group state and
    queue them to every member over its sessions, unchecked (its node sends them at start)."""
    node.stop()
    with _agent_of(node) as (me, agent):
        groups = agent.groups
        state = groups.find(gid).state
        others = [m.card for i, m in state.members.items() if i != bytes(me.identity_id)]
        with groups._store.transaction():  # what the modified client bypasses
            for op, arg in ops:
                update = GroupUpdate.make(state, bytes(me.identity_id), op, arg, me.signing_key)
                groups._send("group.upd", update.to_bytes(), others, now=time.time())
    node.start()


def test_five_users_two_relays_remove_re_add_and_a_modified_client(
    tmp_path: Path, relays: list[NodeProcess]
) -> None:
    nodes = {n: _user(tmp_path / n, relays[i % 2]) for i, n in enumerate(NAMES)}
    alice, bob, carol, dave, erin = (nodes[n] for n in NAMES)
    try:
        ids, boxes = {}, {}
        for name, node in nodes.items():
            with node.client() as client:
                ids[name] = client.create_identity(name)
                boxes[name] = bytes(ContactCard.from_text(client.card()).mailbox)
        with alice.client() as a:
            for name in NAMES[1:]:
                with nodes[name].client() as other:
                    a.add_contact(name, other.card())
                    other.add_contact("alice", a.card())
            gid = a.create_group("five")
            for name in NAMES[1:]:
                a.invite_to_group(gid, name)
        for name in NAMES[1:]:
            wait_until(lambda name=name: _show(nodes[name], gid)["status"] == "invited", timeout=30)
            with nodes[name].client() as client:
                client.join_group(gid)
        for name, node in nodes.items():
            with node.client() as client:
                client.send_to_group(gid, f"hi from {name}")
        hello = sorted(f"hi from {n}" for n in NAMES)
        for node in nodes.values():
            wait_until(lambda node=node: _texts(node, gid) == hello, timeout=40)

        # Remove carol; with her node down and the others' too, alice posts.
        with alice.client() as a:
            a.remove_from_group(gid, "carol")
        wait_until(lambda: _show(carol, gid)["status"] == "left", timeout=30)
        for node in (bob, dave, erin):
            wait_until(lambda node=node: len(_show(node, gid)["members"]) == 4, timeout=30)  # type: ignore[arg-type]
        for node in (bob, carol, dave, erin):
            node.stop()
        with alice.client() as a:
            a.send_to_group(gid, "while carol is out")
        wait_until(lambda: len(_stored_all(relays[0]) + _stored_all(relays[1])) >= 3)
        recorded = _stored_all(relays[0]) + _stored_all(relays[1])
        assert _stored(relays[0], [boxes["carol"]]) == []  # nothing was sent to her
        with _agent_of(carol) as (me, agent):  # her node's own steps, handed all of it
            engine = agent.engines.for_identity(me)
            # Each readdressed to her mailbox (mail to a contact sits under a rotating tag;
            # the seal binds the mailbox), so none is dropped merely for its address.
            mine = [
                SealedEnvelope(me.mailbox_id, SealedEnvelope.from_bytes(raw).ciphertext).to_bytes()
                for raw in recorded
            ]
            accepted = agent.accept_many(engine, mine, now=time.time())
            assert (accepted.texts, accepted.updates) == ([], [])
            assert len(accepted.dropped) == len(recorded)
        for node in (bob, carol, dave, erin):
            node.start()
        for node in (alice, bob, dave, erin):
            wait_until(lambda node=node: "while carol is out" in _texts(node, gid), timeout=30)
        assert _texts(carol, gid) == hello  # she opened none of it
        assert _show(carol, gid)["status"] == "left"

        # Re-add carol: she reads from her return on, never what she missed.
        with alice.client() as a:
            a.invite_to_group(gid, "carol")
        wait_until(lambda: _show(carol, gid)["status"] == "invited", timeout=30)
        with carol.client() as c:
            c.join_group(gid)
        wait_until(lambda: _show(alice, gid)["version"] == _show(carol, gid)["version"])
        with alice.client() as a:
            a.send_to_group(gid, "welcome back")
        wait_until(lambda: "welcome back" in _texts(carol, gid), timeout=30)
        assert "while carol is out" not in _texts(carol, gid)

        # dave's modified node signs what members may not do, and sends it to all.
        before = _show(alice, gid)
        _forge_as(dave, gid, [("remove", _raw(ids["alice"])), ("role", [_raw(ids["dave"]), 1])])
        with dave.client() as d:
            d.send_to_group(gid, "dave, after his forgeries")  # behind them on each session
        last = "dave, after his forgeries"
        for node in (alice, bob, carol, erin):
            wait_until(lambda node=node: last in _texts(node, gid), timeout=40)
            shown = _show(node, gid)
            assert shown["version"] == before["version"]
            roles = {m["identity_id"]: m["role"] for m in shown["members"]}  # type: ignore[union-attr]
            assert len(roles) == 5
            assert (roles[ids["alice"]], roles[ids["dave"]]) == ("admin", "member")
    finally:
        for node in nodes.values():
            node.kill()


def _raw(identity: str) -> bytes:
    return bytes(IdentityId.parse(identity))
