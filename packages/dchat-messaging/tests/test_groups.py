"""Private groups between user agents, driven without a network.

Membership (invite, join, remove, re-add), sender keys (a removed member
cannot open what follows, even given every envelope), permissions enforced by
every member against a modified client, concurrent updates, hostile controls.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging import Content, MessageReceived, RequestError
from dchat_messaging._group_core import KEY_KIND
from dchat_messaging._group_invite import InvitationParts, invitation_controls
from dchat_messaging._group_keys import next_chain as _next_chain
from dchat_messaging._group_store import read_plaintext
from dchat_messaging._sender_keys import _split, _step, decode_keyed
from dchat_messaging.lowlevel import (
    MAX_SKIP,
    MAX_SKIPPED,
    GroupCiphertext,
    GroupError,
    GroupState,
    GroupUpdate,
    SenderChain,
    decode_distribution,
    encode_distribution,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0


def _nodes(*names: str) -> list[AgentNode]:
    bundles: dict[bytes, bytes] = {}
    nodes = [AgentNode(name, bundles) for name in names]
    first = nodes[0]  # the first knows everyone; the others know only the first
    for other in nodes[1:]:
        first.agent.contacts.add(other.card.name, other.card.to_text(), now=T0)
        other.agent.contacts.add(first.card.name, first.card.to_text(), now=T0)
    return nodes


def pump(
    nodes: list[AgentNode], *, keep: dict[bytes, list[bytes]] | None = None
) -> dict[str, list[object]]:
    """Deliver all mail between ``nodes`` until none is left; each node's updates by name.

    ``keep``: also record every envelope by mailbox (what relays would have stored).
    """
    by_box = {bytes(n.card.mailbox): n for n in nodes}
    updates: dict[str, list[object]] = {n.card.name: [] for n in nodes}
    for _ in range(20):
        mail: dict[bytes, list[bytes]] = {}
        for node in nodes:
            for box, envelope in node.outgoing():
                mail.setdefault(box, []).append(envelope)
        if not mail:
            return updates
        for box, envelopes in mail.items():
            if keep is not None:
                keep.setdefault(box, []).extend(envelopes)
            node = by_box.get(box)
            if node is not None:
                accepted = node.agent.accept_many(node.engine, envelopes, now=T0 + 1)
                updates[node.card.name].extend(accepted.updates)
    raise AssertionError("mail kept flowing")


def texts(node: AgentNode, gid: str) -> list[str]:
    return [str(row["text"]) for row in node.agent.groups.history(gid)]


def refusals(node: AgentNode) -> dict[str, int]:
    return dict(node.agent.stats.refusals)


@pytest.fixture
def trio_group() -> tuple[list[AgentNode], str]:
    """alice (admin), bob and carol in one group, every invitation accepted."""
    nodes = _nodes("alice", "bob", "carol")
    return nodes, _group_of(nodes, "team", nodes[1:])


def _group_of(nodes: list[AgentNode], title: str, members: list[AgentNode]) -> str:
    """A group made by ``nodes[0]``, ``members`` invited, each invitation accepted."""
    gid, _ = nodes[0].agent.groups.create(title, now=T0)
    for node in members:
        nodes[0].agent.groups.invite(gid, node.card.name, now=T0)
    pump(nodes)
    for node in members:
        assert node.agent.groups.show(gid)["status"] == "invited"
        node.agent.groups.join(gid, now=T0)
    pump(nodes)
    return gid


def test_members_agree_and_read_each_other(trio_group: tuple[list[AgentNode], str]) -> None:
    (alice, bob, carol), gid = trio_group
    shows = [n.agent.groups.show(gid) for n in (alice, bob, carol)]
    assert len({(s["version"], len(s["members"])) for s in shows}) == 1  # type: ignore[arg-type]
    assert shows[0]["version"] == 3
    assert len(shows[0]["members"]) == 3  # type: ignore[arg-type]
    alice.agent.groups.send_text(gid, "hello all", now=T0)
    bob.agent.groups.send_text(gid, "hi from bob", now=T0)  # bob and carol are not contacts
    updates = pump([alice, bob, carol])
    for node in (alice, bob, carol):
        assert sorted(texts(node, gid)) == ["hello all", "hi from bob"]
    kinds = [u.kind for u in updates["carol"]]  # type: ignore[attr-defined]
    assert kinds.count("group_message") == 2
    logged = [k for k, _, _ in carol.store.events]
    assert "group_message" in logged
    assert "group_update" in logged


def _open_at(node: AgentNode, envelopes: list[bytes]) -> list[bytes]:
    """Open ``envelopes`` with ``node``'s engine and apply them; the group ciphertexts inside.

    A chain rotated by a removal travels with the sender's next message
    (``group.kmsg``: the chain and the ciphertext), which is opened too.
    """
    wires = []
    for envelope in envelopes:
        for event in node.engine.receive(envelope, now=T0 + 2):
            if isinstance(event, MessageReceived) and event.kind in ("group.msg", "group.kmsg"):
                keyed = event.kind == "group.kmsg"
                wires.append(decode_keyed(event.data)[1] if keyed else event.data)
                node.agent.groups.apply(event, now=T0 + 2)
    return wires


def test_a_removed_member_opens_nothing_sent_after(trio_group: tuple[list[AgentNode], str]) -> None:
    (alice, bob, carol), gid = trio_group
    raw = bytes.fromhex(gid)
    alice.agent.groups.send_text(gid, "before", now=T0)
    pump([alice, bob, carol])
    alice_device = (bytes(alice.identity.identity_id), alice.engine.keys.device_id)
    chains = carol.agent.groups.db.chains(raw, alice_device)
    assert chains
    alice.agent.groups.remove(gid, "carol", now=T0)
    pump([alice, bob, carol])
    assert carol.agent.groups.show(gid)["status"] == "left"
    # Her node keeps the old chains while out (a concurrent update may yet undo
    # the removal): they are of the epochs before it, and open nothing after.
    alice.agent.groups.send_text(gid, "after-a", now=T0)
    out = alice.outgoing()
    assert [box for box, _ in out if box in carol.mailboxes()] == []  # none for her
    wires = _open_at(bob, [e for box, e in out if box in bob.mailboxes()])
    assert texts(bob, gid)[-1] == "after-a"
    assert len(wires) == 1
    message = GroupCiphertext.from_bytes(wires[0])
    assert all(c.epoch < message.epoch for c in chains)  # a new epoch after the removal
    for chain in chains:  # even forcing her old chain onto the new epoch's message
        with pytest.raises(GroupError) as caught:
            replace(chain, epoch=message.epoch, skipped={}).decrypt(message)
        assert caught.value.code == "unreadable"
    # And her node, handed the ciphertext as if it came from alice, refuses it.
    forged = MessageReceived(
        Content.control("group.msg", wires[0], now_ms=0), alice.identity.identity_id,
        alice.engine.keys.device_id, True,
    )  # fmt: skip
    assert carol.agent.groups.apply(forged, now=T0 + 3) == []  # kept waiting, unopened
    assert texts(carol, gid) == ["before"]


def test_a_removal_hands_out_new_chains_with_the_next_message(
    trio_group: tuple[list[AgentNode], str],
) -> None:
    """Lazy rotation: applying a removal sends nothing; the member's next message carries
    its new chain in the same envelope (``group.kmsg``), one per remaining member."""
    (alice, bob, carol), gid = trio_group
    raw, box = bytes.fromhex(gid), bytes(bob.card.mailbox)
    bob.agent.groups.send_text(gid, "bob before", now=T0)
    pump([alice, bob, carol])
    old_epoch = bob.agent.groups.db.keys(raw).own.epoch  # type: ignore[union-attr]
    alice.agent.groups.remove(gid, "carol", now=T0)
    mail = alice.outgoing()
    bob.agent.accept_many(bob.engine, [e for b, e in mail if b == box], now=T0 + 1)
    assert bob.agent.groups.show(gid)["version"] == alice.agent.groups.show(gid)["version"]
    assert bob.outgoing() == []  # nothing sent on the removal itself
    assert bob.agent.groups.db.keys(raw).own.epoch == old_epoch + 1  # type: ignore[union-attr]
    bob.agent.groups.send_text(gid, "bob after", now=T0)
    sent = bob.outgoing()
    assert [b for b, _ in sent] == [bytes(alice.card.mailbox)]  # one envelope, none for carol
    carol.agent.accept_many(carol.engine, [e for b, e in mail if b != box], now=T0 + 1)
    alice.agent.accept_many(alice.engine, [e for _, e in sent], now=T0 + 2)
    assert texts(alice, gid)[-1] == "bob after"
    assert "bob after" not in texts(carol, gid)


def _control(node: AgentNode, kind: str, data: bytes) -> MessageReceived:
    """A control as ``node``'s session would have authenticated it."""
    return MessageReceived(
        Content.control(kind, data, now_ms=0), node.identity.identity_id,
        node.engine.keys.device_id, True,
    )  # fmt: skip


