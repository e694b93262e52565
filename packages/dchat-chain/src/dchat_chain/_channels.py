"""Currency chain: two-party payment channels with a dispute window and a penalty.

Theory of operation. Parties ``a`` (the opener) and ``b`` lock deposits in one
transaction that ``a`` sends and ``b`` co-signs (``b`` signs the open terms,
which include ``a``'s nonce, so the consent cannot be replayed). Off chain they
exchange :class:`ChannelState` updates ``(channel, seq, balance_a, balance_b)``
signed by both; a higher ``seq`` supersedes a lower one and balances always sum
to the deposits. Ways out:

* ``channel_coop_close``: both signed a *final* state; paid out at once.
* ``channel_close``: one party publishes its latest state (or none: the
  opening deposits, ``seq`` 0) and a dispute window of ``dispute_blocks``
  starts. ``channel_settle`` pays that state out after the window.
* ``channel_dispute``: during the window, the other party shows a state with a
  higher ``seq``. The closer published a stale state, which is cheating, so the
  whole channel goes to the challenger at once (the penalty).

State: ``chan/<id>`` -> ``{"a", "b", "da", "db", "st": 0 open | 1 closing,
"seq", "ba", "bb", "until"}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from dchat_core import DecodeError, Fields, canonical_encode
from dchat_crypto import BadSignatureError, SigningKey, VerifyKey

from ._state_records import amount, body_fields, credit, debit, get_record, put_record
from ._tx import MAX_AMOUNT
from ._tx_errors import (
    MalformedTransactionError,
    RejectedTransactionError,
    UnauthorizedError,
)

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "ChannelState",
    "payment_channel_id",
    "channel_open_terms",
    "close",
    "coop_close",
    "dispute",
    "open_channel",
    "settle",
)

OPEN_DOMAIN: Final = b"dchat-chan-open-v1\x00"
STATE_DOMAIN: Final = b"dchat-chan-state-v1\x00"
_OPEN, _CLOSING = 0, 1


def channel_open_terms(
    chain_id: str, a: bytes, b: bytes, deposit_a: int, deposit_b: int, nonce: int
) -> bytes:
    """The bytes ``b`` signs to consent to a channel opened by ``a`` at ``a``'s ``nonce``."""
    terms = {"chain": chain_id, "a": a, "b": b, "da": deposit_a, "db": deposit_b, "n": nonce}
    return OPEN_DOMAIN + canonical_encode(terms)


def payment_channel_id(terms: bytes) -> bytes:
    """The channel id: ``SHA-256`` of its open terms."""
    return hashlib.sha256(terms).digest()


@dataclass(frozen=True, slots=True)
class ChannelState:
    """An off-chain balance split, valid once both parties signed it."""

    channel: bytes
    seq: int
    balance_a: int
    balance_b: int
    final: bool = False

    def signing_bytes(self) -> bytes:
        """The exact bytes each party signs."""
        body = {
            "chan": self.channel,
            "seq": self.seq,
            "ba": self.balance_a,
            "bb": self.balance_b,
            "final": self.final,
        }
        return STATE_DOMAIN + canonical_encode(body)

    def sign(self, key: SigningKey) -> bytes:
        """One party's 64-byte signature over this state."""
        return key.sign(self.signing_bytes())

    def to_body(self, sig_a: bytes, sig_b: bytes) -> dict[str, Any]:
        """The transaction-body form, with both signatures."""
        return {
            "seq": self.seq,
            "ba": self.balance_a,
            "bb": self.balance_b,
            "final": self.final,
            "sig_a": sig_a,
            "sig_b": sig_b,
        }

    @classmethod
    def from_body(cls, channel: bytes, value: Any, record: dict[str, Any]) -> Self:
        """Read a signed state from a transaction body and check both signatures.

        Raises:
            MalformedTransactionError: The state is malformed.
            UnauthorizedError: A signature does not verify or balances do not add up.
        """
        try:
            f = Fields(
                value, "channel state", frozenset({"seq", "ba", "bb", "final", "sig_a", "sig_b"})
            )
            final = f.raw("final")
            if not isinstance(final, bool):
                raise DecodeError("final must be a boolean")
            state = cls(channel, f.get_int("seq"), amount(f, "ba"), amount(f, "bb"), final)
            sigs = (f.get_bytes("sig_a", size=64), f.get_bytes("sig_b", size=64))
        except DecodeError as exc:
            raise MalformedTransactionError(str(exc)) from None
        if state.balance_a + state.balance_b != record["da"] + record["db"]:
            raise UnauthorizedError("channel balances must add up to the deposits")
        message = state.signing_bytes()
        try:
            VerifyKey(record["a"]).verify(sigs[0], message)
            VerifyKey(record["b"]).verify(sigs[1], message)
        except BadSignatureError:
            raise UnauthorizedError("channel state is not signed by both parties") from None
        return state


