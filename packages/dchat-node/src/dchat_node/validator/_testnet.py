"""``dchat-node chain init-testnet``: genesis documents, validator data dirs, wallets.

Layout written under ``OUT``::

    genesis-currency.cbor, genesis-chat.cbor   canonical genesis documents
    testnet.json                               public summary (ids, addresses, accounts)
    validator-<i>/dchat.toml                   role validator, listen address, peers
    validator-<i>/validator.key                account + BLS keys, passphrase-encrypted
    validator-<i>/genesis.cbor                 the genesis of the chain it validates
                                               (``--chain``: currency or chat; its "kind")
    validator-<i>/genesis-*.cbor               copies of both documents
    wallets/account-<i>.wallet                 funded test accounts, passphrase-encrypted

Every validator gets equal stake (currency) or equal power (chat: the chat
genesis lists the same validators, a fixed set). Addresses are free loopback ports at the time
of writing (a testnet for one machine); edit the TOML files to spread it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_chain import ChatChainApp, CurrencyChainApp
from dchat_core import canonical_encode
from dchat_crypto import KdfParams, SigningKey

from .._errors import ConfigError
from ..config import free_port
from ._keys import ValidatorKeys, write_validator_keys, write_wallet

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("CHAT_GENESIS", "CURRENCY_GENESIS", "VALIDATOR_GENESIS", "NetPlan", "init_testnet")

CURRENCY_GENESIS: Final = "genesis-currency.cbor"
CHAT_GENESIS: Final = "genesis-chat.cbor"
VALIDATOR_GENESIS: Final = "genesis.cbor"
CHAINS: Final = ("currency", "chat")
CURRENCY_PARAMS: Final = {"min_fee": 1, "unbonding_blocks": 100, "dispute_blocks": 20}


@dataclass(frozen=True)
class NetPlan:
    """What to write: sizes and amounts (the chain ids name the testnet)."""

    validators: int = 4
    accounts: int = 4
    balance: int = 10**12
    stake: int = 10**6
    currency_chain: str = "dchat-testnet-currency"
    chat_chain: str = "dchat-testnet-chat"
    host: str = "127.0.0.1"
    block_interval: float = 1.0
    chain: str = "currency"  # the application the validators run
    pow_bits: int = 20  # chat chain: proof-of-work bits an identity registration costs


def _currency_genesis(plan: NetPlan, vals: list[ValidatorKeys], accts: list[bytes]) -> bytes:
    rows = [
        [
            k.account_public,
            k.bls.public_key.to_bytes(),
            k.bls.prove_possession().to_bytes(),
            plan.stake,
        ]
        for k in vals
    ]
    funded = [[a, plan.balance] for a in [*(k.account_public for k in vals), *accts]]
    document = {
        "v": 1,
        "kind": "currency",
        "chain_id": plan.currency_chain,
        "params": CURRENCY_PARAMS,
        "accounts": funded,
        "validators": rows,
    }
    return canonical_encode(document)


def _chat_genesis(plan: NetPlan, vals: list[ValidatorKeys], accts: list[bytes]) -> bytes:
    rows = [
        [k.account_public, k.bls.public_key.to_bytes(), k.bls.prove_possession().to_bytes(), 1]
        for k in vals
    ]
    document = {
        "v": 1,
        "kind": "chat",
        "chain_id": plan.chat_chain,
        "params": {"min_fee": 1, "pow_bits": plan.pow_bits},
        "accounts": [[a, plan.balance] for a in accts],
        "validators": rows,
    }
    return canonical_encode(document)


def _toml(plan: NetPlan, listen: str, peers: list[str]) -> str:
    quoted = ", ".join(f'"{p}"' for p in peers)
    return "\n".join(
        [
            "[node]",
            'role = "validator"',
            f'listen = "{listen}"',
            f'api_listen = "{plan.host}:0"',
            f"peers = [{quoted}]",
            f'currency_chain = "{plan.currency_chain}"',
            f'chat_chain = "{plan.chat_chain}"',
            f"block_interval = {plan.block_interval}",
            "",
        ]
    )


def init_testnet(
    out: Path, plan: NetPlan, passphrase: bytes, *, kdf: KdfParams = KdfParams.DEFAULT
) -> dict[str, object]:
    """Write a testnet under ``out``; returns the public summary (also ``testnet.json``).

    Raises:
        ConfigError: ``out`` already holds a testnet, or the plan is unusable.
    """
    if not 1 <= plan.validators <= 64 or not 0 <= plan.accounts <= 1000:
        raise ConfigError("a testnet has 1 to 64 validators and at most 1000 accounts")
    if plan.chain not in CHAINS:
        raise ConfigError(f"--chain is one of {', '.join(CHAINS)}")
    if (out / CURRENCY_GENESIS).exists():
        raise ConfigError(f"{out} already holds a testnet")
    vals = [ValidatorKeys.generate() for _ in range(plan.validators)]
    wallets = [SigningKey.generate() for _ in range(plan.accounts)]
    accts = [w.public_key.to_bytes() for w in wallets]
    currency, chat = _currency_genesis(plan, vals, accts), _chat_genesis(plan, vals, accts)
    CurrencyChainApp.from_genesis(currency)  # refuse to write a genesis the chain rejects
    ChatChainApp.from_genesis(chat)
    addresses = [f"{plan.host}:{free_port(plan.host)}" for _ in vals]
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    (out / CURRENCY_GENESIS).write_bytes(currency)
    (out / CHAT_GENESIS).write_bytes(chat)
    for i, keys in enumerate(vals):
        home = out / f"validator-{i}"
        home.mkdir(exist_ok=True, mode=0o700)
        peers = [
            f"{v.node_id}@{a}"
            for j, (v, a) in enumerate(zip(vals, addresses, strict=True))
            if j != i
        ]
        (home / "dchat.toml").write_text(_toml(plan, addresses[i], peers))
        (home / CURRENCY_GENESIS).write_bytes(currency)
        (home / CHAT_GENESIS).write_bytes(chat)
        (home / VALIDATOR_GENESIS).write_bytes(chat if plan.chain == "chat" else currency)
        write_validator_keys(home / "validator.key", keys, passphrase, kdf=kdf)
    (out / "wallets").mkdir(exist_ok=True, mode=0o700)
    for i, wallet in enumerate(wallets):
        write_wallet(out / "wallets" / f"account-{i}.wallet", wallet, passphrase, kdf=kdf)
    summary = _summary(plan, vals, addresses, accts)
    (out / "testnet.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(
    plan: NetPlan, vals: list[ValidatorKeys], addresses: list[str], accts: list[bytes]
) -> dict[str, object]:
    return {
        "chain": plan.chain,
        "currency_chain": plan.currency_chain,
        "chat_chain": plan.chat_chain,
        "validators": [
            {
                "dir": f"validator-{i}",
                "node_id": str(k.node_id),
                "listen": a,
                "account": k.account_public.hex(),
            }
            for i, (k, a) in enumerate(zip(vals, addresses, strict=True))
        ],
        "accounts": [
            {"wallet": f"wallets/account-{i}.wallet", "account": a.hex(), "balance": plan.balance}
            for i, a in enumerate(accts)
        ],
    }
