"""The user role: one identity, its contacts, and the trio shell of its messaging engines.

Each local identity (the node's own, and each burner) has a
:class:`dchat_messaging.MessagingEngine`; this module only moves bytes for them:

* **sending**: the engine encrypts for each device of the recipient (and sent
  copies for our other devices) and queues the envelopes, in one database
  transaction. Devices without a session wait for a prekey bundle, which the
  sessions task fetches from the device's relay (``pk_get``) and hands back.
  The outbox task delivers envelopes and removes each only when the relay
  confirms it stored it; failed attempts back off (the engine's retry policy).
* **receiving**: the mailbox task connects to the home relay with the mailbox
  key, publishes prekeys when the relay runs low (``pk_count``/``pk_put``),
  fetches waiting envelopes and hands each to the engine, which commits the
  message and the session state together (a redelivered message is refused by
  the ratchet and never stored twice); only then is the batch acknowledged,
  so a crash at any point loses nothing.

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
  and set up a new one, or we did) is kept for the user to see.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import (
    Clock,
    DchatError,
    DecodeLimits,
    IdentityId,
    MailboxId,
    MessageId,
    NodeId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity, InvalidCardError
from dchat_messaging import (
    BundleRejectedError,
    Content,
    DeviceAddress,
    DeviceKeys,
    MessageReceived,
    MessagingEngine,
    Outbox,
    Rejected,
    SealedEnvelope,
    SessionReset,
)
from dchat_network import (
    Link,
    RelayBatch,
    RelayClient,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
    connect,
)
from dchat_storage import EngineStore

from ._directory import NodeDirectory
from ._errors import NodeStateError
from .config import NodeConfig, parse_hostport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from dchat_storage import ContactRecord, MessageRecord

    from ._store import AsyncStore

__all__ = ("UserService",)

_log = logging.getLogger("dchat.user")
_FETCH_LIMIT: Final = 64
_MAX_BACKOFF: Final = 60.0
_NOTICES: Final = "user.notices"
_MAX_NOTICES: Final = 200
_QUIET: Final = "user.quiet_contacts"
_RETIRED: Final = "user.retired_senders"
_ID_LIST_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=20000)


@dataclass(frozen=True, slots=True, repr=False)
class _LinkedDevice:
    keys: DeviceKeys
    mailbox_key: SigningKey  # the device key: it proves the device mailbox to the relay


@dataclass(frozen=True, slots=True)
class _RawMailbox:
    key: SigningKey
    handler: Callable[[bytes], Awaitable[None]]


class UserService:
    """Holds the unlocked identity and runs the outbox and mailbox tasks."""

    def __init__(
        self, config: NodeConfig, store: AsyncStore, clock: Clock, passphrase: bytes
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._passphrase = passphrase
        self._identity: Identity | None = None
        self._card: ContactCard | None = None
        self._wake_outbox = trio.Event()
        self._wake_sessions = trio.Event()
        self._publishing = trio.Lock()
        self._engine_store = EngineStore(store.db)
        self.outbox = Outbox(self._engine_store)
        self._engines: dict[IdentityId, MessagingEngine] = {}
        self.directory = NodeDirectory(clock.now)
        self._device: _LinkedDevice | None = None
        self._learned_hooks: list[Callable[[IdentityId, bytes], Awaitable[None]]] = []
        self._message_hooks: list[Callable[[MessageReceived], Awaitable[None]]] = []
        self._card_sources: list[Callable[[IdentityId], ContactCard | None]] = []
        self._blocked: set[IdentityId] = set()
        self._drop: set[IdentityId] = set()  # retired or blocked: every engine drops them
        self._device_controls: dict[str, Callable[[MessageReceived], Awaitable[None]]] = {}
        self._bundle_retry: dict[bytes, tuple[int, float]] = {}  # device: (attempts, due)
        self._controls: dict[str, Callable[[MessageReceived, Identity], Awaitable[None]]] = {}
        self._extra: dict[IdentityId, Identity] = {}
        self._raw: dict[bytes, _RawMailbox] = {}
        self._contact_hooks: list[Callable[[ContactCard], Awaitable[None]]] = []
        self._quiet: set[str] = set()
        self._retired: set[IdentityId] = set()
        self.sent = 0
        self.received = 0
        self.rejected = 0
        self.rejected_retired = 0
        self.session_resets = 0
        self.refusals: Counter[str] = Counter()

    # -- identity ---------------------------------------------------------------

    async def load(self) -> None:
        """Unlock the stored identity, if there is one."""
        record = await self._store.run(self._store.db.identity.get)
        if record is not None:
            self._identity = await trio.to_thread.run_sync(
                Identity.from_keystore, record.keystore, self._passphrase
            )
            self._card = ContactCard.from_bytes(record.card)
        self._quiet = {i.decode() for i in await self._id_list(_QUIET)}
        self._retired.clear()
        self._retired.update(IdentityId(i) for i in await self._id_list(_RETIRED))
        self._drop.clear()  # in place: the engines share this set
        self._drop.update(self._retired | self._blocked)
        for contact in await self.contacts():
            self.directory.add_card(ContactCard.from_bytes(contact.card))

    async def _id_list(self, key: str) -> list[bytes]:
        stored = await self.state_get(key)
        if stored is None:
            return []
        items = canonical_decode(stored, _ID_LIST_LIMITS)
        if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
            raise NodeStateError("corrupt_state", f"the stored {key} list is malformed")
        return items

    @property
    def identity(self) -> Identity:
        """The unlocked identity; :class:`NodeStateError` if none exists yet."""
        if self._identity is None:
            raise NodeStateError("no_identity", "this node has no identity yet: run `dchat init`")
        return self._identity

    @property
    def card(self) -> ContactCard:
        """This identity's own contact card."""
        if self._card is None:
            raise NodeStateError("no_identity", "this node has no identity yet: run `dchat init`")
        return self._card

    # -- extension points -------------------------------------------------------

    def on_control(
        self, kind: str, handler: Callable[[MessageReceived, Identity], Awaitable[None]]
    ) -> None:
        """Route control messages of ``kind`` to ``handler(message, receiving_identity)``."""
        if kind in self._controls:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._controls[kind] = handler

    def on_device_control(
        self, kind: str, handler: Callable[[MessageReceived], Awaitable[None]]
    ) -> None:
        """Route control messages of ``kind`` to ``handler`` on a linked device too."""
        self._device_controls[kind] = handler

    def on_message(self, hook: Callable[[MessageReceived], Awaitable[None]]) -> None:
        """Call ``hook(message)`` after each received message is committed."""
        self._message_hooks.append(hook)

    def on_card_lookup(self, source: Callable[[IdentityId], ContactCard | None]) -> None:
        """Also find the card of a non-contact with ``source`` (a message request's)."""
        self._card_sources.append(source)

    def block_senders(self, identities: Iterable[IdentityId]) -> None:
        """Drop messages from these identities after decryption (not persisted here)."""
        for identity in identities:
            self._blocked.add(identity)
            self._drop.add(identity)

    def unblock_sender(self, identity: IdentityId) -> None:
        """Let ``identity`` through again (unless its key was retired by a recovery)."""
        self._blocked.discard(identity)
        if identity not in self._retired:
            self._drop.discard(identity)

    def blocked_senders(self) -> frozenset[IdentityId]:
        """The blocked identities."""
        return frozenset(self._blocked)

    def is_me(self, identity: IdentityId) -> bool:
        """Whether ``identity`` is this node's identity (or the one it is a device of)."""
        engines = self._main_engines()
        return bool(engines) and engines[0].keys.identity == identity

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

    def on_document_learned(self, hook: Callable[[IdentityId, bytes], Awaitable[None]]) -> None:
        """Call ``hook(sender, document)`` for a document a device's first message carried."""
        self._learned_hooks.append(hook)

    def use_linked_device(
        self, device_key: SigningKey, exchange_key: PrivateKey, card: ContactCard
    ) -> None:
        """Act as a linked device of ``card``'s identity: its own mailbox, sessions and keys."""
        public = device_key.public_key.to_bytes()
        keys = DeviceKeys(
            card.identity_id, device_key, exchange_key, MailboxId.derive(public), card
        )
        self._device = _LinkedDevice(keys, device_key)
        self.directory.add_card(card)
        self._engines[card.identity_id] = MessagingEngine(
            keys,
            self._engine_store,
            namespace=f"msg.{card.identity_id}",
            directory=self.directory,
            blocked=self._drop,
        )

    def set_own_document(self, document: bytes) -> None:
        """Our identity's current document: it rides with each session's first messages."""
        for engine in self._main_engines():
            engine.keys = replace(engine.keys, document=document)

    def _main_engines(self) -> list[MessagingEngine]:
        if self._device is not None:
            return [self._engines[self._device.keys.identity]]
        if self._identity is None:
            return []
        return [self.engine_for(self._identity)]

    @property
    def is_linked_device(self) -> bool:
        """Whether this node runs as a linked device (no identity key)."""
        return self._device is not None

    def on_contact_added(self, hook: Callable[[ContactCard], Awaitable[None]]) -> None:
        """Call ``hook(card)`` after a contact is added through :meth:`add_contact`."""
        self._contact_hooks.append(hook)

    @property
    def has_identity(self) -> bool:
        """Whether this node holds an identity's keys."""
        return self._identity is not None

    def now(self) -> float:
        """The node's clock."""
        return self._clock.now()

    @property
    def home_relay(self) -> str:
        """The configured home relay, ``HOST:PORT``."""
        if self._config.relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        return self._config.relay

    def add_identity(self, identity: Identity) -> None:
        """Also fetch and open mail for ``identity`` (e.g. a burner)."""
        self._extra[identity.identity_id] = identity

    def remove_identity(self, identity_id: IdentityId) -> None:
        """Stop fetching mail for an extra identity."""
        self._extra.pop(identity_id, None)

    def add_raw_mailbox(self, key: SigningKey, handler: Callable[[bytes], Awaitable[None]]) -> None:
        """Also drain the mailbox of ``key`` at the home relay into ``handler``."""
        self._raw[key.public_key.to_bytes()] = _RawMailbox(key, handler)

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

    def engine_for(self, identity: Identity, card: ContactCard | None = None) -> MessagingEngine:
        """The messaging engine of a local identity (created on first use)."""
        engine = self._engines.get(identity.identity_id)
        if engine is None:
            if card is None and self._identity is not None:
                card = self._card if identity.identity_id == self._identity.identity_id else None
            keys = DeviceKeys(
                identity.identity_id,
                identity.signing_key,
                identity.encryption_key,
                identity.mailbox_id,
                card,
            )
            engine = MessagingEngine(
                keys,
                self._engine_store,
                namespace=f"msg.{identity.identity_id}",
                directory=self.directory,
                blocked=self._drop,
            )
            self._engines[identity.identity_id] = engine
        elif card is not None and engine.keys.card != card:
            engine.keys = replace(engine.keys, card=card)
        return engine

    def _main_engine(self) -> MessagingEngine:
        engines = self._main_engines()
        if not engines:
            raise NodeStateError("no_identity", "this node has no identity yet: run `dchat init`")
        return engines[0]

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
        copies: list[DeviceAddress] = []
        if sender is None:
            engine = self._main_engine()
            own = engine.keys.card
            if own is not None:
                copies = self.directory.own_devices(own, besides=engine.keys.device_id)
        else:
            engine = self.engine_for(sender, sender_card)
        if sender_card is not None and content.kind != "text":
            content = replace(content, card=sender_card)
        targets = self.directory.devices_of(card)
        waiting = await self._store.run(
            functools.partial(engine.send, content, targets, now=self._clock.now(), copies=copies)
        )
        if waiting:
            self._wake_sessions.set()
        self._wake_outbox.set()
        return content.message_id

    async def send_to_own_devices(self, kind: str, data: bytes) -> None:
        """Send a control payload to our identity's other devices (if any)."""
        engine = self._main_engine()
        own = engine.keys.card
        if own is None:
            return
        devices = self.directory.own_devices(own, besides=engine.keys.device_id)
        if not devices:
            return
        content = Content.control(kind, data, now_ms=int(self._clock.now() * 1000))
        waiting = await self._store.run(
            functools.partial(engine.send, content, devices, now=self._clock.now(), record=False)
        )
        if waiting:
            self._wake_sessions.set()
        self._wake_outbox.set()

    async def waiting_for_sessions(self) -> int:
        """Messages not yet in the outbox: their devices' sessions are being set up."""
        total = 0
        for engine in list(self._engines.values()):
            total += await self._store.run(engine.pending_count)
        return total

    async def forget_device(self, device_key: bytes) -> None:
        """A device was revoked: drop its sessions and anything waiting for it."""
        for engine in list(self._engines.values()):
            await self._store.run(engine.forget_device, device_key)

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

    async def state_get(self, key: str) -> bytes | None:
        """A blob kept (sealed at rest) in the settings table."""
        return await self._store.run(self._store.db.settings.get, key)

    async def state_put(self, key: str, value: bytes) -> None:
        """Durably store (sealed at rest) ``value`` under ``key``."""
        await self._store.run(self._store.db.settings.set, key, value, self._clock.now())

    async def state_delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._store.run(self._store.db.settings.delete, key)

    async def create_identity(self, name: str, *, phrase: str | None = None) -> Identity:
        """Create the identity, encrypt it under the node passphrase, store it.

        With ``phrase`` (BIP-39), the keys are derived from it (a new identity
        whose phrase the caller shows once, or the restore of an old one);
        otherwise they are random. The phrase itself is never stored.
        """
        if self._identity is not None:
            raise NodeStateError("identity_exists", "this node already has an identity")
        if self._config.relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        relay_node = NodeId.parse(self._config.relay_node) if self._config.relay_node else None
        if phrase is None:
            identity = Identity.generate()
        else:
            identity = await trio.to_thread.run_sync(Identity.from_phrase, phrase)
        card = ContactCard.issue(
            identity, name=name, relay=self._config.relay, relay_node=relay_node
        )
        keystore = await trio.to_thread.run_sync(identity.to_keystore, self._passphrase)
        db = self._store.db
        await self._store.run(
            db.identity.save,
            str(identity.identity_id),
            keystore,
            card.to_bytes(),
            self._clock.now(),
        )
        self._identity, self._card = identity, card
        _log.info("identity created")
        await self.publish_prekeys_now(identity)
        return identity

    async def publish_prekeys_now(self, identity: Identity) -> bool:
        """Publish ``identity``'s prekeys at the home relay now (best effort).

        Until its bundles are at the relay nobody can start a session with the
        identity, so a new identity publishes before its creation returns
        rather than at the next poll; if the relay cannot be reached, the
        mailbox task publishes later. Returns whether it succeeded.
        """
        try:
            host, port, pinned = self._relay_target()
            with trio.fail_after(10):
                link = await connect(
                    host, port, node_key=identity.mailbox_key, expected_peer=pinned
                )
                try:
                    await self._publish_prekeys(link, self.engine_for(identity))
                finally:
                    await link.aclose()
        except (DchatError, trio.TooSlowError) as exc:
            _log.info("prekeys not published yet: %s", type(exc).__name__)
            return False
        return True

    # -- contacts ---------------------------------------------------------------

    async def add_contact(
        self, name: str, card_text: str, *, announce: bool = True
    ) -> ContactRecord:
        """Verify ``card_text`` and store it under ``name``.

        ``announce=False`` adds a quiet contact (see the module docstring).
        """
        card = ContactCard.from_text(card_text)
        if self._identity is not None and card.identity_id == self._identity.identity_id:
            raise InvalidCardError("that is this node's own card")
        db = self._store.db
        record = await self._store.run(
            db.contacts.add, name, str(card.identity_id), card.to_bytes(), self._clock.now()
        )
        self.directory.add_card(card)
        if not announce:
            self._quiet.add(record.identity_id)
            await self.state_put(_QUIET, canonical_encode(sorted(i.encode() for i in self._quiet)))
            return record
        for hook in self._contact_hooks:
            await hook(card)
        return record

    def is_quiet(self, identity_id: IdentityId | str) -> bool:
        """Whether the contact was added quietly (for a burner)."""
        return str(identity_id) in self._quiet

    async def replace_contact(self, old: IdentityId, card: ContactCard) -> ContactRecord | None:
        """Give the contact ``old`` a new card (its key rotated); None if unknown."""
        db = self._store.db
        self.directory.add_card(card)
        return await self._store.run(
            db.contacts.replace, str(old), str(card.identity_id), card.to_bytes()
        )

    async def refuse_sender(self, sender: IdentityId) -> None:
        """From now on, refuse mail signed by ``sender`` (a key retired by a recovery)."""
        self._retired.add(sender)
        self._drop.add(sender)
        await self.state_put(_RETIRED, canonical_encode(sorted(bytes(i) for i in self._retired)))

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

    async def run_outbox(self) -> None:
        """Deliver queued envelopes forever; a failed one is retried after a backoff."""
        while True:
            self._wake_outbox = trio.Event()
            for item in await self._store.run(self.outbox.due, self._clock.now(), 64):
                try:
                    await self._deliver(item.relay, item.mailbox, item.envelope)
                except DchatError as exc:
                    _log.info("delivery deferred: %s", type(exc).__name__)
                    await self._store.run(self.outbox.failed, item, self._clock.now())
                else:
                    await self._store.run(self.outbox.delivered, item.message_id)
                    self.sent += 1
            with trio.move_on_after(self._config.poll_interval):
                await self._wake_outbox.wait()

    async def _deliver(self, relay: str, mailbox: bytes, envelope: bytes) -> None:
        host, port = parse_hostport(relay)
        # A fresh key per delivery: the relay cannot link deposits to one sender.
        link = await connect(host, port, node_key=SigningKey.generate())
        try:
            client = RelayClient()
            client.receive(await link.request(client.put(mailbox, envelope)))
        finally:
            await link.aclose()

    # -- sessions ---------------------------------------------------------------

    async def run_sessions(self) -> None:
        """Fetch the prekey bundles that waiting messages need, forever."""
        while True:
            self._wake_sessions = trio.Event()
            for engine in list(self._engines.values()):
                for device in await self._store.run(engine.needs_bundles):
                    await self._set_up(engine, device)
            with trio.move_on_after(self._config.poll_interval):
                await self._wake_sessions.wait()

    async def _set_up(self, engine: MessagingEngine, device: DeviceAddress) -> None:
        now = self._clock.now()
        attempts, due = self._bundle_retry.get(device.device_id, (0, 0.0))
        if due > now:
            return
        try:
            bundle = await self._fetch_bundle(device)
            await self._store.run(engine.bundle_received, device, bundle, now=now)
        except (DchatError, BundleRejectedError) as exc:
            # The device's relay is down, or it has published no bundle yet: back off.
            delay = min(_MAX_BACKOFF, self._config.poll_interval * 2 ** min(attempts, 8))
            _log.info("session setup deferred: %s", type(exc).__name__)
            self._bundle_retry[device.device_id] = (attempts + 1, now + delay)
            return
        self._bundle_retry.pop(device.device_id, None)
        self._wake_outbox.set()

    async def _fetch_bundle(self, device: DeviceAddress) -> bytes:
        host, port = parse_hostport(device.relay)
        link = await connect(host, port, node_key=SigningKey.generate())
        try:
            client = RelayClient()
            reply = client.receive(await link.request(client.get_prekeys(bytes(device.mailbox))))
            assert isinstance(reply, RelayPrekeyBundle)
            return reply.bundle
        finally:
            await link.aclose()

    # -- receiving --------------------------------------------------------------

    async def run_mailbox(self) -> None:
        """Poll the home relay for mail forever."""
        while True:
            # A pairing node has no identity, only raw mailboxes.
            active = self._identity is not None or self._device is not None or self._raw
            if active and self._config.relay is not None:
                try:
                    await self.fetch_once()
                except DchatError as exc:
                    _log.info("mailbox fetch failed: %s", type(exc).__name__)
            await trio.sleep(self._config.poll_interval)

    async def fetch_once(self) -> int:
        """Fetch, store and acknowledge everything waiting; returns new messages.

        Each mailbox (this identity's, every extra identity's, every raw one)
        is drained over its own connection, authenticated by its own key.
        """
        new = 0 if self._identity is None else await self._fetch_identity(self._identity)
        if self._device is not None:
            engine = self._engines[self._device.keys.identity]
            new += await self._fetch_mailbox(self._device.mailbox_key, engine, None)
        for extra in list(self._extra.values()):
            new += await self._fetch_identity(extra)
        for raw in list(self._raw.values()):
            await self._fetch_raw(raw)
        return new

    def _relay_target(self) -> tuple[str, int, NodeId | None]:
        if self._config.relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        host, port = parse_hostport(self._config.relay)
        pinned = NodeId.parse(self._config.relay_node) if self._config.relay_node else None
        return host, port, pinned

    async def _fetch_identity(self, identity: Identity) -> int:
        return await self._fetch_mailbox(identity.mailbox_key, self.engine_for(identity), identity)

    async def _fetch_mailbox(
        self, key: SigningKey, engine: MessagingEngine, identity: Identity | None
    ) -> int:
        host, port, pinned = self._relay_target()
        link = await connect(host, port, node_key=key, expected_peer=pinned)
        try:
            await self._publish_prekeys(link, engine)
            new = await self._drain(link, bytes(engine.keys.mailbox), engine, identity)
        finally:
            await link.aclose()
        await self._dispatch_controls(engine, identity)
        return new

    async def _publish_prekeys(self, link: Link, engine: MessagingEngine) -> None:
        """Top up (or first publish, or rotate) our bundles at the home relay.

        One at a time: a new identity publishes at once while the mailbox task
        may be polling, and two concurrent counts would both ask for a top-up.
        """
        async with self._publishing:
            await self._publish_prekeys_locked(link, engine)

    async def _publish_prekeys_locked(self, link: Link, engine: MessagingEngine) -> None:
        mailbox = bytes(engine.keys.mailbox)
        client = RelayClient()
        held = client.receive(await link.request(client.count_prekeys(mailbox)))
        assert isinstance(held, RelayPrekeysHeld)
        upload = await self._store.run(engine.prekey_upload, held=held.count, now=self._clock.now())
        if upload is None:
            return
        request = client.put_prekeys(
            mailbox, upload.last_resort, list(upload.one_time), replace=upload.replace
        )
        client.receive(await link.request(request))
        _log.info("published %d one-time prekeys", len(upload.one_time))

    async def _fetch_raw(self, raw: _RawMailbox) -> None:
        host, port, pinned = self._relay_target()
        link = await connect(host, port, node_key=raw.key, expected_peer=pinned)
        try:
            mailbox = bytes(MailboxId.derive(raw.key.public_key.to_bytes()))
            client = RelayClient()
            while True:
                batch = client.receive(await link.request(client.fetch(mailbox, _FETCH_LIMIT)))
                assert isinstance(batch, RelayBatch)
                if not batch.items:
                    return
                for _entry_id, data in batch.items:
                    await raw.handler(data)
                entries = [e for e, _ in batch.items]
                client.receive(await link.request(client.ack(mailbox, entries)))
        finally:
            await link.aclose()

    async def _drain(
        self, link: Link, mailbox: bytes, engine: MessagingEngine, identity: Identity | None
    ) -> int:
        client = RelayClient()
        new = 0
        while True:
            batch = client.receive(await link.request(client.fetch(mailbox, _FETCH_LIMIT)))
            assert isinstance(batch, RelayBatch)
            if not batch.items:
                return new
            for _entry_id, raw in batch.items:
                new += await self._accept(raw, engine)
            # Acknowledge only after every message above is committed locally.
            client.receive(await link.request(client.ack(mailbox, [e for e, _ in batch.items])))
            await self._dispatch_controls(engine, identity)

    async def _accept(self, raw: bytes, engine: MessagingEngine) -> int:
        events = await self._store.run(engine.receive, raw, now=self._clock.now())
        new = 0
        for event in events:
            if isinstance(event, Rejected):
                self.rejected += 1
                self.refusals[event.reason] += 1
                _log.warning("dropped an envelope: %s", event.reason)
            elif isinstance(event, SessionReset):
                self.session_resets += 1
                await self._notice("session_reset", event.peer)
                self._wake_sessions.set()
            elif event.blocked:
                self.rejected += 1
                if event.sender in self._retired:
                    self.rejected_retired += 1
                    self.refusals["RetiredKeyError"] += 1
                else:
                    self.refusals["BlockedSenderError"] += 1
            elif event.kind == "text" and event.new:
                self.received += 1
                new += 1
                for on_message in self._message_hooks:
                    await on_message(event)
        for sender, document in self.directory.take_learned():
            for hook in self._learned_hooks:
                await hook(sender, document)
        return new

    async def _notice(self, kind: str, peer: IdentityId) -> None:
        """Keep a notice for the user (e.g. "the session with X was reset")."""
        stored = await self.state_get(_NOTICES)
        notices = [] if stored is None else canonical_decode(stored, _ID_LIST_LIMITS)
        if not isinstance(notices, list):
            notices = []
        notices.append([kind, bytes(peer), int(self._clock.now() * 1000)])
        await self.state_put(_NOTICES, canonical_encode(notices[-_MAX_NOTICES:]))

    async def notices(self) -> list[dict[str, object]]:
        """Notices for the user, oldest first: ``{"kind", "peer", "at_ms"}``."""
        stored = await self.state_get(_NOTICES)
        items = [] if stored is None else canonical_decode(stored, _ID_LIST_LIMITS)
        if not isinstance(items, list):
            return []
        return [
            {"kind": k, "peer": str(IdentityId(p)), "at_ms": t}
            for k, p, t in items
            if isinstance(k, str) and isinstance(p, bytes) and len(p) == 32 and isinstance(t, int)
        ]

    async def _dispatch_controls(self, engine: MessagingEngine, identity: Identity | None) -> None:
        for queued in await self._store.run(engine.pending_controls):
            message = MessageReceived(queued.content, queued.sender, queued.sender_device, True)
            handler = self._controls.get(message.kind)
            device_handler = self._device_controls.get(message.kind)
            try:
                if identity is None and device_handler is not None:
                    await device_handler(message)
                elif identity is None or handler is None:
                    self.rejected += 1
                    _log.warning("dropped a control message of an unknown kind")
                else:
                    await handler(message, identity)
            except DchatError as exc:
                # A hostile or stale control message must not block the mailbox.
                self.rejected += 1
                self.refusals[type(exc).__name__] += 1
                _log.warning("control message refused: %s", type(exc).__name__)
            finally:
                await self._store.run(engine.control_done, message.message_id)

    async def messages(
        self, peer: str | None, limit: int
    ) -> list[tuple[MessageRecord, str | None]]:
        """Stored messages with the contact name of each peer, if known."""
        db = self._store.db
        peer_id: str | None = None
        if peer is not None:
            peer_id = peer if peer.startswith(IdentityId.PREFIX) else None
            if peer_id is None:
                peer_id = str((await self._contact_card(peer)).identity_id)
        records = await self._store.run(db.messages.list, peer_id, limit)
        names = {c.identity_id: c.name for c in await self.contacts()}
        return [(record, names.get(record.peer_id)) for record in records]
