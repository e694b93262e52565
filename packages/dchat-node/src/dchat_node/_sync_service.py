"""Multi-device sync: contacts, settings, read state and profile fields across own devices.

Theory of operation. Each device keeps a :class:`dchat_identity.lowlevel.SyncReplica`
(HLC-stamped CRDT: last-writer-wins registers, observed-remove sets) whose
replica id is its device key; the replica is kept sealed at rest under
``sync.replica``. A local change becomes operations, signed by the device key
and encrypted under the epoch's sync key (``seal_sync_message``), wrapped in a
sync item sealed to each other active device's X25519 key and queued to that
device's *sync mailbox* (key derived from the sync secret and the device key,
:mod:`._rendezvous`), so only the identity's devices can find or read it.

Each device drains its own sync mailbox (current and previous epoch): a
linked device first accepts a newer document or a rekey the item carries,
then opens the operations against its document chain, which refuses a device
that is revoked or was never certified (``RevokedDeviceError``) and any bad
signature or key (``ForgedRecordError``). Applying is idempotent, so a
redelivered item changes nothing. Contacts are then materialized into the
contacts table. Refused items are counted and their error code kept for
``GET /v1/sync``; they never block the mailbox.

Layout of the replica: set ``contacts`` of identity ids, registers
``contact.card/<id>`` (card bytes) and ``contact.name/<id>``,
``settings/<key>``, ``read/<peer>`` and ``profile/<field>``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final

import trio

from dchat_core import DchatError, DecodeLimits, Fields, MailboxId, canonical_decode
from dchat_core import canonical_encode as encode
from dchat_crypto import DecryptionError, PrivateKey, open_sealed, seal
from dchat_identity import (
    ContactCard,
    DocumentChain,
    ForgedRecordError,
    IdentityArgumentError,
    MalformedRecordError,
)
from dchat_identity.lowlevel import (
    HybridClock,
    ReplayedDocumentError,
    SyncKey,
    SyncOp,
    SyncReplica,
    SyncState,
    open_sync_message,
    seal_sync_message,
)
from dchat_messaging import SealedEnvelope
from dchat_storage import DuplicateError

from ._pairing_service import error_code
from ._rendezvous import Rekey, SyncItem, decode_sync_item, encode_sync_item, sync_mailbox_key

if TYPE_CHECKING:
    from dchat_crypto import SigningKey
    from dchat_identity import DeviceCertificate, IdentityDocument

    from ._devices_service import DeviceService, LocalDevice
    from ._store import AsyncStore
    from ._user_service import UserService

__all__ = ("SyncService", "open_ops", "state_ops", "unseal_item")

ITEM_CONTEXT: Final = b"dchat-sync-item-v1"
_REPLICA = "sync.replica"
_CHUNK = 32 * 1024
_log = logging.getLogger("dchat.sync")


def unseal_item(raw: bytes, exchange_key: PrivateKey) -> SyncItem:
    """Open one sync-mailbox entry addressed to the device holding ``exchange_key``."""
    envelope = SealedEnvelope.from_bytes(raw)
    try:
        plain = open_sealed(exchange_key, envelope.ciphertext, context=ITEM_CONTEXT)
    except DecryptionError:
        raise ForgedRecordError from None
    return decode_sync_item(plain)


def open_ops(data: bytes, keys: tuple[SyncKey, ...], chain: DocumentChain) -> list[SyncOp]:
    """Open a sync message under whichever known epoch key it names (newest first)."""
    failure: DchatError = ForgedRecordError()
    for key in reversed(keys):
        try:
            return open_sync_message(data, key=key, chain=chain)
        except ForgedRecordError as exc:  # another epoch, or forged: try the next key
            failure = exc
    raise failure


def state_ops(state: SyncState) -> list[SyncOp]:
    """Operations that rebuild ``state`` on an empty replica (a new device's first sync)."""
    raw = canonical_decode(state.to_bytes(), DecodeLimits(max_size=64 << 20, max_items=4_000_000))
    ops = [
        SyncOp.from_value({"k": "set", "n": n, "ts": e[0], "x": e[1]})
        for n, e in raw["reg"].items()
    ]
    for name, elements in raw["add"].items():
        for element, tags in elements.items():
            ops += [SyncOp.from_value({"k": "add", "n": name, "e": element, "ts": t}) for t in tags]
    for name, tags in raw["rm"].items():
        for i in range(0, len(tags), 256):  # the element of a remove is not needed to apply it
            chunk = tags[i : i + 256]
            value = {"k": "rm", "n": name, "e": "*", "ts": max(chunk), "tags": chunk}
            ops.append(SyncOp.from_value(value))
    return ops


class SyncService:
    """This device's replica, its sync mailbox, and fan-out of local changes."""

    def __init__(self, user: UserService, devices: DeviceService, store: AsyncStore) -> None:
        self._user, self._devices, self._store = user, devices, store
        self._replica: SyncReplica | None = None
        self._lock = trio.Lock()
        self._mailboxes: list[SigningKey] = []
        self.applied = 0
        self.rejected = 0
        self.last_error: str | None = None
        user.on_contact_added(self._contact_added)
        devices.on_change(self._devices_changed)

    # -- start-up ------------------------------------------------------------------

    async def start(self) -> None:
        """Drain this device's sync mailboxes, if this node is a device of an identity."""
        local = await self._devices.load()
        if local is None:
            return
        for key in self._mailboxes:
            self._user.remove_raw_mailbox(key)
        me = local.device_key.public_key
        self._mailboxes = [sync_mailbox_key(k.secret, me) for k in local.keys]
        for key in self._mailboxes:
            self._user.add_raw_mailbox(key, self._received)

    async def _load(self, local: LocalDevice) -> SyncReplica:
        if self._replica is None:
            stored = await self._user.state_get(_REPLICA)
            replica_id = local.device_key.public_key.to_bytes()
            if stored is None:
                self._replica = SyncReplica(replica_id)
            else:
                f = Fields(canonical_decode(stored, DecodeLimits(max_size=64 << 20)), "replica",
                           frozenset({"v", "clock", "state"}))  # fmt: skip
                self._replica = SyncReplica(
                    replica_id,
                    clock=HybridClock.from_bytes(f.get_bytes("clock")),
                    state=SyncState.from_bytes(f.get_bytes("state", max_size=64 << 20)),
                )
        return self._replica

    async def _persist(self, replica: SyncReplica) -> None:
        blob = encode(
            {"v": 1, "clock": replica.clock.to_bytes(), "state": replica.state.to_bytes()}
        )
        await self._user.state_put(_REPLICA, blob)

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
            replica = await self._load(local)
            now = self._user.now()
            ops = [
                replica.set(name, value, now=now)
                if kind == "set"
                else replica.add(name, value, now=now)
                for kind, name, value in changes
            ]
            await self._persist(replica)
        await self._broadcast(local, ops)
        return True

    async def _contact_added(self, card: ContactCard) -> None:
        record = await self._store.run(
            self._store.db.contacts.get_by_identity, str(card.identity_id)
        )
        if record is None:
            return
        try:
            await self.record(_contact_changes(record.name, card))
        except IdentityArgumentError:  # a card too large for one register stays local
            _log.warning("a contact could not be synced")

    async def snapshot(self) -> dict[str, Any]:
        """Registers and sets as this device sees them, and the sync counters."""
        local = await self._devices.load()
        out: dict[str, Any] = {"active": local is not None, "applied": self.applied}
        out.update(rejected=self.rejected, last_error=self.last_error)
        if local is not None:
            async with self._lock:
                snap = (await self._load(local)).state.snapshot()
            raw: dict[str, Any] = snap["registers"]  # type: ignore[assignment]
            registers = {k: v for k, v in raw.items() if not isinstance(v, bytes)}
            out.update(epoch=local.sync_key.epoch, registers=registers, sets=snap["sets"])
        return out

    # -- sending -------------------------------------------------------------------------

    async def _targets(self, local: LocalDevice) -> list[DeviceCertificate]:
        chain = await self._devices.chain()
        me = local.device_key.public_key
        return [c for c in chain.head.devices if c.device_key != me]

    async def _broadcast(self, local: LocalDevice, ops: list[SyncOp]) -> None:
        if not ops:
            return
        chain = await self._devices.chain()
        for message in _chunks(ops, local, chain):
            for cert in await self._targets(local):
                await self._send(local, cert, SyncItem(ops=message), local.sync_key)

    async def _send(
        self, local: LocalDevice, cert: DeviceCertificate, item: SyncItem, key: SyncKey
    ) -> None:
        sealed = seal(cert.exchange_key, encode_sync_item(item), context=ITEM_CONTEXT)
        mailbox = MailboxId.derive(
            sync_mailbox_key(key.secret, cert.device_key).public_key.to_bytes()
        )
        await self._user.queue_envelope(self._user.home_relay, SealedEnvelope(mailbox, sealed))

    async def _devices_changed(self, doc: IdentityDocument, rekeyed: bool) -> None:
        """Primary: send the new document (and rekey) and the whole state to every device."""
        local = await self._devices.local()
        async with self._lock:
            replica = await self._load(local)
            now = self._user.now()
            for contact in await self._user.contacts():
                if contact.identity_id not in replica.state.members("contacts"):
                    card = ContactCard.from_bytes(contact.card)
                    for kind, name, value in _contact_changes(contact.name, card):
                        if kind == "set":
                            replica.set(name, value, now=now)
                        else:
                            replica.add(name, value, now=now)
            await self._persist(replica)
            ops = state_ops(replica.state)
        identity = self._user.identity
        old_key = local.keys[-2] if rekeyed else local.sync_key
        for cert in await self._targets(local):
            rekey = None
            if rekeyed:
                new = local.sync_key
                rekey = Rekey.issue(identity.signing_key, doc.subject, cert.device_key,
                                    new.epoch, new.secret).to_bytes()  # fmt: skip
            await self._send(local, cert, SyncItem(document=doc.to_bytes(), rekey=rekey), old_key)
        await self._broadcast(local, ops)
        await self.start()

    # -- receiving -----------------------------------------------------------------------

    async def _received(self, raw: bytes) -> None:
        try:
            await self._apply(raw)
        except DchatError as exc:
            self.rejected += 1
            self.last_error = error_code(exc)
            _log.warning("sync item refused: %s", self.last_error)

    async def _apply(self, raw: bytes) -> None:
        local = await self._devices.load()
        if local is None:
            return
        item = unseal_item(raw, local.exchange_key)
        if item.document is not None and local.role == "linked":
            with contextlib.suppress(ReplayedDocumentError):  # a redelivery: nothing new
                await self._devices.accept_document(item.document)
        if item.rekey is not None:
            chain = await self._devices.chain()
            rekey = Rekey.from_bytes(item.rekey)
            rekey.verify(chain.identity_key, chain.subject, local.device_key.public_key)
            await self._devices.accept_rekey(SyncKey(rekey.secret, rekey.epoch))
            local = await self._devices.local()
            await self.start()
        if item.ops is not None:
            ops = open_ops(item.ops, local.keys, await self._devices.chain())
            async with self._lock:
                replica = await self._load(local)
                now = self._user.now()
                for op in ops:
                    replica.receive(op, now=now)
                await self._persist(replica)
                self.applied += len(ops)
                await self._materialize(replica.state)

    async def _materialize(self, state: SyncState) -> None:
        db = self._store.db
        for identity_id in sorted(state.members("contacts")):
            if await self._store.run(db.contacts.get_by_identity, identity_id) is not None:
                continue
            card_bytes = state.get(f"contact.card/{identity_id}")
            name = state.get(f"contact.name/{identity_id}")
            if not isinstance(card_bytes, bytes) or not isinstance(name, str):
                continue  # the card's register has not arrived yet
            card = ContactCard.from_bytes(card_bytes)
            if str(card.identity_id) != identity_id:
                raise MalformedRecordError("a synced card names another identity")
            await self._add_contact(name, identity_id, card_bytes)

    async def _add_contact(self, name: str, identity_id: str, card: bytes) -> None:
        db = self._store.db
        for suffix in ("", *(f"-{n}" for n in range(2, 10))):
            try:
                await self._store.run(
                    db.contacts.add, name + suffix, identity_id, card, self._user.now()
                )
                return
            except DuplicateError:
                continue
        _log.warning("a synced contact's name is taken")


def _contact_changes(name: str, card: ContactCard) -> list[tuple[str, str, Any]]:
    ident = str(card.identity_id)
    return [
        ("set", f"contact.card/{ident}", card.to_bytes()),
        ("set", f"contact.name/{ident}", name),
        ("add", "contacts", ident),
    ]


def _chunks(ops: list[SyncOp], local: LocalDevice, chain: DocumentChain) -> list[bytes]:
    """Sync messages of at most about ``_CHUNK`` bytes of operations each."""
    messages: list[list[SyncOp]] = []
    batch: list[SyncOp] = []
    size = 0
    for op in ops:
        op_size = len(encode(op.to_value()))
        if batch and size + op_size > _CHUNK:
            messages.append(batch)
            batch, size = [], 0
        batch.append(op)
        size += op_size
    if batch:
        messages.append(batch)
    return [
        seal_sync_message(b, key=local.sync_key, device_key=local.device_key, subject=chain.subject)
        for b in messages
    ]
