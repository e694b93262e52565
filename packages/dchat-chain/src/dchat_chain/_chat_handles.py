"""Chat chain: public handles (``@name``) that point to an identity, its relays and its card.

Theory of operation. A registered identity may hold one live handle. Taking a
free handle costs a proof of work (:mod:`._handle_names`: ``handle_pow_bits``
plus two bits per character under six) instead of a fee, like registering an
identity, so squatting many names costs work in proportion and the newcomer
needs no tokens; one handle per identity multiplies that by the work of an
identity registration. A handle lives ``handle_term`` blocks from its
registration or last renewal; the owner renews it with the same work again
(bound to the term being renewed, so holding a name costs work per term and
squatting never becomes free) and may refresh its relays and card on the
way. Registering, renewing and releasing pay no fee (a newcomer has no
tokens); a transfer pays the chain's fee. After its expiry height the slot is
free for anyone, and lookups treat the stale record as absent.

Ownership is by identity id, and every action is authorised by the identity's
*current* key (``idkey/``), so when a guardian recovery moves the identity to a
new key the handle follows it: the old key can no longer renew, transfer or
release it, the new one can. The record carries the owner's signed contact
card, checked here (its signature, and its key is the sender's, the mailbox is
the one recorded); a lookup also checks the card's key against the identity's
current key, so a card left over from before a rotation is refused until the
new key publishes one (``renew_handle``). ``transfer_handle`` moves a handle to
another registered identity without a live handle, with that identity's card.

State: ``handle/<skeleton>`` -> ``{"name", "id", "exp", "relays", "mb", "card"}``;
``hid/<id>`` -> skeleton (the one handle of an identity).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, NodeId
from dchat_identity import ContactCard

from ._chat_identity import identity_of, load_identity
from ._handle_names import (
    InvalidHandleError,
    handle_pow_ok,
    handle_skeleton,
    handle_work_bits,
    normalize_handle,
)
from ._state_records import body_fields, get_record, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from dchat_core import Fields

    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "MAX_HANDLE_RELAYS",
    "handle_key",
    "parse_relay_text",
    "register_handle",
    "release_handle",
    "renew_handle",
    "transfer_handle",
)

MAX_HANDLE_RELAYS: Final = 8
MAX_CARD: Final = 2048
_HOST: Final = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
_RELAY: Final = re.compile(rf"(?:(dcnd1[a-z2-7]{{52}})@)?({_HOST}):([0-9]{{1,5}})")


def handle_key(name: str) -> bytes:
    """The state key of the slot ``name`` (normalised) lives in."""
    return b"handle/" + handle_skeleton(name).encode("ascii")


def parse_relay_text(text: object) -> str:
    """Check one relay address, ``HOST:PORT`` or ``NODEID@HOST:PORT`` (docs/protocol.md).

    Raises:
        MalformedTransactionError: Not such an address.
    """
    found = _RELAY.fullmatch(text) if isinstance(text, str) and len(text) <= 320 else None
    if found is None or not 1 <= int(found[3]) <= 65535:
        raise MalformedTransactionError("a relay is HOST:PORT or NODEID@HOST:PORT")
    if found[1] is not None:
        try:
            NodeId.parse(found[1])
        except DchatError:
            raise MalformedTransactionError("a relay's node id is not canonical") from None
    return str(text)


def _relays(fields: Fields) -> list[str]:
    raw = fields.get_list("relays", max_len=MAX_HANDLE_RELAYS)
    relays = [parse_relay_text(r) for r in raw]
    if not relays or len(set(relays)) != len(relays):
        raise MalformedTransactionError(f"relays: 1-{MAX_HANDLE_RELAYS} distinct addresses")
    return relays


def _card(fields: Fields, key: bytes) -> tuple[bytes, bytes]:
    """The card bytes and mailbox; the card must verify and speak for ``key``."""
    raw = fields.get_bytes("card", max_size=MAX_CARD)
    try:
        card = ContactCard.from_bytes(raw)
    except DchatError as exc:
        raise MalformedTransactionError(f"card: {exc}") from None
    if card.identity_key.to_bytes() != key:
        raise UnauthorizedError("the card is not signed by the identity's current key")
    return raw, bytes(card.mailbox)


def _name(fields: Fields) -> str:
    text = fields.get_str("name", max_len=64)
    try:
        name = normalize_handle(text)
    except InvalidHandleError as exc:
        raise MalformedTransactionError(str(exc)) from None
    if name != text:
        raise MalformedTransactionError("the name must be given in its normalised form")
    return name


def _live(record: dict[str, Any] | None, height: int) -> bool:
    return record is not None and record["exp"] > height


def _owned(
    state: StateStore, context: BlockContext, tx: Transaction, name: str
) -> tuple[bytes, dict[str, Any]]:
    """The sender's identity and its live handle ``name``."""
    identity = identity_of(state, tx.sender)
    record: dict[str, Any] | None = get_record(state, handle_key(name))
    if record is None or record["exp"] <= context.height or record["name"] != name:
        raise RejectedTransactionError("no such live handle")
    if record["id"] != identity:
        raise UnauthorizedError("the handle belongs to another identity")
    return identity, record


