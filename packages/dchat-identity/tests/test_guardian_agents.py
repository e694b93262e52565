"""The guardian and recovery agents, driven together without any I/O.

Alice has 2-of-3 guardians; her new node recovers her identity through them.
Each "node" here is an identity, a card, the blobs its agents stored and the
document chains it follows; :func:`deliver` plays the mail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import DchatError, IdentityId
from dchat_identity import (
    ContactCard,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    RecoveryVeto,
)
from dchat_identity.lowlevel import (
    GUARDIAN_KINDS,
    GUARDIAN_STATE,
    KIND_ALERT,
    KIND_APPROVAL,
    KIND_INFO,
    KIND_LOOKUP,
    KIND_REQUEST,
    KIND_SHARE,
    KIND_VETO,
    RECOVERY_STATE,
    ApprovalMessage,
    GuardianAgent,
    InvalidShareError,
    LookupMessage,
    NotEnoughApprovalsError,
    Outgoing,
    RecoveryAgent,
    RecoveryLockTooShortError,
    RecoveryStateError,
    ReplayedRecoveryError,
    RequestMessage,
    ShareMessage,
    ShareRelease,
    TimeLockedError,
    UnexpectedRecoveryError,
    VetoedError,
    VetoMessage,
    decode_map,
    encode_map,
    follow,
)

from .conftest import SeededRng

NOW = 1_800_000_000.0
LOCK = 60.0


@dataclasses.dataclass
class Node:
    identity: Identity
    card: ContactCard
    blobs: dict[str, bytes] = dataclasses.field(default_factory=dict)
    chains: dict[IdentityId, DocumentChain] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, name: str) -> Node:
        identity = Identity.generate(SeededRng(name.encode()))
        return cls(identity, ContactCard.issue(identity, name=name, relay="127.0.0.1:1"))

    @property
    def id(self) -> IdentityId:
        return self.identity.identity_id

    def guardian(self, *, min_lock: float = 0.0) -> GuardianAgent:
        agent = GuardianAgent(self.blobs, min_lock=min_lock)
        for chain in self.chains.values():
            agent.believe(chain)
        return agent

    def recovery(self) -> RecoveryAgent:
        return RecoveryAgent(self.blobs.get(RECOVERY_STATE))

    def save(self, agent: GuardianAgent | RecoveryAgent) -> None:
        self.blobs.update(agent.changes())


@dataclasses.dataclass
class World:
    alice: Node
    guardians: list[Node]
    new: Node
    v2: IdentityDocument


def deliver(outgoing: list[Outgoing], kind: str, to: Node) -> bytes:
    """The one payload of ``kind`` addressed to ``to``."""
    (data,) = [o.data for o in outgoing if o.kind == kind and o.card.identity_id == to.id]
    return data


def setup_world() -> World:
    alice, new = Node.make("alice"), Node.make("alice-new")
    guardians = [Node.make(f"g{i}") for i in range(3)]
    agent = alice.guardian()
    named = [(f"g{i}", g.card) for i, g in enumerate(guardians)]
    gset, shares = agent.setup(alice.card, alice.id, named, 2, rng=SeededRng(b"secret"))
    alice.save(agent)
    key = alice.identity.signing_key
    v1 = IdentityDocument.genesis(key, alice.identity.encryption_key.public_key, now=NOW)
    v2 = v1.successor(key, now=NOW + 1, guardians=gset.set_hash)
    assert [o.kind for o in shares] == [KIND_SHARE] * 3
    for g in guardians:
        g.chains[alice.id] = follow(None, v1, card=None, now=NOW).chain
        g.chains[alice.id].update(v2)
        agent = g.guardian()
        agent.share_received(
            g.identity, alice.id, ShareMessage.from_bytes(deliver(shares, KIND_SHARE, g))
        )
        g.save(agent)
    return World(alice, guardians, new, v2)


def request_recovery(world: World, *, now: float = NOW + 10) -> tuple[str, list[Outgoing]]:
    """The new node asks; guardians answer and record the request; its id and the alerts."""
    new, g0 = world.new, world.guardians[0]
    agent = new.recovery()
    lookups = agent.start(world.alice.id, [g.card for g in world.guardians], new.card, lock=LOCK)
    new.save(agent)
    assert new.recovery().status(now=now)["state"] == "waiting_for_guardians"
    lookup = LookupMessage.from_bytes(deliver(lookups, KIND_LOOKUP, g0))
    info = g0.guardian().lookup_received(new.id, lookup)
    assert info.kind == KIND_INFO
    agent = new.recovery()
    requests = agent.info_received(new.identity, g0.id, info.data, new.card, now=now)
    new.save(agent)
    assert not new.recovery().info_received(new.identity, g0.id, info.data, new.card, now=now)
    alerts = []
    for g in world.guardians:
        agent = g.guardian()
        incoming = RequestMessage.from_bytes(deliver(requests, KIND_REQUEST, g))
        alerts.append(agent.request_received(new.id, incoming, now=now))
        g.save(agent)
    assert {(a.kind, a.card.identity_id) for a in alerts} == {(KIND_ALERT, world.alice.id)}
    request_id: str = new.recovery().status(now=now)["request_id"]
    return request_id, alerts


def alert_owner(world: World, alerts: list[Outgoing]) -> None:
    alice = world.alice
    agent = alice.guardian()
    for alert, g in zip(alerts, world.guardians, strict=True):
        agent.alert_received(alice.identity, alice.id, g.id, RequestMessage.from_bytes(alert.data))
    alice.save(agent)


def approve(world: World, index: int, request_id: str, *, now: float = NOW + 20) -> bytes:
    g = world.guardians[index]
    agent = g.guardian()
    report, answer = agent.approve(g.identity, request_id, now=now)
    g.save(agent)
    assert (report["status"], answer.kind) == ("approved", KIND_APPROVAL)
    return answer.data


def receive_approval(world: World, index: int, data: bytes, *, now: float = NOW + 21) -> int:
    new, g = world.new, world.guardians[index]
    agent = new.recovery()
    count = agent.approval_received(new.identity, g.id, data, now=now)
    new.save(agent)
    return count


def test_two_of_three_guardians_give_the_identity_back() -> None:
    world = setup_world()
    assert world.alice.guardian().describe()["threshold"] == 2
    assert [row["position"] for g in world.guardians for row in g.guardian().held()] == [0, 1, 2]
    request_id, _ = request_recovery(world)
    assert world.new.recovery().status(now=NOW + 11)["state"] == "time_locked"
    assert receive_approval(world, 0, approve(world, 0, request_id)) == 1
    assert receive_approval(world, 2, approve(world, 2, request_id)) == 2
    assert world.new.recovery().status(now=NOW + 10 + LOCK)["state"] == "ready"

    agent = world.new.recovery()
    chain = agent.finish(world.new.identity, now=NOW + 10 + LOCK)
    world.new.save(agent)
    assert world.new.recovery().status(now=NOW + 100)["state"] == "done"
    head = chain.head
    assert (head.subject, head.seq, head.identity_key) == (
        world.alice.id, 3, world.new.identity.signing_key.public_key,
    )  # fmt: skip
    # A contact following v2 accepts the rotation, given the new card; not without it.
    contact = follow(None, world.v2, card=None, now=NOW)
    with pytest.raises(DchatError):
        follow(contact.chain, head, card=None, now=NOW + 100)
    followed = follow(contact.chain, head, card=world.new.card, now=NOW + 100)
    assert followed.rotated_from == world.v2
    # The guardians drop the share that no longer protects anything.
    g0 = world.guardians[0].guardian()
    assert g0.forget(world.alice.id)
    assert not g0.held()
    assert not g0.forget(world.alice.id)


def test_one_approval_is_not_enough_even_after_the_lock() -> None:
    world = setup_world()
    request_id, _ = request_recovery(world)
    receive_approval(world, 1, approve(world, 1, request_id))
    assert world.new.recovery().status(now=NOW + 10 + LOCK)["state"] == "approving"
    with pytest.raises(NotEnoughApprovalsError):
        world.new.recovery().finish(world.new.identity, now=NOW + 10 + LOCK)


def test_finishing_before_the_time_lock_ends_is_refused() -> None:
    world = setup_world()
    request_id, _ = request_recovery(world)
    for index in (0, 1):
        receive_approval(world, index, approve(world, index, request_id))
    with pytest.raises(TimeLockedError):
        world.new.recovery().finish(world.new.identity, now=NOW + 10 + LOCK - 1)


def test_the_old_owner_vetoes_and_everyone_stops() -> None:
    world = setup_world()
    request_id, alerts = request_recovery(world)
    alice, g0 = world.alice, world.guardians[0]
    alert = RequestMessage.from_bytes(alerts[0].data)
    agent = alice.guardian()
    assert agent.alert_received(alice.identity, alice.id, g0.id, alert)
    assert not agent.alert_received(alice.identity, alice.id, g0.id, alert)  # forwarded twice
    alice.save(agent)
    assert alice.guardian().describe()["alerts"][0]["request_id"] == request_id
    with pytest.raises(UnexpectedRecoveryError):  # alerts come from guardians only
        alice.guardian().alert_received(alice.identity, alice.id, world.new.id, alert)

    agent = alice.guardian()
    report, vetoes = agent.veto(alice.identity, request_id, now=NOW + 30)
    alice.save(agent)
    assert report["status"] == "vetoed"
    assert {o.card.identity_id for o in vetoes} == {g.id for g in world.guardians} | {world.new.id}
    veto = VetoMessage.from_bytes(vetoes[0].data).veto
    with pytest.raises(TimeLockedError):  # too late once the lock has ended
        alice.guardian().veto(alice.identity, request_id, now=NOW + 10 + LOCK)

    agent = world.new.recovery()
    assert agent.veto_received(veto, now=NOW + 31)
    world.new.save(agent)
    assert world.new.recovery().status(now=NOW + 100)["state"] == "vetoed"
    with pytest.raises(VetoedError):
        world.new.recovery().finish(world.new.identity, now=NOW + 10 + LOCK)
    for g in world.guardians:
        agent = g.guardian()
        assert agent.veto_received(veto, now=NOW + 31)
        g.save(agent)
        assert g.guardian().requests()[0]["status"] == "vetoed"
        with pytest.raises(VetoedError):
            g.guardian().approve(g.identity, request_id, now=NOW + 40)


def test_a_veto_that_arrives_before_its_request_still_counts() -> None:
    world = setup_world()
    request_id, alerts = request_recovery(world)
    request = RequestMessage.from_bytes(alerts[0].data)
    alert_owner(world, alerts)
    _, vetoes = world.alice.guardian().veto(world.alice.identity, request_id, now=NOW + 11)
    veto = VetoMessage.from_bytes(vetoes[0].data).veto
    late = Node.make("g-late")  # a guardian whose copy of the request is still in the mail
    late.identity, late.card = world.guardians[1].identity, world.guardians[1].card
    late.chains = world.guardians[1].chains
    late.blobs = {k: v for k, v in world.guardians[1].blobs.items() if k != "guardian.requests"}
    agent = late.guardian()
    assert not agent.veto_received(veto, now=NOW + 12)  # kept for later
    late.save(agent)
    agent = late.guardian()
    agent.request_received(world.new.id, request, now=NOW + 13)
    late.save(agent)
    assert late.guardian().requests()[0]["status"] == "vetoed"


def test_a_veto_for_nobody_is_refused() -> None:
    veto = _a_veto()
    with pytest.raises(UnexpectedRecoveryError):
        Node.make("stranger").guardian().veto_received(veto, now=NOW + 12)
    assert not Node.make("stranger").recovery().veto_received(veto, now=NOW + 12)


def test_forged_and_replayed_approvals_change_nothing() -> None:
    world = setup_world()
    request_id, _ = request_recovery(world)
    good = approve(world, 0, request_id)
    new = world.new
    with pytest.raises(ForgedRecordError):  # guardian 0's approval, sent by guardian 1
        new.recovery().approval_received(new.identity, world.guardians[1].id, good, now=NOW + 21)
    answer = ApprovalMessage.from_bytes(good)
    wrong = ShareRelease(
        answer.release.index, answer.release.sealed[:-1] + bytes([answer.release.sealed[-1] ^ 1])
    )
    with pytest.raises(InvalidShareError):  # a genuine approval with a tampered share
        receive_approval(world, 0, ApprovalMessage(answer.approval, wrong).to_bytes())
    assert new.recovery().status(now=NOW + 22)["approvals"] == 0
    assert receive_approval(world, 0, good) == 1
    with pytest.raises(ReplayedRecoveryError):
        receive_approval(world, 0, good)
    assert new.recovery().status(now=NOW + 22)["approvals"] == 1
    with pytest.raises(RecoveryStateError) as again:
        world.guardians[0].guardian().approve(world.guardians[0].identity, request_id, now=NOW)
    assert again.value.code == "already_approved"


def test_shares_come_only_from_the_identity_they_protect() -> None:
    world = setup_world()
    g0, g1 = world.guardians[0], world.guardians[1]
    stored = g0.guardian().held()
    share_blob = ShareMessage(_held_share(g0), world.alice.card)
    with pytest.raises(UnexpectedRecoveryError):  # sent by someone else
        g0.guardian().share_received(g0.identity, g1.id, share_blob)
    with pytest.raises(UnexpectedRecoveryError):  # someone else's share
        g1.guardian().share_received(g1.identity, world.alice.id, share_blob)
    tampered = dataclasses.replace(share_blob.share, sealed=bytes(len(share_blob.share.sealed)))
    with pytest.raises(InvalidShareError):
        g0.guardian().share_received(
            g0.identity, world.alice.id, ShareMessage(tampered, world.alice.card)
        )
    assert g0.guardian().held() == stored


def _held_share(node: Node):  # type: ignore[no-untyped-def]
    from dchat_core import DecodeLimits, canonical_decode
    from dchat_identity.lowlevel import GuardianShare

    held = canonical_decode(node.blobs["guardian.held"], DecodeLimits(max_size=1 << 20))
    (entry,) = held.values()
    return GuardianShare.from_bytes(entry[0])


def test_guardians_refuse_replayed_stale_and_hasty_requests() -> None:
    world = setup_world()
    request_id, alerts = request_recovery(world)
    g0, new = world.guardians[0], world.new
    request = RequestMessage.from_bytes(alerts[0].data)
    with pytest.raises(ReplayedRecoveryError):
        g0.guardian().request_received(new.id, request, now=NOW + 12)
    fresh = Node.make("g-fresh")
    fresh.identity, fresh.chains = g0.identity, g0.chains
    fresh.blobs = {k: v for k, v in g0.blobs.items() if k != "guardian.requests"}
    with pytest.raises(UnexpectedRecoveryError):  # the card is not its sender's
        fresh.guardian().request_received(world.alice.id, request, now=NOW + 12)
    with pytest.raises(RecoveryLockTooShortError):
        fresh.guardian(min_lock=LOCK + 1).request_received(new.id, request, now=NOW + 12)
    with pytest.raises(UnexpectedRecoveryError):  # expired
        fresh.guardian().request_received(new.id, request, now=NOW + 40 * 86400)
    # Alice publishes a newer version: the request no longer names the one followed.
    v3 = world.v2.successor(world.alice.identity.signing_key, now=NOW + 11)
    g0.chains[world.alice.id].update(v3)
    with pytest.raises(UnexpectedRecoveryError):
        fresh.guardian().request_received(new.id, request, now=NOW + 12)
    with pytest.raises(RecoveryStateError) as stale:
        g0.guardian().approve(g0.identity, request_id, now=NOW + 20)
    assert stale.value.code == "stale_request"


def test_caller_mistakes_carry_the_api_codes() -> None:
    world = setup_world()
    request_id, _ = request_recovery(world)
    g0, new = world.guardians[0], world.new
    with pytest.raises(RecoveryStateError) as missing:
        g0.guardian().approve(g0.identity, "00" * 32, now=NOW)
    assert missing.value.code == "not_found"
    with pytest.raises(RecoveryStateError) as bad_id:
        world.alice.guardian().veto(world.alice.identity, "zz", now=NOW)
    assert bad_id.value.code == "not_found"
    with pytest.raises(RecoveryStateError) as busy:
        new.recovery().check_start(3, lock=LOCK)
    assert busy.value.code == "recovery_in_progress"
    with pytest.raises(RecoveryStateError) as few:
        Node.make("x").recovery().check_start(1, lock=LOCK)
    assert few.value.code == "invalid_recovery"
    with pytest.raises(RecoveryStateError) as none:
        Node.make("x").recovery().finish(new.identity, now=NOW)
    assert none.value.code == "no_recovery"
    assert Node.make("x").recovery().status(now=NOW) == {"state": "none"}
    assert request_id


def _reads(node: Node, key: str) -> None:
    if key == RECOVERY_STATE:
        node.recovery().status(now=NOW)
    elif key == "guardian.held":
        node.guardian().held()
    elif key == "guardian.requests":
        node.guardian().requests()
    elif key == "guardian.vetoes":
        node.guardian().veto_received(_a_veto(), now=NOW)
    else:
        node.guardian().describe()


@functools.cache
def _a_veto() -> RecoveryVeto:
    world = setup_world()
    request_id, alerts = request_recovery(world)
    alert_owner(world, alerts)
    _, vetoes = world.alice.guardian().veto(world.alice.identity, request_id, now=NOW + 11)
    return VetoMessage.from_bytes(vetoes[0].data).veto


@pytest.mark.parametrize("key", [*GUARDIAN_STATE, RECOVERY_STATE])
def test_corrupt_stored_state_is_reported_not_replaced(key: str) -> None:
    node = Node.make("corrupt")
    node.blobs["guardian.held"] = encode_map({b"\x01": [b"x"]})  # makes us somebody's guardian
    node.blobs[key] = b"\xa1\x61x\x01"  # {"x": 1}: neither hex keys nor lists
    with pytest.raises(RecoveryStateError) as corrupt:
        _reads(node, key)
    assert corrupt.value.code == "corrupt_state"


@functools.cache
def _recovering() -> tuple[Node, Node, Node]:
    """A node waiting for guardian info, one with a request out, and a guardian."""
    world = setup_world()
    waiting = Node.make("waiting")
    agent = waiting.recovery()
    agent.start(world.alice.id, [g.card for g in world.guardians], waiting.card, lock=LOCK)
    waiting.save(agent)
    request_recovery(world)
    return waiting, world.new, world.guardians[0]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_hostile_payloads_give_typed_errors_and_change_nothing(data: bytes, info: bool) -> None:
    waiting, active, guardian = _recovering()
    node = waiting if info else active
    agent = node.recovery()
    if info:
        with pytest.raises(DchatError):
            agent.info_received(node.identity, guardian.id, data, node.card, now=NOW + 20)
    else:
        with pytest.raises(DchatError):
            agent.approval_received(node.identity, guardian.id, data, now=NOW + 20)
    assert not agent.changes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([*GUARDIAN_STATE, RECOVERY_STATE]))
def test_random_stored_blobs_give_a_typed_error_or_a_state(blob: bytes, key: str) -> None:
    node = Node.make("random")
    node.blobs["guardian.held"] = encode_map({})
    node.blobs[key] = blob
    with contextlib.suppress(DchatError):
        _reads(node, key)


def test_stored_maps_round_trip() -> None:
    value = {b"\x00" * 32: [b"bytes", "text", 7], b"": []}
    assert decode_map(encode_map(value), "test") == value
    assert decode_map(None, "test") == {}


@functools.cache
def recovered() -> tuple[IdentityDocument, IdentityDocument, ContactCard]:
    """Alice's v2, the v3 her new node signed after recovering, and the new card."""
    world = setup_world()
    request_id, _ = request_recovery(world)
    for index in (0, 1):
        receive_approval(world, index, approve(world, index, request_id))
    chain = world.new.recovery().finish(world.new.identity, now=NOW + 10 + LOCK)
    return world.v2, chain.head, world.new.card


