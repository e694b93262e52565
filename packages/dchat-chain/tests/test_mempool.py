"""The mempool: deduplication, nonce order, fee priority, limits, re-check after commit."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_chain import CurrencyChainApp, Mempool, Transaction
from dchat_chain.lowlevel import (
    BlockContext,
    DuplicateTransactionError,
    FutureNonceError,
    InsufficientFundsError,
    MalformedTransactionError,
    MempoolFullError,
    ReplayedNonceError,
)
from dchat_core import canonical_encode
from dchat_crypto import SigningKey

KEYS = [SigningKey(bytes([i + 40]) * 32) for i in range(6)]
SINK = bytes(32)


def make_app() -> CurrencyChainApp:
    accounts = [[k.public_key.to_bytes(), 1_000] for k in KEYS]
    genesis = {"v": 1, "kind": "currency", "chain_id": "cur", "accounts": accounts}
    return CurrencyChainApp.from_genesis(canonical_encode(genesis))


def tx(key: SigningKey, nonce: int, fee: int = 1, amount: int = 1) -> bytes:
    body = {"to": SINK, "amount": amount}
    return Transaction.create(
        key, chain_id="cur", nonce=nonce, fee=fee, kind="transfer", body=body
    ).raw


def commit(app: CurrencyChainApp, txs: list[bytes]) -> None:
    app.apply_block(BlockContext("cur", app.height + 1, 0, b""), txs)
    app.commit()


@pytest.fixture
def app() -> CurrencyChainApp:
    return make_app()


def test_duplicates_and_bad_transactions_are_refused(app: CurrencyChainApp) -> None:
    pool = Mempool(app)
    meta = pool.add(tx(KEYS[0], 0))
    assert meta.tx_hash in pool
    assert len(pool) == 1
    with pytest.raises(DuplicateTransactionError):
        pool.add(tx(KEYS[0], 0))
    with pytest.raises(MalformedTransactionError):
        pool.add(b"junk")
    with pytest.raises(InsufficientFundsError):
        pool.add(tx(KEYS[1], 0, amount=5_000))
    assert len(pool) == 1


def test_same_nonce_needs_a_higher_fee_to_replace(app: CurrencyChainApp) -> None:
    pool = Mempool(app)
    pool.add(tx(KEYS[0], 0, fee=5))
    with pytest.raises(DuplicateTransactionError):
        pool.add(tx(KEYS[0], 0, fee=5, amount=2))
    better = tx(KEYS[0], 0, fee=6)
    pool.add(better)
    assert pool.reap(1 << 20, 10) == [better]


def test_gaps_are_held_until_filled(app: CurrencyChainApp) -> None:
    pool = Mempool(app, max_gap=3)
    pool.add(tx(KEYS[0], 2))
    pool.add(tx(KEYS[0], 1))
    assert pool.reap(1 << 20, 10) == []
    with pytest.raises(FutureNonceError):
        pool.add(tx(KEYS[0], 4))
    first = tx(KEYS[0], 0)
    pool.add(first)
    assert pool.reap(1 << 20, 10) == [first, tx(KEYS[0], 1), tx(KEYS[0], 2)]


def test_next_nonce_counts_the_senders_pending_run(app: CurrencyChainApp) -> None:
    pool = Mempool(app, max_gap=3)
    sender = KEYS[0].public_key.to_bytes()
    assert pool.next_nonce(sender, 0) == 0
    pool.add(tx(KEYS[0], 0))
    pool.add(tx(KEYS[0], 1))
    pool.add(tx(KEYS[0], 3))  # held behind a gap: not part of the run
    assert pool.next_nonce(sender, 0) == 2
    assert pool.next_nonce(KEYS[1].public_key.to_bytes(), 5) == 5
    commit(app, [tx(KEYS[0], 0)])
    pool.update([tx(KEYS[0], 0)])
    assert pool.next_nonce(sender, app.account(sender).nonce) == 2
    pool.add(tx(KEYS[0], 2))
    assert pool.next_nonce(sender, 1) == 4


def test_reap_orders_by_fee_but_keeps_each_senders_nonce_order(app: CurrencyChainApp) -> None:
    pool = Mempool(app)
    a0, a1 = tx(KEYS[0], 0, fee=1), tx(KEYS[0], 1, fee=50)
    b0, c0 = tx(KEYS[1], 0, fee=10), tx(KEYS[2], 0, fee=5)
    for raw in (a1, a0, c0, b0):
        pool.add(raw)
    assert pool.reap(1 << 20, 10) == [b0, c0, a0, a1]
    assert pool.reap(1 << 20, 2) == [b0, c0]
    assert pool.reap(len(b0) * 2 - 1, 10) == [b0]


def test_full_pool_evicts_the_cheapest_tail(app: CurrencyChainApp) -> None:
    pool = Mempool(app, max_txs=3)
    low0, low1 = tx(KEYS[0], 0, fee=1), tx(KEYS[0], 1, fee=1)
    mid = tx(KEYS[1], 0, fee=5)
    for raw in (low0, low1, mid):
        pool.add(raw)
    with pytest.raises(MempoolFullError):
        pool.add(tx(KEYS[2], 0, fee=1))
    high = tx(KEYS[2], 0, fee=9)
    pool.add(high)
    assert len(pool) == 3
    assert pool.reap(1 << 20, 10) == [high, mid, low0]  # low1, a tail, went


def test_byte_limit_and_per_sender_limit(app: CurrencyChainApp) -> None:
    one = tx(KEYS[0], 0)
    pool = Mempool(app, max_bytes=len(one) * 2, max_per_sender=1)
    pool.add(one)
    with pytest.raises(MempoolFullError):
        pool.add(tx(KEYS[0], 1))
    pool.add(tx(KEYS[1], 0))
    assert pool.size_bytes <= len(one) * 2
    with pytest.raises(MempoolFullError):
        pool.add(tx(KEYS[2], 0))


def test_update_drops_included_and_stale_transactions(app: CurrencyChainApp) -> None:
    pool = Mempool(app)
    a0, a1, a2 = (tx(KEYS[0], n) for n in range(3))
    b0 = tx(KEYS[1], 0, amount=900)
    for raw in (a0, a1, a2, b0):
        pool.add(raw)
    competing = tx(KEYS[0], 1, fee=2, amount=7)  # another a1, included elsewhere
    commit(app, [a0, competing])
    pool.update([a0, competing])
    assert pool.reap(1 << 20, 10) == [a2, b0]
    with pytest.raises(ReplayedNonceError):
        pool.add(a1)
    # b drained its account in another way: a full re-check drops b0.
    commit(app, [tx(KEYS[1], 0, amount=950)])
    pool.update([])
    assert b0 in pool.reap(1 << 20, 10)
    pool.update([], full_recheck=True)
    assert pool.reap(1 << 20, 10) == [a2]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 20)), max_size=40),
    st.integers(1, 12),
)
def test_reaped_blocks_always_apply_cleanly(adds, limit) -> None:
    app = make_app()
    pool = Mempool(app, max_txs=limit, max_gap=4)
    for who, nonce, fee in adds:
        with contextlib.suppress(
            DuplicateTransactionError, MempoolFullError, FutureNonceError, ReplayedNonceError
        ):
            pool.add(tx(KEYS[who], nonce, fee=fee))
        assert len(pool) <= limit
    reaped = pool.reap(1 << 20, 100)
    result = app.apply_block(BlockContext("cur", 1, 0, b""), reaped)
    assert all(r.code == 0 for r in result.tx_results)
    app.commit()
    pool.update(reaped)
    assert not any(t in reaped for t in pool.reap(1 << 20, 100))
