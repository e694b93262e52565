"""Payments in a conversation between two user agents, without a network or a chain.

The chain's side is what a light client proved (:class:`ProvenPayment` or
nothing, at a state height); the node reads it. Here: a payment verified, a
forged one (no record), a replay, the wrong recipient, payer or amount, a
malformed or oversized body, and a crash between the transfer and the message.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MessageId, canonical_encode
from dchat_messaging import (
    Content,
    ContentError,
    EnvelopeRejectedError,
    Payment,
    PaymentRefusedError,
    ProvenPayment,
    UserMessaging,
)
from dchat_messaging.lowlevel import (
    GIVE_UP_AFTER,
    PaymentEntry,
    PaymentIntent,
    Payments,
    check_payment,
    payment_ref,
)
from dchat_privacy import pad
from dchat_testing import AGENT_T0, AgentNode, agent_pair, deliver_mail

T0 = AGENT_T0
TX = b"\x11" * 32


@pytest.fixture
def pair() -> tuple[AgentNode, AgentNode]:
    return agent_pair()


def intend(alice: AgentNode, amount: int = 25, note: str = "lunch") -> PaymentIntent:
    """What the node does before it submits the transfer: plan the payment, keep the intent."""
    mid = MessageId.random()
    card, payment = alice.agent.converse.plan_payment(
        "bob", amount, note, chain_id="cur", message_id=mid
    )
    intent = PaymentIntent(mid, card.identity_id, replace(payment, tx_hash=TX), b"signed tx")
    alice.agent.payments.intend(intent)
    return intent


def pay(alice: AgentNode, bob: AgentNode, amount: int = 25, height: int = 7) -> PaymentIntent:
    intent = intend(alice, amount)
    alice.agent.converse.send_payment(intent, height, now=T0)
    deliver_mail(alice, bob)
    return intent


def proven(alice: AgentNode, bob: AgentNode, amount: int = 25) -> ProvenPayment:
    return ProvenPayment(
        alice.identity.signing_key.public_key.to_bytes(),
        bob.identity.signing_key.public_key.to_bytes(),
        amount,
    )


def entry(node: AgentNode, mid: MessageId) -> PaymentEntry:
    found = node.agent.payments.get(bytes(mid))
    assert found is not None
    return found


def test_a_payment_is_pending_until_its_proof_then_verified(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    intent = pay(alice, bob)
    mid = intent.message_id
    assert alice.agent.payments.intents() == []  # sent with its message, in one transaction
    assert entry(alice, mid).state == "sent"
    received = entry(bob, mid)
    assert (received.state, received.payment.amount, received.payment.note) == (
        "pending",
        25,
        "lunch",
    )
    assert received.ref == payment_ref(alice.card.identity_id, bob.card.identity_id, mid)
    row = bob.agent.payments.row(bytes(mid))["payment"]
    assert isinstance(row, dict)
    shown = (row["amount"], row["note"], row["state"], row["tx"])
    assert shown == (25, "lunch", "pending", TX.hex())
    # The light client proved the state below the commit height: not decidable yet.
    assert bob.agent.settle_payment(mid, None, 6, now=T0).state == "pending"
    done = bob.agent.settle_payment(mid, proven(alice, bob), 7, now=T0)
    assert (done.state, done.proven_at) == ("verified", 7)
    assert bob.agent.payments.pending() == []
    kinds = [(kind, data["state"]) for kind, data, _ in bob.store.events]
    assert ("payment", "verified") in kinds
    message = bob.store.get_message(bytes(mid))
    assert message is not None
    assert message.body == "lunch"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 24}, "wrong_amount"),
        ({"payee": b"\x01" * 32}, "wrong_recipient"),
        ({"payer": b"\x02" * 32}, "wrong_payer"),
    ],
)
def test_a_proof_of_another_transfer_is_refused(
    pair: tuple[AgentNode, AgentNode], change: dict[str, object], code: str
) -> None:
    alice, bob = pair
    mid = pay(alice, bob).message_id
    with pytest.raises(PaymentRefusedError) as refused:
        bob.agent.settle_payment(mid, replace(proven(alice, bob), **change), 9, now=T0)
    assert refused.value.code == code
    assert (entry(bob, mid).state, entry(bob, mid).code) == ("refused", code)
    assert [n.kind for n in bob.agent.notices.listing()] == ["payment_refused"]
    assert bob.agent.payments.pending() == []


def test_a_forged_payment_without_a_chain_record_is_refused(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    mid = pay(alice, bob, height=7).message_id
    with pytest.raises(PaymentRefusedError) as refused:
        bob.agent.settle_payment(mid, None, 7, now=T0)
    assert refused.value.code == "not_found"
    assert bob.agent.payments.row(bytes(mid))["payment"]["state"] == "refused"  # type: ignore[index]


def test_the_deadline_counts_from_the_first_round_across_restarts(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    mid = pay(alice, bob, height=10**9).message_id
    assert bob.agent.settle_payment(mid, None, 50, now=T0).state == "pending"
    # A restart: nothing kept in memory; the first round's time is in the store.
    ours = bob.agent.own_accounts()
    restarted = Payments(bob.store)
    later = restarted.settle(mid, None, 50, own_accounts=ours, now=T0 + GIVE_UP_AFTER)
    assert later.state == "pending"
    with pytest.raises(PaymentRefusedError) as refused:
        Payments(bob.store).settle(mid, None, 50, own_accounts=ours, now=T0 + GIVE_UP_AFTER + 1)
    assert refused.value.code == "not_found"


def test_a_flood_of_claims_delays_real_payments_without_refusing_them(
    pair: tuple[AgentNode, AgentNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dchat_messaging._payment as module

    monkeypatch.setattr(module, "MAX_PENDING", 2)
    monkeypatch.setattr(module, "MAX_WAITING", 2)
    alice, bob = pair
    floods = [pay(alice, bob, height=10**9).message_id for _ in range(2)]
    real = [pay(alice, bob).message_id for _ in range(3)]
    assert [m for m, _ in bob.agent.payments.pending()] == floods
    assert [entry(bob, m).state for m in real] == ["pending", "pending", "refused"]
    assert entry(bob, real[2]).code == "too_many"  # beyond both queues
    for m in floods:
        with pytest.raises(PaymentRefusedError):
            bob.agent.settle_payment(m, None, 50, now=T0, give_up=True)
    assert [m for m, _ in bob.agent.payments.pending()] == real[:2]  # they joined in order
    assert bob.agent.settle_payment(real[0], proven(alice, bob), 8, now=T0).state == "verified"
    bob.agent.payments.forget(bytes(real[1]))
    assert bob.agent.payments.pending() == []


def test_a_claim_of_a_far_height_is_refused_at_the_deadline(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    mid = pay(alice, bob, height=10**9).message_id
    assert bob.agent.settle_payment(mid, None, 50, now=T0).state == "pending"
    with pytest.raises(PaymentRefusedError, match="no such payment"):
        bob.agent.settle_payment(mid, None, 50, now=T0, give_up=True)


def test_a_payment_on_another_chain_is_refused(pair: tuple[AgentNode, AgentNode]) -> None:
    alice, bob = pair
    mid = pay(alice, bob).message_id
    with pytest.raises(PaymentRefusedError) as refused:
        bob.agent.settle_payment(mid, proven(alice, bob), 7, now=T0, chain_id="other")
    assert refused.value.code == "wrong_chain"


def test_a_payment_naming_another_account_is_refused_without_a_proof(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    intent = intend(alice)
    wrong = replace(intent, payment=replace(intent.payment, payee=b"\x03" * 32))
    alice.agent.payments.intend(wrong)
    alice.agent.converse.send_payment(wrong, 7, now=T0)
    deliver_mail(alice, bob)
    with pytest.raises(PaymentRefusedError) as refused:
        bob.agent.settle_payment(intent.message_id, proven(alice, bob), 7, now=T0)
    assert refused.value.code == "wrong_recipient"


def test_a_replayed_payment_message_is_refused(pair: tuple[AgentNode, AgentNode]) -> None:
    alice, bob = pair
    intent = pay(alice, bob)
    mid = intent.message_id
    bob.agent.settle_payment(mid, proven(alice, bob), 7, now=T0)
    # The same message again (a re-send): stored once, still verified.
    alice.agent.payments.intend(intent)
    alice.agent.converse.send_payment(intent, 7, now=T0)
    deliver_mail(alice, bob)
    assert entry(bob, mid).state == "verified"
    # Deleted, then sent again: its reference was seen, so it is refused, never re-verified.
    assert bob.store.delete_message(bytes(mid))
    bob.agent.payments.forget(bytes(mid))
    assert bob.agent.payments.get(bytes(mid)) is None
    alice.agent.payments.intend(intent)
    alice.agent.converse.send_payment(intent, 7, now=T0)
    deliver_mail(alice, bob)
    assert (entry(bob, mid).state, entry(bob, mid).code) == ("refused", "replayed")
    assert bob.agent.payments.pending() == []


def test_a_payment_message_is_sent_once_when_two_tasks_finish_it(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    """The request that paid and the resumption task may both finish one intent."""
    alice, bob = pair
    intent = intend(alice)
    mid, first = alice.agent.converse.send_payment(intent, 7, now=T0)
    again, second = alice.agent.converse.send_payment(intent, 7, now=T0)
    assert (again, first != [], second) == (mid, True, [])
    assert alice.agent.payments.intents() == []
    deliver_mail(alice, bob)
    assert entry(bob, mid).state == "pending"


def test_a_payment_message_deleted_for_everyone_takes_its_record_along(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    mid = pay(alice, bob).message_id
    alice.agent.converse.delete_for_everyone("bob", mid, now=T0)
    deliver_mail(alice, bob)
    assert bob.store.get_message(bytes(mid)) is None
    assert bob.agent.payments.get(bytes(mid)) is None
    assert bob.agent.payments.pending() == []
    assert alice.agent.payments.get(bytes(mid)) is None


def test_the_message_and_the_payment_record_are_stored_together_or_not_at_all(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    intent = intend(alice)

    def dies_before_the_commit() -> None:
        with alice.store.transaction():
            alice.agent.converse.send_payment(intent, 7, now=T0)
            raise RuntimeError("the process dies before the commit")

    with pytest.raises(RuntimeError):
        dies_before_the_commit()
    assert alice.store.get_message(bytes(intent.message_id)) is None
    assert alice.agent.payments.get(bytes(intent.message_id)) is None
    assert alice.outgoing() == []
    # The restart: a new agent over the same store finds the intent and sends the message.
    restarted = UserMessaging(alice.store)
    restarted.engines.set_main(alice.identity, alice.card)
    restarted.load()
    assert restarted.payments.intents() == [intent]
    restarted.converse.send_payment(intent, 7, now=T0)
    assert restarted.payments.intents() == []
    alice.agent = restarted
    deliver_mail(alice, bob)
    assert entry(bob, intent.message_id).state == "pending"
    assert (
        bob.agent.settle_payment(intent.message_id, proven(alice, bob), 8, now=T0).state
        == "verified"
    )


def test_bounds_on_the_sending_side(pair: tuple[AgentNode, AgentNode]) -> None:
    alice, _ = pair
    with pytest.raises(ContentError):
        intend(alice, note="x" * 1001)
    with pytest.raises(ContentError):
        intend(alice, amount=0)
    with pytest.raises(ContentError):
        intend(alice, amount=2**63)


def test_a_malformed_payment_body_is_rejected_and_nothing_is_kept(
    pair: tuple[AgentNode, AgentNode],
) -> None:
    alice, bob = pair
    bad = Payment(25, "cur", b"\x01" * 32, b"\x02" * 32, TX, 7, "x" * 1001)  # note too long
    content = Content(MessageId.random(), int(T0 * 1000), "text", "x", payment=bad)
    alice.agent.send_as(alice.agent.contacts.find("bob"), content, now=T0)
    deliver_mail(alice, bob)
    assert bob.store.get_message(bytes(content.message_id)) is None
    assert bob.agent.payments.get(bytes(content.message_id)) is None
    assert bob.agent.counters()["rejected"]


_GOOD = Payment(25, "cur", b"\x01" * 32, b"\x02" * 32, TX, 7, "hi").to_map()


@given(
    st.sampled_from(sorted(_GOOD)),
    st.one_of(
        st.none(), st.integers(-(2**62), 2**62), st.binary(max_size=40), st.text(max_size=70)
    ),
)
def test_every_malformed_body_is_a_typed_error(key: str, value: object) -> None:
    raw = dict(_GOOD)
    if value is None:
        del raw[key]
    else:
        raw[key] = value
    plain = pad(canonical_encode({"v": 1, "mid": bytes(16), "ts": 1, "body": raw}))
    try:
        content = Content.from_padded(plain)
    except EnvelopeRejectedError:
        return
    assert content.payment is not None  # what decodes is a whole, valid payment
    assert content.payment.to_map() == raw or key == "text"


def test_check_payment_alone() -> None:
    claim = Payment(5, "cur", b"\x01" * 32, b"\x02" * 32, TX, 3)
    own = frozenset({b"\x02" * 32})
    assert check_payment(claim, ProvenPayment(b"\x01" * 32, b"\x02" * 32, 5), 3, own)
    assert not check_payment(claim, None, 2, own)
    with pytest.raises(PaymentRefusedError):
        check_payment(claim, None, 3, own)
    with pytest.raises(PaymentRefusedError):
        check_payment(claim, ProvenPayment(b"\x01" * 32, b"\x02" * 32, 5), 3, frozenset())
