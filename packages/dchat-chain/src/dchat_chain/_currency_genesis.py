"""The currency chain's genesis document and parameters.

Beyond the shared fields (see :mod:`._state_genesis`)::

    "validators": [[account key(32), bls key(48), bls proof of possession(96), stake], ...],
    "relay_pool": initial relay reward pool,
    "bridge": {"chain": chat chain id, "validators": its genesis set}   (optional)

``bridge`` is the trust root of the chat-chain light client (see ._bridge_headers).

Each genesis validator's stake is allocated to it directly (it is part of the
supply); its proof of possession is checked like a ``stake`` transaction's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError

from ._bridge_headers import seed_bridge
from ._currency_relays import DELIVERY_PERMILLE, POOL_KEY
from ._currency_staking import load_validator, register_validator, validator_updates
from ._errors import ChainArgumentError, InvalidTransactionError
from ._state_genesis import ParamSpec, build_state
from ._state_records import put_record
from ._tx import MAX_AMOUNT

if TYPE_CHECKING:
    from dchat_core import Fields

    from ._state import StateStore

__all__ = ("CURRENCY_PARAMS", "build_currency_state")

_BIG: Final = MAX_AMOUNT
CURRENCY_PARAMS: Final[ParamSpec] = {
    "min_fee": (0, 0, _BIG),
    "burn_permille": (500, 0, 1000),
    "unbonding_blocks": (1000, 1, 1 << 40),
    "power_unit": (1, 1, _BIG),
    "min_validator_stake": (1, 1, _BIG),
    "max_validators": (100, 1, 1024),
    "slash_permille": (50, 0, 1000),
    "slash_reward_permille": (100, 0, 1000),
    "epoch_blocks": (1000, 1, 1 << 40),
    "relay_reward_per_epoch": (0, 0, _BIG),
    "min_relay_stake": (1, 1, _BIG),
    "dispute_blocks": (100, 1, 1 << 40),
    # Relay faults (see ._relay_faults): a median score below relay_fault_score for
    # relay_fault_epochs epochs in a row (0: never) costs relay_slash_permille of the bond.
    "relay_fault_score": (5_000, 0, 10_000),
    "relay_fault_epochs": (3, 0, 1 << 20),
    "relay_slash_permille": (100, 0, 1000),
    # The share of an epoch's relay rewards paid by proven deliveries (the rest by
    # uptime; all by uptime in an epoch without any; see ._currency_relays).
    "relay_delivery_permille": (DELIVERY_PERMILLE, 0, 1000),
}


def _seed(state: StateStore, params: dict[str, int], fields: Fields) -> int:
    supply = 0
    validators = fields.get_list("validators", max_len=1024) if fields.has("validators") else []
    for entry in validators:
        supply += _seed_validator(state, params, entry)
    pool = fields.get_int("relay_pool", hi=MAX_AMOUNT) if fields.has("relay_pool") else 0
    if pool:
        put_record(state, POOL_KEY, pool)
    validator_updates(state, params)  # records each validator's initial power
    seed_bridge(state, params, fields)
    return supply + pool


def _seed_validator(state: StateStore, params: dict[str, int], entry: Any) -> int:
    if not (isinstance(entry, list) and len(entry) == 4):
        raise DecodeError("validators must be [key, bls, pop, stake] lists")
    key, bls, pop, stake = entry
    if not (
        isinstance(key, bytes)
        and len(key) == 32
        and isinstance(bls, bytes)
        and isinstance(pop, bytes)
        and isinstance(stake, int)
        and not isinstance(stake, bool)
        and 0 < stake <= MAX_AMOUNT
    ):
        raise DecodeError("malformed genesis validator")
    if load_validator(state, key) is not None:
        raise DecodeError("a genesis validator is listed twice")
    try:
        register_validator(state, params, key, bls, pop)
    except InvalidTransactionError as exc:
        raise ChainArgumentError(f"genesis validator: {exc}") from None
    record = load_validator(state, key)
    assert record is not None
    put_record(state, b"val/" + key, {**record, "stake": stake})
    return stake


def build_currency_state(genesis: bytes) -> StateStore:
    """The committed height-0 state of a currency chain."""
    extra = {"validators", "relay_pool", "bridge"}
    return build_state(genesis, "currency", CURRENCY_PARAMS, extra, _seed)
