"""Reading a canonical genesis document: the parts both chains share.

A genesis document is the canonical map::

    {"v": 1, "kind": "chat" | "currency", "chain_id": text(1..64),
     "params": {name: integer, ...}, "accounts": [[key(32), balance], ...], ...}

Parameters missing from ``params`` take the chain's defaults; an unknown name or
a value outside its range is an error, as is any malformed part, so two nodes
with the same genesis bytes always build the same state root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode

from ._errors import ChainArgumentError
from ._state import StateStore
from ._state_app import META_BLOCK, META_CHAIN
from ._state_records import Account, put_record, store_account
from ._tx import MAX_AMOUNT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("LATE_PARAMS", "ParamSpec", "build_state", "param", "read_genesis")

_LIMITS: Final = DecodeLimits(max_size=64 << 20, max_depth=6, max_items=1 << 22)
ParamSpec = dict[str, tuple[int, int, int]]  # name -> (default, lo, hi)
#: Parameters added after chains were started: stored only when the genesis gives
#: them, so an older genesis keeps its state root; readers use :func:`param`.
LATE_PARAMS: Final = frozenset(
    {"relay_fault_score", "relay_fault_epochs", "relay_slash_permille", "relay_delivery_permille"}
)


def param(params: Mapping[str, int], spec: ParamSpec, name: str) -> int:
    """The value of parameter ``name`` (its default when the genesis left a late one out)."""
    return params.get(name, spec[name][0])


def read_genesis(data: bytes, kind: str, extra: set[str]) -> Fields:
    """Decode a genesis document of ``kind`` allowing ``extra`` top-level fields.

    Raises:
        ChainArgumentError: The document is malformed or of another kind.
    """
    try:
        allowed = frozenset({"v", "kind", "chain_id", "params", "accounts", *extra})
        fields = Fields(canonical_decode(data, _LIMITS), "genesis", allowed)
        if fields.get_int("v") != 1 or fields.get_str("kind") != kind:
            raise DecodeError(f"genesis: not a version-1 {kind} genesis")
    except DecodeError as exc:
        raise ChainArgumentError(str(exc)) from None
    return fields


def _params(fields: Fields, spec: ParamSpec) -> dict[str, int]:
    given = fields.raw("params") if fields.has("params") else {}
    if not isinstance(given, dict) or not set(given) <= set(spec):
        raise ChainArgumentError("genesis: params must be a map of known names")
    params = {}
    for name, (default, lo, hi) in spec.items():
        if name in LATE_PARAMS and name not in given:
            continue
        value = given.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ChainArgumentError(f"genesis: parameter {name!r} out of range")
        params[name] = value
    return params


def _accounts(fields: Fields) -> list[tuple[bytes, int]]:
    try:
        raw = fields.get_list("accounts", max_len=1 << 20) if fields.has("accounts") else []
    except DecodeError as exc:
        raise ChainArgumentError(str(exc)) from None
    accounts = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], bytes)
            and len(item[0]) == 32
            and isinstance(item[1], int)
            and 0 < item[1] <= MAX_AMOUNT
        ):
            raise ChainArgumentError("genesis: accounts must be [key(32), balance > 0] pairs")
        accounts.append((item[0], item[1]))
    if len({key for key, _ in accounts}) != len(accounts):
        raise ChainArgumentError("genesis: an account is listed twice")
    return accounts


def build_state(
    data: bytes,
    kind: str,
    spec: ParamSpec,
    extra: set[str],
    seed: Callable[[StateStore, dict[str, int], Fields], int],
) -> StateStore:
    """Build a committed genesis state.

    Args:
        data: The genesis document.
        kind: ``"chat"`` or ``"currency"``.
        spec: The chain's parameters with defaults and ranges.
        extra: Further top-level fields the chain reads in ``seed``.
        seed: Writes the chain-specific part; returns the supply it allocated.

    Raises:
        ChainArgumentError: The document is malformed or inconsistent.
    """
    fields = read_genesis(data, kind, extra)
    try:
        chain_id = fields.get_str("chain_id", max_len=64)
    except DecodeError as exc:
        raise ChainArgumentError(str(exc)) from None
    if not chain_id:
        raise ChainArgumentError("genesis: empty chain id")
    params = _params(fields, spec)
    state = StateStore()
    state.begin()
    put_record(state, META_CHAIN, {"chain": chain_id, "kind": kind, "params": params})
    put_record(state, META_BLOCK, {"h": 0, "t": 0})
    supply = 0
    for key, balance in _accounts(fields):
        store_account(state, key, Account(balance, 0))
        supply += balance
    try:
        supply += seed(state, params, fields)
    except DecodeError as exc:
        raise ChainArgumentError(f"genesis: {exc}") from None
    if supply > MAX_AMOUNT:
        raise ChainArgumentError("genesis: total supply too large")
    state.seal()
    state.commit()
    return state


def no_extra(state: StateStore, params: Mapping[str, int], fields: Fields) -> int:
    """A ``seed`` for chains with nothing beyond accounts."""
    return 0
