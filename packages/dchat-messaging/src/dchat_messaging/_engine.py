"""The messaging engine: sessions, fan-out, sealing and opening, sans-IO.

Theory of operation
-------------------
One engine serves one local device of one identity. It never touches a socket
or a clock: the shell passes ``now``, performs the network steps the engine
asks for, and reports back.

* **send** (:meth:`MessagingEngine.send`): the message is encrypted for every
  target device (the recipient's devices, and as *sent copies* this
  identity's other devices). A device with a session gets a Double Ratchet
  message at once, sealed into an envelope and queued in the outbox. A device
  without one is *pending*: the shell fetches its prekey bundle from the
  device's relay (:meth:`needs_bundles`) and hands it to
  :meth:`bundle_received`, which runs X-Wing session setup and queues every
  pending message for the device. Each call is one store transaction.
* **multi-path**: each sealed envelope is queued once per relay of the
  device (the first :attr:`MessagingEngine.paths`, default all), each copy
  its own outbox item, so a dead relay delays only its own queue.
* **receive** (:meth:`receive`): a copy of an envelope received already
  (the same bytes via another relay, :mod:`._seen`) is a :class:`Duplicate`
  and changes nothing; otherwise the envelope is opened with this device's
  X25519 key, the claimed sender device is checked against the directory,
  the session (existing, or set up from the attached SessionInit and our
  prekeys) decrypts it, and message, session state and consumed prekey commit
  together. Anything wrong is a :class:`Rejected` event and changes nothing.
* **prekeys** (:meth:`prekey_upload`): the engine keeps the private halves and
  says what to publish at the home relay: a first set, a top-up when the relay
  runs low, a fresh generation before the current one expires.

A SessionInit whose session we already have (the initiator attaches it to
every message until it hears back) selects that session. A new one becomes
the current session; the old one is kept as ``previous`` to read messages
still in flight, and replacing an established session is reported as
:class:`SessionReset`. A message that opens with the previous session makes
it current again, so when both sides set up a session at once they converge
on whichever one the other side writes on, and nothing in flight is lost.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from dchat_core import IdentityId, canonical_encode
from dchat_crypto import (
    DchatCryptoError,
    PrekeyBundle,
    RatchetPolicy,
    RatchetSession,
    accept_session,
    initiate_session,
)
from dchat_privacy import SphinxError
from dchat_privacy.lowlevel import MAX_REPLY_DATA

from ._attachment import AttachmentBook, AttachmentEntry
from ._bundle_wrap import unwrap_bundle
from ._content import Content
from ._controls import ControlQueue, QueuedControl, load_state
from ._devices import DeviceAddress
from ._directory import DeviceDirectory, PrimaryOnly
from ._envelope import SealedEnvelope
from ._errors import (
    BundleRejectedError,
    ContentError,
    EngineStateError,
    EnvelopeRejectedError,
    MalformedEnvelopeError,
)
from ._events import Duplicate, EngineEvent, MessageReceived, Rejected, SessionReset
from ._order import ConversationOrder
from ._payment import Payments
from ._prekey_policy import PrekeyKeeper, PrekeyPolicy, PrekeyUpload
from ._recent import Recent
from ._reply_blocks import reply_relay
from ._seen import SeenEnvelopes, envelope_digest
from ._sessions import SessionRecord, SessionSlot, init_hash
from ._wire import SessionEnvelope, open_session_envelope, seal_session_envelope

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Mapping, Sequence

    from dchat_core import MessageId

    from ._bot_limits import StrangerGate
    from ._devices import DeviceKeys
    from ._reply_blocks import ReplyBlocks
    from ._store import MessageStore

__all__ = ("MessagingEngine", "outbox_id", "path_outbox_id")

_AD_DOMAIN: Final = b"dchat-session-ad-v1\x00"
MAX_PENDING_PER_DEVICE: Final = 1000
SESSIONS_KEPT: Final = 1024
"""Session records an engine keeps decoded in memory (the most recently used)."""
_DEFAULT_RATCHET: Final = RatchetPolicy()
RENEW_KIND: Final = "session.renew"
ONION_PREFIX: Final = "onion:"
"""An outbox relay text that starts so is deposited through onions (dchat-network's
``onion_route``/``split_route`` write and read the same form)."""
"""The control a device sends to set up a new session after it lost the old one."""


def outbox_id(message_id: MessageId, device_id: bytes) -> bytes:
    """The outbox key of one message to one device (its copy for the device's first relay)."""
    digest = hashlib.blake2b(bytes(message_id) + device_id, digest_size=16, person=b"dchat-outbox")
    return digest.digest()


def path_outbox_id(first: bytes, relay: str) -> bytes:
    """The outbox key of the copy of ``first`` (an :func:`outbox_id`) for another ``relay``."""
    digest = hashlib.blake2b(first + relay.encode(), digest_size=16, person=b"dchat-outbox-p")
    return digest.digest()


def _ad(
    initiator: IdentityId, initiator_dev: bytes, responder: IdentityId, responder_dev: bytes
) -> bytes:
    return _AD_DOMAIN + bytes(initiator) + initiator_dev + bytes(responder) + responder_dev


_V = TypeVar("_V")


@dataclass(slots=True)
class _Waiting:
    """The pending index and the lists one ``send`` touched (read lazily, per device)."""

    index: list[bytes]
    items: dict[bytes, tuple[DeviceAddress, list[tuple[bytes, bytes]]]] = field(
        default_factory=dict
    )

    @classmethod
    def make(cls, engine: MessagingEngine) -> Callable[[], _Waiting]:
        return lambda: cls(engine._pending())

    def take(self, engine: MessagingEngine, device: DeviceAddress) -> list[tuple[bytes, bytes]]:
        """``device``'s waiting list (added to the index), to append to."""
        if device.device_id not in self.items:
            _, items = engine._pending_entry(device.device_id)
            self.items[device.device_id] = (device, items)
            if device.device_id not in self.index:
                self.index.append(device.device_id)
        return self.items[device.device_id][1]


def _items(raw: object) -> list[tuple[bytes, bytes]]:
    """Stored ``[[outbox id, plaintext], ...]`` (anything else in it is skipped)."""
    listed = raw if isinstance(raw, list) else []
    return [(i[0], i[1]) for i in listed if isinstance(i, list) and len(i) == 2]


class _Lazy(Generic[_V]):
    """A value computed on first use, then kept."""

    __slots__ = ("_done", "_make", "_value")

    def __init__(self, make: Callable[[], _V]) -> None:
        self._make, self._done = make, False
        self._value: _V | None = None

    def get(self) -> _V:
        if not self._done:
            self._value, self._done = self._make(), True
        return self._value  # type: ignore[return-value]


class _UnknownDeviceError(EnvelopeRejectedError):
    """A first message from a device the directory neither knows nor accepts."""


class _NoSessionError(EnvelopeRejectedError):
    """A session message from a device we hold no session with."""


class MessagingEngine:
    """Sessions and messages of one local device.

    Args:
        keys: This device's keys.
        store: Durable state.
        namespace: Prefix of this engine's state keys (one per local identity).
        directory: Decides which sender devices are genuine.
        blocked: Identities whose messages are dropped after decryption (the
            set is kept, not copied: the caller may change it later).
        ratchet_policy: Limits and rotation of new sessions.
        prekey_policy: Prekey publishing schedule.
    """

    def __init__(
        self,
        keys: DeviceKeys,
        store: MessageStore,
        *,
        namespace: str = "msg",
        directory: DeviceDirectory | None = None,
        blocked: set[IdentityId] | None = None,
        ratchet_policy: RatchetPolicy = _DEFAULT_RATCHET,
        prekey_policy: PrekeyPolicy | None = None,
    ) -> None:
        self.keys = keys
        self._store = store
        self._ns = namespace
        self.directory: DeviceDirectory = directory or PrimaryOnly()
        self.blocked: set[IdentityId] = blocked if blocked is not None else set()
        self.strangers: StrangerGate | None = None
        """Limits strangers' messages to a bot identity (:mod:`._bot_limits`); None: none."""
        self._ratchet_policy = ratchet_policy
        self._prekey_policy = prekey_policy or PrekeyPolicy()
        self._prekeys = PrekeyKeeper(store, self._key("prekeys"), self._prekey_policy)
        self._controls = ControlQueue(store, self._key("controls"))
        # Decoded session records, write-through (see ``_session``).
        self._sessions: Recent[bytes, SessionRecord] = Recent(SESSIONS_KEPT)
        self.order = ConversationOrder(store, self._key)
        """Each conversation's sequence numbers, clock and missing texts."""
        self.paths: int | None = None
        """How many of a device's relays each envelope goes to (``None``: all; multi-path)."""
        self.tags: Container[bytes] = frozenset()
        """Rotating tags of our mailbox whose mail this engine opens (besides our mailbox)."""
        self._onion: bool | None = None  # read from the store on first use
        self.untagged: Callable[[Sequence[bytes]], None] | None = None
        """Told the outbox keys of every envelope queued (a burner's: never routed to a tag)."""
        self.replies: ReplyBlocks | None = None
        """Reply blocks given and held (node-wide, protocol §45); None: not used."""
        self.seen = SeenEnvelopes(store, self._key("seen"))
        """Digests of the envelopes received lately (a copy via another relay is a duplicate)."""

    # -- state keys ----------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return ".".join((self._ns, *parts))

    def _session(self, device_id: bytes) -> SessionRecord | None:
        """The session record of ``device_id``; only inside a store transaction.

        Records are kept decoded (:class:`Recent`): the caller changes the
        record it gets in place (the ratchet steps), then saves it or raises,
        and a rollback drops it from memory either way. A record saved is
        encoded at the commit (``put_state_later``), so the store may still
        hold this very object for an enclosing level: a rollback first puts
        it back as it was when this level took it (:meth:`SessionRecord.snapshot`).
        """
        record = self._sessions.get(device_id)
        if record is None:
            data = self._store.get_state(self._key("sess", device_id.hex()))
            if data is None:
                return None
            record = SessionRecord.from_bytes(data)  # a new object: no one else holds it
            self._sessions.put(device_id, record)
            self._store.on_rollback(lambda: self._sessions.drop(device_id))
            return record
        restore = record.snapshot()

        def undo() -> None:
            restore()
            self._sessions.drop(device_id)

        self._store.on_rollback(undo)
        return record

    def _keep_attachment(self, content: Content) -> None:
        """Keep a message's attachment descriptor with it (the caller's transaction).

        A file is pending (a sending node marks its own stored once it names
        the local copy, which the engine does not know); a location is complete.
        """
        attachment = content.attachment
        assert attachment is not None
        entry = AttachmentEntry(attachment, "stored" if attachment.is_location else "pending")
        AttachmentBook(self._store).put(bytes(content.message_id), entry)

    def _keep_payment(
        self, content: Content, payer: IdentityId, payee: IdentityId, *, outgoing: bool
    ) -> None:
        """Keep a payment message's record (the caller's transaction); see :mod:`._payment`."""
        assert content.payment is not None
        Payments(self._store).keep(
            content.message_id, content.payment, payer=payer, payee=payee, outgoing=outgoing
        )

    def _save_session(self, device_id: bytes, record: SessionRecord) -> None:
        # Encoded once per transaction, at its commit: the record as it is then.
        self._store.put_state_later(self._key("sess", device_id.hex()), record)
        self._sessions.put(device_id, record)
        self._store.on_rollback(lambda: self._sessions.drop(device_id))

    def _delete_session(self, device_id: bytes) -> None:
        self._store.delete_state(self._key("sess", device_id.hex()))
        self._sessions.drop(device_id)

    def has_session(self, device_id: bytes) -> bool:
        """Whether a session with this device exists."""
        return self._store.get_state(self._key("sess", device_id.hex())) is not None

    def forget_device(self, device_id: bytes) -> None:
        """Drop the session and queued messages of a device (it was revoked)."""
        with self._store.transaction():
            self._delete_session(device_id)
            index = self._pending()
            if device_id in index:
                index.remove(device_id)
                self._save_pending(index, {device_id: None})

    # -- sending -------------------------------------------------------------------

    def send(
        self,
        content: Content,
        to: Sequence[DeviceAddress],
        *,
        now: float,
        copies: Sequence[DeviceAddress] = (),
        peer: IdentityId | None = None,
        record: bool = True,
    ) -> list[DeviceAddress]:
        """Encrypt ``content`` for every device of ``to`` and sent copies for ``copies``.

        Args:
            content: The message.
            to: The recipient's devices.
            now: Current time (seconds).
            copies: This identity's other devices.
            peer: The conversation's other party (stored with the sent message
                and named in sent copies); default: the identity of ``to``.
            record: Store a text message as sent (in the same transaction).

        Returns:
            The devices that need a prekey bundle before their copy can go.

        Raises:
            ContentError: no recipient device, or the message does not fit.
        """
        if not to:
            raise ContentError("a message needs at least one recipient device")
        peer = peer if peer is not None else to[0].identity
        waiting: list[DeviceAddress] = []
        with self._store.transaction():
            if record and content.kind == "text":
                content = self.order.stamp(str(peer), content)
                self._store.add_message(
                    bytes(content.message_id), "out", str(peer), content.text,
                    content.sent_at_ms / 1000, now, order=content.lamport,
                )  # fmt: skip
                if content.attachment is not None:
                    self._keep_attachment(content)
                if content.payment is not None:
                    self._keep_payment(content, self.keys.identity, peer, outgoing=True)
            plain = content.to_padded()
            # The copy carrying our card goes only in a session's first messages:
            # encoded once, and only if some device needs it.
            plain_card = _Lazy(
                lambda: replace(
                    content, card=content.card or self.keys.card, document=self.keys.document
                ).to_padded()
            )
            mirror_plain = _Lazy(lambda: replace(content, peer=peer).to_padded())
            pending = _Lazy(_Waiting.make(self))  # read only if some device has no session
            for device in to:
                if not self._queue(device, content.message_id, plain, plain_card, pending, now):
                    waiting.append(device)
            for device in copies:
                if device.device_id == self.keys.device_id:
                    continue
                mirror = mirror_plain.get()
                if not self._queue(device, content.message_id, mirror, mirror_plain, pending, now):
                    waiting.append(device)
            if waiting:
                self._save_pending(pending.get().index, pending.get().items)
        return waiting

    def _queue(
        self,
        device: DeviceAddress,
        message_id: MessageId,
        plain: bytes,
        plain_card: _Lazy[bytes],
        pending: _Lazy[_Waiting],
        now: float,
    ) -> bool:
        """Encrypt for ``device`` now if a session exists, else queue it; True if sent."""
        oid = outbox_id(message_id, device.device_id)
        record = self._session_or_none(device.device_id)
        if record is None:
            items = pending.get().take(self, device)
            if len(items) >= MAX_PENDING_PER_DEVICE:
                raise ContentError("too many messages wait for this device's prekeys")
            items.append((oid, plain_card.get()))
            return False
        slot = record.current
        self._enqueue(device, slot, oid, plain_card.get() if slot.init is not None else plain, now)
        self._save_session(device.device_id, record)
        return True

    def _session_or_none(self, device_id: bytes) -> SessionRecord | None:
        try:
            return self._session(device_id)
        except EngineStateError:
            # A damaged session is replaced by a new one (reported to the peer as a reset).
            self._delete_session(device_id)
            return None

    def _enqueue(
        self, device: DeviceAddress, slot: SessionSlot, oid: bytes, plain: bytes, now: float
    ) -> None:
        message = slot.ratchet.encrypt(plain, now=now)
        peer, replies = bytes(device.identity), self.replies
        inner = SessionEnvelope(
            self.keys.identity,
            self.keys.device_key.public_key,
            slot.init,
            message,
            None if replies is None else replies.attach(peer),
        )
        envelope = seal_session_envelope(
            inner, mailbox=device.mailbox, device_key=device.exchange_key
        )
        raw, mailbox = envelope.to_bytes(), bytes(device.mailbox)
        if replies is not None and replies.answers_by_block(peer) and len(raw) <= MAX_REPLY_DATA:
            # The peer gave reply blocks: not a relay of its card (§45). A longer
            # envelope than one block carries takes the usual path (onions if on).
            self._store.enqueue(oid, reply_relay(peer), mailbox, raw, now)
            return
        onion = self.onion
        if self.untagged is not None:
            rest = device.paths(self.paths)[1:]
            self.untagged([oid, *(path_outbox_id(oid, relay) for relay in rest)])
        for index, relay in enumerate(device.paths(self.paths)):
            # One outbox item per relay: each relay's queue keeps its own order and
            # retries, so a dead relay holds back only its own copies.
            key = oid if index == 0 else path_outbox_id(oid, relay)
            self._store.enqueue(key, ONION_PREFIX + relay if onion else relay, mailbox, raw, now)

    @property
    def onion(self) -> bool:
        """This identity's onion mode: its envelopes go to the mailbox relay through onions.

        Kept in the store (one value per identity); the outbox entries of an
        identity in onion mode name the relay as ``onion:HOST:PORT``, which the
        node's deposit pool (dchat-network's ``OnionPool``) sends as Sphinx
        onions over three relays (protocol §39). Off by default.
        """
        if self._onion is None:
            self._onion = self._store.get_state(self._key("onion")) == b"\x01"
        return self._onion

    @property
    def onion_known(self) -> bool | None:
        """:attr:`onion` if it is held in memory (None: reading it takes the store).

        Safe to read outside the store's worker: a rolled-back change of the
        mode resets it to None.
        """
        return self._onion

    def set_onion(self, on: bool) -> None:
        """Turn onion mode on or off for what this identity sends from now on."""
        self._store.put_state(self._key("onion"), b"\x01" if on else b"\x00")
        self._onion = on
        self._store.on_rollback(lambda: setattr(self, "_onion", None))

    def pending_count(self) -> int:
        """Messages waiting for a session (not yet in the outbox)."""
        return sum(len(self._pending_entry(device)[1]) for device in self._pending())

    def needs_bundles(self) -> list[DeviceAddress]:
        """Devices with messages waiting for a session: fetch each one's prekey bundle."""
        found = (self._pending_entry(device)[0] for device in self._pending())
        return [address for address in found if address is not None]

    def bundle_received(self, device: DeviceAddress, bundle: bytes, *, now: float) -> int:
        """Set up a session to ``device`` from its (wrapped) ``bundle``; queue what waited.

        Returns:
            How many messages were queued.

        Raises:
            BundleRejectedError: the bundle is malformed, forged, expired or
                not ``device``'s (nothing changes; fetch again later).
        """
        plain = unwrap_bundle(bundle, device_key=device.device_id, mailbox=bytes(device.mailbox))
        try:
            parsed = PrekeyBundle.from_bytes(plain)
            if parsed.identity_key != device.device_key or parsed.static_key != device.exchange_key:
                raise BundleRejectedError("the prekey bundle is not this device's")
            ad = _ad(self.keys.identity, self.keys.device_id, device.identity, device.device_id)
            init, secrets, remote = initiate_session(
                self.keys.device_key, self.keys.exchange_key, parsed, now=now, associated_data=ad
            )
            ratchet = RatchetSession.initiator(
                secrets, remote, associated_data=ad, policy=self._ratchet_policy, now=now
            )
        except BundleRejectedError:
            raise
        except (DchatCryptoError, ValueError) as exc:
            raise BundleRejectedError(f"unusable prekey bundle: {type(exc).__name__}") from None
        slot = SessionSlot(ratchet, init=init)
        with self._store.transaction():
            old = self._session_or_none(device.device_id)
            record = SessionRecord(device.identity, slot, None if old is None else old.current)
            index = self._pending()
            _, items = self._pending_entry(device.device_id)
            for oid, plain in items:
                self._enqueue(device, slot, oid, plain, now)
            self._save_session(device.device_id, record)
            if device.device_id in index:
                index.remove(device.device_id)
                self._save_pending(index, {device.device_id: None})
        return len(items)

    # -- pending ---------------------------------------------------------------------

    # The devices waiting are one small index (``pending``: their device ids);
    # each one's address and messages are its own entry (``pend.<device hex>``:
    # ``[address, [[outbox id, plaintext], ...]]``), so queueing for or setting
    # up one device of a thousand rewrites that device's entry and 32 bytes a
    # device of index, not every device's messages.

    def _pending(self) -> list[bytes]:
        raw = load_state(self._store, self._key("pending"))
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise EngineStateError("stored pending messages are damaged")
        if any(isinstance(a, list) for a in raw):
            return self._pending_upgrade(raw)
        if not all(isinstance(a, bytes) and len(a) == 32 for a in raw):
            raise EngineStateError("stored pending messages are damaged")
        return raw

    def _pending_upgrade(self, raw: list[object]) -> list[bytes]:
        """Split the one list of older versions (``[[address, items], ...]``) by device."""
        entries: dict[bytes, tuple[DeviceAddress | None, list[tuple[bytes, bytes]]] | None] = {}
        for entry in raw:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], bytes)):
                raise EngineStateError("stored pending messages are damaged")
            address = DeviceAddress.from_bytes(entry[0])
            entries[address.device_id] = (address, _items(entry[1]))
        index = list(entries)
        self._save_pending(index, entries)
        return index

    def _pending_entry(
        self, device_id: bytes
    ) -> tuple[DeviceAddress | None, list[tuple[bytes, bytes]]]:
        raw = load_state(self._store, self._key("pend", device_id.hex()))
        if raw is None:
            return None, []
        if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], bytes)):
            raise EngineStateError("stored pending messages are damaged")
        return DeviceAddress.from_bytes(raw[0]), _items(raw[1])

    def _save_pending(
        self,
        index: list[bytes],
        entries: Mapping[bytes, tuple[DeviceAddress | None, list[tuple[bytes, bytes]]] | None],
    ) -> None:
        """Write the index and ``entries`` (None, or no messages: deleted)."""
        for device_id, entry in entries.items():
            key = self._key("pend", device_id.hex())
            if entry is not None and entry[0] is not None and entry[1]:
                value = [entry[0].to_bytes(), [list(i) for i in entry[1]]]
                self._store.put_state(key, canonical_encode(value))
            else:
                self._store.delete_state(key)
        if not index:
            self._store.delete_state(self._key("pending"))
        else:
            self._store.put_state(self._key("pending"), canonical_encode(index))

    # -- receiving -------------------------------------------------------------------

    def receive(self, data: bytes, *, now: float) -> list[EngineEvent]:
        """Open, authenticate and commit one envelope from this device's mailbox.

        Never raises for bad input: every refusal is a :class:`Rejected` event
        and leaves all state as it was.
        """
        try:
            envelope = SealedEnvelope.from_bytes(data)
            if envelope.reply_id is not None:
                return self._reply(envelope, now)
            if envelope.mailbox != self.keys.mailbox:
                if bytes(envelope.mailbox) not in self.tags:
                    raise EnvelopeRejectedError
                # Routed to a rotating tag: sealed to our mailbox (the seal binds it), and
                # seen as that (a copy routed to another epoch's tag is the same envelope).
                envelope = SealedEnvelope(self.keys.mailbox, envelope.ciphertext)
                data = envelope.to_bytes()
        except (MalformedEnvelopeError, EnvelopeRejectedError) as exc:
            return [Rejected(type(exc).__name__)]
        digest = envelope_digest(data)
        try:
            with self._store.transaction():  # one transaction for the reads and the writes
                if self.seen.contains(digest):
                    return [Duplicate()]  # the copy another relay held
                inner = open_session_envelope(envelope, self.keys.exchange_key)
                device = inner.sender_device.to_bytes()
                known = self.directory.is_device(inner.sender, device)
                if not known and inner.init is None:
                    return [Rejected("UnknownDeviceError")]
                events = self._receive(inner, device, now, vouch=not known)
                self.seen.add(digest)  # committed with the message, or not at all
                authentic = not any(isinstance(e, Rejected) for e in events)
                if inner.surbs is not None and self.replies is not None and authentic:
                    self.replies.hold(bytes(inner.sender), inner.surbs, now)
                return events
        except _UnknownDeviceError:
            return [Rejected("UnknownDeviceError")]
        except _NoSessionError:
            return self._renew(inner.sender, device, now)
        except (MalformedEnvelopeError, EnvelopeRejectedError) as exc:
            return [Rejected(type(exc).__name__)]
        except EngineStateError:
            return [Rejected("EngineStateError")]

    def _reply(self, envelope: SealedEnvelope, now: float) -> list[EngineEvent]:
        """Open a reply that came under one of our reply blocks, then receive what it holds."""
        if self.replies is None or envelope.mailbox != self.keys.mailbox:
            return [Rejected("EnvelopeRejectedError")]
        assert envelope.reply_id is not None
        try:
            with self._store.transaction():
                inside = self.replies.open(envelope.reply_id, envelope.ciphertext, now)
        except SphinxError as exc:
            return [Rejected(type(exc).__name__)]
        try:
            if SealedEnvelope.from_bytes(inside).reply_id is not None:
                raise MalformedEnvelopeError("a reply inside a reply")
        except MalformedEnvelopeError:
            return [Rejected("MalformedEnvelopeError")]
        return self.receive(inside, now=now)

    def _receive(
        self, inner: SessionEnvelope, device: bytes, now: float, *, vouch: bool
    ) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        record = self._session_or_none(device)
        plain, record, reset = self._open(inner, device, record, now)
        content = Content.from_padded(plain)
        if vouch and (
            content.document is None
            or not self.directory.vouch(inner.sender, device, content.document, now=now)
        ):
            raise _UnknownDeviceError  # rolls back the session and the consumed prekey
        if content.peer is not None and inner.sender != self.keys.identity:
            raise EnvelopeRejectedError  # only our own devices send sent copies
        self._save_session(device, record)
        if reset:
            events.append(SessionReset(inner.sender, device))
        if inner.sender in self.blocked:
            events.append(MessageReceived(content, inner.sender, device, new=False, blocked=True))
            return events
        slot = False
        if self.strangers is not None:  # a bot's node: strangers are limited
            me, kind = self.keys.identity, content.kind
            slot, refused = self.strangers.check(me, inner.sender, kind, now)
            if refused is not None:
                reason = f"StrangerLimitError.{refused}"
                dropped = MessageReceived(content, inner.sender, device, new=False, blocked=True)
                events.append(replace(dropped, refused=reason))
                return events
        new = True
        if content.kind == "text":
            outgoing = content.peer is not None
            conversation = str(content.peer if outgoing else inner.sender)
            new = self._store.add_message(
                bytes(content.message_id),
                "out" if outgoing else "in",
                conversation,
                content.text,
                content.sent_at_ms / 1000,
                now,
                order=content.lamport,
            )
            if new:
                self.order.observe(conversation, device, content)
            if slot:  # a stranger's slot: given back unless this text is stored for good
                self._give_back(inner.sender, new=new)
            if new and content.attachment is not None:
                self._keep_attachment(content)
            if new and content.payment is not None:
                payee = content.peer if outgoing else self.keys.identity
                payer = self.keys.identity if outgoing else inner.sender
                assert payee is not None
                self._keep_payment(content, payer, payee, outgoing=outgoing)
        elif content.kind != RENEW_KIND:
            self._controls.push(content, inner.sender, device)
        events.append(MessageReceived(content, inner.sender, device, new=new))
        return events

    def _give_back(self, sender: IdentityId, *, new: bool) -> None:
        assert self.strangers is not None
        release = functools.partial(self.strangers.release, str(sender))
        if new:
            self._store.on_rollback(release)
        else:
            release()

    def _open(
        self, inner: SessionEnvelope, device: bytes, record: SessionRecord | None, now: float
    ) -> tuple[bytes, SessionRecord, bool]:
        """Decrypt with the right session; returns (plaintext, updated record, reset?)."""
        if inner.init is not None:
            digest = init_hash(inner.init)
            known = None if record is None else record.knows_init(digest)
            if known is None:
                return self._accept(inner, device, record, digest, now)
        if record is None:
            raise _NoSessionError
        for slot in record.slots():
            try:
                plain = slot.ratchet.decrypt(inner.message, now=now)
            except DchatCryptoError:
                continue
            slot.init = None  # the peer answered: it has the session
            if slot is record.previous:
                # The peer writes on the other session: use it too (both converge).
                record.current, record.previous = slot, record.current
            return plain, record, False
        raise EnvelopeRejectedError

    def _accept(
        self,
        inner: SessionEnvelope,
        device: bytes,
        record: SessionRecord | None,
        digest: bytes,
        now: float,
    ) -> tuple[bytes, SessionRecord, bool]:
        assert inner.init is not None
        prekeys = self._prekeys.load()
        if prekeys is None:
            raise EnvelopeRejectedError
        ad = _ad(inner.sender, device, self.keys.identity, self.keys.device_id)
        try:
            secrets, ratchet_key, initiator = accept_session(
                prekeys, self.keys.exchange_key, inner.init, now=now, associated_data=ad
            )
            if initiator.to_bytes() != device:
                raise EnvelopeRejectedError
            ratchet = RatchetSession.responder(
                secrets, ratchet_key, associated_data=ad, policy=self._ratchet_policy, now=now
            )
            plain = ratchet.decrypt(inner.message, now=now)
        except (DchatCryptoError, ValueError):
            raise EnvelopeRejectedError from None
        self._prekeys.save(prekeys)
        slot = SessionSlot(ratchet, init_hash=digest)
        if record is None:
            return plain, SessionRecord(inner.sender, slot), False
        ours = record.current
        # A new session becomes current; the old one is kept to read what is in
        # flight. Replacing one that had carried messages both ways is a reset.
        established = ours.init is None
        return plain, SessionRecord(inner.sender, slot, ours), established

    def _renew(self, sender: IdentityId, device: bytes, now: float) -> list[EngineEvent]:
        """A session message from a device we have no session with: we lost it.

        Set up a new session by sending a small control message to the device;
        the peer sees the new session replace its old one (a
        :class:`SessionReset` on its side, authenticated by the new session).
        Nothing here is authenticated, so nothing is reported to our user but
        the refusal, and a device that already waits for a bundle or has a
        session is not asked again.
        """
        events: list[EngineEvent] = [Rejected("NoSessionError")]
        address = self.directory.address(sender, device)
        if address is None:
            return events
        with self._store.transaction():
            if device in self._pending() or self.has_session(device):
                return events
            renew = Content.control(RENEW_KIND, b"", now_ms=int(now * 1000))
            self.send(renew, [address], now=now, record=False)
        return events

    # -- controls --------------------------------------------------------------------

    def pending_controls(self) -> list[QueuedControl]:
        """Received control messages not yet marked done, oldest first."""
        return self._controls.pending()

    @property
    def controls_maybe_pending(self) -> bool:
        """Whether :meth:`pending_controls` may find something (False: known empty)."""
        return self._controls.maybe_pending

    def control_done(self, message_id: MessageId) -> None:
        """The handler of a control message finished (successfully or not)."""
        self._controls.done(message_id)

    # -- prekeys ---------------------------------------------------------------------

    def prekey_upload(self, *, held: int | None, now: float) -> PrekeyUpload | None:
        """What to publish at the home relay, if anything.

        Args:
            held: One-time bundles the relay reports holding; ``None`` when it
                holds nothing of ours (never published, or it lost them).
            now: Current time.

        Returns:
            The bundles to ``pk_put``, or None when the relay is well stocked.
            The private halves are stored before this returns.
        """
        return self._prekeys.upload(self.keys, held=held, now=now)
