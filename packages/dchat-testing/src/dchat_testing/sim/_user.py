"""The user role in the simulator: the real messaging engine, driven over simulated links.

Theory of operation
-------------------
The user composes the real sans-IO pieces as the node's user shell
(``dchat_node.user._delivery``) does, in the same order of steps: a
:class:`~dchat_messaging.UserMessaging` over its store (its
:class:`~dchat_messaging.LocalEngines`, outbox, directory and request
policy; the simulated users follow no documents, so each has its primary
device only, and hold no contacts, so every sender lands as a request). Only
the shell around it is simulated. Its durable state is a
:class:`dchat_messaging.testing.MemoryMessageStore` in :class:`UserDurable`:
it outlives crashes, so what the engine committed survives and the in-flight
network work (deposits, bundle fetches, the mailbox link) is forgotten at
boot. The outbox's retry jitter and the reconnection backoff draw from the
node's seeded ``rng``.

* **send**: the app's message goes through :meth:`LocalEngines.send` to every
  device the directory lists for the recipient. Without a session, a device
  waits for its prekey bundle: a ``BundleFetch`` (:mod:`._user_requests`)
  dials the device's relay under a fresh link key and sends ``pk_get``; the
  bundle goes to :meth:`UserMessaging.bundle_received`, which sets up the
  session and queues the sealed envelope in the outbox. A failed fetch is
  retried with backoff.
* **deliver**: the pump takes :meth:`Outbox.due` entries (queue order per
  destination: a delayed envelope holds the later ones to its mailbox),
  groups them with :func:`~dchat_messaging.lowlevel.deposits` and sends each
  relay's first batch as one ``put_many`` over that relay's reused
  ``DepositLink`` (one deposit in flight per relay). ``disk_latency`` after
  the reply, :meth:`UserMessaging.deposited` settles the per-envelope results
  in one transaction (a crash in between re-sends them). A lost link or a
  timeout fails the whole batch, which backs off and is retried, forever.
* **receive**: one standing ``MailboxPuller`` per home relay of the user
  (its mailbox key proves it, the relay pinned by node id; a user with
  several home relays, :class:`~dchat_identity.ContactCard` ``relays``, gets
  every envelope through each of them and the engine counts the later copies
  as duplicates) checks its prekeys on connect and
  now and then (``pk_count``, ``pk_put`` of what
  :meth:`MessagingEngine.prekey_upload` asks for), then sends ``pull`` with
  a wait: the relay pushes mail as it arrives. ``disk_latency`` after a batch
  arrives, :meth:`UserMessaging.accept_many` opens it in one transaction (the
  app sees a message exactly when it is committed), and only the next
  ``pull`` acknowledges it. A lost link (reset, timeout, relay crash) is
  redialled after :class:`dchat_network.ReconnectPolicy`'s backoff with
  jitter; a batch it had not acknowledged comes again and the engine counts
  the copies as duplicates.

Relay addresses: with one home relay a card names the relay node itself
(``relay-0``); with several, each is ``NODEID@relay-0:7400`` (a strict
address) and the shell dials the node named by its host.

Every random choice of the shell comes from the node's ``rng``. The engine's
cryptography also reads the operating system's generator (ML-KEM, nonces), so
ciphertexts differ between runs of one seed; their sizes, and so every timing,
do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dchat_core import MessageId, RelayAddress
from dchat_identity import ContactCard
from dchat_messaging import (
    BundleRejectedError,
    Content,
    MessageReceived,
    Outbox,
    RetryPolicy,
    UserMessaging,
)
from dchat_messaging.lowlevel import (
    Accepted,
    GroupError,
    decode_keyed,
    deposits,
    outbox_id,
    path_outbox_id,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import ReconnectPolicy, RelayClient

from .._errors import SimulationError
from ._node import NodeClock, SimNode
from ._user_requests import BundleFetch, DepositLink, MailboxPuller

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dchat_core import NodeId
    from dchat_identity import Identity
    from dchat_messaging import DeviceAddress, MessagingEngine
    from dchat_messaging.lowlevel import GroupRecord, OutboxEntry
    from dchat_network.lowlevel import RelayBatch

    from ._loop import Timer
    from ._relay import RelayNode
    from ._simulation import Simulation

__all__ = ("SentRecord", "UserDurable", "UserNode", "UserParams", "text_digest")

SIM_PORT = 7400
"""The port in the address of a relay of a multi-relay card (``NODEID@relay-0:7400``)."""
OUTBOX_READ = 256
"""Outbox entries read per pump (the node's outbox reads as many)."""


def text_digest(text: str) -> str:
    """A short digest of a message text, for traces and checks."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class UserParams:
    """Timings of a user node, in seconds of its own clock.

    ``prekey_interval`` is how often the mailbox link asks the relay how many
    prekeys it holds (also once per new link). Loading the prekey secrets is
    the engine's most expensive step, so not every pull. ``pull_wait`` is how
    long the relay may hold a pull; ``backoff_*`` pace retries of deposits
    and bundle fetches, ``reconnect_*`` the redialling of the mailbox link.
    """

    pull_wait: float = 20.0
    request_timeout: float = 5.0
    disk_latency: float = 0.002
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    reconnect_base: float = 0.2
    reconnect_max: float = 10.0
    fetch_limit: int = 64
    prekey_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class SentRecord:
    """What the shell keeps about one outbox entry besides the engine's row."""

    mid: str
    relay_node: NodeId | None


@dataclass(slots=True)
class UserDurable:
    """What survives a crash: keys, card, and the engine's store.

    ``sent`` maps each outbox id to the message id it carries (for the
    ``stored_seen`` observations) and the recipient relay's node id (pinned
    on deposit).
    """

    identity: Identity
    card: ContactCard
    store: MemoryMessageStore = field(default_factory=MemoryMessageStore)
    sent: dict[bytes, SentRecord] = field(default_factory=dict)


class UserNode(SimNode):
    """A user node: deposits at recipients' relays, takes pushed mail from its home relay.

    Args:
        sim: The simulation.
        name: Node name.
        clock: The node's clock.
        identity: The user's keys.
        home_relay: Name of the relay node holding this user's mailbox.
        home_relay_node: That relay's node id, pinned by the mailbox link.
        params: Timings.
        more_relays: Further home relays, ``(name, node id)`` each (multi-path).
    """

    def __init__(
        self,
        sim: Simulation,
        name: str,
        clock: NodeClock,
        *,
        identity: Identity,
        home_relay: str,
        home_relay_node: NodeId,
        params: UserParams | None = None,
        more_relays: Sequence[tuple[str, NodeId]] = (),
    ) -> None:
        super().__init__(sim, name, clock)
        homes = [(home_relay, home_relay_node), *more_relays]
        if len(homes) == 1:
            card = ContactCard.issue(
                identity, name=name, relay=home_relay, relay_node=home_relay_node
            )
        else:
            relays = [f"{node}@{relay}:{SIM_PORT}" for relay, node in homes]
            card = ContactCard.issue(identity, name=name, relays=relays)
        self.durable = UserDurable(identity, card)
        self.params = params or UserParams()
        self._reconnect = ReconnectPolicy(self.params.reconnect_base, self.params.reconnect_max)
        self.engine = self._new_agent()
        self._deposit_links: dict[str, DepositLink] = {}
        self._depositing: set[str] = set()
        self._fetching: dict[bytes, int] = {}
        self._pullers: dict[str, MailboxPuller] = {}
        self._link_failures: dict[str, int] = {}
        self._pump_timer: Timer | None = None
        self._prekeys_checked: dict[str, float] = {}
        self.group_saved: Callable[[GroupRecord], None] | None = None
        """Told every group record the engine stores (the group scenario's ground truth)."""
        self.group_wires: list[bytes] = []
        """Every group message (``group.msg`` data, alone or in a ``group.kmsg``) the engine
        sent, newest last."""

    @property
    def card(self) -> ContactCard:
        """This user's contact card."""
        return self.durable.card

    agent: UserMessaging

    def _new_agent(self) -> MessagingEngine:
        """The messaging agent over the durable store (at creation and each boot); its engine."""
        store = self.durable.store
        self.agent = UserMessaging(store)
        retry = RetryPolicy(self.params.backoff_base, self.params.backoff_max)
        self.agent.outbox = Outbox(store, retry, rng=self.rng)
        self.agent.load()
        self.agent.engines.set_main(self.durable.identity, self.durable.card)
        db, save = self.agent.groups.db, self.agent.groups.db.save

        def saved(record: GroupRecord) -> None:
            save(record)
            if self.group_saved is not None:
                self.group_saved(record)

        db.save = saved  # type: ignore[method-assign]
        groups, send = self.agent.groups, self.agent.groups._send

        def sent(kind: str, data: bytes, *args: Any, **kwargs: Any) -> list[DeviceAddress]:
            if kind in ("group.msg", "group.kmsg"):  # a kmsg: a new chain and a message
                self.group_wires.append(decode_keyed(data)[1] if kind == "group.kmsg" else data)
            return send(kind, data, *args, **kwargs)

        groups._send = sent  # type: ignore[method-assign]
        engine = self.agent.engines.main()
        assert engine is not None
        return engine

    def boot(self) -> None:
        """Forget in-flight work; open the mailbox link, fetch bundles, deliver the outbox."""
        self.engine = self._new_agent()
        self._deposit_links = {}
        self._depositing = set()
        self._fetching = {}
        self._pullers = {}
        self._link_failures = {}
        self._pump_timer = None
        self._prekeys_checked = {}
        for relay in self.card.relays:
            self._redial(relay)
        for device in self.engine.needs_bundles():
            self._fetch_bundle(device)
        self._pump()

    def register(self, relay: RelayNode) -> None:
        """Publish prekeys at the home ``relay`` before the run, out of band (like the cards).

        Raises:
            RelayProtocolError: the relay refused them.
        """
        mailbox = bytes(self.durable.identity.mailbox_id)
        upload = self.engine.prekey_upload(held=None, now=self.clock.now())
        assert upload is not None  # nothing was published yet
        client = RelayClient()
        one_time = list(upload.one_time)
        request = client.put_prekeys(mailbox, upload.last_resort, one_time, replace=upload.replace)
        client.receive(relay.serve_out_of_band(mailbox, request))

    def shown(self, peer: str) -> list[str]:
        """Ids (hex) of the conversation with ``peer`` as the app lists it (by place)."""
        store = self.durable.store
        return [m.message_id.hex() for m in store.list_messages(peer, len(store.messages) + 1)]

    def missing(self, peer: str) -> int:
        """Texts from ``peer`` the engine knows are missing (gaps in their numbers)."""
        return self.agent.missing(peer)

    # -- sending ------------------------------------------------------------------

    def submit(self, recipient: ContactCard, text: str) -> bytes:
        """The app sends ``text``: the engine encrypts and queues it. Returns the message id.

        Raises:
            SimulationError: the node is down.
        """
        if not self.up:
            raise SimulationError(f"{self.name} is down")
        mid = MessageId(self.rng.randbytes(MessageId.SIZE))
        now = self.clock.now()
        content = Content.text_message(text, now_ms=int(now * 1000), message_id=mid)
        for device in self.agent.directory.devices_of(recipient):
            first = outbox_id(mid, device.device_id)
            nodes = {address: node for node, address in map(RelayAddress.split, device.relays)}
            for number, relay in enumerate(device.paths(self.engine.paths)):
                key = first if number == 0 else path_outbox_id(first, relay)
                self.durable.sent[key] = SentRecord(bytes(mid).hex(), nodes.get(relay))
        waiting = self.agent.engines.send(self.engine, recipient, content, now=now, copies=True)
        self.observe("submit", mid=bytes(mid).hex(), to=str(recipient.identity_id))
        for address in waiting:
            self._fetch_bundle(address)
        self._pump()
        return bytes(mid)

    def _fetch_bundle(self, device: DeviceAddress) -> None:
        if device.device_id not in self._fetching:
            self._fetching[device.device_id] = 0
            BundleFetch(self, device)

    def _bundle_fetched(self, device: DeviceAddress, bundle: bytes) -> None:
        if not any(d.device_id == device.device_id for d in self.engine.needs_bundles()):
            self._fetching.pop(device.device_id, None)  # a stale answer: nothing waits
            return
        try:
            self.agent.bundle_received(self.engine, device, bundle, now=self.clock.now())
        except BundleRejectedError:
            self._bundle_failed(device, "bad-bundle")
            return
        self._fetching.pop(device.device_id, None)
        self.observe("session_set_up", queued=len(self.durable.store.outbox))
        self._pump()

    def _bundle_failed(self, device: DeviceAddress, reason: str) -> None:
        attempts = self._fetching.get(device.device_id, 0) + 1
        self._fetching[device.device_id] = attempts
        self.observe("bundle_failed", reason=reason, attempts=attempts)
        self.after(self._backoff(attempts), lambda: self._retry_bundle(device))

    def _retry_bundle(self, device: DeviceAddress) -> None:
        BundleFetch(self, device, self._fetching.get(device.device_id, 0))  # the next relay

    def _backoff(self, attempts: int) -> float:
        exponential = self.params.backoff_base * float(2 ** min(attempts, 10))
        jitter: float = self.rng.uniform(0.5, 1.0)
        return min(self.params.backoff_max, exponential) * jitter

    def _pump(self) -> None:
        """Send each idle relay's first due batch; wake again when a held entry is due."""
        now = self.clock.now()
        for batch in deposits(self.agent.outbox.due(now, OUTBOX_READ)):
            relay = batch[0].relay
            if relay in self._depositing:
                continue  # one deposit per relay until settled; its next batch follows
            self._depositing.add(relay)
            link = self._deposit_links.get(relay)
            if link is None:
                sent = self.durable.sent.get(batch[0].message_id)
                link = DepositLink(self, relay, None if sent is None else sent.relay_node)
                self._deposit_links[relay] = link
            link.deposit(batch)
        waiting = [e.due for e in self.durable.store.outbox.values() if e.due > now]
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        if waiting:
            self._pump_timer = self.after(min(waiting) - now, self._pump)

    def _mid(self, entry: OutboxEntry) -> str:
        sent = self.durable.sent.get(entry.message_id)
        return "control" if sent is None else sent.mid  # a control's id is random: not traced

    def _deposited(
        self, link: DepositLink, batch: list[OutboxEntry], results: list[object]
    ) -> None:
        """The relay answered a deposit: note what it stored, commit the results, go on."""
        for entry, result in zip(batch, results, strict=True):
            if isinstance(result, bytes):
                self.observe("stored_seen", mid=self._mid(entry), attempts=entry.attempts + 1)
            else:
                what = {"mid": self._mid(entry), "reason": str(result)}
                self.observe("put_failed", **what, attempts=entry.attempts + 1)

        def commit() -> None:
            self.agent.deposited(batch, results, now=self.clock.now())
            self._depositing.discard(link.relay)
            self._pump()

        self.after(self.params.disk_latency, commit)

    def _deposit_link_lost(
        self, link: DepositLink, batch: list[OutboxEntry] | None, reason: str
    ) -> None:
        if self._deposit_links.get(link.relay) is link:
            del self._deposit_links[link.relay]
        if batch is not None:
            self.agent.deposited(batch, [reason] * len(batch), now=self.clock.now())
            self._depositing.discard(link.relay)
            for entry in batch:
                what = {"mid": self._mid(entry), "reason": reason}
                self.observe("put_failed", **what, attempts=entry.attempts + 1)
        self._pump()

    # -- receiving ----------------------------------------------------------------

    def _puller_connected(self, puller: MailboxPuller) -> None:
        self._link_failures[puller.relay] = 0
        self._prekeys_checked.pop(puller.relay, None)  # check on each new link
        self.observe("mailbox_link_up")

    def _puller_ended(self, puller: MailboxPuller, reason: str) -> None:
        if self._pullers.get(puller.relay) is not puller:
            return
        del self._pullers[puller.relay]
        failures = self._link_failures[puller.relay] = self._link_failures.get(puller.relay, 0) + 1
        delay = self._reconnect.delay(failures, self.rng)
        self.observe("fetch_failed", reason=reason, retry_in=round(delay, 6))
        self.after(delay, lambda: self._redial(puller.relay))

    def _redial(self, relay: str) -> None:
        """Open the mailbox link to the home relay ``relay`` (a card's text) unless it is up."""
        if relay not in self._pullers:
            self._pullers[relay] = MailboxPuller(self, relay)

    def _prekeys_due(self, relay: str) -> bool:
        now = self.clock.monotonic()
        last = self._prekeys_checked.get(relay)
        if last is not None and now - last < self.params.prekey_interval:
            return False
        self._prekeys_checked[relay] = now
        return True

    def _prekeys_held(self, held: int) -> tuple[bytes, list[tuple[int, bytes]], bool] | None:
        upload = self.engine.prekey_upload(held=held, now=self.clock.now())
        if upload is None:
            return None
        self.observe("prekeys_published", one_time=len(upload.one_time))
        return upload.last_resort, list(upload.one_time), upload.replace

    def _receive_batch(self, puller: MailboxPuller, batch: RelayBatch) -> None:
        incarnation = self.incarnation
        self.observe("batch_received", items=len(batch.items))
        if self.incarnation != incarnation:
            return  # a fault hook crashed us on receipt
        ids = [entry_id for entry_id, _ in batch.items]

        def commit() -> None:
            envelopes = [raw for _, raw in batch.items]
            copies = self.agent.stats.duplicates
            accepted = self.agent.accept_many(self.engine, envelopes, now=self.clock.now())
            self._report(accepted)
            if accepted.waiting is not None:  # it sent (group keys, receipts): deliver them
                self._deliver(accepted.waiting)
            if copies := self.agent.stats.duplicates - copies:
                self.observe("duplicates", count=copies)  # copies via another relay, or again
            if not puller.ended:
                puller.pull(ids)  # the acknowledgement rides the next pull

        self.after(self.params.disk_latency, commit)

    def _report(self, accepted: Accepted) -> None:
        for message in accepted.texts:
            mid = bytes(message.message_id).hex()
            what = {"sender": str(message.sender), "text": text_digest(message.text)}
            self.observe("deliver", mid=mid, **what)
        for reason in accepted.dropped:
            self.observe("dropped", reason=reason)  # redelivered copies: spent message keys
        for reset in accepted.resets:
            self.observe("session_reset", peer=str(reset.peer))
        for update in accepted.updates:
            if update.kind in ("group_update", "group_message"):
                detail = {k: v for k, v in update.detail.items() if isinstance(v, str | int)}
                self.observe(update.kind, by=update.by, **detail)

    def _deliver(self, waiting: list[DeviceAddress]) -> None:
        """The engine queued envelopes: fetch the bundles they wait for, pump the outbox."""
        for address in waiting:
            self._fetch_bundle(address)
        self._pump()

    # -- groups -------------------------------------------------------------------

    def group_leak(self, sender: UserNode, wire: bytes) -> None:
        """An attacker's gift: ``wire``, a group message of ``sender``, handed to our
        engine as if ``sender``'s session had brought it (whatever our membership)."""
        device = sender.engine.keys.device_id
        content = Content.control("group.msg", wire, now_ms=int(self.clock.now() * 1000))
        event = MessageReceived(content, sender.card.identity_id, device, True)
        try:
            with self.durable.store.transaction():
                updates = self.agent.groups.apply(event, now=self.clock.now())
        except GroupError:
            return
        self._report(Accepted([], [], [], [], updates))

    def group_act(self, action: str, *args: object, **kwargs: object) -> object:
        """The app calls ``agent.groups.<action>(*args)`` (``create``, ``invite``, ``join``,
        ``remove``, ``leave``, ``send_text``) as the node's API does; returns its result.

        Raises:
            SimulationError: the node is down.
            RequestError: the group's rules (as this node knows them) refuse it.
        """
        if not self.up:
            raise SimulationError(f"{self.name} is down")
        result, waiting = getattr(self.agent.groups, action)(*args, **kwargs, now=self.clock.now())
        self._deliver(waiting)
        return result
