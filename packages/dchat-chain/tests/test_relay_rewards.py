"""Relay rewards by uptime and by proven delivery (currency chain, several validators)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain._currency_relays import parse_report_entry
from dchat_chain.lowlevel import (
    BlockContext,
    DirectoryAnswerError,
    decode_relay_earnings,
    epoch_delivered,
    epoch_score,
    relay_earnings_key,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

VALIDATORS = [SigningKey(bytes([0x10 + i]) * 32) for i in range(3)]
BLS = [BlsSecretKey.from_seed(bytes([0x20 + i]) * 32) for i in range(3)]
R1, R2, R3 = (SigningKey(bytes([0x30 + i]) * 32) for i in range(3))
EPOCH = 4


def account(key: SigningKey) -> bytes:
    return key.public_key.to_bytes()


class Chain:
    """Three validators' engines fed the same blocks (they must agree on every root)."""

    def __init__(self, **params: int) -> None:
        validators = [
            [account(v), b.public_key.to_bytes(), b.prove_possession().to_bytes(), 1_000]
            for v, b in zip(VALIDATORS, BLS, strict=True)
        ]
        doc = {
            "v": 1,
            "kind": "currency",
            "chain_id": "cur-rewards",
            "params": {"epoch_blocks": EPOCH, "relay_reward_per_epoch": 1_000, **params},
            "accounts": [[account(k), 10_000] for k in (*VALIDATORS, R1, R2, R3)],
            "validators": validators,
            "relay_pool": 100_000,
        }
        raw = canonical_encode(doc)
        self.apps = [CurrencyChainApp.from_genesis(raw) for _ in range(3)]
        self.nonces: dict[bytes, int] = {}

    def tx(self, key: SigningKey, kind: str, body: dict[str, Any]) -> bytes:
        nonce = self.nonces.get(account(key), 0)
        self.nonces[account(key)] = nonce + 1
        return Transaction.create(
            key, chain_id="cur-rewards", nonce=nonce, fee=0, kind=kind, body=body
        ).raw

    def block(self, *txs: bytes) -> list[int]:
        height = self.apps[0].height + 1
        context = BlockContext("cur-rewards", height, height * 1000, b"")
        codes = [[r.code for r in app.apply_block(context, txs).tx_results] for app in self.apps]
        assert len({app.commit() for app in self.apps}) == 1, "the engines disagree"
        return codes[0]

    def report(self, *rows: list[list[Any]]) -> list[int]:
        """Each validator's report (one per row list) for the current epoch."""
        epoch = (self.apps[0].height + 1) // EPOCH
        return self.block(
            *(
                self.tx(v, "uptime_report", {"epoch": epoch, "scores": sorted(r)})
                for v, r in zip(VALIDATORS, rows, strict=False)
            )
        )

    def pay(self) -> None:
        """Blocks up to the next epoch's first one (which pays this epoch)."""
        while (self.apps[0].height + 1) % EPOCH:
            self.block()
        self.block()

    def balance(self, key: SigningKey) -> int:
        return self.apps[0].account(account(key)).balance

    def earnings(self, key: SigningKey) -> dict[str, int]:
        return decode_relay_earnings(
            self.apps[0].state.committed_get(relay_earnings_key(account(key)))
        )

    def bonded(self, *keys: SigningKey) -> Chain:
        assert self.block(*(self.tx(k, "relay_bond", {"amount": 100}) for k in keys)) == [0] * len(
            keys
        )
        return self


def test_the_epoch_reward_splits_between_uptime_and_median_deliveries() -> None:
    chain = Chain().bonded(R1, R2)
    a, b = account(R1), account(R2)
    # Scores 1:1; deliveries: medians 30 and 10 (the third validator's 900 is an outlier).
    rows = [[[a, 10_000, 30], [b, 10_000, 10]]] * 2 + [[[a, 10_000, 900], [b, 10_000, 10]]]
    assert chain.report(*rows) == [0, 0, 0]
    chain.pay()
    assert chain.earnings(R1) == {"uptime": 250, "delivery": 375}
    assert chain.earnings(R2) == {"uptime": 250, "delivery": 125}
    assert chain.balance(R1) == 10_000 - 100 + 625
    assert chain.balance(R2) == 10_000 - 100 + 375


