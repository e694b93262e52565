"""The relay role in the simulator, and a relay with a planted bug.

:class:`RelayNode` serves the real :class:`dchat_network.RelayServer` over real
links. Like the node's relay service it handles requests one at a time in
arrival order (one writer); each takes ``disk_latency`` (the commit) before the
reply goes out, so a crash can fall between a durable write and its reply. Its
:class:`MemoryMailboxStore` and :class:`MemoryPrekeyStore` are the durable part
and survive crashes.

Held pulls work as in :class:`dchat_network.RelayHost`, over the same sans-IO
bookkeeping (:class:`dchat_network.lowlevel.PullWakeups`): the relay notes the
owner's version just before the server handles a request, bumps the mailboxes
each reply names (``notify``) right after, and a ``pull`` the server parks
waits for a bump past the version it noted (then the server's ``resume``
answers it, queued behind the writer like any request) or for its wait to
end (a timer). A parked pull dies with its link, and every parked pull with
a crash.

:class:`DeleteOnFetchRelayServer` is *wrong on purpose*: it deletes envelopes as
soon as it hands them out, before the recipient acknowledged them. The
simulator must catch it (``--relay delete-on-fetch``); it proves the checkers
can fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import MailboxId, NodeId
from dchat_messaging import SealedEnvelope
from dchat_network import RelayServer
from dchat_network.lowlevel import PullWakeups, RelayBatch, RelayPull

from .._mailbox import MemoryMailboxStore, MemoryPrekeyStore
from ._node import NodeClock, SimLink, SimNode

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_crypto import SigningKey
    from dchat_network import MailboxStore, PrekeyStore, RelayReply
    from dchat_network.lowlevel import PutBudget, TopicRead

    from ._loop import Timer
    from ._network import Endpoint
    from ._simulation import Simulation

__all__ = ("RELAY_VARIANTS", "DeleteOnFetchRelayServer", "RelayNode", "envelope_mailbox")

IDLE_TIMEOUT: Final = 60.0


envelope_mailbox = SealedEnvelope.mailbox_of
"""The mailbox a sealed envelope names, or ``None`` if it is malformed."""


class DeleteOnFetchRelayServer(RelayServer):
    """PLANTED BUG: deletes envelopes when they are fetched, not when acknowledged."""

    def __init__(
        self,
        store: MailboxStore,
        mailbox_of: Callable[[bytes], bytes | None],
        *,
        prekeys: PrekeyStore | None = None,
    ) -> None:
        super().__init__(store, mailbox_of, prekeys=prekeys)
        self._bug_store = store

    def handle(
        self, owner: bytes, data: bytes, now: float, budget: PutBudget | None = None
    ) -> RelayReply:
        """Answer like the real server, then drop whatever the batch handed out."""
        return self._drop(owner, super().handle(owner, data, now, budget))

    def resume(self, pull: RelayPull | TopicRead) -> RelayReply:
        """Answer a held pull like the real server, then drop what it handed out."""
        owner = pull.mailbox if isinstance(pull, RelayPull) else b""
        return self._drop(owner, super().resume(pull))

    def _drop(self, owner: bytes, reply: RelayReply) -> RelayReply:
        if isinstance(reply.message, RelayBatch) and reply.message.items:
            self._bug_store.ack(owner, [entry for entry, _ in reply.message.items])
        return reply


class RelayFactory(Protocol):
    """Makes a relay server over the node's durable stores (``RelayServer`` itself)."""

    def __call__(
        self,
        store: MailboxStore,
        envelope_mailbox: Callable[[bytes], bytes | None],
        /,
        *,
        prekeys: PrekeyStore | None = None,
    ) -> RelayServer: ...


#: Relay protocol implementations the simulator can run, by ``--relay`` name.
RELAY_VARIANTS: Final[dict[str, RelayFactory]] = {
    "real": RelayServer,
    "delete-on-fetch": DeleteOnFetchRelayServer,
}


class _Session:
    """One accepted link: the peer's mailbox, its idle timer, its held pull."""

    __slots__ = ("idle", "link", "owner", "parked", "wait")

    def __init__(self) -> None:
        self.owner = b""
        self.link: SimLink | None = None
        self.idle: Timer | None = None
        self.parked: tuple[RelayPull, int] | None = None
        """A held pull and the owner's version noted before the server looked."""
        self.wait: Timer | None = None


