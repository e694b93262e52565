"""The engines of one user node's local identities, and what their events count as.

Theory of operation
-------------------
A user node speaks as several local identities: its own (as the primary
device, holding the identity key, or as a *linked device* with a device key
certified in the identity's document) and extra ones such as burners. Each
has one :class:`~dchat_messaging.MessagingEngine`; :class:`LocalEngines`
creates them on first use, all sharing one store (each under its own state
namespace), one :class:`~dchat_messaging.DocumentDirectory` and one live set
of dropped senders (:attr:`MessageRequests.dropped`).

Sending fans out through the directory: a message goes to every current
device of the recipient and, when written as the node's own identity, as
*sent copies* to our other devices (another local identity, a burner, has
none). Everything here is synchronous and reads no clock: the shell passes
``now`` and runs each call in its database worker.

:class:`ReceiveStats` turns the engine's events into the counters a node
reports (received, rejected and why, session resets) and says which events
the shell must act on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dchat_core import IdentityId, MailboxId

from ._content import Content
from ._devices import DeviceKeys
from ._engine import MessagingEngine
from ._errors import RequestError
from ._events import Duplicate, MessageReceived, Rejected, SessionReset

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Sequence

    from dchat_crypto import PrivateKey, SigningKey
    from dchat_identity import ContactCard, Identity

    from ._bot_limits import StrangerGate
    from ._devices import DeviceAddress
    from ._directory import DocumentDirectory
    from ._events import EngineEvent
    from ._reply_blocks import ReplyBlocks
    from ._requests import MessageRequests
    from ._store import MessageStore

__all__ = ("LocalEngines", "ReceiveStats")


class LocalEngines:
    """The messaging engines of a node's local identities.

    Args:
        store: The node's message store (shared; one namespace per identity).
        directory: Who speaks for whom.
        dropped: Senders every engine drops (kept, not copied).
    """

    def __init__(
        self, store: MessageStore, directory: DocumentDirectory, dropped: set[IdentityId]
    ) -> None:
        self._store = store
        self.directory = directory
        self._dropped = dropped
        self.paths: int | None = None
        """Relays of a device each envelope goes to (``None``: all); given to new engines."""
        self.tags: Container[bytes] = frozenset()
        """Our rotating tags (``MailboxTags.known``): the primary identity's engine opens them."""
        self.untagged: Callable[[IdentityId, Sequence[bytes]], None] = lambda _id, _keys: None
        self.replies: ReplyBlocks | None = None
        self.strangers: StrangerGate | None = None
        """Limits strangers' messages to the node's bot (:mod:`._bot_limits`); for new engines."""
        """Reply blocks given and held (§45), shared by every engine made after it is set."""
        """Told the outbox keys another local identity (a burner) queues: never sent to tags."""
        self._engines: dict[IdentityId, MessagingEngine] = {}
        self._main: tuple[Identity, ContactCard] | None = None
        self.linked: DeviceKeys | None = None
        self.sent: Counter[str] = Counter()
        """Messages sent to contacts, by kind (``text`` or ``control``), for metrics."""

    def _new(self, keys: DeviceKeys) -> MessagingEngine:
        engine = MessagingEngine(
            keys,
            self._store,
            namespace=f"msg.{keys.identity}",
            directory=self.directory,
            blocked=self._dropped,
        )
        engine.paths = self.paths
        engine.replies = self.replies
        engine.strangers = self.strangers
        self._engines[keys.identity] = engine
        return engine

    def set_main(self, identity: Identity, card: ContactCard) -> None:
        """The node's own identity (it holds the identity key)."""
        self._main = (identity, card)

    def link_device(
        self, device_key: SigningKey, exchange_key: PrivateKey, card: ContactCard
    ) -> MessagingEngine:
        """Speak as a linked device of ``card``'s identity: its own keys and mailbox."""
        public = device_key.public_key.to_bytes()
        keys = DeviceKeys(
            card.identity_id, device_key, exchange_key, MailboxId.derive(public), card
        )
        self.linked = keys
        self.directory.add_card(card)
        engine = self._new(keys)
        engine.tags = self.tags  # its own rotating tags (it hands out their secrets)
        return engine

    def for_identity(self, identity: Identity, card: ContactCard | None = None) -> MessagingEngine:
        """The engine of a local identity (created on first use; ``card`` updates it)."""
        engine = self._engines.get(identity.identity_id)
        if engine is None:
            if card is None and self._main is not None:
                main, main_card = self._main
                card = main_card if identity.identity_id == main.identity_id else None
            keys = DeviceKeys(
                identity.identity_id,
                identity.signing_key,
                identity.encryption_key,
                identity.mailbox_id,
                card,
            )
            engine = self._new(keys)
            if self._main is not None and identity.identity_id == self._main[0].identity_id:
                engine.tags = self.tags  # not a burner's
            else:  # a burner: its mail must not go to a tag given to our identity
                burner = identity.identity_id
                engine.untagged = lambda keys: self.untagged(burner, keys)
        elif card is not None and engine.keys.card != card:
            engine.keys = replace(engine.keys, card=card)
        return engine

    @property
    def primary_identity(self) -> Identity | None:
        """The node's own identity when it holds the identity key (not as a linked device)."""
        return None if self._main is None else self._main[0]

    @property
    def primary_card(self) -> ContactCard | None:
        """The card of :attr:`primary_identity`."""
        return None if self._main is None else self._main[1]

    @property
    def primary(self) -> IdentityId | None:
        """The id of :attr:`primary_identity`."""
        return None if self._main is None else self._main[0].identity_id

    def main(self) -> MessagingEngine | None:
        """The engine of the node's own identity (as primary or linked device), if any."""
        if self.linked is not None:
            return self._engines[self.linked.identity]
        return None if self._main is None else self.for_identity(self._main[0])

    def onion_mode(self, identity: IdentityId) -> bool:
        """Whether ``identity`` (ours, a device's or a burner's) sends through onions.

        Reads the store (in its worker) if the identity has no engine yet.
        """
        engine = self._engines.get(identity)
        if engine is not None:
            return engine.onion
        return self._store.get_state(f"msg.{identity}.onion") == b"\x01"

    def onion_mode_known(self, identity: IdentityId) -> bool | None:
        """:meth:`onion_mode` if known without reading the store (None: it must read)."""
        engine = self._engines.get(identity)
        return None if engine is None else engine.onion_known

    def set_onion_mode(self, identity: IdentityId, on: bool) -> None:
        """Turn ``identity``'s onion mode on or off (kept in the store, per identity)."""
        engine = self._engines.get(identity)
        if engine is not None:
            engine.set_onion(on)
        else:  # the key its engine reads (``msg.<identity>`` namespace, ``onion``)
            self._store.put_state(f"msg.{identity}.onion", b"\x01" if on else b"\x00")

    def all(self) -> list[MessagingEngine]:
        """Every engine created so far."""
        return list(self._engines.values())

    def is_me(self, identity: IdentityId) -> bool:
        """Whether ``identity`` is the node's own (or the one it is a device of)."""
        main = self.main()
        return main is not None and main.keys.identity == identity

    def set_document(self, document: bytes) -> None:
        """Our identity's current document: it rides with each session's first messages."""
        main = self.main()
        if main is not None:
            main.keys = replace(main.keys, document=document)

    # -- sending (each call is one store transaction per engine) ----------------------

    def own_devices(self, engine: MessagingEngine) -> list[DeviceAddress]:
        """The other devices of ``engine``'s identity (where sent copies go)."""
        own = engine.keys.card
        if own is None:
            return []
        return self.directory.own_devices(own, besides=engine.keys.device_id)

    def send(
        self,
        engine: MessagingEngine,
        card: ContactCard,
        content: Content,
        *,
        now: float,
        copies: bool,
        sender_card: ContactCard | None = None,
    ) -> list[DeviceAddress]:
        """Fan ``content`` out to every device of ``card``'s identity.

        Args:
            engine: The sending identity's engine.
            card: The recipient.
            content: The message.
            now: Current time.
            copies: Also send copies to ``engine``'s identity's other devices.
            sender_card: The card to carry in a control message (another
                local identity's, e.g. a burner's).

        Returns:
            The devices waiting for a prekey bundle.
        """
        extra = self.own_devices(engine) if copies else []
        if sender_card is not None and content.kind != "text":
            content = replace(content, card=sender_card)
        targets = self.directory.devices_of(card)
        waiting = engine.send(content, targets, now=now, copies=extra)
        self.sent["text" if content.kind == "text" else "control"] += 1
        return waiting

    def send_as(
        self,
        card: ContactCard,
        content: Content,
        *,
        now: float,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> list[DeviceAddress]:
        """Send as the node's identity (``sender`` None) or as another local identity.

        As the node's identity, sent copies also go to our other devices; as
        another local identity (a burner, a recovery's new key) they do not,
        since it has no other devices. Returns the devices waiting for a bundle.

        Raises:
            RequestError: ``no_identity``, the node has no identity yet.
        """
        if sender is not None:
            engine = self.for_identity(sender, sender_card)
        elif (main := self.main()) is not None:
            engine = main
        else:
            raise RequestError("no_identity", "this node has no identity yet: run `dchat init`")
        return self.send(
            engine, card, content, now=now, copies=sender is None, sender_card=sender_card
        )

    def send_to_own_devices(
        self, engine: MessagingEngine, kind: str, data: bytes, *, now: float
    ) -> list[DeviceAddress] | None:
        """Send a control payload to our other devices; None if there are none."""
        devices = self.own_devices(engine)
        if not devices:
            return None
        content = Content.control(kind, data, now_ms=int(now * 1000))
        return engine.send(content, devices, now=now, record=False)

    def pending_count(self) -> int:
        """Messages of every engine waiting for a session."""
        return sum(engine.pending_count() for engine in self.all())

    def forget_device(self, device_key: bytes) -> None:
        """A device was revoked: every engine drops its session and what waits for it."""
        for engine in self.all():
            engine.forget_device(device_key)


@dataclass(slots=True)
class ReceiveStats:
    """What received envelopes came to, for a node's status report."""

    envelopes: int = 0
    """Envelopes opened (or refused) by the engines, whatever they came to."""
    received: int = 0
    rejected: int = 0
    rejected_retired: int = 0
    session_resets: int = 0
    duplicates: int = 0
    """Copies of envelopes received already (multi-path: the same one via another relay)."""
    refusals: Counter[str] = field(default_factory=Counter)

    def refuse(self, reason: str) -> None:
        """Count one refused envelope or control message."""
        self.rejected += 1
        self.refusals[reason] += 1

    def count(
        self, events: Sequence[EngineEvent], requests: MessageRequests
    ) -> tuple[list[MessageReceived], list[SessionReset]]:
        """Count ``events``; returns the new text messages and the session resets."""
        texts: list[MessageReceived] = []
        resets: list[SessionReset] = []
        for event in events:
            if isinstance(event, Rejected):
                self.refuse(event.reason)
            elif isinstance(event, Duplicate):
                self.duplicates += 1
            elif isinstance(event, SessionReset):
                self.session_resets += 1
                resets.append(event)
            elif event.refused is not None:  # a stranger over the bot's limits
                self.refuse(event.refused)
            elif event.blocked:
                reason = requests.refusal(event.sender)
                self.refuse(reason)
                self.rejected_retired += reason == "RetiredKeyError"
            elif event.kind == "text" and event.new:
                self.received += 1
                texts.append(event)
        return texts, resets
