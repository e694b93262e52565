"""Chat chain: the relay directory, delivery receipt batches and reputation counters.

Theory of operation. A relay operator's identity lists its relay with an
endpoint, a region and a *stake reference*: the currency-chain account whose
relay stake backs it. This chain stores the reference; clients check the stake
itself with a currency-chain Merkle proof (:mod:`._relay_directory` reads the
directory, :mod:`._relay_choice` picks home relays from it). A listing may
also carry the relay's link key (``node``: users pin the node id derived from
it), network ``tags`` (lowercase words such as ``as:64500``; the region is a
tag too) and an operator ``label``; the registering identity is the operator.

Every listed relay's identity id is also kept in one sorted index,
``relayidx``, so a light client can read the whole directory by proofs: the
index, then each entry (a state proof covers one key; without the index a
node could hide relays by not naming them).

A listed relay commits batches of delivery receipts as Merkle roots with a
count; the count also feeds the relay's ``delivered`` reputation counter.
Identities vouch for one another once per pair (and may withdraw it), which
feeds the ``vouches`` counter. Counters are integers, never scores with floats.

State: ``relay/<id>`` -> ``{"ep", "region", "stake", "n"[, "node", "tags", "label"]}``;
``relayidx`` -> sorted list of listed relay identity ids (at most ``MAX_RELAYS``);
``rcpt/<id><index(8)>`` -> ``{"root", "count", "h"}``;
``rep/<id>`` -> ``{"v": vouches, "d": delivered}``; ``vouch/<from><to>`` -> 1.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from dchat_core import canonical_decode

from ._chat_identity import identity_of, load_identity
from ._state_records import body_fields, get_record, int_be, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from dchat_core import Fields

    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "MAX_RELAYS",
    "RELAY_INDEX_KEY",
    "index_relay",
    "receipt_batch",
    "register_relay",
    "relay_directory",
    "unregister_relay",
    "vouch",
)

MAX_RECEIPTS: Final = 1 << 24
MAX_RELAYS: Final = 4096
MAX_TAGS: Final = 8
MAX_TAG_LEN: Final = 32
MAX_LABEL_LEN: Final = 64
RELAY_INDEX_KEY: Final = b"relayidx"
_TAG: Final = re.compile(r"[a-z0-9][a-z0-9:._-]*")


def _tags(fields: Fields) -> list[str]:
    raw = fields.get_list("tags", max_len=MAX_TAGS) if fields.has("tags") else []
    if not all(isinstance(t, str) and len(t) <= MAX_TAG_LEN and _TAG.fullmatch(t) for t in raw):
        raise MalformedTransactionError("tags are lowercase words of at most 32 characters")
    if raw != sorted(set(raw)):
        raise MalformedTransactionError("tags must be sorted and distinct")
    return raw


def _extras(fields: Fields) -> dict[str, Any]:
    """The optional listing fields (a listing without them stays valid)."""
    extras: dict[str, Any] = {}
    if fields.has("node"):
        extras["node"] = fields.get_bytes("node", size=32)
    if fields.has("tags"):
        extras["tags"] = _tags(fields)
    if fields.has("label"):
        extras["label"] = fields.get_str("label", max_len=MAX_LABEL_LEN)
    return extras


def index_relay(state: StateStore, identity: bytes) -> None:
    """Add ``identity`` to the relay index (every way of listing a relay calls this).

    Raises:
        RejectedTransactionError: The directory holds ``MAX_RELAYS`` relays already.
    """
    index: list[bytes] = get_record(state, RELAY_INDEX_KEY) or []
    if identity not in index:
        if len(index) >= MAX_RELAYS:
            raise RejectedTransactionError("the relay directory is full")
        put_record(state, RELAY_INDEX_KEY, sorted([*index, identity]))


def register_relay(state: StateStore, tx: Transaction) -> None:
    """``register_relay {endpoint, region, stake_ref, [node, tags, label]}``: list or update."""
    fields = body_fields(tx.body, "register_relay", _RELAY_FIELDS)
    identity = identity_of(state, tx.sender)
    old: dict[str, Any] = get_record(state, b"relay/" + identity) or {"n": 0}
    record = {
        "ep": fields.get_str("endpoint", max_len=256),
        "region": fields.get_str("region", max_len=32),
        "stake": fields.get_bytes("stake_ref", size=32),
        "n": old["n"],
        **_extras(fields),
    }
    index_relay(state, identity)
    put_record(state, b"relay/" + identity, record)


_RELAY_FIELDS: Final = {"endpoint", "region", "stake_ref", "node", "tags", "label"}


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
    index: list[bytes] = get_record(state, RELAY_INDEX_KEY) or []
    rest = [i for i in index if i != identity]
    if rest:
        put_record(state, RELAY_INDEX_KEY, rest)
    else:
        state.delete(RELAY_INDEX_KEY)


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
