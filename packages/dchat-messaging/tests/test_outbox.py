"""The outbox's rules: queue order per destination, deposit batches, results of a deposit."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from dchat_messaging import Outbox
from dchat_messaging.lowlevel import MAX_DEPOSIT, MAX_DEPOSIT_BYTES, deposits
from dchat_messaging.testing import MemoryMessageStore

T0 = 1_000.0
A, B = b"a" * 32, b"b" * 32


def queue(store: MemoryMessageStore, items: list[tuple[str, str, bytes, int]]) -> Outbox:
    """Queue ``(id, relay, mailbox, size)`` items in order; returns the outbox."""
    outbox = Outbox(store, rng=random.Random(1))
    for name, relay, mailbox, size in items:
        outbox.enqueue(name.encode(), relay, mailbox, b"e" * size, T0)
    return outbox


def test_a_delayed_envelope_holds_later_ones_to_its_destination_only() -> None:
    store = MemoryMessageStore()
    outbox = queue(
        store,
        [("1", "r1", A, 10), ("2", "r1", B, 10), ("3", "r1", A, 10), ("4", "r2", A, 10)],
    )
    (first,) = [e for e in outbox.due(T0) if e.message_id == b"1"]
    retry_at = outbox.failed(first, T0)
    assert retry_at > T0
    # 3 goes to the same mailbox at the same relay as 1: it waits; 2 and 4 do not.
    assert [e.message_id for e in outbox.due(T0)] == [b"2", b"4"]
    assert [e.message_id for e in outbox.due(retry_at)] == [b"1", b"2", b"3", b"4"]


def test_due_is_in_queue_order_and_bounded() -> None:
    store = MemoryMessageStore()
    outbox = queue(store, [(f"{i:03d}", "r", A, 1) for i in range(100)])
    assert [e.message_id for e in outbox.due(T0, limit=10)] == [b"%03d" % i for i in range(10)]


def test_deposits_group_by_relay_in_order_within_the_limits() -> None:
    store = MemoryMessageStore()
    items = [(f"{i:03d}", "r1" if i % 3 else "r2", A, 100) for i in range(200)]
    outbox = queue(store, items)
    batches = deposits(outbox.due(T0, limit=200))
    assert all(len({e.relay for e in batch}) == 1 for batch in batches)
    assert all(len(batch) <= MAX_DEPOSIT for batch in batches)
    r1 = [e.message_id for batch in batches if batch[0].relay == "r1" for e in batch]
    assert r1 == [b"%03d" % i for i in range(200) if i % 3]  # queue order kept per relay


@given(st.lists(st.integers(min_value=1, max_value=96 * 1024), min_size=1, max_size=80))
def test_deposits_never_exceed_the_byte_limit(sizes: list[int]) -> None:
    store = MemoryMessageStore()
    outbox = queue(store, [(f"{i:03d}", "r", A, size) for i, size in enumerate(sizes)])
    batches = deposits(outbox.due(T0, limit=len(sizes)))
    assert [e for batch in batches for e in batch] == outbox.due(T0, limit=len(sizes))
    for batch in batches:
        assert batch
        assert len(batch) == 1 or sum(len(e.envelope) for e in batch) <= MAX_DEPOSIT_BYTES


def test_settle_forgets_stored_envelopes_and_retries_refused_ones() -> None:
    store = MemoryMessageStore()
    outbox = queue(store, [("1", "r", A, 1), ("2", "r", B, 1), ("3", "r", A, 1)])
    due = outbox.due(T0)
    commits = store.commits
    stored = outbox.settle(due, [b"\x01" * 32, "quota", "LinkClosedError"], T0)
    assert stored == 1
    assert store.commits == commits + 1  # one transaction for the whole deposit
    assert set(store.outbox) == {b"2", b"3"}
    assert all(entry.attempts == 1 for entry in store.outbox.values())
    assert outbox.due(T0) == []  # both wait for their retry


def test_a_busy_relay_is_held_for_at_least_its_retry_after_and_nothing_is_lost() -> None:
    store = MemoryMessageStore()
    items = [("1", "r1", A, 1), ("2", "r1", B, 1), ("3", "r2", A, 1), ("4", "r1", A, 1)]
    outbox = queue(store, items)
    refused = [e for e in outbox.due(T0) if e.relay == "r1"][:2]  # one deposit: 1 and 2
    until = outbox.busy(refused, 5.0, T0)
    assert T0 + 5.0 <= until <= T0 + 5.0 * 1.25
    assert outbox.held_for(T0, 60.0) == until - T0
    assert outbox.held_for(T0, 1.0) == 1.0
    # nothing for r1 goes before the retry-after, not even 4 (not in the refused deposit);
    # r2 is not held up
    assert [e.message_id for e in outbox.due(T0 + 4.99)] == [b"3"]
    assert [e.message_id for e in outbox.due(until)] == [b"1", b"2", b"3", b"4"]
    assert set(store.outbox) == {b"1", b"2", b"3", b"4"}  # all still queued
    assert outbox.held_for(until, 60.0) == 60.0
    assert outbox.busy_answers == 1


@given(
    answers=st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=8),
    count=st.integers(1, 20),
)
def test_order_per_destination_survives_any_run_of_busy_answers(
    answers: list[float], count: int
) -> None:
    store = MemoryMessageStore()
    outbox = queue(store, [(f"{i:03d}", "r", A, 1) for i in range(count)])
    now, sent = T0, []
    for retry_after in answers:  # the relay answers busy, then later takes one deposit
        due = outbox.due(now, limit=4)
        if due:
            now = outbox.busy(due, retry_after, now)
            assert outbox.due(now - 1e-6, limit=count) == []
    while due := outbox.due(now, limit=4):
        outbox.settle(due, [b"\x01" * 32] * len(due), now)
        sent += [e.message_id for e in due]
    assert sent == [b"%03d" % i for i in range(count)]


def test_a_delivered_answer_counts_as_stored() -> None:
    store = MemoryMessageStore()
    outbox = queue(store, [("1", "r", A, 1)])
    assert outbox.settle(outbox.due(T0), ["delivered"], T0) == 1
    assert store.outbox == {}


def test_a_dead_relays_backlog_does_not_hold_back_another_relays_entries() -> None:
    """Far more entries wait for a dead relay than one read sees: the others still go."""
    store = MemoryMessageStore()
    backlog = [(f"a{i:04d}", "dead", A, 1) for i in range(100)]
    outbox = queue(store, [*backlog, ("b1", "live", A, 1), ("b2", "live", B, 1)])
    (first,) = [e for e in outbox.due(T0, limit=1)]
    assert first.relay == "dead"
    retry_at = outbox.failed(first, T0)  # the dead relay's first entry holds its queue
    assert [e.message_id for e in outbox.due(T0, limit=4)] == [b"b1", b"b2"]
    assert [e.message_id for e in outbox.due(retry_at, limit=1)] == [b"a0000"]


def test_read_to_end_says_whether_due_saw_the_whole_queue() -> None:
    """The shell skips its re-read after a round only when the read saw every entry."""
    store = MemoryMessageStore()
    outbox = queue(store, [(f"{i:03d}", "r", A, 1) for i in range(3)])
    assert len(outbox.due(T0, limit=10)) == 3
    assert outbox.read_to_end
    assert len(outbox.due(T0, limit=2)) == 2  # stopped at the limit: more may be due
    assert not outbox.read_to_end
    big = queue(MemoryMessageStore(), [(f"{i:04d}", "r", A, 1) for i in range(100)])
    (first,) = big.due(T0, limit=1)
    big.failed(first, T0)  # holds the other 99: one page (4 entries) read, none due
    assert big.due(T0, limit=1) == []
    assert not big.read_to_end  # pages left unread
