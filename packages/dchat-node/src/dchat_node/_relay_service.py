"""The relay role: durable mailboxes for sealed envelopes.

Per link, requests are served one at a time in order. A ``put`` is answered only
after the envelope is committed to the database, so the sender may forget it; an
entry leaves the database only when the mailbox owner acknowledges it. Only the
owner can fetch or acknowledge: the mailbox is derived from the key the peer
proved in the link handshake, never taken from the request.

A request that breaks the protocol gets an ``error`` reply and the link is
closed; other links are unaffected.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from dchat_core import Clock, MailboxId
from dchat_messaging import MalformedEnvelopeError, SealedEnvelope
from dchat_network import (
    Link,
    LinkClosedError,
    RelayAck,
    RelayAcked,
    RelayBatch,
    RelayError,
    RelayFetch,
    RelayMessage,
    RelayProtocolError,
    RelayPut,
    RelayStored,
    decode_relay_message,
    encode_relay_message,
)

if TYPE_CHECKING:
    from ._store import AsyncStore

__all__ = ("RelayService",)

_log = logging.getLogger("dchat.relay")
IDLE_TIMEOUT: Final = 300.0
MAX_BATCH_BYTES: Final = 768 * 1024
DEFAULT_QUOTA: Final = 64 * 1024 * 1024


class RelayService:
    """Serves the relay protocol on accepted links.

    Args:
        store: The node database.
        clock: Time source for receipt timestamps.
        mailbox_quota: Most bytes one mailbox may hold.
    """

    def __init__(
        self, store: AsyncStore, clock: Clock, *, mailbox_quota: int = DEFAULT_QUOTA
    ) -> None:
        self._store = store
        self._clock = clock
        self._quota = mailbox_quota
        self.stored = 0
        self.delivered = 0

    async def handle(self, link: Link) -> None:
        """Serve requests on ``link`` until it closes or misbehaves."""
        owner = MailboxId.derive(link.peer_key.to_bytes())
        while True:
            try:
                data = await link.receive(timeout=IDLE_TIMEOUT)
            except LinkClosedError:
                return
            try:
                request = decode_relay_message(data)
            except RelayProtocolError as exc:
                await link.send(encode_relay_message(RelayError(0, "malformed", str(exc))))
                raise
            reply = await self._dispatch(owner, request)
            await link.send(encode_relay_message(reply))
            if isinstance(reply, RelayError):
                raise RelayProtocolError(f"request refused: {reply.code}")

    async def _dispatch(self, owner: MailboxId, request: RelayMessage) -> RelayMessage:
        match request:
            case RelayPut():
                return await self._put(request)
            case RelayFetch():
                return await self._fetch(owner, request)
            case RelayAck():
                return await self._ack(owner, request)
        return RelayError(getattr(request, "rid", 0), "unexpected", "not a request")

    async def _put(self, request: RelayPut) -> RelayMessage:
        try:
            envelope = SealedEnvelope.from_bytes(request.envelope)
        except MalformedEnvelopeError:
            return RelayError(request.rid, "bad_envelope", "envelope is malformed")
        if bytes(envelope.mailbox) != request.mailbox:
            return RelayError(request.rid, "bad_envelope", "envelope is for another mailbox")
        db = self._store.db
        used = await self._store.run(db.mailboxes.total_bytes, request.mailbox)
        if used + len(request.envelope) > self._quota:
            return RelayError(request.rid, "quota", "mailbox is full")
        entry_id, created = await self._store.run(
            db.mailboxes.put, request.mailbox, request.envelope, self._clock.now()
        )
        if created:
            self.stored += 1
        _log.info("stored envelope", extra={"bytes": len(request.envelope), "new": created})
        return RelayStored(request.rid, entry_id)

    async def _fetch(self, owner: MailboxId, request: RelayFetch) -> RelayMessage:
        entries = await self._store.run(self._store.db.mailboxes.fetch, bytes(owner), request.limit)
        items: list[tuple[bytes, bytes]] = []
        size = 0
        for entry in entries:
            size += len(entry.envelope) + 64
            if items and size > MAX_BATCH_BYTES:
                break
            items.append((entry.entry_id, entry.envelope))
        return RelayBatch(request.rid, tuple(items))

    async def _ack(self, owner: MailboxId, request: RelayAck) -> RelayMessage:
        deleted = await self._store.run(
            self._store.db.mailboxes.ack, bytes(owner), list(request.entry_ids)
        )
        self.delivered += deleted
        return RelayAcked(request.rid, deleted)
