"""Everything a user node decides about its messaging, without doing any I/O.

Theory of operation
-------------------
A user node's messaging is a set of :class:`~dchat_messaging.MessagingEngine`
(one per local identity, in :class:`~dchat_messaging.LocalEngines`) around
one store, plus the state that surrounds them: the contacts, the durable
:class:`~dchat_messaging.Outbox`, the :class:`~dchat_messaging.DocumentDirectory`
(who speaks for whom), the :class:`~dchat_messaging.MessageRequests` policy,
the :class:`~dchat_messaging.Notices` log, the counters of
:class:`~dchat_messaging.ReceiveStats`. :class:`UserMessaging` holds them together and makes the
decisions; the node's trio shell only connects, fetches, sends and sleeps:

* **contacts** (:attr:`UserMessaging.contacts`, a :class:`~dchat_messaging.ContactBook`):
  names, verified cards, quiet contacts and the messages kept with each.
* **receiving** (:meth:`UserMessaging.accept`): one envelope through its
  engine, the events counted, a session reset logged as a notice, and what
  the shell must act on returned as one :class:`Accepted` (new texts for the
  message hooks, documents learned for the document hooks, reasons of dropped
  envelopes for the log).
* **sessions** (:meth:`UserMessaging.bundles_due`): which devices' prekey
  bundles to fetch now; a device whose fetch failed waits with exponential
  backoff (``interval * 2**attempts``, at most :data:`MAX_BACKOFF` seconds).
* **delivery**: what left the outbox is counted in :attr:`UserMessaging.sent`.
* **put tokens** (:attr:`UserMessaging.tokens`, :class:`~dchat_messaging.lowlevel.PutTokens`;
  withdrawn when the contact is removed or blocked, :meth:`UserMessaging.revoke_put_auth`):
  the first time the node's identity sends to a contact
  (:meth:`UserMessaging.send_as`), a ``put.token`` control hands the contact
  a token for our mailbox in the same transaction; one received is kept
  for the sender's mailbox as its card names it (:meth:`UserMessaging.accept`).
  The mailbox link registers :meth:`UserMessaging.token_registration`, and
  the deposit pool attaches :meth:`PutTokens.token_for` when a relay asks for work.
  With :attr:`UserMessaging.put_auth` ``"proof"`` a ``put.proof`` control hands
  the contact a contact secret instead (:class:`~dchat_messaging.lowlevel.PutProofs`),
  the mailbox link registers :meth:`UserMessaging.ring_registration` and
  no token (section 41); a secret we hold goes before a token (:meth:`secret_for`).
* **rotating tags** (:attr:`UserMessaging.tags`, :class:`~dchat_messaging.lowlevel.MailboxTags`):
  with the put token, the first mail to a contact hands it a tag secret
  (``mb.tag``); one received is kept for the sender's mailbox. Deposits go to
  the current tag of a mailbox we hold a secret for (:meth:`UserMessaging.route`),
  and :meth:`UserMessaging.mailbox_links` (given ``now``) adds a link per tag
  to watch (:class:`TagMailbox`, opened with our engine through :attr:`tag_sink`).
* **cover traffic** (:attr:`UserMessaging.cover`, :class:`~dchat_messaging.lowlevel.CoverTraffic`):
  loop and drop envelopes when it is on; each routed real envelope takes a
  drop's slot (:meth:`UserMessaging.route`), and the cover tags are drained
  like our tags (:meth:`UserMessaging.mailbox_links`) into ``cover.arrived``.
* **mailboxes** (:meth:`UserMessaging.mailboxes`): which mailboxes to drain,
  each with the key that proves the right to it and the engine that opens
  its mail: the node's identity's (or, on a linked device, the device's own)
  and each extra local identity's (a burner's, :meth:`UserMessaging.add_identity`);
  *raw* mailboxes (:meth:`UserMessaging.add_raw_mailbox`, a device sync
  mailbox) hold envelopes that are not sealed messages and are drained into
  their own handler; raw items are queued at every home relay
  (:meth:`UserMessaging.queue_sealed`) and one copy of each is handled
  (:attr:`UserMessaging.raw_seen`, :mod:`._raw_seen`).
* **conversations** (:attr:`UserMessaging.conversations`, a
  :class:`~dchat_messaging.lowlevel.Conversations`): receipts, edits, deletes
  and reactions are applied as their envelope is opened (:meth:`UserMessaging.accept`);
  new texts are answered with delivery receipts to each sender who is a
  contact (:meth:`UserMessaging.accept_many`), at most one per sender per
  :data:`RECEIPT_EVERY` seconds: the first at once, the texts that arrive
  within the next second together in one receipt when it is over
  (:meth:`UserMessaging.receipts_due_at`, :meth:`UserMessaging.flush_receipts`).
  A receipt per text made a stream of texts ping-pong the ratchet (a DH step
  per message each way) and doubled the work per text; held receipts live in
  memory, so a crash within that second loses them (the texts stay "sent" at
  the sender until a read receipt, which implies delivery). The user's actions
  (:attr:`UserMessaging.converse`, :mod:`._converse`) apply locally and send
  in one transaction, returning ``(result, devices waiting for a bundle)``.
* **control messages** (:meth:`UserMessaging.controls_due`): each control
  message an engine holds goes to the handler registered for its kind
  (:meth:`UserMessaging.on_control`), called with the receiving identity; in
  the mailbox of a linked device (no identity key) only kinds registered with
  :meth:`UserMessaging.on_device_control` are handled. A kind with no handler
  is counted as rejected and dropped (its handler is ``None``).

Calls that touch the store are synchronous and meant for the shell's
database worker; none reads a clock (``now`` is passed in). Corrupt stored
state raises :class:`~dchat_messaging.RequestError` (``corrupt_state``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Protocol, TypedDict, TypeVar

from dchat_core import IdentityId, MailboxId, RelayAddress
from dchat_privacy.lowlevel import ring_statement

from ._bot_book import STRANGER_MARK
from ._bot_limits import StrangerGate
from ._channel_book import Channels
from ._contacts import ContactBook
from ._content import Content
from ._conversation import CONVERSATION_KINDS
from ._conversations import Conversations, ConversationUpdate
from ._converse import ConversationActions
from ._cover import CoverTraffic
from ._directory import DocumentDirectory
from ._envelope import SealedEnvelope
from ._errors import ContentError, ConversationError, GroupError, PaymentRefusedError
from ._events import MessageReceived, Rejected
from ._group_book import GROUP_KINDS, Groups
from ._local import LocalEngines, ReceiveStats
from ._mailbox_tags import MAILBOX_TAG_KIND, MailboxTags, encode_tag_secret
from ._notices import Notices
from ._outbox import Outbox
from ._payment import Payments
from ._put_proofs import PUT_PROOF_KIND, PutProofs, encode_put_proof
from ._put_tokens import PUT_TOKEN_KIND, PutTokens, encode_put_token
from ._raw_seen import RawSeen
from ._reply_blocks import ReplyBlocks
from ._requests import MessageRequests
from ._search import MessageSearch
from ._stealth_inbox import StealthInbox

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from dchat_core import MessageId
    from dchat_crypto import SigningKey
    from dchat_identity import ContactCard, Identity
    from dchat_privacy import ContactSecret

    from ._contacts import ContactEntry, UserStore
    from ._devices import DeviceAddress
    from ._engine import MessagingEngine
    from ._events import SessionReset
    from ._payment import PaymentEntry, ProvenPayment
    from ._raw_seen import Worker
    from ._store import OutboxEntry

__all__ = ("MAX_BACKOFF", "Accepted", "RawMailbox", "TagMailbox", "UserMailbox", "UserMessaging")

_Relay = TypeVar("_Relay")
MAX_BACKOFF: Final = 60.0
"""Longest wait (seconds) before fetching a device's prekey bundle again."""
if TYPE_CHECKING:
    ControlHandler = Callable[[MessageReceived, Identity], Awaitable[None]]
    """Handles a control message received by a local identity (the second argument)."""
    DeviceControlHandler = Callable[[MessageReceived], Awaitable[None]]
    """Handles a control message received in a linked device's own mailbox."""
    TagSink = Callable[
        [MessagingEngine, Identity | None, list[tuple[bytes, bytes]]], Awaitable[None]
    ]
    """Opens a batch pulled from a tag mailbox (see :class:`TagMailbox`)."""


