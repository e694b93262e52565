"""Chain-anchored group order, end to end at engine level: user agents and a certified chain.

The chain is a real chat chain (an :class:`IndexedApp` whose blocks four BLS
keys certify) answering the node API's light-client paths; members read the
order record of each range through :class:`LightReader` (a Merkle proof
against a certified header), as the node does through its ``ChainLink``.
Equivocation is crafted with the group engine directly: a sender that shows
two members different orders, a sequencer that shows them different lists.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from dchat_chain import Transaction
from dchat_chain._light_sim import SignedChain
from dchat_chain.lowlevel import (
    DurableBlockStore,
    IndexedApp,
    LightReader,
    MemoryBlockLog,
    ValidatorSetLog,
    answer_fields,
    certified_query,
    channel_key,
    chat_channel_id,
    decode_channel_next,
    decode_order_record,
    headers_page,
    order_key,
    solve_pow,
)
from dchat_core import canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_messaging._group_core import MESSAGE_KIND
from dchat_messaging._group_order import Evidence, OrderBatch, encode_evidence, order_channel
from dchat_messaging._sender_keys import SenderChain, message_hash
from dchat_messaging.lowlevel import GroupError
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0
BLS = [BlsSecretKey.from_seed(bytes([60 + i]) * 32) for i in range(4)]
KEYS = [SigningKey(bytes([70 + i]) * 32) for i in range(4)]
_HEADERS = re.compile(r"/v1/chain/headers\?from=(\d+)&limit=(\d+)")
_STATE = re.compile(r"/v1/chain/state/((?:[0-9a-f]{2})+)")


class ChatChain:
    """A certified chat chain in memory, answering the light client as a node's API does."""

    def __init__(self) -> None:
        validators = [
            [k.public_key.to_bytes(), b.public_key.to_bytes(), b.prove_possession().to_bytes(), 100]
            for k, b in zip(KEYS, BLS, strict=True)
        ]
        self.genesis = canonical_encode({
            "v": 1, "kind": "chat", "chain_id": "chat", "validators": validators,
            "accounts": [[k.public_key.to_bytes(), 10_000] for k in KEYS],
            "params": {"pow_bits": 2, "handle_pow_bits": 2, "recovery_delay_ms": 0},
        })  # fmt: skip
        self.app = IndexedApp(self.genesis)
        self.store = DurableBlockStore(MemoryBlockLog())
        self.sets = ValidatorSetLog(self.store)
        self.signed = SignedChain("chat", self.app, self.app.genesis_state().validators, BLS)
        self.sets.persist(self.sets.note(self.signed.state))
        self.nonces: dict[bytes, int] = {}

    def send(self, key: SigningKey, kind: str, body: dict[str, Any]) -> int:
        """One transaction in its own block, certified; its result code."""
        sender = key.public_key.to_bytes()
        nonce = self.nonces.get(sender, 0)
        tx = Transaction.create(key, chain_id="chat", nonce=nonce, fee=0, kind=kind, body=body)
        self.nonces[sender] = nonce + 1
        height = self._block([tx.raw])
        self._block([])  # the header that certifies the state after it
        code: int = self.signed.results[height].tx_results[0].code
        return code

    def _block(self, txs: list[bytes]) -> int:
        self.signed.produce(txs)
        height = self.signed.height
        self.store.save(self.signed.blocks[height], self.signed.certificates[height])
        self.sets.persist(self.sets.note(self.signed.state))
        return height

    def fetch(self, path: str) -> dict[str, Any]:
        found = _HEADERS.fullmatch(path)
        if found:
            return headers_page(self.store, self.sets, "chat", int(found[1]), int(found[2]))
        found = _STATE.fullmatch(path)
        assert found, path
        return answer_fields(
            certified_query(self.app, self.store.height(), bytes.fromhex(found[1]))
        )

    def verified(self, key: bytes) -> bytes | None:
        """The value at ``key``, through a light client (never this object's word)."""
        read = LightReader.restore(None, self.genesis).read(f"/v1/chain/state/{key.hex()}", key)
        while (path := read.next_request()) is not None:
            read.receive(self.fetch(path))
        return read.result()[1]


def _nodes(*names: str) -> list[AgentNode]:
    bundles: dict[bytes, bytes] = {}
    nodes = [AgentNode(name, bundles) for name in names]
    for other in nodes[1:]:
        nodes[0].agent.contacts.add(other.card.name, other.card.to_text(), now=T0)
        other.agent.contacts.add(nodes[0].card.name, nodes[0].card.to_text(), now=T0)
    return nodes