def _send_raw(src: AgentNode, kind: str, data: bytes, *to: AgentNode) -> None:
    """What a modified client does: send a control its own node never checked."""
    for node in to:
        content = Content.control(kind, data, now_ms=0)
        src.agent.engines.send(src.engine, node.card, content, now=T0, copies=False)


def test_a_member_joining_reads_from_joining_onward() -> None:
    nodes = _nodes("alice", "bob", "dave")
    alice, bob, dave = nodes
    gid = _group_of(nodes, "club", [bob])
    alice.agent.groups.send_text(gid, "early", now=T0)
    early = [e for box, e in alice.outgoing() if box in bob.mailboxes()]
    early_wire = _open_at(bob, early)[0]
    alice.agent.groups.invite(gid, "dave", now=T0)
    pump(nodes)
    dave.agent.groups.join(gid, now=T0)
    pump(nodes)
    alice.agent.groups.send_text(gid, "late", now=T0)
    pump(nodes)
    assert texts(dave, gid) == ["late"]
    assert texts(bob, gid) == ["early", "late"]
    with pytest.raises(GroupError) as caught:  # the earlier ciphertext, handed to dave
        dave.agent.groups._apply("group.msg", *_sender(alice), early_wire, T0)
    assert caught.value.code == "replay"  # his chain starts after it: no key for it


