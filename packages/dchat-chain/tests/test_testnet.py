"""Planning a testnet: reproducible from a seed, genesis the chains run, typed refusals."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable

import pytest

from dchat_chain import ChainArgumentError, ChatChainApp, CurrencyChainApp
from dchat_chain.lowlevel import NetPlan, PlannedTestnet, genesis_anchor, plan_testnet
from dchat_core import canonical_decode


def source(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def addresses(n: int) -> list[str]:
    return [f"127.0.0.1:{7000 + i}" for i in range(n)]


def plan(n: int = 4, **changes: object) -> PlannedTestnet:
    return plan_testnet(NetPlan(validators=n, **changes), addresses(n), source(1))  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_testnet() -> None:
    a, b = plan(), plan()
    assert a.currency_genesis == b.currency_genesis
    assert a.chat_genesis == b.chat_genesis
    assert a.summary() == b.summary()
    other = plan_testnet(NetPlan(), addresses(4), source(2))
    assert other.currency_genesis != a.currency_genesis
    assert other.summary()["validators"] != a.summary()["validators"]


def test_genesis_bytes_are_those_of_the_planner_before_it_moved() -> None:
    # Digests of what dchat-node's init-testnet wrote for these keys before the move.
    net = plan_testnet(
        NetPlan(validators=3, accounts=2, chain="chat", pow_bits=9),
        ["h:1", "h:2", "h:3"],
        source(7),
    )
    assert (
        hashlib.sha256(net.currency_genesis).hexdigest()
        == "fba70cd4abf3a8ade7ba535fb06f8d1dd9d1e6fa24d3b01e8fb17bdecf29c1a1"
    )
    assert (
        hashlib.sha256(net.chat_genesis).hexdigest()
        == "ac1ea5d81f61dcdba3e127f27798fa9b2178c89f55d24428363ee10b8a2adcb8"
    )


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_every_validator_is_in_both_genesis_sets_and_peers_with_the_others(n: int) -> None:
    net = plan(n, accounts=3, stake=500, balance=9)
    for genesis in (net.currency_genesis, net.chat_genesis):
        _, validators = genesis_anchor(genesis)
        assert len(validators.validators) == n
    currency, chat = canonical_decode(net.currency_genesis), canonical_decode(net.chat_genesis)
    assert [row[3] for row in currency["validators"]] == [500] * n
    assert [row[3] for row in chat["validators"]] == [1] * n
    wallets = [w.public_key.to_bytes() for w in net.wallets]
    operators = [v.keys.account_public for v in net.validators]
    assert currency["accounts"] == [[a, 9] for a in operators + wallets]
    assert chat["accounts"] == [[a, 9] for a in wallets]
    ids = [f"{v.keys.node_id}@{v.address}" for v in net.validators]
    for i, validator in enumerate(net.validators):
        assert validator.address == addresses(n)[i]
        assert validator.peers == tuple(ids[:i] + ids[i + 1 :])


def test_the_validators_run_the_planned_chain() -> None:
    assert plan(1).validator_genesis == plan(1).currency_genesis
    chat = plan(1, chain="chat", pow_bits=5)
    assert chat.validator_genesis == chat.chat_genesis
    assert canonical_decode(chat.chat_genesis)["params"] == {"min_fee": 1, "pow_bits": 5}
    CurrencyChainApp.from_genesis(chat.currency_genesis)
    ChatChainApp.from_genesis(chat.chat_genesis)


def test_the_summary_is_public_and_complete() -> None:
    net = plan(2, accounts=1)
    summary = net.summary()
    text = json.dumps(summary)
    for v in net.validators:
        assert v.keys.account.to_bytes().hex() not in text
        assert v.keys.bls.to_bytes().hex() not in text
    assert summary["chain"] == "currency"
    assert summary["validators"] == [
        {
            "dir": f"validator-{i}",
            "node_id": str(v.keys.node_id),
            "listen": v.address,
            "account": v.keys.account_public.hex(),
        }
        for i, v in enumerate(net.validators)
    ]
    assert summary["accounts"] == [
        {
            "wallet": "wallets/account-0.wallet",
            "account": net.wallets[0].public_key.to_bytes().hex(),
            "balance": NetPlan().balance,
        }
    ]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"validators": 0}, "1 to 64 validators"),
        ({"validators": 65}, "1 to 64 validators"),
        ({"accounts": -1}, "at most 1000 accounts"),
        ({"accounts": 1001}, "at most 1000 accounts"),
        ({"chain": "gossip"}, "currency, chat"),
    ],
)
def test_bad_plans_are_refused_before_any_key_is_made(
    changes: dict[str, object], match: str
) -> None:
    def no_randomness(n: int) -> bytes:
        raise AssertionError("keys were made for a bad plan")

    bad = NetPlan(**changes)  # type: ignore[arg-type]
    with pytest.raises(ChainArgumentError, match=match):
        bad.check()
    with pytest.raises(ChainArgumentError, match=match):
        plan_testnet(bad, addresses(max(bad.validators, 0)), no_randomness)


@pytest.mark.parametrize("count", [3, 5])
def test_one_address_per_validator(count: int) -> None:
    with pytest.raises(ChainArgumentError, match="one address per validator"):
        plan_testnet(NetPlan(validators=4), addresses(count), source(1))


@pytest.mark.parametrize(
    "changes", [{"balance": -1}, {"stake": 0}, {"currency_chain": ""}, {"pow_bits": 300}]
)
def test_a_genesis_the_chains_refuse_is_never_returned(changes: dict[str, object]) -> None:
    with pytest.raises(ChainArgumentError):
        plan(2, **changes)
