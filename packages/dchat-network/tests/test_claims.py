"""A relay's automatic claims: the sans-IO policy and its trio loop."""

from __future__ import annotations

import pytest
import trio

from dchat_core import MailboxId, NodeId
from dchat_crypto import SigningKey
from dchat_network.lowlevel import (
    ClaimPolicy,
    ClaimSettings,
    DeliveryReceipt,
    ReceiptBook,
    run_claims,
)

RELAY = SigningKey(b"\x01" * 32)
RELAY_ID = bytes(NodeId.derive(RELAY.public_key.to_bytes()))
BOB = SigningKey(b"\x02" * 32)
BOX = bytes(MailboxId.derive(BOB.public_key.to_bytes()))
SETTINGS = ClaimSettings(interval=100.0, retry=10.0, fee=2, fee_budget=6)


def deliver(book: ReceiptBook, first: int, n: int) -> None:
    ids = [bytes([first + i]) * 32 for i in range(n)]
    book.handed(BOX, ids)
    book.take(BOX, DeliveryReceipt.sign(BOB, RELAY_ID, ids).to_bytes())


def test_a_claim_is_due_an_interval_after_the_last_with_enough_receipts() -> None:
    book, policy = ReceiptBook(RELAY_ID), ClaimPolicy(ClaimSettings(min_entries=3), 0.0)
    deliver(book, 1, 2)
    assert policy.due(book, 599.0) is None  # too soon
    assert policy.due(book, 600.0) is None  # too few envelopes
    deliver(book, 10, 1)
    batch = policy.due(book, 600.0)
    assert batch is not None
    assert batch.count == 3
    assert book.pending == 0
    assert book.unclaimed() == [batch]
    policy.claimed(book, batch.root, 601.0)
    assert book.claimed_at(batch.root) == 601.0
    deliver(book, 20, 5)
    assert policy.due(book, 1_200.0) is None
    assert policy.wait(1_200.0) == 1.0
    assert policy.due(book, 1_201.0) is not None


def test_a_failed_claim_is_retried_first_backing_off_up_to_the_interval() -> None:
    book, policy = ReceiptBook(RELAY_ID), ClaimPolicy(SETTINGS, 0.0)
    deliver(book, 1, 1)
    first = policy.due(book, 100.0)
    assert first is not None
    now, waits = 100.0, []
    for _ in range(5):
        policy.failed(now)
        waits.append(policy.wait(now))
        assert policy.due(book, now + waits[-1] - 0.5) is None
        now += waits[-1]
        deliver(book, 10 + len(waits), 1)  # new receipts wait: the unclaimed batch goes first
        assert policy.due(book, now) is first
    assert waits == [10.0, 20.0, 40.0, 80.0, 100.0]
    assert policy.failures == 5


def test_the_fee_budget_bounds_the_claims_of_any_day() -> None:
    book, policy = ReceiptBook(RELAY_ID), ClaimPolicy(SETTINGS, 0.0)
    claimed_at = []
    now = 0.0
    while now < 90_000.0:
        now += 100.0
        deliver(book, int(now // 100) % 200, 1)
        batch = policy.due(book, now)
        if batch is not None:
            policy.claimed(book, batch.root, now)
            claimed_at.append(now)
    assert claimed_at[:3] == [100.0, 200.0, 300.0]  # 3 claims of fee 2: the budget of 6
    assert claimed_at[3] == 100.0 + 86_400.0  # then one once the first left the 24 hours


def test_disabled_claims_never_come_due() -> None:
    book = ReceiptBook(RELAY_ID)
    deliver(book, 1, 1)
    policy = ClaimPolicy(ClaimSettings(enabled=False), 0.0)
    assert policy.due(book, 1e9) is None
    assert book.pending == 1


@pytest.mark.parametrize("bad", [{"interval": 0.0}, {"retry": -1.0}, {"fee": -1}])
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="relay_claims"):
        ClaimSettings(**bad)  # type: ignore[arg-type]


async def test_run_claims_retries_a_refused_claim_and_records_the_success(
    autojump_clock: object,
) -> None:
    book = ReceiptBook(RELAY_ID)
    deliver(book, 1, 4)
    policy = ClaimPolicy(SETTINGS, trio.current_time())
    submitted: list[tuple[bytes, int, int]] = []

    async def submit(root: bytes, count: int, fee: int) -> None:
        submitted.append((root, count, fee))
        if len(submitted) == 1:
            raise OSError("no validator")

    async def run(fn):  # type: ignore[no-untyped-def]
        return fn()

    with trio.move_on_after(500.0):
        await run_claims(policy, book, submit, run, trio.current_time)
    assert len(submitted) == 2
    assert submitted[0] == submitted[1]
    assert submitted[0][1:] == (4, 2)
    assert book.claimed_at(submitted[0][0]) is not None
    assert (policy.claims, policy.failures) == (1, 1)
