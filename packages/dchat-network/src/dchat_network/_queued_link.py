"""Links between known peers, in trio: outbound fed by a bounded queue, inbound read.

Theory of operation
-------------------
:class:`QueuedLink` dials a peer whose node id it pins (``expected_peer``),
drains its queue into the link and hands every frame the peer sends back to
``on_frame``; when either direction fails, the link is closed and dialled
again. Posting never blocks the caller: when the queue is full (the peer is
down or slow) the frame is dropped and counted, so the caller must be able to
lose frames (a validator re-sends its votes, and a peer that fell behind
catches up by sync). The counters and the redial wait are the caller's
:class:`DialSchedule` (a sans-IO object: ``dial_failed`` returns the seconds
to wait before the next dial). Reading times out quietly: a peer that only
answers now and then is not dead for being silent.

:func:`read_known_peer` is the other side, a handler for
:func:`~dchat_network.serve_links`: it serves only peers whose node id (proven
in the handshake) is in ``allowed``, and hands their frames to ``on_frame``
until the link ends, stays silent for ``idle_timeout`` seconds (peers that keep
a link up send often) or ``on_frame`` refuses a frame (returns False).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

import trio

from dchat_core import DchatError

from ._errors import LinkClosedError, LinkTimeoutError
from ._trio import connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Container

    from dchat_core import NodeId
    from dchat_crypto import SigningKey

    from ._trio import Link

__all__ = ("DialSchedule", "QueuedLink", "read_known_peer")

_log = logging.getLogger("dchat.network")
QUEUE: Final = 512
DIAL_TIMEOUT: Final = 5.0
SEND_TIMEOUT: Final = 10.0
READ_TIMEOUT: Final = 30.0
IDLE_TIMEOUT: Final = 60.0


class DialSchedule(Protocol):
    """What :class:`QueuedLink` counts and asks while it keeps a link up."""

    connected: bool
    dropped: int

    def dial_failed(self, kind: str = ...) -> float:
        """A dial failed with the error class named ``kind``: seconds until the next one."""
        ...

    def dialled(self) -> None:
        """A dial succeeded."""
        ...


_S = TypeVar("_S", bound=DialSchedule)


class QueuedLink(Generic[_S]):
    """The outbound side of the link to one peer.

    Args:
        host: The peer's host.
        port: The peer's port.
        peer: The node id the peer must prove in the handshake.
        node_key: This node's link key.
        stats: Counters and the redial schedule (see :class:`DialSchedule`).
        on_frame: Called with each frame the peer sends; False closes the link.
        queue: Frames waiting to be sent before :meth:`post` drops.
    """

    def __init__(
        self,
        host: str,
        port: int,
        peer: NodeId,
        node_key: SigningKey,
        stats: _S,
        on_frame: Callable[[QueuedLink[_S], bytes], Awaitable[bool]],
        *,
        queue: int = QUEUE,
    ) -> None:
        self.host, self.port, self.peer = host, port, peer
        self.stats = stats
        self._key = node_key
        self._on_frame = on_frame
        self._send, self._recv = trio.open_memory_channel[bytes](queue)

    def post(self, data: bytes) -> bool:
        """Queue ``data`` for the peer; False (and counted) when the queue is full."""
        try:
            self._send.send_nowait(data)
        except trio.WouldBlock:
            self.stats.dropped += 1
            return False
        return True

    async def run(self) -> None:
        """Keep a link to the peer open and drain the queue into it, forever."""
        while True:
            try:
                link = await connect(
                    self.host,
                    self.port,
                    node_key=self._key,
                    expected_peer=self.peer,
                    timeout=DIAL_TIMEOUT,
                )
            except DchatError as exc:
                _log.debug("dial %s failed: %s", self.peer, exc)
                await trio.sleep(self.stats.dial_failed(type(exc).__name__))
                continue
            self.stats.dialled()
            await self._serve(link)

    async def _serve(self, link: Link) -> None:
        self.stats.connected = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._guard, self._read, link, nursery.cancel_scope)
                await self._guard(self._write, link, nursery.cancel_scope)
        finally:
            self.stats.connected = False
            await link.aclose()

    @staticmethod
    async def _guard(
        work: Callable[[Link], Awaitable[None]], link: Link, scope: trio.CancelScope
    ) -> None:
        # Either direction failing ends the link; the run loop redials.
        try:
            await work(link)
        except DchatError as exc:
            _log.info("link to peer ended: %s: %s", type(exc).__name__, exc)
        finally:
            scope.cancel()

    async def _write(self, link: Link) -> None:
        async for data in self._recv:
            await link.send(data, timeout=SEND_TIMEOUT)

    async def _read(self, link: Link) -> None:
        while True:
            try:
                data = await link.receive(timeout=READ_TIMEOUT)
            except LinkTimeoutError:
                continue  # silence is normal
            if not await self._on_frame(self, data):
                return


async def read_known_peer(
    link: Link,
    allowed: Container[NodeId],
    on_frame: Callable[[Link, bytes], Awaitable[bool]],
    *,
    idle_timeout: float = IDLE_TIMEOUT,
) -> None:
    """Hand an allowed peer's frames to ``on_frame`` until the link ends (see the module)."""
    if link.peer_id not in allowed:
        _log.info("refused a link from a node that is not a configured peer")
        return
    while True:
        try:
            data = await link.receive(timeout=idle_timeout)
        except (LinkClosedError, LinkTimeoutError):
            return
        if not await on_frame(link, data):
            _log.info("peer sent a malformed message; closing its link")
            return
