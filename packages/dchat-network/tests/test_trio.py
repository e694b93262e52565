"""The trio shell over real TCP on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from dchat_core import NodeId
from dchat_crypto import SigningKey
from dchat_network import (
    DEFAULT_MAX_MESSAGE,
    HandshakeFailedError,
    Link,
    LinkClosedError,
    LinkStats,
    LinkTimeoutError,
    RelayBusyError,
    connect,
    open_link,
    serve_links,
)
from dchat_network.lowlevel import (
    ConnectionGate,
    FrameTooLargeError,
    LinkConnection,
    refusal_frame,
)
from dchat_testing import wait_until_async

CLIENT, SERVER, OTHER = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
WAIT = 10  # generous bound on every wait; the tests finish in milliseconds


def node_id(key: SigningKey) -> NodeId:
    return NodeId.derive(key.public_key.to_bytes())


async def echo(link: Link) -> None:
    while True:
        try:
            message = await link.receive()
        except LinkClosedError:
            return
        await link.send(message)


@asynccontextmanager
async def server(
    handler: Callable[[Link], Awaitable[None]] = echo,
    handshake_timeout: float = 5.0,
    stats: LinkStats | None = None,
    gate: ConnectionGate | None = None,
) -> AsyncIterator[tuple[str, int]]:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            address = await nursery.start(
                lambda task_status: serve_links(
                    handler,
                    "127.0.0.1",
                    0,
                    node_key=SERVER,
                    handshake_timeout=handshake_timeout,
                    stats=stats,
                    gate=gate,
                    task_status=task_status,
                )
            )
        yield address
        nursery.cancel_scope.cancel()


async def assert_served(address: tuple[str, int], message: bytes = b"ping") -> None:
    """A well-behaved client still gets a proven, working link."""
    with trio.fail_after(WAIT):
        link = await connect(*address, node_key=CLIENT, expected_peer=node_id(SERVER))
        try:
            assert link.peer_id == node_id(SERVER)
            assert link.peer_key == SERVER.public_key
            assert await link.request(message) == message
        finally:
            await link.aclose()


async def wait_for_close(stream: trio.SocketStream) -> bytes:
    """Read until the server closes the connection; return what it sent."""
    received = bytearray()
    with trio.fail_after(WAIT):
        while chunk := await stream.receive_some():
            received += chunk
    return bytes(received)


async def test_serve_links_reports_the_bound_address() -> None:
    async with server() as (host, port):
        assert host == "127.0.0.1"
        assert port > 0


async def test_connect_and_echo_round_trip() -> None:
    async with server() as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            for message in (b"", b"x", bytes(range(256)) * 300, bytes(DEFAULT_MAX_MESSAGE)):
                await link.send(message)
                assert await link.receive() == message
            await link.aclose()


async def test_server_handler_sees_the_clients_identity() -> None:
    seen: list[NodeId] = []

    async def remember(link: Link) -> None:
        seen.append(link.peer_id)
        await link.send(b"hello")

    async with server(remember) as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            assert await link.receive() == b"hello"
            # The handler returned, so the server closes the link.
            with pytest.raises(LinkClosedError):
                await link.receive()
            await link.aclose()
    assert seen == [node_id(CLIENT)]


async def test_many_messages_pipelined_arrive_in_order() -> None:
    async with server() as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            async with trio.open_nursery() as nursery:

                async def send_all() -> None:
                    for i in range(500):
                        await link.send(i.to_bytes(4, "big") * 100)

                nursery.start_soon(send_all)
                for i in range(500):
                    assert await link.receive() == i.to_bytes(4, "big") * 100
            await link.aclose()


async def test_garbage_client_does_not_stop_the_listener(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dchat.network")
    async with server() as address:
        with trio.fail_after(WAIT):
            stream = await trio.open_tcp_stream(*address)
            await stream.send_all(b"\x00\x05hello, this is not Noise")
            assert await wait_for_close(stream) == b""
            await stream.aclose()
        await assert_served(address)
    assert "HandshakeFailedError" in caplog.text


async def test_the_listener_counts_links_and_handshake_failures_by_kind() -> None:
    stats = LinkStats()
    async with server(handshake_timeout=0.3, stats=stats) as address:
        with trio.fail_after(WAIT):
            garbage = await trio.open_tcp_stream(*address)
            await garbage.send_all(b"\x00\x05hello, this is not Noise")
            await wait_for_close(garbage)
            silent = await trio.open_tcp_stream(*address)
            await wait_for_close(silent)  # the handshake timeout
            link = await connect(*address, node_key=CLIENT)
            assert await link.request(b"x") == b"x"
            assert stats.open == 1
            await link.aclose()
            await garbage.aclose()
            await silent.aclose()
        await wait_until_async(lambda: stats.open == 0, timeout=WAIT, what="the close counted")
    assert stats.accepted == 3
    assert dict(stats.handshake_failures) == {"HandshakeFailedError": 1, "LinkTimeoutError": 1}


async def test_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    async with server(handshake_timeout=0.3) as address:
        with trio.fail_after(WAIT):
            silent = await trio.open_tcp_stream(*address)
            # While the silent client hangs in its handshake, others are served.
            await assert_served(address)
            start = trio.current_time()
            assert await wait_for_close(silent) == b""
            assert trio.current_time() - start < 5
            await silent.aclose()
        await assert_served(address)


async def test_client_that_stops_mid_handshake_is_dropped() -> None:
    async with server(handshake_timeout=0.3) as address:
        with trio.fail_after(WAIT):
            stream = await trio.open_tcp_stream(*address)
            conn = LinkConnection(initiator=True, node_key=CLIENT)
            await stream.send_all(conn.data_to_send())
            # The server answers with message 2, then gives up waiting for message 3.
            assert len(await wait_for_close(stream)) > 2
            await stream.aclose()
        await assert_served(address)


async def test_wrong_expected_peer_fails_and_listener_survives() -> None:
    async with server() as address:
        with trio.fail_after(WAIT), pytest.raises(HandshakeFailedError):
            await connect(*address, node_key=CLIENT, expected_peer=node_id(OTHER))
        await assert_served(address)


async def test_crashing_handler_does_not_stop_the_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky(link: Link) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("handler bug")
        await echo(link)

    async with server(flaky) as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            with pytest.raises(LinkClosedError):
                await link.receive()
            await link.aclose()
        await assert_served(address)
    assert "link handler crashed" in caplog.text


async def test_connect_to_a_closed_port_is_a_link_closed_error() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # bound, never listening: connections are refused
    with trio.fail_after(WAIT), pytest.raises(LinkClosedError):
        await connect("127.0.0.1", port, node_key=CLIENT)


async def test_receive_times_out_with_link_timeout_error() -> None:
    async with server(handshake_timeout=5) as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            with pytest.raises(LinkTimeoutError):
                await link.receive(timeout=0.05)
            # A timed-out receive loses nothing: the link still works.
            assert await link.request(b"after timeout") == b"after timeout"
            await link.aclose()


async def test_handshake_times_out_against_a_silent_server() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def mute(stream: trio.SocketStream) -> None:
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, mute, listeners)
        with trio.fail_after(WAIT), pytest.raises(LinkTimeoutError):
            await connect("127.0.0.1", port, node_key=CLIENT, timeout=0.2)
        nursery.cancel_scope.cancel()


async def test_oversize_send_raises_and_keeps_the_link() -> None:
    async with server() as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            with pytest.raises(FrameTooLargeError):
                await link.send(bytes(DEFAULT_MAX_MESSAGE + 1))
            assert await link.request(b"ok") == b"ok"
            await link.aclose()


async def test_open_link_over_an_in_memory_stream_pair() -> None:
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            links: dict[str, Link] = {}

            async def side(name: str, stream: trio.abc.Stream, key: SigningKey) -> None:
                links[name] = await open_link(
                    stream, initiator=name == "client", node_key=key, max_message=10
                )

            nursery.start_soon(side, "client", left, CLIENT)
            nursery.start_soon(side, "server", right, SERVER)
        await links["client"].send(b"0123456789")
        assert await links["server"].receive() == b"0123456789"
        with pytest.raises(FrameTooLargeError):
            await links["client"].send(b"01234567890")
        await links["client"].aclose()
        with pytest.raises(LinkClosedError):
            await links["server"].receive()


async def open_pair(left: trio.abc.Stream, right: trio.abc.Stream) -> tuple[Link, Link]:
    links: list[Link] = []
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:

            async def side(stream: trio.abc.Stream, initiator: bool) -> None:
                key = CLIENT if initiator else SERVER
                links.append(await open_link(stream, initiator=initiator, node_key=key))

            nursery.start_soon(side, left, True)
            nursery.start_soon(side, right, False)
    client = next(link for link in links if link.peer_id == node_id(SERVER))
    server = next(link for link in links if link.peer_id == node_id(CLIENT))
    return client, server


async def test_receive_after_peer_close_keeps_raising_link_closed() -> None:
    client, server = await open_pair(*trio.testing.memory_stream_pair())
    with trio.fail_after(WAIT):
        await client.aclose()
        for _ in range(2):
            with pytest.raises(LinkClosedError):
                await server.receive()
        await server.aclose()
        with pytest.raises(LinkClosedError):
            await client.receive()


async def test_send_interrupted_mid_write_poisons_later_sends() -> None:
    client, server = await open_pair(*trio.testing.lockstep_stream_pair())
    with trio.fail_after(WAIT):
        # Nobody reads: the 300 KB message cannot be written before the deadline.
        with pytest.raises(LinkTimeoutError):
            await client.send(bytes(300_000), timeout=0.05)
        # A later send would follow a torn frame, so it must refuse, not corrupt.
        with pytest.raises(LinkClosedError):
            await client.send(b"next", timeout=0.05)
        await client.aclose()
        await server.aclose()


class HangingClose(trio.abc.Stream):
    """A stream whose aclose never returns (think: a TLS close_notify that stalls)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await trio.sleep(3600)  # "forever", yet finite so a regression fails instead of hanging


