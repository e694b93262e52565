"""Simulated nodes: skewed clocks, crash and restart, links over the network.

Theory of operation
-------------------
A :class:`SimNode` splits its state in two. Whatever a subclass keeps in
``self.durable`` models the disk: it survives :meth:`SimNode.crash`. Everything
else is rebuilt by :meth:`SimNode.boot` on every (re)start. A crash bumps the
node's *incarnation*; timers scheduled through :meth:`SimNode.after` belong to
the incarnation that set them and are dropped if it has ended, and the network
forgets the node's connections, so no callback of a dead incarnation ever runs.

:class:`SimLink` runs a real :class:`dchat_network.LinkConnection` (Noise XX
with identity binding) over a simulated :class:`Endpoint`: bytes from the
network go to ``receive_data``, the bytes it wants to send go back out, and its
events become calls on a :class:`LinkHandler`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from dchat_crypto import PrivateKey
from dchat_network import LinkProtocolError
from dchat_network.lowlevel import HandshakeComplete, LinkClosed, LinkConnection, MessageReceived

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from dchat_core import NodeId
    from dchat_crypto import SigningKey, VerifyKey

    from ._loop import Timer
    from ._network import Endpoint
    from ._simulation import ObsValue, Simulation

__all__ = ("LinkHandler", "NodeClock", "SimLink", "SimNode")

EPOCH = 1_700_000_000.0


class NodeClock:
    """A node's view of time: a :class:`dchat_core.Clock` with offset and drift.

    Args:
        sim: Supplies the true virtual time.
        offset: Seconds this node's wall clock is ahead (negative: behind).
        rate: How fast the node's clocks run relative to true time (1.0 = exact).
    """

    def __init__(self, sim: Simulation, *, offset: float = 0.0, rate: float = 1.0) -> None:
        self._sim = sim
        self.offset = offset
        self.rate = rate

    def now(self) -> float:
        """Seconds since the epoch, as this node believes."""
        return EPOCH + self.offset + self._sim.now * self.rate

    def monotonic(self) -> float:
        """This node's monotonic clock."""
        return self._sim.now * self.rate

    def to_true(self, local_seconds: float) -> float:
        """How long ``local_seconds`` on this node's clock lasts in true time."""
        return local_seconds / self.rate


class LinkHandler(Protocol):
    """Receives the events of one :class:`SimLink`."""

    def on_open(self, link: SimLink) -> None:
        """The handshake completed; ``link.peer_key`` is set."""

    def on_message(self, link: SimLink, data: bytes) -> None:
        """One application message arrived."""

    def on_closed(self, link: SimLink, reason: str) -> None:
        """The link ended without us closing it (EOF, reset, protocol error)."""


class SimNode:
    """Base of simulated nodes. Subclasses implement :meth:`boot`.

    Args:
        sim: The simulation.
        name: Unique node name (its network address).
        clock: The node's clock.
    """

    def __init__(self, sim: Simulation, name: str, clock: NodeClock) -> None:
        self.sim = sim
        self.name = name
        self.clock = clock
        self.rng: random.Random = sim.rng(f"node:{name}")
        self.up = False
        self.incarnation = 0
        self.crashes = 0
        self._up_since = 0.0
        self._uptime = 0.0

    def boot(self) -> None:
        """Build the volatile state from ``self.durable`` and start working."""
        raise NotImplementedError

    def start(self) -> None:
        """Bring the node up."""
        self.up = True
        self._up_since = self.sim.now
        self.observe("up", incarnation=self.incarnation)
        self.boot()

    def crash(self) -> None:
        """Lose all volatile state and every connection, keep ``durable``."""
        if not self.up:
            return
        self.up = False
        self.crashes += 1
        self.incarnation += 1
        self._uptime += self.sim.now - self._up_since
        self.sim.network.node_down(self.name)
        self.observe("crash")

    def restart(self) -> None:
        """Start again after a crash."""
        if not self.up:
            self.start()

    def uptime(self) -> float:
        """Virtual seconds this node has been up."""
        return self._uptime + (self.sim.now - self._up_since if self.up else 0.0)

    def after(self, local_seconds: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` after ``local_seconds`` of this node's clock, unless it crashes."""
        incarnation = self.incarnation

        def guarded() -> None:
            if self.up and self.incarnation == incarnation:
                action()

        return self.sim.loop.call_later(self.clock.to_true(local_seconds), guarded)

    def observe(self, kind: str, **data: ObsValue) -> None:
        """Report an observation from this node."""
        self.sim.observe(self.name, kind, **data)

    def dial(
        self,
        peer: str,
        handler: LinkHandler,
        *,
        node_key: SigningKey,
        expected_peer: NodeId | None = None,
    ) -> SimLink:
        """Open a link to ``peer`` (we are the Noise initiator)."""
        endpoint = self.sim.network.connect(self.name, peer)
        conn = LinkConnection(
            initiator=True,
            node_key=node_key,
            expected_peer=expected_peer,
            static=PrivateKey.from_bytes(self.rng.randbytes(32)),
        )
        return SimLink(endpoint, conn, handler)

    def answer(self, endpoint: Endpoint, handler: LinkHandler, *, node_key: SigningKey) -> SimLink:
        """Serve an accepted connection (we are the Noise responder)."""
        static = PrivateKey.from_bytes(self.rng.randbytes(32))
        conn = LinkConnection(initiator=False, node_key=node_key, static=static)
        return SimLink(endpoint, conn, handler)


class SimLink:
    """A real link protocol object wired to a simulated connection."""

    def __init__(self, endpoint: Endpoint, conn: LinkConnection, handler: LinkHandler) -> None:
        self._endpoint = endpoint
        self._conn = conn
        self._handler = handler
        self.peer_key: VerifyKey | None = None
        self.closed = False
        endpoint.on_data = self._on_data
        endpoint.on_reset = self._on_reset
        self._flush()

    @property
    def is_open(self) -> bool:
        """Handshake done and not closed."""
        return self.peer_key is not None and not self.closed

    def send(self, data: bytes) -> None:
        """Send one application message (the link must be open)."""
        self._conn.send_message(data)
        self._flush()

    def close(self) -> None:
        """Close cleanly; no further callbacks."""
        if not self.closed:
            self.closed = True
            self._conn.close()
            self._endpoint.close()

    def abort(self) -> None:
        """Reset the connection; no further callbacks."""
        if not self.closed:
            self.closed = True
            self._endpoint.abort()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._endpoint.send(data)

    def _fail(self, reason: str) -> None:
        self.abort()
        self._handler.on_closed(self, reason)

    def _on_reset(self) -> None:
        if not self.closed:
            self.closed = True
            self._handler.on_closed(self, "reset")

    def _on_data(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._conn.receive_data(data)
        except LinkProtocolError as exc:
            self._fail(type(exc).__name__)
            return
        self._flush()
        while not self.closed and (event := self._conn.next_event()) is not None:
            self._dispatch(event)

    def _dispatch(self, event: HandshakeComplete | MessageReceived | LinkClosed) -> None:
        if isinstance(event, HandshakeComplete):
            self.peer_key = event.peer_key
            self._handler.on_open(self)
        elif isinstance(event, MessageReceived):
            self._handler.on_message(self, event.data)
        else:
            self.close()
            self._handler.on_closed(self, "eof")
