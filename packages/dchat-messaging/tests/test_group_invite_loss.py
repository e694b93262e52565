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


@pytest.mark.parametrize("fillers", [0, 60])
def test_a_re_add_that_overtakes_the_removal(fillers: int) -> None:
    alice, bob, gid = _group(fillers)
    _joined(alice, bob, gid)
    _talk(alice, bob, gid, "before")
    alice.agent.groups.remove(gid, "bob", now=T0)
    removal = _outgoing(alice)
    alice.agent.groups.invite(gid, "bob", now=T0)
    readd = _outgoing(alice)
    _to(bob, readd)
    _to(bob, removal)
    raw = bytes.fromhex(gid)
    print("status", bob.agent.groups.show(gid)["status"], bob.agent.groups.db.waiting()[:0], len(bob.agent.groups.db.waiting()))
    assert bob.agent.groups.db.record(raw).state.hash() == alice.agent.groups.db.record(raw).state.hash()
    if bob.agent.groups.show(gid)["status"] == "invited":
        bob.agent.groups.join(gid, now=T0)
        _to(alice, _outgoing(bob))
        _to(bob, _outgoing(alice))
    _talk(alice, bob, gid, "after")
    assert bob.agent.groups.db.waiting() == []
