"""The user role: one identity, its contacts, sending and fetching mail.

Sending: the message is sealed, put in the durable outbox and recorded; the
outbox task delivers it to the recipient's relay and removes it only when the
relay confirms it stored the envelope. Failed attempts back off exponentially.

Receiving: the mailbox task connects to the home relay with the mailbox key,
fetches waiting envelopes, opens and verifies each, commits the message (a
duplicate message id is ignored, which makes delivery to the app exactly once)
and only then acknowledges, so a crash at any point loses nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import Clock, DchatError, IdentityId, MessageId, NodeId
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity, InvalidCardError
from dchat_messaging import EnvelopeRejectedError, SealedEnvelope, open_envelope, seal_message
from dchat_network import Link, RelayBatch, RelayClient, connect

from ._errors import NodeStateError
from .config import NodeConfig, parse_hostport

if TYPE_CHECKING:
    from dchat_storage import ContactRecord, MessageRecord

    from ._store import AsyncStore

__all__ = ("UserService",)

_log = logging.getLogger("dchat.user")
_FETCH_LIMIT: Final = 64
_MAX_BACKOFF: Final = 60.0


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
        self.sent = 0
        self.received = 0
        self.rejected = 0

    # -- identity ---------------------------------------------------------------

    async def load(self) -> None:
        """Unlock the stored identity, if there is one."""
        record = await self._store.run(self._store.db.identity.get)
        if record is not None:
            self._identity = await trio.to_thread.run_sync(
                Identity.from_keystore, record.keystore, self._passphrase
            )
            self._card = ContactCard.from_bytes(record.card)

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

    async def create_identity(self, name: str) -> Identity:
        """Generate the identity, encrypt it under the node passphrase, store it."""
        if self._identity is not None:
            raise NodeStateError("identity_exists", "this node already has an identity")
        if self._config.relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        relay_node = NodeId.parse(self._config.relay_node) if self._config.relay_node else None
        identity = Identity.generate()
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
        return identity

    # -- contacts ---------------------------------------------------------------

    async def add_contact(self, name: str, card_text: str) -> ContactRecord:
        """Verify ``card_text`` and store it under ``name``."""
        card = ContactCard.from_text(card_text)
        if self._identity is not None and card.identity_id == self._identity.identity_id:
            raise InvalidCardError("that is this node's own card")
        db = self._store.db
        return await self._store.run(
            db.contacts.add, name, str(card.identity_id), card.to_bytes(), self._clock.now()
        )

    async def contacts(self) -> list[ContactRecord]:
        """All contacts."""
        return await self._store.run(self._store.db.contacts.list)

    async def _contact_card(self, name: str) -> ContactCard:
        record = await self._store.run(self._store.db.contacts.get_by_name, name)
        if record is None:
            raise NodeStateError("unknown_contact", f"no contact named {name!r}")
        return ContactCard.from_bytes(record.card)

    # -- sending ----------------------------------------------------------------

    async def send(self, to: str, text: str) -> MessageId:
        """Seal ``text`` to the contact ``to`` and queue it for delivery."""
        card = await self._contact_card(to)
        now = self._clock.now()
        mid, envelope = seal_message(
            self.identity, card, text, now_ms=int(now * 1000), sender_card=self.card
        )
        db = self._store.db
        await self._store.run(
            db.outbox.enqueue, bytes(mid), card.relay, bytes(card.mailbox), envelope.to_bytes(), now
        )
        await self._store.run(
            db.messages.add, bytes(mid), "out", str(card.identity_id), text, now, now
        )
        self._wake_outbox.set()
        return mid

    async def run_outbox(self) -> None:
        """Deliver queued envelopes forever, with exponential backoff per item."""
        while True:
            for item in await self._store.run(self._store.db.outbox.due, self._clock.now()):
                try:
                    await self._deliver(item.relay, item.mailbox, item.envelope)
                except DchatError as exc:
                    delay = min(
                        _MAX_BACKOFF, self._config.poll_interval * 2 ** min(item.attempts, 8)
                    )
                    _log.info("delivery deferred: %s", type(exc).__name__)
                    await self._store.run(
                        self._store.db.outbox.mark_failed,
                        item.message_id,
                        self._clock.now() + delay,
                    )
                else:
                    await self._store.run(self._store.db.outbox.mark_sent, item.message_id)
                    self.sent += 1
            self._wake_outbox = trio.Event()
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

    # -- receiving --------------------------------------------------------------

    async def run_mailbox(self) -> None:
        """Poll the home relay for mail forever."""
        while True:
            if self._identity is not None and self._config.relay is not None:
                try:
                    await self.fetch_once()
                except DchatError as exc:
                    _log.info("mailbox fetch failed: %s", type(exc).__name__)
            await trio.sleep(self._config.poll_interval)

    async def fetch_once(self) -> int:
        """Fetch, store and acknowledge everything waiting; returns new messages."""
        assert self._config.relay is not None
        host, port = parse_hostport(self._config.relay)
        pinned = NodeId.parse(self._config.relay_node) if self._config.relay_node else None
        link = await connect(host, port, node_key=self.identity.mailbox_key, expected_peer=pinned)
        try:
            return await self._drain(link, bytes(self.identity.mailbox_id))
        finally:
            await link.aclose()

    async def _drain(self, link: Link, mailbox: bytes) -> int:
        client = RelayClient()
        new = 0
        while True:
            batch = client.receive(await link.request(client.fetch(mailbox, _FETCH_LIMIT)))
            assert isinstance(batch, RelayBatch)
            if not batch.items:
                return new
            for _entry_id, raw in batch.items:
                new += await self._accept(raw)
            # Acknowledge only after every message above is committed locally.
            client.receive(await link.request(client.ack(mailbox, [e for e, _ in batch.items])))

    async def _accept(self, raw: bytes) -> int:
        try:
            message = open_envelope(self.identity, SealedEnvelope.from_bytes(raw))
        except (EnvelopeRejectedError, DchatError):
            self.rejected += 1
            _log.warning("dropped an envelope that failed to open")
            return 0
        added = await self._store.run(
            self._store.db.messages.add,
            bytes(message.message_id),
            "in",
            str(message.sender),
            message.text,
            message.sent_at_ms / 1000,
            self._clock.now(),
        )
        if added:
            self.received += 1
        return int(added)

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
