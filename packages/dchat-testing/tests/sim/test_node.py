"""Simulated nodes: real links over the simulated network, clocks, crashes."""

from __future__ import annotations

import pytest

from dchat_core import NodeId
from dchat_testing import make_signing_key
from dchat_testing.sim import LinkProfile, NodeClock, SimLink, SimNode, Simulation


class Echo(SimNode):
    """Accepts links and echoes every message; counts its timer ticks."""

    def __init__(self, sim: Simulation, name: str, clock: NodeClock) -> None:
        super().__init__(sim, name, clock)
        self.key = make_signing_key(self.rng)
        self.ticks = 0
        self.received: list[bytes] = []

    def boot(self) -> None:
        self.sim.network.listen(self.name, self._accept)
        self.after(1.0, self._tick)

    def _tick(self) -> None:
        self.ticks += 1
        self.after(1.0, self._tick)

    def _accept(self, endpoint) -> None:  # type: ignore[no-untyped-def]
        self.answer(endpoint, self, node_key=self.key)

    def on_open(self, link: SimLink) -> None:
        pass

    def on_message(self, link: SimLink, data: bytes) -> None:
        self.received.append(data)
        link.send(data[::-1])

    def on_closed(self, link: SimLink, reason: str) -> None:
        pass


class Client:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_open(self, link: SimLink) -> None:
        self.events.append(("open", link.peer_key))
        link.send(b"hello")

    def on_message(self, link: SimLink, data: bytes) -> None:
        self.events.append(("message", data))

    def on_closed(self, link: SimLink, reason: str) -> None:
        self.events.append(("closed", reason))


def world(profile: LinkProfile | None = None) -> tuple[Simulation, Echo, Echo]:
    sim = Simulation(7, profile=profile)
    server = Echo(sim, "server", NodeClock(sim))
    dialer = Echo(sim, "dialer", NodeClock(sim, offset=-5.0, rate=2.0))
    sim.add_node(server)
    sim.add_node(dialer)
    return sim, server, dialer


def test_a_real_noise_link_runs_over_the_simulated_network() -> None:
    sim, server, dialer = world()
    client = Client()
    expected = NodeId.derive(server.key.public_key.to_bytes())
    dialer.dial("server", client, node_key=dialer.key, expected_peer=expected)
    sim.run(1.0)
    assert client.events == [("open", server.key.public_key), ("message", b"olleh")]
    assert server.received == [b"hello"]


def test_a_wrong_pinned_peer_fails_the_handshake() -> None:
    sim, server, dialer = world()
    client = Client()
    wrong = NodeId.derive(dialer.key.public_key.to_bytes())
    dialer.dial("server", client, node_key=dialer.key, expected_peer=wrong)
    sim.run(1.0)
    assert client.events == [("closed", "HandshakeFailedError")]
    assert server.received == []


def test_node_clocks_are_skewed_and_drift() -> None:
    sim, server, dialer = world()
    sim.run(10.0)
    assert dialer.clock.now() == pytest.approx(server.clock.now() - 5.0 + 10.0)
    assert dialer.clock.monotonic() == pytest.approx(20.0)
    # The dialer's "1 s" timer fires every 0.5 true seconds.
    assert (server.ticks, dialer.ticks) == (10, 20)


def test_a_crash_stops_timers_and_links_and_a_restart_reboots() -> None:
    sim, server, dialer = world(LinkProfile(latency=0.5, jitter=0.0))
    client = Client()
    dialer.dial("server", client, node_key=dialer.key)
    sim.run(1.2)  # handshake done, "hello" on its way
    server.crash()
    sim.run(5.0)
    assert server.ticks == 1
    assert server.received == []
    assert client.events == [("open", server.key.public_key)]  # silence, no reset
    server.restart()
    sim.run(7.0)
    assert server.ticks == 3
    assert server.crashes == 1
    assert server.incarnation == 1
    assert server.uptime() == pytest.approx(1.2 + 2.0)
