"""The simulated network: TCP-like streams, faults, partitions, crashes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_testing import SimulationError
from dchat_testing.sim import Endpoint, EventLoop, LinkProfile, Network


class Recorder:
    def __init__(self, endpoint: Endpoint) -> None:
        self.data: list[bytes] = []
        self.times: list[float] = []
        self.resets = 0
        endpoint.on_data = self.on_data
        endpoint.on_reset = self.on_reset

    def on_data(self, data: bytes) -> None:
        self.data.append(data)

    def on_reset(self) -> None:
        self.resets += 1


def make(profile: LinkProfile | None = None, seed: int = 1) -> tuple[EventLoop, Network]:
    loop = EventLoop()
    return loop, Network(loop, random.Random(seed), profile or LinkProfile())


def serve(net: Network, name: str) -> list[Recorder]:
    accepted: list[Recorder] = []
    net.listen(name, lambda endpoint: accepted.append(Recorder(endpoint)))
    return accepted


def test_bytes_arrive_in_order_then_eof() -> None:
    loop, net = make(LinkProfile(latency=0.05, jitter=0.05))
    server = serve(net, "b")
    client = net.connect("a", "b")
    for chunk in (b"one", b"two", b"three"):
        client.send(chunk)
    client.close()
    loop.run_until(10.0)
    assert server[0].data == [b"one", b"two", b"three", b""]
    assert net.live_connections() == 1  # the server has not closed its side
    server_end = net_endpoints(net)[1]
    server_end.close()
    loop.run_until(20.0)
    assert net.live_connections() == 0


def net_endpoints(net: Network) -> list[Endpoint]:
    return [end for conn in net._live.values() for end in conn.ends]


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=20),
    loss=st.floats(0, 0.5),
    jitter=st.floats(0, 1),
    spike=st.floats(0, 0.5),
    seed=st.integers(0, 2**32),
)
def test_whatever_the_faults_a_stream_is_a_prefix_never_reordered(
    chunks: list[bytes], loss: float, jitter: float, spike: float, seed: int
) -> None:
    profile = LinkProfile(jitter=jitter, spike=spike, loss=loss, max_retransmits=2, reset=0.05)
    loop, net = make(profile, seed)
    server = serve(net, "b")
    client = net.connect("a", "b")
    for chunk in chunks:
        client.send(chunk)
    loop.run_until(1000.0)
    sent = b"".join(chunks)
    received = b"".join(server[0].data) if server else b""
    assert sent.startswith(received)
    if received != sent:
        assert net.stats.resets == 1
        assert not server or server[0].resets == 1


def test_bandwidth_serialises_segments_on_a_pair() -> None:
    loop, net = make(LinkProfile(latency=0.0, jitter=0.0, bandwidth=1000.0))
    arrivals: list[float] = []
    net.listen("b", lambda e: setattr(e, "on_data", lambda d: arrivals.append(loop.now)))
    first, second = net.connect("a", "b"), net.connect("a", "b")
    first.send(b"x" * 500)
    second.send(b"y" * 500)
    loop.run_until(5.0)
    assert arrivals == [pytest.approx(0.5), pytest.approx(1.0)]


def test_loss_costs_retransmission_time() -> None:
    delays = {}
    for seed in range(20):
        loop, net = make(LinkProfile(latency=0.01, jitter=0.0, loss=0.5, rto=1.0), seed=seed)
        arrivals: list[float] = []
        net.listen("b", lambda e, a=arrivals, lp=loop: setattr(
            e, "on_data", lambda d: a.append(lp.now)))  # fmt: skip
        net.connect("a", "b").send(b"hello")
        loop.run_until(1000.0)
        if arrivals:
            delays[net.stats.retransmits] = arrivals[0]
    # k retransmissions of the segment cost 1 + 2 + ... + 2^(k-1) RTOs (the
    # dial's own delay is 10 ms here, it is not subject to loss).
    assert len(delays) > 1
    for retransmits, arrival in delays.items():
        assert arrival == pytest.approx(0.01 + (2**retransmits - 1), abs=1e-3)


def test_too_much_loss_resets_the_connection() -> None:
    loop, net = make(LinkProfile(loss=0.99, max_retransmits=1), seed=3)
    server = serve(net, "b")
    client = net.connect("a", "b")
    client_recorder = Recorder(client)
    client.send(b"hello")
    loop.run_until(100.0)
    assert net.stats.resets == 1
    assert client_recorder.resets == 1
    assert server[0].data == []


def test_a_cut_blackholes_silently_until_healed() -> None:
    loop, net = make()
    server = serve(net, "b")
    client = net.connect("a", "b")
    watcher = Recorder(client)
    loop.run_until(1.0)
    net.cut("b", "a")
    assert net.is_cut("a", "b")
    client.send(b"lost")
    loop.run_until(2.0)
    assert server[0].data == []
    assert watcher.resets == 0  # nobody is told: only timeouts notice
    assert net.connect("a", "b") is not None
    loop.run_until(3.0)
    assert len(server) == 1  # the dial across the cut never arrived
    net.heal("a", "b")
    net.connect("a", "b").send(b"after")
    loop.run_until(4.0)
    assert server[1].data == [b"after"]


def test_a_crashed_node_sends_what_was_in_flight_but_receives_nothing() -> None:
    loop, net = make(LinkProfile(latency=0.1, jitter=0.0))
    server = serve(net, "b")
    client = net.connect("a", "b")
    back = Recorder(client)
    loop.run_until(1.0)
    net_endpoints(net)[1].send(b"reply in flight")
    net.node_down("b")
    client.send(b"into the void")
    loop.run_until(2.0)
    assert back.data == [b"reply in flight"]
    assert server[0].data == []
    assert net.connect("a", "c") is not None  # nobody listens at c: dial vanishes


def test_abort_resets_the_peer() -> None:
    loop, net = make()
    server = serve(net, "b")
    client = net.connect("a", "b")
    loop.run_until(1.0)
    client.abort()
    loop.run_until(2.0)
    assert server[0].resets == 1


def test_profiles_are_validated_and_per_pair() -> None:
    with pytest.raises(SimulationError):
        LinkProfile(loss=1.0)
    with pytest.raises(SimulationError):
        LinkProfile(bandwidth=0)
    _, net = make()
    slow = LinkProfile(latency=2.0)
    net.set_profile("b", "a", slow)
    assert net.profile("a", "b") is slow
    assert net.profile("a", "c") is net.default