def _sender(node: AgentNode) -> tuple[bytes, bytes]:
    return bytes(node.identity.identity_id), node.engine.keys.device_id


def test_remove_then_re_add_gives_new_keys(trio_group: tuple[list[AgentNode], str]) -> None:
    (alice, bob, carol), gid = trio_group
    alice.agent.groups.remove(gid, "carol", now=T0)
    pump([alice, bob, carol])
    bob.agent.groups.send_text(gid, "while carol is out", now=T0)
    pump([alice, bob, carol])
    alice.agent.groups.invite(gid, "carol", now=T0)
    pump([alice, bob, carol])
    assert carol.agent.groups.show(gid)["status"] == "invited"
    carol.agent.groups.join(gid, now=T0)
    pump([alice, bob, carol])
    bob.agent.groups.send_text(gid, "welcome back", now=T0)
    carol.agent.groups.send_text(gid, "thanks", now=T0)
    pump([alice, bob, carol])
    assert sorted(texts(carol, gid)) == ["thanks", "welcome back"]
    assert sorted(texts(alice, gid)[-2:]) == ["thanks", "welcome back"]
    assert "while carol is out" not in texts(carol, gid)
    assert refusals(alice) == refusals(bob) == {}


def test_a_modified_client_convinces_no_one(trio_group: tuple[list[AgentNode], str]) -> None:
    (alice, bob, carol), gid = trio_group
    mallory = AgentNode("mallory", alice.bundles)
    state = bob.agent.groups.db.record(bytes.fromhex(gid))
    assert state is not None
    bob.agent.contacts.add("mallory", mallory.card.to_text(), now=T0)
    with pytest.raises(RequestError) as refused:  # bob's own node refuses (members do not add)
        bob.agent.groups.invite(gid, "mallory", now=T0)
    assert refused.value.code == "not_allowed"
    # A modified node signs the add anyway and sends it: alice and carol refuse it.
    forbidden = GroupUpdate.make(
        state.state, _sender(bob)[0], "add", [mallory.card.to_bytes(), 0], bob.identity.signing_key
    )
    _send_raw(bob, "group.upd", forbidden.to_bytes(), alice, carol)
    kick = GroupUpdate.make(
        state.state, _sender(bob)[0], "remove", _sender(alice)[0], bob.identity.signing_key
    )
    _send_raw(bob, "group.upd", kick.to_bytes(), carol)
    pump([alice, bob, carol])
    assert refusals(alice) == {"GroupError.not_allowed": 1}
    assert refusals(carol) == {"GroupError.not_allowed": 2}
    assert [len(n.agent.groups.show(gid)["members"]) for n in (alice, carol)] == [3, 3]  # type: ignore[arg-type]
    # An update signed by another key than its author's is refused too.
    forged = GroupUpdate.make(
        state.state, _sender(alice)[0], "title", "pwned", bob.identity.signing_key
    )
    with pytest.raises(GroupError) as caught:
        carol.agent.groups.apply(_control(bob, "group.upd", forged.to_bytes()), now=T0)
    assert caught.value.code == "bad_signature"


