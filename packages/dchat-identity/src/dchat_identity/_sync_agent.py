"""Multi-device sync as one device runs it: local changes out, sync items in.

Theory of operation. Each device keeps a :class:`SyncReplica` (HLC-stamped
CRDT: last-writer-wins registers, observed-remove sets, :mod:`._crdt`) whose
replica id is its device key; :class:`SyncAgent` holds it and decides what
to send and what to accept, and the caller stores its :meth:`SyncAgent.to_bytes`
and carries the :class:`SyncDelivery` values to the home relays.

Sending: a local change becomes operations, signed by the device key and
encrypted under the epoch's sync key (:func:`seal_sync_message`) in chunks of
about 32 KiB, each wrapped in a sync item sealed to every *other* active
device's X25519 key and addressed to that device's sync mailbox
(:func:`sync_mailbox_key`), so only the identity's devices can find or read
it. When the device list changes, the primary hands every remaining device
the new document (and, after a revocation, a signed rekey) under the epoch
they still know, then the whole state as operations (:func:`state_ops`), so
a new device catches up and a rekeyed one has everything under the new key.

Receiving: a device opens an item with its X25519 key
(:meth:`SyncAgent.open_item`), lets its caller accept the document and the
rekey (:meth:`SyncAgent.check_rekey`), then opens the operations under the
current or previous epoch key against its document chain, which refuses a
device that is revoked or was never certified (``RevokedDeviceError``) and
any bad signature or key (``ForgedRecordError``). Applying is idempotent, so
a redelivered item changes nothing. :meth:`SyncAgent.missing_contacts` says
which synced contacts the caller has yet to add.

Layout of the replica: set ``contacts`` of identity ids, registers
``contact.card/<id>`` (card bytes) and ``contact.name/<id>``,
``settings/<key>``, ``read/<peer>``, ``profile/<field>``,
``profile.vis/<field>`` and ``channel/<id>`` (a broadcast channel's invite
link, ``""`` once unsubscribed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from dchat_core import DchatError, DecodeLimits, Fields, MailboxId, canonical_decode
from dchat_core import canonical_encode as encode

from ._card import ContactCard
from ._crdt import SyncOp, SyncReplica, SyncState, Value
from ._device_wire import Rekey, SyncItem, open_sync_item, seal_sync_item, sync_mailbox_key
from ._errors import ForgedRecordError, MalformedRecordError
from ._hlc import HybridClock
from ._records import Rng, default_rng
from ._sync import SyncKey, open_sync_message, seal_sync_message

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from dchat_crypto import SigningKey

    from ._chain import DocumentChain
    from ._device_state import LocalDevice
    from ._devices import DeviceCertificate
    from ._document import IdentityDocument

__all__ = (
    "Change",
    "SyncAgent",
    "SyncCounters",
    "SyncDelivery",
    "SyncedContact",
    "contact_changes",
    "open_ops",
    "state_ops",
)

Change: TypeAlias = tuple[str, str, Any]
"""A local change ``(kind, name, value)``: ``"set"`` register ``name`` := value, or
``"add"`` element ``value`` to set ``name``."""

CHUNK: Final = 32 * 1024
_BIG = DecodeLimits(max_size=64 << 20, max_items=4_000_000)


@dataclass(frozen=True, slots=True)
class SyncDelivery:
    """Put ``ciphertext`` (a sealed sync item) into ``mailbox`` at the home relays."""

    mailbox: MailboxId
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class SyncedContact:
    """A contact another device added, with its card (checked to name ``identity_id``)."""

    name: str
    identity_id: str
    card: bytes

    def names(self) -> Iterator[str]:
        """Names to try for it, in order, while the contacts table says one is taken.

        Its own name first, then ``name-2`` .. ``name-9``; a contact whose
        names are all taken is left out (a caller logs it).
        """
        yield self.name
        for n in range(2, 10):
            yield f"{self.name}-{n}"


def contact_changes(name: str, card: ContactCard) -> list[Change]:
    """The changes that sync one contact (card and name registers, then the set)."""
    ident = str(card.identity_id)
    return [
        ("set", f"contact.card/{ident}", card.to_bytes()),
        ("set", f"contact.name/{ident}", name),
        ("add", "contacts", ident),
    ]


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
    raw = canonical_decode(state.to_bytes(), _BIG)
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


@dataclass(slots=True)
class SyncCounters:
    """What this device's sync mailbox did since start (``GET /v1/sync`` shows it)."""

    applied: int = 0
    rejected: int = 0
    last_error: str | None = None

    def refused(self, code: str) -> None:
        """An item was refused with the error ``code``; it never blocks the mailbox."""
        self.rejected += 1
        self.last_error = code

    def status(self, *, active: bool) -> dict[str, Any]:
        """The counters, and whether this node syncs at all (it is a device of an identity)."""
        return {
            "active": active,
            "applied": self.applied,
            "rejected": self.rejected,
            "last_error": self.last_error,
        }


