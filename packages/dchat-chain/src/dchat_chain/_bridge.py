"""Atomic cross-chain actions: stake locked on the currency chain, a relay listed on chat.

Theory of operation. One action has one *decision point*: the chat chain. The
currency side only ever moves funds in response to a light-client proof of
what the chat chain decided, so the two sides cannot disagree::

    currency                      chat                           currency
    xlock(H, amount, D, to) ──►  xclaim(secret, proof of lock)  ──►  xfinalize(proof of claim)
       funds: owner -> lock        accepted only in blocks <= D       lock -> owner's relay stake
                                   writes xclaim/<id> forever
                              or: no claim in blocks <= D       ──►  xrefund(proof of absence
                                                                      at chat header >= D + 1)
                                                                      lock -> owner

The lock record is ``xlock/<id>`` with status 0 (locked), 1 (done) or 2
(refunded); it is never deleted, so a lock id cannot be reused. The chat
chain accepts ``xclaim`` for a lock only if a verified currency header proves
the lock (status 0, addressed to this chain and to the sender's identity), the
secret hashes to ``H``, the block height is at most the deadline ``D`` and no
claim for the lock exists yet; it then writes ``xclaim/<id>`` and lists the
relay, in one transaction. ``xfinalize`` needs a proof that ``xclaim/<id>``
exists; ``xrefund`` needs a proof that it is absent from the chat state after
block ``D`` or later. The chat chain never writes the claim after ``D`` and
never deletes it, so exactly one of the two proofs can ever exist: the lock
ends done exactly when the relay was listed. The argument in full is in
docs/rationale.md, "Cross-chain actions".

The deadline is a *chat* height because the chat chain decides; a currency
timeout would race the claim. Nobody needs to be online at any particular
time for safety, only for liveness (someone must relay the final proof).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block_commit import MAX_HEIGHT
from ._bridge_headers import (
    BridgeProofError,
    counterpart,
    deliver_headers,
    prove_against,
    read_headers,
)
from ._chat_directory import index_relay
from ._chat_identity import identity_of
from ._state_records import amount, body_fields, credit, debit, get_record, put_record
from ._tx_errors import RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "DONE",
    "LOCKED",
    "REFUNDED",
    "claim_key",
    "lock_id",
    "lock_key",
    "xclaim",
    "xfinalize",
    "xlock",
    "xrefund",
)

LOCKED, DONE, REFUNDED = 0, 1, 2
_LOCK_DOMAIN: Final = b"dchat-xlock-v1\x00"
_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=2, max_items=32)
_LOCK_FIELDS: Final = frozenset({"owner", "hash", "amount", "deadline", "to", "dest", "st"})
_PROOF_SIZE: Final = 16 << 10


def lock_id(chain_id: str, owner: bytes, nonce: int) -> bytes:
    """The id of the lock created by ``owner``'s transaction with ``nonce`` on ``chain_id``."""
    return hashlib.sha256(_LOCK_DOMAIN + canonical_encode([chain_id, owner, nonce])).digest()


def lock_key(lock: bytes) -> bytes:
    """Currency state key of a lock record."""
    return b"xlock/" + lock


def claim_key(lock: bytes) -> bytes:
    """Chat state key of the claim of a lock."""
    return b"xclaim/" + lock


# -- currency chain ----------------------------------------------------------------------


def xlock(state: StateStore, chain_id: str, tx: Transaction) -> None:
    """``xlock {hash, amount, deadline, to, dest}``: lock funds for a chat-side listing."""
    f = body_fields(tx.body, "xlock", {"hash", "amount", "deadline", "to", "dest"})
    value = amount(f, "amount", lo=1)
    record: dict[str, Any] = {
        "owner": tx.sender,
        "hash": f.get_bytes("hash", size=32),
        "amount": value,
        "deadline": f.get_int("deadline", lo=1, hi=MAX_HEIGHT),
        "to": f.get_bytes("to", size=32),
        "dest": f.get_str("dest", max_len=64),
        "st": LOCKED,
    }
    if record["dest"] != counterpart(state):
        raise RejectedTransactionError("the bridge does not lead to that chain")
    debit(state, tx.sender, value)
    put_record(state, lock_key(lock_id(chain_id, tx.sender, tx.nonce)), record)


def _open_lock(state: StateStore, fields: Fields) -> tuple[bytes, dict[str, Any]]:
    lock = fields.get_bytes("lock", size=32)
    record: dict[str, Any] | None = get_record(state, lock_key(lock))
    if record is None:
        raise RejectedTransactionError("no such lock")
    if record["st"] != LOCKED:
        raise RejectedTransactionError("the lock is already settled")
    deliver_headers(state, read_headers(fields))
    return lock, record