def test_posting_rules_and_outsiders_are_enforced_by_receivers(
    trio_group: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol), gid = trio_group
    alice.agent.groups._change(gid, "settings", {"post": 1}, now=T0)
    pump([alice, bob, carol])
    with pytest.raises(RequestError):
        bob.agent.groups.send_text(gid, "may I?", now=T0)
    # bob's modified node posts anyway: its chain is one every member holds, yet they refuse.
    record = bob.agent.groups.db.record(bytes.fromhex(gid))
    assert record is not None
    record.state = replace(record.state, settings={**record.state.settings, "post": 0})
    bob.agent.groups.db.save(record)
    bob.agent.groups.send_text(gid, "I post anyway", now=T0)
    pump([alice, bob, carol])
    assert texts(alice, gid) == texts(carol, gid) == []
    assert refusals(carol) == {"GroupError.not_allowed": 1}
    # A stranger's group message is refused: dave is no member.
    dave = AgentNode("dave", alice.bundles)
    wire = GroupCiphertext(
        bytes.fromhex(gid),
        _sender(dave)[0],
        _sender(dave)[1],
        0,
        0,
        1,
        bytes(32),
        b"x" * 17,
        bytes(64),
    )
    # It waits, unopened, for an add of dave that may be on its way (see
    # test_a_message_that_overtakes_its_senders_add_waits_for_it).
    before = refusals(alice)
    assert alice.agent.groups.apply(_control(dave, "group.msg", wire.to_bytes()), now=T0) == []
    assert [kind for kind, *_ in alice.agent.groups.db.waiting()] == ["group.msg"]
    assert refusals(alice) == before


def test_concurrent_updates_converge_on_the_lower_hash(
    trio_group: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol), gid = trio_group
    bob_id = _sender(bob)[0]
    alice.agent.groups._change(gid, "role", [bob_id, 1], now=T0)
    pump([alice, bob, carol])
    alice.agent.groups.set_title(gid, "from alice", now=T0)  # both on the same version
    bob.agent.groups.set_title(gid, "from bob", now=T0)
    pump([alice, bob, carol])
    shows = [n.agent.groups.show(gid) for n in (alice, bob, carol)]
    assert len({(s["version"], s["title"]) for s in shows}) == 1
    assert shows[0]["version"] == 6  # the winner at 5, the loser re-based on it at 6
    assert refusals(carol).get("GroupError.stale", 0) <= 1


