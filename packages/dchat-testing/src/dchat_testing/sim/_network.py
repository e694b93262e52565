"""A simulated network of TCP-like connections between named nodes.

Theory of operation
-------------------
dchat links run over TCP, so the simulator models what TCP shows an
application, not raw packets (see docs/rationale.md, "Simulator"):

* Inside one connection, bytes arrive complete and in order. A lost segment is
  retransmitted by TCP: the application sees only a delay (``rto``, doubling per
  retry) and, after ``max_retransmits`` losses in a row, a connection reset.
* A connection can be reset at any segment (``reset``): both ends learn of it and
  whatever was in flight is gone. That is where messages get lost, and clients
  retry, which is how duplicate requests reach servers.
* Latency is ``latency`` plus exponential jitter plus, with probability
  ``spike``, an exponential spike: heavy tails make client timeouts fire while
  the request is still on its way, another source of duplicates.
* Reordering happens between connections (each segment draws its own delay), and
  a later segment of one connection never overtakes an earlier one
  (head-of-line blocking).
* Each direction of a node pair is a bottleneck of ``bandwidth`` bytes per
  second, shared by all connections on it.
* A partition (a cut pair) drops traffic silently: segments and connection
  attempts across the cut vanish and the connection is dead, exactly as a
  blackholing router looks to TCP: the ends learn only from their own timeouts.
* A crashed node's connections die silently too; bytes it had already sent still
  arrive, bytes sent to it vanish.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import SimulationError

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from ._loop import EventLoop

__all__ = ("Connection", "Endpoint", "LinkProfile", "Network", "NetworkStats")


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How one pair of nodes is connected. Times in seconds, bandwidth in bytes/s."""

    latency: float = 0.01
    jitter: float = 0.002
    spike: float = 0.0
    spike_latency: float = 2.0
    loss: float = 0.0
    rto: float = 0.2
    max_retransmits: int = 6
    reset: float = 0.0
    bandwidth: float = 12_500_000.0

    def __post_init__(self) -> None:
        probabilities = (self.spike, self.loss, self.reset)
        if any(not 0.0 <= p < 1.0 for p in probabilities):
            raise SimulationError("spike, loss and reset are probabilities in [0, 1)")
        if min(self.latency, self.jitter, self.spike_latency, self.rto) < 0:
            raise SimulationError("times cannot be negative")
        if self.bandwidth <= 0 or self.max_retransmits < 0:
            raise SimulationError("bandwidth must be positive, max_retransmits >= 0")


@dataclass(slots=True)
class NetworkStats:
    """Counters of what the network did."""

    connections: int = 0
    segments: int = 0
    bytes: int = 0
    retransmits: int = 0
    resets: int = 0
    blackholed: int = 0


class Endpoint:
    """One end of a connection, as a node sees it.

    The owner sets ``on_data`` (called with each chunk, ``b""`` at end of stream)
    and ``on_reset`` (called if the connection is reset).
    """

    __slots__ = ("closed", "conn", "node", "on_data", "on_reset", "peer", "side")

    def __init__(self, conn: Connection, side: int, node: str, peer: str) -> None:
        self.conn = conn
        self.side = side
        self.node = node
        self.peer = peer
        self.closed = False
        self.on_data: Callable[[bytes], None] | None = None
        self.on_reset: Callable[[], None] | None = None

    def send(self, data: bytes) -> None:
        """Send bytes to the peer (ignored once this end is closed)."""
        if data and not self.closed:
            self.conn.net._transmit(self.conn, self.side, data)

    def close(self) -> None:
        """Half-close cleanly: the peer reads ``b""`` after all data sent so far."""
        if not self.closed:
            self.conn.net._transmit(self.conn, self.side, b"")
            self._detach()

    def abort(self) -> None:
        """Drop the connection; the peer sees a reset (if the RST gets through)."""
        if not self.closed:
            self._detach()
            self.conn.net._abort(self.conn, self.side)

    def _detach(self) -> None:
        self.closed = True
        self.on_data = None
        self.on_reset = None


@dataclass(eq=False, slots=True)
class Connection:
    """A connection between ``names[0]`` (the dialer) and ``names[1]``."""

    net: Network
    cid: int
    names: tuple[str, str]
    ends: list[Endpoint] = field(default_factory=list)
    last_arrival: list[float] = field(default_factory=lambda: [0.0, 0.0])
    doomed: list[bool] = field(default_factory=lambda: [False, False])
    dead: bool = False


