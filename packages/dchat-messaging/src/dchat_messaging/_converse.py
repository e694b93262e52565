"""What our user does in a conversation: each action applied here and sent, in one transaction.

:class:`ConversationActions` (``UserMessaging.converse``) is the sending half
of :mod:`._conversations`: every method finds the contact, lets
:class:`~dchat_messaging.lowlevel.Conversations` check and apply the change
locally, and sends the content it returns to every device of the peer and,
as sent copies, to our other devices (``UserMessaging.send_as``), all in one
store transaction. Each returns ``(result, devices waiting for a bundle)``;
the shell wakes its delivery tasks with the second. Nothing reads a clock.

A read receipt is the exception to "to the peer": with read receipts off
(``Conversations.settings``) it goes only to our own devices, so they still
agree on what was read and the peer learns nothing.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from ._content import Content
from ._errors import RequestError
from ._payment import Payment, PaymentIntent, Payments

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_core import MessageId
    from dchat_identity import ContactCard, Identity

    from ._contacts import ContactBook
    from ._conversations import Conversations
    from ._devices import DeviceAddress
    from ._local import LocalEngines
    from ._store import StateStore

    SendAs = Callable[..., list[DeviceAddress]]

__all__ = ("ConversationActions",)


class ConversationActions:
    """Our user's conversation actions (see the module docstring).

    Args:
        store: The node's store (for the transaction).
        contacts: Finds the peer.
        engines: Our engines (the main one, our own devices).
        conversations: Checks and applies each change locally.
        send_as: ``UserMessaging.send_as``: to the peer, with sent copies.
    """

    def __init__(
        self,
        store: StateStore,
        contacts: ContactBook,
        engines: LocalEngines,
        conversations: Conversations,
        send_as: SendAs,
    ) -> None:
        self._store = store
        self.contacts = contacts
        self.engines = engines
        self.conversations = conversations
        self._send_as = send_as

    def _act(
        self, peer: str, make: Callable[[str], Content], *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Find the contact ``peer``, make the content for it, send it; one transaction."""
        with self._store.transaction():
            card = self.contacts.find(peer)
            content = make(str(card.identity_id))
            return content.message_id, self._send_as(card, content, now=now)

    def send_text(
        self,
        peer: str,
        text: str,
        *,
        now: float,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
        content: Content | None = None,
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Send ``text`` to the contact ``peer`` (as ``sender``, default our identity).

        ``content``: send this (an attachment, built by the caller) instead of ``text``.
        """
        content = content or Content.text_message(text, now_ms=int(now * 1000))
        with self._store.transaction():  # one trip for the lookup and the send
            card = self.contacts.find(peer)
            return self.send_content(card, content, now=now, sender=sender, sender_card=sender_card)

    def send_control(
        self,
        card: ContactCard,
        kind: str,
        data: bytes,
        *,
        now: float,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Send a control payload to ``card`` (as ``sender``, default our identity)."""
        content = Content.control(kind, data, now_ms=int(now * 1000))
        return self.send_content(card, content, now=now, sender=sender, sender_card=sender_card)

    def send_content(
        self,
        card: ContactCard,
        content: Content,
        *,
        now: float,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Fan ``content`` out to every device of ``card``'s identity (``send_as``)."""
        waiting = self._send_as(card, content, now=now, sender=sender, sender_card=sender_card)
        return content.message_id, waiting

    def plan_payment(
        self, peer: str, amount: int, note: str, *, chain_id: str, message_id: MessageId
    ) -> tuple[ContactCard, Payment]:
        """The payment to ``peer`` before its transfer exists: checked, and whom it pays.

        The payee's account is the identity key on their contact card (see
        ``docs/rationale.md``, "Payments in a conversation").

        Raises:
            RequestError: ``unknown_contact``, or ``no_identity`` (a linked device cannot pay).
            ContentError: the amount or note is out of bounds.
        """
        own = self.engines.primary_identity
        if own is None:
            raise RequestError("no_identity", "only the identity's own node can pay")
        card = self.contacts.find(peer)
        payer = own.signing_key.public_key.to_bytes()
        payee = card.identity_key.to_bytes()
        payment = Payment(amount, chain_id, payer, payee, bytes(32), 0, note)
        Content.payment_message(payment, now_ms=0, message_id=message_id)  # bounds
        return card, payment

    def send_payment(
        self, intent: PaymentIntent, height: int, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Send the message of a committed payment and forget its intent: one transaction.

        So a payment's message and the payment record in the chat are stored
        together or not at all; until then the intent says what to resend. An
        intent no longer held was sent already (by the request that paid or by
        the resumption task): nothing is sent twice.
        """
        payment = replace(intent.payment, height=height)
        content = Content.payment_message(
            payment, now_ms=int(now * 1000), message_id=intent.message_id
        )
        with self._store.transaction():
            card = self.contacts.find(str(intent.peer))
            if not Payments(self._store).drop_intent(intent.message_id):
                return content.message_id, []
            return content.message_id, self._send_as(card, content, now=now)

    def edit(
        self, peer: str, target: MessageId, text: str, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Edit our text ``target`` to ``peer`` here and on every device of both of us."""
        edit = self.conversations.edit
        return self._act(peer, lambda p: edit(p, target, text, now=now), now=now)

    def delete_for_everyone(
        self, peer: str, target: MessageId, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Delete our text ``target`` here and ask every device of both of us to (best effort)."""
        delete = self.conversations.delete
        return self._act(peer, lambda p: delete(p, target, now=now), now=now)

    def _own(self) -> str:
        main = self.engines.main()
        if main is None:
            raise RequestError("no_identity", "this node has no identity yet: run `dchat init`")
        return str(main.keys.identity)

    def react(
        self, peer: str, target: MessageId, emoji: str, *, on: bool, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Add (``on``) or remove our reaction ``emoji`` to a text of the conversation."""
        react = functools.partial(self.conversations.react, own=self._own(), on=on, now=now)
        return self._act(peer, lambda p: react(p, target, emoji), now=now)

    def disappear(
        self, peer: str, seconds: int, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Set the conversation's disappearing timer (0: off) here and on every device of both."""
        timer = functools.partial(self.conversations.timers.set, by=self._own(), now=now)
        return self._act(peer, lambda p: timer(p, seconds), now=now)

    def reply(
        self, peer: str, target: MessageId, text: str, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Send ``text`` to ``peer`` quoting ``target``."""
        reply = self.conversations.reply
        return self._act(peer, lambda p: reply(p, target, text, now=now), now=now)

    def forward(
        self, source: MessageId, to: str, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Send a copy of the stored text ``source`` to ``to``, marked forwarded."""
        forward = self.conversations.forward
        return self._act(to, lambda _: forward(source, now=now), now=now)

    def typing(self, peer: str, on: bool, *, now: float) -> tuple[bool, list[DeviceAddress]]:
        """Tell ``peer`` we (stopped) typing, if typing indicators are on; say whether sent."""
        with self._store.transaction():
            content = self.conversations.typing(on, now=now)
            if content is None:
                return False, []
            card, main = self.contacts.find(peer), self.engines.main()
            if main is None:
                return False, []
            return True, self.engines.send(main, card, content, now=now, copies=False)

    def read(self, peer: str, *, now: float) -> tuple[list[MessageId], list[DeviceAddress]]:
        """Mark ``peer``'s texts read; a read receipt goes to them (if we send read
        receipts) and to our other devices (always, so they agree what was read)."""
        with self._store.transaction():
            card = self.contacts.find(peer)
            ids = self.conversations.mark_read(str(card.identity_id), now=now)
            waiting: list[DeviceAddress] = []
            main = self.engines.main()
            if not ids or main is None:
                return ids, waiting
            tell_peer = self.conversations.settings()["read_receipts"]
            own = self.engines.own_devices(main)
            for receipt in self.conversations.receipts(ids, read=True, now=now):
                if tell_peer:
                    waiting += self.engines.send_as(card, receipt, now=now)
                elif own:  # as a sent copy: it names the conversation (``peer``)
                    copy = replace(receipt, peer=card.identity_id)
                    waiting += main.send(copy, own, now=now, record=False)
            return ids, waiting