def pump(nodes: list[AgentNode]) -> None:
    by_box = {bytes(n.card.mailbox): n for n in nodes}
    for _ in range(20):
        mail: dict[bytes, list[bytes]] = {}
        for node in nodes:
            for box, envelope in node.outgoing():
                mail.setdefault(box, []).append(envelope)
        if not mail:
            return
        for box, envelopes in mail.items():
            node = by_box[box]
            node.agent.accept_many(node.engine, envelopes, now=T0 + 1)
    raise AssertionError("mail kept flowing")


class Group:
    """alice (admin, owner of the group's chain channel, sequencer), bob and carol."""

    def __init__(self) -> None:
        self.chain = ChatChain()
        self.nodes = _nodes("alice", "bob", "carol")
        alice = self.nodes[0]
        self.gid, _ = alice.agent.groups.create("team", anchored=True, now=T0)
        for node in self.nodes[1:]:
            alice.agent.groups.invite(self.gid, node.card.name, now=T0)
        pump(self.nodes)
        for node in self.nodes[1:]:
            node.agent.groups.join(self.gid, now=T0)
        pump(self.nodes)
        key = alice.identity.signing_key
        pow_ = solve_pow("chat", key.public_key.to_bytes(), 2)
        assert self.chain.send(key, "register_identity", {"pow": pow_, "doc": bytes(32)}) == 0
        assert self.chain.send(key, "create_channel", {"name": self.gid}) == 0
        owner = bytes(alice.identity.identity_id)
        self.channel = chat_channel_id(owner, self.gid)
        assert self.channel == order_channel(owner, bytes.fromhex(self.gid))

    def propose(self, now: float) -> OrderBatch:
        """alice's sequencer step: the due batch, at the chain's next number, signed."""
        groups = self.nodes[0].agent.groups
        [job] = groups.anchors.jobs(now, count=64, interval=5.0)
        value = self.chain.verified(channel_key(job.channel))
        assert value is not None
        return groups.anchors.propose(job, decode_channel_next(value), now=now)

    def commit(self, batch: OrderBatch) -> None:
        body = {"channel": batch.channel, "first": batch.first, "last": batch.last}
        body["root"] = batch.root()
        assert self.chain.send(self.nodes[0].identity.signing_key, "commit_order", body) == 0

    def verify_all(self, now: float) -> None:
        """Every member checks every waiting list against the chain (light client)."""
        for node in self.nodes:
            anchors = node.agent.groups.anchors
            for gid, channel, first in anchors.checks():
                value = self.chain.verified(order_key(channel, first))
                record = None if value is None else decode_order_record(value)
                chain = (
                    None if record is None else (record.last, record.root, record.by, record.height)
                )
                anchors.settle(gid, channel, first, chain, now=now)
        pump(self.nodes)

    def show(self, node: AgentNode) -> dict[str, Any]:
        anchor: dict[str, Any] = node.agent.groups.show(self.gid)["anchor"]  # type: ignore[assignment]
        return anchor


@pytest.fixture(scope="module")
def honest() -> Group:
    group = Group()
    alice, bob, carol = group.nodes
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    carol.agent.groups.send_text(group.gid, "two", now=T0)
    alice.agent.groups.send_text(group.gid, "three", now=T0)
    pump(group.nodes)
    anchors = group.nodes[0].agent.groups.anchors
    assert anchors.jobs(T0 + 1, count=64, interval=5.0) == []  # neither 64 nor 5 s yet
    assert len(anchors.jobs(T0 + 1, count=3, interval=5.0)[0].entries) == 3  # by count
    batch = group.propose(T0 + 10)
    group.commit(batch)
    group.nodes[0].agent.groups.anchors.publish(batch.to_bytes(), now=T0 + 10)
    pump(group.nodes)
    group.verify_all(T0 + 11)
    return group


def test_an_honest_batch_anchors_every_message_on_every_member(honest: Group) -> None:
    for node in honest.nodes:
        rows = node.agent.groups.history(honest.gid)
        assert sorted(str(r["text"]) for r in rows) == ["one", "three", "two"]
        assert {r["anchored"] for r in rows} == {0, 1, 2}, node.card.name
        view = honest.show(node)
        assert view["enabled"]
        assert view["anchored"] == 3
        assert view["equivocations"] == []
        assert view["next"] == 3
        assert view["pending"] == 0
        assert view["unverified"] == 0
        assert "group_anchored" in [k for k, _, _ in node.store.events]
    orders = [[r["text"] for r in sorted(n.agent.groups.history(honest.gid),
               key=lambda r: r["anchored"])] for n in honest.nodes]  # fmt: skip
    assert orders[0] == orders[1] == orders[2]  # one order, whatever the arrival order