class Network:
    """Nodes by name, the links between them, partitions, and live connections.

    Args:
        loop: The event loop that carries every delivery.
        rng: The only source of randomness for network behaviour.
        default: The profile of any pair without its own.
    """

    def __init__(self, loop: EventLoop, rng: random.Random, default: LinkProfile) -> None:
        self._loop = loop
        self._rng = rng
        self.default = default
        self._profiles: dict[tuple[str, str], LinkProfile] = {}
        self._cuts: set[tuple[str, str]] = set()
        self._busy: dict[tuple[str, str], float] = {}
        self._listeners: dict[str, Callable[[Endpoint], None]] = {}
        self._live: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self.stats = NetworkStats()
        self.on_segment: Callable[[str, str, int, bytes], None] | None = None

    # -- topology ---------------------------------------------------------------

    def set_profile(self, a: str, b: str, profile: LinkProfile) -> None:
        """Use ``profile`` for traffic between ``a`` and ``b`` (both directions)."""
        self._profiles[_pair(a, b)] = profile

    def profile(self, a: str, b: str) -> LinkProfile:
        """The profile in force between ``a`` and ``b``."""
        return self._profiles.get(_pair(a, b), self.default)

    def cut(self, a: str, b: str) -> None:
        """Partition ``a`` from ``b``: traffic between them vanishes until healed."""
        self._cuts.add(_pair(a, b))
        for conn in list(self._live.values()):
            if _pair(*conn.names) == _pair(a, b):
                self._blackhole(conn)

    def heal(self, a: str, b: str) -> None:
        """Remove the cut between ``a`` and ``b``, if any."""
        self._cuts.discard(_pair(a, b))

    def heal_all(self) -> None:
        """Remove every cut."""
        self._cuts.clear()

    def is_cut(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are partitioned from each other."""
        return _pair(a, b) in self._cuts

    def cuts(self) -> list[tuple[str, str]]:
        """The cut pairs, sorted."""
        return sorted(self._cuts)

    def listen(self, node: str, accept: Callable[[Endpoint], None]) -> None:
        """Accept connections to ``node``; ``accept`` gets each server endpoint."""
        self._listeners[node] = accept

    def node_down(self, node: str) -> None:
        """``node`` crashed: it stops listening and its connections die silently."""
        self._listeners.pop(node, None)
        for conn in list(self._live.values()):
            if node in conn.names:
                side = conn.names.index(node)
                conn.ends[side]._detach()
                self._forget_if_done(conn)

    # -- connections -------------------------------------------------------------

    def connect(self, src: str, dst: str) -> Endpoint:
        """Dial ``dst`` from ``src``; returns the dialer's endpoint at once.

        Bytes sent before the peer accepted are queued behind the handshake. If
        ``dst`` is down or cut off, nothing ever arrives (the dialer times out).
        """
        conn = Connection(self, next(self._ids), (src, dst))
        conn.ends = [Endpoint(conn, 0, src, dst), Endpoint(conn, 1, dst, src)]
        self._live[conn.cid] = conn
        self.stats.connections += 1
        if dst not in self._listeners or self.is_cut(src, dst):
            self._blackhole(conn)
            return conn.ends[0]
        syn = self._loop.now + self._delay(self.profile(src, dst))
        conn.last_arrival[0] = syn
        self._loop.call_at(syn, lambda: self._accept(conn))
        return conn.ends[0]

    def live_connections(self) -> int:
        """Connections with at least one open end."""
        return len(self._live)

    def _accept(self, conn: Connection) -> None:
        accept = self._listeners.get(conn.names[1])
        if conn.dead or accept is None or self.is_cut(*conn.names):
            self._blackhole(conn)
            return
        accept(conn.ends[1])

    def _delay(self, profile: LinkProfile) -> float:
        delay = profile.latency
        if profile.jitter:
            delay += self._rng.expovariate(1.0 / profile.jitter)
        if profile.spike and self._rng.random() < profile.spike:
            delay += self._rng.expovariate(1.0 / profile.spike_latency)
        return delay

    def _transmit(self, conn: Connection, side: int, data: bytes) -> None:
        src, dst = conn.names[side], conn.names[1 - side]
        if conn.dead or conn.doomed[side]:
            return
        if self.is_cut(src, dst):
            self._blackhole(conn)
            return
        profile = self.profile(src, dst)
        self.stats.segments += 1
        self.stats.bytes += len(data)
        start = max(self._loop.now, self._busy.get((src, dst), 0.0))
        sent = start + len(data) / profile.bandwidth
        self._busy[(src, dst)] = sent
        delay = self._delay(profile)
        for attempt in range(profile.max_retransmits + 1):
            if not (profile.loss and self._rng.random() < profile.loss):
                break
            self.stats.retransmits += 1
            delay += profile.rto * 2**attempt
        else:
            self._doom(conn, side, sent + delay)
            return
        if profile.reset and self._rng.random() < profile.reset:
            self._doom(conn, side, sent + delay)
            return
        arrive = max(sent + delay, conn.last_arrival[side])
        conn.last_arrival[side] = arrive
        self._loop.call_at(arrive, lambda: self._arrive(conn, side, data))

    def _doom(self, conn: Connection, side: int, when: float) -> None:
        """This segment never gets through: reset after everything before it arrived."""
        # Later segments of this direction would sit behind the hole, so TCP
        # never delivers them: stop sending them at all.
        conn.doomed[side] = True
        when = max(when, conn.last_arrival[side])
        conn.last_arrival[side] = when
        self._loop.call_at(when, lambda: self._reset(conn))

    def _arrive(self, conn: Connection, side: int, data: bytes) -> None:
        if conn.dead:
            return
        if self.is_cut(*conn.names):
            self._blackhole(conn)
            return
        receiver = conn.ends[1 - side]
        if self.on_segment is not None:
            self.on_segment(conn.names[side], receiver.node, conn.cid, data)
        if receiver.on_data is not None:
            receiver.on_data(data)
        if not data:
            self._forget_if_done(conn)

    def _abort(self, conn: Connection, side: int) -> None:
        """One end aborted: a RST travels to the other end."""
        if conn.dead:
            self._forget_if_done(conn)
            return
        profile = self.profile(*conn.names)
        arrive = max(self._loop.now + self._delay(profile), conn.last_arrival[side])
        self._loop.call_at(arrive, lambda: self._reset(conn))

    def _reset(self, conn: Connection) -> None:
        if conn.dead:
            return
        conn.dead = True
        self.stats.resets += 1
        for end in conn.ends:
            callback = end.on_reset
            end._detach()
            if callback is not None:
                callback()
        self._live.pop(conn.cid, None)

    def _blackhole(self, conn: Connection) -> None:
        if not conn.dead:
            conn.dead = True
            self.stats.blackholed += 1
        self._forget_if_done(conn)

    def _forget_if_done(self, conn: Connection) -> None:
        # A dead connection whose ends are still open stays listed: its owners
        # have not noticed yet (they will time out), but it carries nothing.
        if all(end.closed for end in conn.ends):
            self._live.pop(conn.cid, None)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
