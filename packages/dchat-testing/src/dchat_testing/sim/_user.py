"""The user role in the simulator: seal, deposit with retries, fetch, store, ack.

Theory of operation
-------------------
This follows the node's user service (``dchat_node._user_service``) step for
step, with the real protocol objects and a simulated disk:

* **send**: the app's message is sealed (real :func:`dchat_messaging.seal_message`)
  and put in the durable outbox. A deposit dials the recipient's relay under a
  fresh link key and sends ``put``; on ``stored`` the outbox entry is deleted
  (a disk write, ``disk_latency`` later: a crash in between re-sends it). A
  failure (reset, timeout, error reply) reschedules the entry with exponential
  backoff and jitter, forever.
* **receive**: every ``poll_interval`` the user fetches from its home relay over
  a link proven with its mailbox key (the relay pinned by node id). Each batch is
  opened and verified, new message ids are committed to the durable inbox (the
  app sees a message exactly when it is committed) and only then acknowledged.
  A message id already in the inbox is not delivered again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dchat_core import MessageId
from dchat_crypto import SigningKey
from dchat_identity import ContactCard
from dchat_messaging import (
    EnvelopeRejectedError,
    MalformedEnvelopeError,
    SealedEnvelope,
    open_envelope,
    seal_message,
)
from dchat_network import RelayAcked, RelayBatch, RelayClient, RelayProtocolError, RelayStored

from .._errors import SimulationError
from ._node import NodeClock, SimLink, SimNode

if TYPE_CHECKING:
    from dchat_core import NodeId
    from dchat_identity import Identity
    from dchat_messaging import OpenedMessage

    from ._loop import Timer
    from ._simulation import Simulation

__all__ = ("OutboxItem", "UserDurable", "UserNode", "UserParams", "text_digest")


def text_digest(text: str) -> str:
    """A short digest of a message text, for traces and checks."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class UserParams:
    """Timings of a user node, in seconds of its own clock."""

    poll_interval: float = 1.0
    request_timeout: float = 5.0
    disk_latency: float = 0.002
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_in_flight: int = 4
    fetch_limit: int = 64


@dataclass(slots=True)
class OutboxItem:
    """A sealed envelope waiting for its relay's ``stored``."""

    mid: bytes
    relay: str
    relay_node: NodeId | None
    mailbox: bytes
    envelope: bytes
    attempts: int = 0
    due: float = 0.0


@dataclass(slots=True)
class UserDurable:
    """What survives a crash: keys, card, outbox and inbox."""

    identity: Identity
    card: ContactCard
    outbox: dict[bytes, OutboxItem] = field(default_factory=dict)
    inbox: dict[bytes, str] = field(default_factory=dict)


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
        self._in_flight: set[bytes] = set()
        self._session: _Fetcher | None = None
        self._pump_timer: Timer | None = None

    @property
    def card(self) -> ContactCard:
        """This user's contact card."""
        return self.durable.card

    def boot(self) -> None:
        """Forget in-flight work; start polling and delivering the outbox."""
        self._in_flight = set()
        self._session = None
        self._pump_timer = None
        self._schedule_poll()
        self._pump()

    # -- sending ------------------------------------------------------------------

    def submit(self, recipient: ContactCard, text: str) -> bytes:
        """The app sends ``text``: seal it and queue it durably. Returns the message id.

        Raises:
            SimulationError: the node is down.
        """
        if not self.up:
            raise SimulationError(f"{self.name} is down")
        mid = MessageId(self.rng.randbytes(MessageId.SIZE))
        now_ms = int(self.clock.now() * 1000)
        _, envelope = seal_message(
            self.durable.identity, recipient, text, now_ms=now_ms, message_id=mid
        )
        item = OutboxItem(
            bytes(mid), recipient.relay, recipient.relay_node, bytes(envelope.mailbox),
            envelope.to_bytes(),
        )  # fmt: skip
        self.durable.outbox[item.mid] = item
        self.observe("submit", mid=item.mid.hex(), to=str(recipient.identity_id))
        self._pump()
        return item.mid

    def _pump(self) -> None:
        now = self.clock.now()
        next_due: float | None = None
        for item in list(self.durable.outbox.values()):
            if item.mid in self._in_flight:
                continue
            if item.due > now:
                next_due = item.due if next_due is None else min(next_due, item.due)
            elif len(self._in_flight) < self.params.max_in_flight:
                self._in_flight.add(item.mid)
                _Put(self, item)
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        if next_due is not None:
            self._pump_timer = self.after(next_due - now, self._pump)

    def _stored(self, item: OutboxItem) -> None:
        self.observe("stored_seen", mid=item.mid.hex(), attempts=item.attempts + 1)

        def commit() -> None:
            self.durable.outbox.pop(item.mid, None)
            self._in_flight.discard(item.mid)
            self._pump()

        self.after(self.params.disk_latency, commit)

    def _put_failed(self, item: OutboxItem, reason: str) -> None:
        item.attempts += 1
        exponential = self.params.backoff_base * 2 ** min(item.attempts, 10)
        backoff = min(self.params.backoff_max, exponential)
        item.due = self.clock.now() + backoff * self.rng.uniform(0.5, 1.0)
        self._in_flight.discard(item.mid)
        self.observe("put_failed", mid=item.mid.hex(), reason=reason, attempts=item.attempts)
        self._pump()

    # -- receiving ----------------------------------------------------------------

    def _schedule_poll(self) -> None:
        delay = self.params.poll_interval * self.rng.uniform(0.75, 1.25)
        self.after(delay, self._poll)

    def _poll(self) -> None:
        if self._session is None:
            self._session = _Fetcher(self)
        elif self._session.state == "idle":
            self._session.fetch()
        self._schedule_poll()

    def _session_ended(self, session: _Fetcher, reason: str) -> None:
        if self._session is session:
            self._session = None
            self.observe("fetch_failed", reason=reason)

    def _receive_batch(self, session: _Fetcher, batch: RelayBatch) -> None:
        opened: list[OpenedMessage] = []
        for _entry_id, raw in batch.items:
            try:
                opened.append(open_envelope(self.durable.identity, SealedEnvelope.from_bytes(raw)))
            except (EnvelopeRejectedError, MalformedEnvelopeError):
                self.observe("rejected")
        incarnation = self.incarnation
        self.observe("batch_received", items=len(batch.items))
        if self.incarnation != incarnation:
            return  # a fault hook crashed us on receipt
        ids = [entry_id for entry_id, _ in batch.items]

        def commit() -> None:
            self._commit(opened)
            session.ack(ids, full=len(ids) >= self.params.fetch_limit)

        self.after(self.params.disk_latency, commit)

    def _commit(self, messages: list[OpenedMessage]) -> None:
        for message in messages:
            mid = bytes(message.message_id)
            if mid in self.durable.inbox:
                self.observe("duplicate_dropped", mid=mid.hex())
                continue
            self.durable.inbox[mid] = message.text
            self.observe(
                "deliver",
                mid=mid.hex(),
                sender=str(message.sender),
                text=text_digest(message.text),
            )


