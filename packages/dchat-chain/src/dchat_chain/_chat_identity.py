"""Chat chain: identity registration, document hashes, prekey pointers, guardian recovery.

Theory of operation. An identity is registered by its own Ed25519 identity key
(the transaction sender); its id is ``IdentityId.derive(key)`` and stays fixed
when a guardian recovery later moves it to a new key. Registration costs a
proof of work bound to the chain and the key (so work cannot be reused
elsewhere) instead of a fee, because a newcomer owns no tokens yet.

A recovery request names a new key; it needs ``threshold`` distinct guardians
(the requester counts) and a time lock of ``recovery_delay_ms`` of *block time*
from the request. Until it executes, the identity's current key can veto it,
which is the owner's defence against colluding guardians.

State: ``id/<id>`` -> ``{"key", "doc", "ver", "g": [guardian ids], "th"}``;
``idkey/<key>`` -> id; ``prekeys/<id>`` -> pointer; ``rec/<id>`` -> request.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from dchat_core import IdentityId

from ._state_records import body_fields, get_record, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from dchat_core import Fields

    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "POW_DOMAIN",
    "identity_of",
    "load_identity",
    "pow_ok",
    "recovery_approve",
    "recovery_execute",
    "recovery_request",
    "recovery_veto",
    "register_identity",
    "set_guardians",
    "set_prekeys",
    "solve_pow",
    "update_document",
)

POW_DOMAIN: Final = b"dchat-pow-v1\x00"
MAX_GUARDIANS: Final = 16


def _pow_digest(chain_id: str, key: bytes, nonce: bytes) -> int:
    data = POW_DOMAIN + chain_id.encode() + b"\x00" + key + nonce
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


def pow_ok(chain_id: str, key: bytes, nonce: bytes, bits: int) -> bool:
    """Whether ``nonce`` is a proof of ``bits`` bits of work for ``key`` on ``chain_id``."""
    return _pow_digest(chain_id, key, nonce) >> (256 - bits) == 0 if bits else True


def solve_pow(chain_id: str, key: bytes, bits: int) -> bytes:
    """Find a registration proof of work (about ``2**bits`` hashes)."""
    counter = 0
    while not pow_ok(chain_id, key, counter.to_bytes(8, "big"), bits):
        counter += 1
    return counter.to_bytes(8, "big")


def load_identity(state: StateStore, identity: bytes) -> dict[str, Any]:
    """The record of ``identity``.

    Raises:
        RejectedTransactionError: No such identity.
    """
    record: dict[str, Any] | None = get_record(state, b"id/" + identity)
    if record is None:
        raise RejectedTransactionError("unknown identity")
    return record


def identity_of(state: StateStore, key: bytes) -> bytes:
    """The identity whose current key is ``key``.

    Raises:
        UnauthorizedError: ``key`` is no registered identity's current key.
    """
    identity: bytes | None = get_record(state, b"idkey/" + key)
    if identity is None:
        raise UnauthorizedError("the sender is not a registered identity")
    return identity


def _guardians(fields: Fields, own: bytes) -> tuple[list[bytes], int]:
    raw = fields.get_list("guardians", max_len=MAX_GUARDIANS) if fields.has("guardians") else []
    if not all(isinstance(g, bytes) and len(g) == 32 for g in raw):
        raise MalformedTransactionError("guardians must be 32-byte identity ids")
    if raw != sorted(set(raw)) or own in raw:
        raise MalformedTransactionError("guardians: sorted, distinct, not the identity itself")
    threshold = fields.get_int("threshold", lo=0, hi=len(raw)) if fields.has("threshold") else 0
    if bool(raw) != bool(threshold):
        raise MalformedTransactionError("a guardian set needs a threshold of at least 1")
    return raw, threshold


def register_identity(state: StateStore, chain_id: str, pow_bits: int, tx: Transaction) -> None:
    """``register_identity {pow, doc, [guardians, threshold]}``."""
    fields = body_fields(tx.body, "register_identity", {"pow", "doc", "guardians", "threshold"})
    if not pow_ok(chain_id, tx.sender, fields.get_bytes("pow", max_size=32), pow_bits):
        raise UnauthorizedError("insufficient proof of work")
    identity = bytes(IdentityId.derive(tx.sender))
    if state.get(b"id/" + identity) is not None or state.get(b"idkey/" + tx.sender) is not None:
        raise RejectedTransactionError("identity already registered")
    guardians, threshold = _guardians(fields, identity)
    record = {"key": tx.sender, "doc": fields.get_bytes("doc", size=32), "ver": 1}
    put_record(state, b"id/" + identity, {**record, "g": guardians, "th": threshold})
    put_record(state, b"idkey/" + tx.sender, identity)


def update_document(state: StateStore, tx: Transaction) -> None:
    """``update_document {doc, version}``: a newer identity document hash."""
    fields = body_fields(tx.body, "update_document", {"doc", "version"})
    identity = identity_of(state, tx.sender)
    record = load_identity(state, identity)
    version = fields.get_int("version")
    if version <= record["ver"]:
        raise RejectedTransactionError("document versions must increase")
    record.update(doc=fields.get_bytes("doc", size=32), ver=version)
    put_record(state, b"id/" + identity, record)


def set_guardians(state: StateStore, tx: Transaction) -> None:
    """``set_guardians {guardians, threshold}``: replace the guardian set."""
    fields = body_fields(tx.body, "set_guardians", {"guardians", "threshold"})
    identity = identity_of(state, tx.sender)
    record = load_identity(state, identity)
    record["g"], record["th"] = _guardians(fields, identity)
    put_record(state, b"id/" + identity, record)
    state.delete(b"rec/" + identity)  # a pending request relied on the old guardians


def set_prekeys(state: StateStore, tx: Transaction) -> None:
    """``set_prekeys {pointer}``: where the identity's current prekey bundle lives."""
    fields = body_fields(tx.body, "set_prekeys", {"pointer"})
    identity = identity_of(state, tx.sender)
    put_record(state, b"prekeys/" + identity, fields.get_bytes("pointer", max_size=256))


