"""Payments in a conversation: the ``pay`` body, its chain reference and what a node keeps.

A payment is a person's message (its :attr:`Content.kind` is ``"text"``, its
text the note or a one-line summary) whose body (protocol §25) is::

    {"t": "pay", "v": 1, "amt": amount >= 1, "chain": currency chain id,
     "from": payer's account(32), "to": payee's account(32),
     "tx": transfer hash(32), "h": height the transfer committed at, ["text": note]}

The money moved before the message was sent: a currency-chain ``transfer``
whose ``ref`` is :func:`payment_ref` of (payer identity, payee identity,
message id). The chain records ``payref/<ref> = {amt, from, to}`` once, in the
transfer's own state change, so a light client that proves that record
(Merkle proof under a commit-certified app hash) knows the transfer succeeded,
for how much and to whom; the reference binds it to this one message of this
sender to this recipient, so a message that names another's or an older
transfer has another reference, which the chain does not hold.

What a node keeps (:class:`Payments`, in the engine's state store, so sealed
at rest, in the transaction that stores the message):

* ``user.pay.<message id>``: a :class:`PaymentEntry` (direction, peer, state).
  A received one is ``pending`` until the node's light client proved the
  record (``verified``) or showed it wrong (``refused`` with a code); a sent
  one is ``sent``.
* ``user.payref.<ref>``: the message id that used a reference. A reference
  seen before (the message was deleted and arrives again) is refused as
  ``replayed``.
* ``user.payout.<message id>``: a :class:`PaymentIntent`, the signed transfer
  of a payment whose message is not sent yet. It is written before the
  transfer is submitted and deleted in the transaction that sends the message
  (:meth:`Payments.intents` lists what a crash left; the node re-sends the
  message once the transfer is committed, or drops the intent if it failed).
* ``user.pay.pending``: the message ids being verified (at most
  :data:`MAX_PENDING`). Beyond it, new payments wait in ``user.pay.waiting``
  (still ``pending``; at most :data:`MAX_WAITING`) and join as verdicts free
  places; only beyond both are they refused ``too_many``. So a flood of
  unfounded claims delays real payments (each claim is decided within
  :data:`GIVE_UP_AFTER`) but does not refuse them.

:meth:`Payments.settle` takes what the light client proved and decides. No
I/O here: the node reads the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    MessageId,
    canonical_decode,
    canonical_encode,
)

from ._errors import DchatMessagingError, PaymentRefusedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._store import StateStore

    LogEvent = Callable[[str, dict[str, object], float], None]

__all__ = (
    "MAX_NOTE",
    "GIVE_UP_AFTER",
    "MAX_PENDING",
    "MAX_WAITING",
    "Payment",
    "PaymentEntry",
    "PaymentIntent",
    "Payments",
    "ProvenPayment",
    "check_payment",
    "payment_ref",
)

MAX_NOTE: Final = 1000
MAX_PENDING: Final = 256
MAX_WAITING: Final = 4096
"""Received payments waiting for a place among the :data:`MAX_PENDING` being verified."""
GIVE_UP_AFTER: Final = 120.0
"""A payment still unproven this long after its first verification round is refused."""
MAX_PAY_AMOUNT: Final = 2**63 - 1
PAY_DOMAIN: Final = b"dchat-pay-v1\x00"
_MAX_HEIGHT: Final = 2**53
_FIELDS: Final = frozenset({"t", "v", "amt", "chain", "from", "to", "tx", "h", "text"})
_LIMITS: Final = DecodeLimits(max_size=8 * 1024, max_depth=4, max_items=32)
_RECORD_LIMITS: Final = DecodeLimits(max_size=8 * 1024, max_depth=4, max_items=48)
PAY_KEY: Final = "user.pay."
REF_KEY: Final = "user.payref."
INTENT_KEY: Final = "user.payout."
PENDING_KEY: Final = "user.pay.pending"
WAITING_KEY: Final = "user.pay.waiting"
_STATES: Final = frozenset({"pending", "verified", "refused", "sent"})
_INTENT: Final = frozenset({"mid", "peer", "pay", "tx"})


def payment_ref(payer: IdentityId, payee: IdentityId, message_id: MessageId) -> bytes:
    """The transfer's ``ref``: SHA-256 of the domain, both identities and the message id."""
    return hashlib.sha256(PAY_DOMAIN + bytes(payer) + bytes(payee) + bytes(message_id)).digest()