RECEIPT_EVERY: Final = 1.0
"""Seconds between two delivery receipts to one sender (see the module docstring)."""
_CLEARED: Final = -2
"""A registration version no link has sent: an empty set that removes an earlier one."""


@dataclass(slots=True)
class _HeldReceipts:
    """Delivery receipts waiting for their sender's :data:`RECEIPT_EVERY` to pass."""

    engine: MessagingEngine
    sender: IdentityId
    ids: list[MessageId]


@dataclass(frozen=True, slots=True)
class Accepted:
    """What one received envelope came to, for the shell to act on."""

    texts: list[MessageReceived]
    """New text messages (for the message hooks)."""
    resets: list[SessionReset]
    """Session resets (already logged as notices; sessions need setting up)."""
    learned: list[tuple[IdentityId, bytes]]
    """Documents a device's first message carried, by sender."""
    dropped: list[str]
    """Reasons of envelopes the engine rejected (for the log)."""
    updates: list[ConversationUpdate] = field(default_factory=list)
    """Receipts, edits, deletes, reactions and typing applied (for the event stream)."""
    waiting: list[DeviceAddress] | None = None
    """Receipts went out or began to wait (wake the outbox); these devices wait for a bundle."""


@dataclass(frozen=True, slots=True)
class UserMailbox:
    """A mailbox to drain: the key that proves the right to it and the engine for its mail."""

    key: SigningKey
    engine: MessagingEngine
    identity: Identity | None
    """The local identity it belongs to; ``None`` on a linked device (no identity key)."""


