"""The relay role's service: :class:`dchat_network.RelayHost` over the node database.

The sans-IO :class:`dchat_network.RelayServer` keeps its mailboxes and prekeys
in the node database; :class:`~dchat_network.RelayHost` serves it on links
(one request at a time per link, pulls held until mail arrives). Each
request runs in the database worker as a grouped call (``AsyncStore.run_grouped``): in one
transaction, shared with the requests of other links that arrive meanwhile,
so a reply always follows a durable commit and a ``put_many`` of many
envelopes, or many links' puts at once, cost one.

With tracing on (``dchat_node._tracing``), each request runs in a
``dchat.relay.request`` span and each parked pull's answer in a
``dchat.relay.push`` span, carrying the reply's kind and size; with tracing
off the host gets the store's calls themselves, so it costs nothing.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, TypeAlias

from dchat_messaging import MalformedEnvelopeError, SealedEnvelope
from dchat_network import RelayHost, RelayServer

from .._tracing import TRACING_OFF, Tracing

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_core import Clock
    from dchat_network import RelayReply
    from dchat_storage import AsyncStore

__all__ = ("RelayService", "envelope_mailbox")

_Run: TypeAlias = "Callable[[Callable[[], RelayReply]], Awaitable[RelayReply]]"


def envelope_mailbox(envelope: bytes) -> bytes | None:
    """The mailbox a sealed envelope is addressed to, or ``None`` if malformed."""
    try:
        return bytes(SealedEnvelope.from_bytes(envelope).mailbox)
    except MalformedEnvelopeError:
        return None


class RelayService(RelayHost):
    """Serves the relay protocol on accepted links, backed by the node database."""

    def __init__(self, store: AsyncStore, clock: Clock, tracing: Tracing = TRACING_OFF) -> None:
        db = store.db
        server = RelayServer(db.mailboxes, envelope_mailbox, prekeys=db.prekeys)
        run: _Run = store.run_grouped
        read: _Run = store.run
        if tracing.enabled:
            run = functools.partial(_traced, tracing, "dchat.relay.request", run)
            read = functools.partial(_traced, tracing, "dchat.relay.push", read)
        super().__init__(server, run, clock.now, read=read)


async def _traced(
    tracing: Tracing,
    name: str,
    run: _Run,
    call: Callable[[], RelayReply],
) -> RelayReply:
    with tracing.span(name) as span:
        reply = await run(call)
        if span is not None:
            span.set_attribute("dchat.relay.reply", type(reply.message).__name__)
            span.set_attribute("dchat.relay.reply_bytes", len(reply.data))
            span.set_attribute("dchat.relay.mailboxes_woken", len(reply.notify))
        return reply