@dataclass(frozen=True, slots=True)
class Payment:
    """The payment a message carries (the sender's claim until verified).

    Attributes:
        amount: What was paid, in the currency chain's smallest unit.
        chain_id: The currency chain.
        payer: The paying account (32 bytes).
        payee: The receiving account (32 bytes).
        tx_hash: The transfer's hash (for people and explorers; the proof is by ``ref``).
        height: The height the transfer committed at (0 before it did).
        note: What the payer wrote with it (may be empty).
    """

    amount: int
    chain_id: str
    payer: bytes
    payee: bytes
    tx_hash: bytes
    height: int = 0
    note: str = ""

    def to_map(self) -> dict[str, object]:
        """The body map (see the module docstring)."""
        body: dict[str, object] = {
            "t": "pay",
            "v": 1,
            "amt": self.amount,
            "chain": self.chain_id,
            "from": self.payer,
            "to": self.payee,
            "tx": self.tx_hash,
            "h": self.height,
        }
        if self.note:
            body["text"] = self.note
        return body

    @classmethod
    def from_map(cls, raw: object) -> Payment:
        """Parse a body map.

        Raises:
            ValueError: a field is missing, of the wrong type or out of bounds
                (:class:`~dchat_core.DecodeError` is one).
        """
        f = Fields(raw, "payment", _FIELDS)
        if f.get_int("v") != 1 or f.get_str("t", max_len=3) != "pay":
            raise DecodeError("payment: version")
        chain = f.get_str("chain", max_len=64)
        if not chain:
            raise DecodeError("payment: empty chain id")
        return cls(
            f.get_int("amt", lo=1, hi=MAX_PAY_AMOUNT),
            chain,
            f.get_bytes("from", size=32),
            f.get_bytes("to", size=32),
            f.get_bytes("tx", size=32),
            f.get_int("h", hi=_MAX_HEIGHT),
            f.get_str("text", max_len=MAX_NOTE) if f.has("text") else "",
        )

    def summary(self) -> str:
        """The message text when there is no note."""
        return f"paid {self.amount}"


