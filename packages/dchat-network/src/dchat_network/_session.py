"""A client's requests to one relay over one link, in trio.

:class:`RelaySession` pairs a :class:`~dchat_network.Link` with the sans-IO
:class:`~dchat_network.RelayClient`: each method sends one request, waits for
its reply and returns the reply's content; a refusal, a malformed reply or an
answer to another request raises :class:`~dchat_network.RelayProtocolError`.
Requests on one session run one at a time (a lock orders concurrent callers).

:func:`relay_session` dials a relay and opens a session. Without a
``node_key`` it proves a fresh, random key, so the relay cannot link the
session to any other (what an envelope deposit or a prekey fetch wants); with
the key of a mailbox it may fetch and acknowledge that mailbox.

:meth:`RelaySession.drain` empties a mailbox: each fetched envelope is handed
to a callback that returns only once the envelope is durably processed, and
only then is the batch acknowledged (the relay deletes acknowledged entries
only), so a crash at any point loses nothing; at worst an envelope is handed
over twice and the receiver's deduplication drops the copy.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from dchat_crypto import SigningKey

from ._errors import RelayBusyError, RelayProtocolError
from ._put_auth import token_hash
from ._put_proofs import ProofContexts
from ._relay import (
    MAX_BATCH,
    MAX_WAIT_MS,
    RelayAcked,
    RelayAuditAnswer,
    RelayBatch,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
    RelayProbeAnswer,
    RelayReceiptTaken,
    RelayStored,
    RelayStoredMany,
    RelayTokensHeld,
)
from ._relay_blob_wire import MAX_BLOB_PIECE, BlobAt, BlobData, BlobGone
from ._relay_onion_wire import OnionDone, OnionFetched, OnionKeyIs
from ._relay_proof_wire import RingHeld, ZkContexts
from ._relay_server import RelayClient
from ._relay_token_wire import TokenIssued, TokenOffered
from ._relay_topic_wire import MAX_TOPIC_WAIT_MS, TopicPosts, TopicPublished
from ._trio import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from dchat_core import NodeId

    from ._relay import RelayMessage
    from ._trio import Link

__all__ = ("RelaySession", "relay_session")

DRAIN_BATCH: Final = 64
"""Entries fetched per request while draining a mailbox."""
_R = TypeVar("_R")


class RelaySession:
    """Typed requests to one relay over an open link.

    Args:
        link: An open link to the relay (closed by :meth:`aclose`).
    """

    def __init__(self, link: Link) -> None:
        self.link = link
        self._client = RelayClient()
        self._lock = trio.Lock()
        self.tokens_sent = -1
        """The version of the put-token set this link registered (-1: none yet)."""
        self.ring_sent = -1
        """The version of the contact ring this link registered (-1: none yet)."""

    async def _ask(
        self, build: Callable[[RelayClient], bytes], expected: type[_R], *, timeout: float = 30.0
    ) -> _R:
        async with self._lock:
            request = build(self._client)
            reply: RelayMessage = self._client.receive(
                await self.link.request(request, timeout=timeout)
            )
        if not isinstance(reply, expected):  # pragma: no cover (RelayClient checks the type)
            raise RelayProtocolError("relay answered a different request")
        return reply

    async def put(self, mailbox: bytes, envelope: bytes, auth: bytes | None = None) -> bytes:
        """Store ``envelope`` in anyone's ``mailbox``; returns the relay's entry id.

        Raises:
            RelayBusyError: also ``pow``: the relay asks for work (its ``challenge``).
        """
        stored = await self._ask(lambda c: c.put(mailbox, envelope, auth), RelayStored)
        return stored.entry_id

    async def put_many(
        self, items: Sequence[tuple[bytes, bytes]], auth: Sequence[bytes | None] = ()
    ) -> list[bytes | str]:
        """Store each ``(mailbox, envelope)`` in one request and one commit at the relay.

        Returns, per item in order, its entry id or the code that refused it
        (``quota``, ``bad_envelope``, ``pow``; :meth:`deposit` also gives the challenge).
        """
        return list((await self.deposit(items, auth)).results)

    async def deposit(
        self, items: Sequence[tuple[bytes, bytes]], auth: Sequence[bytes | None] = ()
    ) -> RelayStoredMany:
        """:meth:`put_many`'s whole answer: per-item results and the work asked, if any."""
        return await self._ask(lambda c: c.put_many(items, auth), RelayStoredMany)

    async def sync_tokens(self, mailbox: bytes, registration: tuple[int, Sequence[bytes]]) -> None:
        """Register the hashes of our own ``mailbox``'s put tokens, unless this link did.

        ``registration``: ``(version, tokens)`` of the owner's token set; only
        their hashes (:func:`~dchat_network.lowlevel.token_hash`) are sent. An
        empty set that never changed (version 0) is not sent. A relay whose
        token budget is spent (``busy``) is asked again on the next call.
        """
        version, tokens = registration
        if version == self.tokens_sent or (version == 0 and not tokens):
            return
        hashes = [token_hash(token) for token in tokens]
        try:
            await self._ask(lambda c: c.set_tokens(mailbox, hashes), RelayTokensHeld)
        except RelayBusyError:
            return
        self.tokens_sent = version

    async def sync_ring(
        self, mailbox: bytes, registration: tuple[int, bytes, bytes, bytes]
    ) -> None:
        """Register our own ``mailbox``'s contact ring (section 41), unless this link did.

        ``registration``: ``(version, ring, key, signature)``; an empty ring
        that never changed (version 0) is not sent; ``busy`` is asked again
        next call.
        """
        version, ring, key, signature = registration
        if version == self.ring_sent or (version == 0 and not ring):
            return
        try:
            await self._ask(lambda c: c.set_ring(mailbox, ring, key, signature), RingHeld)
        except RelayBusyError:
            return
        self.ring_sent = version

    async def proof_contexts(self, mailbox: bytes, count: int) -> ProofContexts:
        """Up to ``count`` one-use proof nonces for ``mailbox``, with its ring (section 41)."""
        got = await self._ask(lambda c: c.proof_contexts(mailbox, count), ZkContexts)
        return ProofContexts(got.epoch, got.nonces, got.ring, got.key, got.signature)

    async def pull(
        self, mailbox: bytes, ack: Sequence[bytes] = (), *, wait: float = 0.0
    ) -> list[tuple[bytes, bytes]]:
        """Acknowledge ``ack`` of our own ``mailbox``, then fetch what waits there.

        When nothing waits, the relay answers as soon as something arrives, or
        with nothing after ``wait`` seconds (at most ``MAX_WAIT_MS``).
        """
        wait_ms = min(int(wait * 1000), MAX_WAIT_MS)
        reply = await self._ask(
            lambda c: c.pull(mailbox, ack, limit=MAX_BATCH, wait_ms=wait_ms),
            RelayBatch,
            timeout=wait + 30.0,
        )
        return list(reply.items)

    async def publish(self, topic: bytes, post: bytes, desc: bytes | None = None) -> int:
        """Store a signed channel post in ``topic``; returns the relay's number for it."""
        reply = await self._ask(lambda c: c.publish(topic, post, desc), TopicPublished)
        return reply.seq

    async def token_offer(self) -> bytes:
        """The relay's signed token offer (verify it with ``TokenOffer.from_bytes``)."""
        reply = await self._ask(lambda c: c.token_offer(), TokenOffered)
        return reply.offer

    async def token_buy(self, request: bytes) -> bytes:
        """The blind signatures of the paid token ``request`` (its issuance bytes)."""
        reply = await self._ask(lambda c: c.token_buy(request), TokenIssued)
        return reply.issuance

    async def read_topic(
        self, topic: bytes, after: int, *, wait: float = 0.0, desc: int = 0
    ) -> TopicPosts:
        """Posts of ``topic`` after ``after``; when none, held until one comes or ``wait`` ends."""
        wait_ms = min(int(wait * 1000), MAX_TOPIC_WAIT_MS)
        return await self._ask(
            lambda c: c.read_topic(topic, after, wait_ms=wait_ms, desc=desc),
            TopicPosts,
            timeout=wait + 30.0,
        )

    async def get_prekeys(self, mailbox: bytes) -> bytes:
        """One (wrapped) prekey bundle of anyone's ``mailbox``."""
        return (await self._ask(lambda c: c.get_prekeys(mailbox), RelayPrekeyBundle)).bundle

    async def count_prekeys(self, mailbox: bytes) -> int:
        """How many one-time bundles the relay holds for our own ``mailbox``."""
        return (await self._ask(lambda c: c.count_prekeys(mailbox), RelayPrekeysHeld)).count

    async def put_prekeys(
        self,
        mailbox: bytes,
        last_resort: bytes,
        one_time: Sequence[tuple[int, bytes]],
        *,
        replace: bool,
    ) -> int:
        """Publish bundles for our own ``mailbox``; returns how many one-time ones it holds."""
        put = await self._ask(
            lambda c: c.put_prekeys(mailbox, last_resort, one_time, replace=replace),
            RelayPrekeysHeld,
        )
        return put.count

    async def fetch(self, mailbox: bytes, limit: int = DRAIN_BATCH) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` waiting ``(entry id, envelope)`` pairs of our own ``mailbox``."""
        return list((await self._ask(lambda c: c.fetch(mailbox, limit), RelayBatch)).items)

    async def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int:
        """Delete received entries of our own ``mailbox``; returns how many were deleted."""
        return (await self._ask(lambda c: c.ack(mailbox, entry_ids), RelayAcked)).deleted

    async def drain(
        self,
        mailbox: bytes,
        handle: Callable[[bytes], Awaitable[None]],
        after_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """Fetch ``mailbox`` until it is empty; returns how many envelopes were handled.

        ``handle`` each envelope, acknowledge the batch, then call ``after_batch``.
        """
        handled = 0
        while batch := await self.fetch(mailbox):
            for _entry_id, envelope in batch:
                await handle(envelope)
            handled += len(batch)
            await self.ack(mailbox, [entry_id for entry_id, _ in batch])
            if after_batch is not None:
                await after_batch()
        return handled

    async def probe(self, challenge: bytes, *, timeout: float = 30.0) -> bytes:
        """Have the relay sign a validator's probe ``challenge``; its signature."""
        reply = await self._ask(lambda c: c.probe(challenge), RelayProbeAnswer, timeout=timeout)
        return reply.signature

    async def send_receipt(self, receipt: bytes) -> int:
        """Give the relay a delivery receipt for our own mailbox; the envelopes it covers."""
        return (await self._ask(lambda c: c.receipt(receipt), RelayReceiptTaken)).count

    async def audit(self, root: bytes, index: int, *, timeout: float = 30.0) -> RelayAuditAnswer:
        """Ask for leaf ``index`` of the relay's receipt batch ``root`` with its proof."""
        return await self._ask(lambda c: c.audit(root, index), RelayAuditAnswer, timeout=timeout)

    async def blob_open(self, blob_id: bytes, size: int) -> int:
        """Start or resume uploading a blob (our link's mailbox pays); the bytes held."""
        return (await self._ask(lambda c: c.blob_open(blob_id, size), BlobAt)).held

    async def blob_put(self, blob_id: bytes, offset: int, data: bytes) -> int:
        """Append a piece at ``offset`` (the bytes held); the bytes now held."""
        return (await self._ask(lambda c: c.blob_put(blob_id, offset, data), BlobAt)).held

    async def blob_get(
        self, blob_id: bytes, offset: int, limit: int = MAX_BLOB_PIECE
    ) -> tuple[bytes, int]:
        """Up to ``limit`` bytes of a complete blob from ``offset``, and the blob's size."""
        reply = await self._ask(lambda c: c.blob_get(blob_id, offset, limit), BlobData)
        return reply.data, reply.size

    async def blob_delete(self, blob_id: bytes) -> bool:
        """Delete a blob our link's mailbox uploaded; whether there was one."""
        return bool((await self._ask(lambda c: c.blob_delete(blob_id), BlobGone)).deleted)

    async def onion_key(self) -> bytes:
        """The relay's signed onion key record (verify it: :class:`OnionKeyRecord`)."""
        return (await self._ask(lambda c: c.onion_key(), OnionKeyIs)).record

    async def onion(self, packet: bytes, *, timeout: float = 30.0) -> str:
        """Hand the relay an onion; what became of it (``stored``, ``bad_onion``, ...)."""
        return (await self._ask(lambda c: c.onion(packet), OnionDone, timeout=timeout)).result

    async def onion_fetch(self, packet: bytes, *, timeout: float = 30.0) -> OnionFetched:
        """Hand the relay a fetch onion (§46): ``ok`` and the reply so far, or why not."""
        return await self._ask(lambda c: c.onion_fetch(packet), OnionFetched, timeout=timeout)

    async def aclose(self) -> None:
        """Close the link."""
        await self.link.aclose()


@asynccontextmanager
async def relay_session(
    host: str,
    port: int,
    *,
    node_key: SigningKey | None = None,
    expected_peer: NodeId | None = None,
    timeout: float = 10.0,
) -> AsyncIterator[RelaySession]:
    """Dial the relay at ``host:port`` and open a session (closed on exit).

    Args:
        node_key: The key the link proves (a mailbox key to fetch that
            mailbox); a fresh random one if None, unlinkable to any other session.
        expected_peer: The relay's pinned node id, if known.
        timeout: For the connection and the handshake.
    """
    key = SigningKey.generate() if node_key is None else node_key
    link = await connect(host, port, node_key=key, expected_peer=expected_peer, timeout=timeout)
    session = RelaySession(link)
    try:
        yield session
    finally:
        await session.aclose()