def test_sender_chain_order_skips_replay_and_forgery() -> None:
    owner = SenderChain.generate(0)
    receiver = owner.shared()
    kw = {"group": b"g" * 32, "sender": b"s" * 32, "device": b"d" * 32, "prev_hash": bytes(32)}
    sent = [owner.encrypt(f"m{i}".encode(), seq=i + 1, **kw) for i in range(5)]  # type: ignore[arg-type]
    assert receiver.decrypt(sent[3]) == b"m3"  # out of order: 0-2 skipped and kept
    assert [receiver.decrypt(m) for m in (sent[0], sent[2], sent[1], sent[4])] == [
        b"m0",
        b"m2",
        b"m1",
        b"m4",
    ]
    for again in (sent[1], sent[4]):
        with pytest.raises(GroupError) as caught:
            receiver.decrypt(again)
        assert caught.value.code == "replay"
    # A member who holds the chain key but not the owner's signing key cannot forge.
    forger = replace(owner.shared(), signing=SenderChain.generate(0).signing)
    forged = forger.encrypt(b"as the owner", seq=6, **kw)  # type: ignore[arg-type]
    with pytest.raises(GroupError) as caught:
        receiver.decrypt(forged)
    assert caught.value.code == "unreadable"
    tampered = replace(sent[0], ciphertext=bytes(len(sent[0].ciphertext)))
    with pytest.raises(GroupError):
        owner.shared().decrypt(tampered)


def test_skipped_keys_are_bounded() -> None:
    owner = SenderChain.generate(0)
    receiver = owner.shared()
    kw = {"group": b"g" * 32, "sender": b"s" * 32, "device": b"d" * 32, "prev_hash": bytes(32)}
    for _ in range(MAX_SKIP):
        owner.encrypt(b"", seq=1, **kw)  # type: ignore[arg-type]
    last = owner.encrypt(b"last", seq=1, **kw)  # type: ignore[arg-type]
    assert receiver.decrypt(last) == b"last"
    assert len(receiver.skipped) == MAX_SKIPPED
    beyond = owner.shared()
    for _ in range(MAX_SKIP + 1):
        owner.encrypt(b"", seq=1, **kw)  # type: ignore[arg-type]
    with pytest.raises(GroupError) as caught:
        beyond.decrypt(owner.encrypt(b"too far", seq=1, **kw))  # type: ignore[arg-type]
    assert caught.value.code == "too_far"


def _read_invitation(data: bytes) -> object:
    return InvitationParts(MemoryMessageStore()).head(bytes(32), data, own=True)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_group_decoders_answer_garbage_with_a_typed_error(data: bytes) -> None:
    for decode in (
        _read_invitation,
        read_plaintext,
        GroupCiphertext.from_bytes,
        GroupUpdate.from_bytes,
        GroupState.from_bytes,
        decode_distribution,
    ):
        with pytest.raises(GroupError):
            decode(data)  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["group.inv", "group.part", "group.upd", "group.key", "group.msg"]),
    st.recursive(
        st.none()
        | st.integers(-(2**63), 2**63 - 1)
        | st.binary(max_size=40)
        | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        ),
        max_leaves=12,
    ),
)
def test_hostile_group_controls_change_nothing(kind: str, value: object) -> None:
    nodes = _HOSTILE
    alice, bob = nodes
    gid = _HOSTILE_GID
    before = alice.agent.groups.show(gid)
    with contextlib.suppress(GroupError):
        alice.agent.groups.apply(_control(bob, kind, canonical_encode(value)), now=T0)
    assert alice.agent.groups.show(gid) == before


_HOSTILE = _nodes("alice", "bob")
_HOSTILE_GID = _HOSTILE[0].agent.groups.create("h", now=T0)[0]


def test_sender_chain_known_answer() -> None:
    """The derivation of docs/protocol.md, section 27, byte for byte."""
    message_key, next_chain = _step(bytes(range(32)))
    assert message_key.hex() == "9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7"
    assert next_chain.hex() == "4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d"
    key, nonce = _split(message_key)
    assert key.hex() == "9c5b2f734c3fb40047274be0274e0a86786d80c7b74323819e277fc8368ac5a0"
    assert nonce.hex() == "eb8b7e5668260bbf9b7f3dc2"


