"""The transaction envelope, its typed errors, and hostile input to both applications."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_chain import ChatChainApp, CurrencyChainApp, InvalidTransactionError, Transaction
from dchat_chain.lowlevel import (
    BadTransactionSignatureError,
    BlockContext,
    FeeTooLowError,
    FutureNonceError,
    InsufficientFundsError,
    MalformedTransactionError,
    ReplayedNonceError,
    WrongChainError,
    tx_hash,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import SigningKey
from dchat_testing import hostile_bytes

ALICE = SigningKey(bytes(range(32)))
FIELD_NAMES = sorted(
    [
        "to",
        "amount",
        "bls",
        "pop",
        "evidence",
        "epoch",
        "scores",
        "chan",
        "state",
        "peer",
        "deposit",
        "peer_deposit",
        "peer_sig",
        "pow",
        "doc",
        "guardians",
        "threshold",
        "version",
        "pointer",
        "identity",
        "new_key",
        "endpoint",
        "region",
        "stake_ref",
        "root",
        "count",
        "on",
        "name",
        "channel",
        "member",
        "role",
        "new_owner",
        "first",
        "last",
    ]
)
BOB = SigningKey(bytes(range(1, 33)))


def genesis(kind: str = "currency", **params: int) -> bytes:
    accounts = [[ALICE.public_key.to_bytes(), 1_000]]
    return canonical_encode(
        {"v": 1, "kind": kind, "chain_id": "test", "params": params, "accounts": accounts}
    )


def transfer(nonce: int = 0, fee: int = 1, amount: int = 10, chain: str = "test") -> bytes:
    body = {"to": BOB.public_key.to_bytes(), "amount": amount}
    tx = Transaction.create(ALICE, chain_id=chain, nonce=nonce, fee=fee, kind="transfer", body=body)
    return tx.raw


def block(app: CurrencyChainApp | ChatChainApp, txs: list[bytes]):
    context = BlockContext(app.chain_id, app.height + 1, 1_000 * (app.height + 1), b"")
    result = app.apply_block(context, txs)
    app.commit()
    return result


def test_round_trip_and_hash() -> None:
    raw = transfer()
    tx = Transaction.decode(raw)
    assert tx.raw == raw
    assert tx.hash == tx_hash(raw)
    assert tx.sender == ALICE.public_key.to_bytes()
    assert tx.kind == "transfer"
    tx.verify_signature()
    assert tx.signing_bytes().startswith(b"dchat-tx-v1\x00")


def test_a_changed_field_breaks_the_signature() -> None:
    fields = canonical_decode(transfer())
    fields["fee"] = 0
    with pytest.raises(BadTransactionSignatureError):
        Transaction.decode(canonical_encode(fields)).verify_signature()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda f: f.update(v=2), MalformedTransactionError),
        (lambda f: f.update(extra=1), MalformedTransactionError),
        (lambda f: f.pop("sig"), MalformedTransactionError),
        (lambda f: f.update(body=[1]), MalformedTransactionError),
        (lambda f: f.update(nonce=-1), MalformedTransactionError),
        (lambda f: f.update(sig=b"x" * 63), MalformedTransactionError),
    ],
)
def test_malformed_envelopes(change, error) -> None:
    fields = canonical_decode(transfer())
    change(fields)
    with pytest.raises(error):
        Transaction.decode(canonical_encode(fields))


def test_check_tx_errors_are_typed() -> None:
    app = CurrencyChainApp.from_genesis(genesis(min_fee=1))
    app.check_tx(transfer())
    with pytest.raises(WrongChainError):
        app.check_tx(transfer(chain="other"))
    with pytest.raises(FutureNonceError) as future:
        app.check_tx(transfer(nonce=3))
    assert future.value.expected == 0
    with pytest.raises(FeeTooLowError):
        app.check_tx(transfer(fee=0))
    with pytest.raises(InsufficientFundsError):
        app.check_tx(transfer(fee=1, amount=1_000))
    with pytest.raises(InsufficientFundsError):
        app.check_tx(transfer(fee=1_001))
    fields = canonical_decode(transfer())
    fields["sig"] = bytes(64)
    with pytest.raises(BadTransactionSignatureError):
        app.check_tx(canonical_encode(fields))
    block(app, [transfer()])
    with pytest.raises(ReplayedNonceError):
        app.check_tx(transfer())


def test_a_tx_signed_for_another_chain_is_not_replayable() -> None:
    app = CurrencyChainApp.from_genesis(genesis())
    other = transfer(chain="test-2")
    result = block(app, [other])
    assert result.tx_results[0].code == WrongChainError.code
    assert app.account(ALICE.public_key.to_bytes()).balance == 1_000


def test_a_bad_tx_in_a_block_does_not_stop_the_others() -> None:
    app = CurrencyChainApp.from_genesis(genesis())
    txs = [transfer(0), b"\xff garbage", transfer(0), transfer(1, amount=5_000), transfer(2)]
    result = block(app, txs)
    codes = [r.code for r in result.tx_results]
    # ok, malformed, replayed, fails in execution (fee paid), ok
    assert codes == [0, 1, 4, 6, 0]
    alice = app.account(ALICE.public_key.to_bytes())
    assert alice.nonce == 3
    assert alice.balance == 1_000 - 3 - 20
    assert app.account(BOB.public_key.to_bytes()).balance == 20


def test_apply_block_is_deterministic() -> None:
    txs = [transfer(0), b"junk", transfer(1), transfer(1)]
    first, second = (CurrencyChainApp.from_genesis(genesis()) for _ in range(2))
    assert block(first, txs) == block(second, txs)
    assert first.app_hash == second.app_hash


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_bytes(max_size=400))
def test_random_bytes_never_crash_check_tx(data: bytes) -> None:
    for app in (CURRENCY, CHAT):
        with pytest.raises(InvalidTransactionError):
            app.check_tx(data)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_random_bytes_in_a_block_change_nothing_but_height(txs: list[bytes]) -> None:
    app = CurrencyChainApp.from_genesis(genesis())
    before = app.state.committed_items()
    result = block(app, txs)
    assert all(r.code != 0 for r in result.tx_results)
    after = app.state.committed_items()
    assert {k: v for k, v in after.items() if k != b"meta/block"} == {
        k: v for k, v in before.items() if k != b"meta/block"
    }


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        # Real field names, so bodies reach the handlers, not just the unknown-field check.
        st.sampled_from(FIELD_NAMES) | st.text(max_size=4),
        st.one_of(
            st.integers(-(2**63), 2**63),
            st.binary(max_size=40),
            st.binary(min_size=32, max_size=32),
            st.text(max_size=8),
            st.booleans(),
            st.none(),
            st.lists(st.binary(min_size=32, max_size=32), max_size=2),
        ),
        max_size=5,
    )
)
def test_random_bodies_get_typed_errors(body: dict) -> None:
    for app, kinds in ((CURRENCY, CURRENCY_KINDS), (CHAT, CHAT_KINDS)):
        for kind in kinds:
            tx = Transaction.create(ALICE, chain_id="test", nonce=0, fee=0, kind=kind, body=body)
            with contextlib.suppress(InvalidTransactionError):
                app.check_tx(tx.raw)


CURRENCY = CurrencyChainApp.from_genesis(genesis())
CHAT = ChatChainApp.from_genesis(genesis("chat", pow_bits=0))
CURRENCY_KINDS = sorted(CURRENCY._dispatch)
CHAT_KINDS = sorted(CHAT._dispatch)


@settings(max_examples=50)
@given(
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**63 - 1),
    st.dictionaries(st.text(max_size=5), st.binary(max_size=80), max_size=3),
)
def test_signing_bytes_are_the_canonical_unsigned_map(nonce: int, fee: int, body: dict) -> None:
    tx = Transaction.create(ALICE, chain_id="c", nonce=nonce, fee=fee, kind="k", body=body)
    unsigned = {k: v for k, v in canonical_decode(tx.raw).items() if k != "sig"}
    assert tx.signing_bytes() == b"dchat-tx-v1\x00" + canonical_encode(unsigned)
    tx.verify_signature()