def test_refusals_are_peer_errors_and_state_errors_are_the_callers() -> None:
    from dchat_core import CallerError, PeerError
    from dchat_identity import RecoveryError

    for refusal in (ReplayedRecoveryError, UnexpectedRecoveryError, RecoveryLockTooShortError):
        assert issubclass(refusal, RecoveryError)
        assert issubclass(refusal, PeerError)
    assert issubclass(RecoveryStateError, CallerError)
    assert RecoveryStateError("not_found", "x").code == "not_found"


def test_received_guardian_messages_are_one_step_by_kind() -> None:
    world = setup_world()
    alice, new, g0, g1 = world.alice, world.new, *world.guardians[:2]
    lookup = LookupMessage(alice.id, new.card).to_bytes()
    agent = g0.guardian()
    assert agent.needs(KIND_LOOKUP, lookup) == [alice.id]
    step = agent.receive(KIND_LOOKUP, g0.identity, new.id, lookup, now=NOW + 10)
    assert [(o.kind, o.card.identity_id) for o in step.outgoing] == [(KIND_INFO, new.id)]
    assert step.note is None
    assert not agent.changes()

    request_id, alerts = request_recovery(world)
    agent = alice.guardian()
    assert agent.needs(KIND_ALERT, alerts[0].data) == []
    step = agent.receive(KIND_ALERT, alice.identity, g0.id, alerts[0].data, now=NOW + 11)
    assert step.warn
    assert step.note
    assert not step.outgoing
    alice.save(agent)
    step = alice.guardian().receive(KIND_ALERT, alice.identity, g1.id, alerts[1].data, now=NOW)
    assert step.note is None  # every guardian forwards the same request: nothing new
    _, vetoes = alice.guardian().veto(alice.identity, request_id, now=NOW + 12)

    veto = deliver(vetoes, KIND_VETO, g1)
    agent = g1.guardian()
    assert agent.needs(KIND_VETO, veto) == [alice.id]  # the owners of the shares it holds
    agent.believe(None)  # a chain the caller does not follow: nothing to believe
    for subject in agent.needs(KIND_VETO, veto):
        agent.believe(g1.chains[subject])
    step = agent.receive(KIND_VETO, g1.identity, alice.id, veto, now=NOW + 13)
    assert step.warn
    assert step.note
    g1.save(agent)
    assert g1.guardian().requests()[0]["status"] == "vetoed"