def test_a_replayed_list_changes_nothing(honest: Group) -> None:
    alice, bob, _ = honest.nodes
    [raw] = bob.agent.groups.anchors.book(bytes.fromhex(honest.gid)).batches
    before = honest.show(bob)
    bob.agent.groups.anchors.receive_order(bytes(alice.identity.identity_id), raw, T0 + 20)
    assert honest.show(bob) == before
    assert bob.agent.groups.anchors.checks() == []


def _fork(group: Group, sender: AgentNode) -> tuple[list[bytes], list[bytes]]:
    """``sender`` signs two histories of two messages: in one order and in the other."""
    gid = bytes.fromhex(group.gid)
    keys = sender.agent.groups.db.keys(gid)
    assert keys.own is not None
    me, device = bytes(sender.identity.identity_id), sender.engine.keys.device_id
    histories = []
    for texts in (["first", "second"], ["second", "first"]):
        chain = SenderChain.from_map(keys.own.to_map())
        seq, prev, wires = keys.seq, keys.prev_hash, []
        for i, text in enumerate(texts):
            plain = canonical_encode({"mid": bytes([i + len(text)]) * 16, "ts": 1, "text": text})
            wire = chain.encrypt(
                plain, group=gid, sender=me, device=device, seq=seq + 1, prev_hash=prev
            ).to_bytes()
            seq, prev = seq + 1, message_hash(wire)
            wires.append(wire)
        histories.append(wires)
    return histories[0], histories[1]


def test_a_sender_showing_two_orders_is_caught_on_both_members_with_evidence() -> None:
    group = Group()
    alice, bob, carol = group.nodes
    to_alice, to_bob = _fork(group, carol)
    for wire in to_alice:  # carol's modified client: one history to alice, another to bob
        carol.agent.groups._send(MESSAGE_KIND, wire, [alice.card], now=T0, copies=False)
    for wire in to_bob:
        carol.agent.groups._send(MESSAGE_KIND, wire, [bob.card], now=T0, copies=False)
    pump(group.nodes)
    assert [r["text"] for r in bob.agent.groups.history(group.gid)] == ["second", "first"]
    batch = group.propose(T0 + 10)  # alice sequences what she holds: carol's first history
    group.commit(batch)
    alice.agent.groups.anchors.publish(batch.to_bytes(), now=T0 + 10)
    pump(group.nodes)
    group.verify_all(T0 + 11)
    carol_id = str(carol.identity.identity_id)
    # bob holds the other history than the chain's; alice learns of it from bob's
    # evidence, which she checks herself (carol's signature, her own anchored copy).
    for node, artefacts in ((bob, set(to_bob)), (alice, set(to_bob))):
        view = group.show(node)
        found = [e for e in view["equivocations"] if e["kind"] == "fork"]
        assert found, node.card.name
        assert {e["accused"] for e in found} == {carol_id}
        signed = {bytes.fromhex(e[k]) for e in found for k in ("a", "b")}
        assert signed & artefacts, node.card.name  # carol's own signed messages are the proof
        assert "group_equivocation" in [k for k, _, _ in node.store.events]
    assert [e["kind"] for e in group.show(alice)["equivocations"]] == ["fork"] * len(
        group.show(alice)["equivocations"]
    )


def test_a_sequencer_showing_two_lists_is_caught_on_both_members_against_the_chain() -> None:
    group = Group()
    alice, bob, carol = group.nodes
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    carol.agent.groups.send_text(group.gid, "two", now=T0)
    pump(group.nodes)
    batch = group.propose(T0 + 10)
    group.commit(batch)
    swapped = replace(batch, entries=tuple(reversed(batch.entries)))
    swapped = swapped.signed(alice.identity.signing_key)
    groups = alice.agent.groups  # alice's modified client: one list to bob, another to carol
    groups._send("group.ord", batch.to_bytes(), [bob.card], now=T0 + 10, copies=False)
    groups._send("group.ord", swapped.to_bytes(), [carol.card], now=T0 + 10, copies=False)
    pump(group.nodes)
    group.verify_all(T0 + 11)
    pump(group.nodes)
    alice_id = str(alice.identity.identity_id)
    for node in (bob, carol):
        found = [e for e in group.show(node)["equivocations"] if e["kind"] == "order"]
        assert found, node.card.name
        assert {e["accused"] for e in found} == {alice_id}
        lists = {bytes.fromhex(e[k]) for e in found for k in ("a", "b")}
        assert swapped.to_bytes() in lists, node.card.name
    carol_view = group.show(carol)["equivocations"][0]
    assert carol_view["chain"]["root"] == batch.root().hex()  # the chain's root beside the list
    assert [r.get("anchored") for r in bob.agent.groups.history(group.gid)] == [0, 1]


