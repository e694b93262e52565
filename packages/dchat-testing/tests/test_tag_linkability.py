"""A relay's store cannot link one recipient's mail across epochs (rotating tags, issue 18).

Real engines seal the mail; a real ``RelayServer`` stores it as a relay does.
The "relay-side script" (:func:`link`) gets only what the relay keeps: each
stored entry's mailbox, envelope bytes and arrival time. It clusters entries
that share anything it can compare (the mailbox id, any outer envelope field
but the ciphertext, the exact arrival time). With one fixed mailbox per
recipient (before tags) it puts all of Bob's mail in one cluster; with tags
it still links one contact's mail within one epoch (said in the threat
model), but not two epochs of Bob's, nor two contacts' mail to Bob.
"""

from __future__ import annotations

from collections.abc import Iterable

from dchat_core import canonical_decode
from dchat_messaging import Content
from dchat_network import RelayClient, RelayServer
from dchat_network.lowlevel import ARRIVAL_GRANULARITY
from dchat_testing import AGENT_T0, AgentNode, MemoryMailboxStore, envelope_mailbox

EPOCH = 3600
T = AGENT_T0 - AGENT_T0 % EPOCH + 60  # a minute into an epoch


def _send(node: AgentNode, to: str, text: str, at: float) -> list[tuple[bytes, bytes]]:
    content = Content.text_message(text, now_ms=int(at * 1000))
    node.agent.send_as(node.agent.contacts.find(to), content, now=at)
    for engine, device in node.agent.bundles_due(at):
        node.agent.bundle_received(engine, device, node.bundles[bytes(device.mailbox)], now=at)
    entries = list(node.agent.outbox.due(at + 1, 1000))
    for entry in entries:
        node.agent.delivered(entry.message_id)
    return node.agent.route(entries, at)  # as the node deposits them


def _befriend(a: tuple[str, AgentNode], b: tuple[str, AgentNode], at: float) -> None:
    """``a`` and ``b`` add each other and each writes once (so each holds the other's secret)."""
    for (_, src), (name, dst) in ((a, b), (b, a)):
        src.agent.contacts.add(name, dst.card.to_text(), now=at)
    for (_, src), (name, dst) in ((a, b), (b, a)):
        mail = _send(src, name, "hello", at)
        dst.agent.accept_many(dst.engine, [env for _, env in mail], now=at)


def link(entries: Iterable[tuple[bytes, bytes, float]]) -> list[set[int]]:
    """The relay-side script: cluster stored entries ``(mailbox, envelope, arrival)``.

    Two entries are linked when they share the mailbox id, any outer field of
    the envelope but its ciphertext, or the exact arrival time (to the
    microsecond; a coarsened time is shared by everything in its minute and
    tells nothing, so only times that are not a multiple of the granularity
    count). Clusters are the connected components.
    """
    rows = list(entries)
    keys: dict[object, list[int]] = {}
    for index, (mailbox, envelope, arrival) in enumerate(rows):
        outer = canonical_decode(envelope)
        assert isinstance(outer, dict)
        found: list[object] = [("mb", mailbox)]
        found += [(k, v) for k, v in outer.items() if k not in ("ct", "v")]
        if arrival % ARRIVAL_GRANULARITY:
            found.append(("at", round(arrival, 6)))
        for key in found:
            keys.setdefault(key, []).append(index)
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for members in keys.values():
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    clusters: dict[int, set[int]] = {}
    for i in range(len(rows)):
        clusters.setdefault(root(i), set()).add(i)
    return list(clusters.values())


def test_a_relays_store_does_not_link_two_epochs_of_one_recipient() -> None:
    bundles: dict[bytes, bytes] = {}
    alice, bob, carol = (AgentNode(n, bundles) for n in ("alice", "bob", "carol"))
    _befriend(("bob", bob), ("alice", alice), T)
    _befriend(("bob", bob), ("carol", carol), T)
    store = MemoryMailboxStore()
    server, client = RelayServer(store, envelope_mailbox), RelayClient()
    truth: list[str] = []  # who wrote each stored entry, when
    plan = [(alice, "a1", 0), (alice, "a1", 5), (carol, "c1", 7), (alice, "a2", EPOCH + 9)]
    for sender, label, offset in plan:  # Bob is offline: everything stays at the relay
        at = T + offset + 0.123456
        for mailbox, envelope in _send(sender, "bob", label, at):
            server.handle(b"D" * 32, client.put(mailbox, envelope), at)
            truth.append(label)
    rows = [(e.mailbox, e.envelope, e.received_at) for e in store.entries()]
    assert len(rows) == len(truth) == 4
    assert all(arrival % ARRIVAL_GRANULARITY == 0 for _, _, arrival in rows)
    cluster_of = {i: frozenset(c) for c in link(rows) for i in c}
    first, second = truth.index("a1"), truth.index("a2")
    assert cluster_of[first] == {0, 1}  # one contact, one epoch: linked (the threat model)
    assert second not in cluster_of[first]  # two epochs of Bob's mail: not linked
    assert truth.index("c1") not in cluster_of[first]  # two contacts' mail to Bob: not linked
    assert bytes(bob.card.mailbox) not in {mailbox for mailbox, _, _ in rows}