def _target(state: StateStore, tx: Transaction, kind: str, extra: set[str]) -> tuple[bytes, Fields]:
    fields = body_fields(tx.body, kind, {"identity", *extra})
    return fields.get_bytes("identity", size=32), fields


def _as_guardian(state: StateStore, tx: Transaction, record: dict[str, Any]) -> bytes:
    guardian = identity_of(state, tx.sender)
    if guardian not in record["g"]:
        raise UnauthorizedError("the sender is not a guardian of this identity")
    return guardian


def recovery_request(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``recovery_request {identity, new_key}``: a guardian starts a recovery."""
    identity, fields = _target(state, tx, "recovery_request", {"new_key"})
    record = load_identity(state, identity)
    guardian = _as_guardian(state, tx, record)
    if state.get(b"rec/" + identity) is not None:
        raise RejectedTransactionError("a recovery is already pending (veto or execute it)")
    new_key = fields.get_bytes("new_key", size=32)
    if state.get(b"idkey/" + new_key) is not None:
        raise RejectedTransactionError("the new key already belongs to an identity")
    unlock = context.time_ms + params["recovery_delay_ms"]
    request = {"key": new_key, "ok": [guardian], "unlock": unlock}
    put_record(state, b"rec/" + identity, request)


def recovery_approve(state: StateStore, tx: Transaction) -> None:
    """``recovery_approve {identity}``: another guardian agrees."""
    identity, _ = _target(state, tx, "recovery_approve", set())
    guardian = _as_guardian(state, tx, load_identity(state, identity))
    request = get_record(state, b"rec/" + identity)
    if request is None:
        raise RejectedTransactionError("no recovery pending")
    if guardian in request["ok"]:
        raise RejectedTransactionError("this guardian already approved")
    request["ok"] = sorted([*request["ok"], guardian])
    put_record(state, b"rec/" + identity, request)


def recovery_veto(state: StateStore, tx: Transaction) -> None:
    """``recovery_veto {identity}``: the identity's current key cancels a recovery."""
    identity, _ = _target(state, tx, "recovery_veto", set())
    if identity_of(state, tx.sender) != identity:
        raise UnauthorizedError("only the identity itself can veto its recovery")
    if state.get(b"rec/" + identity) is None:
        raise RejectedTransactionError("no recovery pending")
    state.delete(b"rec/" + identity)


def recovery_execute(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``recovery_execute {identity}``: anyone completes an approved, unlocked recovery."""
    identity, _ = _target(state, tx, "recovery_execute", set())
    record = load_identity(state, identity)
    request = get_record(state, b"rec/" + identity)
    if request is None:
        raise RejectedTransactionError("no recovery pending")
    if len(request["ok"]) < record["th"] or context.time_ms < request["unlock"]:
        raise RejectedTransactionError("recovery lacks approvals or is still time-locked")
    if state.get(b"idkey/" + request["key"]) is not None:
        raise RejectedTransactionError("the new key already belongs to an identity")
    state.delete(b"idkey/" + record["key"])
    record["key"] = request["key"]
    put_record(state, b"id/" + identity, record)
    put_record(state, b"idkey/" + request["key"], identity)
    state.delete(b"rec/" + identity)