def test_a_forged_invitation_does_not_replace_a_group_we_are_in(
    trio_group: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol), gid = trio_group
    record = bob.agent.groups.db.record(bytes.fromhex(gid))
    assert record is not None
    # bob makes up a state in which he alone is admin, and "invites" carol to it.
    fake = replace(
        record.state,
        version=1000,
        members={
            i: replace(m, role=1 if i == _sender(bob)[0] else 0)
            for i, m in record.state.members.items()
        },
    )
    title = GroupUpdate.make(fake, _sender(bob)[0], "title", "bob's now", bob.identity.signing_key)
    for kind, data in invitation_controls(fake, title):
        _send_raw(bob, kind, data, carol)
    pump([alice, bob, carol])
    shown = carol.agent.groups.show(gid)
    assert (shown["title"], shown["version"]) == ("team", 3)


def test_controls_that_come_before_what_they_need_wait() -> None:
    nodes = _nodes("alice", "bob", "dave")
    alice, bob, dave = nodes
    gid = _group_of(nodes, "early", [bob])
    alice.agent.groups.invite(gid, "dave", now=T0)
    from_alice = alice.outgoing()  # the add for bob; the invitation and alice's key for dave

    def to(node: AgentNode, mail: list[tuple[bytes, bytes]]) -> None:
        mine = [e for box, e in mail if box in node.mailboxes()]
        node.agent.accept_many(node.engine, mine, now=T0 + 1)

    to(bob, from_alice)  # bob applies the add and sends dave his key at once
    to(dave, bob.outgoing())  # bob's key reaches dave before the invitation: it waits
    assert dave.agent.groups.listing() == []
    to(dave, from_alice)  # the invitation: the waiting key is applied
    dave.agent.groups.join(gid, now=T0)
    pump(nodes)
    bob.agent.groups.send_text(gid, "can you read me?", now=T0)
    pump(nodes)
    assert texts(dave, gid) == ["can you read me?"]
    assert refusals(dave) == {}


_VALUES = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=70) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = ["v", "g", "s", "d", "e", "n", "q", "ph", "h", "ct", "sig", "ver", "prev", "by", "op",
         "arg", "t", "m", "st", "up", "ch", "ck", "pk", "mid", "ts", "text", "hd", "sh",
         "mr"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=9))
def test_group_decoders_answer_near_miss_maps_with_a_typed_error(value: dict[str, object]) -> None:
    data, codes = canonical_encode(value), []
    for decode in (
        _read_invitation,
        read_plaintext,
        GroupCiphertext.from_bytes,
        GroupUpdate.from_bytes,
        GroupState.from_bytes,
        decode_distribution,
    ):
        try:  # a map that happens to be valid may decode; anything else is "malformed"
            decode(data)  # type: ignore[operator]
        except GroupError as exc:
            codes.append(exc.code)
    assert set(codes) <= {"malformed"}


def _deliver(nodes: list[AgentNode], mail: list[tuple[bytes, bytes]]) -> None:
    """Hand ``mail`` (mailbox, envelope) to the nodes it is for, in the order given."""
    by_box = {bytes(n.card.mailbox): n for n in nodes}
    for box, envelope in mail:
        node = by_box[box]
        node.agent.accept_many(node.engine, [envelope], now=T0 + 1)


def test_a_message_that_overtakes_its_senders_add_waits_for_it() -> None:
    # Found by the simulator (group-membership): dave, just added, posts; his
    # key and message reach bob before alice's add of dave does (another
    # relay, a partition). Bob refused the message for good (dave was no
    # member yet); now it waits, like the key, and opens once the add arrives.
    nodes = _nodes("alice", "bob", "dave")
    alice, bob, dave = nodes
    gid = _group_of(nodes, "club", [bob])
    alice.agent.groups.invite(gid, "dave", now=T0)
    out = alice.outgoing()
    late = [(box, e) for box, e in out if box in bob.mailboxes()]
    _deliver(nodes, [(box, e) for box, e in out if box != bytes(bob.card.mailbox)])
    pump(nodes)  # the invitation reaches dave, the add is not at bob yet
    dave.agent.groups.join(gid, now=T0)
    dave.agent.groups.send_text(gid, "hello, I am new", now=T0)
    pump(nodes)
    assert "hello, I am new" not in texts(bob, gid)
    _deliver(nodes, late)
    pump(nodes)
    assert texts(bob, gid)[-1] == "hello, I am new"
    assert refusals(bob) == {}


