"""The relay role: the trio shell around :class:`dchat_network.RelayServer`.

Per link, requests are served one at a time, in order. Each request is handled
in a worker thread (the server writes to SQLite); the reply is sent only after
the handler returns, so a ``stored`` reply always follows a durable commit. The
peer's mailbox is derived from the key it proved in the link handshake. A reply
that is an error ends the link; other links are unaffected.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import MailboxId
from dchat_messaging import MalformedEnvelopeError, SealedEnvelope
from dchat_network import LinkClosedError, RelayError, RelayProtocolError, RelayServer

if TYPE_CHECKING:
    from dchat_core import Clock
    from dchat_network import Link
    from dchat_storage import Database

__all__ = ("RelayService",)

_log = logging.getLogger("dchat.relay")
IDLE_TIMEOUT: Final = 300.0


def envelope_mailbox(envelope: bytes) -> bytes | None:
    """The mailbox a sealed envelope is addressed to, or ``None`` if malformed."""
    try:
        return bytes(SealedEnvelope.from_bytes(envelope).mailbox)
    except MalformedEnvelopeError:
        return None


class RelayService:
    """Serves the relay protocol on accepted links, backed by the node database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.server = RelayServer(db.mailboxes, envelope_mailbox, prekeys=db.prekeys)
        self._clock = clock
        # One writer thread: requests from all links are applied in one order.
        self._limiter = trio.CapacityLimiter(1)

    async def handle(self, link: Link) -> None:
        """Serve requests on ``link`` until it closes or misbehaves."""
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        while True:
            try:
                data = await link.receive(timeout=IDLE_TIMEOUT)
            except LinkClosedError:
                return
            reply = await trio.to_thread.run_sync(
                self.server.handle, owner, data, self._clock.now(), limiter=self._limiter
            )
            await link.send(reply.data)
            if reply.close:
                assert isinstance(reply.message, RelayError)
                raise RelayProtocolError(f"request refused: {reply.message.code}")
            _log.debug("relay request served", extra={"reply": type(reply.message).__name__})
