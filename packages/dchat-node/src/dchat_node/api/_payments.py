"""Payments in a conversation on a user node: pay a contact, verify what contacts paid.

Routes (user role, bearer token like the rest of the API):

* ``POST /v1/payments {to, amount, note?, fee?}``: pay the contact ``to``
  ``amount`` on the currency chain and tell them in the conversation. Answers
  once the transfer is committed and certified and the message is queued:
  ``{"message_id", "tx", "height", "amount", "to"}``. 409 ``payment_failed``
  if the chain refuses the transfer (nothing is sent then).
* ``GET /v1/payments``: the payments still waiting for verification
  (``{"pending": [...]}``) and the ones whose message is not sent yet
  (``{"unsent": [...]}``).

A payment's state shows on its message in ``GET /v1/conversations/{peer}``
(``payment``: amount, note, tx, state ``pending`` / ``verified`` /
``refused`` (with ``code``) / ``sent``), and each verdict is a ``payment``
event in ``GET /v1/events``.

The steps (protocol §25) are dchat_messaging's (``UserMessaging.converse``
plans and sends, ``UserMessaging.settle_payment`` decides) and dchat_chain's
(the transfer, the ``payref/`` record and the light client); this module is
their I/O, through :class:`~._chain_link.ChainLink` to the validator named by
``currency_node``. The order makes a payment atomic with its message: the
signed transfer is kept as an intent *before* it is submitted; once it is
committed and certified, the message is sent and the intent dropped in one
transaction. :meth:`PaymentDesk.run` (a task beside the API) re-sends the
message of every intent a crash left whose transfer committed (and drops the
ones whose transfer failed), and verifies received payments: it reads
``payref/<ref>`` by light client and hands the proven record to the agent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import trio
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain import Transaction
from dchat_chain.lowlevel import decode_payment_record, payment_key
from dchat_core import DchatError, MessageId
from dchat_messaging import PaymentRefusedError, ProvenPayment
from dchat_messaging.lowlevel import PaymentIntent, payment_ref

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_messaging import MessageReceived
    from dchat_messaging.lowlevel import PaymentEntry

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("PaymentDesk", "add_payment_routes")

log = logging.getLogger("dchat.payments")

VERIFY_EVERY: Final = 2.0
"""Seconds between rounds over the payments still pending."""


class PayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=128)
    amount: int = Field(ge=1, le=2**63 - 1)
    note: str = Field(default="", max_length=1000)
    fee: int = Field(default=1, ge=0, le=2**63 - 1)


class PaymentDesk:
    """The user node's payments (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node,
            "currency",
            lambda: (config.currency_node, config.currency_genesis),
            "payment_failed",
        )
        self._sending = trio.Lock()  # one transfer's nonce at a time
        self._wake = trio.Event()

    @property
    def _user(self) -> UserService:
        return user_role(self._node).user

    # -- paying ---------------------------------------------------------------------------

    async def pay(self, body: PayBody) -> dict[str, Any]:
        """``POST /v1/payments``."""
        u = self._user
        chain_id = self._chain.chain_id()
        mid = MessageId.random()
        card, payment = await u.run(
            u.agent.converse.plan_payment, body.to, body.amount, body.note,
            chain_id=chain_id, message_id=mid,
        )  # fmt: skip
        ref = payment_ref(u.identity.identity_id, card.identity_id, mid)
        transfer = {"to": payment.payee, "amount": body.amount, "ref": ref}
        async with self._sending:
            account = await self._chain.call("GET", f"/v1/chain/accounts/{payment.payer.hex()}")
            nonce = int(account.get("next_nonce", 0))  # a lie only gets the transfer refused
            tx = Transaction.create(
                u.identity.signing_key, chain_id=chain_id, nonce=nonce, fee=body.fee,
                kind="transfer", body=transfer,
            )  # fmt: skip
            intent = PaymentIntent(mid, card.identity_id, replace(payment, tx_hash=tx.hash), tx.raw)
            await u.run(u.agent.payments.intend, intent)  # before the transfer leaves
            result = await self._chain.send(tx.raw)
        if not result["accepted"]:
            await u.run(u.agent.payments.drop_intent, mid)
            raise NodeStateError("payment_failed", f"{result['error']}: {result['message']}")
        height = await self._settled(intent)
        await u.act(u.agent.converse.send_payment, intent, height)
        return {
            "message_id": str(mid),
            "tx": tx.hash.hex(),
            "height": height,
            "amount": body.amount,
            "to": str(card.identity_id),
        }

    async def _settled(self, intent: PaymentIntent) -> int:
        """The commit height of the intent's transfer; a failed one drops the intent."""
        try:
            return await self._chain.settled(intent.payment.tx_hash.hex())
        except NodeStateError as exc:
            if exc.code == "payment_failed":
                await self._user.run(self._user.agent.payments.drop_intent, intent.message_id)
            raise

    async def _resume(self) -> None:
        """Finish the payments a crash or a failed request left between transfer and message.

        Runs before every verification round, so a payment whose ``POST`` failed
        after its transfer left (chain unreachable, timeout) is told to the payee
        once the transfer commits, without a restart; each intent on its own, so
        one that cannot be sent does not hold the others.
        """
        u = self._user
        for intent in await u.run(u.agent.payments.intents):
            try:
                await self._resume_one(intent)
            except (DchatError, KeyError, TypeError, ValueError) as exc:
                log.warning("payment %s not sent yet: %s", intent.message_id, exc)

    async def _resume_one(self, intent: PaymentIntent) -> None:
        u = self._user
        digest = intent.payment.tx_hash.hex()
        async with self._sending:  # never beside a pay() still submitting this very intent
            status = await self._chain.call("GET", f"/v1/chain/txs/{digest}")
            if status["status"] == "unknown":  # never reached the chain (or was dropped)
                result = await self._chain.send(intent.transaction)
                if not result["accepted"]:
                    await u.run(u.agent.payments.drop_intent, intent.message_id)
                    log.warning("payment %s dropped: %s", intent.message_id, result["error"])
                    return
        height = await self._settled(intent)
        await u.act(u.agent.converse.send_payment, intent, height)
        log.info("payment %s: message sent on resumption", intent.message_id)

    # -- verifying ------------------------------------------------------------------------

    async def _verify(self, mid: MessageId, entry: PaymentEntry) -> None:
        u, now = self._user, self._user.now()
        key = payment_key(entry.ref)
        read = await self._chain.verified(lambda r: r.read(f"/v1/chain/state/{key.hex()}", key))
        _, value, height = read.result()
        proven = None
        if value is not None:
            record = decode_payment_record(value)
            proven = ProvenPayment(record.sender, record.recipient, record.amount)
        chain_id = self._chain.chain_id()
        try:
            settled = await u.run(
                u.agent.settle_payment, mid, proven, height, now=now, chain_id=chain_id
            )  # fmt: skip
        except PaymentRefusedError as exc:
            log.warning("payment %s refused: %s", mid, exc.code)
            settled = None
        if settled is None or settled.state != "pending":
            u.events_logged()  # the verdict's ``payment`` event

    async def _round(self) -> None:
        u = self._user
        await self._resume()
        try:
            pending = await u.run(u.agent.payments.pending)
        except DchatError as exc:
            log.warning("pending payments unreadable: %s", type(exc).__name__)
            return
        for mid, entry in pending:
            try:
                await self._verify(mid, entry)
            except (DchatError, KeyError, TypeError, ValueError) as exc:
                # The chain node is down, lags or lies: the payment stays pending.
                log.info("payment %s not verified yet: %s", mid, type(exc).__name__)

    async def _received(self, message: MessageReceived) -> None:
        if message.content.payment is not None:
            self._wake.set()

    async def run(self) -> None:
        """Resume unsent payments, then verify received ones as they come (a task)."""
        if self._node.config.role != "user" or self._node.config.currency_node is None:
            return
        self._user.on_message(self._received)
        while True:
            await self._round()
            with trio.move_on_after(VERIFY_EVERY):
                await self._wake.wait()
            self._wake = trio.Event()

    async def listing(self) -> dict[str, Any]:
        """``GET /v1/payments``."""
        u = self._user
        pending = await u.run(u.agent.payments.pending)
        unsent = await u.run(u.agent.payments.intents)
        return {
            "pending": [
                {"message_id": str(m), "peer_id": str(e.peer), **e.view()} for m, e in pending
            ],
            "unsent": [_unsent_json(i) for i in unsent],
        }


def _unsent_json(intent: PaymentIntent) -> dict[str, Any]:
    payment = intent.payment
    return {
        "message_id": str(intent.message_id),
        "peer_id": str(intent.peer),
        "amount": payment.amount,
        "tx": payment.tx_hash.hex(),
    }


def add_payment_routes(app: FastAPI, node: Node, auth: list[Depends]) -> PaymentDesk:
    """Install the payment routes on ``app``; returns the desk (its task runs beside the API)."""
    desk = PaymentDesk(node)

    @app.post("/v1/payments", dependencies=auth)
    async def pay(body: PayBody) -> dict[str, Any]:
        return await desk.pay(body)

    @app.get("/v1/payments", dependencies=auth)
    async def payments() -> dict[str, Any]:
        return await desk.listing()

    return desk
