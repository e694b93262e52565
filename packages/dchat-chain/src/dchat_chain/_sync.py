"""Block sync: a lagging or new node fetches decided blocks from a peer (sans-IO).

Theory of operation
-------------------
The client asks for ``count`` blocks from its next height; a server answers
with consecutive blocks and the certificate of the *last* one. The blocks
certify each other: block ``h + 1`` carries block ``h``'s certificate as
``last_commit`` (fixed by its header hash), and ``prev_block_hash`` chains the
headers. Two policies check a batch:

* ``verify_every``: every block's certificate is verified (one
  ``bls_fast_aggregate_verify`` each), against the validator set that the
  chain itself says signs that height. The paranoid mode.
* default (skip): only the last block's certificate is verified, against the
  client's *current* validator set; the hash chain then fixes every block
  below it. Sound because honest validators never sign a block at any height
  that is not the decided one, so more than 2/3 of a set we trust signing the
  top means the whole batch is the chain (Tendermint light clients skip the
  same way, within the unbonding period). If the set changed inside the batch
  the top certificate does not verify against it and the batch falls back to
  ``verify_every``.

Nothing is executed before the batch is authenticated in skip mode; in
``verify_every`` mode each block is authenticated before it is executed. Any
failure raises :class:`~dchat_chain.SyncError` (or a more specific typed
error) and leaves the client at the last good block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block import MAX_BLOCK_SIZE, Block
from ._block_chain import execute_block
from ._block_commit import CommitCertificate
from ._errors import ChainArgumentError, SyncError

if TYPE_CHECKING:
    from ._app import Application, BlockResult
    from ._block_chain import ChainState
    from ._blockstore import BlockStore

__all__ = ("MAX_SYNC_BLOCKS", "BlockSyncClient", "SyncRequest", "SyncResponse", "serve_sync")

MAX_SYNC_BLOCKS: Final = 500
MAX_RESPONSE_SIZE: Final = 16 * MAX_BLOCK_SIZE
_LIMITS: Final = DecodeLimits(max_size=MAX_RESPONSE_SIZE, max_depth=6, max_items=1_000_000)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Ask for up to ``count`` blocks starting at ``start``."""

    start: int
    count: int

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode({"t": "get-blocks", "from": self.start, "count": self.count})

    @classmethod
    def from_bytes(cls, data: bytes) -> SyncRequest:
        """Decode a request from untrusted bytes.

        Raises:
            SyncError: Malformed, or asks for more than ``MAX_SYNC_BLOCKS``.
        """
        try:
            f = Fields(canonical_decode(data), "sync request", frozenset({"t", "from", "count"}))
            if f.get_str("t", max_len=16) != "get-blocks":
                raise SyncError("not a sync request")
            return cls(f.get_int("from", lo=1), f.get_int("count", lo=1, hi=MAX_SYNC_BLOCKS))
        except SyncError:
            raise
        except DchatError as exc:
            raise SyncError(f"malformed sync request: {exc}") from None


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """Consecutive blocks and the certificate of the last one (no blocks: nothing new)."""

    blocks: tuple[Block, ...]
    certificate: CommitCertificate | None

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        cert = None if self.certificate is None else self.certificate.to_obj()
        return canonical_encode(
            {"t": "blocks", "blocks": [b.to_obj() for b in self.blocks], "cert": cert}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SyncResponse:
        """Decode a response from untrusted bytes (structure only).

        Raises:
            SyncError: The bytes are not a well-formed response.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "sync response", _RESPONSE_FIELDS)
            if f.get_str("t", max_len=16) != "blocks":
                raise SyncError("not a sync response")
            raw: Any = f.raw("cert")
            blocks = tuple(Block.from_obj(b) for b in f.get_list("blocks", max_len=MAX_SYNC_BLOCKS))
            cert = None if raw is None else CommitCertificate.from_obj(raw)
        except SyncError:
            raise
        except DchatError as exc:
            raise SyncError(f"malformed sync response: {exc}") from None
        if (cert is None) != (not blocks):
            raise SyncError("a sync response has blocks and a certificate, or neither")
        return cls(blocks, cert)


_RESPONSE_FIELDS: Final = frozenset({"t", "blocks", "cert"})


def serve_sync(store: BlockStore, request: SyncRequest) -> SyncResponse:
    """Answer ``request`` from ``store`` (at most ``MAX_SYNC_BLOCKS`` blocks)."""
    top = min(store.height(), request.start + min(request.count, MAX_SYNC_BLOCKS) - 1)
    blocks = [store.block(h) for h in range(request.start, top + 1)]
    if not blocks:
        return SyncResponse((), None)
    certificate = store.certificate(top)
    assert certificate is not None
    assert all(b is not None for b in blocks)
    return SyncResponse(tuple(b for b in blocks if b is not None), certificate)


class BlockSyncClient:
    """Fetches, authenticates and executes blocks until caught up.

    Args:
        state: The local chain state (its ``height`` is the next block wanted).
        app: The application the blocks are executed on.
        batch: Blocks per request.
        verify_every: Verify every block's certificate instead of one per batch.
    """

    def __init__(
        self,
        state: ChainState,
        app: Application,
        *,
        batch: int = 100,
        verify_every: bool = False,
    ) -> None:
        if not 1 <= batch <= MAX_SYNC_BLOCKS:
            raise ChainArgumentError("batch must be 1 to 500 blocks")
        self._state = state
        self._app = app
        self._batch = batch
        self._verify_every = verify_every
        self._last_commit: CommitCertificate | None = None

    @property
    def state(self) -> ChainState:
        """The chain state after the last block applied."""
        return self._state

    @property
    def last_commit(self) -> CommitCertificate | None:
        """The certificate of the last block applied (None before any)."""
        return self._last_commit

    def next_request(self) -> SyncRequest:
        """The request for the next batch."""
        return SyncRequest(self._state.height, self._batch)

    def receive(
        self, response: SyncResponse | bytes
    ) -> list[tuple[Block, CommitCertificate, BlockResult]]:
        """Authenticate and execute a response; returns what was applied, in order.

        Raises:
            SyncError: The response does not extend our chain or a block is invalid.
            InvalidCertificateError: A certificate does not verify.
        """
        if isinstance(response, bytes | bytearray):
            response = SyncResponse.from_bytes(bytes(response))
        if response.certificate is None:
            return []
        blocks = response.blocks
        certs = [*(b.last_commit for b in blocks[1:]), response.certificate]
        self._check_links(blocks, certs)
        if self._verify_every or not self._top_verifies(response.certificate):
            return self._apply(blocks, certs, verify=True)
        return self._apply(blocks, certs, verify=False)

    def _check_links(
        self, blocks: tuple[Block, ...], certs: list[CommitCertificate | None]
    ) -> None:
        # Everything that ties the batch together is checked before anything runs:
        # a forged block in the middle must never be executed.
        previous = self._state.last_block_hash
        for offset, (block, cert) in enumerate(zip(blocks, certs, strict=True)):
            if block.height != self._state.height + offset:
                raise SyncError("blocks are not consecutive from our height")
            if block.header.prev_block_hash != previous:
                raise SyncError("blocks do not form a hash chain from our head")
            previous = block.hash()
            if cert is None or cert.height != block.height or cert.block_hash != previous:
                raise SyncError("a certificate is not for its block")
            try:
                block.check_structure()
            except DchatError as exc:
                raise SyncError(f"block {block.height} is malformed: {exc}") from None

    def _top_verifies(self, certificate: CommitCertificate) -> bool:
        try:
            certificate.verify(self._state.validators, self._state.chain_id)
        except DchatError:
            return False
        return True

    def _apply(
        self, blocks: tuple[Block, ...], certs: list[CommitCertificate | None], *, verify: bool
    ) -> list[tuple[Block, CommitCertificate, BlockResult]]:
        applied: list[tuple[Block, CommitCertificate, BlockResult]] = []
        for block, cert in zip(blocks, certs, strict=True):
            assert cert is not None
            if verify:
                cert.verify(self._state.validators, self._state.chain_id)
            try:
                self._state.validate_block(block, check_last_commit=False)
            except DchatError as exc:
                raise SyncError(f"block {block.height} is invalid: {exc}") from None
            self._state, result = execute_block(self._state, self._app, block)
            self._last_commit = cert
            applied.append((block, cert, result))
        return applied
