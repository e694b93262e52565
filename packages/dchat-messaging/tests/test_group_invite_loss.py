"""Invitations in parts between user agents, under loss, reordering, copies and retries."""

from __future__ import annotations

import pytest

from dchat_identity import ContactCard, Identity
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0
Mail = list[tuple[bytes, bytes]]


def _fat_card(i: int) -> ContactCard:
    """A member card near the 2 kB bound: ~23 fit one control, so 60 split an invitation."""
    relays = [f"{'r' * 200}{k}.example:7400" for k in range(8)]
    return ContactCard.issue(Identity.generate(), name=f"filler {i}".ljust(60, "."), relays=relays)


def _outgoing(node: AgentNode) -> Mail:
    """``node``'s queued envelopes; devices without a published bundle (fillers) get none."""
    for engine, device in node.agent.bundles_due(T0):
        bundle = node.bundles.get(bytes(device.mailbox))
        if bundle is not None:
            node.agent.bundle_received(engine, device, bundle, now=T0)
    taken: Mail = []
    while entries := list(node.agent.outbox.due(T0 + 3600, 1000)):
        for entry in entries:
            node.agent.delivered(entry.message_id)
        taken += [(entry.mailbox, entry.envelope) for entry in entries]
    return taken


def _to(node: AgentNode, mail: Mail) -> list[object]:
    mine = [e for box, e in mail if box == bytes(node.card.mailbox)]
    updates: list[object] = []
    for envelope in mine:
        updates += node.agent.accept_many(node.engine, [envelope], now=T0 + 1).updates
    return updates


def _group(fillers: int) -> tuple[AgentNode, AgentNode, str]:
    bundles: dict[bytes, bytes] = {}
    alice, bob = AgentNode("alice", bundles), AgentNode("bob", bundles)
    cards = [bob.card, *(_fat_card(i) for i in range(fillers))]
    for card in cards:
        alice.agent.contacts.add(card.name, card.to_text(), now=T0)
    bob.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    gid, _ = alice.agent.groups.create("big", now=T0)
    if fillers:
        alice.agent.groups.invite_many(gid, [c.name for c in cards[1:]], now=T0)
    _outgoing(alice)
    return alice, bob, gid


def _joined(alice: AgentNode, bob: AgentNode, gid: str) -> None:
    alice.agent.groups.invite(gid, "bob", now=T0)
    _to(bob, _outgoing(alice))
    bob.agent.groups.join(gid, now=T0)
    _to(alice, _outgoing(bob))
    _to(bob, _outgoing(alice))


def _talk(alice: AgentNode, bob: AgentNode, gid: str, tag: str) -> None:
    bob.agent.groups.send_text(gid, f"bob {tag}", now=T0)
    _to(alice, _outgoing(bob))
    _to(bob, _outgoing(alice))
    alice.agent.groups.send_text(gid, f"alice {tag}", now=T0)
    _to(bob, _outgoing(alice))
    _to(alice, _outgoing(bob))
    for node in (alice, bob):
        texts = [r["text"] for r in node.agent.groups.history(gid)]
        assert f"bob {tag}" in texts, (node.card.name, texts)
        assert f"alice {tag}" in texts, (node.card.name, texts)


def _invited(updates: list[object]) -> int:
    return sum(1 for u in updates if getattr(u, "detail", {}).get("op") == "invited")


def _pending(node: AgentNode) -> list[str]:
    return [k for k in node.store.state if k.startswith("group.inv.")]  # type: ignore[attr-defined]


def test_an_invitation_in_parts_survives_reordering_and_copies() -> None:
    alice, bob, gid = _group(60)
    alice.agent.groups.invite(gid, "bob", now=T0)
    mail = [m for m in _outgoing(alice) if m[0] == bytes(bob.card.mailbox)]
    assert len(mail) >= 3  # the head and two parts, at least
    updates = _to(bob, list(reversed(mail)) + mail)  # parts before the head, then copies
    assert _invited(updates) == 1
    raw = bytes.fromhex(gid)
    record = bob.agent.groups.db.record(raw)
    assert record is not None
    assert record.status == "invited"
    assert record.state.hash() == alice.agent.groups.db.record(raw).state.hash()  # type: ignore[union-attr]
    assert bob.agent.groups.db.waiting() == []
    assert _pending(bob) == []
    bob.agent.groups.join(gid, now=T0)
    _to(alice, _outgoing(bob))
    _to(bob, _outgoing(alice))
    _talk(alice, bob, gid, "in parts")


def test_a_lost_part_then_a_new_invitation_and_the_old_parts_late() -> None:
    alice, bob, gid = _group(60)
    alice.agent.groups.invite(gid, "bob", now=T0)
    first = [m for m in _outgoing(alice) if m[0] == bytes(bob.card.mailbox)]
    lost = first[2]
    assert _to(bob, [m for m in first if m is not lost]) == []  # incomplete: nothing yet
    assert bob.agent.groups.db.record(bytes.fromhex(gid)) is None
    assert _pending(bob) != []  # a part was lost, not the head
    alice.agent.groups.remove(gid, "bob", now=T0)  # bob never joined: alice tries again
    alice.agent.groups.invite(gid, "bob", now=T0)
    second = _outgoing(alice)
    updates = _to(bob, second) + _to(bob, [lost, *first])  # the old ones late, and again
    assert _invited(updates) == 1
    raw = bytes.fromhex(gid)
    record = bob.agent.groups.db.record(raw)
    assert record is not None
    assert record.status == "invited"
    assert record.state.hash() == alice.agent.groups.db.record(raw).state.hash()  # type: ignore[union-attr]
    assert _pending(bob) == []
    bob.agent.groups.join(gid, now=T0)
    _to(alice, _outgoing(bob))
    _to(bob, _outgoing(alice))
    _talk(alice, bob, gid, "second try")


@pytest.mark.parametrize("fillers", [0, 60])
def test_a_re_add_that_overtakes_the_removal(fillers: int) -> None:
    # The invitation comes before what it needs (bob's removal): the group book
    # keeps it waiting. In one control (no fillers) it completes when tried
    # again; in parts only the completing part waited, its parts forgotten, so
    # it could never complete again and stayed waiting (tried on every group
    # control; here bob still got there by the re-add his node held).
    alice, bob, gid = _group(fillers)
    _joined(alice, bob, gid)
    _talk(alice, bob, gid, "before")
    alice.agent.groups.remove(gid, "bob", now=T0)
    removal = _outgoing(alice)
    alice.agent.groups.invite(gid, "bob", now=T0)
    _to(bob, _outgoing(alice))
    _to(bob, removal)
    raw = bytes.fromhex(gid)
    record, theirs = bob.agent.groups.db.record(raw), alice.agent.groups.db.record(raw)
    assert record is not None
    assert theirs is not None
    assert record.status == "active"
    assert record.state.hash() == theirs.state.hash()
    assert bob.agent.groups.db.waiting() == []
    assert _pending(bob) == []
    _talk(alice, bob, gid, "after")
