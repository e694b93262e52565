"""Planning a local test network: keys, genesis documents, peer lists and a public summary.

:func:`plan_testnet` turns a :class:`NetPlan` (sizes and amounts), one
listen address per validator and a source of random bytes into a
:class:`PlannedTestnet`: every validator's keys and peer list, the funded test
wallets, and the canonical genesis documents of both chains. It is sans-IO:
the caller picks the addresses, supplies the randomness (a seeded source makes
the whole testnet reproducible) and writes the files.

Both genesis documents list the same validators: on the currency chain each
stakes ``stake`` and is funded with ``balance``; the chat chain's set is fixed,
every validator with power 1. Every validator key comes with its BLS proof of
possession, and both documents are checked by the chain applications before
they are returned, so a plan the chains would refuse fails here, not at start-up.
Each validator's peers are all the others, pinned as ``node_id@address``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import canonical_encode
from dchat_crypto import SigningKey

from ._chat import CHAT_PARAMS, ChatChainApp
from ._currency import CurrencyChainApp
from ._errors import ChainArgumentError
from ._validator_keys import SEED_SIZE, ValidatorKeys

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("TESTNET_CHAINS", "NetPlan", "PlannedTestnet", "PlannedValidator", "plan_testnet")

TESTNET_CHAINS: Final = ("currency", "chat")
CURRENCY_PARAMS: Final = {"min_fee": 1, "unbonding_blocks": 100, "dispute_blocks": 20}
MAX_VALIDATORS: Final = 64
MAX_ACCOUNTS: Final = 1000


@dataclass(frozen=True)
class NetPlan:
    """Sizes and amounts of a testnet (the chain ids name it)."""

    validators: int = 4
    accounts: int = 4
    balance: int = 10**12
    stake: int = 10**6
    currency_chain: str = "dchat-testnet-currency"
    chat_chain: str = "dchat-testnet-chat"
    chain: str = "currency"  # the application the validators run
    pow_bits: int = 20  # chat chain: proof-of-work bits an identity registration costs
    handle_pow_bits: int = 22  # chat chain: the base work of a public handle

    def check(self) -> None:
        """Refuse sizes out of range and unknown chains (before any key is made).

        Raises:
            ChainArgumentError: Not 1 to 64 validators and 0 to 1000 accounts, or an
                unknown ``chain``.
        """
        if not 1 <= self.validators <= MAX_VALIDATORS or not 0 <= self.accounts <= MAX_ACCOUNTS:
            limits = f"1 to {MAX_VALIDATORS} validators and at most {MAX_ACCOUNTS} accounts"
            raise ChainArgumentError(f"a testnet has {limits}")
        if self.chain not in TESTNET_CHAINS:
            raise ChainArgumentError(f"a testnet runs one of {', '.join(TESTNET_CHAINS)}")


@dataclass(frozen=True)
class PlannedValidator:
    """One validator: its keys, where it listens, and its peers (``node_id@address``)."""

    keys: ValidatorKeys
    address: str
    peers: tuple[str, ...]


@dataclass(frozen=True)
class PlannedTestnet:
    """A planned testnet: what the caller writes to disk."""

    plan: NetPlan
    currency_genesis: bytes
    chat_genesis: bytes
    validators: tuple[PlannedValidator, ...]
    wallets: tuple[SigningKey, ...]

    @property
    def validator_genesis(self) -> bytes:
        """The genesis of the chain the validators run (``plan.chain``)."""
        return self.chat_genesis if self.plan.chain == "chat" else self.currency_genesis

    def summary(self) -> dict[str, object]:
        """The public summary (ids, addresses, accounts; no secrets), JSON-ready."""
        plan = self.plan
        return {
            "chain": plan.chain,
            "currency_chain": plan.currency_chain,
            "chat_chain": plan.chat_chain,
            "validators": [
                {
                    "dir": f"validator-{i}",
                    "node_id": str(v.keys.node_id),
                    "listen": v.address,
                    "account": v.keys.account_public.hex(),
                }
                for i, v in enumerate(self.validators)
            ],
            "accounts": [
                {
                    "wallet": f"wallets/account-{i}.wallet",
                    "account": w.public_key.to_bytes().hex(),
                    "balance": plan.balance,
                }
                for i, w in enumerate(self.wallets)
            ],
        }


def plan_testnet(
    plan: NetPlan, addresses: Sequence[str], random: Callable[[int], bytes]
) -> PlannedTestnet:
    """Generate the keys of a testnet and its genesis documents.

    Args:
        plan: Sizes and amounts.
        addresses: One listen address (``host:port``) per validator, in order.
        random: Returns that many secret random bytes (``secrets.token_bytes``;
            a seeded source in tests).

    Raises:
        ChainArgumentError: The plan is out of range, names an unknown chain,
            there is not one address per validator, or a chain refuses a genesis
            (an amount or chain id it does not accept).
    """
    plan.check()
    if len(addresses) != plan.validators:
        raise ChainArgumentError("a testnet needs one address per validator")
    vals = [ValidatorKeys.from_seed(random(SEED_SIZE)) for _ in range(plan.validators)]
    wallets = tuple(SigningKey.from_bytes(random(32)) for _ in range(plan.accounts))
    accts = [w.public_key.to_bytes() for w in wallets]
    currency, chat = _currency_genesis(plan, vals, accts), _chat_genesis(plan, vals, accts)
    CurrencyChainApp.from_genesis(currency)  # refuse a genesis the chain rejects
    ChatChainApp.from_genesis(chat)
    ids = [f"{k.node_id}@{a}" for k, a in zip(vals, addresses, strict=True)]
    validators = tuple(
        PlannedValidator(k, a, tuple(p for j, p in enumerate(ids) if j != i))
        for i, (k, a) in enumerate(zip(vals, addresses, strict=True))
    )
    return PlannedTestnet(plan, currency, chat, validators, wallets)


def _rows(vals: list[ValidatorKeys], weight: int) -> list[list[object]]:
    return [
        [k.account_public, k.bls.public_key.to_bytes(), k.bls.prove_possession().to_bytes(), weight]
        for k in vals
    ]


def _currency_genesis(plan: NetPlan, vals: list[ValidatorKeys], accts: list[bytes]) -> bytes:
    funded = [[a, plan.balance] for a in [*(k.account_public for k in vals), *accts]]
    document = {
        "v": 1,
        "kind": "currency",
        "chain_id": plan.currency_chain,
        "params": CURRENCY_PARAMS,
        "accounts": funded,
        "validators": _rows(vals, plan.stake),
    }
    return canonical_encode(document)


def _handle_param(plan: NetPlan) -> dict[str, int]:
    # Named only when it differs from the chain's default, so the genesis bytes of
    # the plans made before handles existed stay what they were.
    default = CHAT_PARAMS["handle_pow_bits"][0]
    return {} if plan.handle_pow_bits == default else {"handle_pow_bits": plan.handle_pow_bits}


def _chat_genesis(plan: NetPlan, vals: list[ValidatorKeys], accts: list[bytes]) -> bytes:
    document = {
        "v": 1,
        "kind": "chat",
        "chain_id": plan.chat_chain,
        "params": {"min_fee": 1, "pow_bits": plan.pow_bits, **_handle_param(plan)},
        "accounts": [[a, plan.balance] for a in accts],
        "validators": _rows(vals, 1),
    }
    return canonical_encode(document)