def _key(chan: bytes) -> bytes:
    return b"chan/" + chan


def _load(
    state: StateStore, tx: Transaction, kind: str, extra: set[str]
) -> tuple[bytes, Fields, dict[str, Any]]:
    fields = body_fields(tx.body, kind, {"chan", *extra})
    chan = fields.get_bytes("chan", size=32)
    record: dict[str, Any] | None = get_record(state, _key(chan))
    if record is None:
        raise RejectedTransactionError("no such channel")
    if tx.sender not in (record["a"], record["b"]):
        raise UnauthorizedError("only a channel party may do this")
    return chan, fields, record


def _pay_out(state: StateStore, chan: bytes, record: dict[str, Any], to_a: int, to_b: int) -> None:
    credit(state, record["a"], to_a)
    credit(state, record["b"], to_b)
    state.delete(_key(chan))


def open_channel(state: StateStore, chain_id: str, tx: Transaction) -> None:
    """``channel_open {peer, deposit, peer_deposit, peer_sig}``."""
    fields = body_fields(tx.body, "channel_open", {"peer", "deposit", "peer_deposit", "peer_sig"})
    peer = fields.get_bytes("peer", size=32)
    deposit, peer_deposit = amount(fields, "deposit"), amount(fields, "peer_deposit")
    if peer == tx.sender or deposit + peer_deposit == 0 or deposit + peer_deposit > MAX_AMOUNT:
        raise RejectedTransactionError("a channel needs two parties and a deposit")
    terms = channel_open_terms(chain_id, tx.sender, peer, deposit, peer_deposit, tx.nonce)
    try:
        VerifyKey(peer).verify(fields.get_bytes("peer_sig", size=64), terms)
    except BadSignatureError:
        raise UnauthorizedError("the peer did not consent to this channel") from None
    chan = payment_channel_id(terms)
    debit(state, tx.sender, deposit)
    debit(state, peer, peer_deposit)
    record = {"a": tx.sender, "b": peer, "da": deposit, "db": peer_deposit, "st": _OPEN}
    put_record(state, _key(chan), {**record, "seq": 0, "ba": deposit, "bb": peer_deposit})


def coop_close(state: StateStore, tx: Transaction) -> None:
    """``channel_coop_close {chan, state}``: pay out a final state signed by both."""
    chan, fields, record = _load(state, tx, "channel_coop_close", {"state"})
    final = ChannelState.from_body(chan, fields.raw("state"), record)
    if not final.final:
        raise RejectedTransactionError("a cooperative close needs a state marked final")
    _pay_out(state, chan, record, final.balance_a, final.balance_b)


def close(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``channel_close {chan, state | null}``: start the dispute window."""
    chan, fields, record = _load(state, tx, "channel_close", {"state"})
    if record["st"] != _OPEN:
        raise RejectedTransactionError("the channel is already closing")
    raw = fields.raw("state")
    if raw is not None:
        latest = ChannelState.from_body(chan, raw, record)
        record.update(seq=latest.seq, ba=latest.balance_a, bb=latest.balance_b)
    record.update(st=_CLOSING, closer=tx.sender, until=context.height + params["dispute_blocks"])
    put_record(state, _key(chan), record)


def dispute(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``channel_dispute {chan, state}``: prove the closer published a stale state."""
    chan, fields, record = _load(state, tx, "channel_dispute", {"state"})
    if record["st"] != _CLOSING or context.height > record["until"]:
        raise RejectedTransactionError("no dispute window is open")
    if tx.sender == record["closer"]:
        raise UnauthorizedError("the closer cannot dispute its own close")
    newer = ChannelState.from_body(chan, fields.raw("state"), record)
    if newer.seq <= record["seq"]:
        raise RejectedTransactionError("the state is not newer than the published one")
    total = record["da"] + record["db"]
    if tx.sender == record["a"]:
        _pay_out(state, chan, record, total, 0)
    else:
        _pay_out(state, chan, record, 0, total)


def settle(state: StateStore, context: BlockContext, tx: Transaction) -> None:
    """``channel_settle {chan}``: after the window, pay out the published state."""
    chan, _, record = _load(state, tx, "channel_settle", set())
    if record["st"] != _CLOSING or context.height <= record["until"]:
        raise RejectedTransactionError("the dispute window has not ended")
    _pay_out(state, chan, record, record["ba"], record["bb"])