class SyncAgent:
    """One device's replica and the sync decisions around it.

    Args:
        replica_id: This device's replica id (its device public key bytes).
        stored: A previous :meth:`to_bytes`, or ``None`` for an empty replica.
        rng: Randomness for sealing.

    Raises:
        MalformedRecordError: ``stored`` is not a stored replica.
    """

    def __init__(
        self, replica_id: bytes, stored: bytes | None = None, *, rng: Rng = default_rng
    ) -> None:
        self._rng = rng
        if stored is None:
            self.replica = SyncReplica(replica_id)
            return
        try:
            f = Fields(canonical_decode(stored, DecodeLimits(max_size=64 << 20)), "replica",
                       frozenset({"v", "clock", "state"}))  # fmt: skip
            clock = HybridClock.from_bytes(f.get_bytes("clock"))
            state = SyncState.from_bytes(f.get_bytes("state", max_size=64 << 20))
        except DchatError:
            raise MalformedRecordError("malformed stored replica") from None
        self.replica = SyncReplica(replica_id, clock=clock, state=state)

    def to_bytes(self) -> bytes:
        """The replica (clock and state) to store."""
        clock, state = self.replica.clock, self.replica.state
        return encode({"v": 1, "clock": clock.to_bytes(), "state": state.to_bytes()})

    @property
    def state(self) -> SyncState:
        """The converged state as this device sees it."""
        return self.replica.state

    # -- local changes ------------------------------------------------------------

    def record(self, changes: Iterable[Change], *, now: float) -> list[SyncOp]:
        """Apply local changes; the operations to send (:meth:`deliveries`).

        Raises:
            IdentityArgumentError: a name or value the replica cannot hold.
        """
        replica = self.replica
        return [
            replica.set(name, value, now=now)
            if kind == "set"
            else replica.add(name, value, now=now)
            for kind, name, value in changes
        ]

    def adopt_contacts(self, contacts: Iterable[tuple[str, str, bytes]], *, now: float) -> None:
        """Add the ``(name, identity id, card)`` contacts the replica does not hold yet."""
        members = self.replica.state.members("contacts")
        for name, identity_id, card in contacts:
            if identity_id not in members:
                self.record(contact_changes(name, ContactCard.from_bytes(card)), now=now)

    def adopt_channels(self, links: Mapping[str, Value], *, now: float) -> list[SyncOp]:
        """Record the followed channels (id -> link) the replica holds no register for yet.

        The primary calls it when a device is linked, so channels followed
        before the identity's first linked device reach it too.
        """
        held = self.registers("channel/")
        changes = [("set", f"channel/{c}", link) for c, link in links.items() if c not in held]
        return self.record(changes, now=now)

    def registers(self, prefix: str) -> dict[str, Value]:
        """The registers named ``prefix`` + a key (e.g. ``channel/<id>``), by that key."""
        snap = self.replica.state.snapshot()["registers"]
        assert isinstance(snap, dict)
        return {k[len(prefix) :]: v for k, v in snap.items() if k.startswith(prefix)}

    def snapshot(self) -> dict[str, Any]:
        """Registers (but card bytes) and sets, as a user sees them."""
        snap = self.replica.state.snapshot()
        raw: dict[str, Value] = snap["registers"]  # type: ignore[assignment]
        registers = {k: v for k, v in raw.items() if not isinstance(v, bytes)}
        return {"registers": registers, "sets": snap["sets"]}

    # -- sending ------------------------------------------------------------------

    def deliveries(
        self, ops: list[SyncOp], local: LocalDevice, chain: DocumentChain
    ) -> list[SyncDelivery]:
        """``ops`` in sealed chunks, for every other active device of ``chain``."""
        out = []
        for message in self._chunks(ops, local, chain):
            for cert in _others(local, chain):
                out.append(_deliver(cert, SyncItem(ops=message), local.sync_key))
        return out

    def handover(
        self,
        local: LocalDevice,
        chain: DocumentChain,
        document: IdentityDocument,
        *,
        identity_key: SigningKey,
        rekeyed: bool,
    ) -> list[SyncDelivery]:
        """Primary, after the device list changed: the document (and rekey), then all state.

        Each remaining device gets ``document`` under the epoch it knows; after
        a revocation (``rekeyed``) with a rekey to ``local``'s new epoch, signed
        by ``identity_key``. Then the whole replica under the current key.
        """
        old_key = local.keys[-2] if rekeyed else local.sync_key
        new = local.sync_key
        out = []
        for cert in _others(local, chain):
            rekey = None
            if rekeyed:
                rekey = Rekey.issue(identity_key, document.subject, cert.device_key,
                                    new.epoch, new.secret).to_bytes()  # fmt: skip
            item = SyncItem(document=document.to_bytes(), rekey=rekey)
            out.append(_deliver(cert, item, old_key))
        return out + self.deliveries(state_ops(self.replica.state), local, chain)

    def _chunks(self, ops: list[SyncOp], local: LocalDevice, chain: DocumentChain) -> list[bytes]:
        """Sync messages of at most about :data:`CHUNK` bytes of operations each."""
        messages: list[list[SyncOp]] = []
        batch: list[SyncOp] = []
        size = 0
        for op in ops:
            op_size = len(encode(op.to_value()))
            if batch and size + op_size > CHUNK:
                messages.append(batch)
                batch, size = [], 0
            batch.append(op)
            size += op_size
        if batch:
            messages.append(batch)
        key, device, subject = local.sync_key, local.device_key, chain.subject
        return [
            seal_sync_message(b, key=key, device_key=device, subject=subject, rng=self._rng)
            for b in messages
        ]

    # -- receiving ----------------------------------------------------------------

    @staticmethod
    def mailbox_keys(local: LocalDevice) -> list[SigningKey]:
        """Keys of this device's sync mailboxes, one per known epoch (drain them all)."""
        me = local.device_key.public_key
        return [sync_mailbox_key(k.secret, me) for k in local.keys]

    @staticmethod
    def open_item(ciphertext: bytes, local: LocalDevice) -> SyncItem:
        """Open one sync-mailbox entry (``ForgedRecordError`` if not sealed to this device)."""
        return open_sync_item(ciphertext, local.exchange_key)

    @staticmethod
    def check_rekey(data: bytes, chain: DocumentChain, local: LocalDevice) -> SyncKey:
        """The new epoch's key from a rekey the identity key signed for this device."""
        rekey = Rekey.from_bytes(data)
        rekey.verify(chain.identity_key, chain.subject, local.device_key.public_key)
        return SyncKey(rekey.secret, rekey.epoch)

    @staticmethod
    def rekeyed(data: bytes, chain: DocumentChain, local: LocalDevice) -> LocalDevice | None:
        """This device's state after a rekey; ``None`` if its epoch is not newer (a redelivery).

        Raises:
            MalformedRecordError, ForgedRecordError: as :meth:`check_rekey`.
        """
        moved = local.with_sync_key(SyncAgent.check_rekey(data, chain, local))
        return None if moved is local else moved

    def receive_ops(
        self, data: bytes, local: LocalDevice, chain: DocumentChain, *, now: float
    ) -> int:
        """Open a sync message and apply its operations; how many there were."""
        ops = open_ops(data, local.keys, chain)
        for op in ops:
            self.replica.receive(op, now=now)
        return len(ops)

    def missing_contacts(self, known: Iterable[str]) -> Iterator[SyncedContact]:
        """Synced contacts whose identity is not in ``known`` and whose registers arrived.

        Raises:
            MalformedRecordError: (when reached) a synced card names another identity.
        """
        have = set(known)
        state = self.replica.state
        for identity_id in sorted(state.members("contacts")):
            if identity_id in have:
                continue
            card = state.get(f"contact.card/{identity_id}")
            name = state.get(f"contact.name/{identity_id}")
            if not isinstance(card, bytes) or not isinstance(name, str):
                continue  # the card's register has not arrived yet
            if str(ContactCard.from_bytes(card).identity_id) != identity_id:
                raise MalformedRecordError("a synced card names another identity")
            yield SyncedContact(name, identity_id, card)


def _others(local: LocalDevice, chain: DocumentChain) -> list[DeviceCertificate]:
    me = local.device_key.public_key
    return [c for c in chain.head.devices if c.device_key != me]


def _deliver(cert: DeviceCertificate, item: SyncItem, key: SyncKey) -> SyncDelivery:
    mailbox = MailboxId.derive(sync_mailbox_key(key.secret, cert.device_key).public_key.to_bytes())
    return SyncDelivery(mailbox, seal_sync_item(item, cert.exchange_key))
