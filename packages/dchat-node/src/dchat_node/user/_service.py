"""The user role: one identity, its contacts, and the trio shell of its messaging engines.

Each local identity (the node's own, and each burner) has a
:class:`dchat_messaging.MessagingEngine`; :class:`dchat_messaging.UserMessaging`
holds them with the directory, the request policy, the notices, the quiet
contacts and the counters, and makes every decision. This module persists and
schedules around it: each call runs in a database worker, and sending wakes
the tasks of :mod:`._delivery` (outbox, sessions, mailboxes), mixed into
:class:`UserService`.

Extension points, used by the identity features (devices, burners, guardians):

* **control messages** (``Content.control``) are not chat messages: each is
  handed to the handler registered for its kind with :meth:`on_control`.
  The engine keeps each one durably until its handler ran (handlers must be
  idempotent: a crash before that runs it again). A kind with no handler is
  counted as rejected and dropped.
* **extra identities** (:meth:`add_identity`): envelopes for another local
  identity (a burner) are fetched from that identity's own mailbox, with its
  own mailbox key and a separate connection, and opened by its own engine.
* **raw mailboxes** (:meth:`add_raw_mailbox`): a mailbox whose envelopes are
  not sealed messages (the devices' sync mailbox) is drained into a handler
  that returns once each envelope is durably processed.
* :meth:`queue_envelope` puts any sealed envelope in the durable outbox, and
  :meth:`state_get` / :meth:`state_put` keep sealed blobs in the settings table.
* **quiet contacts** (``add_contact(..., announce=False)``) are contacts a
  burner writes to: no hook runs for them and :meth:`is_quiet` tells the
  document fan-out to skip them, so they never learn the main identity.
* **retired keys** (:meth:`refuse_sender`): mail from a key a contact lost to
  a recovery is dropped after decryption and counted (``rejected_retired``).
* **notices** (:meth:`notices`): a session reset (the peer lost its session
  and set up a new one, or we did) is kept for the user to see
  (:class:`dchat_messaging.Notices`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import IdentityId, MessageId
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, MessagingEngine, RequestError, SealedEnvelope, UserMessaging
from dchat_storage import EngineStore

from .._errors import NodeStateError
from ._delivery import MailDelivery, RawMailbox

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_core import Clock
    from dchat_crypto import PrivateKey, SigningKey
    from dchat_messaging import DeviceAddress, MessageReceived
    from dchat_storage import ContactRecord, MessageRecord

    from .._store import AsyncStore
    from ..config import NodeConfig

__all__ = ("UserService",)

_log = logging.getLogger("dchat.user")
_NO_IDENTITY: Final = "this node has no identity yet: run `dchat init`"


class UserService(MailDelivery):
    """Holds the unlocked identity and runs the outbox and mailbox tasks."""

    def __init__(
        self, config: NodeConfig, store: AsyncStore, clock: Clock, passphrase: bytes
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._passphrase = passphrase
        self._wake_outbox = trio.Event()
        self._wake_sessions = trio.Event()
        self._publishing = trio.Lock()
        self.agent = UserMessaging(EngineStore(store.db))
        self.outbox, self.directory = self.agent.outbox, self.agent.directory
        self.senders, self.engines = self.agent.requests, self.agent.engines
        # Declared in MailDelivery, which consumes them:
        self._learned_hooks, self._message_hooks, self._raw = [], [], {}
        self._card_sources: list[Callable[[IdentityId], ContactCard | None]] = []
        self._contact_hooks: list[Callable[[ContactCard], Awaitable[None]]] = []

    # -- identity ---------------------------------------------------------------

    async def load(self) -> None:
        """Unlock the stored identity, if there is one; read the sender policy and contacts."""
        record = await self._store.run(self._store.db.identity.get)
        if record is not None:
            identity = await trio.to_thread.run_sync(
                Identity.from_keystore, record.keystore, self._passphrase
            )
            self.engines.set_main(identity, ContactCard.from_bytes(record.card))
        cards = [contact.card for contact in await self.contacts()]
        try:
            await self._store.run(self.agent.load, cards)
        except RequestError as exc:
            raise NodeStateError(exc.code, str(exc)) from None

    @property
    def identity(self) -> Identity:
        """The unlocked identity; :class:`NodeStateError` if none exists yet."""
        identity = self.engines.primary_identity
        if identity is None:
            raise NodeStateError("no_identity", _NO_IDENTITY)
        return identity

    @property
    def card(self) -> ContactCard:
        """This identity's own contact card."""
        card = self.engines.primary_card
        if card is None:
            raise NodeStateError("no_identity", _NO_IDENTITY)
        return card

    @property
    def has_identity(self) -> bool:
        """Whether this node holds an identity's keys."""
        return self.engines.primary is not None

    @property
    def is_linked_device(self) -> bool:
        """Whether this node runs as a linked device (no identity key)."""
        return self.engines.linked is not None

    def is_me(self, identity: IdentityId) -> bool:
        """Whether ``identity`` is this node's identity (or the one it is a device of)."""
        return self.engines.is_me(identity)

    def now(self) -> float:
        """The node's clock."""
        return self._clock.now()

    async def create_identity(self, name: str, *, phrase: str | None = None) -> Identity:
        """Create the identity, encrypt it under the node passphrase, store it.

        With ``phrase`` (BIP-39), the keys are derived from it (a new identity
        whose phrase the caller shows once, or the restore of an old one);
        otherwise they are random. The phrase itself is never stored.
        """
        if self.has_identity:
            raise NodeStateError("identity_exists", "this node already has an identity")
        relay, relay_node = self.home_relay, self.home_relay_node
        if phrase is None:
            identity = Identity.generate()
        else:
            identity = await trio.to_thread.run_sync(Identity.from_phrase, phrase)
        card = ContactCard.issue(identity, name=name, relay=relay, relay_node=relay_node)
        keystore = await trio.to_thread.run_sync(identity.to_keystore, self._passphrase)
        await self._store.run(
            self._store.db.identity.save,
            str(identity.identity_id),
            keystore,
            card.to_bytes(),
            self._clock.now(),
        )
        self.engines.set_main(identity, card)
        _log.info("identity created")
        await self.publish_prekeys_now(identity)
        return identity

    # -- engines ----------------------------------------------------------------

    def engine_for(self, identity: Identity, card: ContactCard | None = None) -> MessagingEngine:
        """The messaging engine of a local identity (created on first use)."""
        return self.engines.for_identity(identity, card)

    def use_linked_device(
        self, device_key: SigningKey, exchange_key: PrivateKey, card: ContactCard
    ) -> None:
        """Act as a linked device of ``card``'s identity: its own mailbox, sessions and keys."""
        self.engines.link_device(device_key, exchange_key, card)

    def set_own_document(self, document: bytes) -> None:
        """Our identity's current document: it rides with each session's first messages."""
        self.engines.set_document(document)

    def _main_engine(self) -> MessagingEngine:
        engine = self.engines.main()
        if engine is None:
            raise NodeStateError("no_identity", _NO_IDENTITY)
        return engine

    async def waiting_for_sessions(self) -> int:
        """Messages not yet in the outbox: their devices' sessions are being set up."""
        return await self._store.run(self.engines.pending_count)

    async def forget_device(self, device_key: bytes) -> None:
        """A device was revoked: drop its sessions and anything waiting for it."""
        await self._store.run(self.engines.forget_device, device_key)

    # -- extension points -------------------------------------------------------

    def on_control(
        self, kind: str, handler: Callable[[MessageReceived, Identity], Awaitable[None]]
    ) -> None:
        """Route control messages of ``kind`` to ``handler(message, receiving_identity)``."""
        self.agent.on_control(kind, handler)

    def on_device_control(
        self, kind: str, handler: Callable[[MessageReceived], Awaitable[None]]
    ) -> None:
        """Route control messages of ``kind`` to ``handler`` on a linked device too."""
        self.agent.on_device_control(kind, handler)

    def on_message(self, hook: Callable[[MessageReceived], Awaitable[None]]) -> None:
        """Call ``hook(message)`` after each received message is committed."""
        self._message_hooks.append(hook)

    def on_card_lookup(self, source: Callable[[IdentityId], ContactCard | None]) -> None:
        """Also find the card of a non-contact with ``source`` (a message request's)."""
        self._card_sources.append(source)

    def on_document_learned(self, hook: Callable[[IdentityId, bytes], Awaitable[None]]) -> None:
        """Call ``hook(sender, document)`` for a document a device's first message carried."""
        self._learned_hooks.append(hook)

    def on_contact_added(self, hook: Callable[[ContactCard], Awaitable[None]]) -> None:
        """Call ``hook(card)`` after a contact is added through :meth:`add_contact`."""
        self._contact_hooks.append(hook)

    def add_identity(self, identity: Identity) -> None:
        """Also fetch and open mail for ``identity`` (e.g. a burner)."""
        self.agent.add_identity(identity)

    def remove_identity(self, identity_id: IdentityId) -> None:
        """Stop fetching mail for an extra identity."""
        self.agent.remove_identity(identity_id)

    def add_raw_mailbox(self, key: SigningKey, handler: Callable[[bytes], Awaitable[None]]) -> None:
        """Also drain the mailbox of ``key`` at the home relay into ``handler``."""
        self._raw[key.public_key.to_bytes()] = RawMailbox(key, handler)

    def remove_raw_mailbox(self, key: SigningKey) -> None:
        """Stop draining the mailbox of ``key``."""
        self._raw.pop(key.public_key.to_bytes(), None)

    async def queue_envelope(
        self, relay: str, envelope: SealedEnvelope, message_id: MessageId | None = None
    ) -> MessageId:
        """Put ``envelope`` in the durable outbox for ``relay``; returns its outbox id."""
        mid = message_id if message_id is not None else MessageId.random()
        await self._store.run(
            self.outbox.enqueue,
            bytes(mid),
            relay,
            bytes(envelope.mailbox),
            envelope.to_bytes(),
            self._clock.now(),
        )
        self._wake_outbox.set()
        return mid

    async def state_get(self, key: str) -> bytes | None:
        """A blob kept (sealed at rest) in the settings table."""
        return await self._store.run(self._store.db.settings.get, key)

    async def state_put(self, key: str, value: bytes) -> None:
        """Durably store (sealed at rest) ``value`` under ``key``."""
        await self._store.run(self._store.db.settings.set, key, value, self._clock.now())

    async def state_delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._store.run(self._store.db.settings.delete, key)

    # -- retired keys, notices, deleting -------------------------------------------

    async def refuse_sender(self, sender: IdentityId) -> None:
        """From now on, refuse mail signed by ``sender`` (a key retired by a recovery)."""
        await self._store.run(self.senders.retire, sender)

    async def notices(self) -> list[dict[str, object]]:
        """Notices for the user, oldest first: ``{"kind", "peer", "at_ms"}``."""
        return await self._store.run(self.agent.notice_rows)

    async def delete_messages(self, peer: str) -> int:
        """Delete every stored message with ``peer`` (an identity id)."""
        deleted = 0
        while True:
            rows = await self._store.run(self._store.db.messages.list, peer, 500)
            if not rows:
                return deleted
            for row in rows:
                deleted += int(
                    await self._store.run(self._store.db.messages.delete, row.message_id)
                )

    # -- contacts ---------------------------------------------------------------

    async def add_contact(
        self, name: str, card_text: str, *, announce: bool = True
    ) -> ContactRecord:
        """Verify ``card_text`` and store it under ``name``.

        ``announce=False`` adds a quiet contact (see the module docstring).
        """
        card = self.agent.new_contact(card_text)
        record = await self._store.run(
            self._store.db.contacts.add,
            name,
            str(card.identity_id),
            card.to_bytes(),
            self._clock.now(),
        )
        await self._store.run(self.agent.contact_added, card, announce=announce)
        for hook in self._contact_hooks if announce else []:
            await hook(card)
        return record

    def is_quiet(self, identity_id: IdentityId | str) -> bool:
        """Whether the contact was added quietly (for a burner)."""
        return self.agent.is_quiet(identity_id)

    async def replace_contact(self, old: IdentityId, card: ContactCard) -> ContactRecord | None:
        """Give the contact ``old`` a new card (its key rotated); None if unknown."""
        self.directory.add_card(card)
        return await self._store.run(
            self._store.db.contacts.replace, str(old), str(card.identity_id), card.to_bytes()
        )

    async def contacts(self) -> list[ContactRecord]:
        """All contacts."""
        return await self._store.run(self._store.db.contacts.list)

    async def contact_card(self, name: str) -> ContactCard:
        """The card of the contact ``name``; :class:`NodeStateError` if unknown."""
        return await self._contact_card(name)

    async def card_of(self, identity_id: IdentityId) -> ContactCard | None:
        """The card of the contact with ``identity_id``, if it is one."""
        record = await self._store.run(self._store.db.contacts.get_by_identity, str(identity_id))
        return None if record is None else ContactCard.from_bytes(record.card)

    async def _contact_card(self, name: str) -> ContactCard:
        """A contact by name, or anyone whose card we hold by identity id."""
        record = await self._store.run(self._store.db.contacts.get_by_name, name)
        if record is not None:
            return ContactCard.from_bytes(record.card)
        if name.startswith(IdentityId.PREFIX):
            identity = IdentityId.parse(name)
            card = await self.card_of(identity)
            for source in self._card_sources:
                card = card or source(identity)
            if card is not None:
                return card
        raise NodeStateError("unknown_contact", f"no contact named {name!r}")

    async def messages(
        self, peer: str | None, limit: int
    ) -> list[tuple[MessageRecord, str | None]]:
        """Stored messages with the contact name of each peer, if known."""
        peer_id: str | None = None
        if peer is not None:
            peer_id = peer if peer.startswith(IdentityId.PREFIX) else None
            if peer_id is None:
                peer_id = str((await self._contact_card(peer)).identity_id)
        records = await self._store.run(self._store.db.messages.list, peer_id, limit)
        names = {c.identity_id: c.name for c in await self.contacts()}
        return [(record, names.get(record.peer_id)) for record in records]

    # -- sending ----------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        *,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> MessageId:
        """Encrypt ``text`` for the contact ``to`` and queue it for delivery.

        ``sender`` and ``sender_card`` write as another local identity (a
        burner) instead of this node's identity.
        """
        card = await self._contact_card(to)
        content = Content.text_message(text, now_ms=int(self._clock.now() * 1000))
        return await self._send_content(card, content, sender, sender_card)

    async def send_control(
        self,
        card: ContactCard,
        kind: str,
        data: bytes,
        *,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> MessageId:
        """Send a control payload to ``card`` (from ``sender``, default this identity)."""
        content = Content.control(kind, data, now_ms=int(self._clock.now() * 1000))
        return await self._send_content(card, content, sender, sender_card)

    async def _send_content(
        self,
        card: ContactCard,
        content: Content,
        sender: Identity | None,
        sender_card: ContactCard | None,
    ) -> MessageId:
        """Fan ``content`` out to every device of ``card``'s identity.

        As this node's identity (``sender`` None), sent copies also go to our
        other devices; as another local identity (a burner, a recovery's new
        key) they do not, since it has no other devices.
        """
        if sender is None:
            engine = self._main_engine()
        else:
            engine = self.engines.for_identity(sender, sender_card)
        send = functools.partial(
            self.engines.send,
            engine,
            card,
            content,
            now=self._clock.now(),
            copies=sender is None,
            sender_card=sender_card,
        )
        self._woken(await self._store.run(send))
        return content.message_id

    async def send_to_own_devices(self, kind: str, data: bytes) -> None:
        """Send a control payload to our identity's other devices (if any)."""
        send = functools.partial(
            self.engines.send_to_own_devices,
            self._main_engine(),
            kind,
            data,
            now=self._clock.now(),
        )
        waiting = await self._store.run(send)
        if waiting is not None:
            self._woken(waiting)

    def _woken(self, waiting: list[DeviceAddress]) -> None:
        """Wake the tasks after a send: sessions if devices wait for bundles, outbox always."""
        if waiting:
            self._wake_sessions.set()
        self._wake_outbox.set()
