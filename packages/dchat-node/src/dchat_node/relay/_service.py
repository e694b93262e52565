"""The relay role's service: :class:`dchat_network.RelayHost` over the node database.

The sans-IO :class:`dchat_network.RelayServer` keeps its mailboxes and prekeys
in the node database; :class:`~dchat_network.RelayHost` serves it on links
(one request at a time per link, pulls held until mail arrives, put-token work
first). Each request runs in the database worker as a grouped call
(``AsyncStore.run_grouped``): in one transaction, shared with other links' requests,
so a reply always follows a durable commit and a ``put_many`` of many
envelopes, or many links' puts at once, cost one. Anonymous work (strangers'
deposits) runs in the store's background lane (``run_grouped_later``): small
groups of its own, committed when no authorised work waits. Limits: ``[node.relay_limits]``.
Delivery receipts and their sealed batches, and broadcast channel topics, are
kept in the database too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_messaging import SealedEnvelope
from dchat_network import RelayHost, RelayLimits, RelayServer

if TYPE_CHECKING:
    from dchat_core import Clock
    from dchat_storage import AsyncStore

__all__ = ("RelayService",)


class RelayService(RelayHost):
    """Serves the relay protocol on accepted links, backed by the node database."""

    def __init__(self, store: AsyncStore, clock: Clock, limits: RelayLimits) -> None:
        db, mailbox_of = store.db, SealedEnvelope.mailbox_of
        mb = db.mailboxes
        server = RelayServer(
            mb,
            mailbox_of,
            prekeys=db.prekeys,
            limits=limits,
            usage=mb.usage,
            receipts=db.receipts,
            topics=db.topics,
        )
        super().__init__(
            server,
            store.run_grouped,
            clock.now,
            read=store.run,
            limits=limits,
            run_later=store.run_grouped_later,
        )
        self.wrap_reply = SealedEnvelope.onion_reply  # answers under reply blocks (§45)
