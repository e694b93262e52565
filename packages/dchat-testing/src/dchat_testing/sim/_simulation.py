"""The simulation: one seed, one event loop, one network, nodes, observers.

Theory of operation
-------------------
A :class:`Simulation` owns everything that changes during a run, and every
random choice comes from generators derived from ``(label, seed)``: the network,
each node, the workload and key generation each draw from their own stream, so
adding a node does not change what the network does to the others.

Nodes report what they do as :class:`Observation` objects (``sim.observe``).
Each observation is written to the trace and handed to every
:class:`Invariant` (which may report :class:`Violation` objects) and to every
subscriber registered with :meth:`Simulation.on` (scenarios use that to inject
faults at interesting moments, e.g. crash a relay right after it sent a batch).
A run stops at the first violation: the seed replays it.

The trace records every observation and every segment on the wire, by size:
bytes produced by the messaging engine's cryptography are not reproducible
(see :mod:`._determinism`), everything the trace holds is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .._errors import SimulationError
from ._determinism import seeded_key_generation
from ._loop import EventLoop, Trace
from ._network import LinkProfile, Network

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._node import SimNode

__all__ = ("Invariant", "ObsValue", "Observation", "Simulation", "Violation")

ObsValue = str | int | float | bytes


@dataclass(frozen=True, slots=True)
class Observation:
    """Something a node did, at a virtual time."""

    time: float
    node: str
    kind: str
    data: dict[str, ObsValue]


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant failed."""

    invariant: str
    time: float
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant} at t={self.time:.3f}s: {self.detail}"


class Invariant(Protocol):
    """A property checked against every observation and at the end of a run.

    Later work (the chain) adds its own: "no two blocks committed at one height"
    watches ``block_committed`` observations, "progress after healing" checks
    the height in :meth:`finish`.
    """

    name: str

    def observe(self, obs: Observation) -> Iterable[Violation]:
        """Check one observation; return the violations it reveals."""
        ...

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        """Check the end state, after faults stopped and the system settled."""
        ...


class Simulation:
    """A deterministic world for one seed.

    Args:
        seed: The run's seed.
        label: Separates the random streams of different scenarios.
        profile: The default link profile.
    """

    def __init__(
        self, seed: int, *, label: str = "sim", profile: LinkProfile | None = None
    ) -> None:
        self.seed = seed
        self.label = label
        self.loop = EventLoop()
        self.trace = Trace()
        self.network = Network(self.loop, self.rng("network"), profile or LinkProfile())
        self.network.on_segment = self._trace_segment
        self.nodes: dict[str, SimNode] = {}
        self.invariants: list[Invariant] = []
        self.violations: list[Violation] = []
        self.faults_enabled = True
        self._subscribers: dict[str, list[Callable[[Observation], None]]] = {}
        self._keys = self.rng("keys")

    def rng(self, purpose: str) -> random.Random:
        """A generator for one purpose, derived from the label and seed only."""
        return random.Random(f"{self.label}:{self.seed}:{purpose}")

    @property
    def now(self) -> float:
        """The current virtual time."""
        return self.loop.now

    def add_node(self, node: SimNode) -> None:
        """Register (and start) a node; names are unique."""
        if node.name in self.nodes:
            raise SimulationError(f"node {node.name!r} exists already")
        self.nodes[node.name] = node
        with seeded_key_generation(self._keys):
            node.start()

    def add_invariant(self, invariant: Invariant) -> None:
        """Check ``invariant`` from now on."""
        self.invariants.append(invariant)

    def on(self, kind: str, callback: Callable[[Observation], None]) -> None:
        """Call ``callback`` with every observation of ``kind``."""
        self._subscribers.setdefault(kind, []).append(callback)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run a scenario action at virtual time ``when``."""
        self.loop.call_at(when, action)

    def observe(self, node: str, kind: str, **data: ObsValue) -> None:
        """Record what ``node`` did; check invariants; notify subscribers."""
        obs = Observation(self.now, node, kind, data)
        self.trace.record(self.now, node, _describe(kind, data))
        for invariant in self.invariants:
            self.violations.extend(invariant.observe(obs))
        for callback in self._subscribers.get(kind, ()):
            callback(obs)

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        """Advance to virtual time ``until``, or until ``stop()`` or a violation."""

        def done() -> bool:
            return bool(self.violations) or (stop is not None and stop())

        with seeded_key_generation(self._keys):
            self.loop.run_until(until, done)

    def heal(self) -> None:
        """End all faults: stop injecting, remove partitions, restart crashed nodes."""
        self.faults_enabled = False
        self.network.heal_all()
        self.observe("sim", "heal")
        with seeded_key_generation(self._keys):
            for node in self.nodes.values():
                if not node.up:
                    node.restart()

    def finish(self) -> list[Violation]:
        """Run every invariant's end-of-run check; returns all violations so far."""
        for invariant in self.invariants:
            self.violations.extend(invariant.finish(self))
        return list(self.violations)

    def node_seconds(self) -> float:
        """Virtual seconds that nodes were up, summed over nodes."""
        return sum(node.uptime() for node in self.nodes.values())

    def _trace_segment(self, src: str, dst: str, cid: int, data: bytes) -> None:
        self.trace.record(self.now, src, f"seg>{dst} c{cid} {_short(data)}")


def _short(data: bytes) -> str:
    # Sizes only: the messaging engine's ciphertexts carry OS randomness
    # (ML-KEM encapsulation, nonces), so their bytes differ between runs of
    # one seed while their sizes, and every timing, do not.
    return f"{len(data)}b"


def _describe(kind: str, data: dict[str, ObsValue]) -> str:
    parts = [kind]
    for key, value in data.items():
        text = _short(value) if isinstance(value, bytes) else str(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)
