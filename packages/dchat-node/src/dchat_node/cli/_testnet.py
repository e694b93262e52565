"""``dchat-node chain init-testnet``: write a planned testnet to disk.

:func:`dchat_chain.lowlevel.plan_testnet` makes the keys, genesis documents and
peer lists; this module picks the addresses (loopback ports free at the time
of writing: a testnet for one machine; edit the TOML files to spread it out)
and writes under ``OUT``::

    genesis-currency.cbor, genesis-chat.cbor   canonical genesis documents
    testnet.json                               public summary (ids, addresses, accounts)
    validator-<i>/dchat.toml                   role validator, listen address, peers
    validator-<i>/validator.key                account + BLS keys, passphrase-encrypted
    validator-<i>/genesis.cbor                 the genesis of the chain it validates
                                               (``--chain``: currency or chat; its "kind")
    validator-<i>/genesis-*.cbor               copies of both documents
    wallets/account-<i>.wallet                 funded test accounts, passphrase-encrypted
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from dchat_chain.lowlevel import NetPlan, PlannedValidator, plan_testnet
from dchat_crypto import KdfParams

from .._errors import ConfigError
from ..validator._keys import (
    CHAT_GENESIS,
    CURRENCY_GENESIS,
    VALIDATOR_GENESIS,
    write_validator_keys,
    write_wallet,
)
from ._process import free_ports

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("init_testnet",)


def init_testnet(
    out: Path,
    plan: NetPlan,
    passphrase: bytes,
    *,
    kdf: KdfParams = KdfParams.DEFAULT,
    host: str = "127.0.0.1",
    block_interval: float = 1.0,
) -> dict[str, object]:
    """Write a testnet under ``out``; returns the public summary (also ``testnet.json``).

    Raises:
        ConfigError: ``out`` already holds a testnet.
        ChainArgumentError: The plan is unusable.
    """
    plan.check()
    if (out / CURRENCY_GENESIS).exists():
        raise ConfigError(f"{out} already holds a testnet")
    addresses = [f"{host}:{port}" for port in free_ports(plan.validators, host)]
    net = plan_testnet(plan, addresses, secrets.token_bytes)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    (out / CURRENCY_GENESIS).write_bytes(net.currency_genesis)
    (out / CHAT_GENESIS).write_bytes(net.chat_genesis)
    for i, validator in enumerate(net.validators):
        home = out / f"validator-{i}"
        home.mkdir(exist_ok=True, mode=0o700)
        (home / "dchat.toml").write_text(_toml(plan, validator, host, block_interval))
        (home / CURRENCY_GENESIS).write_bytes(net.currency_genesis)
        (home / CHAT_GENESIS).write_bytes(net.chat_genesis)
        (home / VALIDATOR_GENESIS).write_bytes(net.validator_genesis)
        write_validator_keys(home / "validator.key", validator.keys, passphrase, kdf=kdf)
    (out / "wallets").mkdir(exist_ok=True, mode=0o700)
    for i, wallet in enumerate(net.wallets):
        write_wallet(out / "wallets" / f"account-{i}.wallet", wallet, passphrase, kdf=kdf)
    summary = net.summary()
    (out / "testnet.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _toml(plan: NetPlan, validator: PlannedValidator, host: str, interval: float) -> str:
    quoted = ", ".join(f'"{p}"' for p in validator.peers)
    return "\n".join(
        [
            "[node]",
            'role = "validator"',
            f'listen = "{validator.address}"',
            f'api_listen = "{host}:0"',
            f"peers = [{quoted}]",
            f'currency_chain = "{plan.currency_chain}"',
            f'chat_chain = "{plan.chat_chain}"',
            f"block_interval = {interval}",
            "",
        ]
    )
