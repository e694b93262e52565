"""The user role in the simulator: the real messaging engine, driven over simulated links.

Theory of operation
-------------------
The user composes the real sans-IO pieces of :mod:`dchat_messaging` as the
node's user service (``dchat_node.user._service``) does, in the same order of
steps: :class:`~dchat_messaging.LocalEngines` (its engine), a
:class:`~dchat_messaging.DocumentDirectory` (fan-out; the simulated users
follow no documents, so each has its primary device only) and
:class:`~dchat_messaging.MessageRequests` (the users exchange cards out of
band but hold no contacts, so every sender is a stranger and lands as a
request). Only the shell around them is simulated. Their durable state is a
:class:`dchat_messaging.testing.MemoryMessageStore` in :class:`UserDurable`: it
outlives crashes, so what the engine committed survives and the in-flight
network work (deposits, bundle fetches, the mailbox link) is forgotten at boot.

* **send**: the app's message goes through :meth:`LocalEngines.send` to every
  device the directory lists for the recipient. Without a session, a device
  waits for its
  prekey bundle: a ``BundleFetch`` (:mod:`._user_requests`) dials the device's
  relay under a fresh link key and sends ``pk_get``; the bundle goes to
  :meth:`MessagingEngine.bundle_received`, which sets up the session and queues
  the sealed envelope in the store's outbox. A failed fetch is retried with
  backoff.
* **deliver**: the pump takes due outbox entries; a ``Put`` dials the
  recipient's relay under a fresh link key and sends ``put``; on ``stored`` the
  entry is marked sent (a disk write, ``disk_latency`` later: a crash in
  between re-sends it). A failure (reset, timeout, error reply) marks it
  failed with exponential backoff and jitter, forever.
* **receive**: every ``poll_interval`` the ``Fetcher`` (a link to the home
  relay proven with the mailbox key, the relay pinned by node id) asks, now
  and then, how many one-time prekeys the relay holds (``pk_count``) and
  publishes what :meth:`MessagingEngine.prekey_upload` asks for (``pk_put``),
  then fetches. ``disk_latency`` after a batch arrives, each envelope goes to
  :meth:`MessagingEngine.receive` (one transaction each: the app sees a
  message exactly when it is committed, and a stranger's message is noted as
  a request in the same transaction), and only then is the batch
  acknowledged. A redelivered envelope is refused by the ratchet (its message
  key is spent); the user remembers which message each relay entry carried,
  so it reports that as ``duplicate_dropped``, not ``rejected``.

Every random choice of the shell comes from the node's ``rng``. The engine's
cryptography also reads the operating system's generator (ML-KEM, nonces), so
ciphertexts differ between runs of one seed; their sizes, and so every timing,
do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dchat_core import MessageId
from dchat_identity import ContactCard
from dchat_messaging import (
    BundleRejectedError,
    Content,
    DocumentDirectory,
    LocalEngines,
    MessageReceived,
    MessageRequests,
    Rejected,
)
from dchat_messaging.lowlevel import outbox_id
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayClient

from .._errors import SimulationError
from ._node import NodeClock, SimNode
from ._user_requests import BundleFetch, Fetcher, Put

if TYPE_CHECKING:
    from dchat_core import NodeId
    from dchat_identity import Identity
    from dchat_messaging import DeviceAddress, EngineEvent, MessagingEngine
    from dchat_messaging.testing import MemoryOutboxEntry
    from dchat_network.lowlevel import RelayBatch

    from ._loop import Timer
    from ._relay import RelayNode
    from ._simulation import Simulation

__all__ = ("SentRecord", "UserDurable", "UserNode", "UserParams", "text_digest")

_SEEN = "sim.entry."


def text_digest(text: str) -> str:
    """A short digest of a message text, for traces and checks."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class UserParams:
    """Timings of a user node, in seconds of its own clock.

    ``prekey_interval`` is how often the mailbox link asks the relay how many
    prekeys it holds (also once per new link). Loading the prekey secrets is
    the engine's most expensive step, so not every poll.
    """

    poll_interval: float = 1.0
    request_timeout: float = 5.0
    disk_latency: float = 0.002
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_in_flight: int = 4
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
    """A user node: sends through recipients' relays, fetches from its home relay.

    Args:
        sim: The simulation.
        name: Node name.
        clock: The node's clock.
        identity: The user's keys.
        home_relay: Name of the relay node holding this user's mailbox.
        home_relay_node: That relay's node id, pinned when fetching.
        params: Timings.
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
    ) -> None:
        super().__init__(sim, name, clock)
        card = ContactCard.issue(identity, name=name, relay=home_relay, relay_node=home_relay_node)
        self.durable = UserDurable(identity, card)
        self.params = params or UserParams()
        self.directory = DocumentDirectory()
        self.requests = MessageRequests(self.durable.store)
        self.engine = self._new_engine()
        self._in_flight: set[bytes] = set()
        self._fetching: dict[bytes, int] = {}
        self._session: Fetcher | None = None
        self._pump_timer: Timer | None = None
        self._prekeys_checked: float | None = None

    @property
    def card(self) -> ContactCard:
        """This user's contact card."""
        return self.durable.card

    engines: LocalEngines

    def _new_engine(self) -> MessagingEngine:
        """The engine and request policy over the durable store (at creation and each boot)."""
        self.requests.load()
        self.engines = LocalEngines(self.durable.store, self.directory, self.requests.dropped)
        self.engines.set_main(self.durable.identity, self.durable.card)
        engine = self.engines.main()
        assert engine is not None
        return engine

    def boot(self) -> None:
        """Forget in-flight work; start polling, fetching bundles, delivering the outbox."""
        self.engine = self._new_engine()
        self._in_flight = set()
        self._fetching = {}
        self._session = None
        self._pump_timer = None
        self._prekeys_checked = None
        self._schedule_poll()
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
        for device in self.directory.devices_of(recipient):
            record = SentRecord(bytes(mid).hex(), device.relay_node)
            self.durable.sent[outbox_id(mid, device.device_id)] = record
        waiting = self.engines.send(self.engine, recipient, content, now=now, copies=True)
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
            queued = self.engine.bundle_received(device, bundle, now=self.clock.now())
        except BundleRejectedError:
            self._bundle_failed(device, "bad-bundle")
            return
        self._fetching.pop(device.device_id, None)
        self.observe("session_set_up", queued=queued)
        self._pump()

    def _bundle_failed(self, device: DeviceAddress, reason: str) -> None:
        attempts = self._fetching.get(device.device_id, 0) + 1
        self._fetching[device.device_id] = attempts
        self.observe("bundle_failed", reason=reason, attempts=attempts)
        self.after(self._backoff(attempts), lambda: self._retry_bundle(device))

    def _retry_bundle(self, device: DeviceAddress) -> None:
        BundleFetch(self, device)

    def _backoff(self, attempts: int) -> float:
        exponential = self.params.backoff_base * float(2 ** min(attempts, 10))
        jitter: float = self.rng.uniform(0.5, 1.0)
        return min(self.params.backoff_max, exponential) * jitter

    def _pump(self) -> None:
        now = self.clock.now()
        store = self.durable.store
        free = self.params.max_in_flight - len(self._in_flight)
        for entry in store.due(now, free + len(self._in_flight)):
            if free > 0 and entry.message_id not in self._in_flight:
                self._in_flight.add(entry.message_id)
                free -= 1
                Put(self, entry)
        busy = self._in_flight
        waiting = [e.due for e in store.outbox.values() if e.due > now and e.message_id not in busy]
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        if waiting:
            self._pump_timer = self.after(min(waiting) - now, self._pump)

    def _mid(self, entry: MemoryOutboxEntry) -> str:
        sent = self.durable.sent.get(entry.message_id)
        return entry.message_id.hex() if sent is None else sent.mid

    def _stored(self, entry: MemoryOutboxEntry) -> None:
        self.observe("stored_seen", mid=self._mid(entry), attempts=entry.attempts + 1)

        def commit() -> None:
            self.durable.store.mark_sent(entry.message_id)
            self._in_flight.discard(entry.message_id)
            self._pump()

        self.after(self.params.disk_latency, commit)

    def _put_failed(self, entry: MemoryOutboxEntry, reason: str) -> None:
        attempts = entry.attempts + 1
        self.durable.store.mark_failed(entry.message_id, self.clock.now() + self._backoff(attempts))
        self._in_flight.discard(entry.message_id)
        self.observe("put_failed", mid=self._mid(entry), reason=reason, attempts=attempts)
        self._pump()

    # -- receiving ----------------------------------------------------------------

    def _schedule_poll(self) -> None:
        delay = self.params.poll_interval * self.rng.uniform(0.75, 1.25)
        self.after(delay, self._poll)

    def _poll(self) -> None:
        if self._session is None:
            self._session = Fetcher(self)
        elif self._session.state == "idle":
            self._session.refresh()
        self._schedule_poll()

    def _session_ended(self, session: Fetcher, reason: str) -> None:
        if self._session is session:
            self._session = None
            self._prekeys_checked = None
            self.observe("fetch_failed", reason=reason)

    def _prekeys_due(self) -> bool:
        now = self.clock.monotonic()
        last = self._prekeys_checked
        if last is not None and now - last < self.params.prekey_interval:
            return False
        self._prekeys_checked = now
        return True

    def _prekeys_held(self, held: int) -> tuple[bytes, list[tuple[int, bytes]], bool] | None:
        upload = self.engine.prekey_upload(held=held, now=self.clock.now())
        if upload is None:
            return None
        self.observe("prekeys_published", one_time=len(upload.one_time))
        return upload.last_resort, list(upload.one_time), upload.replace

    def _receive_batch(self, session: Fetcher, batch: RelayBatch) -> None:
        incarnation = self.incarnation
        self.observe("batch_received", items=len(batch.items))
        if self.incarnation != incarnation:
            return  # a fault hook crashed us on receipt
        ids = [entry_id for entry_id, _ in batch.items]

        def commit() -> None:
            for entry_id, raw in batch.items:
                self._accept(entry_id, raw)
            session.ack(ids, full=len(ids) >= self.params.fetch_limit)

        self.after(self.params.disk_latency, commit)

    def _accept(self, entry_id: bytes, raw: bytes) -> None:
        store = self.durable.store
        seen = _SEEN + entry_id.hex()
        with store.transaction():
            events = self.engine.receive(raw, now=self.clock.now())
            for event in events:
                if isinstance(event, MessageReceived):
                    store.put_state(seen, bytes(event.message_id))
                    self.requests.note(event, known=self.engines.is_me(event.sender))
        for event in events:
            self._report(event, store.get_state(seen))

    def _report(self, event: EngineEvent, carried: bytes | None) -> None:
        if isinstance(event, Rejected):
            if carried is not None and carried in self.durable.store.messages:
                self.observe("duplicate_dropped", mid=carried.hex())  # spent by the ratchet
            else:
                self.observe("rejected", reason=event.reason)
        elif isinstance(event, MessageReceived):
            mid = bytes(event.message_id).hex()
            if not event.new:
                self.observe("duplicate_dropped", mid=mid)
            elif event.kind == "text":
                self.observe(
                    "deliver", mid=mid, sender=str(event.sender), text=text_digest(event.text)
                )
        else:
            self.observe("session_reset", peer=str(event.peer))