def test_an_alert_without_a_guardian_set_and_unknown_kinds_are_refused() -> None:
    world = setup_world()
    _, alerts = request_recovery(world)
    g0, g1 = world.guardians[:2]
    agent = g0.guardian()  # a guardian, but nobody's owner
    with pytest.raises(UnexpectedRecoveryError):
        agent.receive(KIND_ALERT, g0.identity, g1.id, alerts[0].data, now=NOW + 11)
    for call in (
        lambda: agent.needs("guardian.nonsense", b""),
        lambda: agent.receive(KIND_INFO, g0.identity, g1.id, b"", now=NOW),
    ):
        with pytest.raises(UnexpectedRecoveryError):
            call()
    assert not agent.changes()


@functools.cache
def _guardian_world() -> World:
    world = setup_world()
    request_recovery(world)
    return world


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(GUARDIAN_KINDS), st.booleans())
def test_hostile_guardian_messages_give_typed_errors_and_change_nothing(
    data: bytes, kind: str, owner: bool
) -> None:
    world = _guardian_world()
    node = world.alice if owner else world.guardians[0]
    agent = node.guardian()
    with pytest.raises(DchatError):  # a decode or record error, never anything untyped
        agent.needs(kind, data)
    with pytest.raises(DchatError):
        agent.receive(kind, node.identity, world.new.id, data, now=NOW + 20)
    assert not agent.changes()
