"""StrangerGate: per-stranger buckets and pending caps at a bot's node, and over real engines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import IdentityId
from dchat_messaging import MessageReceived, MessageRequests, MessagingEngine
from dchat_messaging.bots import (
    COMMANDS_KIND,
    GATED_CONTROLS,
    INLINE_ASK_KIND,
    BotLimits,
    StrangerBucket,
    StrangerGate,
    StrangerLimitError,
)
from dchat_messaging.lowlevel import ReceiveStats

if TYPE_CHECKING:
    from dchat_testing import EngineDevice as Device
    from dchat_testing import EngineNet as Net

T0 = 1000.0
BOT = IdentityId.derive(b"bot")
BURNER = IdentityId.derive(b"burner")
FRIEND = IdentityId.derive(b"friend")


def stranger(n: int) -> IdentityId:
    return IdentityId.derive(f"stranger-{n}".encode())


def gate(**limits: float) -> StrangerGate:
    made = StrangerGate(BotLimits(**limits))  # type: ignore[arg-type]
    made.bot = BOT
    made.is_contact = lambda sender: sender == FRIEND
    return made


def codes(made: StrangerGate, sender: IdentityId, count: int, now: float = T0) -> list[str | None]:
    return [made.check(BOT, sender, "text", now)[1] for _ in range(count)]


@given(
    rate=st.floats(min_value=0.01, max_value=50),
    burst=st.integers(min_value=1, max_value=30),
    steps=st.lists(st.floats(min_value=0, max_value=5), max_size=60),
)
def test_a_bucket_never_gives_more_than_its_burst_plus_its_rate(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket, now, taken = StrangerBucket(rate, burst, T0), T0, 0
    for step in steps:
        now += step
        taken += bucket.take(now)
        assert 0 <= bucket.level(now) <= burst
        assert taken <= burst + rate * (now - T0) + 1e-6


@given(rate=st.floats(min_value=0.01, max_value=50), burst=st.integers(min_value=1, max_value=30))
def test_a_full_bucket_gives_its_burst_at_once_then_refills_at_its_rate(
    rate: float, burst: int
) -> None:
    bucket = StrangerBucket(rate, burst, T0)
    assert all(bucket.take(T0) for _ in range(burst))
    assert not bucket.take(T0)
    assert not bucket.full(T0)
    assert bucket.take(T0 + 1 / rate + 1e-6)
    assert bucket.full(T0 + (burst + 2) / rate)


def test_a_bucket_of_rate_zero_never_refuses_and_time_going_back_adds_nothing() -> None:
    assert all(StrangerBucket(0, 1, T0).take(T0) for _ in range(100))
    bucket = StrangerBucket(1, 1, T0)
    assert bucket.take(T0)
    assert not bucket.take(T0 - 50)
    assert bucket.level(T0) == 0


def test_a_stranger_past_its_burst_is_refused_for_rate_and_counted() -> None:
    made = gate(rate=1, burst=3, pending=0)
    assert codes(made, stranger(1), 5) == [None, None, None, "rate", "rate"]
    assert codes(made, stranger(1), 1, now=T0 + 1) == [None]  # one more token a second
    assert made.refused["rate"] == 2
    assert made.report()["refused"] == {"rate": 2, "pending": 0, "pending_total": 0, "senders": 0}


def test_contacts_burners_and_a_node_without_a_bot_are_never_limited() -> None:
    made = gate(rate=1, burst=1, pending=1, pending_total=1)
    assert codes(made, stranger(1), 1) == [None]  # the stranger holds every slot there is
    assert codes(made, FRIEND, 50) == [None] * 50
    assert all(made.check(BURNER, stranger(2), "text", T0) == (False, None) for _ in range(9))
    assert all(made.check(BOT, BOT, "text", T0) == (False, None) for _ in range(9))  # own devices
    made.bot = None
    assert codes(made, stranger(3), 20) == [None] * 20
    assert made.pending_total() == 1


def test_pending_updates_cap_one_stranger_until_the_bot_takes_them() -> None:
    made = gate(rate=0, pending=3)
    assert codes(made, stranger(1), 4) == [None, None, None, "pending"]
    assert codes(made, stranger(2), 1) == [None]  # another stranger has its own slots
    made.handed(str(stranger(1)))
    assert made.pending_of(str(stranger(1))) == 2
    assert codes(made, stranger(1), 2) == [None, "pending"]


def test_all_strangers_together_are_capped_and_contacts_pass_beside_them() -> None:
    made = gate(rate=0, pending=0, pending_total=5)
    results = [made.check(BOT, stranger(n), "text", T0)[1] for n in range(8)]
    assert results == [None] * 5 + ["pending_total"] * 3
    assert codes(made, FRIEND, 3) == [None] * 3
    made.handed(str(stranger(0)))
    assert codes(made, stranger(7), 1) == [None]


def test_controls_that_make_updates_pay_a_token_but_hold_no_slot() -> None:
    made = gate(rate=1, burst=2, pending=1)
    assert INLINE_ASK_KIND in GATED_CONTROLS
    assert made.check(BOT, stranger(1), INLINE_ASK_KIND, T0) == (False, None)
    assert made.check(BOT, stranger(1), "text", T0) == (True, None)
    assert made.check(BOT, stranger(1), INLINE_ASK_KIND, T0) == (False, "rate")
    assert made.check(BOT, stranger(1), COMMANDS_KIND, T0) == (False, None)  # not gated
    assert made.pending_of(str(stranger(1))) == 1


def test_the_tracked_strangers_are_bounded_and_idle_ones_are_forgotten_first() -> None:
    made = gate(rate=1, burst=1, pending=0, senders=2)
    assert codes(made, stranger(1), 1) == [None]
    assert codes(made, stranger(2), 1) == [None]
    assert codes(made, stranger(3), 1) == ["senders"]  # both busy (buckets still empty)
    made.handed(str(stranger(1)))
    assert codes(made, stranger(3), 1, now=T0 + 2) == [None]  # 1 refilled and took nothing
    assert made.report()["strangers"] == 2


def test_settling_frees_every_slot_and_keeps_the_counts() -> None:
    made = gate(rate=0, pending=1)
    assert codes(made, stranger(1), 2) == [None, "pending"]
    made.settle()
    assert made.pending_total() == 0
    assert codes(made, stranger(1), 1) == [None]
    assert (made.admitted, made.refused["pending"]) == (2, 1)


def test_release_of_an_unknown_sender_changes_nothing() -> None:
    made = gate(rate=0)
    made.release(str(stranger(9)))
    made.handed(str(stranger(9)))
    assert made.pending_total() == 0


@pytest.mark.parametrize(
    "limits",
    [{"rate": -1}, {"rate": float("nan")}, {"burst": 0}, {"pending": -1}, {"senders": 0}],
)
def test_limits_out_of_range_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="is"):
        BotLimits(**limits)  # type: ignore[arg-type]


def test_a_limit_error_is_typed_with_its_code() -> None:
    made = gate(rate=0, pending=1)
    made.admit("x", T0)
    with pytest.raises(StrangerLimitError) as caught:
        made.admit("x", T0)
    assert caught.value.code == "pending"
    assert isinstance(caught.value, ValueError)


# -- over real engines ------------------------------------------------------------------


def bot_engine(bob: Device, net: Net, made: StrangerGate) -> MessageRequests:
    """Bob's engine as a bot node wires it: blocked senders and the strangers' gate."""
    policy = MessageRequests(bob.store)
    policy.load()
    bob.engine = MessagingEngine(
        bob.keys, bob.store, directory=net.directory, blocked=policy.dropped
    )
    bob.engine.strangers = made
    made.bot = bob.card.identity_id
    return policy


def test_a_flooding_stranger_is_refused_before_storing_and_a_contact_still_gets_through(
    net: Net,
) -> None:
    alice, bob, carol = net.person("alice"), net.person("bob"), net.person("carol")
    made = StrangerGate(BotLimits(rate=0.1, burst=2, pending=10))
    made.is_contact = lambda sender: sender == carol.card.identity_id
    policy = bot_engine(bob, net, made)
    stats, events = ReceiveStats(), []
    for n in range(5):
        alice.send([bob.address], f"spam {n}", now=T0)
    events += bob.fetch(now=T0)
    carol.send([bob.address], "hello bot", now=T0)
    events += bob.fetch(now=T0)
    texts, _ = stats.count(events, policy)
    assert [t.text for t in texts] == ["spam 0", "spam 1", "hello bot"]
    assert bob.texts() == ["spam 0", "spam 1", "hello bot"]  # nothing refused was stored
    refused = [e for e in events if isinstance(e, MessageReceived) and e.refused]
    assert [e.refused for e in refused] == ["StrangerLimitError.rate"] * 3
    assert all(e.blocked and not e.new for e in refused)
    assert stats.refusals == {"StrangerLimitError.rate": 3}
    assert made.pending_of(str(alice.card.identity_id)) == 2
    alice.send([bob.address], "later", now=T0 + 10)  # the session went on: it opens
    assert [e.text for e in bob.fetch(now=T0 + 10) if isinstance(e, MessageReceived)] == ["later"]