def test_forks_of_several_updates_converge_and_the_losers_are_signed_again() -> None:
    # Found by the simulator (group-membership): two admins, cut off from each
    # other, each make two changes. A node kept one state back, so the side
    # that lost could not go back two versions: the members disagreed for good
    # and the losing admin's changes were lost. Now every node holds the
    # branch with the lowest-hash update at the fork, and re-signs its own
    # updates that fell off it.
    nodes = _nodes("alice", "bob", "carol", "dave")
    alice, bob, carol, dave = nodes
    gid = _group_of(nodes, "crew", [bob, carol, dave])
    alice.agent.groups._change(gid, "role", [_sender(bob)[0], 1], now=T0)
    pump(nodes)
    alice.agent.groups.set_title(gid, "alice one", now=T0)
    alice.agent.groups.remove(gid, "dave", now=T0)
    from_alice = alice.outgoing()
    bob.agent.groups.set_title(gid, "bob one", now=T0)
    bob.agent.groups.remove(gid, str(carol.identity.identity_id), now=T0)
    from_bob = bob.outgoing()
    _deliver(nodes, from_bob + from_alice)
    pump(nodes)
    members = [n for n in nodes if n.agent.groups.show(gid)["status"] != "left"]
    assert [n.card.name for n in members] == ["alice", "bob"]  # both removals held
    shows = [n.agent.groups.show(gid) for n in members]
    assert len({(s["version"], s["title"]) for s in shows}) == 1
    assert shows[0]["version"] == 5 + 2 + 2  # the winning branch, then the loser's two again
    records = [n.agent.groups.db.record(bytes.fromhex(gid)) for n in members]
    assert len({r.state.hash() for r in records if r is not None}) == 1


def test_a_senders_older_key_that_comes_after_two_newer_ones_still_opens_its_message() -> None:
    # Found by the simulator (group-membership, seed 29): a member's
    # distributions of three epochs reached bob out of order, the oldest last;
    # bob kept only the two newest epochs, so the oldest was dropped on arrival
    # and the message of that epoch, waiting for it, was never opened.
    nodes = _nodes("alice", "bob")
    alice, bob = nodes
    gid = _group_of(nodes, "club", [bob])
    g, (me, device) = bytes.fromhex(gid), _sender(alice)
    old = alice.agent.groups.db.keys(g).own
    assert old is not None
    bob.agent.groups.db.save_chains(g, (me, device), [])  # its distribution is late
    alice.agent.groups.send_text(gid, "in the oldest epoch", now=T0)
    message = alice.outgoing()
    newer = _next_chain(old)
    for chain in (newer, _next_chain(newer)):
        bob.agent.groups._apply(KEY_KIND, me, device, encode_distribution(g, device, chain), T0)
    _deliver(nodes, message)
    assert "in the oldest epoch" not in texts(bob, gid)  # it waits for its key
    bob.agent.groups._apply(KEY_KIND, me, device, encode_distribution(g, device, old), T0)
    bob.agent.groups._retry(T0)
    assert texts(bob, gid)[-1] == "in the oldest epoch"


def test_a_leave_that_loses_a_fork_still_opens_what_was_sent_meanwhile(
    trio_group: tuple[list[AgentNode], str],
) -> None:
    # Found by the simulator (group-membership, seed 137): two admins left at
    # once; one leave won, the other could not be signed again (no admin would
    # be left), so that admin stayed a member, but leaving had made it forget
    # the others' chains: carol's message, sent before she knew of either
    # leave, waited for a key that never came again.
    (alice, bob, carol), gid = trio_group
    nodes = [alice, bob, carol]
    alice.agent.groups._change(gid, "role", [_sender(bob)[0], 1], now=T0)
    pump(nodes)
    carol.agent.groups.send_text(gid, "before the fork", now=T0)
    alice.agent.groups.leave(gid, now=T0)
    bob.agent.groups.leave(gid, now=T0)
    pump(nodes)
    stayed = [n for n in (alice, bob) if n.agent.groups.show(gid)["status"] == "active"]
    assert len(stayed) == 1
    assert "before the fork" in texts(stayed[0], gid)
