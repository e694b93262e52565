"""Multi-device sync: a trio shell around :class:`dchat_identity.lowlevel.SyncAgent`.

The agent holds this device's replica and decides what goes to which device
and what an incoming item may change (see its module for the theory). This
shell keeps the replica sealed at rest under ``sync.replica``, drains the
device's sync mailboxes (current and previous epoch) at each home relay,
queues the agent's deliveries through the durable outbox, lets
:class:`._devices_service.DeviceService` accept documents and rekeys, and
adds synced contacts to the contacts table and follows synced channels.
Refused items are counted and their error code kept for ``GET /v1/sync``;
they never block the mailbox.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import DchatError
from dchat_identity import ContactCard, IdentityArgumentError
from dchat_identity.lowlevel import SyncAgent, SyncCounters, contact_changes
from dchat_messaging import SealedEnvelope
from dchat_storage import DuplicateError

from ._guardian_state import queue_sealed
from ._pairing import error_code

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_crypto import SigningKey
    from dchat_identity import IdentityDocument
    from dchat_identity.lowlevel import LocalDevice, SyncDelivery, SyncedContact
    from dchat_storage import AsyncStore

    from ._devices import DeviceService
    from ._service import UserService

__all__ = ("SyncService",)

_REPLICA = "sync.replica"
_log = logging.getLogger("dchat.sync")


class SyncService:
    """This device's replica, its sync mailbox, and fan-out of local changes."""

    def __init__(self, user: UserService, devices: DeviceService, store: AsyncStore) -> None:
        self._user, self._devices, self._store = user, devices, store
        self._agent: SyncAgent | None = None
        self._lock = trio.Lock()
        self._mailboxes: list[SigningKey] = []
        self.counters = SyncCounters()
        self.on_channels: Callable[[], None] = lambda: None
        user.on_contact_added(self._contact_added)
        devices.on_change(self._devices_changed)

    # -- start-up ------------------------------------------------------------------

    async def start(self) -> None:
        """Drain this device's sync mailboxes, if this node is a device of an identity."""
        local = await self._devices.load()
        if local is None:
            return
        for key in self._mailboxes:
            self._user.agent.remove_raw_mailbox(key)
        self._mailboxes = SyncAgent.mailbox_keys(local)
        for key in self._mailboxes:
            self._user.agent.add_raw_mailbox(key, self._received)

    async def _load(self, local: LocalDevice) -> SyncAgent:
        if self._agent is None:
            stored = await self._user.state_get(_REPLICA)
            self._agent = SyncAgent(local.device_key.public_key.to_bytes(), stored)
        return self._agent

    async def _persist(self, agent: SyncAgent) -> None:
        await self._user.state_put(_REPLICA, agent.to_bytes())

    async def _send(self, deliveries: list[SyncDelivery]) -> None:
        await queue_sealed(self._user, [(d.mailbox, d.ciphertext) for d in deliveries])

    # -- local changes ---------------------------------------------------------------

    async def record(self, changes: list[tuple[str, str, Any]]) -> bool:
        """Apply local ``(kind, name, value)`` changes and send them; False if sync is off.

        ``kind`` is ``"set"`` (register ``name`` := value) or ``"add"`` (element
        ``value`` into set ``name``).
        """
        local = await self._devices.load()
        if local is None:
            return False
        async with self._lock:
            agent = await self._load(local)
            ops = agent.record(changes, now=self._user.now())
            await self._persist(agent)
        if ops:
            await self._send(agent.deliveries(ops, local, await self._devices.chain()))
        return True

    async def _contact_added(self, card: ContactCard) -> None:
        record = await self._store.run(
            self._store.db.contacts.get_by_identity, str(card.identity_id)
        )
        if record is None:
            return
        try:
            await self.record(contact_changes(record.name, card))
        except IdentityArgumentError:  # a card too large for one register stays local
            _log.warning("a contact could not be synced")

    async def snapshot(self) -> dict[str, Any]:
        """Registers and sets as this device sees them, and the sync counters."""
        local = await self._devices.load()
        out = self.counters.status(active=local is not None)
        if local is not None:
            async with self._lock:
                seen = (await self._load(local)).snapshot()
            out.update(epoch=local.sync_key.epoch, **seen)
        return out

    async def _devices_changed(self, doc: IdentityDocument, rekeyed: bool) -> None:
        """Primary: send the new document (and rekey) and the whole state to every device."""
        local, channel_links = await self._devices.local(), self._user.agent.channels.links
        async with self._lock:
            agent = await self._load(local)
            entries = await self._user.run(self._user.book.entries)
            contacts = [(c.name, c.identity_id, c.card) for c in entries]
            agent.adopt_contacts(contacts, now=self._user.now())
            agent.adopt_channels(await self._user.run(channel_links), now=self._user.now())
            await self._persist(agent)
            deliveries = agent.handover(
                local, await self._devices.chain(), doc,
                identity_key=self._user.identity.signing_key, rekeyed=rekeyed,
            )  # fmt: skip
        await self._send(deliveries)
        await self.start()

    # -- receiving -----------------------------------------------------------------------

    async def _received(self, raw: bytes) -> None:
        try:
            await self._apply(raw)
        except DchatError as exc:
            self.counters.refused(error_code(exc))
            _log.warning("sync item refused: %s", self.counters.last_error)

    async def _apply(self, raw: bytes) -> None:
        local = await self._devices.load()
        if local is None:
            return
        item = SyncAgent.open_item(SealedEnvelope.from_bytes(raw).ciphertext, local)
        if item.document is not None and local.linked:
            await self._devices.accept_document(item.document)
        if item.rekey is not None:
            chain = await self._devices.chain()
            await self._devices.accept_rekey(SyncAgent.rekeyed(item.rekey, chain, local))
            local = await self._devices.local()
            await self.start()
        if item.ops is not None:
            chain = await self._devices.chain()
            async with self._lock:
                agent = await self._load(local)
                applied = agent.receive_ops(item.ops, local, chain, now=self._user.now())
                await self._persist(agent)
                self.counters.applied += applied
                known = [c.identity_id for c in await self._user.run(self._user.book.entries)]
                for contact in agent.missing_contacts(known):
                    await self._add_contact(contact)
                links, channels = agent.registers("channel/"), self._user.agent.channels
            changed = await self._user.logged(channels.synced, links, now=self._user.now())
            if changed:
                self.on_channels()  # followed or dropped: the channel reads change

    async def _add_contact(self, contact: SyncedContact) -> None:
        card, add = ContactCard.from_bytes(contact.card), self._user.book.add_card
        for name in contact.names():
            with contextlib.suppress(DuplicateError):
                await self._store.run(functools.partial(add, now=self._user.now()), name, card)
                return
        _log.warning("a synced contact's name is taken")