class _Put:
    """One deposit attempt: dial the relay, ``put``, wait for ``stored``."""

    def __init__(self, user: UserNode, item: OutboxItem) -> None:
        self._user = user
        self._item = item
        self._client = RelayClient()
        self._done = False
        # A fresh key per deposit: the relay cannot link deposits to a sender.
        key = SigningKey.from_bytes(user.rng.randbytes(32))
        self._timer = user.after(user.params.request_timeout, self._timeout)
        self._link = user.dial(item.relay, self, node_key=key, expected_peer=item.relay_node)

    def on_open(self, link: SimLink) -> None:
        link.send(self._client.put(self._item.mailbox, self._item.envelope))

    def on_message(self, link: SimLink, data: bytes) -> None:
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._finish(ok=False, reason="refused")
            return
        self._finish(ok=isinstance(reply, RelayStored), reason="unexpected")

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._finish(ok=False, reason=reason)

    def _timeout(self) -> None:
        self._finish(ok=False, reason="timeout")

    def _finish(self, *, ok: bool, reason: str) -> None:
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        if ok:
            self._link.close()
            self._user._stored(self._item)
        else:
            self._link.abort()
            self._user._put_failed(self._item, reason)


class _Fetcher:
    """The mailbox link: fetch, (commit), ack, repeated while batches come full."""

    def __init__(self, user: UserNode) -> None:
        self._user = user
        self._client = RelayClient()
        self._mailbox = bytes(user.durable.identity.mailbox_id)
        self._more = False
        self.state = "connecting"
        self._timer: Timer | None = user.after(user.params.request_timeout, self._timeout)
        self._link = user.dial(
            user.card.relay,
            self,
            node_key=user.durable.identity.mailbox_key,
            expected_peer=user.card.relay_node,
        )

    def fetch(self) -> None:
        self._request("fetching", self._client.fetch(self._mailbox, self._user.params.fetch_limit))

    def ack(self, ids: list[bytes], *, full: bool) -> None:
        if self._link.is_open:
            self._more = full
            self._request("acking", self._client.ack(self._mailbox, ids))

    def _request(self, state: str, data: bytes) -> None:
        self.state = state
        self._arm()
        self._link.send(data)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._user.after(self._user.params.request_timeout, self._timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_open(self, link: SimLink) -> None:
        self.fetch()

    def on_message(self, link: SimLink, data: bytes) -> None:
        self._disarm()
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._fail("refused")
            return
        if isinstance(reply, RelayBatch) and reply.items:
            self.state = "committing"
            self._user._receive_batch(self, reply)
        elif isinstance(reply, RelayBatch | RelayAcked):
            self.state = "idle"
            if isinstance(reply, RelayAcked) and self._more:
                self.fetch()

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._fail(reason)

    def _timeout(self) -> None:
        self._fail("timeout")

    def _fail(self, reason: str) -> None:
        self._disarm()
        self._link.abort()
        self._user._session_ended(self, reason)
