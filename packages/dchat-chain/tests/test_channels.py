"""Payment channels: open, cooperative close, unilateral close, dispute with penalty, settle."""

from __future__ import annotations

import pytest

from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain.lowlevel import BlockContext, ChannelState, channel_open_terms, payment_channel_id
from dchat_core import canonical_encode
from dchat_crypto import SigningKey

A, B, C = (SigningKey(bytes([i]) * 32) for i in (11, 12, 13))
PK = {k: k.public_key.to_bytes() for k in (A, B, C)}
DISPUTE = 3


class Chain:
    def __init__(self) -> None:
        genesis = {
            "v": 1,
            "kind": "currency",
            "chain_id": "cur",
            "params": {"dispute_blocks": DISPUTE},
            "accounts": [[PK[k], 1_000] for k in (A, B, C)],
        }
        self.app = CurrencyChainApp.from_genesis(canonical_encode(genesis))
        self.nonces = {k: 0 for k in (A, B, C)}

    def run(self, key: SigningKey, kind: str, body: dict) -> int:
        tx = Transaction.create(
            key, chain_id="cur", nonce=self.nonces[key], fee=0, kind=kind, body=body
        )
        self.nonces[key] += 1
        return self.block(tx.raw)

    def block(self, *txs: bytes) -> int:
        height = self.app.height + 1
        result = self.app.apply_block(BlockContext("cur", height, height, b""), txs)
        self.app.commit()
        return result.tx_results[0].code if txs else 0

    def balance(self, key: SigningKey) -> int:
        return self.app.account(PK[key]).balance

    def open(self, deposit_a: int = 300, deposit_b: int = 200) -> bytes:
        terms = channel_open_terms("cur", PK[A], PK[B], deposit_a, deposit_b, self.nonces[A])
        body = {
            "peer": PK[B],
            "deposit": deposit_a,
            "peer_deposit": deposit_b,
            "peer_sig": B.sign(terms),
        }
        assert self.run(A, "channel_open", body) == 0
        return payment_channel_id(terms)


def signed(state: ChannelState, *, sig_a: SigningKey = A, sig_b: SigningKey = B) -> dict:
    return state.to_body(state.sign(sig_a), state.sign(sig_b))


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_open_locks_both_deposits(chain: Chain) -> None:
    chain.open()
    assert (chain.balance(A), chain.balance(B)) == (700, 800)


def test_open_needs_the_peers_consent(chain: Chain) -> None:
    terms = channel_open_terms("cur", PK[A], PK[B], 300, 200, 0)
    body = {"peer": PK[B], "deposit": 300, "peer_deposit": 200, "peer_sig": C.sign(terms)}
    assert chain.run(A, "channel_open", body) == 8
    # B's signature for nonce 0 cannot be replayed at A's nonce 1.
    body["peer_sig"] = B.sign(terms)
    assert chain.run(A, "channel_open", body) == 8
    assert (chain.balance(A), chain.balance(B)) == (1_000, 1_000)


def test_cooperative_close_pays_at_once(chain: Chain) -> None:
    chan = chain.open()
    final = ChannelState(chan, 7, 100, 400, final=True)
    assert chain.run(B, "channel_coop_close", {"chan": chan, "state": signed(final)}) == 0
    assert (chain.balance(A), chain.balance(B)) == (800, 1_200)
    assert chain.run(B, "channel_coop_close", {"chan": chan, "state": signed(final)}) == 9


def test_cooperative_close_needs_both_signatures_and_a_final_state(chain: Chain) -> None:
    chan = chain.open()
    final = ChannelState(chan, 7, 100, 400, final=True)
    assert chain.run(B, "channel_coop_close", {"chan": chan, "state": signed(final, sig_a=B)}) == 8
    not_final = ChannelState(chan, 7, 100, 400)
    assert chain.run(B, "channel_coop_close", {"chan": chan, "state": signed(not_final)}) == 9
    too_much = ChannelState(chan, 7, 100, 401, final=True)
    assert chain.run(B, "channel_coop_close", {"chan": chan, "state": signed(too_much)}) == 8
    assert chain.run(C, "channel_coop_close", {"chan": chan, "state": signed(final)}) == 8


def test_unilateral_close_settles_after_the_dispute_window(chain: Chain) -> None:
    chan = chain.open()
    latest = ChannelState(chan, 5, 250, 250)
    assert chain.run(A, "channel_close", {"chan": chan, "state": signed(latest)}) == 0
    assert chain.run(A, "channel_settle", {"chan": chan}) == 9  # window still open
    for _ in range(DISPUTE - 1):
        chain.block()
    assert chain.run(B, "channel_settle", {"chan": chan}) == 0
    assert (chain.balance(A), chain.balance(B)) == (950, 1_050)


def test_unilateral_close_without_a_state_returns_the_deposits(chain: Chain) -> None:
    chan = chain.open()
    assert chain.run(B, "channel_close", {"chan": chan, "state": None}) == 0
    for _ in range(DISPUTE):
        chain.block()
    assert chain.run(A, "channel_settle", {"chan": chan}) == 0
    assert (chain.balance(A), chain.balance(B)) == (1_000, 1_000)


def test_publishing_a_stale_state_forfeits_the_channel(chain: Chain) -> None:
    chan = chain.open()
    old = ChannelState(chan, 1, 450, 50)  # good for A
    new = ChannelState(chan, 2, 50, 450)  # what A and B agreed later
    assert chain.run(A, "channel_close", {"chan": chan, "state": signed(old)}) == 0
    assert chain.run(A, "channel_dispute", {"chan": chan, "state": signed(new)}) == 8
    assert chain.run(B, "channel_dispute", {"chan": chan, "state": signed(old)}) == 9
    assert chain.run(B, "channel_dispute", {"chan": chan, "state": signed(new)}) == 0
    assert (chain.balance(A), chain.balance(B)) == (700, 1_300)  # all 500 go to B
    assert chain.run(A, "channel_settle", {"chan": chan}) == 9


def test_a_dispute_after_the_window_is_too_late(chain: Chain) -> None:
    chan = chain.open()
    old, new = ChannelState(chan, 1, 450, 50), ChannelState(chan, 2, 50, 450)
    assert chain.run(A, "channel_close", {"chan": chan, "state": signed(old)}) == 0
    for _ in range(DISPUTE):
        chain.block()
    assert chain.run(B, "channel_dispute", {"chan": chan, "state": signed(new)}) == 9
    assert chain.run(B, "channel_settle", {"chan": chan}) == 0
    assert (chain.balance(A), chain.balance(B)) == (1_150, 850)


def test_a_state_for_another_channel_does_not_count(chain: Chain) -> None:
    chan = chain.open()
    other = chain.open(100, 100)
    forged = ChannelState(other, 9, 300, 200)
    assert chain.run(A, "channel_close", {"chan": chan, "state": signed(forged)}) == 8