def test_forged_lists_and_evidence_are_refused_and_change_nothing(honest: Group) -> None:
    alice, bob, carol = honest.nodes
    anchors = bob.agent.groups.anchors
    [raw] = anchors.book(bytes.fromhex(honest.gid)).batches
    batch = OrderBatch.from_bytes(raw)
    alice_id, carol_id = (bytes(n.identity.identity_id) for n in (alice, carol))
    before = honest.show(bob)
    tampered = replace(batch, first=batch.first + 3)  # alice's signature, another range
    by_member = replace(batch, by=carol_id).signed(carol.identity.signing_key)
    elsewhere = replace(batch, channel=bytes(32)).signed(alice.identity.signing_key)
    cases = [
        (alice_id, tampered.to_bytes(), "bad_signature"),
        (carol_id, by_member.to_bytes(), "not_allowed"),  # carol is no admin
        (alice_id, elsewhere.to_bytes(), "malformed"),  # not the group's channel
        (carol_id, raw, "malformed"),  # relayed by someone else than its sequencer
        (alice_id, raw[:-5], "malformed"),
    ]
    for sender, data, code in cases:
        with pytest.raises(GroupError) as refused:
            anchors.receive_order(sender, data, T0 + 30)
        assert refused.value.code == code
    forged_fork = encode_evidence(Evidence(bytes.fromhex(honest.gid), "fork", raw))
    with pytest.raises(GroupError):
        anchors.receive_evidence(carol_id, forged_fork, T0 + 30)
    assert honest.show(bob) == before


# -- the sequencer crashes between its steps ----------------------------------------------


def _resend(group: Group, now: float, *, restarted: bool) -> list[str]:
    """alice's node after a start: what the desk's resend step does, on this chain."""
    anchors = group.nodes[0].agent.groups.anchors
    done = []
    for r in anchors.resends(now, interval=5.0, restarted=restarted):
        if r.commit:
            value = group.chain.verified(channel_key(r.channel))
            next_first = 0 if value is None else decode_channel_next(value)
            if group.chain.verified(order_key(r.channel, r.first)) is not None:
                continue
            if not anchors.retry(r.group, r.batch, next_first, now):
                done.append("dropped")
                continue
            group.commit(OrderBatch.from_bytes(r.batch))
            done.append("committed")
        anchors.publish(r.batch, now=now)
        done.append("sent")
    pump(group.nodes)
    return done


def _anchored_everywhere(group: Group, texts: list[str]) -> None:
    for node in group.nodes:
        rows = node.agent.groups.history(group.gid)
        assert sorted(str(r["text"]) for r in rows) == sorted(texts), node.card.name
        assert {r["anchored"] for r in rows} == set(range(len(texts))), node.card.name
        assert group.show(node)["equivocations"] == [], node.card.name


def test_a_crash_before_the_commit_is_repaired_with_the_same_list() -> None:
    group = Group()
    alice, bob, carol = group.nodes
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    carol.agent.groups.send_text(group.gid, "two", now=T0)
    pump(group.nodes)
    batch = group.propose(T0 + 10)  # alice's node dies before commit_order leaves it
    group.verify_all(T0 + 11)
    anchors = alice.agent.groups.anchors
    assert anchors.jobs(T0 + 99, count=1, interval=1.0) == []  # today: stalled for good
    assert _resend(group, T0 + 12, restarted=False) == []  # within the grace period
    assert _resend(group, T0 + 12, restarted=True) == ["committed", "sent"]  # after a start
    group.verify_all(T0 + 13)
    _anchored_everywhere(group, ["one", "two"])
    book = bob.agent.groups.anchors.book(bytes.fromhex(group.gid))
    assert book.batches == [batch.to_bytes()]  # the list signed before the crash, no other
    assert _resend(group, T0 + 99, restarted=True) == []
    alice.agent.groups.send_text(group.gid, "three", now=T0 + 100)  # anchoring goes on
    pump(group.nodes)
    group.commit(group.propose(T0 + 110))
    assert _resend(group, T0 + 111, restarted=False) == []  # not yet: the chain is read first
    group.verify_all(T0 + 111)
    assert _resend(group, T0 + 112, restarted=False) == ["sent"]
    group.verify_all(T0 + 112)
    _anchored_everywhere(group, ["one", "two", "three"])