@dataclass(frozen=True, slots=True)
class ProvenPayment:
    """What the light client proved for a reference: the chain's ``payref/`` record.

    Attributes:
        payer: The account the transfer came from.
        payee: The account it went to.
        amount: How much it moved.
    """

    payer: bytes
    payee: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class PaymentEntry:
    """One payment message as this node keeps it.

    Attributes:
        payment: What the message said.
        direction: ``in`` (received) or ``out`` (sent, by this or another of our devices).
        peer: The other party's identity.
        ref: The chain reference of the message (see :func:`payment_ref`).
        state: ``pending``, ``verified``, ``refused`` (incoming) or ``sent``.
        code: Why a payment was refused, else empty.
        proven_at: The state height the record was proven at (0: not proven).
        first_try: When this node first tried to verify it (0: not yet).
    """

    payment: Payment
    direction: str
    peer: IdentityId
    ref: bytes
    state: str
    code: str = ""
    proven_at: int = 0
    first_try: float = 0.0

    def to_bytes(self) -> bytes:
        """The stored form."""
        return canonical_encode(
            {
                "pay": self.payment.to_map(),
                "dir": self.direction,
                "peer": bytes(self.peer),
                "ref": self.ref,
                "st": self.state,
                "code": self.code,
                "at": self.proven_at,
                **({"try": int(self.first_try * 1000)} if self.first_try else {}),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PaymentEntry:
        """Parse the stored form.

        Raises:
            DecodeError: malformed (stored state: corruption).
        """
        keys = frozenset({"pay", "dir", "peer", "ref", "st", "code", "at", "try"})
        f = Fields(canonical_decode(data, _RECORD_LIMITS), "payment record", keys)
        state = f.get_str("st", max_len=16)
        if state not in _STATES:
            raise DecodeError("payment record: unknown state")
        return cls(
            Payment.from_map(f.raw("pay")),
            f.get_str("dir", max_len=3),
            IdentityId(f.get_bytes("peer", size=IdentityId.SIZE)),
            f.get_bytes("ref", size=32),
            state,
            f.get_str("code", max_len=32),
            f.get_int("at", hi=_MAX_HEIGHT),
            f.get_int("try", hi=_MAX_HEIGHT) / 1000 if f.has("try") else 0.0,
        )

    def view(self) -> dict[str, object]:
        """What a conversation view shows of it."""
        p = self.payment
        return {
            "amount": p.amount,
            "chain": p.chain_id,
            "from": p.payer.hex(),
            "to": p.payee.hex(),
            "tx": p.tx_hash.hex(),
            "height": p.height,
            "note": p.note,
            "state": self.state,
            "code": self.code or None,
            "proven_at": self.proven_at or None,
        }


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """A payment whose transfer is signed (maybe submitted) and whose message is not sent.

    Attributes:
        message_id: The message it will be sent as (the reference names it).
        peer: The payee's identity.
        payment: The body (``height`` 0 until the transfer committed).
        transaction: The signed transfer's bytes (submitted again on recovery).
    """

    message_id: MessageId
    peer: IdentityId
    payment: Payment
    transaction: bytes

    def to_bytes(self) -> bytes:
        """The stored form."""
        return canonical_encode(
            {
                "mid": bytes(self.message_id),
                "peer": bytes(self.peer),
                "pay": self.payment.to_map(),
                "tx": self.transaction,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PaymentIntent:
        """Parse the stored form.

        Raises:
            DecodeError: malformed.
        """
        limits = DecodeLimits(max_size=64 * 1024, max_depth=4, max_items=32)
        f = Fields(canonical_decode(data, limits), "payment intent", _INTENT)
        return cls(
            MessageId(f.get_bytes("mid", size=MessageId.SIZE)),
            IdentityId(f.get_bytes("peer", size=IdentityId.SIZE)),
            Payment.from_map(f.raw("pay")),
            f.get_bytes("tx", max_size=32 * 1024),
        )


class Payments:
    """The payments of this node's conversations (see the module docstring).

    Args:
        store: The node's state store.
        log_event: Appends an event for the user's clients (a verdict is one);
            the engine, which only keeps records, passes none.
    """

    def __init__(self, store: StateStore, log_event: LogEvent | None = None) -> None:
        self._store = store
        self._log_event = log_event

    # -- what the engine calls, inside the transaction that stores the message ---------

    def keep(
        self, message_id: MessageId, payment: Payment, *, payer: IdentityId, payee: IdentityId,
        outgoing: bool,
    ) -> PaymentEntry:  # fmt: skip
        """Keep a payment message's record (a sent one ``sent``, a received one ``pending``).

        A received payment whose reference was seen with another message, or
        beyond :data:`MAX_PENDING` plus :data:`MAX_WAITING` undecided ones, is
        kept ``refused``.
        """
        ref = payment_ref(payer, payee, message_id)
        peer = payee if outgoing else payer
        entry = PaymentEntry(payment, "out" if outgoing else "in", peer, ref, "pending")
        seen = self._store.get_state(REF_KEY + ref.hex())
        if outgoing:
            entry = replace(entry, state="sent")
        elif seen is not None:  # this reference came before (the message was deleted since)
            entry = replace(entry, state="refused", code="replayed")
        else:
            pending, waiting = self._pending(), self._ids(WAITING_KEY, MAX_WAITING)
            if len(pending) < MAX_PENDING:
                self._store.put_state(PENDING_KEY, canonical_encode([*pending, bytes(message_id)]))
            elif len(waiting) < MAX_WAITING:
                self._store.put_state(WAITING_KEY, canonical_encode([*waiting, bytes(message_id)]))
            else:
                entry = replace(entry, state="refused", code="too_many")
        self._store.put_state(REF_KEY + ref.hex(), bytes(message_id))
        self._store.put_state(PAY_KEY + bytes(message_id).hex(), entry.to_bytes())
        return entry

    # -- reading ----------------------------------------------------------------------

    def get(self, message_id: bytes) -> PaymentEntry | None:
        """A message's payment record, or None (not a payment)."""
        data = self._store.get_state(PAY_KEY + message_id.hex())
        if data is None:
            return None
        try:
            return PaymentEntry.from_bytes(data)
        except (DchatError, ValueError):
            return None  # advisory for display; a damaged record shows as no payment

    def row(self, message_id: bytes) -> dict[str, object]:
        """``{"payment": ...}`` for a conversation view (None: not a payment)."""
        entry = self.get(message_id)
        return {"payment": None if entry is None else entry.view()}

    def _pending(self) -> list[bytes]:
        return self._ids(PENDING_KEY, MAX_PENDING)

    def _ids(self, key: str, most: int) -> list[bytes]:
        data = self._store.get_state(key)
        if data is None:
            return []
        limits = DecodeLimits(max_size=64 + 18 * most, max_items=most + 1)
        items = canonical_decode(data, limits)
        if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
            raise DecodeError("payment pending list")
        return list(items)

    def pending(self) -> list[tuple[MessageId, PaymentEntry]]:
        """The received payments still to verify, oldest first."""
        found = []
        for mid in self._pending():
            entry = self.get(mid)
            if entry is not None and entry.state == "pending":
                found.append((MessageId(mid), entry))
        return found

    # -- verifying --------------------------------------------------------------------

    def settle(
        self,
        message_id: MessageId,
        proven: ProvenPayment | None,
        state_height: int,
        *,
        own_accounts: frozenset[bytes],
        now: float,
        give_up: bool | None = None,
        chain_id: str | None = None,
    ) -> PaymentEntry:
        """Decide a pending payment from what the light client proved at ``state_height``.

        ``proven`` is the chain's record for the message's reference (None:
        absent in the state at ``state_height``). Absent at or after the height
        the message claims, the payment is refused ``not_found``; before it, it
        stays pending until :data:`GIVE_UP_AFTER` seconds after the first call
        for it (``give_up`` given: the caller decides instead). With
        ``chain_id`` (the chain the light client follows), a payment claimed
        on another chain is refused ``wrong_chain``.

        Returns:
            The entry as kept now.

        Raises:
            PaymentRefusedError: the payment was refused now (``code`` says why:
                ``not_found``, ``wrong_recipient``, ``wrong_amount``,
                ``wrong_payer``, ``wrong_chain``); the entry is kept refused and an
                event logged.
            DchatMessagingError: no pending payment has that message id.
        """
        refusal: PaymentRefusedError | None = None
        with self._store.transaction():
            entry = self.get(bytes(message_id))
            if entry is None or entry.direction != "in" or entry.state != "pending":
                raise DchatMessagingError("no pending payment with that message id")
            if give_up is None:  # the deadline counts from this node's first round
                give_up = now - (entry.first_try or now) > GIVE_UP_AFTER
            try:
                if chain_id is not None and entry.payment.chain_id != chain_id:
                    raise PaymentRefusedError("wrong_chain", "the payment names another chain")
                verdict = check_payment(entry.payment, proven, state_height, own_accounts, give_up)
            except PaymentRefusedError as exc:
                refusal, verdict = exc, False
                entry = replace(entry, state="refused", code=exc.code)
                self._finish(message_id, entry, now)
            if verdict:
                entry = replace(entry, state="verified", proven_at=state_height)
                self._finish(message_id, entry, now)
            elif refusal is None and not entry.first_try:  # undecided: the deadline starts
                entry = replace(entry, first_try=now)
                self._store.put_state(PAY_KEY + bytes(message_id).hex(), entry.to_bytes())
        if refusal is not None:
            raise refusal  # after the commit: the refusal is kept
        return entry

    def _finish(self, message_id: MessageId, entry: PaymentEntry, now: float) -> None:
        self._store.put_state(PAY_KEY + bytes(message_id).hex(), entry.to_bytes())
        self._unqueue(bytes(message_id))
        if self._log_event is not None:
            event = {"message_id": str(message_id), "peer_id": str(entry.peer), **entry.view()}
            self._log_event("payment", event, now)

    def forget(self, message_id: bytes) -> None:
        """Drop a message's payment record (the message is deleted or disappeared).

        Its reference stays seen, so the same payment message coming again is
        refused ``replayed`` rather than verified a second time.
        """
        if self._store.get_state(PAY_KEY + message_id.hex()) is None:
            return  # not a payment message (the usual case): nothing to drop
        with self._store.transaction():
            self._store.delete_state(PAY_KEY + message_id.hex())
            self._unqueue(message_id)

    def _unqueue(self, message_id: bytes) -> None:
        """Take a payment out of the queues; the oldest waiting one takes a freed place."""
        pending, waiting = self._pending(), self._ids(WAITING_KEY, MAX_WAITING)
        if message_id in waiting:
            waiting.remove(message_id)
        elif message_id in pending:
            pending.remove(message_id)
            if waiting:
                pending.append(waiting.pop(0))
        else:
            return
        self._store.put_state(PENDING_KEY, canonical_encode(pending))
        self._store.put_state(WAITING_KEY, canonical_encode(waiting))

    # -- sending ----------------------------------------------------------------------

    def intend(self, intent: PaymentIntent) -> None:
        """Keep a payment about to be submitted (before the transfer leaves the node)."""
        with self._store.transaction():
            self._store.put_state(INTENT_KEY + bytes(intent.message_id).hex(), intent.to_bytes())
            index = self._intent_ids()
            if bytes(intent.message_id) not in index:
                index.append(bytes(intent.message_id))
                self._store.put_state(INTENT_KEY + "all", canonical_encode(index))

    def _intent_ids(self) -> list[bytes]:
        data = self._store.get_state(INTENT_KEY + "all")
        items = [] if data is None else canonical_decode(data, DecodeLimits(max_size=1 << 16))
        if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
            raise DecodeError("payment intents list")
        return list(items)

    def intents(self) -> list[PaymentIntent]:
        """The payments whose message is not sent yet (a crash left them), oldest first."""
        found = []
        for mid in self._intent_ids():
            data = self._store.get_state(INTENT_KEY + mid.hex())
            if data is not None:
                found.append(PaymentIntent.from_bytes(data))
        return found

    def drop_intent(self, message_id: MessageId) -> bool:
        """Forget an intent (its message is sent in this transaction, or the transfer failed).

        Returns whether it was held (``False``: already sent or dropped).
        """
        with self._store.transaction():
            index = self._intent_ids()
            if bytes(message_id) not in index:
                return False
            self._store.delete_state(INTENT_KEY + bytes(message_id).hex())
            rest = [m for m in index if m != bytes(message_id)]
            self._store.put_state(INTENT_KEY + "all", canonical_encode(rest))
            return True


def check_payment(
    payment: Payment,
    proven: ProvenPayment | None,
    state_height: int,
    own_accounts: frozenset[bytes],
    give_up: bool = False,
) -> bool:
    """Whether ``proven`` (the chain's record at ``state_height``) backs ``payment``.

    Returns:
        True: it does; False: not yet decidable (absent below the claimed height).

    Raises:
        PaymentRefusedError: it does not (``code`` says how).
    """
    if payment.payee not in own_accounts:
        raise PaymentRefusedError("wrong_recipient", "the payment names another account")
    if proven is None:
        if state_height >= payment.height or give_up:
            raise PaymentRefusedError("not_found", "the chain holds no such payment")
        return False
    if proven.payee != payment.payee:
        raise PaymentRefusedError("wrong_recipient", "the transfer paid another account")
    if proven.amount != payment.amount:
        raise PaymentRefusedError("wrong_amount", "the transfer moved another amount")
    if proven.payer != payment.payer:
        raise PaymentRefusedError("wrong_payer", "the transfer came from another account")
    return True
