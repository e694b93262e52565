"""The validator's side of peer traffic: inbound links, block sync, slashing transactions.

Inbound links are accepted only from the configured peers (the handshake
proved the node id). Consensus messages go to the engine task's queue, gossip
to the mempool, and sync requests are answered on the same link from the
block store (in a worker thread).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain.lowlevel import BlockSyncClient, SyncRequest, SyncResponse
from dchat_core import DchatError, NodeId
from dchat_network import LinkClosedError, LinkTimeoutError

from ._validator_wire import (
    CONSENSUS,
    SYNC_REQUEST,
    SYNC_RESPONSE,
    TXS,
    decode_txs,
)

if TYPE_CHECKING:
    from dchat_chain import Block, ChainState, CommitCertificate
    from dchat_chain.lowlevel import DuplicateVoteEvidence, IndexedApp
    from dchat_crypto import SigningKey
    from dchat_network import Link

    from ._validator_links import PeerLink
    from ._validator_service import ValidatorService

__all__ = ("InboundHandler", "apply_sync_response", "request_sync", "slash_tx")

_log = logging.getLogger("dchat.validator")
IDLE_TIMEOUT: Final = 60.0  # peers re-send every second; a silent link is dead
SEND_TIMEOUT: Final = 30.0


class InboundHandler:
    """Serves links that peers dialled to us."""

    def __init__(self, service: ValidatorService, allowed: set[NodeId]) -> None:
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
        tag, payload = data[:1], data[1:]
        if tag == bytes([CONSENSUS]):
            await self._service.inbox_put(payload)
        elif tag == bytes([TXS]):
            try:
                txs = decode_txs(payload)
            except DchatError:
                return False
            await self._service.admit_gossip(txs)
        elif tag == bytes([SYNC_REQUEST]):
            try:
                request = SyncRequest.from_bytes(payload)
            except DchatError:
                return False
            response = await self._service.serve_sync(request)
            await link.send(bytes([SYNC_RESPONSE]) + response.to_bytes(), timeout=SEND_TIMEOUT)
        else:
            return False
        return True


def request_sync(peer: PeerLink, request: SyncRequest) -> bool:
    """Queue a sync request to ``peer``; False if its queue is full."""
    return peer.post(bytes([SYNC_REQUEST]) + request.to_bytes())


def apply_sync_response(
    state: ChainState, app: IndexedApp, payload: bytes
) -> tuple[list[tuple[Block, CommitCertificate]], ChainState] | None:
    """Authenticate and execute a sync response on ``app``.

    Returns:
        The blocks executed with their certificates and the state after them
        (possibly none), or None when the response was refused before anything
        ran. If a block in the middle fails, the ones before it were executed
        and are returned, so the caller stores exactly what the app holds.
    """
    try:
        response = SyncResponse.from_bytes(payload)
    except DchatError as exc:
        _log.info("sync response refused: %s", exc)
        return None
    client = BlockSyncClient(state, app, batch=100)
    try:
        client.receive(response)
    except DchatError as exc:
        _log.info("sync response refused: %s", exc)
    done = client.state.height - state.height
    blocks = response.blocks[:done]
    certs: list[CommitCertificate | None] = [
        *(b.last_commit for b in response.blocks[1:]),
        response.certificate,
    ]
    pairs = [(b, c) for b, c in zip(blocks, certs[:done], strict=True) if c is not None]
    return pairs, client.state


def slash_tx(app: IndexedApp, account: SigningKey, evidence: DuplicateVoteEvidence) -> bytes | None:
    """A ``slash`` transaction for ``evidence``, signed by ``account`` (None on the chat chain)."""
    if not isinstance(app.inner, CurrencyChainApp):
        return None  # only the currency chain holds stake to slash
    owner = account.public_key.to_bytes()
    tx = Transaction.create(
        account,
        chain_id=app.chain_id,
        nonce=app.mempool.next_nonce(owner, app.inner.account(owner).nonce),
        fee=int(app.inner.params()["min_fee"]),
        kind="slash",
        body={"evidence": evidence.to_bytes()},
    )
    return tx.raw
