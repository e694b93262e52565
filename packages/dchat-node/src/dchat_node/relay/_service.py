"""The relay role's service: :class:`dchat_network.RelayHost` over the node database.

The sans-IO :class:`dchat_network.RelayServer` keeps its mailboxes and prekeys
in the node database; :class:`~dchat_network.RelayHost` serves it on links
(one request at a time per link, pulls held until mail arrives). Each
request runs in the database worker as a grouped call (``AsyncStore.run_grouped``): in one
transaction, shared with the requests of other links that arrive meanwhile,
so a reply always follows a durable commit and a ``put_many`` of many
envelopes, or many links' puts at once, cost one.

The abuse limits (connection caps, rate buckets, the disk budget, the replay
window: :class:`dchat_network.RelayLimits`) come from the ``relay_*`` config
keys; the disk budget reads the mailboxes' total from the database
(``MailboxRepo.usage``, at most once a second and only near the budget).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_messaging import MalformedEnvelopeError, SealedEnvelope
from dchat_network import RelayHost, RelayLimits, RelayServer

if TYPE_CHECKING:
    from dchat_core import Clock
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("RelayService", "envelope_mailbox", "relay_limits")


def envelope_mailbox(envelope: bytes) -> bytes | None:
    """The mailbox a sealed envelope is addressed to, or ``None`` if malformed."""
    try:
        return bytes(SealedEnvelope.from_bytes(envelope).mailbox)
    except MalformedEnvelopeError:
        return None


def relay_limits(config: NodeConfig) -> RelayLimits:
    """The abuse limits the ``relay_*`` config keys set."""
    return RelayLimits(
        max_connections=config.relay_max_connections,
        max_connections_per_source=config.relay_max_connections_per_source,
        max_refusing=config.relay_max_refusing,
        link_puts=config.relay_link_puts,
        link_bytes=config.relay_link_bytes,
        source_puts=config.relay_source_puts,
        source_bytes=config.relay_source_bytes,
        burst=config.relay_burst,
        disk_budget=config.relay_disk_budget,
        replay_window=config.relay_replay_window,
        replay_entries=config.relay_replay_entries,
    )


class RelayService(RelayHost):
    """Serves the relay protocol on accepted links, backed by the node database."""

    def __init__(self, store: AsyncStore, clock: Clock, config: NodeConfig) -> None:
        db, limits = store.db, relay_limits(config)
        server = RelayServer(
            db.mailboxes,
            envelope_mailbox,
            prekeys=db.prekeys,
            quota=config.relay_mailbox_quota,
            limits=limits,
            usage=lambda: db.mailboxes.usage()[1],
        )
        super().__init__(
            server,
            store.run_grouped,
            clock.now,
            read=store.run,
            limits=limits,
            idle_timeout=config.relay_idle_timeout,
            first_request_timeout=config.relay_first_request_timeout,
        )
