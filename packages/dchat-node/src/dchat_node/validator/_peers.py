"""The validator's side of inbound peer links.

Inbound links are accepted only from the configured peers (the handshake
proved the node id). Messages are decoded by dchat-chain's validator wire
(:func:`dchat_chain.lowlevel.decode_inbound`): consensus messages go to the
engine task's queue, gossip to the admission task, and sync requests are
answered on the same link from the block store (in a worker thread). A
malformed message closes the link.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from dchat_chain.lowlevel import PeerTag, SyncRequest, decode_inbound, encode_peer_message
from dchat_core import DchatError, NodeId
from dchat_network import LinkClosedError, LinkTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from typing import Protocol

    from dchat_chain.lowlevel import SyncResponse
    from dchat_network import Link

    class _Validator(Protocol):
        """What the inbound side needs of the validator service."""

        def inbox_put(self, payload: bytes) -> Awaitable[None]: ...
        def admit_gossip(self, txs: list[bytes]) -> Awaitable[None]: ...
        def serve_sync(self, request: SyncRequest) -> Awaitable[SyncResponse]: ...


__all__ = ("InboundHandler",)

_log = logging.getLogger("dchat.validator")
IDLE_TIMEOUT: Final = 60.0  # peers re-send every second; a silent link is dead
SEND_TIMEOUT: Final = 30.0


class InboundHandler:
    """Serves links that peers dialled to us."""

    def __init__(self, service: _Validator, allowed: set[NodeId]) -> None:
        self._service = service
        self._allowed = allowed

    async def handle(self, link: Link) -> None:
        """Read one peer's traffic until the link ends (``serve_links`` closes it)."""
        if link.peer_id not in self._allowed:
            _log.info("refused a link from a node that is not a configured peer")
            return
        while True:
            try:
                data = await link.receive(timeout=IDLE_TIMEOUT)
            except (LinkClosedError, LinkTimeoutError):
                return
            if not await self._dispatch(link, data):
                _log.info("peer sent a malformed message; closing its link")
                return

    async def _dispatch(self, link: Link, data: bytes) -> bool:
        try:
            message = decode_inbound(data)
        except DchatError:
            return False
        if isinstance(message, SyncRequest):
            response = await self._service.serve_sync(message)
            reply = encode_peer_message(PeerTag.SYNC_RESPONSE, response.to_bytes())
            await link.send(reply, timeout=SEND_TIMEOUT)
        elif isinstance(message, list):
            await self._service.admit_gossip(message)
        else:
            await self._service.inbox_put(message)  # the engine task checks it
        return True