async def test_aclose_is_bounded_even_if_the_stream_hangs(autojump_clock: object) -> None:
    left, right = trio.testing.memory_stream_pair()
    client, server = await open_pair(HangingClose(left), right)
    start = trio.current_time()
    with trio.fail_after(WAIT):
        await client.aclose()
    assert trio.current_time() - start == pytest.approx(1, abs=0.01)
    await server.aclose()


class OneAtATime:
    """A gate that admits one connection at a time and refuses the rest (``connections``)."""

    def __init__(self) -> None:
        self.open = 0
        self.closed: list[str | None] = []

    def connect(self, address: str) -> str | None:
        if self.open:
            return "connections"
        self.open += 1
        return None

    def retry_ms(self, address: str, verdict: str) -> int:
        return 2500

    def disconnect(self, address: str, verdict: str | None) -> None:
        self.open -= verdict is None
        self.closed.append(verdict)


async def test_a_refused_connection_gets_a_refusal_frame_instead_of_a_handshake() -> None:
    gate = OneAtATime()
    async with server(gate=gate) as address:
        with trio.fail_after(WAIT):
            admitted = await connect(*address, node_key=CLIENT)
            # A dialer over the cap gets busy, with the gate's reason and wait ...
            with pytest.raises(RelayBusyError) as caught:
                await connect(*address, node_key=OTHER)
            assert (caught.value.reason, caught.value.retry_after) == ("connections", 2.5)
            # ... and the listener answered its message 1 with the refusal frame and
            # nothing else: no handshake message 2, so no public-key work.
            raw = await trio.open_tcp_stream(*address)
            dialer = LinkConnection(initiator=True, node_key=OTHER)
            await raw.send_all(dialer.data_to_send())
            assert await wait_for_close(raw) == refusal_frame("connections", 2500)
            await raw.aclose()
            assert await admitted.request(b"still served") == b"still served"
            await admitted.aclose()
        await wait_until_async(lambda: len(gate.closed) == 3, timeout=WAIT, what="closes")
        assert sorted(gate.closed, key=str) == [None, "connections", "connections"]
        await assert_served(address)  # the cap is free again
