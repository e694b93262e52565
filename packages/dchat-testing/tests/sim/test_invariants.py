"""The checkers flag what they must, on hand-made observations."""

from __future__ import annotations

from dchat_testing.sim import (
    ConversationOrder,
    ExactlyOnceDelivery,
    Ledger,
    NoAcknowledgedLoss,
    Observation,
    RelaysHoldNoPlaintext,
    SentMessage,
    Simulation,
    UserNode,
)
from dchat_testing.sim._user import text_digest

TEXT = "dchat-sim-plaintext hello there"
SENT = SentMessage("user-0", "dcid1sender", "user-1", TEXT)


def deliver(node: str = "user-1", sender: str = "dcid1sender", text: str = TEXT) -> Observation:
    data: dict[str, str | int | float | bytes] = {
        "mid": "aa", "sender": sender, "text": text_digest(text)
    }  # fmt: skip
    return Observation(1.0, node, "deliver", data)


def ledger_with_one() -> Ledger:
    ledger = Ledger()
    ledger.record_sent("aa", SENT)
    return ledger


def test_exactly_once_accepts_one_delivery_and_flags_a_second() -> None:
    check = ExactlyOnceDelivery(ledger_with_one())
    assert list(check.observe(deliver())) == []
    [violation] = check.observe(deliver())
    assert "2 times" in violation.detail


def test_exactly_once_flags_unknown_misrouted_and_altered_messages() -> None:
    check = ExactlyOnceDelivery(Ledger())
    assert "nobody sent" in next(iter(check.observe(deliver()))).detail
    for bad in (deliver(node="user-2"), deliver(sender="dcid1other"), deliver(text="changed")):
        assert len(list(ExactlyOnceDelivery(ledger_with_one()).observe(bad))) == 1


def test_loss_checker_separates_acknowledged_from_never_stored() -> None:
    ledger = ledger_with_one()
    ledger.record_sent("bb", SENT)
    check = ExactlyOnceDelivery(ledger)
    check.observe(Observation(0.5, "user-0", "stored_seen", {"mid": "aa"}))
    found = list(NoAcknowledgedLoss(ledger).finish(Simulation(1)))
    assert sorted(v.invariant for v in found) == [
        "every message delivered after healing",
        "no acknowledged message lost",
    ]
    check.observe(deliver())
    assert len(list(NoAcknowledgedLoss(ledger).finish(Simulation(1)))) == 1
    assert ledger.settled() is False


def test_plaintext_checker_scans_relay_inputs() -> None:
    check = RelaysHoldNoPlaintext(ledger_with_one(), [])
    clean = Observation(1.0, "relay-0", "relay_input", {"payload": b"\x00opaque"})
    leaky = Observation(1.0, "relay-0", "relay_input", {"payload": b"..." + TEXT.encode()})
    assert list(check.observe(clean)) == []
    assert len(list(check.observe(leaky))) == 1


def test_a_sender_that_forgets_to_seal_is_caught_end_to_end() -> None:
    from dchat_messaging import SealedEnvelope
    from dchat_testing.sim import WorldSpec, build_world

    sim = Simulation(1, label="leak")
    world = build_world(sim, WorldSpec())
    alice, bob = world.users[0], world.users[1]
    sim.run(0.1)
    # A shell bug: an unsealed envelope in the outbox, next to the real message.
    unsealed = SealedEnvelope(bob.card.mailbox, TEXT.encode()).to_bytes()
    alice.durable.store.enqueue(
        b"\x01" * 16, bob.card.relay, bytes(bob.card.mailbox), unsealed, 0.0
    )
    world.send(alice, bob, TEXT)
    sim.run(10.0)
    assert [v.invariant for v in sim.violations] == ["relays hold no plaintext"]


class FakeInbox:
    """What an app shows, made by hand."""

    def __init__(self, name: str, shown: dict[str, list[str]], missing: int = 0) -> None:
        self.name = name
        self._shown = shown
        self._missing = missing

    def shown(self, peer: str) -> list[str]:
        return self._shown.get(peer, [])

    def missing(self, peer: str) -> int:
        return self._missing


def ledger_of_three() -> Ledger:
    ledger = Ledger()
    for mid in ("m1", "m2", "m3"):
        ledger.record_sent(mid, SENT)
        ledger.record_delivered(mid)
    return ledger


def test_conversation_order_accepts_the_sent_order_among_other_messages() -> None:
    inbox = FakeInbox("user-1", {"dcid1sender": ["m1", "mine", "m2", "m3"]})
    assert list(ConversationOrder(ledger_of_three(), [inbox]).finish(Simulation(1))) == []


def test_conversation_order_flags_overtaking_and_gaps_left_at_the_end() -> None:
    swapped = FakeInbox("user-1", {"dcid1sender": ["m1", "m3", "m2"]})
    [violation] = ConversationOrder(ledger_of_three(), [swapped]).finish(Simulation(1))
    assert "m3 in the place of m2" in violation.detail
    hidden = FakeInbox("user-1", {"dcid1sender": ["m1", "m2"]})
    [violation] = ConversationOrder(ledger_of_three(), [hidden]).finish(Simulation(1))
    assert "nothing in the place of m3" in violation.detail
    gap = FakeInbox("user-1", {"dcid1sender": ["m1", "m2", "m3"]}, missing=1)
    [violation] = ConversationOrder(ledger_of_three(), [gap]).finish(Simulation(1))
    assert "1 texts from dcid1sender missing" in violation.detail


def test_conversation_order_leaves_a_conversation_with_a_loss_to_the_loss_checker() -> None:
    ledger = ledger_of_three()
    ledger.record_sent("m4", SENT)  # never delivered
    inbox = FakeInbox("user-1", {"dcid1sender": ["m3", "m1"]})
    assert list(ConversationOrder(ledger, [inbox]).finish(Simulation(1))) == []


def test_exactly_once_flags_a_message_shown_twice_at_the_end() -> None:
    ledger = ledger_of_three()
    fine = FakeInbox("user-1", {"dcid1sender": ["m1", "m2", "m3"]})
    assert list(ExactlyOnceDelivery(ledger, [fine]).finish(Simulation(1))) == []
    twice = FakeInbox("user-1", {"dcid1sender": ["m1", "m2", "m2", "m3"]})
    [violation] = ExactlyOnceDelivery(ledger, [twice]).finish(Simulation(1))
    assert "m2 from dcid1sender more than once" in violation.detail


def test_the_users_listings_are_what_the_order_checker_reads() -> None:
    """Not vacuous: every conversation of a faulty run is listed whole, in the order sent."""
    from dchat_testing.sim import SCENARIOS, ScenarioOptions

    sim = Simulation(2, label="push-link-loss")
    scenario = SCENARIOS["push-link-loss"]
    plan = scenario.build(sim, ScenarioOptions(), scenario.default_duration)
    sim.run(scenario.default_duration)
    sim.heal()
    sim.run(scenario.default_duration + 200.0)
    assert sim.violations == []
    assert plan.ledger is not None
    users = [node for node in sim.nodes.values() if isinstance(node, UserNode)]
    conversations = 0
    for user in users:
        for peer, sent in plan.ledger.conversations(user.name).items():
            assert [mid for mid in user.shown(peer) if mid in set(sent)] == sent
            assert user.missing(peer) == 0
            conversations += 1
    assert conversations >= 4
