"""The user role: one identity, its contacts, and the trio shell of its messaging engines.

Each local identity (the node's own, and each burner) has a
:class:`dchat_messaging.MessagingEngine`; :class:`dchat_messaging.UserMessaging`
holds them with the contact book, the directory, the request policy, the
notices and the counters, and makes every decision (the shells call it as
:attr:`UserService.agent`, with :attr:`~UserService.engines`,
:attr:`~UserService.book` and :attr:`~UserService.senders` at hand). This module persists and
schedules around it: each call runs in a database worker, and sending wakes
the tasks of :mod:`._delivery` (outbox, sessions, mailboxes), mixed into
:class:`UserService`.

Extension points, used by the identity features (devices, burners, guardians):

* **control messages** (``Content.control``) are not chat messages: each is
  handed to the handler registered for its kind with ``agent.on_control``.
  The engine keeps each one durably until its handler ran (handlers must be
  idempotent: a crash before that runs it again). A kind with no handler is
  counted as rejected and dropped.
* **extra identities** (``agent.add_identity``): envelopes for another local
  identity (a burner) are fetched from that identity's own mailbox, with its
  own mailbox key and a separate connection, and opened by its own engine.
* **raw mailboxes** (``agent.add_raw_mailbox``): a mailbox whose envelopes are
  not sealed messages (the devices' sync mailbox) is drained into a handler
  that returns once each envelope is durably processed.
* ``agent.outbox.enqueue_sealed`` puts sealed envelopes in the durable outbox
  (then :meth:`wake_outbox`), and :meth:`state_get` / :meth:`state_put` keep
  sealed blobs in the settings table.
* **contacts** are the agent's :attr:`book` (a ``ContactBook``: names, cards,
  quiet contacts, the messages kept with each), called through :attr:`run`.
  **Quiet contacts** (``add_contact(..., announce=False)``) are contacts a
  burner writes to: no hook runs for them and ``book.is_quiet`` tells the
  document fan-out to skip them, so they never learn the main identity.
* **retired keys** (``senders.retire``): mail from a key a contact lost to
  a recovery is dropped after decryption and counted (``rejected_retired``).
* **notices** (``agent.notice_rows``): a session reset (the peer lost its session
  and set up a new one, or we did) is kept for the user to see
  (:class:`dchat_messaging.Notices`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from dchat_chain.lowlevel import ONION_DIRECTORY_FILE, GuardedRoutes, OnionDirectory, StealthKeys
from dchat_core import DchatError
from dchat_identity import ContactCard, Identity
from dchat_messaging import RequestError, UserMessaging
from dchat_network.lowlevel import OnionPool
from dchat_storage import EngineStore

from .._errors import NodeStateError
from ._delivery import MailDelivery

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_core import Clock, IdentityId, MessageId
    from dchat_messaging import Content, DeviceAddress, MessageReceived
    from dchat_messaging.lowlevel import ContactEntry
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("UserService",)

_log = logging.getLogger("dchat.user")
_T = TypeVar("_T")
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
        self._wake_links = trio.Event()
        self._publishing = trio.Lock()
        self._prekeys_checked = {}
        self.links = {}
        self.run = store.run
        """Run a synchronous call (an agent's step) in the database worker."""
        self.agent = agent = UserMessaging(EngineStore(store.db))
        self.guards = _directory_routes(config, clock)  # onion routes start at its guards
        self.pool = OnionPool(
            config.onion_relays,
            config.unlinkable_sends,
            guarded=self.guards,
            **agent.auth_for(config),
        )
        agent.engines.paths = config.multipath_k
        self.pool.reply_blocks = lambda peer: store.run(agent.replies.take, peer, clock.now())
        self.book = self.agent.contacts
        self.agent.mailboxes_changed = self.mailboxes_changed
        agent.use_tags(self._accept, store.run, epoch=config.tag_epoch)  # rotating mailbox tags
        agent.cover.configure(config.cover_traffic, clock.now)  # off at 0 bytes/s
        self.outbox, self.directory = self.agent.outbox, self.agent.directory
        self.senders, self.engines = self.agent.requests, self.agent.engines
        # Declared in MailDelivery, which consumes them:
        self._learned_hooks, self._message_hooks, self._event_hooks = [], [], []
        self._wake_status = trio.Event()
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
        try:
            await self.run(self.agent.load)
            if self.guards and not self.guards.resume(await self.state_get(self.guards.KEY)):
                _log.warning("stored onion guards unreadable: new ones are picked")
        except RequestError as exc:
            raise NodeStateError(exc.code, str(exc)) from None

    async def keep_guards(self) -> None:
        """Store the onion guards if they changed (picked, rotated, marked down)."""
        if self.guards is not None and self.guards.changed:
            await self.state_put(self.guards.KEY, self.guards.to_json().encode())

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
        relays = [str(relay) for relay in self.home_relays]
        if phrase is None:
            identity = Identity.generate()
        else:
            identity = await trio.to_thread.run_sync(Identity.from_phrase, phrase)
        card = ContactCard.issue(identity, name=name, relays=relays, stealth=_stealth(identity))
        keystore = await trio.to_thread.run_sync(identity.to_keystore, self._passphrase)
        await self._store.run(
            self._store.db.identity.save,
            str(identity.identity_id),
            keystore,
            card.to_bytes(),
            self._clock.now(),
        )
        self.engines.set_main(identity, card)
        self.mailboxes_changed()
        _log.info("identity created")
        await self.publish_prekeys_now(identity)
        return identity

    async def exported_card(self) -> ContactCard:
        """The card to hand out: one issued before stealth payments is re-issued (and
        stored) with the identity's meta-address first."""
        card = self.card.with_stealth(self.identity, _stealth(self.identity))
        if card is not self.card:
            await self._store.run(self._store.db.identity.set_card, card.to_bytes())
            self.engines.set_main(self.identity, card)
        return card

    def mailboxes_changed(self) -> None:
        """The mailboxes to drain changed: the mailbox task re-reads them."""
        self._wake_links.set()

    # -- extension points -------------------------------------------------------

    def on_message(self, hook: Callable[[MessageReceived], Awaitable[None]]) -> None:
        """Call ``hook(message)`` after each received message is committed."""
        self._message_hooks.append(hook)

    def on_event_logged(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after an event other than a message's is committed to the log."""
        self._event_hooks.append(hook)

    def events_logged(self) -> None:
        """Tell the event followers that a background task committed events."""
        for hook in self._event_hooks:
            hook()

    async def logged(self, step: Callable[..., _T], *a: Any, **k: Any) -> _T:
        """Run ``step`` in the database worker, then :meth:`events_logged` (it logged events)."""
        result = await self.run(functools.partial(step, *a, **k))
        self.events_logged()
        return result

    def on_document_learned(self, hook: Callable[[IdentityId, bytes], Awaitable[None]]) -> None:
        """Call ``hook(sender, document)`` for a document a device's first message carried."""
        self._learned_hooks.append(hook)

    def on_contact_added(self, hook: Callable[[ContactCard], Awaitable[None]]) -> None:
        """Call ``hook(card)`` after a contact is added through :meth:`add_contact`."""
        self._contact_hooks.append(hook)

    def wake_outbox(self) -> None:
        """Something was queued: the outbox task delivers it now."""
        self._wake_outbox.set()

    async def state_get(self, key: str) -> bytes | None:
        """A blob kept (sealed at rest) in the settings table."""
        return await self._store.run(self._store.db.settings.get, key)

    async def state_put(self, key: str, value: bytes) -> None:
        """Durably store (sealed at rest) ``value`` under ``key``."""
        await self._store.run(self._store.db.settings.set, key, value, self._clock.now())

    async def state_delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._store.run(self._store.db.settings.delete, key)

    # -- contacts ---------------------------------------------------------------

    async def add_contact(
        self, name: str, card_text: str, *, announce: bool = True
    ) -> ContactEntry:
        """Verify ``card_text`` and store it under ``name``, then run the contact hooks.

        ``announce=False`` adds a quiet contact (see the module docstring): no hook runs.
        """
        add = functools.partial(self.book.add, now=self._clock.now(), announce=announce)
        entry = await self.run(add, name, card_text)
        for hook in self._contact_hooks if announce else []:
            await hook(ContactCard.from_bytes(entry.card))
        return entry

    # -- sending ----------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        *,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
        content: Content | None = None,
    ) -> MessageId:
        """Encrypt ``text`` for the contact ``to`` and queue it for delivery.

        ``sender`` and ``sender_card`` write as another local identity (a
        burner) instead of this node's identity. ``content``: send this (an
        attachment) instead of ``text``.
        """
        await self._give_reply_blocks(to, sender, sender_card)
        send = self.agent.converse.send_text
        return await self.act(
            send, to, text, sender=sender, sender_card=sender_card, content=content
        )

    async def _give_reply_blocks(
        self, to: str, sender: Identity | None, sender_card: ContactCard | None
    ) -> None:
        """In onion mode, top ``to`` up with reply blocks into our mailbox (protocol §45)."""
        if self.agent.no_reply_blocks(sender, self._config.reply_blocks):
            return  # known without a trip to the worker (the usual case: onion mode off)
        wanted = functools.partial(self.agent.reply_blocks_wanted, now=self._clock.now())
        asked = await self.run(wanted, to, sender, sender_card, self._config.reply_blocks)
        if asked is not None:
            peer, mailbox, relay, count = asked
            try:
                gifts = await self.pool.reply_gifts(relay, mailbox, count)
            except DchatError as exc:  # sent without: the peer answers as before it had any
                _log.info("no reply blocks made: %s", type(exc).__name__)
                return
            await self.run(self.agent.replies.stock, peer, gifts)

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
        send = self.agent.converse.send_control
        return await self.act(send, card, kind, data, sender=sender, sender_card=sender_card)

    async def act(
        self, step: Callable[..., tuple[_T, list[DeviceAddress]]], *a: Any, **k: Any
    ) -> _T:
        """Run an agent step that sends (``step(*a, now=, **k)``: result, devices
        waiting for a bundle) in the database worker, then wake the delivery tasks."""
        step = functools.partial(step, *a, now=self._clock.now(), **k)
        result, waiting = await self._store.run_grouped(step)
        self._woken(waiting)
        return result

    async def send_to_own_devices(self, kind: str, data: bytes) -> None:
        """Send a control payload to our identity's other devices (if any)."""
        engine, now = self.engines.main(), self._clock.now()
        if engine is None:
            raise NodeStateError("no_identity", _NO_IDENTITY)
        waiting = await self.run(self.engines.send_to_own_devices, engine, kind, data, now=now)
        if waiting is not None:
            self._woken(waiting)

    def _woken(self, waiting: list[DeviceAddress]) -> None:
        """Wake the tasks after a send: sessions if devices wait for bundles, outbox always."""
        if waiting:
            self._wake_sessions.set()
        self._wake_outbox.set()


def _stealth(identity: Identity) -> bytes:
    """The stealth meta-address an identity's cards publish (derived from its key)."""
    return StealthKeys.from_seed(identity.signing_key.to_bytes()).meta_address.to_bytes()


def _directory_routes(config: NodeConfig, clock: Clock) -> GuardedRoutes | None:
    """Onion routes from the stored directory view (relay discovery on, no ``onion_relays``),
    each starting at one of the node's guards."""
    path = config.data_dir / ONION_DIRECTORY_FILE
    if config.onion_relays or not config.relay_discovery.enabled or not path.exists():
        return None
    return GuardedRoutes(OnionDirectory.from_json(path.read_text()), clock.now)
