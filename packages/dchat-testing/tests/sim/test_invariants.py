"""The checkers flag what they must, on hand-made observations."""

from __future__ import annotations

from dchat_testing.sim import (
    ExactlyOnceDelivery,
    Ledger,
    NoAcknowledgedLoss,
    Observation,
    RelaysHoldNoPlaintext,
    SentMessage,
    Simulation,
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