class RelayNode(SimNode):
    """A relay: durable mailboxes, served over links with real Noise and relay protocol.

    Args:
        sim: The simulation.
        name: Node name.
        clock: The node's clock.
        node_key: The relay's long-lived link key (durable).
        variant: A key of :data:`RELAY_VARIANTS`.
        disk_latency: Seconds (node clock) each request takes to commit.
    """

    def __init__(
        self,
        sim: Simulation,
        name: str,
        clock: NodeClock,
        *,
        node_key: SigningKey,
        variant: str = "real",
        disk_latency: float = 0.002,
    ) -> None:
        super().__init__(sim, name, clock)
        self.node_key = node_key
        self.store = MemoryMailboxStore()
        self.prekeys = MemoryPrekeyStore()
        self._factory = RELAY_VARIANTS[variant]
        self._disk = disk_latency
        self._writer_free = 0.0
        self.server: RelayServer | None = None
        self.wakeups = PullWakeups()
        self._parked: dict[bytes, list[_Session]] = {}

    @property
    def node_id(self) -> NodeId:
        """The relay's node id (what users pin)."""
        return NodeId.derive(self.node_key.public_key.to_bytes())

    def boot(self) -> None:
        """Open the durable store, listen for links."""
        self.server = self._factory(self.store, envelope_mailbox, prekeys=self.prekeys)
        self._writer_free = 0.0
        self.wakeups = PullWakeups()
        self._parked = {}
        self.sim.network.listen(self.name, self._accept)

    def serve_out_of_band(self, owner: bytes, data: bytes) -> bytes:
        """Answer one request from ``owner``'s mailbox without a link (world set-up)."""
        server = self._factory(self.store, envelope_mailbox, prekeys=self.prekeys)
        return server.handle(owner, data, self.clock.now()).data

    def _accept(self, endpoint: Endpoint) -> None:
        session = _Session()
        handler = _RelayHandler(self, session)
        session.link = self.answer(endpoint, handler, node_key=self.node_key)
        self._touch(session)

    def _touch(self, session: _Session) -> None:
        # An idle link is closed: a peer that vanished (crash, partition) must
        # not pin a connection forever.
        if session.idle is not None:
            session.idle.cancel()
        session.idle = self.after(IDLE_TIMEOUT, lambda: self._idle_out(session))

    def _idle_out(self, session: _Session) -> None:
        if session.link is not None:
            session.link.abort()
        self.closed(session)

    def opened(self, session: _Session) -> None:
        """A link is up: watch its owner's mailbox for held pulls."""
        self.wakeups.opened(session.owner)

    def closed(self, session: _Session) -> None:
        """A link is gone: forget its held pull and, with its last link, its owner's version."""
        if session.idle is not None:
            session.idle.cancel()
        self._unpark(session)
        if session.link is not None and session.owner:
            session.link = None
            self.wakeups.closed(session.owner)

    def request(self, session: _Session, data: bytes) -> None:
        """Queue a request behind the single writer; reply once it is committed."""
        self.observe("relay_input", size=len(data), payload=data)
        self._touch(session)
        self._queue(lambda: self._serve(session, data))

    def _queue(self, work: Callable[[], None]) -> None:
        now = self.clock.monotonic()
        self._writer_free = max(now, self._writer_free) + self._disk
        self.after(self._writer_free - now, work)

    def _serve(self, session: _Session, data: bytes) -> None:
        assert self.server is not None
        seen = self.wakeups.version(session.owner)  # before the server looks: see PullWakeups
        reply = self.server.handle(session.owner, data, self.clock.now())
        self._wake(reply.notify)
        if isinstance(reply.park, RelayPull) and self._live(session):  # (it hosts no topics)
            self._park(session, reply.park, seen)
            return
        self._answer(session, reply)

    def _live(self, session: _Session) -> bool:
        return session.link is not None and session.link.is_open

    def _park(self, session: _Session, pull: RelayPull, seen: int) -> None:
        session.parked = (pull, seen)
        session.wait = self.after(pull.wait_ms / 1000, lambda: self._resume(session))
        self._parked.setdefault(session.owner, []).append(session)
        self.observe("relay_parked")

    def _unpark(self, session: _Session) -> RelayPull | None:
        if session.parked is None:
            return None
        pull, session.parked = session.parked[0], None
        if session.wait is not None:
            session.wait.cancel()
            session.wait = None
        waiting = self._parked.get(session.owner, [])
        waiting.remove(session)
        if not waiting:
            self._parked.pop(session.owner, None)
        return pull

    def _wake(self, mailboxes: tuple[bytes, ...]) -> None:
        for mailbox in self.wakeups.bump(mailboxes):
            for session in list(self._parked.get(mailbox, ())):
                assert session.parked is not None
                if self.wakeups.changed(mailbox, session.parked[1]):
                    self._resume(session)

    def _resume(self, session: _Session) -> None:
        """Answer a held pull (woken or timed out), behind the writer like any request."""
        pull = self._unpark(session)
        if pull is None:
            return

        def answer() -> None:
            assert self.server is not None
            self._answer(session, self.server.resume(pull))

        self._queue(answer)

    def _answer(self, session: _Session, reply: RelayReply) -> None:
        message = reply.message
        self.observe("relay_reply", type=type(message).__name__)
        link = session.link
        if link is None or not link.is_open:
            return
        self._touch(session)
        link.send(reply.data)
        if isinstance(message, RelayBatch) and message.items:
            self.observe("relay_batch_sent", items=len(message.items))
        if reply.close:
            link.close()
            self.closed(session)


class _RelayHandler:
    """Link events of one relay session."""

    def __init__(self, relay: RelayNode, session: _Session) -> None:
        self._relay = relay
        self._session = session

    def on_open(self, link: SimLink) -> None:
        assert link.peer_key is not None
        self._session.owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        self._relay.opened(self._session)

    def on_message(self, link: SimLink, data: bytes) -> None:
        self._relay.request(self._session, data)

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._relay.closed(self._session)
