"""Chat chain: channels, their permissions, and ordering commitments.

Theory of operation. A channel is created by an identity, its owner. Roles
are ``member`` (1), ``admin`` (2) and ``owner`` (3), one per identity:

* the owner may set any other identity's role to none, member or admin, and
  hand ownership to a member or admin (becoming an admin itself);
* an admin may add or remove plain members;
* anyone but the owner may leave (set its own role to none).

Every change is a transaction signed by the identity that makes it, so the
chain records who authorised it. Owners and admins are the channel's
sequencers: they commit the order of its messages as contiguous ranges
``[first, last]`` with the Merkle root of the batch. ``first`` must equal the
channel's next sequence number, so ranges never overlap or leave gaps.

State: ``ch/<channel>`` -> ``{"owner", "name", "next"}``;
``chm/<channel><identity>`` -> role; ``ord/<channel><first(8)>`` ->
``{"last", "root", "by", "h"}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode

from ._chat_identity import identity_of, load_identity
from ._errors import ChainAnswerError
from ._state_records import body_fields, get_record, int_be, put_record
from ._tx_errors import RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "ADMIN",
    "MEMBER",
    "OWNER",
    "OrderRecord",
    "channel_key",
    "chat_channel_id",
    "commit_order",
    "create_channel",
    "decode_channel_next",
    "decode_order_record",
    "order_key",
    "set_role",
    "transfer_channel",
)

MEMBER, ADMIN, OWNER = 1, 2, 3
CHANNEL_DOMAIN: Final = b"dchat-channel-v1\x00"
MAX_RANGE: Final = 1 << 20
_LIMITS: Final = DecodeLimits(max_size=512, max_depth=2, max_items=8)


def chat_channel_id(creator: bytes, name: str) -> bytes:
    """The channel id: ``SHA-256(domain || creator id || name)``."""
    return hashlib.sha256(CHANNEL_DOMAIN + creator + name.encode()).digest()


def channel_key(channel: bytes) -> bytes:
    """The state key of channel ``channel``'s record (owner, name, next sequence number)."""
    return b"ch/" + channel


def order_key(channel: bytes, first: int) -> bytes:
    """The state key of the order commitment of ``channel`` starting at ``first``."""
    return b"ord/" + channel + int_be(first)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A proven ``ord/`` value: the range's last number, its root, who committed it, when."""

    last: int
    root: bytes
    by: bytes
    height: int


def decode_order_record(value: bytes) -> OrderRecord:
    """Parse a proven ``ord/`` value.

    Raises:
        ChainAnswerError: not an order record.
    """
    try:
        f = Fields(
            canonical_decode(value, _LIMITS), "order", frozenset({"last", "root", "by", "h"})
        )
        return OrderRecord(
            f.get_int("last"), f.get_bytes("root", size=32), f.get_bytes("by", size=32),
            f.get_int("h"),
        )  # fmt: skip
    except DecodeError as exc:
        raise ChainAnswerError(f"not an order record: {exc}") from None


def decode_channel_next(value: bytes) -> int:
    """The next sequence number of a proven ``ch/`` value.

    Raises:
        ChainAnswerError: not a channel record.
    """
    try:
        fields = Fields(
            canonical_decode(value, _LIMITS), "channel", frozenset({"owner", "name", "next"})
        )
        return fields.get_int("next")
    except DecodeError as exc:
        raise ChainAnswerError(f"not a channel record: {exc}") from None


def _role(state: StateStore, channel: bytes, identity: bytes) -> int:
    role: int = get_record(state, b"chm/" + channel + identity) or 0
    return role


def _set(state: StateStore, channel: bytes, identity: bytes, role: int) -> None:
    if role:
        put_record(state, b"chm/" + channel + identity, role)
    else:
        state.delete(b"chm/" + channel + identity)


def _load(state: StateStore, channel: bytes) -> dict[str, Any]:
    record: dict[str, Any] | None = get_record(state, b"ch/" + channel)
    if record is None:
        raise RejectedTransactionError("no such channel")
    return record


def create_channel(state: StateStore, tx: Transaction) -> None:
    """``create_channel {name}``: the sender's identity becomes the owner."""
    fields = body_fields(tx.body, "create_channel", {"name"})
    name = fields.get_str("name", max_len=64)
    owner = identity_of(state, tx.sender)
    channel = chat_channel_id(owner, name)
    if state.get(b"ch/" + channel) is not None:
        raise RejectedTransactionError("channel already exists")
    put_record(state, b"ch/" + channel, {"owner": owner, "name": name, "next": 0})
    _set(state, channel, owner, OWNER)


def set_role(state: StateStore, tx: Transaction) -> None:
    """``set_role {channel, member, role}`` with role 0 (remove), 1 (member) or 2 (admin)."""
    fields = body_fields(tx.body, "set_role", {"channel", "member", "role"})
    channel = fields.get_bytes("channel", size=32)
    target = fields.get_bytes("member", size=32)
    new = fields.get_int("role", hi=ADMIN)
    _load(state, channel)
    actor = identity_of(state, tx.sender)
    mine, theirs = _role(state, channel, actor), _role(state, channel, target)
    leaving = actor == target and new == 0 and mine != OWNER
    by_owner = mine == OWNER and theirs != OWNER
    by_admin = mine == ADMIN and theirs <= MEMBER and new <= MEMBER
    if not (leaving or by_owner or by_admin):
        raise UnauthorizedError("the sender may not make this role change")
    if new and theirs == 0:
        load_identity(state, target)  # only registered identities join
    _set(state, channel, target, new)


def transfer_channel(state: StateStore, tx: Transaction) -> None:
    """``transfer_channel {channel, new_owner}``: the owner hands the channel over."""
    fields = body_fields(tx.body, "transfer_channel", {"channel", "new_owner"})
    channel = fields.get_bytes("channel", size=32)
    new_owner = fields.get_bytes("new_owner", size=32)
    record = _load(state, channel)
    actor = identity_of(state, tx.sender)
    if record["owner"] != actor:
        raise UnauthorizedError("only the owner can transfer a channel")
    if _role(state, channel, new_owner) not in (MEMBER, ADMIN):
        raise RejectedTransactionError("the new owner must already be in the channel")
    record["owner"] = new_owner
    put_record(state, b"ch/" + channel, record)
    _set(state, channel, actor, ADMIN)
    _set(state, channel, new_owner, OWNER)


def commit_order(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``commit_order {channel, first, last, root}``: fix the order of a message range."""
    fields = body_fields(tx.body, "commit_order", {"channel", "first", "last", "root"})
    channel = fields.get_bytes("channel", size=32)
    first, last = fields.get_int("first"), fields.get_int("last")
    root = fields.get_bytes("root", size=32)
    record = _load(state, channel)
    actor = identity_of(state, tx.sender)
    if _role(state, channel, actor) < ADMIN:
        raise UnauthorizedError("only the channel's owner or admins commit order")
    if first != record["next"]:
        raise RejectedTransactionError(f"the next range must start at {record['next']}")
    if not first <= last < first + MAX_RANGE:
        raise RejectedTransactionError("a range is first <= last, at most 2**20 long")
    entry = {"last": last, "root": root, "by": actor, "h": context.height}
    put_record(state, b"ord/" + channel + int_be(first), entry)
    record["next"] = last + 1
    put_record(state, b"ch/" + channel, record)