def test_a_crash_between_commit_and_send_is_repaired_by_sending_the_list() -> None:
    group = Group()
    alice, bob, _ = group.nodes
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    pump(group.nodes)
    batch = group.propose(T0 + 10)
    group.commit(batch)  # alice's node dies before the list goes to the members
    group.verify_all(T0 + 11)
    assert bob.agent.groups.anchors.checks() == []  # bob waits for a list he never gets
    assert group.show(bob)["anchored"] == 0
    assert _resend(group, T0 + 12, restarted=True) == ["sent"]
    group.verify_all(T0 + 13)
    _anchored_everywhere(group, ["one"])
    assert _resend(group, T0 + 99, restarted=True) == []  # sent once
    before = group.show(bob)
    alice.agent.groups.anchors.publish(batch.to_bytes(), now=T0 + 100)  # sent twice anyway
    pump(group.nodes)
    assert group.show(bob) == before


def test_a_list_whose_range_someone_else_took_is_dropped_and_rebatched() -> None:
    group = Group()
    alice, bob, _ = group.nodes
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    pump(group.nodes)
    lost = group.propose(T0 + 10)  # crash; meanwhile the channel moves on without it
    body = {"channel": lost.channel, "first": 0, "last": 4, "root": bytes(32)}
    assert group.chain.send(alice.identity.signing_key, "commit_order", body) == 0
    assert _resend(group, T0 + 12, restarted=True) == []  # the chain has a record at 0
    group.verify_all(T0 + 13)  # not our list: dropped, no evidence against ourselves
    assert group.show(alice)["equivocations"] == []
    assert group.show(alice)["unverified"] == 0
    batch = group.propose(T0 + 20)  # its message goes into the next range
    assert batch.first == 5
    group.commit(batch)
    alice.agent.groups.anchors.publish(batch.to_bytes(), now=T0 + 20)
    pump(group.nodes)
    group.verify_all(T0 + 21)
    assert [r["anchored"] for r in bob.agent.groups.history(group.gid)] == [5]


# -- another admin's list that never reaches the chain -------------------------------------


def test_a_hostile_admins_uncommitted_list_delays_the_anchor_only_for_the_grace() -> None:
    group = Group()
    alice, bob, carol = group.nodes
    gid = bytes.fromhex(group.gid)
    alice.agent.groups._change(group.gid, "role", [bytes(bob.identity.identity_id), 1], now=T0)
    pump(group.nodes)
    bob_id = bytes(bob.identity.identity_id)
    alice.agent.groups.anchors.granted(gid, bob_id)  # the channel's admin role, on the chain
    bob.agent.groups.send_text(group.gid, "one", now=T0)
    carol.agent.groups.send_text(group.gid, "two", now=T0)
    pump(group.nodes)
    [job] = alice.agent.groups.anchors.jobs(T0 + 10, count=64, interval=5.0)
    forged = OrderBatch(gid, job.channel, 0, job.entries, bob_id).signed(bob.identity.signing_key)
    groups = bob.agent.groups  # bob's modified client: signs the next range, never commits it
    to = [alice.card, carol.card]
    groups._send("group.ord", forged.to_bytes(), to, now=T0 + 10, copies=False)
    pump(group.nodes)
    group.verify_all(T0 + 11)  # not on the chain: it waits
    anchors = alice.agent.groups.anchors
    assert group.show(alice)["unverified"] == 1
    assert anchors.jobs(T0 + 15, count=1, interval=5.0) == []  # within the grace (15 s)
    batch = group.propose(T0 + 16)  # it arrived at T0 + 1: alice now sequences past it
    assert batch.first == 0
    group.commit(batch)
    anchors.publish(batch.to_bytes(), now=T0 + 16)
    pump(group.nodes)
    group.verify_all(T0 + 17)
    group.verify_all(T0 + 18)  # bob's list as the others' evidence: checked once, then known
    for node in group.nodes:
        rows = node.agent.groups.history(group.gid)
        assert {r["anchored"] for r in rows} == {0, 1}, node.card.name
        assert group.show(node)["unverified"] == 0, node.card.name
    for node in (alice, carol):  # who got bob's list holds it against him, beside the chain's
        [found] = group.show(node)["equivocations"]
        assert found["accused"] == str(bob.identity.identity_id)
        assert found["chain"]["root"] == batch.root().hex()
