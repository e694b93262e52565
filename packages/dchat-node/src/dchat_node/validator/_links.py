"""Outbound links from a validator to each peer: dial, pin, send, reconnect.

One :class:`PeerLink` per peer owns a bounded queue. Posting never blocks the
consensus task: when the queue is full (peer down or slow) the message is
dropped and counted, which is safe because the engine re-sends its current
proposal and votes every ``rebroadcast_ms`` and a peer that fell behind
catches up with block sync. The link's counters and redial schedule are
dchat-chain's :class:`~dchat_chain.lowlevel.PeerStats`; the handshake pins the
peer's node id (``expected_peer``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_chain.lowlevel import PeerStats, sync_response_payload
from dchat_core import DchatError
from dchat_network import LinkTimeoutError, connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_crypto import SigningKey
    from dchat_network import Link

    from ._wire import PeerAddress

__all__ = ("PeerLink",)

_log = logging.getLogger("dchat.validator")
QUEUE: Final = 512
DIAL_TIMEOUT: Final = 5.0
SEND_TIMEOUT: Final = 10.0
READ_TIMEOUT: Final = 30.0


class PeerLink:
    """The outbound side of the link to one peer validator.

    Args:
        address: Who and where the peer is.
        node_key: This validator's link (account) key.
        on_sync_response: Called with each sync response the peer sends back.
    """

    def __init__(
        self,
        address: PeerAddress,
        node_key: SigningKey,
        on_sync_response: Callable[[PeerLink, bytes], Awaitable[None]],
    ) -> None:
        self.address = address
        self._key = node_key
        self._on_sync = on_sync_response
        self._send, self._recv = trio.open_memory_channel[bytes](QUEUE)
        self.stats = PeerStats(str(address.node_id))

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
                    self.address.host,
                    self.address.port,
                    node_key=self._key,
                    expected_peer=self.address.node_id,
                    timeout=DIAL_TIMEOUT,
                )
            except DchatError as exc:
                _log.debug("dial %s failed: %s", self.address.node_id, exc)
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
                continue  # only sync responses come this way: silence is normal
            try:
                payload = sync_response_payload(data)
            except DchatError:
                _log.info("peer %s sent an unexpected message; closing", self.address.node_id)
                return
            await self._on_sync(self, payload)