def xfinalize(state: StateStore, tx: Transaction) -> None:
    """``xfinalize {lock, at, claim, proof, [headers]}``: the chat chain claimed; bond the stake."""
    f = body_fields(tx.body, "xfinalize", {"lock", "at", "claim", "proof", "headers"})
    lock, record = _open_lock(state, f)
    claim = f.get_bytes("claim", max_size=1024)
    at = f.get_int("at", lo=1, hi=MAX_HEIGHT)
    prove_against(state, at, claim_key(lock), claim, f.get_bytes("proof", max_size=_PROOF_SIZE))
    secret = _decode(claim, "claim", {"secret", "by", "h"}).get_bytes("secret", size=32)
    if hashlib.sha256(secret).digest() != record["hash"]:
        raise BridgeProofError("the claim's secret does not open the lock")  # cannot happen
    put_record(state, lock_key(lock), {**record, "st": DONE, "secret": secret})
    stake_key = b"relay/" + record["owner"]
    put_record(state, stake_key, (get_record(state, stake_key) or 0) + record["amount"])


def xrefund(state: StateStore, tx: Transaction) -> None:
    """``xrefund {lock, at, proof, [headers]}``: no claim by the deadline; return the funds."""
    f = body_fields(tx.body, "xrefund", {"lock", "at", "proof", "headers"})
    lock, record = _open_lock(state, f)
    at = f.get_int("at", lo=1, hi=MAX_HEIGHT)
    if at <= record["deadline"]:
        raise RejectedTransactionError("the proof must show the chat state after the deadline")
    prove_against(state, at, claim_key(lock), None, f.get_bytes("proof", max_size=_PROOF_SIZE))
    put_record(state, lock_key(lock), {**record, "st": REFUNDED})
    credit(state, record["owner"], record["amount"])


# -- chat chain ----------------------------------------------------------------------------


def _decode(raw: bytes, what: str, allowed: set[str]) -> Fields:
    try:
        return Fields(canonical_decode(raw, _LIMITS), what, frozenset(allowed))
    except DecodeError as exc:
        raise BridgeProofError(f"bad {what} record: {exc}") from None


def _proven_lock(state: StateStore, fields: Fields, lock: bytes) -> Fields:
    raw = fields.get_bytes("record", max_size=1024)
    at = fields.get_int("at", lo=1, hi=MAX_HEIGHT)
    proof = fields.get_bytes("proof", max_size=_PROOF_SIZE)
    prove_against(state, at, lock_key(lock), raw, proof)
    return _decode(raw, "lock", set(_LOCK_FIELDS))


def xclaim(state: StateStore, chain_id: str, context: BlockContext, tx: Transaction) -> None:
    """``xclaim {lock, at, record, proof, secret, endpoint, region, [headers]}``: list a relay."""
    allowed = {"lock", "at", "record", "proof", "secret", "endpoint", "region", "headers"}
    f = body_fields(tx.body, "xclaim", allowed)
    lock = f.get_bytes("lock", size=32)
    if state.get(claim_key(lock)) is not None:
        raise RejectedTransactionError("the lock is already claimed")
    deliver_headers(state, read_headers(f))
    record = _proven_lock(state, f, lock)
    if record.get_int("st", hi=REFUNDED) != LOCKED or record.get_str("dest") != chain_id:
        raise BridgeProofError("the proven lock is not open for this chain")
    if context.height > record.get_int("deadline", lo=1, hi=MAX_HEIGHT):
        raise RejectedTransactionError("the lock's deadline has passed")
    secret = f.get_bytes("secret", size=32)
    if hashlib.sha256(secret).digest() != record.get_bytes("hash", size=32):
        raise UnauthorizedError("the secret does not open the lock")
    identity = identity_of(state, tx.sender)
    if identity != record.get_bytes("to", size=32):
        raise UnauthorizedError("the lock is for another identity")
    put_record(state, claim_key(lock), {"secret": secret, "by": identity, "h": context.height})
    old: dict[str, Any] = get_record(state, b"relay/" + identity) or {"n": 0}
    listing = {
        "ep": f.get_str("endpoint", max_len=256),
        "region": f.get_str("region", max_len=32),
        "stake": record.get_bytes("owner", size=32),
        "n": old["n"],
        "lock": lock,
    }
    index_relay(state, identity)
    put_record(state, b"relay/" + identity, listing)
