"""QueuedLink and read_known_peer over real TCP on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from dchat_core import NodeId
from dchat_crypto import SigningKey
from dchat_network import Link, LinkClosedError, connect, serve_links
from dchat_network.lowlevel import QueuedLink, read_known_peer
from dchat_testing import wait_until_async

CLIENT, SERVER = SigningKey.generate(), SigningKey.generate()
WAIT = 10  # generous bound on every wait


class Schedule:
    """A DialSchedule that records what the link told it."""

    def __init__(self) -> None:
        self.connected = False
        self.dropped = 0
        self.failures: list[str] = []
        self.dials = 0

    def dial_failed(self, kind: str = "DchatError") -> float:
        self.failures.append(kind)
        return 0.01

    def dialled(self) -> None:
        self.dials += 1


async def upper(link: Link) -> None:
    """Answer every frame in capitals; ``b"bye"`` closes the link from this side."""
    while True:
        try:
            data = await link.receive()
        except LinkClosedError:
            return
        if data == b"bye":
            return
        await link.send(data.upper())


@asynccontextmanager
async def server() -> AsyncIterator[tuple[str, int]]:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            serve = partial(serve_links, node_key=SERVER)
            address = await nursery.start(serve, upper, "127.0.0.1", 0)
        yield address
        nursery.cancel_scope.cancel()


def link_to(
    address: tuple[str, int], frames: list[bytes], *, keep: bool = True
) -> QueuedLink[Schedule]:
    async def on_frame(link: QueuedLink[Schedule], data: bytes) -> bool:
        frames.append(data)
        return keep

    peer = NodeId.derive(SERVER.public_key.to_bytes())
    return QueuedLink(*address, peer, CLIENT, Schedule(), on_frame, queue=4)


async def test_posted_frames_are_sent_and_answers_come_back() -> None:
    frames: list[bytes] = []
    async with server() as address, trio.open_nursery() as nursery:
        link = link_to(address, frames)
        assert link.post(b"one")
        assert link.post(b"two")
        nursery.start_soon(link.run)
        await wait_until_async(lambda: frames == [b"ONE", b"TWO"], timeout=WAIT)
        assert link.stats.connected
        assert link.stats.dials == 1
        assert link.stats.dropped == 0
        nursery.cancel_scope.cancel()


async def test_a_full_queue_drops_and_counts() -> None:
    async with server() as address:
        link = link_to(address, [])
        assert all(link.post(b"x") for _ in range(4))  # not running: nothing drains
        assert not link.post(b"x")
        assert link.stats.dropped == 1


async def test_a_failed_dial_waits_as_the_schedule_says_and_retries() -> None:
    frames: list[bytes] = []
    with trio.fail_after(WAIT):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        await listener.aclose()  # nobody listens there now
    async with trio.open_nursery() as nursery:
        link = link_to(("127.0.0.1", port), frames)
        nursery.start_soon(link.run)
        await wait_until_async(lambda: len(link.stats.failures) >= 2, timeout=WAIT)
        assert not link.stats.connected
        assert link.stats.dials == 0
        nursery.cancel_scope.cancel()


async def test_a_refused_frame_or_a_closed_link_redials() -> None:
    frames: list[bytes] = []
    async with server() as address, trio.open_nursery() as nursery:
        link = link_to(address, frames, keep=False)  # the first answer ends the link
        link.post(b"a")
        nursery.start_soon(link.run)
        await wait_until_async(lambda: frames == [b"A"], timeout=WAIT)
        link.post(b"b")
        await wait_until_async(
            lambda: link.stats.dials >= 2 and frames == [b"A", b"B"], timeout=WAIT
        )
        link.post(b"bye")  # the peer closes: the link is dialled again
        await wait_until_async(lambda: link.stats.dials >= 3, timeout=WAIT)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def known_peers_server(
    allowed: set[NodeId], frames: list[bytes]
) -> AsyncIterator[tuple[str, int]]:
    async def on_frame(link: Link, data: bytes) -> bool:
        frames.append(data)
        if data != b"bad":
            await link.send(data.upper())
        return data != b"bad"

    handler = partial(read_known_peer, allowed=allowed, on_frame=on_frame)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            serve = partial(serve_links, node_key=SERVER)
            address = await nursery.start(serve, handler, "127.0.0.1", 0)
        yield address
        nursery.cancel_scope.cancel()


async def test_a_known_peer_is_read_until_it_sends_a_refused_frame() -> None:
    frames: list[bytes] = []
    client = NodeId.derive(CLIENT.public_key.to_bytes())
    async with known_peers_server({client}, frames) as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            try:
                await link.send(b"hello")
                assert await link.receive() == b"HELLO"
                await link.send(b"bad")
                with pytest.raises(LinkClosedError):
                    await link.receive()
            finally:
                await link.aclose()
    assert frames == [b"hello", b"bad"]


async def test_an_unknown_node_is_refused_before_any_frame_is_read() -> None:
    frames: list[bytes] = []
    async with known_peers_server(set(), frames) as address:
        with trio.fail_after(WAIT):
            link = await connect(*address, node_key=CLIENT)
            try:
                with contextlib.suppress(LinkClosedError):
                    await link.send(b"hello")
                with pytest.raises(LinkClosedError):
                    await link.receive()
            finally:
                await link.aclose()
    assert frames == []