@dataclass(frozen=True, slots=True)
class RawMailbox:
    """A mailbox drained into a handler (its envelopes are not sealed messages)."""

    key: SigningKey
    handler: Callable[[bytes], Awaitable[None]]
    """Returns once an envelope is durably processed."""
    drained: Callable[[object], Awaitable[None]] | None = None
    """Called (with the relay session) when a pull finds the mailbox empty."""
    wait: float | None = None
    """How long a pull may wait for mail (``None``: the link's default; 0: drain and stop)."""
    connected: Callable[[_TokenSession], Awaitable[None]] | None = None
    """Called with the relay session when the link (re)connects (a tag registers its token)."""
    seen: RawSeen | None = None
    """Handles one copy of an envelope that arrives via several home relays (None: each)."""

    @property
    def mailbox(self) -> bytes:
        """The mailbox id ``key`` proves the right to."""
        return bytes(MailboxId.derive(self.key.public_key.to_bytes()))

    async def take(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Hand each envelope of a pushed batch of ``(entry id, envelope)`` to the handler.

        With :attr:`seen`, a copy handled already (via another home relay) is skipped.
        """
        for _entry_id, envelope in batch:
            if self.seen is None:
                await self.handler(envelope)
            else:
                await self.seen.handle(envelope, self.handler)


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMailbox(RawMailbox):
    """A rotating tag of our mailbox (:mod:`._mailbox_tags`): its mail is opened by ``engine``."""

    engine: MessagingEngine
    identity: Identity | None
    sink: TagSink
    """The shell's batch handler: opens a batch with ``engine`` (as for our mailbox)."""

    async def take(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Open a pushed batch with the engine, through the shell's :attr:`sink`."""
        await self.sink(self.engine, self.identity, batch)


class _TokenSession(Protocol):
    async def sync_tokens(
        self, mailbox: bytes, registration: tuple[int, Sequence[bytes]]
    ) -> None: ...

    async def sync_ring(
        self, mailbox: bytes, registration: tuple[int, bytes, bytes, bytes]
    ) -> None: ...


class _PutAuthSetting(Protocol):
    @property
    def put_auth(self) -> str: ...


class _DepositAuth(TypedDict):
    """What a deposit pool attaches from (``RelayPool(**auth)``): our tokens and secrets."""

    tokens: Callable[[bytes], bytes | None]
    secrets: Callable[[bytes], ContactSecret | None]


async def _register_token(mailbox: bytes, token: bytes, session: _TokenSession) -> None:
    """Register a tag's put token on its link (protocol section 38); none: clear the set."""
    await session.sync_tokens(mailbox, (1, (token,)) if token else (_CLEARED, ()))


async def _no_handler(_envelope: bytes) -> None:  # pragma: no cover (TagMailbox.take)
    """A tag mailbox's unused per-envelope handler."""


async def _no_sink(
    _engine: MessagingEngine, _identity: Identity | None, _batch: list[tuple[bytes, bytes]]
) -> None:
    raise RuntimeError("no sink for tag mailboxes: set UserMessaging.tag_sink")


async def _handled_on_receipt(_message: MessageReceived, _identity: Identity) -> None:
    """The control handler of kinds :meth:`UserMessaging.accept` handles itself."""


async def _handled_on_receipt_by_device(_message: MessageReceived) -> None:
    """The same, on a linked device (a contact's token reaches all our devices)."""


def _call_with(
    handler: ControlHandler, identity: Identity, message: MessageReceived
) -> Awaitable[None]:
    return handler(message, identity)


class UserMessaging:
    """The sans-IO state and rules of one user node's messaging.

    Args:
        store: The node's message store (sealed at rest by the node).
    """

    def __init__(self, store: UserStore) -> None:
        self._store = store
        self.outbox = Outbox(store)
        self.directory = DocumentDirectory()
        self.requests = MessageRequests(store)
        self.notices = Notices(store)
        self.engines = LocalEngines(store, self.directory, self.requests.dropped)
        self.replies = ReplyBlocks(store)
        """Single-use reply blocks given to peers and held from them (protocol §45)."""
        self.engines.replies = self.replies
        self.contacts = ContactBook(store, self.directory, lambda: self.engines.primary)
        self.strangers = StrangerGate()
        """Per-stranger limits of the node's bot (off until the shell names the bot)."""
        chosen = functools.partial(self.contacts.chosen, stranger_mark=STRANGER_MARK)
        self.strangers.is_contact = chosen
        self.engines.strangers = self.strangers
        self.stats = ReceiveStats()
        self.sent = 0
        """Envelopes the relays confirmed they stored."""
        self._retry: dict[bytes, tuple[int, float]] = {}  # device: (attempts, due)
        self._extra: dict[IdentityId, Identity] = {}
        self._raw: dict[bytes, RawMailbox] = {}
        self.raw_seen = RawSeen(store)
        """Raw envelopes handled lately: one copy of each, whichever relay it came by."""
        self.mailboxes_changed: Callable[[], None] = lambda: None
        """Called when the set of mailboxes to drain changes (the shell re-reads it)."""
        on_receipt = {PUT_TOKEN_KIND, PUT_PROOF_KIND, MAILBOX_TAG_KIND}
        on_receipt |= {*CONVERSATION_KINDS, *GROUP_KINDS}
        self._controls: dict[str, ControlHandler] = dict.fromkeys(on_receipt, _handled_on_receipt)
        self._device_controls: dict[str, DeviceControlHandler] = dict.fromkeys(
            on_receipt, _handled_on_receipt_by_device
        )
        self.conversations = Conversations(store)
        """Replies, edits, deletes, reactions, receipts and their settings."""
        # Delivery receipts held back (see the module docstring), by (engine, sender).
        self._receipts_held: dict[tuple[IdentityId, IdentityId], _HeldReceipts] = {}
        self._receipts_sent: dict[tuple[IdentityId, IdentityId], float] = {}
        self.converse = ConversationActions(
            store, self.contacts, self.engines, self.conversations, self.send_as
        )
        """Our user's conversation actions (edit, delete, react, reply, forward, read)."""
        self.payments = Payments(store, store.log_event)
        self.stealth = StealthInbox(store, store.log_event)
        """Stealth payments found by the node's scan, each told once (:mod:`._stealth_inbox`)."""
        """Payment messages: records, verdicts and unsent intents (:mod:`._payment`)."""
        self.search = MessageSearch(store, self.contacts, self.conversations)
        """Local full-text search over the stored texts."""
        self.tokens = PutTokens(store)
        """Put tokens: issued to our contacts, and theirs for their mailboxes."""
        self.proofs = PutProofs(store)
        """Contact-proof secrets: issued to our contacts, and theirs (section 41)."""
        self.put_auth = "token"
        self._ring_signed: tuple[int, bytes, bytes, bytes] = (0, b"", b"", b"")
        """What contacts get for our mailbox: ``"token"`` or ``"proof"`` (config ``put_auth``)."""
        self.tags = MailboxTags(store)
        """Rotating mailbox tags: secrets issued and held, the tags to watch."""
        self.tags.changed = lambda: self.mailboxes_changed()
        self.engines.tags = self.tags.known
        self.engines.untagged = self.tags.untag
        self.tag_sink: TagSink = _no_sink
        self.cover = CoverTraffic(store)
        """Cover traffic (off unless configured or turned on): loops, drops, their books."""
        """Opens a batch pulled from a tag (the shell's handler for its own mailbox)."""
        self.groups = Groups(store, self.engines, self.contacts)
        """Private groups: state, sender keys, actions, received controls (:mod:`._group_book`)."""
        self.channels = Channels(store)
        """Broadcast channels: create, subscribe, post, received posts (:mod:`._channel_book`)."""
        # Per engine, the control messages handed out and not yet done: with a
        # mailbox link per home relay, two links' tasks may ask at once.
        self._handling: dict[MessagingEngine, set[bytes]] = {}

    def load(self) -> None:
        """Read the stored state (contacts, request policy).

        Raises:
            RequestError: ``corrupt_state``, the stored state is malformed.
        """
        self.contacts.load()
        self.requests.load()
        self.tokens.load()
        self.proofs.load()
        self.tags.load()
        self.cover.load()

    # -- removing and blocking contacts ------------------------------------------------

    def revoke_put_auth(self, peer: IdentityId) -> bool:
        """Withdraw the put token and contact secret we gave ``peer``; True if it held one.

        One transaction; the registration versions move on, so each mailbox
        link registers the smaller set at its relay on its next sync (on
        connecting, after a pull without mail, after a batch), and from then
        on the relay takes ``peer``'s deposits as a stranger's: served while
        quiet, asked for work (``busy`` ``pow``) when loaded. A later first
        send to ``peer`` issues a fresh token.
        """
        with self._store.transaction():
            token = self.tokens.revoke(peer)
            secret = self.proofs.revoke(peer)
        return token or secret

    def remove_contact(self, name: str) -> ContactEntry:
        """Forget the contact ``name`` and revoke its put authorization, in one transaction.

        Its tags (ours and each burner's) stay drained, so its next message
        still arrives (as a message request), but they are muted
        (:meth:`MailboxTags.mute`): their links register no token, and the
        relay takes its deposits as a stranger's.
        The shell calls :meth:`MailboxTags.notify` after this.

        Raises:
            RequestError: ``unknown_contact``.
        """
        with self._store.transaction():
            entry = self.contacts.remove(name)
            self.revoke_put_auth(IdentityId.parse(entry.identity_id))
            for tags in [self.tags, *self.tags.burners.values()]:  # drained, but a stranger's
                tags.mute(IdentityId.parse(entry.identity_id))
        return entry

    def block(self, identity: IdentityId) -> bool:
        """Block ``identity`` (:meth:`MessageRequests.block`); revoke its put token and tags.

        Unlike a removed contact (whose next message is a request, so its tags
        stay watched), a blocked one's tag secrets are forgotten too, ours and
        each burner's: its tags are no longer drained nor their tokens
        registered (the shell calls :meth:`MailboxTags.notify` after this).
        """
        with self._store.transaction():
            self.revoke_put_auth(identity)
            for tags in [self.tags, *self.tags.burners.values()]:
                tags.revoke(identity)
            return self.requests.block(identity)

    # -- local identities ------------------------------------------------------------

    def add_identity(self, identity: Identity) -> None:
        """Also drain the mailbox of ``identity`` (another local identity, e.g. a burner)."""
        self._extra[identity.identity_id] = identity
        tags = MailboxTags(
            self._store, self.tags.schedule, key=f"mailbox_tags.{identity.identity_id}"
        )
        tags.load()
        tags.changed, tags.worker = self.tags.changed, self.tags.worker
        self.tags.burners[str(identity.identity_id)] = (
            tags  # its own secrets: links nothing to ours
        )
        self.engines.for_identity(identity).tags = tags.known
        self.mailboxes_changed()

    def remove_identity(self, identity_id: IdentityId) -> None:
        """Stop draining an extra identity's mailbox."""
        self._extra.pop(identity_id, None)
        self.tags.burners.pop(str(identity_id), None)
        self.mailboxes_changed()

    def mailboxes(self) -> list[UserMailbox]:
        """The mailboxes to drain: ours (as primary or linked device), then the extra ones."""
        own = self.engines.primary_identity
        boxes = [self._box(identity) for identity in ([] if own is None else [own])]
        main, linked = self.engines.main(), self.engines.linked
        if linked is not None and main is not None:
            boxes.append(UserMailbox(linked.device_key, main, None))
        return boxes + [self._box(identity) for identity in self._extra.values()]

    def add_raw_mailbox(self, key: SigningKey, handler: Callable[[bytes], Awaitable[None]]) -> None:
        """Also drain the mailbox of ``key`` into ``handler``."""
        self._raw[key.public_key.to_bytes()] = RawMailbox(key, handler, seen=self.raw_seen)
        self.mailboxes_changed()

    def remove_raw_mailbox(self, key: SigningKey) -> None:
        """Stop draining the mailbox of ``key``."""
        self._raw.pop(key.public_key.to_bytes(), None)
        self.mailboxes_changed()

    def raw_mailboxes(self) -> list[RawMailbox]:
        """The raw mailboxes to drain."""
        return list(self._raw.values())

    def queue_sealed(
        self, relays: Sequence[RelayAddress], items: Sequence[tuple[bytes, bytes]], now: float
    ) -> None:
        """Queue raw ``(mailbox, ciphertext)`` items at the recipient's home ``relays``.

        Raw items go to our own identity's devices (sync) or to a pairing
        peer that drains its home relays, so ``relays`` are ours: each item
        goes to every one (the first :attr:`LocalEngines.paths`, like a
        message), and the receiver handles one copy (:class:`RawSeen`).
        """
        k = self.engines.paths
        chosen = relays if k is None else relays[: max(1, k)]
        self.outbox.enqueue_sealed(list(dict.fromkeys(r.hostport for r in chosen)), items, now)

    def mailbox_links(
        self, relays: Sequence[_Relay], *, now: float | None = None
    ) -> dict[tuple[bytes, str], tuple[UserMailbox | RawMailbox, _Relay]]:
        """The links to keep: one per mailbox (ours, raw ones, tags) and home relay.

        Keyed by ``(mailbox public key, str(relay))``, so a shell reconciles
        the links it runs with this map as mailboxes and relays come and go.
        With ``now``, our rotating tags are included, and each burner's own
        (:meth:`MailboxTags.watch`: live ones, and catch-up ones until drained).
        """
        boxes: list[UserMailbox | RawMailbox] = [*self.mailboxes(), *self.raw_mailboxes()]
        links = {(b.key.public_key.to_bytes(), str(r)): (b, r) for b in boxes for r in relays}
        own, by_name = self.engines.primary_identity, {str(r): r for r in relays}
        for cover in self.cover.watch(now) if now is not None else []:
            register = functools.partial(_register_token, cover.mailbox, cover.token)
            box = RawMailbox(cover.key, self._cover_arrived, connected=register)
            links.update({(cover.key.public_key.to_bytes(), str(r)): (box, r) for r in relays})
        engine = self.engines.main()  # our primary device's, or a linked device's own
        if now is None or engine is None:
            return links
        watched = [(self.tags, engine, own)] + [
            (self.tags.burners[str(i.identity_id)], self.engines.for_identity(i), i)
            for i in self._extra.values()
            if str(i.identity_id) in self.tags.burners
        ]  # each burner's own tags, opened by its engine
        for tags, opener, identity in watched:
            for tag, relay, catch_up in tags.watch(now, list(by_name)):
                drained = functools.partial(tags.drained, tag.mailbox, relay, now)
                box = TagMailbox(
                    tag.key, _no_handler, drained if catch_up else None,
                    0.0 if catch_up else None,
                    functools.partial(_register_token, tag.mailbox, tag.token),
                    engine=opener, identity=identity, sink=self.tag_sink,
                )  # fmt: skip
                muted = b"" if tag.token else b"/muted"  # a new link: it clears the token set
                links[(tag.key.public_key.to_bytes() + muted, relay)] = (box, by_name[relay])
        return links

    async def _cover_arrived(self, envelope: bytes) -> None:
        self.cover.arrived(envelope, self.cover.clock())

    def use_tags(
        self,
        sink: TagSink,
        worker: Worker,
        *,
        epoch: int | None = None,
    ) -> None:
        """Wire the rotating tags to the shell: the batch ``sink``, the database ``worker``.

        The raw mailboxes' duplicate check (:attr:`raw_seen`) uses ``worker`` too.
        ``epoch``: the length of our tags' epochs in seconds (default one hour).
        """
        self.tag_sink, self.tags.worker, self.raw_seen.worker = sink, worker, worker
        if epoch is not None:
            self.tags.set_epoch(epoch)
        for tags in self.tags.burners.values():
            tags.worker, tags.schedule = worker, self.tags.schedule

    def tags_change_in(self, now: float) -> float:
        """Seconds until the live tags change (the shell re-reads :meth:`mailbox_links`)."""
        return self.tags.next_change(now)

    def _box(self, identity: Identity) -> UserMailbox:
        return UserMailbox(identity.mailbox_key, self.engines.for_identity(identity), identity)

    # -- receiving ---------------------------------------------------------------------

    def accept_many(
        self, engine: MessagingEngine, envelopes: list[bytes], *, now: float
    ) -> Accepted:
        """Open a batch of envelopes with ``engine`` in one transaction (one commit for all)."""
        results = Accepted([], [], [], [])
        with self._store.transaction():
            for data in envelopes:
                one = self.accept(engine, data, now=now)
                results.texts.extend(one.texts)
                results.resets.extend(one.resets)
                results.learned.extend(one.learned)
                results.dropped.extend(one.dropped)
                results.updates.extend(one.updates)
            waiting = self._delivered(engine, results.texts, now)
            sent = self.groups.take_waiting()
            if sent is not None:  # keys shared as group controls arrived: wake the outbox
                waiting = (waiting or []) + sent
        return replace(results, waiting=waiting)

    def _delivered(
        self, engine: MessagingEngine, texts: list[MessageReceived], now: float
    ) -> list[DeviceAddress] | None:
        """Answer new texts with one delivery receipt per sender (contacts only).

        Returns the devices waiting for a bundle, or None if the outbox need
        not look: no receipt went out now and no sender's receipts started to
        wait (texts joining receipts already held leave :meth:`receipts_due_at`
        as it was, and the outbox already sleeps until then). Waking it for
        each pushed batch cost the receiver two trips to the database a batch.
        """
        by_sender: dict[IdentityId, list[MessageId]] = {}
        for text in texts:
            if text.content.peer is None:  # not a copy of our own
                by_sender.setdefault(text.sender, []).append(text.message_id)
        new_due = False  # a sender's receipts started to wait: a new due time
        for sender, ids in by_sender.items():
            if self.contacts.card_of(sender) is None:
                continue  # a stranger learns nothing until the request is accepted
            key = (engine.keys.identity, sender)  # (our identity, theirs)
            new_due = new_due or key not in self._receipts_held
            held = self._receipts_held.setdefault(key, _HeldReceipts(engine, sender, []))
            held.ids.extend(ids)
            self._store.on_rollback(functools.partial(self._unhold, key, len(ids)))
        if not new_due:
            return None  # held ones already due go out when the outbox timer fires
        return self._send_receipts(now)

    def _unhold(self, key: tuple[IdentityId, IdentityId], count: int) -> None:
        held = self._receipts_held.get(key)
        if held is not None:
            del held.ids[len(held.ids) - count :]
            if not held.ids:
                del self._receipts_held[key]

    def receipts_due_at(self) -> float | None:
        """When :meth:`flush_receipts` has receipts to send (None: none held)."""
        held = list(self._receipts_held)  # one C-level copy: safe beside the worker thread
        return min((self._receipts_sent.get(k, 0.0) + RECEIPT_EVERY for k in held), default=None)

    def flush_receipts(self, *, now: float) -> list[DeviceAddress]:
        """Send the held delivery receipts that are due; the devices waiting for a bundle."""
        with self._store.transaction():
            return self._send_receipts(now)

    def _send_receipts(self, now: float) -> list[DeviceAddress]:
        waiting: list[DeviceAddress] = []
        for key, held in list(self._receipts_held.items()):
            last = self._receipts_sent.get(key)
            if last is not None and now - last < RECEIPT_EVERY:
                continue
            del self._receipts_held[key]
            card = self.contacts.card_of(held.sender)
            if card is None:
                continue  # removed meanwhile
            for receipt in self.conversations.receipts(held.ids, read=False, now=now):
                waiting += self.engines.send(held.engine, card, receipt, now=now, copies=False)
            self._receipts_sent[key] = now
            self._store.on_rollback(functools.partial(self._rehold, key, held, last))
        return waiting

    def _rehold(
        self, key: tuple[IdentityId, IdentityId], held: _HeldReceipts, last: float | None
    ) -> None:
        self._receipts_held[key] = held
        if last is None:
            self._receipts_sent.pop(key, None)
        else:
            self._receipts_sent[key] = last

    def accept(self, engine: MessagingEngine, data: bytes, *, now: float) -> Accepted:
        """Open one envelope with ``engine``, count it, log its session resets."""
        events = engine.receive(data, now=now)
        self.stats.envelopes += 1
        texts, resets = self.stats.count(events, self.requests)
        # Whether each sender is a contact, read in this transaction: the request
        # policy needs it, and asking later would cost the shell a trip per message.
        texts = [replace(t, contact=self.contacts.card_of(t.sender) is not None) for t in texts]
        for reset in resets:
            self.notices.add("session_reset", reset.peer, at_ms=int(now * 1000))
        dropped = [event.reason for event in events if isinstance(event, Rejected)]
        updates: list[ConversationUpdate] = []
        for event in events:
            if not isinstance(event, MessageReceived) or not event.new or event.blocked:
                continue
            if event.kind in (PUT_TOKEN_KIND, PUT_PROOF_KIND, MAILBOX_TAG_KIND):
                card = self.contacts.card_of(event.sender) or event.sender_card
                own = card is not None and card.identity_id == event.sender
                tags = self.tags.burners.get(str(engine.keys.identity), self.tags)  # the receiver's
                learn = {PUT_TOKEN_KIND: self.tokens.learn, PUT_PROOF_KIND: self.proofs.learn}
                mailbox = card.mailbox if own and card else None
                if not learn.get(event.kind, tags.learn)(event.data, mailbox) and own:
                    tags.learn_device(event.data, event.sender_device)
            elif event.kind == "text":
                self.conversations.stored(event.content)
            elif event.kind in CONVERSATION_KINDS:
                updates.extend(self._converse(event, now))
            elif event.kind in GROUP_KINDS:
                updates.extend(self._group(event, now))
        learned = self.directory.take_learned()
        return Accepted(texts, resets, learned, dropped, updates)

    def _converse(self, event: MessageReceived, now: float) -> list[ConversationUpdate]:
        """Apply a received conversation control; a refused one is counted, nothing changes."""
        try:
            with self._store.transaction():  # a refusal undoes only this control
                update = self.conversations.apply(event, now=now)
                if update is not None:  # in the event log with the change it reports
                    self._store.log_event(update.kind, update.event(), now)
        except ConversationError as exc:
            self.stats.refuse(f"ConversationError.{exc.code}")
            return []
        return [] if update is None else [update]

    def _group(self, event: MessageReceived, now: float) -> list[ConversationUpdate]:
        """Apply a received group control; a refused one is counted, nothing changes."""
        try:
            with self._store.transaction():  # a refusal undoes only this control
                return self.groups.apply(event, now=now)
        except GroupError as exc:
            self.stats.refuse(f"GroupError.{exc.code}")
            return []
        except ContentError:  # our answer (a sender key) could not be queued: undone
            self.stats.refuse("GroupError.send_failed")
            return []

    def on_control(self, kind: str, handler: ControlHandler) -> None:
        """Route control messages of ``kind`` to ``handler(message, receiving_identity)``.

        Raises:
            ValueError: ``kind`` already has a handler.
        """
        if kind in self._controls:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._controls[kind] = handler

    def on_device_control(self, kind: str, handler: DeviceControlHandler) -> None:
        """Route control messages of ``kind`` to ``handler`` on a linked device too."""
        self._device_controls[kind] = handler

    def controls_due(
        self, engine: MessagingEngine, identity: Identity | None
    ) -> list[tuple[MessageReceived, DeviceControlHandler | None]]:
        """The control messages ``engine`` holds, each with the handler to run it.

        ``identity`` is the local identity the mailbox belongs to (``None``:
        a linked device's own). A message with no handler comes with ``None``
        and is counted as rejected now; the shell still marks it done
        (:meth:`MessagingEngine.control_done`) so that it is dropped.

        Each message is handed out once: until it is done, a later call (the
        task of another mailbox link of the same mailbox, at another home
        relay) skips it, so no handler runs twice for one message.
        """
        due: list[tuple[MessageReceived, DeviceControlHandler | None]] = []
        pending = engine.pending_controls()
        handling = self._handling.setdefault(engine, set())
        handling &= {bytes(queued.content.message_id) for queued in pending}  # done: forgotten
        for queued in pending:
            if bytes(queued.content.message_id) in handling:
                continue  # handed out already, not done yet
            handling.add(bytes(queued.content.message_id))
            message = MessageReceived(queued.content, queued.sender, queued.sender_device, True)
            due.append((message, self._route(message.kind, identity)))
        return due

    def _route(self, kind: str, identity: Identity | None) -> DeviceControlHandler | None:
        if identity is None and kind in self._device_controls:
            return self._device_controls[kind]
        handler = self._controls.get(kind)
        if identity is None or handler is None:
            self.control_dropped()
            return None
        return functools.partial(_call_with, handler, identity)

    def missing(self, peer: str) -> int:
        """Texts of the conversation with ``peer`` known to be missing (gaps in their numbers)."""
        engine = self.engines.main()
        return 0 if engine is None else engine.order.missing(peer)

    def control_dropped(self, reason: str | None = None) -> None:
        """Count a control message nobody handled (``reason``: its handler refused it)."""
        if reason is None:
            self.stats.rejected += 1
        else:
            self.stats.refuse(reason)

    def counters(self) -> dict[str, object]:
        """The status counters: envelopes sent, then what received ones came to.

        ``{"sent", "received", "rejected", "rejected_retired", "session_resets",
        "duplicates", "refusals", "cover"}``: ``refusals`` a count per refusal
        reason, ``cover`` the cover traffic's state (:meth:`CoverTraffic.status`).
        """
        stats = self.stats
        return {
            "sent": self.sent,
            "received": stats.received,
            "rejected": stats.rejected,
            "rejected_retired": stats.rejected_retired,
            "session_resets": stats.session_resets,
            "duplicates": stats.duplicates,
            "refusals": dict(stats.refusals),
            "cover": self.cover.status(),
        }

    def notice_rows(self) -> list[dict[str, object]]:
        """Notices for the user, oldest first: ``{"kind", "peer", "at_ms"}``."""
        return [
            {"kind": n.kind, "peer": str(n.peer), "at_ms": n.at_ms} for n in self.notices.listing()
        ]

    # -- sending and put tokens ---------------------------------------------------------

    def send_as(
        self,
        card: ContactCard,
        content: Content,
        *,
        now: float,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> list[DeviceAddress]:
        """:meth:`LocalEngines.send_as`, plus a put token with the first mail to a contact.

        A token goes only from the node's own identity (``sender`` None, on
        its primary device) to a contact of the book; it rides in the same
        transaction as ``content``. Returns the devices waiting for a bundle.
        """
        engines = self.engines
        with self._store.transaction():
            waiting = engines.send_as(
                card, content, now=now, sender=sender, sender_card=sender_card
            )
            if content.kind == "text":
                self.conversations.stored(content)
            own, main = engines.primary_identity, engines.main()
            if sender is None and main is not None and engines.linked is not None:
                waiting += self._issue_tag(main, card, bytes(engines.linked.mailbox), now)
            burner = None if sender is None else self.tags.burners.get(str(sender.identity_id))
            if burner is not None and sender is not None:  # the burner's own secret
                burner.mute(card.identity_id, False)  # written to: its tags count again
                mailbox = bytes(sender.mailbox_id)
                engine = engines.for_identity(sender)
                waiting += self._issue_tag(engine, card, mailbox, now, burner, sender_card)
            if sender is None and own is not None and main is not None:
                if self.contacts.card_of(card.identity_id) is None:
                    return waiting
                waiting += self._hand_out(card, own, main, now)
                self.tags.mute(card.identity_id, False)  # a contact again: its tags count
                secret = self.tags.issue(card.identity_id, now=now)
                if secret is not None:  # from now on the contact writes to our rotating tags
                    epoch = self.tags.schedule.epoch_seconds
                    data = encode_tag_secret(bytes(own.mailbox_id), secret, epoch)
                    gift = Content.control(MAILBOX_TAG_KIND, data, now_ms=int(now * 1000))
                    waiting += engines.send(main, card, gift, now=now, copies=False)
        return waiting

    def no_reply_blocks(self, sender: Identity | None, supply: int) -> bool:
        """Whether :meth:`reply_blocks_wanted` is None for sure, known without the store.

        True when no supply is asked, or the writing identity's engine holds
        its onion mode in memory and it is off: the shell then sends without a
        trip to the database worker first (a trip per message, on the hot path).
        """
        identity = sender or self.engines.primary_identity
        if supply <= 0 or identity is None:
            return True
        return self.engines.onion_mode_known(identity.identity_id) is False

    def reply_blocks_wanted(
        self,
        peer: str,
        sender: Identity | None,
        sender_card: ContactCard | None,
        supply: int,
        *,
        now: float,
    ) -> tuple[bytes, bytes, RelayAddress, int] | None:
        """What to build before a message to the contact ``peer`` (protocol §45).

        ``(peer id, our mailbox, our first home relay, how many blocks)`` when
        the writing identity (``sender``, default ours) is in onion mode and
        the peer holds fewer than ``supply`` of our live reply blocks; else None.
        One at a time to a peer we answer under its blocks, so that the message
        still fits under one (two users both in onion mode keep each other supplied).
        """
        identity = sender or self.engines.primary_identity
        card = sender_card or self.engines.primary_card
        if supply <= 0 or identity is None or card is None or not card.relays:
            return None
        if not self.engines.onion_mode(identity.identity_id):
            return None
        them = bytes(self.contacts.find(peer).identity_id)
        count = supply - self.replies.outstanding(them, now)
        if self.replies.answers_by_block(them):  # one block a message: it must fit under theirs
            count = min(count, 1)
        if count <= 0:
            return None
        return them, bytes(identity.mailbox_id), RelayAddress.parse(card.relays[0]), count

    def _issue_tag(
        self,
        engine: MessagingEngine,
        card: ContactCard,
        mailbox: bytes,
        now: float,
        tags: MailboxTags | None = None,
        sender_card: ContactCard | None = None,
    ) -> list[DeviceAddress]:
        """Hand ``card`` a tag secret for ``mailbox`` (a linked device's) with its first mail."""
        if self.contacts.card_of(card.identity_id) is None:
            return []
        tags = tags or self.tags
        secret = tags.issue(card.identity_id, now=now)
        if secret is None:
            return []
        data = encode_tag_secret(mailbox, secret, tags.schedule.epoch_seconds)
        gift = Content.control(MAILBOX_TAG_KIND, data, now_ms=int(now * 1000))
        return self.engines.send(engine, card, gift, now=now, copies=False, sender_card=sender_card)

    def _hand_out(
        self, card: ContactCard, own: Identity, main: MessagingEngine, now: float
    ) -> list[DeviceAddress]:
        """A put token or contact secret (by ``put_auth``) for our mailbox with a first mail."""
        mailbox = bytes(own.mailbox_id)
        if self.put_auth == "proof":
            secret = self.proofs.issue(card.identity_id)
            data = None if secret is None else encode_put_proof(mailbox, secret)
            kind = PUT_PROOF_KIND
        else:
            token = self.tokens.issue(card.identity_id)
            data = None if token is None else encode_put_token(mailbox, token)
            kind = PUT_TOKEN_KIND
        if data is None:
            return []
        gift = Content.control(kind, data, now_ms=int(now * 1000))
        return self.engines.send(main, card, gift, now=now, copies=False)

    def own_accounts(self) -> frozenset[bytes]:
        """The currency accounts payments to us may name: our identities' keys (their cards)."""
        cards = [e.keys.card for e in self.engines.all()]
        return frozenset(c.identity_key.to_bytes() for c in cards if c is not None)

    def settle_payment(
        self,
        message_id: MessageId,
        proven: ProvenPayment | None,
        state_height: int,
        *,
        now: float,
        give_up: bool | None = None,
        chain_id: str | None = None,
    ) -> PaymentEntry:
        """Decide a received payment from what the light client proved (``Payments.settle``).

        A refusal is also kept as a ``payment_refused`` notice, and raised.

        Raises:
            PaymentRefusedError: the chain does not back it (``code`` says how).
        """
        try:
            return self.payments.settle(
                message_id, proven, state_height,
                own_accounts=self.own_accounts(), now=now, give_up=give_up, chain_id=chain_id,
            )  # fmt: skip
        except PaymentRefusedError:
            entry = self.payments.get(bytes(message_id))
            if entry is not None:
                self.notices.add("payment_refused", entry.peer, at_ms=int(now * 1000))
            raise

    def token_registration(self, mailbox: bytes) -> tuple[int, tuple[bytes, ...]]:
        """``(version, tokens)`` to register at the relay for ``mailbox`` (ours only)."""
        own = self.engines.primary_identity
        if own is None or bytes(own.mailbox_id) != mailbox:
            return (0, ())
        if self.put_auth == "proof":  # none at the relay; clears what an earlier link set
            return (_CLEARED, ()) if self.tokens.registration[1] else (0, ())
        return self.tokens.registration

    def ring_registration(self, mailbox: bytes) -> tuple[int, bytes, bytes, bytes]:
        """``(version, ring, key, signature)`` to register for ``mailbox`` (ours; section 41).

        The ring is signed with the mailbox's key (``ring_statement``), so
        senders take it from the relay only as we made it.
        """
        own = self.engines.primary_identity
        if own is None or bytes(own.mailbox_id) != mailbox:
            return (0, b"", b"", b"")
        if self.put_auth != "proof":  # as above: a ring an earlier link set is removed
            return (_CLEARED, b"", b"", b"") if self.proofs.registration[1] else (0, b"", b"", b"")
        version, ring = self.proofs.registration
        if not ring:
            return (version, b"", b"", b"")
        if self._ring_signed[:2] != (version, ring):
            signature = own.mailbox_key.sign(ring_statement(mailbox, ring))
            key = own.mailbox_key.public_key.to_bytes()
            self._ring_signed = (version, ring, key, signature)
        return self._ring_signed

    def auth_for(self, config: _PutAuthSetting) -> _DepositAuth:
        """Take :attr:`put_auth` from ``config``; the deposit pool's sources of tokens, secrets."""
        self.put_auth = config.put_auth
        return {"tokens": self.token_for, "secrets": self.secret_for}

    async def register_put_auth(self, session: _TokenSession, mailbox: bytes) -> None:
        """Register ``mailbox``'s put tokens and contact ring on a relay link (ours only)."""
        await session.sync_tokens(mailbox, self.token_registration(mailbox))
        await session.sync_ring(mailbox, self.ring_registration(mailbox))

    def secret_for(self, mailbox: bytes) -> ContactSecret | None:
        """The contact secret to prove with for a deposit into ``mailbox`` (section 41)."""
        return self.proofs.secret_for(mailbox)

    # -- sessions and delivery --------------------------------------------------------

    def bundles_due(self, now: float) -> list[tuple[MessagingEngine, DeviceAddress]]:
        """The devices whose prekey bundle to fetch now, with the engine waiting for each."""
        return [
            (engine, device)
            for engine in self.engines.all()
            for device in engine.needs_bundles()
            if self._retry.get(device.device_id, (0, 0.0))[1] <= now
        ]

    def bundle_failed(self, device: DeviceAddress, *, now: float, interval: float) -> float:
        """A bundle fetch failed (relay down, nothing published): back off; returns the delay."""
        attempts = self._retry.get(device.device_id, (0, 0.0))[0]
        delay = min(MAX_BACKOFF, interval * 2.0 ** min(attempts, 8))
        self._retry[device.device_id] = (attempts + 1, now + delay)
        return delay

    def bundle_received(
        self, engine: MessagingEngine, device: DeviceAddress, bundle: bytes, *, now: float
    ) -> None:
        """Hand a fetched bundle to ``engine`` (its waiting messages move to the outbox).

        Raises:
            BundleRejectedError: the bundle cannot start a session with ``device``.
        """
        engine.bundle_received(device, bundle, now=now)
        self._retry.pop(device.device_id, None)

    def delivered(self, outbox_id: bytes) -> None:
        """A relay confirmed it stored the queued envelope ``outbox_id``."""
        self.outbox.delivered(outbox_id)
        self.sent += 1
        self.tags.settled([outbox_id])

    def token_for(self, mailbox: bytes) -> bytes | None:
        """The put token to attach to a deposit into ``mailbox``: a contact's, or a tag's."""
        burners = (t.token_for(mailbox) for t in self.tags.burners.values())
        found = self.tokens.token_for(mailbox) or self.tags.token_for(mailbox)
        found = found or next((token for token in burners if token is not None), None)
        return found or self.cover.token_for(mailbox)

    def route(self, entries: Sequence[OutboxEntry], now: float) -> list[tuple[bytes, bytes]]:
        """The ``(mailbox, envelope)`` to deposit for each outbox entry, as of ``now``.

        Mail to a mailbox whose owner gave our identity a tag secret goes to
        the current epoch's tag (:meth:`MailboxTags.address`): only the
        envelope's outer mailbox changes (the seal binds the published one),
        so an envelope that waited in the outbox, e.g. written offline, still
        lands where the recipient looks now. Everything else is unchanged.
        Each envelope takes a cover drop's slot (:meth:`CoverTraffic.real_sent`).
        """
        routed: list[tuple[bytes, bytes]] = []
        for entry in entries:
            burner = self.tags.plain(entry.message_id)  # a burner's: only its own secrets
            tags = self.tags if burner is None else self.tags.burners.get(burner)
            tag = None if tags is None else tags.address(entry.mailbox, now)
            if tag is None:
                routed.append((entry.mailbox, entry.envelope))
            else:
                sealed = SealedEnvelope.from_bytes(entry.envelope)
                routed.append((tag, SealedEnvelope(MailboxId(tag), sealed.ciphertext).to_bytes()))
            self.cover.real_sent(entry.relay, len(routed[-1][1]), now)
        return routed

    def relay_busy(
        self, entries: Sequence[OutboxEntry], retry_after: float, *, now: float
    ) -> float:
        """A deposit's relay answered busy: hold it ``retry_after`` s or more; returns until."""
        return self.outbox.busy(entries, retry_after, now)

    def deposited(
        self, entries: Sequence[OutboxEntry], results: Sequence[object], *, now: float
    ) -> int:
        """A deposit's per-entry results (entry ids, or what failed); returns how many failed."""
        stored = self.outbox.settle(entries, results, now)
        pairs = zip(entries, results, strict=True)
        self.tags.settled(
            [e.message_id for e, r in pairs if isinstance(r, bytes) or r == "delivered"]
        )
        self.sent += stored
        return len(entries) - stored
