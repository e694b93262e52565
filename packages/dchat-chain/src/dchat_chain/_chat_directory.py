"""Chat chain: the relay directory, delivery receipt batches and reputation counters.

Theory of operation. A relay operator's identity lists its relay with an
endpoint, a region and a *stake reference*: the currency-chain account whose
relay stake backs it. This chain stores the reference; clients check the stake
itself with a currency-chain Merkle proof (the cross-chain check that makes
listing conditional on stake belongs to the light-client work, not here).

A listed relay commits batches of delivery receipts as Merkle roots with a
count; the count also feeds the relay's ``delivered`` reputation counter.
Identities vouch for one another once per pair (and may withdraw it), which
feeds the ``vouches`` counter. Counters are integers, never scores with floats.

State: ``relay/<id>`` -> ``{"ep", "region", "stake", "n"}``;
``rcpt/<id><index(8)>`` -> ``{"root", "count", "h"}``;
``rep/<id>`` -> ``{"v": vouches, "d": delivered}``; ``vouch/<from><to>`` -> 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import canonical_decode

from ._chat_identity import identity_of, load_identity
from ._state_records import body_fields, get_record, int_be, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "receipt_batch",
    "register_relay",
    "relay_directory",
    "unregister_relay",
    "vouch",
)

MAX_RECEIPTS: Final = 1 << 24


def register_relay(state: StateStore, tx: Transaction) -> None:
    """``register_relay {endpoint, region, stake_ref}``: list or update the sender's relay."""
    fields = body_fields(tx.body, "register_relay", {"endpoint", "region", "stake_ref"})
    identity = identity_of(state, tx.sender)
    old: dict[str, Any] = get_record(state, b"relay/" + identity) or {"n": 0}
    record = {
        "ep": fields.get_str("endpoint", max_len=256),
        "region": fields.get_str("region", max_len=32),
        "stake": fields.get_bytes("stake_ref", size=32),
        "n": old["n"],
    }
    put_record(state, b"relay/" + identity, record)


def relay_directory(state: StateStore) -> list[tuple[bytes, dict[str, Any]]]:
    """Every listed relay of the committed state: (identity, record), by identity.

    A scan of the state (validators serve it to their own probers; see
    docs/operations.md), not something a light client can check: it has no proof.
    """
    return [
        (key[len(b"relay/") :], canonical_decode(value))
        for key, value in state.committed_prefix(b"relay/")
    ]


def unregister_relay(state: StateStore, tx: Transaction) -> None:
    """``unregister_relay {}``: remove the sender's relay from the directory."""
    body_fields(tx.body, "unregister_relay", set())
    identity = identity_of(state, tx.sender)
    if state.get(b"relay/" + identity) is None:
        raise RejectedTransactionError("no relay listed")
    state.delete(b"relay/" + identity)


def _bump(state: StateStore, identity: bytes, counter: str, delta: int) -> None:
    rep: dict[str, int] = get_record(state, b"rep/" + identity) or {"v": 0, "d": 0}
    rep[counter] += delta
    put_record(state, b"rep/" + identity, rep)


def receipt_batch(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``receipt_batch {root, count}``: a listed relay commits a batch of delivery receipts."""
    fields = body_fields(tx.body, "receipt_batch", {"root", "count"})
    root, count = fields.get_bytes("root", size=32), fields.get_int("count", lo=1, hi=MAX_RECEIPTS)
    identity = identity_of(state, tx.sender)
    relay: dict[str, Any] | None = get_record(state, b"relay/" + identity)
    if relay is None:
        raise UnauthorizedError("only a listed relay commits receipts")
    entry = {"root": root, "count": count, "h": context.height}
    put_record(state, b"rcpt/" + identity + int_be(relay["n"]), entry)
    relay["n"] += 1
    put_record(state, b"relay/" + identity, relay)
    _bump(state, identity, "d", count)


def vouch(state: StateStore, tx: Transaction) -> None:
    """``vouch {identity, on}``: vouch for (``on`` true) or withdraw from another identity."""
    fields = body_fields(tx.body, "vouch", {"identity", "on"})
    target = fields.get_bytes("identity", size=32)
    on = fields.raw("on")
    if not isinstance(on, bool):
        raise MalformedTransactionError("'on' must be a boolean")
    voucher = identity_of(state, tx.sender)
    if voucher == target:
        raise RejectedTransactionError("an identity cannot vouch for itself")
    load_identity(state, target)
    marker = b"vouch/" + voucher + target
    if (state.get(marker) is not None) == on:
        raise RejectedTransactionError("nothing to change")
    if on:
        put_record(state, marker, 1)
    else:
        state.delete(marker)
    _bump(state, target, "v", 1 if on else -1)