def _free_holder(state: StateStore, context: BlockContext, identity: bytes) -> None:
    """Refuse if ``identity`` holds a live handle; forget an expired one."""
    held: str | None = get_record(state, b"hid/" + identity)
    if held is None:
        return
    record = get_record(state, b"handle/" + held.encode("ascii"))
    if _live(record, context.height) and record["id"] == identity:
        raise RejectedTransactionError("the identity already holds a live handle")
    state.delete(b"hid/" + identity)


def _check_work(
    params: dict[str, Any],
    context: BlockContext,
    fields: Fields,
    name: str,
    identity: bytes,
    term: int,
) -> None:
    bits = handle_work_bits(params["handle_pow_bits"], name)
    nonce = fields.get_bytes("pow", max_size=32)
    if not handle_pow_ok(context.chain_id, name, identity, nonce, bits, term):
        raise UnauthorizedError(f"insufficient proof of work ({bits} bits for this name)")


def register_handle(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``register_handle {name, pow, relays, card}``: take a free (or expired) handle."""
    fields = body_fields(tx.body, "register_handle", {"name", "pow", "relays", "card"})
    name = _name(fields)
    identity = identity_of(state, tx.sender)
    _check_work(params, context, fields, name, identity, 0)
    relays, (card, mailbox) = _relays(fields), _card(fields, tx.sender)
    key = handle_key(name)
    old: dict[str, Any] | None = get_record(state, key)
    if _live(old, context.height):
        raise RejectedTransactionError("the handle (or one that looks like it) is taken")
    _free_holder(state, context, identity)
    if old is not None and get_record(state, b"hid/" + old["id"]) == handle_skeleton(name):
        state.delete(b"hid/" + old["id"])  # the expired holder's pointer
    exp = context.height + params["handle_term"]
    record = {"name": name, "id": identity, "exp": exp, "relays": relays, "mb": mailbox}
    put_record(state, key, {**record, "card": card})
    put_record(state, b"hid/" + identity, handle_skeleton(name))


def renew_handle(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``renew_handle {name, pow, [relays], [card]}``: a new term, fresh relays and card."""
    fields = body_fields(tx.body, "renew_handle", {"name", "pow", "relays", "card"})
    name = _name(fields)
    identity, record = _owned(state, context, tx, name)
    _check_work(params, context, fields, name, identity, record["exp"])
    if fields.has("relays"):
        record["relays"] = _relays(fields)
    if fields.has("card"):
        record["card"], record["mb"] = _card(fields, tx.sender)
    record["exp"] = context.height + params["handle_term"]
    put_record(state, handle_key(name), record)


def transfer_handle(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``transfer_handle {name, to, relays, card}``: give a live handle to another identity."""
    fields = body_fields(tx.body, "transfer_handle", {"name", "to", "relays", "card"})
    name = _name(fields)
    identity, record = _owned(state, context, tx, name)
    target = fields.get_bytes("to", size=32)
    if target == identity:
        raise RejectedTransactionError("the handle is already this identity's")
    target_key: bytes = load_identity(state, target)["key"]
    _free_holder(state, context, target)
    record["relays"] = _relays(fields)
    record["card"], record["mb"] = _card(fields, target_key)
    record["id"] = target
    put_record(state, handle_key(name), record)
    state.delete(b"hid/" + identity)
    put_record(state, b"hid/" + target, handle_skeleton(name))


def release_handle(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``release_handle {name}``: give a live handle up at once."""
    name = _name(body_fields(tx.body, "release_handle", {"name"}))
    identity, _ = _owned(state, context, tx, name)
    state.delete(handle_key(name))
    state.delete(b"hid/" + identity)