def test_a_forged_claim_earns_nothing_by_delivery_or_uptime() -> None:
    chain = Chain().bonded(R1, R3)
    honest, forger = account(R1), account(R3)
    # Two validators caught the forger's claim in an audit (score and count 0); one did not.
    caught = [[honest, 10_000, 5], [forger, 0, 0]]
    fooled = [[honest, 10_000, 5], [forger, 10_000, 5_000]]
    assert chain.report(caught, caught, fooled) == [0, 0, 0]
    chain.pay()
    assert chain.earnings(R3) == {"uptime": 0, "delivery": 0}
    assert chain.balance(R3) == 10_000 - 100
    assert chain.earnings(R1) == {"uptime": 500, "delivery": 500}


def test_without_proven_deliveries_uptime_takes_the_whole_reward() -> None:
    chain = Chain().bonded(R1, R2)
    old_format = [[account(R1), 3_000], [account(R2), 1_000]]  # reports without counts
    assert chain.report(old_format, old_format) == [0, 0]
    chain.pay()
    assert chain.earnings(R1) == {"uptime": 750, "delivery": 0}
    assert chain.earnings(R2) == {"uptime": 250, "delivery": 0}


@pytest.mark.parametrize(("permille", "expected"), [(0, (500, 0)), (1000, (0, 1_000))])
def test_the_delivery_share_is_a_chain_parameter(permille: int, expected: tuple[int, int]) -> None:
    chain = Chain(relay_delivery_permille=permille).bonded(R1, R2)
    rows = [[account(R1), 5_000, 8], [account(R2), 5_000, 0]]
    assert chain.report(rows, rows) == [0, 0]
    chain.pay()
    assert (chain.earnings(R1)["uptime"], chain.earnings(R1)["delivery"]) == expected


def test_an_unbonded_relay_is_paid_for_nothing() -> None:
    chain = Chain().bonded(R1)
    rows = [[account(R1), 10_000, 1], [account(R2), 10_000, 99]]
    assert chain.report(rows, rows) == [0, 0]
    chain.pay()
    assert chain.earnings(R2) == {"uptime": 0, "delivery": 0}
    assert chain.earnings(R1) == {"uptime": 500, "delivery": 500}


@pytest.mark.parametrize(
    "entry",
    [
        [bytes(32), 1, -1],
        [bytes(32), 1, True],
        [bytes(32), 1, (1 << 32) + 1],
        [bytes(32), 1, 2, 3],
        [bytes(32)],
        [bytes(31), 1, 1],
    ],
)
def test_malformed_report_entries_are_refused(entry: list[Any]) -> None:
    chain = Chain()
    assert chain.report([entry]) == [1]


def test_reports_read_by_proof_give_the_scores_and_deliveries() -> None:
    a = account(R1)
    reports = [
        canonical_encode([[a, 9_000, 4]]),
        canonical_encode([[a, 7_000]]),  # the first report format
        None,
        canonical_encode([[a, 8_000, 6]]),
    ]
    assert epoch_score(reports, a) == 8_000
    assert epoch_delivered(reports, a) == 4
    assert epoch_delivered(reports, account(R2)) == 0
    with pytest.raises(DirectoryAnswerError):
        epoch_delivered([canonical_encode([[a, 1, -5]])], a)
    with pytest.raises(DirectoryAnswerError):
        decode_relay_earnings(canonical_encode({"u": 1}))
    assert decode_relay_earnings(None) == {"uptime": 0, "delivery": 0}


@given(st.binary(max_size=64))
def test_hostile_earnings_records_fail_typed(raw: bytes) -> None:
    try:
        decoded = decode_relay_earnings(raw)
    except DirectoryAnswerError:
        return
    assert set(decoded) == {"uptime", "delivery"}
    assert canonical_decode(raw) == {"u": decoded["uptime"], "d": decoded["delivery"]}


_ITEMS = st.recursive(
    st.none() | st.booleans() | st.integers(-5, (1 << 33)) | st.binary(max_size=33),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=6,
)


@given(_ITEMS)
def test_any_report_entry_parses_to_a_triple_or_is_refused(item: Any) -> None:
    parsed = parse_report_entry(item)
    if parsed is None:
        return
    relay, score, delivered = parsed
    assert item[:2] == [relay, score]
    assert delivered == (item[2] if len(item) == 3 else 0)
    assert len(relay) == 32
    assert 0 <= score <= 10_000
    assert 0 <= delivered <= 1 << 32


def test_a_report_may_mix_both_entry_formats() -> None:
    chain = Chain().bonded(R1, R2)
    rows = [[account(R1), 10_000], [account(R2), 10_000, 4]]
    assert chain.report(rows, rows) == [0, 0]
    chain.pay()
    assert chain.earnings(R2) == {"uptime": 250, "delivery": 500}
    assert chain.earnings(R1) == {"uptime": 250, "delivery": 0}
